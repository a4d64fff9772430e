"""Engine invariants: lattices, conservation, the sum tree, seeds and checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from kmcflow.errors import CheckpointError, LatticeError
from kmcflow.kmc.engine import Simulation
from kmcflow.kmc.lattice import build_block, nearest_neighbours, preset
from kmcflow.kmc.validate import uniform_catalog

COORDINATION = {"square": 4, "triangular": 6, "honeycomb": 3, "sc": 6, "bcc": 8, "fcc": 12,
                "diamond": 4}
NN_DISTANCE = {"square": 1.0, "triangular": 1.0, "honeycomb": 3**-0.5, "sc": 1.0,
               "bcc": 3**0.5 / 2, "fcc": 2**-0.5, "diamond": 3**0.5 / 4}


@pytest.mark.parametrize("name", sorted(COORDINATION))
def test_presets_have_the_textbook_shell(name):
    shell = nearest_neighbours(preset(name, 1.0))
    assert set(shell.coordination.tolist()) == {COORDINATION[name]}
    assert shell.distance_A == pytest.approx(NN_DISTANCE[name])
    cells = (5, 1, 6) if preset(name).dimension == 2 else (3, 3, 4)
    block = build_block(preset(name), cells)
    # every neighbour relation is symmetric and no site neighbours itself
    n = block.n_sites
    off = block.offsets[block.site_class]
    nbr = np.arange(n)[:, None] + off
    assert np.all(off != 0)
    pairs = {(i, j) for i, row in enumerate(nbr) for j in row}
    assert all((j, i) in pairs for i, j in pairs)
    assert all(len(set(row)) == len(row) for row in nbr)


def test_closed_z_has_no_neighbours_across_the_boundary():
    block = build_block(preset("sc"), (3, 3, 4), periodic_z=False)
    off = block.offsets[block.site_class]
    assert np.sum(off == 0) == 2 * 9  # one missing slot for each site on the two z faces


def test_bad_lattice_sizes_are_refused():
    with pytest.raises(LatticeError, match="ny must be 1"):
        build_block(preset("square"), (4, 4, 4))
    with pytest.raises(LatticeError, match="too small"):
        build_block(preset("fcc"), (2, 3, 4))


def _sim(**kw):
    cat = uniform_catalog("fcc", barrier_eV=0.4)
    args = {"cells": (6, 6, 8), "temperature_K": 700.0, "vacancy_fraction": 0.03, "seed": 7}
    args.update(kw)
    return Simulation(cat, **args)


def test_species_are_conserved_and_tree_matches_a_rebuild():
    sim = _sim()
    before = np.bincount(sim.occ, minlength=3)
    sim.run(200_000)
    assert np.array_equal(np.bincount(sim.occ, minlength=3), before)
    assert np.array_equal(np.flatnonzero(sim.occ == 0), np.sort(sim.vac_site))
    incremental = sim.tree.copy()
    sim._build_index()
    assert np.array_equal(incremental, sim.tree)  # bit for bit, not approximately
    assert sim.event_counts.sum() == sim.n_events == 200_000


def test_memory_is_at_most_16_bytes_per_site():
    # per-site arrays (14 B) plus the per-vacancy slot-rate cache and tree at 1 % vacancies
    sim = _sim(cells=(8, 8, 8), vacancy_fraction=0.01)
    assert 14 < sim.bytes_per_site() <= 16


def test_seed_fixes_the_trajectory_and_replicas_differ():
    a, b, c = _sim(), _sim(), _sim(replica=1)
    for s in (a, b, c):
        s.run(50_000)
    assert np.array_equal(a.occ, b.occ) and a.time_s == b.time_s
    assert not np.array_equal(a.occ, c.occ)


def test_checkpoint_continues_bit_for_bit(tmp_path):
    straight = _sim()
    straight.run(100_000)
    straight.run(100_000)
    first = _sim()
    first.run(100_000)
    first.write_checkpoint(tmp_path / "ck.npz")
    resumed = _sim()
    resumed.restore_checkpoint(tmp_path / "ck.npz")
    resumed.run(100_000)
    for name, arr in straight.state_arrays().items():
        assert np.array_equal(arr, resumed.state_arrays()[name]), name
    assert straight.time_s == resumed.time_s


def test_sampling_does_not_perturb_the_trajectory():
    a, b = _sim(), _sim()
    a.run(t_stop=a.time_s + 1e-8)
    t_mid = a.time_s
    for t in np.linspace(t_mid / 10, t_mid, 10):
        b.run(t_stop=t)
        b.sample()
    assert np.array_equal(a.occ, b.occ) and a.n_events == b.n_events


def test_checkpoint_of_another_run_is_refused(tmp_path):
    _sim().write_checkpoint(tmp_path / "ck.npz")
    with pytest.raises(CheckpointError, match="different"):
        _sim(seed=8).restore_checkpoint(tmp_path / "ck.npz")


def test_pair_interactions_refresh_every_affected_vacancy():
    # With first-shell pairs a hop changes rates two shells away; after many hops the
    # incrementally updated slot cache and tree must equal a rebuild from the occupations.
    from kmcflow.kmc.catalog import Catalog

    data = uniform_catalog("fcc", site_energies_eV={"A": {"A_host": 0.0, "B_host": 0.05},
                                                    "B": {"A_host": 0.05, "B_host": 0.0}}
                           ).to_json_dict()
    data["energy_model"]["pair_interactions_eV"] = {"A-B": 0.04, "A-A": -0.02}
    sim = Simulation(Catalog.model_validate(data), (5, 5, 6), 700.0, 0.08, seed=2)
    assert sim.rates.use_pairs
    sim.run(50_000)
    slots, tree = sim.slot_rate.copy(), sim.tree.copy()
    sim._build_index()
    assert np.array_equal(slots, sim.slot_rate)
    assert np.array_equal(tree, sim.tree)
