"""Bundled crystals and structure file input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from kmcflow.errors import StructureError
from kmcflow.structures.bulk import bundled_entry, bundled_names
from kmcflow.structures.io import HOST, read_structure

# (name, space group number, formula, atoms in the conventional cell, a in Angstrom)
EXPECTED = [
    ("Cu", 225, "Cu", 4, 3.61496), ("Ni", 225, "Ni", 4, 3.52387), ("Al", 225, "Al", 4, 4.04958),
    ("Au", 225, "Au", 4, 4.07825), ("MgO", 225, "MgO", 8, 4.2117), ("NiO", 225, "NiO", 8, 4.1771),
    ("LiCoO2", 166, "LiCoO2", 12, 2.8156), ("LiFePO4", 62, "LiFePO4", 28, 10.332),
    ("Li2O", 225, "Li2O", 12, 4.61),
]


@pytest.mark.parametrize(("name", "number", "formula", "n_atoms", "a"), EXPECTED)
def test_bundled_crystal_is_the_published_one(bulk, name, number, formula, n_atoms, a):
    lab = bulk(name)
    s = lab.structure
    assert SpacegroupAnalyzer(s, symprec=0.01).get_space_group_number() == number
    assert s.composition.reduced_formula == formula
    assert len(s) == n_atoms
    assert s.lattice.a == pytest.approx(a, abs=1e-9)
    assert bundled_entry(name)["reference"]
    assert set(s.site_properties[HOST]) == {name}
    if len(s.composition.elements) > 1:  # oxides carry their formal oxidation states
        assert sum(site.specie.oxi_state for site in s) == 0


def test_library_lists_every_required_crystal():
    assert {"Cu", "Ni", "Al", "Au", "MgO", "NiO", "LiCoO2", "LiFePO4", "Li2O"} <= set(
        bundled_names())


def test_bond_lengths_of_the_layered_and_olivine_cells(bulk):
    # independent check of the Wyckoff positions: Co-O 1.92 A in LiCoO2, P-O ~1.54 A in LiFePO4
    lco = bulk("LiCoO2").structure
    co = next(i for i, s in enumerate(lco) if s.specie.symbol == "Co")
    co_o = min(lco.get_distance(co, j) for j, s in enumerate(lco) if s.specie.symbol == "O")
    assert co_o == pytest.approx(1.92, abs=0.02)
    lfp = bulk("LiFePO4").structure
    p = next(i for i, s in enumerate(lfp) if s.specie.symbol == "P")
    p_o = sorted(lfp.get_distance(p, j) for j, s in enumerate(lfp) if s.specie.symbol == "O")[:4]
    assert np.mean(p_o) == pytest.approx(1.54, abs=0.02)


@pytest.mark.parametrize("fmt", ["cif", "poscar", "json", "extxyz"])
def test_every_file_format_reads_back_the_same_crystal(bulk, tmp_path, fmt):
    s = bulk("LiCoO2").structure.copy()
    s.remove_site_property(HOST)
    name = {"cif": "x.cif", "poscar": "POSCAR", "json": "x.json", "extxyz": "x.extxyz"}[fmt]
    path = tmp_path / name
    if fmt == "extxyz":
        from ase.io import write
        from pymatgen.io.ase import AseAtomsAdaptor

        write(path, AseAtomsAdaptor.get_atoms(s), format="extxyz")
    else:
        s.to(filename=str(path))
    back = read_structure(path)
    assert back.name == "LiCoO2" and not back.is_interface
    assert back.structure.composition.reduced_formula == "LiCoO2"
    assert back.structure.lattice.volume == pytest.approx(s.lattice.volume, rel=1e-6)
    assert math.isclose(back.structure.lattice.c, 14.0542, rel_tol=1e-6)


def test_unreadable_inputs_name_the_file(tmp_path):
    with pytest.raises(StructureError, match="not a bundled"):
        read_structure(tmp_path / "missing.cif")
    bad = tmp_path / "bad.cif"
    bad.write_text("data_x\n_cell_length_a 3\n")
    with pytest.raises(StructureError) as info:
        read_structure(bad)
    assert str(bad) in info.value.one_line()
    odd = tmp_path / "x.pdbqt"
    odd.write_text("x")
    with pytest.raises(StructureError, match="unknown structure file type"):
        read_structure(odd)
    evil = tmp_path / "evil.json"
    evil.write_text(json.dumps({"@module": "os", "@class": "system", "args": ["true"]}))
    with pytest.raises(StructureError, match="not a pymatgen"):
        read_structure(evil)
