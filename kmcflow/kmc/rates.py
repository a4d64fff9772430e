"""Turn a catalog into the dense rate tables the kMC kernels read, and check them.

The engine codes species 1..S (0 is the vacancy) and regions 0..R-1 in the order of
:attr:`Catalog.region_names`. For every (species, initial region, final region) that the
lattice can produce, :func:`resolve_rates` finds the event that covers it (the exact key first,
then the plain host names in place of interface-band names), or applies the catalog's
``missing_event_policy``; it then checks detailed balance on what will actually run.

Rate models
-----------
``table``
    rate = nu * exp(-E_a / k_B T) with E_a looked up per key. A forward/reverse pair must
    satisfy E_fwd - E_rev = dE with dE = eps_s(final) - eps_s(initial) from the energy model's
    site energies when given, otherwise dE must be consistent around every loop of regions.
``kra``
    E_a = max(E_KRA + dE/2, dE, 0), where dE is the energy change of the hop (site energies
    plus first-shell pair interactions). The clamp keeps E_fwd - E_rev = dE exactly, so the
    model obeys detailed balance by construction.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from kmcflow.errors import CatalogError
from kmcflow.kmc.catalog import K_B_EV_PER_K, Catalog
from kmcflow.kmc.environment_rates import pair_energy_matrix

MISSING = -1
FALLBACK = -2


@dataclass
class ResolvedRates:
    """Dense per-(species, region, region) tables at one temperature.

    Attributes
    ----------
    rate_Hz
        (S+1, R, R) hop rate of species s from region ri into a vacancy in region rf, for the
        site-energy part of the model (the full rate when ``use_pairs`` is False).
    barrier_eV
        (S+1, R, R) the barrier behind ``rate_Hz``.
    event_index
        (S+1, R, R) index into ``catalog.events``, or MISSING / FALLBACK.
    kra_eV, prefactor_Hz, site_energy_eV, pair_eV
        The KRA ingredients (used by the kernels when ``use_pairs`` is True).

    """

    temperature_K: float
    kT_eV: float
    species: list[str]
    regions: list[str]
    rate_Hz: np.ndarray
    barrier_eV: np.ndarray
    prefactor_Hz: np.ndarray
    event_index: np.ndarray
    kra_eV: np.ndarray
    site_energy_eV: np.ndarray
    pair_eV: np.ndarray
    use_pairs: bool
    rate_model: str


def _site_energies(catalog: Catalog) -> np.ndarray:
    regions = catalog.region_names
    out = np.zeros((len(catalog.species) + 1, len(regions)))
    em = catalog.energy_model
    if em is None:
        return out
    for s, name in enumerate(catalog.species, start=1):
        table = em.site_energies_eV.get(name, {})
        for r, reg in enumerate(regions):
            out[s, r] = table.get(reg, table.get(catalog.host_of_region(reg), 0.0))
    return out


def _lookup(catalog: Catalog, keys: dict, species: str, ri: str, rf: str) -> int | None:
    hi, hf = catalog.host_of_region(ri), catalog.host_of_region(rf)
    for cand in ((ri, rf), (hi, rf), (ri, hf), (hi, hf)):
        idx = keys.get((species, *cand))
        if idx is not None:
            return idx
    return None


def resolve_rates(
    catalog: Catalog,
    temperature_K: float,
    produced_pairs: set[tuple[int, int]] | None = None,
    file: str | None = None,
) -> ResolvedRates:
    """Build the rate tables at ``temperature_K`` and check them.

    Parameters
    ----------
    catalog
        A validated catalog.
    temperature_K
        Temperature in K (> 0).
    produced_pairs
        (initial region, final region) pairs that neighbouring sites of the lattice form; the
        tables must cover each of them for every species. None means all pairs.
    file
        The catalog's file name, for error messages.

    """
    if not (temperature_K > 0 and math.isfinite(temperature_K)):
        raise CatalogError(f"temperature must be a positive number of K, got {temperature_K}",
                           file=file, field="temperature_K")
    regions = catalog.region_names
    species = list(catalog.species)
    n_s, n_r = len(species) + 1, len(regions)
    if produced_pairs is None:
        produced_pairs = {(a, b) for a in range(n_r) for b in range(n_r)}
    kT = K_B_EV_PER_K * temperature_K
    keys = {(e.species, e.initial_region, e.final_region): i for i, e in enumerate(catalog.events)}
    site = _site_energies(catalog)
    pair = pair_energy_matrix(catalog)
    event_index = np.full((n_s, n_r, n_r), MISSING, np.int64)
    prefactor = np.zeros((n_s, n_r, n_r))
    base = np.full((n_s, n_r, n_r), np.nan)  # barrier (table) or E_KRA (kra)
    policy = catalog.missing_event_policy
    for s, name in enumerate(species, start=1):
        for ri, rf in sorted(produced_pairs):
            idx = _lookup(catalog, keys, name, regions[ri], regions[rf])
            if idx is None:
                if policy.policy == "fallback":
                    event_index[s, ri, rf] = FALLBACK
                    base[s, ri, rf] = policy.barrier_eV
                    prefactor[s, ri, rf] = policy.prefactor_Hz
                    continue
                raise CatalogError(
                    f"the lattice produces a {name} hop from region {regions[ri]!r} to "
                    f"{regions[rf]!r} but no event covers it", file=file, field="events",
                    hint=f"add an event with species {name!r}, initial_region {regions[ri]!r}, "
                    f"final_region {regions[rf]!r}, or set missing_event_policy to 'fallback'")
            ev = catalog.events[idx]
            event_index[s, ri, rf] = idx
            base[s, ri, rf] = ev.barrier_eV if catalog.rate_model == "table" else ev.kra_eV
            prefactor[s, ri, rf] = ev.prefactor_Hz
    # pair bonds enter the region events' rates only in the KRA model; a table catalog with
    # environments uses them for its environment model and its checks, its events are barriers
    use_pairs = catalog.rate_model == "kra" and bool(np.any(pair != 0))
    if catalog.rate_model == "table":
        barrier = base.copy()
        _check_table_balance(catalog, barrier, site, produced_pairs, file)
    else:
        _check_kra_symmetry(catalog, base, produced_pairs, file)
        d_e = site[:, None, :] - site[:, :, None]
        barrier = np.maximum(np.maximum(base + 0.5 * d_e, d_e), 0.0)
    with np.errstate(invalid="ignore"):
        rate = np.where(np.isnan(barrier), 0.0, prefactor * np.exp(-barrier / kT))
    return ResolvedRates(float(temperature_K), kT, species, regions, rate, barrier, prefactor,
                         event_index, np.nan_to_num(base), site, pair, use_pairs,
                         catalog.rate_model)


def _describe(catalog: Catalog, idx: int) -> str:
    if idx == FALLBACK:
        return "missing_event_policy (fallback)"
    return f"events[{idx}] (id {catalog.events[idx].id})"


def _check_table_balance(
    catalog: Catalog,
    barrier: np.ndarray,
    site: np.ndarray,
    pairs: set[tuple[int, int]],
    file: str | None,
) -> None:
    """Check E_fwd - E_rev against site energies, or for loop consistency without them."""
    em = catalog.energy_model
    tol = em.detailed_balance_tolerance_eV if em else 1e-6
    regions = catalog.region_names
    keys = {(e.species, e.initial_region, e.final_region): i for i, e in enumerate(catalog.events)}
    for s, name in enumerate(catalog.species, start=1):
        has_sites = em is not None and name in em.site_energies_eV
        potential: dict[int, float] = {}
        edges = [(a, b) for a, b in pairs if a != b and (b, a) in pairs]
        adjacency: dict[int, list[int]] = {}
        for a, b in edges:
            adjacency.setdefault(a, []).append(b)
        for start in sorted(adjacency):
            if start in potential:
                continue
            potential[start] = 0.0
            queue = deque([start])
            while queue:
                a = queue.popleft()
                for b in adjacency[a]:
                    d_e = barrier[s, a, b] - barrier[s, b, a]
                    expected = site[s, b] - site[s, a] if has_sites else None
                    if b not in potential:
                        potential[b] = potential[a] + d_e
                        queue.append(b)
                    if expected is None:
                        expected = potential[b] - potential[a]
                    if abs(d_e - expected) > tol:
                        idx = _lookup(catalog, keys, name, regions[a], regions[b])
                        rev = _lookup(catalog, keys, name, regions[b], regions[a])
                        where = _describe(catalog, -2 if idx is None else idx)
                        other = _describe(catalog, -2 if rev is None else rev)
                        basis = ("site energies give" if has_sites
                                 else "a loop of other hops gives")
                        raise CatalogError(
                            f"detailed balance broken for {name} {regions[a]} -> {regions[b]}: "
                            f"E_fwd - E_rev = {d_e:.6g} eV but {basis} dE = {expected:.6g} eV "
                            f"(reverse: {other})", file=file, field=f"{where}.barrier_eV",
                            hint="make E_fwd - E_rev equal the site-energy difference "
                            "(energy_model.site_energies_eV)")


def _check_kra_symmetry(
    catalog: Catalog, kra: np.ndarray, pairs: set[tuple[int, int]], file: str | None
) -> None:
    regions = catalog.region_names
    for s, name in enumerate(catalog.species, start=1):
        for a, b in pairs:
            if (b, a) in pairs and not math.isclose(kra[s, a, b], kra[s, b, a], abs_tol=1e-9):
                raise CatalogError(
                    f"E_KRA of {name} {regions[a]} -> {regions[b]} ({kra[s, a, b]}) differs from "
                    f"the reverse ({kra[s, b, a]})", file=file, field="events.kra_eV",
                    hint="a hop and its reverse share one E_KRA; give both the same value")


def interface_band_regions(host: np.ndarray, distance_A: np.ndarray, band_A: float) -> np.ndarray:
    """Return region codes: host index, or host index + 2 within ``band_A`` of an interface."""
    region = host.astype(np.int8).copy()
    if band_A > 0:
        region[distance_A <= band_A + 1e-9] += 2
    return region

