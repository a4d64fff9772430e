"""Sampled environment hops: the key each claims is the engine's key of its structure."""

from __future__ import annotations

import numpy as np
import pytest

from kmcflow.errors import StructureError
from kmcflow.kmc.lattice import preset
from kmcflow.structures.environment import hop_environment_key
from kmcflow.structures.environment_sampling import hops_for_keys, random_alloy_hops

SPECIES = ["Cu", "Ni"]
LATTICE = preset("fcc", 3.55)


def structure_key(hop) -> str:
    """The key of the hop read back from its structures (an independent route)."""
    moved = np.linalg.norm(hop.final.cart_coords - hop.initial.cart_coords, axis=1)
    atom = int(np.argmax(moved))
    s = hop.initial.copy()
    s.append("X", hop.final.cart_coords[atom], coords_are_cartesian=True)
    # back to the kMC lattice's own constant (Vegard cells are scaled)
    s.scale_lattice(s.volume * (LATTICE.a_A / hop.lattice_constant_A) ** 3)
    return hop_environment_key(s, atom, len(s) - 1, LATTICE, SPECIES).text


def test_random_alloy_hops_carry_the_engine_key_of_their_structures():
    hops = random_alloy_hops(LATTICE, SPECIES, {"Ni": 0.5}, 6, seed=3,
                             lattice_constants_A={"Cu": 3.59, "Ni": 3.49})
    assert len({h.key for h in hops}) == 6
    for hop in hops:
        assert structure_key(hop) == hop.key
        assert len(hop.initial) == len(hop.final) == 107  # 108 sites, one vacancy
        # Vegard: a = x_Cu a_Cu + x_Ni a_Ni over the atoms of the cell
        x = hop.composition["Ni"]
        assert hop.lattice_constant_A == pytest.approx((1 - x) * 3.59 + x * 3.49)
        assert abs(x - 0.5) < 0.01
        assert hop.final.lattice.a == pytest.approx(3 * hop.lattice_constant_A)


def test_moving_species_and_composition_are_as_asked():
    hops = random_alloy_hops(LATTICE, SPECIES, {"Ni": 0.25}, 4, seed=1, moving="Ni")
    assert {h.species for h in hops} == {"Ni"}
    for hop in hops:
        counts = [site.specie.symbol for site in hop.initial].count("Ni")
        assert counts in (26, 27, 28)  # 27 of 108 drawn, the moving atom may be set to Ni
        assert hop.key.startswith("Ni|c0|")


def test_hops_for_keys_realise_the_key_with_a_second_vacancy():
    key = "Cu|c0|" + ",".join(["Ni"] * 5 + ["V"] + ["Cu"] * 12)
    (hop,) = hops_for_keys([key], LATTICE, SPECIES, seed=2)
    assert structure_key(hop) == hop.key
    assert len(hop.initial) == 106  # two vacancies
    # the rest of the cell follows the environment's own composition: 5 Ni of 17 atoms
    assert hop.composition["Ni"] == pytest.approx(5 / 17, abs=0.05)
    again = hops_for_keys([hop.key], LATTICE, SPECIES, seed=9)[0]
    assert again.key == hop.key


@pytest.mark.parametrize(("call", "words"), [
    (lambda: random_alloy_hops(LATTICE, SPECIES, {"Ni": 1.5}, 2), "fractions must lie in 0-1"),
    (lambda: random_alloy_hops(LATTICE, SPECIES, {"Fe": 0.5}, 2), "unknown species Fe"),
    (lambda: random_alloy_hops(LATTICE, SPECIES, {"Cu": 0.6, "Ni": 0.6}, 2), "add up to"),
    (lambda: random_alloy_hops(LATTICE, SPECIES, {"Ni": 0.5}, 2, repeats=(1, 1, 1)),
     "too small"),
    (lambda: random_alloy_hops(LATTICE, SPECIES, {"Ni": 0.0}, 3), "distinct environments"),
    (lambda: hops_for_keys(["Cu|c0|" + ",".join(["Cu"] * 17 + ["-"])], LATTICE, SPECIES),
     "closed boundary"),
])
def test_bad_requests_are_refused_with_the_field(call, words):
    with pytest.raises(StructureError) as info:
        call()
    assert words in str(info.value)


@pytest.mark.parametrize(("call", "words"), [
    (lambda: random_alloy_hops(preset("square", 3.0), SPECIES, {"Ni": 0.5}, 1, repeats=(4, 4, 4)),
     "two-dimensional"),
    (lambda: random_alloy_hops(LATTICE, SPECIES, {"Ni": 0.5}, 1,
                               lattice_constants_A={"Cu": 0.0, "Ni": 3.5}), "1-20 Angstrom"),
    (lambda: random_alloy_hops(LATTICE, SPECIES, {"Ni": 0.5}, 1,
                               lattice_constants_A={"Cu": float("inf"), "Ni": 3.5}),
     "1-20 Angstrom"),
    (lambda: random_alloy_hops(LATTICE, SPECIES, {"Ni": 0.5}, 1, repeats=(300, 300, 300)),
     "at most"),
])
def test_cells_that_would_be_another_crystal_or_absurd_are_refused(call, words):
    with pytest.raises(StructureError) as info:
        call()
    assert words in str(info.value)
