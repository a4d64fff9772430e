"""The event catalog: the versioned contract between the DFT workflows and the kMC engine.

A catalog is one JSON document (see ``docs/reference/catalog-schema.md`` and
:func:`catalog_json_schema`) with

- ``schema`` / ``schema_version``: ``"kmcflow.catalog"`` and :data:`SCHEMA_VERSION`;
- ``units``: fixed to eV, Hz, Angstrom and K; no other units appear inside;
- ``lattice``: the cation sublattice (a named preset or Bravais vectors with a basis);
- ``species``: cation species names; the engine codes them 1..S, 0 is the vacancy;
- ``hosts``: the two host phases of the diffusion couple and the species each starts with;
- ``interface``: boundary along z (periodic: two interfaces; closed: one), the fraction of
  layers that belong to the first host, and an optional interface band;
- ``conditions``: default run conditions (temperature, vacancy fraction, cells, length, seed);
- ``rate_model``: ``table`` (forward barrier per event key) or ``kra``
  (E_a = E_KRA + dE/2 with the site/pair ``energy_model``);
- ``events``: one entry per distinct vacancy hop, keyed by species x initial region x final
  region, with barrier (or E_KRA), prefactor, optional uncertainty and provenance;
- ``missing_event_policy``: what to do with a hop the lattice can produce but no event covers;
- ``environments`` (schema version 2): barriers resolved by the local environment of a hop
  (the occupation of the first neighbour shells of both its sites, see
  :mod:`kmcflow.kmc.environment`): an exact ``table`` of keys and a fitted ``model`` for keys
  the table lacks. The engine looks up the table first, then the model, then the events.

Rates are never stored: they are computed from (E_a, nu, T) with k_B = 8.617333262e-5 eV/K.

Regions. The region of a site is its host phase, fixed when the lattice is built (the anion
framework does not move, so a site born on the A side stays an A-host site). With a non-zero
``interface.band_thickness_A``, sites of host ``H`` within that distance of an interface plane
belong to region ``H:interface``. An event keyed by the plain host name covers the band sites of
that host too, unless a more specific ``H:interface`` event exists.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kmcflow.atomic_io import write_text
from kmcflow.errors import CatalogError
from kmcflow.kmc.constants import K_B_EV_PER_K as K_B_EV_PER_K  # re-exported
from kmcflow.kmc.environment_rates import environment_problems

SCHEMA_NAME = "kmcflow.catalog"
SCHEMA_VERSION = 2
SUPPORTED_SCHEMA_VERSIONS = (1, 2)
"""Version 2 adds the optional ``environments`` section; a version 1 file loads unchanged."""
INTERFACE_SUFFIX = ":interface"

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


MAX_PREFACTOR_HZ = 1e18
"""Above this a prefactor is no vibration (1e11-1e14 Hz) and the summed rates can overflow."""


class _Model(BaseModel):
    # JSON may carry NaN and Infinity: no number of a catalog may be either
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Units(_Model):
    """The only units a catalog may use."""

    energy: Literal["eV"] = "eV"
    prefactor: Literal["Hz"] = "Hz"
    length: Literal["Angstrom"] = "Angstrom"
    temperature: Literal["K"] = "K"


class LatticeSpec(_Model):
    """The kMC lattice: a named preset with its lattice constant, or vectors and a basis.

    Presets (``a_A`` is the conventional lattice constant; 2D presets lie in the x-z plane and
    need ``ny = 1``): ``square``, ``triangular`` (a = nearest-neighbour distance),
    ``honeycomb`` (a = Bravais constant, nn = a/sqrt(3)), ``sc``, ``bcc``, ``fcc``, ``diamond``.
    A general lattice gives ``vectors_A`` (rows a1, a2, a3; a1 and a2 in the x-y plane, z along
    a3) and ``basis_frac``; neighbours are all sites within ``nn_tolerance`` of the shortest
    distance.
    """

    preset: Literal["square", "triangular", "honeycomb", "sc", "bcc", "fcc", "diamond"] | None = (
        None
    )
    a_A: PositiveFloat | None = None
    vectors_A: list[list[FiniteFloat]] | None = None
    basis_frac: list[list[FiniteFloat]] | None = None
    dimension: Literal[2, 3] = 3
    nn_tolerance: Annotated[float, Field(gt=0, lt=0.5)] = 0.05


class Host(_Model):
    """One host phase of the couple and the species its sites hold at t = 0."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.+-]+$")]
    initial_species: str


class InterfaceSpec(_Model):
    """Where the two hosts meet along z."""

    boundary_z: Literal["periodic", "closed"] = "periodic"
    first_host_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.5
    band_thickness_A: NonNegativeFloat = 0.0


class Conditions(_Model):
    """Default run conditions; command-line flags override each of them."""

    temperature_K: PositiveFloat = 300.0
    vacancy_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.01
    cells: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=3, max_length=3)] = [
        8,
        8,
        16,
    ]
    steps: Annotated[int, Field(ge=1)] | None = None
    time_s: PositiveFloat | None = None
    samples: Annotated[int, Field(ge=2)] = 20
    seed: Annotated[int, Field(ge=0)] = 0


class Uncertainty(_Model):
    """Optional one-sigma uncertainties of an event's numbers."""

    barrier_eV: NonNegativeFloat | None = None
    kra_eV: NonNegativeFloat | None = None
    prefactor_Hz: NonNegativeFloat | None = None


class Provenance(_Model):
    """Where an event's numbers come from. ``source`` is required; the rest as known."""

    model_config = ConfigDict(extra="allow", frozen=True)
    source: Annotated[str, Field(min_length=1)]
    calculator: str | None = None
    functional: str | None = None
    U_eV: dict[str, float] | None = None
    kpoints: str | list[int] | None = None
    neb_images: int | None = None
    converged: bool | None = None
    job_id: str | None = None
    notes: str | None = None


def event_key(species: str, initial_region: str, final_region: str) -> str:
    """Return the text form of an event key, ``"species/initial_region->final_region"``.

    Host names cannot contain ``/`` or ``>``, so the text splits back unambiguously; the
    structure tools label every enumerated hop with it (see :func:`parse_event_key`).
    """
    return f"{species}/{initial_region}->{final_region}"


def parse_event_key(text: str) -> tuple[str, str, str]:
    """Split an event key text into (species, initial region, final region)."""
    species, sep, regions = text.rpartition("/")
    initial, arrow, final = regions.partition("->")
    if not (sep and arrow and species and initial and final):
        raise CatalogError(f"bad event key {text!r}", field="event_key",
                           hint="write species/initial_region->final_region, e.g. Cu/Cu->Ni")
    return species, initial, final


def region_name(host: str, distance_A: float | None, band_thickness_A: float) -> str:
    """Return the region of a site of ``host`` at ``distance_A`` from the nearest interface.

    The rule the engine applies to its lattice sites: within ``band_thickness_A`` (when it
    is positive) the region is ``host:interface``, else the host itself. A bulk site has no
    distance (None) and is always in its host's region.
    """
    if distance_A is not None and band_thickness_A > 0 and abs(distance_A) <= (
            band_thickness_A + 1e-9):
        return host + INTERFACE_SUFFIX
    return host


class Event(_Model):
    """One distinct vacancy hop: ``species`` moves from ``initial_region`` to ``final_region``."""

    id: Annotated[str, Field(min_length=1)]
    mechanism: Literal["vacancy_hop"] = "vacancy_hop"
    species: str
    initial_region: str
    final_region: str
    barrier_eV: NonNegativeFloat | None = None
    kra_eV: NonNegativeFloat | None = None
    reaction_energy_eV: FiniteFloat | None = None
    prefactor_Hz: PositiveFloat
    uncertainty: Uncertainty | None = None
    provenance: Provenance

    @property
    def key(self) -> str:
        """The event key text (see :func:`event_key`)."""
        return event_key(self.species, self.initial_region, self.final_region)


class EnergyModel(_Model):
    """Site energies per species and region, and first-shell pair interactions.

    ``pair_interactions_eV`` maps ``"A-B"`` (order irrelevant) to the energy of one A-B
    nearest-neighbour bond; absent pairs are 0. Only the first shell is supported.
    """

    site_energies_eV: dict[str, dict[str, FiniteFloat]] = {}
    pair_interactions_eV: dict[str, FiniteFloat] = {}
    detailed_balance_tolerance_eV: PositiveFloat = 1e-6


class MissingEventPolicy(_Model):
    """What the engine does with a hop that the lattice produces and no event covers."""

    policy: Literal["error", "fallback"] = "error"
    barrier_eV: NonNegativeFloat | None = None
    prefactor_Hz: PositiveFloat | None = None


class EnvironmentEntry(_Model):
    """One environment-resolved hop: its key text and the forward barrier and prefactor.

    ``key`` is ``"species|cN|site,site,..."`` (:func:`kmcflow.kmc.environment.key_text`): the
    moving species, the hop class and the occupation of every environment site in the class's
    order (``V`` a vacancy, ``-`` no site). Any symmetry-equivalent order is accepted; the
    engine canonicalises it.
    """

    key: Annotated[str, Field(min_length=1)]
    barrier_eV: NonNegativeFloat
    prefactor_Hz: PositiveFloat
    uncertainty: Uncertainty | None = None
    provenance: Provenance


class EnvironmentModelTerm(_Model):
    """The barrier model of one moving species and hop class.

    E_KRA = ``kra_eV`` + sum over environment sites e of ``orbit_eV[orbit(e)][occupant(e)]``,
    with the orbits of the class's environment under its symmetry and the reversal of the hop
    (:attr:`kmcflow.kmc.environment.HopEnvironments.orbits_with_reversal`, numbered in the
    order of their first site); an occupant not named contributes 0. E_a = max(E_KRA + dE/2,
    dE, 0) with dE from the ``energy_model``, so the model obeys detailed balance.
    """

    species: str
    hop_class: Annotated[int, Field(ge=0)] = 0
    kra_eV: FiniteFloat
    prefactor_Hz: PositiveFloat
    orbit_eV: list[dict[str, FiniteFloat]] = []


class EnvironmentFit(_Model):
    """How well the model reproduces computed barriers (eV)."""

    n_train: Annotated[int, Field(ge=0)]
    rmse_eV: NonNegativeFloat
    cv_rmse_eV: NonNegativeFloat | None = None
    max_error_eV: NonNegativeFloat | None = None
    notes: str | None = None


class EnvironmentModel(_Model):
    """A local cluster expansion (point terms) of the kinetically resolved barrier."""

    kind: Literal["kra_orbit_expansion"] = "kra_orbit_expansion"
    terms: Annotated[list[EnvironmentModelTerm], Field(min_length=1)]
    fit: EnvironmentFit | None = None


class Environments(_Model):
    """Environment-resolved barriers: the exact table, then the model, then the events."""

    shell: Literal["first"] = "first"
    table: list[EnvironmentEntry] = []
    model: EnvironmentModel | None = None


class Catalog(_Model):
    """A whole event catalog (see the module docstring for the meaning of each section)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              allow_inf_nan=False)
    schema_name: Literal["kmcflow.catalog"] = Field(SCHEMA_NAME, alias="schema")
    schema_version: int
    name: Annotated[str, Field(min_length=1)]
    description: str = ""
    units: Units
    lattice: LatticeSpec
    species: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    hosts: Annotated[list[Host], Field(min_length=2, max_length=2)]
    interface: InterfaceSpec = InterfaceSpec()
    conditions: Conditions = Conditions()
    rate_model: Literal["table", "kra"]
    energy_model: EnergyModel | None = None
    missing_event_policy: MissingEventPolicy = MissingEventPolicy()
    events: Annotated[list[Event], Field(min_length=1)]
    environments: Environments | None = None
    notes: list[str] = []

    @property
    def region_names(self) -> list[str]:
        """Region names in engine order: hosts first, then their interface bands (if any)."""
        names = [h.name for h in self.hosts]
        if self.interface.band_thickness_A > 0:
            names += [h.name + INTERFACE_SUFFIX for h in self.hosts]
        return names

    def host_of_region(self, region: str) -> str:
        """Return the host name a region belongs to."""
        return region.removesuffix(INTERFACE_SUFFIX)

    def to_json_dict(self) -> dict[str, Any]:
        """Return the catalog as a plain JSON-ready dictionary (``schema`` key included)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Problem(BaseModel):
    """One problem found in a catalog: an ``error`` stops loading, a ``warning`` does not."""

    severity: Literal["error", "warning"]
    field: str
    message: str
    hint: str | None = None

    def one_line(self, file: str | None = None) -> str:
        """Format as ``file: field: message (fix: hint)``."""
        return CatalogError(self.message, file=file, field=self.field, hint=self.hint).one_line()


def _loc_to_field(loc: tuple[Any, ...], data: Any) -> str:
    """Turn a pydantic error location into ``events[2] (id X).barrier_eV`` style text."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            label = ""
            if isinstance(node, list) and part < len(node) and isinstance(node[part], dict):
                ident = node[part].get("id") or node[part].get("name")
                label = f" (id {ident})" if ident else ""
            out += label
            node = node[part] if isinstance(node, list) and part < len(node) else None
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def _event_field(catalog: Catalog, index: int, name: str | None = None) -> str:
    ident = catalog.events[index].id
    base = f"events[{index}] (id {ident})"
    return f"{base}.{name}" if name else base


def semantic_problems(catalog: Catalog) -> list[Problem]:
    """Check everything the schema alone cannot: names, pairs, rates, energy model.

    Detailed balance of the rates the lattice actually produces is checked again, on the
    resolved tables, by :func:`kmcflow.kmc.rates.resolve_rates`.
    """
    problems: list[Problem] = []

    def err(field: str, message: str, hint: str | None = None) -> None:
        problems.append(Problem(severity="error", field=field, message=message, hint=hint))

    def warn(field: str, message: str, hint: str | None = None) -> None:
        problems.append(Problem(severity="warning", field=field, message=message, hint=hint))

    species = list(catalog.species)
    if len(set(species)) != len(species):
        err("species", f"species names repeat: {species}", "give each species once")
    if catalog.hosts[0].name == catalog.hosts[1].name:
        err("hosts", "the two hosts have the same name", "name the hosts differently")
    for i, host in enumerate(catalog.hosts):
        if host.initial_species not in species:
            err(
                f"hosts[{i}].initial_species",
                f"unknown species {host.initial_species!r}",
                f"use one of {species}",
            )
    lat = catalog.lattice
    if (lat.preset is None) == (lat.vectors_A is None):
        err("lattice", "give either 'preset' (with 'a_A') or 'vectors_A' with 'basis_frac'")
    elif lat.preset is not None and lat.a_A is None:
        err("lattice.a_A", "a preset lattice needs its lattice constant a_A (Angstrom)")
    elif lat.vectors_A is not None and not lat.basis_frac:
        err("lattice.basis_frac", "a general lattice needs basis_frac (at least [[0, 0, 0]])")

    regions = catalog.region_names
    if catalog.rate_model == "kra" and catalog.energy_model is None:
        err("energy_model", "rate_model 'kra' needs an energy_model", "add site_energies_eV")
    seen: dict[tuple[str, str, str], int] = {}
    for i, ev in enumerate(catalog.events):
        if ev.species not in species:
            err(_event_field(catalog, i, "species"), f"unknown species {ev.species!r}",
                f"use one of {species}")
        for name in ("initial_region", "final_region"):
            value = getattr(ev, name)
            if value not in regions:
                err(_event_field(catalog, i, name), f"unknown region {value!r}",
                    f"use one of {regions}")
        key = (ev.species, ev.initial_region, ev.final_region)
        if key in seen:
            err(_event_field(catalog, i), f"duplicate event key {key}; first given by "
                f"{_event_field(catalog, seen[key])}", "keep one event per key")
        seen[key] = i
        if catalog.rate_model == "table":
            if ev.barrier_eV is None:
                err(_event_field(catalog, i, "barrier_eV"), "missing barrier_eV (table model)")
            if ev.kra_eV is not None:
                err(_event_field(catalog, i, "kra_eV"), "kra_eV given but rate_model is 'table'",
                    "use barrier_eV or set rate_model to 'kra'")
        else:
            if ev.kra_eV is None:
                err(_event_field(catalog, i, "kra_eV"), "missing kra_eV (kra model)")
            if ev.barrier_eV is not None:
                err(_event_field(catalog, i, "barrier_eV"), "barrier_eV given but rate_model is "
                    "'kra'", "give kra_eV; the barrier follows from E_KRA + dE/2")
        if ev.prefactor_Hz > MAX_PREFACTOR_HZ:
            err(_event_field(catalog, i, "prefactor_Hz"), f"prefactor {ev.prefactor_Hz:.3g} Hz "
                f"is no vibration frequency (above {MAX_PREFACTOR_HZ:.0e} Hz the rates can "
                "overflow)", "check the units (Hz = 1/s); typical values are 1e11-1e14 Hz")
        elif not 1e11 <= ev.prefactor_Hz <= 1e14:
            warn(_event_field(catalog, i, "prefactor_Hz"), f"prefactor {ev.prefactor_Hz:.3g} Hz "
                 "is outside the usual 1e11-1e14 Hz", "check the units (Hz = 1/s)")

    em = catalog.energy_model
    if em is not None:
        for sp, per_region in em.site_energies_eV.items():
            if sp not in species:
                err(f"energy_model.site_energies_eV.{sp}", f"unknown species {sp!r}")
            for reg in per_region:
                if reg not in regions and reg not in (h.name for h in catalog.hosts):
                    err(f"energy_model.site_energies_eV.{sp}.{reg}", f"unknown region {reg!r}",
                        f"use one of {regions}")
        for pair in em.pair_interactions_eV:
            parts = pair.split("-")
            if len(parts) != 2 or any(p not in species for p in parts):
                err(f"energy_model.pair_interactions_eV.{pair}", f"bad pair key {pair!r}",
                    f"write 'A-B' with A, B in {species}")
        if (em.pair_interactions_eV and catalog.rate_model == "table"
                and catalog.environments is None):
            err("energy_model.pair_interactions_eV", "pair interactions need rate_model 'kra'",
                "a table model cannot make barriers depend on the local environment")

    mp = catalog.missing_event_policy
    if mp.prefactor_Hz is not None and mp.prefactor_Hz > MAX_PREFACTOR_HZ:
        err("missing_event_policy.prefactor_Hz", f"prefactor {mp.prefactor_Hz:.3g} Hz is no "
            "vibration frequency", "typical values are 1e11-1e14 Hz")
    if mp.policy == "fallback" and (mp.barrier_eV is None or mp.prefactor_Hz is None):
        err("missing_event_policy", "policy 'fallback' needs barrier_eV and prefactor_Hz")

    if catalog.environments is not None and not any(p.severity == "error" for p in problems):
        for field, message, hint in environment_problems(catalog):
            err(field, message, hint)

    if catalog.rate_model == "kra" and not any(p.severity == "error" for p in problems):
        for i, ev in enumerate(catalog.events):
            rev = seen.get((ev.species, ev.final_region, ev.initial_region))
            if rev is not None and rev > i:
                other = catalog.events[rev]
                if not math.isclose(ev.kra_eV or 0.0, other.kra_eV or 0.0, abs_tol=1e-9):
                    err(_event_field(catalog, rev, "kra_eV"), f"E_KRA {other.kra_eV} differs from "
                        f"its reverse {_event_field(catalog, i)} ({ev.kra_eV}); the KRA is shared "
                        "by a hop and its reverse", "give one value or list the hop once")
    return problems


def validate_catalog_data(
    data: Any, file: str | os.PathLike[str] | None = None
) -> tuple[Catalog | None, list[Problem]]:
    """Validate parsed JSON; return the catalog (or None) and every problem found."""
    if not isinstance(data, dict):
        return None, [Problem(severity="error", field="(top level)",
                              message="the catalog must be a JSON object")]
    version = data.get("schema_version")
    if data.get("schema") not in (None, SCHEMA_NAME):
        return None, [Problem(severity="error", field="schema",
                              message=f"not a kmcflow catalog (schema {data.get('schema')!r})",
                              hint=f"set schema to {SCHEMA_NAME!r}")]
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        return None, [Problem(severity="error", field="schema_version",
                              message=f"unsupported schema_version {version!r}",
                              hint="this kmcflow reads versions "
                              f"{', '.join(map(str, SUPPORTED_SCHEMA_VERSIONS))}")]
    if version == 1 and isinstance(data.get("environments"), dict):
        return None, [Problem(severity="error", field="environments",
                              message="an environments section needs schema_version 2",
                              hint="set schema_version to 2")]
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(severity="error", field=_loc_to_field(tuple(e["loc"]), data),
                    message=e["msg"].replace("\n", " "))
            for e in exc.errors()
        ]
        return None, problems
    return catalog, semantic_problems(catalog)


def _catalog_json(path: str | os.PathLike[str]) -> Any:
    """The parsed JSON of a catalog file (every refusal of :mod:`kmcflow.readers`)."""
    from kmcflow.readers import read_json

    if not isinstance(path, str | os.PathLike):
        raise CatalogError(f"a catalog file must be a path, got a {type(path).__name__}",
                           field="path", hint="e.g. load_catalog('catalog.json'); a parsed "
                           "mapping goes to validate_catalog or Catalog.model_validate")
    return read_json(Path(path), error=CatalogError, what="catalog file")


def read_catalog(path: str | os.PathLike[str]) -> tuple[Catalog | None, list[Problem]]:
    """Read and validate a catalog file; return it (or None) with every problem found."""
    return validate_catalog_data(_catalog_json(path), Path(path))


def validate_catalog(source: Catalog | dict[str, Any] | str | os.PathLike[str]) -> list[Problem]:
    """Every problem of a catalog: a :class:`Catalog`, its parsed JSON, or a file.

    An empty list means the catalog is fit for kMC; a problem of severity ``"warning"`` does
    not stop a run, one of severity ``"error"`` does.
    """
    if isinstance(source, Catalog):
        return validate_catalog_data(source.to_json_dict())[1]
    if isinstance(source, dict):
        return validate_catalog_data(source)[1]
    return read_catalog(source)[1]


def catalog_from_data(data: Any, file: str | os.PathLike[str] | None = None) -> Catalog:
    """The :class:`Catalog` of parsed JSON; :class:`CatalogError` on its first error.

    Warnings do not stop it (:func:`validate_catalog` lists them). ``file`` names where the
    data came from in the error.
    """
    catalog, problems = validate_catalog_data(data, file)
    errors = [p for p in problems if p.severity == "error"]
    if catalog is None or errors:
        first = (errors or problems)[0]
        raise CatalogError(first.message, file=None if file is None else str(file),
                           field=first.field, hint=first.hint)
    return catalog


def load_catalog(path: str | os.PathLike[str]) -> Catalog:
    """Read a catalog and raise :class:`CatalogError` on its first error-level problem."""
    return catalog_from_data(_catalog_json(path), path)


def write_catalog(catalog: Catalog, path: str | os.PathLike[str]) -> None:
    """Write a catalog as JSON, atomically (validated again before writing)."""
    data = catalog.to_json_dict()
    problems = [p for p in validate_catalog_data(data)[1] if p.severity == "error"]
    if problems:
        raise CatalogError(problems[0].message, file=str(path), field=problems[0].field,
                           hint=problems[0].hint)
    write_text(path, json.dumps(data, indent=2) + "\n")


def catalog_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of the catalog format (for editors and other tools)."""
    schema = Catalog.model_json_schema(by_alias=True)
    schema["$id"] = f"https://kmcflow.invalid/schemas/{SCHEMA_NAME}/{SCHEMA_VERSION}"
    schema["title"] = f"{SCHEMA_NAME} v{SCHEMA_VERSION}"
    return schema
