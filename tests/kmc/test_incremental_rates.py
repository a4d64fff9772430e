"""The kernel's incremental rate updates and its raw-key table, against brute force.

After each hop the kernel recomputes only the hops whose rate reads one of the two changed
sites (``kernels.collect_work``) and looks table entries up by the raw key of every symmetry
image (``environment_rates.raw_table``). Both must give exactly what a full rebuild gives.
"""

from __future__ import annotations

import numpy as np
import pytest

from kmcflow.kmc import kernels
from kmcflow.kmc.catalog import Catalog
from kmcflow.kmc.engine import Simulation
from kmcflow.kmc.environment import canonical_key, environment_key, hop_environments
from kmcflow.kmc.environment_rates import raw_table
from kmcflow.kmc.lattice import preset

KRA = {"Cu": 0.70, "Ni": 0.95}


def cu_ni(environments: bool) -> Catalog:
    """Cu|Ni on fcc with KRA events and pair bonds; with ``environments`` a table (pure
    environments, barriers unlike the model's) and an orbit model for the rest."""
    events = [{"id": f"{sp}_{ri}_{rf}", "species": sp, "initial_region": ri,
               "final_region": rf, "kra_eV": kra, "prefactor_Hz": 1e13,
               "provenance": {"source": "test"}}
              for sp, kra in KRA.items() for ri in ("Cu", "Ni") for rf in ("Cu", "Ni")]
    data = {"schema": "kmcflow.catalog", "schema_version": 2 if environments else 1,
            "name": "incremental", "units": {}, "lattice": {"preset": "fcc", "a_A": 3.6},
            "species": ["Cu", "Ni"], "hosts": [{"name": "Cu", "initial_species": "Cu"},
                                               {"name": "Ni", "initial_species": "Ni"}],
            "rate_model": "kra", "events": events,
            "energy_model": {"pair_interactions_eV": {"Cu-Ni": -0.03, "Ni-Ni": 0.02}}}
    if environments:
        orbit = [{"Ni": 0.01 * (o + 1), "V": -0.02 * (o + 1)} for o in range(4)]
        data["environments"] = {
            "table": [{"key": f"{sp}|c0|" + ",".join([sp] * 18), "barrier_eV": kra - 0.05,
                       "prefactor_Hz": 1e13, "provenance": {"source": "test"}}
                      for sp, kra in KRA.items()],
            "model": {"terms": [{"species": sp, "kra_eV": kra, "prefactor_Hz": 1e13,
                                 "orbit_eV": orbit} for sp, kra in KRA.items()]}}
    return Catalog.model_validate(data)


def random_state(cells, periodic_z: bool, seed: int, ni: float, vac: float) -> Simulation:
    cat = cu_ni(True)
    sim = Simulation(cat, cells, 1000.0, vac, seed=seed, periodic_z=periodic_z)
    rng = np.random.default_rng(seed)
    occ = np.where(rng.random(sim.block.n_sites) < ni, 2, 1).astype(np.int8)
    occ[rng.choice(occ.size, int(vac * occ.size), replace=False)] = 0
    return occ


def assert_tree_is_rebuilt(sim: Simulation) -> None:
    tree = np.zeros_like(sim.tree)
    slot_rate = np.zeros_like(sim.slot_rate)
    kernels.build_tree(sim.vac_site, slot_rate, tree, sim.leaf0, sim.occ, sim.region,
                       sim.block.site_class, sim.block.offsets, *sim._kernel_tables)
    assert np.array_equal(slot_rate, sim.slot_rate)
    assert np.array_equal(tree, sim.tree)


@pytest.mark.parametrize(("environments", "cells", "periodic_z"), [
    (True, (4, 4, 6), True), (True, (3, 3, 4), False), (False, (3, 4, 5), True)])
def test_incremental_tree_equals_a_full_rebuild(environments, cells, periodic_z):
    """Table + model + pair bonds (and pair bonds alone): bit for bit after every chunk."""
    occ = random_state(cells, periodic_z, 5, ni=0.15, vac=0.05)
    sim = Simulation(cu_ni(environments), cells, 1000.0, 0.05, seed=5, periodic_z=periodic_z,
                     initial_occupation=occ)
    for _ in range(40):
        sim.run(150)
        assert_tree_is_rebuilt(sim)
    if environments:
        sources = sim.environment_report()["events_by_source"]
        assert sources["table"] > 0 and sources["model"] > 0


def test_raw_keys_find_exactly_the_table_entries():
    """Membership by raw key equals membership by canonical key, for random environments."""
    envs = hop_environments(preset("fcc", 3.6))
    n_species, base = 2, 4
    rng = np.random.default_rng(3)
    perms = envs.permutations[0, :int(envs.group_order[0])]
    listed = rng.integers(0, 3, size=(6, envs.n_env))
    listed[0] = 1  # a pure environment
    keys = sorted({environment_key(c, 0, envs, n_species) for c in listed})
    n_classes = envs.n_classes
    table_start = np.zeros((n_species + 1) * n_classes + 1, np.int64)
    table_start[1 * n_classes + 1:] = len(keys)  # all listed for species 1, class 0
    table_key = np.array(keys, np.int64)
    raw_start, raw_key, raw_row = raw_table(envs, n_species, table_start, table_key)
    lo, hi = raw_start[n_classes], raw_start[n_classes + 1]
    assert np.all(np.diff(raw_key[lo:hi]) > 0) and raw_start[-1] == hi
    weights = base ** np.arange(envs.n_env - 1, -1, -1, dtype=np.int64)
    probes = [c[p] for c in listed for p in perms]
    probes += list(rng.integers(0, 3, size=(300, envs.n_env)))
    probes += [np.where(rng.random(envs.n_env) < 0.1, 2, 1) for _ in range(300)]
    found = 0
    for codes in probes:
        codes = np.asarray(codes, np.int64)
        raw = int(codes @ weights)
        i = int(np.searchsorted(raw_key[lo:hi], raw)) + lo
        by_raw = int(raw_row[i]) if i < hi and raw_key[i] == raw else -1
        key = int(canonical_key(codes, envs.permutations[0], base))
        by_key = keys.index(key) if key in keys else -1
        assert by_raw == by_key
        found += by_raw >= 0
    assert found >= len(listed) * len(perms)


@pytest.mark.parametrize(("cells", "periodic_z"), [((4, 4, 6), True), ((3, 3, 4), False)])
def test_vacant_neighbour_counts_skip_only_searches_that_find_nothing(cells, periodic_z):
    """collect_work with the vacant-neighbour counts lists exactly what the full search lists.

    The reference searches the neighbours of every atom next to ``v`` or ``j`` (counts of 1
    everywhere); the counts are checked against occupations counted directly.
    """
    occ = random_state(cells, periodic_z, 7, ni=0.3, vac=0.1)
    sim = Simulation(cu_ni(True), cells, 1000.0, 0.1, seed=7, periodic_z=periodic_z,
                     initial_occupation=occ)
    site_class, offsets = sim.block.site_class, sim.block.offsets
    n_sites = sim.occ.size
    work, work_ref = np.zeros((1024, 3), np.int64), np.zeros((1024, 3), np.int64)
    search_all = np.ones(n_sites, np.int8)
    n_searched_less = 0
    for _ in range(300):
        before = sim.vac_site.copy()
        sim.run(1)
        q = int(np.flatnonzero(before != sim.vac_site)[0])
        v, j = int(before[q]), int(sim.vac_site[q])
        counts = kernels.count_vacant_neighbours(sim.vac_site, n_sites, site_class, offsets)
        nbrs = [[n + o for o in offsets[site_class[n]] if o != 0] for n in range(n_sites)]
        assert counts.tolist() == [sum(sim.occ[m] == 0 for m in nbrs[n]) for n in range(n_sites)]
        for m in nbrs[j]:
            counts[m] -= 1  # the vacancies other than j, as run_events passes them
        args = (sim.vac_of_site, sim.reverse_slot, sim.class_basis, sim.occ, site_class, offsets)
        n_work = kernels.collect_work(v, j, q, work, *args, counts)
        n_ref = kernels.collect_work(v, j, q, work_ref, *args, search_all)
        assert n_work == n_ref
        assert np.array_equal(work[:n_work], work_ref[:n_ref])
        n_searched_less += sum(sim.occ[n] != 0 and counts[n] == 0 for n in nbrs[v] + nbrs[j])
    assert n_searched_less > 0
