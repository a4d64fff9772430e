"""Fixtures of the workflow tests: the ASE Au/Al(100) tutorial endpoints, a Cu vacancy hop."""

from __future__ import annotations

import pytest

pytest.importorskip("jobflow", reason="needs the workflows extra")
pytest.importorskip("atomate2", reason="needs the workflows extra")


@pytest.fixture(scope="session")
def au_al_endpoints():
    """ASE's NEB tutorial: an Au adatom hopping between hollow sites of Al(100) (0.374 eV)."""
    from ase.build import add_adsorbate, fcc100
    from ase.constraints import FixAtoms

    slab = fcc100("Al", size=(2, 2, 3))
    add_adsorbate(slab, "Au", 1.7, "hollow")
    slab.center(axis=2, vacuum=4.0)
    slab.set_constraint(FixAtoms(mask=[atom.tag > 1 for atom in slab]))
    initial = slab.copy()
    slab[-1].x += slab.get_cell()[0, 0] / 2
    return initial, slab.copy()


@pytest.fixture(scope="session")
def cu_vacancy_endpoints():
    """A Cu vacancy hop in a 2x2x2 conventional supercell (31 atoms), from the hop tools."""
    from kmcflow.structures.endpoints import hop_endpoints
    from kmcflow.structures.hops import enumerate_hops
    from kmcflow.structures.io import read_structure, to_ase_atoms

    cu = read_structure("Cu")
    pair = hop_endpoints(cu, enumerate_hops(cu, "Cu").hops[0], min_image_distance_A=7.0)
    return to_ase_atoms(pair.initial), to_ase_atoms(pair.final)
