"""NEB endpoint pairs: same atoms, one atom moved by the hop length, vacancy images apart."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from kmcflow.errors import KmcflowError, StructureError
from kmcflow.structures.endpoints import choose_supercell, hop_endpoints, write_hops
from kmcflow.structures.hops import enumerate_hops
from kmcflow.structures.io import read_structure


def brute_force_shortest(matrix):
    """Shortest lattice vector by plain enumeration of -3..3 combinations (no reduction)."""
    best = np.inf
    for c in itertools.product(range(-3, 4), repeat=3):
        if c != (0, 0, 0):
            best = min(best, np.linalg.norm(np.asarray(c, float) @ matrix))
    return best


def check_pair(pair, min_distance):
    ini, fin = pair.initial.structure, pair.final.structure
    assert [s.species_string for s in ini] == [s.species_string for s in fin]
    diff = fin.frac_coords - ini.frac_coords
    diff -= np.round(diff)
    moved = np.linalg.norm(diff @ ini.lattice.matrix, axis=1)
    assert np.count_nonzero(moved > 1e-6) == 1
    assert int(np.argmax(moved)) == pair.moving_index
    assert moved[pair.moving_index] == pytest.approx(pair.hop.length_A, abs=1e-6)
    assert ini[pair.moving_index].specie.symbol == pair.hop.species
    image = brute_force_shortest(ini.lattice.matrix)
    assert image >= min_distance - 1e-9
    assert image == pytest.approx(pair.vacancy_image_distance_A, abs=1e-6)


@pytest.mark.parametrize(("name", "species", "atoms"), [
    ("Cu", "Cu", 4 * 27 - 1),  # 3x3x3 conventional cells: 10.8 A > 8 A (2x2x2 gives 7.2)
    ("LiFePO4", "Li", 28 * 4 - 1),  # 1x2x2: 10.3, 12.0, 9.4 A
    ("LiCoO2", "Li", 12 * 9 - 1),  # 3x3x1: 8.4 A in plane, c = 14.05 A
])
def test_bulk_endpoint_pairs(bulk, name, species, atoms):
    lab = bulk(name)
    hop = enumerate_hops(lab, species).hops[0]
    pair = hop_endpoints(lab, hop, min_image_distance_A=8.0)
    assert len(pair.initial.structure) == atoms
    check_pair(pair, 8.0)


def test_larger_image_distance_gives_larger_cells(bulk):
    lab = bulk("Cu")
    hop = enumerate_hops(lab, "Cu").hops[0]
    pair = hop_endpoints(lab, hop, min_image_distance_A=12.0)
    check_pair(pair, 12.0)
    assert pair.supercell == (4, 4, 4)


def test_interface_endpoints_repeat_in_plane_only_and_keep_fixed_atoms(cu_ni_slab):
    hops = enumerate_hops(cu_ni_slab, ["Cu", "Ni"])
    for hop in hops.hops[:6]:
        pair = hop_endpoints(cu_ni_slab, hop, min_image_distance_A=8.0)
        check_pair(pair, 8.0)
        assert pair.supercell[2] == 1
        flags = pair.initial.structure.site_properties["selective_dynamics"]
        assert flags[pair.moving_index] == [True, True, True]
        assert sum(not all(f) for f in flags) == 2 * pair.supercell[0] * pair.supercell[1]


def test_write_hops_writes_readable_pairs_and_a_manifest(cu_ni_slab, tmp_path):
    hops = enumerate_hops(cu_ni_slab, "Cu", band_thickness_A=2.0)
    manifest = write_hops(cu_ni_slab, hops, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "hops.json").read_text())
    assert saved == manifest
    assert len(saved["hops"]) == len(hops.hops)
    assert saved["catalog_sections"]["lattice"] == {"preset": "fcc", "a_A": 3.52387}
    for record in saved["hops"][:3]:
        ini = read_structure(tmp_path / "out" / record["initial_file"])
        fin = read_structure(tmp_path / "out" / record["final_file"])
        diff = fin.structure.cart_coords - ini.structure.cart_coords
        assert np.count_nonzero(np.linalg.norm(diff, axis=1) > 1e-6) == 1
        assert len(ini.structure) == record["n_atoms"]
        assert ini.structure.site_properties["host"][record["moving_index"]] == record[
            "initial_host"]
    with pytest.raises(KmcflowError, match="exists"):  # --overwrite replaces it
        write_hops(cu_ni_slab, hops, tmp_path / "out")


def test_supercell_limits_are_refused(bulk):
    lab = bulk("Cu")
    with pytest.raises(StructureError) as info:
        choose_supercell(lab.structure.lattice.matrix, 4, 20.0, in_plane_only=False,
                         max_atoms=100)
    assert info.value.field == "max_atoms"
