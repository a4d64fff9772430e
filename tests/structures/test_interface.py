"""Coherent interfaces: strain against the lattice-constant mismatch, atom counts, labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kmcflow.errors import StructureError
from kmcflow.structures.geometry import plane_normal
from kmcflow.structures.interface import MatchLimits, Thickness, build_interface, find_matches
from kmcflow.structures.io import DISTANCE, HOST, read_structure, to_ase_atoms, write_extxyz

A_MGO, A_NIO, A_CU, A_NI = 4.2117, 4.1771, 3.61496, 3.52387


def test_mgo_on_nio_match_has_the_lattice_mismatch_as_strain(mgo_nio_search):
    best = mgo_nio_search.matches[0]
    # the film is strained to the substrate: (a_NiO - a_MgO) / a_MgO in both directions
    expected = (A_NIO - A_MGO) / A_MGO
    assert abs(best.strain) < 0.015
    assert best.strain == pytest.approx(expected, abs=1e-5)
    assert best.strain_components == pytest.approx((expected, expected), abs=1e-5)
    # the smallest coherent cell of rock salt (100) is the primitive surface cell, (a/sqrt2)^2
    assert best.area_A2 == pytest.approx(A_NIO ** 2 / 2, rel=1e-6)
    # biaxial in-plane strain e: von Mises sqrt(2/3 * (2 (e/3)^2 + (2e/3)^2)) = 2|E|/3 (Green)
    green = expected + expected ** 2 / 2
    assert best.von_mises_strain == pytest.approx(2 * abs(green) / 3, rel=1e-6)


def test_mgo_on_nio_interface_has_the_expected_atoms_and_labels(mgo_nio_search):
    iface = build_interface(mgo_nio_search)
    s = iface.structure
    # 10 A of each phase = ceil(10 / a) conventional repeats = 2 atomic layers each, and a
    # (100) layer of the primitive surface cell holds one cation and one anion
    layers_nio = 2 * math.ceil(10 / A_NIO)
    layers_mgo = 2 * math.ceil(10 / A_MGO)
    assert len(s) == 2 * (layers_nio + layers_mgo)
    info = iface.interface
    assert (info.substrate_layers, info.film_layers) == (layers_nio, layers_mgo)
    hosts = s.site_properties[HOST]
    assert hosts.count("NiO") == 2 * layers_nio and hosts.count("MgO") == 2 * layers_mgo
    nio_elements = {site.specie.symbol for site, h in zip(s, hosts, strict=True) if h == "NiO"}
    assert nio_elements == {"Ni", "O"}
    dist = np.array(s.site_properties[DISTANCE])
    assert np.all((dist < 0) == (np.array(hosts) == "NiO"))
    # the interface plane sits midway between the facing layers: the closest sites are gap/2
    assert np.abs(dist).min() == pytest.approx(info.gap_A / 2, abs=1e-6)
    # default gap: the mean interlayer spacing, a/2 of each rock salt
    assert info.gap_A == pytest.approx((A_NIO + A_MGO) / 4, abs=1e-6)
    # bottom two substrate layers fixed (2 atoms each), nothing else
    fixed = [not all(f) for f in s.site_properties["selective_dynamics"]]
    assert sum(fixed) == 4
    assert max(dist[fixed]) < min(dist[~np.array(fixed) & (dist < 0)])
    # at least 15 A of vacuum between the film top and the next substrate image
    h = s.cart_coords @ plane_normal(s.lattice.matrix)
    period = s.lattice.volume / np.linalg.norm(np.cross(*s.lattice.matrix[:2]))
    assert period - np.ptp(h) >= 15.0 - 1e-6


def test_cross_interface_registry_continues_the_rock_salt(mgo_nio_search):
    iface = build_interface(mgo_nio_search)
    s = iface.structure
    hosts = np.array(s.site_properties[HOST])
    mg = [i for i, site in enumerate(s) if site.specie.symbol == "Mg"]
    ni = [i for i, site in enumerate(s) if site.specie.symbol == "Ni"]
    # no cation sits on top of a cation across the interface: the shortest Mg-Ni distance is
    # the fcc nearest-neighbour distance, sqrt(gap^2 + (a/2)^2), not the gap
    d = min(s.get_distance(i, j) for i in mg for j in ni)
    assert d == pytest.approx(math.hypot(iface.interface.gap_A, A_NIO / 2), abs=1e-3)
    assert set(hosts) == {"NiO", "MgO"}


def test_cu_on_ni_strain_is_the_lattice_mismatch(cu_ni_search):
    mismatch = (A_CU - A_NI) / A_NI  # 3.61 vs 3.52: 2.6 %
    strain = cu_ni_search.matches[0].strain
    assert abs(abs(strain) - mismatch) < 0.005
    assert strain == pytest.approx((A_NI - A_CU) / A_CU, abs=1e-6)


def test_periodic_bicrystal_has_two_interfaces_and_no_fixed_atoms(cu_ni_search):
    bi = build_interface(cu_ni_search, vacuum_A=0.0)
    info = bi.interface
    assert info.periodic_bicrystal and len(info.plane_heights_A) == 2
    s = bi.structure
    assert all(all(f) for f in s.site_properties["selective_dynamics"])
    # the second interface has the same gap: shortest Cu-Ni distance across each plane equal
    h = s.cart_coords @ plane_normal(s.lattice.matrix)
    dist = np.array(s.site_properties[DISTANCE])
    period = info.plane_heights_A[1] - info.plane_heights_A[0]
    assert 0 < period < s.lattice.c
    near = np.abs(dist) < info.gap_A / 2 + 1e-6
    assert near.sum() == 4  # one facing layer on each side of each of the two planes
    assert len(np.unique(np.round(h[near], 3))) == 4


def test_thickness_in_layers_and_fixed_layers_convert_to_ase(bulk, tmp_path):
    search = find_matches(bulk("Cu"), bulk("Ni"), (1, 0, 0), (1, 0, 0),
                          film_thickness="8layers", substrate_thickness="5layers")
    iface = build_interface(search, fixed_layers=3)
    info = iface.interface
    assert info.film_layers >= 8 and info.substrate_layers >= 5
    atoms = to_ase_atoms(iface)
    fixed = atoms.constraints[0].get_indices()
    assert len(fixed) == 3  # one atom per (100) layer of the 1x1 cell
    path = write_extxyz(iface, tmp_path / "i.extxyz")
    back = read_structure(path)
    assert back.is_interface and back.interface == info
    assert back.structure.site_properties[HOST] == iface.structure.site_properties[HOST]


@pytest.mark.parametrize(("limits", "field"), [
    (MatchLimits(max_strain=1e-4), "max_strain"),
    (MatchLimits(max_atoms=5), "max_atoms"),
    (MatchLimits(max_strain=0.0), "max_strain"),
])
def test_limits_refuse_with_the_limit_to_raise(bulk, limits, field):
    with pytest.raises(StructureError) as info:
        find_matches(bulk("Cu"), bulk("Ni"), (1, 0, 0), (1, 0, 0), limits=limits)
    assert info.value.field == field
    assert "raise" in (info.value.hint or "") or "fraction" in (info.value.hint or "")


def test_bad_miller_and_thickness_are_refused(bulk):
    with pytest.raises(StructureError, match="0 0 0"):
        find_matches(bulk("Cu"), bulk("Ni"), (0, 0, 0), (1, 0, 0))
    with pytest.raises(StructureError, match="thickness"):
        Thickness.parse("ten")
    assert Thickness.parse("6layers") == Thickness(6.0, "layers")
    assert Thickness.parse("12.5") == Thickness(12.5, "A")


def layer_positions(lab):
    """Registry of each atomic layer, bottom up, in the primitive in-plane basis of layer 0.

    A layer may hold several atoms (pymatgen may return an in-plane supercell: for Cu|Cu (111)
    the slabs came back 2 x 2 in one environment); the registry of a layer is the in-plane
    offset of one of its atoms from layer 0, in fractions of the two shortest in-plane
    lattice vectors of layer 0, modulo 1.
    """
    s = lab.structure
    n = plane_normal(s.lattice.matrix)
    cart, cell = s.cart_coords, s.lattice.matrix
    h = cart @ n
    layers: list[list[int]] = []
    for i in np.argsort(h):
        if layers and abs(h[i] - h[layers[-1][0]]) < 0.3:
            layers[-1].append(int(i))
        else:
            layers.append([int(i)])

    def inplane(v):
        return v - (v @ n) * n

    origin = cart[layers[0][0]]
    vectors = sorted((inplane(cart[j] + a * cell[0] + b * cell[1] - origin)
                      for j in layers[0] for a in (-1, 0, 1) for b in (-1, 0, 1)),
                     key=np.linalg.norm)
    vectors = [v for v in vectors if np.linalg.norm(v) > 0.1]
    b1 = vectors[0]
    b2 = next(v for v in vectors if abs(np.cross(b1, v) @ n) > 0.1)
    basis = np.array([b1, b2]).T
    regs = [np.linalg.lstsq(basis, inplane(cart[layer[0]] - origin), rcond=None)[0]
            for layer in layers]
    return np.mod(np.array(regs) + 1e-6, 1.0) - 1e-6, float(np.linalg.norm(b1))


@pytest.mark.parametrize(("film", "sub"), [("Al", "Au"), ("Au", "Al"), ("Cu", "Cu")])
def test_fcc_111_stacking_carries_on_across_the_interface(bulk, film, sub):
    # pymatgen flips the film (reversing ABC) and stacks it on top; the registry search must
    # restore A B C A B C ... through the interface: layer k sits at k times one step of
    # (1/3, 1/3) or (2/3, 2/3) (or (1/3, 2/3) in a rotated basis) mod 1
    search = find_matches(bulk(film), bulk(sub), (1, 1, 1), (1, 1, 1))
    iface = build_interface(search)
    pos, a_in = layer_positions(iface)
    steps = np.mod(np.diff(pos, axis=0) + 1e-6, 1.0) - 1e-6
    assert np.allclose(steps, steps[0], atol=1e-3)
    assert np.allclose(np.sort(steps[0]), [1 / 3, 1 / 3], atol=1e-3) or np.allclose(
        np.sort(steps[0]), [2 / 3, 2 / 3], atol=1e-3) or np.allclose(
        np.sort(steps[0]), [1 / 3, 2 / 3], atol=1e-3)
    # hence the closest film-substrate pair is a hollow-site contact, not on-top
    s = iface.structure
    hosts = np.array(s.site_properties[HOST])
    cross = min(s.get_distance(i, j) for i in np.flatnonzero(hosts == hosts[0])
                for j in np.flatnonzero(hosts != hosts[0]))
    gap = iface.interface.gap_A  # a_in: the in-plane nearest-neighbour distance
    assert cross == pytest.approx(math.hypot(gap, a_in / math.sqrt(3)), abs=2e-3)


def test_polar_rock_salt_111_is_refused_unless_allowed(bulk):
    search = find_matches(bulk("MgO"), bulk("NiO"), (1, 1, 1), (1, 1, 1))
    with pytest.raises(StructureError, match="like ions face") as info:
        build_interface(search)
    assert "--allow-like-ions-facing" in info.value.hint
    iface = build_interface(search, allow_like_ions_facing=True)
    assert len(iface.structure) > 0


def test_absurd_gap_is_refused(cu_ni_search):
    with pytest.raises(StructureError, match="not an interface"):
        build_interface(cu_ni_search, gap_A=50.0)
