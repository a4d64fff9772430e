"""Distinct vacancy hops: bulk shells against geometry, interface orbits against counting."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from kmcflow.errors import StructureError
from kmcflow.kmc.catalog import parse_event_key, region_name
from kmcflow.structures.hops import enumerate_hops
from kmcflow.structures.io import DISTANCE, HOST, to_ase_atoms


@pytest.mark.parametrize(("name", "species", "length", "per_site"), [
    ("Cu", "Cu", 3.61496 / math.sqrt(2), 12),  # fcc: a/sqrt2, 12 neighbours
    ("Fe", "Fe", 2.8665 * math.sqrt(3) / 2, 8),  # bcc: a sqrt3/2, 8 neighbours
    ("MgO", "Mg", 4.2117 / math.sqrt(2), 12),  # rock-salt cation sublattice: fcc
    ("NiO", "Ni", 4.1771 / math.sqrt(2), 12),
    ("Li2O", "Li", 4.61 / 2, 6),  # antifluorite Li: simple cubic of a/2
])
def test_cubic_sublattices_have_one_distinct_hop(bulk, name, species, length, per_site):
    hops = enumerate_hops(bulk(name), species)
    assert len(hops.hops) == 1
    hop = hops.hops[0]
    assert hop.length_A == pytest.approx(length, abs=1e-6)
    n_sites = sum(1 for s in bulk(name).structure if s.specie.symbol == species)
    assert hop.multiplicity == per_site * n_sites
    assert hop.band is None and hop.event_key == f"{species}/{name}->{name}"


def test_lifepo4_shortest_li_hop_is_the_b_channel(bulk):
    hops = enumerate_hops(bulk("LiFePO4"), "Li", max_length_A=6.0)
    shortest = min(hops.hops, key=lambda h: h.length_A)
    assert shortest.length_A == pytest.approx(6.010 / 2, abs=1e-3)
    assert len(hops.hops) >= 2  # the longer inter-channel hops are listed too
    vec = shortest_vector(bulk("LiFePO4").structure, shortest)
    assert abs(vec[1]) == pytest.approx(3.005, abs=1e-3)  # along b
    first_shell = enumerate_hops(bulk("LiFePO4"), "Li")
    assert [h.length_A for h in first_shell.hops] == pytest.approx([3.005], abs=1e-3)


def shortest_vector(structure, hop):
    f = structure.frac_coords
    return (f[hop.final_site] + np.asarray(hop.final_image) - f[hop.initial_site]) @ (
        structure.lattice.matrix)


def test_licoo2_in_plane_li_hop_is_a(bulk):
    hops = enumerate_hops(bulk("LiCoO2"), "Li")
    assert len(hops.hops) == 1
    hop = hops.hops[0]
    assert hop.length_A == pytest.approx(2.8156, abs=1e-6)
    assert hop.multiplicity == 3 * 6  # 3 Li per hexagonal cell, 6 in-plane neighbours each
    assert abs(shortest_vector(bulk("LiCoO2").structure, hop)[2]) < 1e-6  # in the Li plane


def count_directed_pairs(labelled, species, network, cutoff):
    """Independent count with ASE's neighbour list."""
    atoms = to_ase_atoms(labelled)
    i, j = neighbor_list("ij", atoms, cutoff)
    sym = np.array(atoms.get_chemical_symbols())
    return int(np.sum((sym[i] == species) & np.isin(sym[j], network)))


def test_interface_hops_are_more_than_bulk_and_multiplicities_add_up(bulk, cu_ni_slab):
    slab_hops = enumerate_hops(cu_ni_slab, ["Cu", "Ni"])
    n_bulk = max(len(enumerate_hops(bulk(n), n).hops) for n in ("Cu", "Ni"))
    assert len(slab_hops.hops) > n_bulk
    total = 0
    for sp in ("Cu", "Ni"):
        one = enumerate_hops(cu_ni_slab, sp)
        assert one.network_species == ["Cu", "Ni"]  # the shared fcc sublattice
        # first shell of the strained slab: every pair shorter than 1.1 x shortest (2.49 A)
        pairs = count_directed_pairs(cu_ni_slab, sp, ["Cu", "Ni"], 2.49 * 1.1)
        assert sum(h.multiplicity for h in one.hops) == pairs == one.n_directed_hops
        total += pairs
    assert sum(h.multiplicity for h in slab_hops.hops) == total
    groups = slab_hops.by_band()
    assert sorted(groups) == list(range(len(groups)))  # bands 0, 1, 2, ...
    cross = [h for h in groups[0] if h.initial_host != h.final_host]
    # Cu->Ni and Ni->Cu across the plane; each atom of a (100) layer faces 4 in the next
    assert sorted(h.species for h in cross) == ["Cu", "Ni"]
    assert all(h.multiplicity == 4 for h in cross)
    assert all(h.length_A == pytest.approx(math.hypot(cu_ni_slab.interface.gap_A,
                                                      3.52387 / 2), abs=1e-4) for h in cross)


def test_event_keys_follow_the_engine_region_rule(cu_ni_slab):
    band = 2.0
    hops = enumerate_hops(cu_ni_slab, ["Cu", "Ni"], band_thickness_A=band)
    s = cu_ni_slab.structure
    hosts, dist = s.site_properties[HOST], np.array(s.site_properties[DISTANCE])
    # the engine's fcc [001] lattice of the Ni substrate has its layers at (k + 1/2) a/2 from
    # the plane, k = 0, 1, ... counted on each side
    spacing = 3.52387 / 2
    keys = set()
    for h in hops.hops:
        species, ini, fin = parse_event_key(h.event_key)
        assert species == h.species
        for site, region in ((h.initial_site, ini), (h.final_site, fin)):
            same_side = np.abs(dist[np.sign(dist) == np.sign(dist[site])])
            k = int(np.searchsorted(np.unique(np.round(same_side, 3)), round(abs(dist[site]), 3)))
            assert region == region_name(hosts[site], (k + 0.5) * spacing, band)
        keys.add(h.event_key)
    assert "Cu/Cu:interface->Ni:interface" in keys and "Ni/Ni:interface->Cu:interface" in keys
    assert "Cu/Cu->Cu" in keys and "Ni/Ni->Ni" in keys
    # a 2 A band holds only the facing layers (0.89 A from the plane; the next are at 2.7 A)
    for h in hops.hops:
        if ":interface" in h.event_key:
            assert h.band == 0


def test_hops_refuse_a_missing_species(bulk):
    with pytest.raises(StructureError, match="no 'Na' sites"):
        enumerate_hops(bulk("LiCoO2"), "Na")


def test_unwrapped_coordinates_do_not_split_orbits(bulk, tmp_path):
    from pymatgen.core import Structure

    from kmcflow.structures.io import read_structure

    cu = bulk("Cu").structure
    shifted = Structure(cu.lattice, cu.species,
                        cu.frac_coords + np.array([[1, 0, 0], [0, -1, 0], [2, 1, 0], [0, 0, -3]]))
    shifted.to(filename=str(tmp_path / "POSCAR"))
    hops = enumerate_hops(read_structure(tmp_path / "POSCAR"), "Cu")
    assert len(hops.hops) == 1 and hops.hops[0].multiplicity == 48


def test_bicrystal_merges_hops_of_its_two_equivalent_interfaces(mgo_nio_search, tmp_path):
    from kmcflow.structures.interface import build_interface
    from kmcflow.structures.io import read_structure, write_extxyz

    bi = build_interface(mgo_nio_search, vacuum_A=0.0)
    one = enumerate_hops(bi, "Mg", network_species=["Mg"])
    # 6 Mg layers of one Mg each: 4 in-plane hops per layer (24) and 4 per direction between
    # neighbouring Mg layers (5 pairs x 2 x 4 = 40); the mirror swapping the two interfaces
    # pairs layer k with layer 7 - k, so the 6 in-plane orbits become 3 and the 10 inter-layer
    # orbits (up and down per pair) become 5
    assert one.n_directed_hops == 64
    assert len(one.hops) == 8
    assert sum(h.multiplicity for h in one.hops) == 64
    again = enumerate_hops(read_structure(write_extxyz(bi, tmp_path / "bi.extxyz")), "Mg",
                           network_species=["Mg"])
    assert [(round(h.length_A, 6), h.multiplicity) for h in again.hops] == [
        (round(h.length_A, 6), h.multiplicity) for h in one.hops]
