"""Canonical hop-environment keys (kmcflow.kmc.environment) against brute-force references.

The references here never use the module's own symmetry operations: crystal operations are
found from the Cartesian site positions of a periodic block (every signed permutation matrix,
with every translation that maps the block's site set onto itself), and environments from
distances between sites.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from kmcflow.errors import CatalogError, StructureError
from kmcflow.kmc.environment import (
    canonical_key,
    check_key_fits,
    environment_codes,
    environment_key,
    hop_environments,
    key_digits,
    key_text,
    parse_key_text,
    reverse_key,
    symmetry_operations,
)
from kmcflow.kmc.lattice import build_block, general, preset

A_CU = 3.61


def _orbit_sizes(labels: np.ndarray) -> list[int]:
    labels = labels[labels >= 0]
    return sorted(np.unique(labels, return_counts=True)[1].tolist())


@pytest.mark.parametrize(
    ("name", "n_ops", "n_env", "n_common", "group_order", "orbit_sizes", "orbits_reversal"),
    [
        ("fcc", 192, 18, 4, 4, [1, 1, 2, 2, 4, 4, 4], [2, 4, 4, 8]),
        ("bcc", 96, 14, 0, 6, [1, 1, 3, 3, 3, 3], [2, 6, 6]),
        ("sc", 48, 10, 0, 8, [1, 1, 4, 4], [2, 8]),
        ("diamond", 192, 6, 0, 6, [3, 3], [6]),
        ("square", 8, 6, 0, 2, [1, 1, 2, 2], [2, 4]),
        ("triangular", 12, 8, 2, 2, [1, 1, 2, 2, 2], [2, 2, 4]),
        ("honeycomb", 12, 4, 0, 2, [2, 2], [4]),
    ],
)
def test_counts_of_the_presets(name, n_ops, n_env, n_common, group_order, orbit_sizes,
                               orbits_reversal):
    lat = preset(name, 3.0)
    envs = hop_environments(lat)
    assert len(symmetry_operations(lat)) == n_ops
    assert envs.n_classes == 1  # every preset has one kind of nearest-neighbour hop
    assert envs.n_env == n_env
    assert envs.n_common_of_class.tolist() == [n_common]
    assert envs.group_order.tolist() == [group_order]
    assert _orbit_sizes(envs.orbits[0]) == orbit_sizes
    assert sum(orbit_sizes) == n_env
    assert _orbit_sizes(envs.orbits_with_reversal[0]) == orbits_reversal
    assert envs.reverse_class.tolist() == [0]
    # every hop is in class 0 and reaches E distinct sites
    nb = lat.n_basis
    assert np.all(envs.hop_class[envs.hop_class >= 0] == 0)
    for b in range(nb):
        for k in range(envs.z_max):
            if envs.hop_class[b, k] >= 0:
                assert len(set(envs.reach[b, k].tolist())) == n_env
    assert hop_environments(lat) is envs  # cached


def test_fcc_has_twelve_hops_per_site_and_a_cached_definition():
    envs = hop_environments(preset("fcc", A_CU))
    assert np.count_nonzero(envs.hop_class == 0) == 4 * 12
    pos = envs.positions_A[0]
    d = envs.hop_vector_A[0]
    nn = A_CU / math.sqrt(2)
    to_v = np.linalg.norm(pos, axis=1)
    to_j = np.linalg.norm(pos - d, axis=1)
    assert np.count_nonzero(np.isclose(to_v, nn) & np.isclose(to_j, nn)) == 4
    assert np.all(np.isclose(to_v, nn) | np.isclose(to_j, nn))


def test_hcp_as_a_general_lattice_has_two_hop_classes():
    a, c = 3.0, 3.0 * math.sqrt(8 / 3)
    lat = general([[a, 0, 0], [a / 2, a * math.sqrt(3) / 2, 0], [0, 0, c]],
                  [[0, 0, 0], [1 / 3, 1 / 3, 0.5]])
    envs = hop_environments(lat)
    assert len(symmetry_operations(lat)) == 24  # P6_3/mmc
    assert envs.n_classes == 2  # in-plane and out-of-plane
    assert envs.n_env_of_class.tolist() == [18, 18]
    assert envs.n_common_of_class.tolist() == [4, 4]


# --- brute-force references on a block ------------------------------------------------------


def _block_tables(block):
    pos = block.site_positions_A()
    box = np.diag(block.cell_matrix_A())
    return pos, box


def _grid_index(pos: np.ndarray, box: np.ndarray, step: float) -> dict:
    keys = np.round(np.mod(pos, box) / step).astype(np.int64) % np.round(box / step).astype(
        np.int64)
    return {tuple(k): i for i, k in enumerate(keys.tolist())}


def _space_group_of_block(block, step: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every (R, t) with R a signed permutation that maps the block's sites onto themselves."""
    pos, box = _block_tables(block)
    index = _grid_index(pos, box, step)
    n_grid = np.round(box / step).astype(np.int64)
    ops = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            r = np.zeros((3, 3))
            r[range(3), perm] = signs
            for s in range(block.definition.n_basis):
                t = pos[s] - r @ pos[0]
                img = pos @ r.T + t
                keys = np.round(np.mod(img, box) / step).astype(np.int64) % n_grid
                if all(tuple(k) in index for k in keys.tolist()):
                    ops.append((r, t))
    return ops


def _map_sites(block, op, step: float) -> np.ndarray:
    pos, box = _block_tables(block)
    index = _grid_index(pos, box, step)
    r, t = op
    img = pos @ r.T + t
    n_grid = np.round(box / step).astype(np.int64)
    keys = np.round(np.mod(img, box) / step).astype(np.int64) % n_grid
    return np.array([index[tuple(k)] for k in keys.tolist()], np.int64)


def _slot(block, v: int, j: int) -> int:
    cls = block.site_class[v]
    hits = [k for k in range(block.offsets.shape[1])
            if block.offsets[cls, k] != 0 and v + block.offsets[cls, k] == j]
    assert len(hits) == 1
    return hits[0]


def _key_at(block, envs, occ, v: int, j: int, n_species: int) -> tuple[int, int]:
    """(hop class, key) of the atom at j jumping into v, through the numba kernels."""
    b = v % block.definition.n_basis
    k = _slot(block, v, j)
    c = int(envs.hop_class[b, k])
    codes = np.empty(envs.n_env, np.int64)
    environment_codes(occ, v, j, block.site_class, block.offsets, envs.reach[b, k],
                      n_species + 1, codes)
    return c, int(canonical_key(codes, envs.permutations[c], n_species + 2))


def _random_hop(block, rng):
    n = block.n_sites
    while True:
        v = int(rng.integers(n))
        cls = block.site_class[v]
        k = int(rng.integers(block.shell.coordination[v % block.definition.n_basis]))
        if block.offsets[cls, k] != 0:
            return v, v + int(block.offsets[cls, k])


@pytest.mark.parametrize(("name", "cells", "step"), [("fcc", (4, 4, 4), 0.5),
                                                     ("diamond", (3, 3, 3), 0.25),
                                                     ("bcc", (4, 4, 4), 0.5)])
def test_keys_are_invariant_under_every_crystal_operation(name, cells, step):
    lat = preset(name, 1.0)
    block = build_block(lat, cells)
    envs = hop_environments(lat)
    ops = _space_group_of_block(block, step)
    n_trans = block.n_sites // lat.n_basis
    assert len(ops) == len(symmetry_operations(lat))  # the block sees the same space group
    rng = np.random.default_rng(7)
    for trial in range(150):
        occ = rng.integers(1, 3, block.n_sites).astype(np.int8)
        occ[rng.random(block.n_sites) < 0.1] = 0
        v, j = _random_hop(block, rng)
        occ[v] = 0
        occ[j] = 1 + trial % 2
        r, t = ops[int(rng.integers(len(ops)))]
        shift = block.site_positions_A()[int(rng.integers(n_trans)) * lat.n_basis]
        site_map = _map_sites(block, (r, t + shift), step)
        occ2 = np.empty_like(occ)
        occ2[site_map] = occ
        assert _key_at(block, envs, occ, v, j, 2) == _key_at(block, envs, occ2, site_map[v],
                                                             site_map[j], 2)


def _brute_env(block, v: int, j: int, periodic_z: bool) -> dict[int, np.ndarray]:
    """Sites within the nn distance of v or j (minimum image), with positions relative to v."""
    pos, box = _block_tables(block)
    periodic = np.array([True, True, periodic_z])

    def rel(i_from: int) -> np.ndarray:
        d = pos - pos[i_from]
        d[:, periodic] -= box[periodic] * np.round(d[:, periodic] / box[periodic])
        return d

    rv, rj = rel(v), rel(j)
    nn = block.shell.distance_A * 1.01
    near = (np.linalg.norm(rv, axis=1) < nn) | (np.linalg.norm(rj, axis=1) < nn)
    near[[v, j]] = False
    return {int(i): rv[i] for i in np.flatnonzero(near)}


@pytest.mark.parametrize(("name", "periodic_z"), [("fcc", True), ("fcc", False),
                                                  ("diamond", False), ("bcc", False)])
def test_reach_codes_find_the_environment_by_distance(name, periodic_z):
    lat = preset(name, 2.0)
    block = build_block(lat, (3, 3, 3), periodic_z=periodic_z)
    envs = hop_environments(lat)
    shell = block.shell
    n_missing = 0
    site_ids = np.arange(block.n_sites, dtype=np.int64)  # "occupation" = the site's index
    for v in range(block.n_sites):
        b = v % lat.n_basis
        for k in range(int(shell.coordination[b])):
            off = block.offsets[block.site_class[v], k]
            if off == 0:
                continue
            j = v + int(off)
            out = np.empty(envs.n_env, np.int64)
            environment_codes(site_ids, v, j, block.site_class, block.offsets, envs.reach[b, k],
                              -1, out)
            reached = out.tolist()
            brute = _brute_env(block, v, j, periodic_z)
            assert sorted(i for i in reached if i >= 0) == sorted(brute)
            n_missing += reached.count(-1)
            template = envs.env_vectors_A(b, k, shell)
            for e, i in enumerate(reached):
                if i >= 0:
                    assert np.allclose(brute[i], template[e], atol=1e-9)
    assert (n_missing > 0) == (not periodic_z)


def test_one_or_two_solutes_give_as_many_keys_as_orbits_of_the_stabiliser():
    lat = preset("fcc", 1.0)
    block = build_block(lat, (4, 4, 4))
    envs = hop_environments(lat)
    v = 0
    j = v + int(block.offsets[block.site_class[v], 0])
    brute = _brute_env(block, v, j, True)
    sites = sorted(brute)
    assert len(sites) == 18
    d = _brute_env_vector(block, v, j)
    # stabiliser: signed permutations about v that fix the hop vector
    stab = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            r = np.zeros((3, 3))
            r[range(3), perm] = signs
            if np.allclose(r @ d, d):
                stab.append(r)
    assert len(stab) == 4
    rel = np.array([brute[i] for i in sites])
    images = [[int(np.argmin(np.linalg.norm(rel - r @ p, axis=1))) for p in rel] for r in stab]

    def n_orbits(subsets):
        seen, count = set(), 0
        for s in subsets:
            if s in seen:
                continue
            count += 1
            for img in images:
                seen.add(tuple(sorted(img[e] for e in s)))
        return count

    for n_solutes in (1, 2):
        subsets = list(itertools.combinations(range(18), n_solutes))
        keys = set()
        for s in subsets:
            occ = np.ones(block.n_sites, np.int8)
            occ[v] = 0
            for e in s:
                occ[sites[e]] = 2
            keys.add(_key_at(block, envs, occ, v, j, 2))
        assert len(keys) == n_orbits(subsets)
    assert len({_key_at(block, envs, np.ones(block.n_sites, np.int8), v, j, 2)}) == 1


def _brute_env_vector(block, v: int, j: int) -> np.ndarray:
    pos, box = _block_tables(block)
    d = pos[j] - pos[v]
    return d - box * np.round(d / box)


@pytest.mark.parametrize("name", ["fcc", "diamond", "honeycomb"])
def test_reverse_key_matches_the_key_at_the_reversed_hop(name):
    lat = preset(name, 1.0)
    cells = (4, 1, 4) if lat.dimension == 2 else (3, 3, 3)
    block = build_block(lat, cells)
    envs = hop_environments(lat)
    rng = np.random.default_rng(3)
    for _ in range(60):
        occ = rng.integers(0, 4, block.n_sites).astype(np.int8)  # 3 species and vacancies
        v, j = _random_hop(block, rng)
        c, key = _key_at(block, envs, occ, v, j, 3)
        c_rev, key_rev = _key_at(block, envs, occ, j, v, 3)
        assert reverse_key(key, c, envs, 3) == (c_rev, key_rev)
        assert reverse_key(key_rev, c_rev, envs, 3) == (c, key)


def test_key_text_round_trip_and_bad_text():
    envs = hop_environments(preset("fcc", A_CU))
    names = ["Cu", "Ni"]
    codes = np.array([1, 2, 0, 3] + [1] * 14)
    key = environment_key(codes, 0, envs, 2)
    digits = key_digits(key, envs, 2)
    assert environment_key(digits, 0, envs, 2) == key
    text = key_text(names, 1, 0, digits)
    assert text.startswith("Cu|c0|")
    words = text.split("|")[2].split(",")
    assert len(words) == 18 and sorted(set(words)) == ["-", "Cu", "Ni", "V"]
    moving, c, back = parse_key_text(text, names, envs)
    assert (moving, c) == (1, 0)
    assert np.array_equal(back, digits)
    for bad, field in [("Cu|c0", "key"), ("Fe|c0|Cu", "key.moving_species"),
                       ("Cu|x0|Cu", "key.hop_class"), ("Cu|c3|" + ",".join(["Cu"] * 18),
                                                        "key.hop_class"),
                       ("Cu|c0|Cu,Zn", "key.environment"), ("Cu|c0|Cu,Ni", "key.environment")]:
        with pytest.raises(CatalogError) as err:
            parse_key_text(bad, names, envs)
        assert err.value.field == field


def test_too_many_species_for_an_int64_key():
    envs = hop_environments(preset("fcc", A_CU))
    check_key_fits(envs, 9)  # base 11: 18 * log2(11) = 62.3 bits
    with pytest.raises(CatalogError, match="too many species"):
        check_key_fits(envs, 10)
    with pytest.raises(CatalogError):
        environment_key(np.ones(18, np.int64), 0, envs, 10)
    big = np.full(18, 10, np.int64)  # the largest key of 9 species still fits an int64
    assert environment_key(big, 0, envs, 9) == 11**18 - 1


# --- the structures-side key ----------------------------------------------------------------


def test_structure_key_equals_the_engine_key():
    pytest.importorskip("pymatgen")
    from pymatgen.core import Lattice, Structure

    from kmcflow.structures.environment import hop_environment_key

    lat = preset("fcc", A_CU)
    block = build_block(lat, (3, 3, 3))
    envs = hop_environments(lat)
    pos = block.site_positions_A()
    rng = np.random.default_rng(11)
    for trial in range(6):
        occ = rng.integers(1, 3, block.n_sites).astype(np.int8)
        v, j = _random_hop(block, rng)
        occ[v] = 0
        absent = [i for i in _brute_env(block, v, j, True) if rng.random() < 0.15]
        occ[absent] = 0
        keep = [i for i in range(block.n_sites) if i not in absent]
        if trial % 2:  # the vacancy site absent from the structure, given by its position
            keep.remove(v)
        symbols = ["X" if occ[i] == 0 else ("Cu", "Ni")[occ[i] - 1] for i in keep]
        structure = Structure(Lattice(block.cell_matrix_A()), symbols, pos[keep],
                              coords_are_cartesian=True)
        final = pos[v] if v not in keep else keep.index(v)
        got = hop_environment_key(structure, keep.index(j), final, lat, ["Cu", "Ni"])
        c, key = _key_at(block, envs, occ, v, j, 2)
        assert (got.hop_class, got.env_key) == (c, key)
        assert got.moving_species == occ[j]
        assert parse_key_text(got.text, ["Cu", "Ni"])[1] == c
    # a displaced environment site is named
    structure = Structure(Lattice(block.cell_matrix_A()), ["Cu"] * block.n_sites, pos,
                          coords_are_cartesian=True)
    v, j = 0, int(block.offsets[block.site_class[0], 0])
    structure.replace(v, "X")
    other = next(i for i in _brute_env(block, v, j, True))
    structure.translate_sites([other], [0.5, 0, 0], frac_coords=False, to_unit_cell=True)
    with pytest.raises(StructureError, match=f"site {other}"):
        hop_environment_key(structure, j, v, lat, ["Cu", "Ni"])
