"""Environment-resolved rates: check a catalog's ``environments`` section, build kernel tables.

A catalog of schema version 2 may resolve barriers by the local environment of a hop (see
:mod:`kmcflow.kmc.environment` for the key). The engine rates a hop from

1. the exact ``table`` entry of its (moving species, hop class, environment key), else
2. the ``model``: E_KRA = K + sum_e J[orbit(e), occupant(e)], E_a = max(E_KRA + dE/2, dE, 0),
   dE from the energy model (site energies and first-shell pair bonds), else
3. the region events of the catalog, as a version 1 catalog would.

Detailed balance. An environment key says nothing about regions, so a catalog with
environments may not give a species different site energies in different regions. A table
entry and its reverse (the same atom going back, same environment) must differ by the pair
energy change dE of the energy model (0 without one), within its tolerance; the model obeys
detailed balance by construction as long as its terms are the same for a hop and its reverse,
which the orbit parametrisation (orbits under the hop's symmetry *and* its reversal) ensures.

:func:`environment_problems` lists what is wrong with a section (each problem names the field
and the fix); :func:`resolve_environments` turns a valid one into the arrays of the kernel's
``env`` tuple (:func:`kmcflow.kmc.kernels.run_events`), :func:`no_environments` is the tuple
of a catalog without them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kmcflow.errors import CatalogError
from kmcflow.kmc.constants import K_B_EV_PER_K
from kmcflow.kmc.environment import (
    NO_SITE_TEXT,
    VACANCY_TEXT,
    HopEnvironments,
    check_key_fits,
    environment_key,
    hop_environments,
    key_base,
    key_digits,
    key_text,
    parse_key_text,
    reverse_key,
)
from kmcflow.kmc.lattice import LatticeDefinition, general, nearest_neighbours, preset

Catalog = Any
"""A :class:`kmcflow.kmc.catalog.Catalog` (not imported: the catalog module validates with
this one)."""

LOG_CAPACITY = 1 << 16
"""Records the kernel's event log holds before it returns to Python to be drained."""
LOG_FIELDS = ("species", "hop_class", "key", "source", "basis", "slot")
REFILL_CAPACITY = 1024
"""Rows of the kernel's work list after one hop (``kernels.collect_work``): the moved vacancy,
the vacancies next to two sites and one row per hop from a neighbour of those two sites, at
most 1 + 2 z + 2 z^2 (1013 for z = 22, more neighbours than any lattice here has)."""
SOURCE_NAMES = ("table", "model", "region")


def catalog_lattice(catalog: Catalog) -> LatticeDefinition:
    """The :class:`LatticeDefinition` of a catalog's ``lattice`` section."""
    spec = catalog.lattice
    if spec.preset is not None:
        return preset(spec.preset, spec.a_A or 1.0)
    return general(spec.vectors_A, spec.basis_frac, spec.dimension, spec.nn_tolerance)


@dataclass(frozen=True)
class EnvironmentGeometry:
    """Which environment sites of each hop class neighbour the vacancy site and the atom's site.

    ``near_v[c, e]`` / ``near_j[c, e]``: site ``e`` of the reference hop of class ``c`` is a
    nearest neighbour of ``v`` (the site the atom jumps into) / of ``j`` (where it starts).
    """

    envs: HopEnvironments
    near_v: np.ndarray
    near_j: np.ndarray
    orbit_index: np.ndarray  # (C, E) 0-based orbit number (stabiliser + reversal), -1 padding
    n_orbits: np.ndarray  # (C,)


def environment_geometry(lattice: LatticeDefinition) -> EnvironmentGeometry:
    """The hop environments of ``lattice`` with their neighbour flags and orbit numbers."""
    envs = hop_environments(lattice)
    d_nn = nearest_neighbours(lattice).distance_A
    tol = d_nn * lattice.nn_tolerance + 1e-6
    pos = envs.positions_A
    dist_v = np.linalg.norm(pos, axis=-1)
    dist_j = np.linalg.norm(pos - envs.hop_vector_A[:, None, :], axis=-1)
    with np.errstate(invalid="ignore"):
        near_v = np.abs(dist_v - d_nn) <= tol
        near_j = np.abs(dist_j - d_nn) <= tol
    orbit_index = np.full(envs.orbits_with_reversal.shape, -1, np.int64)
    n_orbits = np.zeros(envs.n_classes, np.int64)
    for c in range(envs.n_classes):
        n = int(envs.n_env_of_class[c])
        labels = envs.orbits_with_reversal[c, :n]
        order = {lab: i for i, lab in enumerate(dict.fromkeys(labels.tolist()))}
        orbit_index[c, :n] = [order[lab] for lab in labels.tolist()]
        n_orbits[c] = len(order)
    return EnvironmentGeometry(envs, near_v, near_j, orbit_index, n_orbits)


def pair_energy_change(codes: np.ndarray, species: int, hop_class: int,
                       geometry: EnvironmentGeometry, pair: np.ndarray) -> float:
    """The pair-bond energy change (eV) when ``species`` jumps from j to v in this environment.

    The sum of ``pair[species, occupant]`` over the neighbours of ``v`` (other than ``j``)
    less that over the neighbours of ``j`` (other than ``v``); the none code counts 0.
    """
    n_codes = pair.shape[0]
    total = 0.0
    for e, code in enumerate(np.asarray(codes).tolist()):
        if code >= n_codes:
            continue
        if geometry.near_v[hop_class, e]:
            total += pair[species, code]
        if geometry.near_j[hop_class, e]:
            total -= pair[species, code]
    return total


def model_barrier(term, codes: np.ndarray, hop_class: int, geometry: EnvironmentGeometry,
                  d_e: float, species_names: list[str]) -> float:
    """E_a (eV) the model ``term`` gives a hop of class ``hop_class`` with environment ``codes``.

    E_KRA = kra_eV + sum_e orbit_eV[orbit(e)][occupant(e)]; E_a = max(E_KRA + dE/2, dE, 0).
    """
    names = {0: VACANCY_TEXT, len(species_names) + 1: NO_SITE_TEXT}
    names.update({i: name for i, name in enumerate(species_names, start=1)})
    e_kra = term.kra_eV
    if term.orbit_eV:
        for e in range(int(geometry.envs.n_env_of_class[hop_class])):
            mapping = term.orbit_eV[int(geometry.orbit_index[hop_class, e])]
            e_kra += mapping.get(names[int(codes[e])], 0.0)
    return max(e_kra + 0.5 * d_e, d_e, 0.0)


def pair_energy_matrix(catalog: Catalog) -> np.ndarray:
    """(S+1, S+1) first-shell pair energies (eV) of the energy model, by species code."""
    n = len(catalog.species) + 1
    out = np.zeros((n, n))
    em = catalog.energy_model
    if em is None:
        return out
    code = {name: i for i, name in enumerate(catalog.species, start=1)}
    for key, value in em.pair_interactions_eV.items():
        a, b = key.split("-")
        out[code[a], code[b]] = out[code[b], code[a]] = value
    return out


@dataclass
class ParsedTable:
    """The table's entries as (species code, hop class, canonical key) and their codes."""

    keys: list[tuple[int, int, int]] = field(default_factory=list)
    codes: list[np.ndarray] = field(default_factory=list)


def _parse_table(catalog: Catalog, geometry: EnvironmentGeometry,
                 problems: list[tuple[str, str, str | None]]) -> ParsedTable:
    envs = geometry.envs
    n_species = len(catalog.species)
    parsed = ParsedTable()
    seen: dict[tuple[int, int, int], int] = {}
    for i, entry in enumerate(catalog.environments.table):
        where = f"environments.table[{i}].key"
        try:
            s, c, codes = parse_key_text(entry.key, catalog.species, envs)
        except CatalogError as exc:  # exc.field: key, key.hop_class, key.environment, ...
            problems.append((f"environments.table[{i}].{exc.field}", exc.message, exc.hint))
            continue
        n = int(envs.n_env_of_class[c])
        none = key_base(n_species) - 1
        if np.any(codes[n:] != none):
            problems.append((where, f"hop class {c} has {n} environment sites; the sites after "
                             f"them must be {NO_SITE_TEXT!r}", None))
            continue
        key = environment_key(codes, c, envs, n_species)
        if (s, c, key) in seen:
            problems.append((f"environments.table[{i}]", "the same environment (up to symmetry) "
                             f"as environments.table[{seen[s, c, key]}]",
                             "keep one entry per environment"))
            continue
        seen[s, c, key] = i
        parsed.keys.append((s, c, key))
        parsed.codes.append(codes)
    return parsed


def environment_problems(catalog: Catalog) -> list[tuple[str, str, str | None]]:
    """Every problem of ``catalog.environments`` as (field, message, hint)."""
    problems: list[tuple[str, str, str | None]] = []
    section = catalog.environments
    if section is None:
        return problems
    try:
        geometry = environment_geometry(catalog_lattice(catalog))
        check_key_fits(geometry.envs, len(catalog.species))
    except CatalogError as exc:
        return [(exc.field or "environments", exc.message, exc.hint)]
    em = catalog.energy_model
    if em is not None:
        for name, per_region in em.site_energies_eV.items():
            if len(set(per_region.values())) > 1:
                problems.append((f"energy_model.site_energies_eV.{name}", "site energies that "
                                 "differ between regions cannot be combined with environments "
                                 "(an environment key does not know the region)",
                                 "give one site energy per species, or drop the environments"))
    parsed = _parse_table(catalog, geometry, problems)
    if problems:
        return problems
    model = section.model
    if model is not None:
        occupants = {VACANCY_TEXT, NO_SITE_TEXT, *catalog.species}
        seen_terms: dict[tuple[str, int], int] = {}
        for t, term in enumerate(model.terms):
            where = f"environments.model.terms[{t}]"
            if term.species not in catalog.species:
                problems.append((f"{where}.species", f"unknown species {term.species!r}",
                                 f"use one of {catalog.species}"))
                continue
            if term.hop_class >= geometry.envs.n_classes:
                problems.append((f"{where}.hop_class", f"hop class {term.hop_class}: the "
                                 f"lattice has {geometry.envs.n_classes}", None))
                continue
            if (term.species, term.hop_class) in seen_terms:
                problems.append((where, f"a second term for {term.species} in hop class "
                                 f"{term.hop_class}", "keep one term per species and class"))
            seen_terms[term.species, term.hop_class] = t
            n_orb = int(geometry.n_orbits[term.hop_class])
            if len(term.orbit_eV) not in (0, n_orb):
                problems.append((f"{where}.orbit_eV", f"{len(term.orbit_eV)} orbits given; hop "
                                 f"class {term.hop_class} has {n_orb}",
                                 f"give one mapping per orbit ({n_orb})"))
            for o, mapping in enumerate(term.orbit_eV):
                for name in mapping:
                    if name not in occupants:
                        problems.append((f"{where}.orbit_eV[{o}].{name}",
                                         f"unknown occupant {name!r}",
                                         f"use {', '.join(sorted(occupants))}"))
            if geometry.envs.reverse_class[term.hop_class] != term.hop_class:
                problems.append((f"{where}.hop_class", "the reverse of this hop class is another "
                                 "class; the model supports classes that are their own reverse",
                                 "list these environments in the table instead"))
    if problems:
        return problems
    pair = pair_energy_matrix(catalog)
    tol = em.detailed_balance_tolerance_eV if em else 1e-6
    index = {k: i for i, k in enumerate(parsed.keys)}
    n_species = len(catalog.species)
    terms = {(catalog.species.index(t.species) + 1, t.hop_class): t
             for t in (section.model.terms if section.model else [])}
    table = section.table
    for i, (s, c, key) in enumerate(parsed.keys):
        c_rev, key_rev = reverse_key(key, c, geometry.envs, n_species)
        j = index.get((s, c_rev, key_rev))
        if j == i or (j is not None and j < i):
            continue  # its own reverse, or a pair checked already
        fwd = table[i]
        d_e = pair_energy_change(parsed.codes[i], s, c, geometry, pair)
        if j is not None:
            rev_barrier, rev_prefactor, rev_where = (table[j].barrier_eV, table[j].prefactor_Hz,
                                                     f"environments.table[{j}]")
        elif (s, c_rev) in terms:
            term = terms[s, c_rev]
            codes = key_digits(key_rev, geometry.envs, n_species)
            rev_barrier = model_barrier(term, codes, c_rev, geometry, -d_e, catalog.species)
            rev_prefactor = term.prefactor_Hz
            rev_where = f"the model's term for {term.species} (its reverse)"
        else:
            reverse_text = key_text(catalog.species, s, c_rev,
                                    key_digits(key_rev, geometry.envs, n_species))
            problems.append((
                f"environments.table[{i}]", "its reverse (the same atom going back, the same "
                "environment) is neither in the table nor rated by the model, so detailed "
                "balance between them cannot hold", f"add {reverse_text!r} to the table, or a "
                f"model term for {catalog.species[s - 1]}"))
            continue
        if abs((fwd.barrier_eV - rev_barrier) - d_e) > tol:
            problems.append((
                f"environments.table[{i}].barrier_eV",
                f"detailed balance broken: environments.table[{i}] and its reverse "
                f"({rev_where}) differ by {fwd.barrier_eV - rev_barrier:.6g} eV, but the "
                f"energy model gives dE = {d_e:.6g} eV",
                "make E_fwd - E_rev equal the pair-energy change of the hop "
                "(energy_model.pair_interactions_eV)"))
        elif not math.isclose(fwd.prefactor_Hz, rev_prefactor, rel_tol=1e-9):
            problems.append((
                f"environments.table[{i}].prefactor_Hz",
                f"detailed balance broken: prefactor {fwd.prefactor_Hz:.6g} Hz, its reverse "
                f"({rev_where}) {rev_prefactor:.6g} Hz",
                "give a hop and its reverse the same prefactor"))
    return problems


@dataclass
class EnvironmentTables:
    """The kernel arrays of a catalog's environments at one temperature (see the kernels)."""

    geometry: EnvironmentGeometry
    table_start: np.ndarray
    table_key: np.ndarray
    table_rate_Hz: np.ndarray
    table_entry: np.ndarray  # sorted row -> index in catalog.environments.table
    model_on: np.ndarray
    model_kra_eV: np.ndarray
    model_site_eV: np.ndarray
    model_prefactor_Hz: np.ndarray
    codes: np.ndarray
    source_counts: np.ndarray
    log_species: np.ndarray
    log_model: bool
    log: np.ndarray
    log_n: np.ndarray
    raw_start: np.ndarray  # (groups + 1,) first raw key of each (species, class) group
    raw_key: np.ndarray  # raw keys of the entries' symmetry images, sorted within a group
    raw_row: np.ndarray  # table row of each raw key

    def kernel_tuple(self) -> tuple:
        """The ``env`` argument of the kernels.

        Positions: 0 on, 1 hop_class, 2 reach, 3 permutations, 4 key base, 5 none code,
        6 table_start, 7 table_key, 8 table_rate_Hz, 9-12 model on/K/J/prefactor, 13 codes
        scratch, 14-18 source counts and log (see run_events), 19 work list scratch
        (``collect_work``), 20-22 raw_start, raw_key, raw_row (:func:`raw_table`).
        """
        envs = self.geometry.envs
        return (True, envs.hop_class, envs.reach, envs.permutations,
                np.int64(key_base(self.model_on.shape[0] - 1)),
                np.int64(key_base(self.model_on.shape[0] - 1) - 1), self.table_start,
                self.table_key, self.table_rate_Hz, self.model_on, self.model_kra_eV,
                self.model_site_eV, self.model_prefactor_Hz, self.codes, self.source_counts,
                self.log_species, self.log_model, self.log, self.log_n,
                np.zeros((REFILL_CAPACITY, 3), np.int64), self.raw_start, self.raw_key,
                self.raw_row)


def resolve_environments(catalog: Catalog, temperature_K: float,
                         file: str | None = None) -> EnvironmentTables | None:
    """Build the kernel tables of ``catalog.environments`` at ``temperature_K`` (None without)."""
    if catalog.environments is None:
        return None
    problems = environment_problems(catalog)
    if problems:
        where, message, hint = problems[0]
        raise CatalogError(message, file=file, field=where, hint=hint)
    geometry = environment_geometry(catalog_lattice(catalog))
    envs = geometry.envs
    n_species = len(catalog.species)
    base = key_base(n_species)
    n_classes, n_env = envs.n_classes, envs.n_env
    kT = K_B_EV_PER_K * temperature_K
    parsed = _parse_table(catalog, geometry, [])
    table = catalog.environments.table
    rows = sorted(range(len(parsed.keys)),
                  key=lambda i: (parsed.keys[i][0] * n_classes + parsed.keys[i][1],
                                 parsed.keys[i][2]))
    groups = np.array([parsed.keys[i][0] * n_classes + parsed.keys[i][1] for i in rows],
                      np.int64)
    table_start = np.searchsorted(groups, np.arange((n_species + 1) * n_classes + 1)).astype(
        np.int64)
    table_key = np.array([parsed.keys[i][2] for i in rows], np.int64)
    table_rate = np.array([table[i].prefactor_Hz * math.exp(-table[i].barrier_eV / kT)
                           for i in rows], float)
    model_on = np.zeros((n_species + 1, n_classes), np.bool_)
    model_kra = np.zeros((n_species + 1, n_classes))
    model_site = np.zeros((n_species + 1, n_classes, n_env, base))
    model_pref = np.zeros((n_species + 1, n_classes))
    code_of = {VACANCY_TEXT: 0, NO_SITE_TEXT: base - 1}
    code_of.update({name: i for i, name in enumerate(catalog.species, start=1)})
    model = catalog.environments.model
    for term in (model.terms if model else []):
        s, c = catalog.species.index(term.species) + 1, term.hop_class
        model_on[s, c] = True
        model_kra[s, c] = term.kra_eV
        model_pref[s, c] = term.prefactor_Hz
        for e in range(int(envs.n_env_of_class[c])):
            if not term.orbit_eV:
                break
            for name, value in term.orbit_eV[int(geometry.orbit_index[c, e])].items():
                model_site[s, c, e, code_of[name]] = value
    raw = raw_table(envs, n_species, table_start, table_key)
    return EnvironmentTables(
        geometry, table_start, table_key if table_key.size else np.zeros(0, np.int64),
        table_rate if table_rate.size else np.zeros(0), np.array(rows, np.int64), model_on,
        model_kra, model_site, model_pref, np.zeros(n_env, np.int64), np.zeros(3, np.int64),
        np.zeros(n_species + 1, np.bool_), False, np.zeros((LOG_CAPACITY, 6), np.int64),
        np.zeros(1, np.int64), *raw)


def raw_table(envs: HopEnvironments, n_species: int, table_start: np.ndarray,
              table_key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(raw_start, raw_key, raw_row)``: every arrangement of every table entry's environment.

    An environment is in the table iff its codes, read in its own order as the *raw key*
    ``sum_e code_e * base**(E-1-e)``, are those of a symmetry image of an entry: the images are
    the entry's canonical codes permuted by its class's stabiliser. The kernel looks the raw key
    up in its (species, class) group (sorted) and needs no canonical key.
    """
    base = key_base(n_species)
    n_classes = envs.n_classes
    weights = [base ** (envs.n_env - 1 - e) for e in range(envs.n_env)]
    starts, keys, rows = [0], [], []
    for g in range(table_start.size - 1):
        c = g % n_classes
        images: dict[int, int] = {}
        for row in range(int(table_start[g]), int(table_start[g + 1])):
            digits = key_digits(int(table_key[row]), envs, n_species)
            for perm in envs.permutations[c, :int(envs.group_order[c])]:
                image = digits[perm]
                if environment_key(image, c, envs, n_species) != table_key[row]:
                    raise CatalogError("a symmetry image of a table entry has another key "
                                       "(internal error)", field="environments.table")
                images[sum(int(d) * w for d, w in zip(image.tolist(), weights, strict=True))] = row
        for raw in sorted(images):
            keys.append(raw)
            rows.append(images[raw])
        starts.append(len(keys))
    return (np.array(starts, np.int64), np.array(keys, np.int64), np.array(rows, np.int64))


def no_environments(n_species: int) -> tuple:
    """The ``env`` tuple of a catalog without environments (typed like a real one)."""
    return (False, np.zeros((1, 1), np.int64), np.zeros((1, 1, 1), np.int64),
            np.zeros((1, 1, 1), np.int64), np.int64(2), np.int64(1), np.zeros(2, np.int64),
            np.zeros(0, np.int64), np.zeros(0), np.zeros((n_species + 1, 1), np.bool_),
            np.zeros((n_species + 1, 1)), np.zeros((n_species + 1, 1, 1, 1)),
            np.zeros((n_species + 1, 1)), np.zeros(1, np.int64), np.zeros(3, np.int64),
            np.zeros(n_species + 1, np.bool_), False, np.zeros((1, 6), np.int64),
            np.zeros(1, np.int64), np.zeros((REFILL_CAPACITY, 3), np.int64), np.zeros(2, np.int64),
            np.zeros(0, np.int64), np.zeros(0, np.int64))
