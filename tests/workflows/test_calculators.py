"""Calculator configs: DFT inputs written without running the codes, clear errors before jobs."""

from __future__ import annotations

import os
import stat

import pytest
from ase import Atoms

from kmcflow.errors import ConfigError
from kmcflow.workflows.calculators import (
    MATERIALS_PROJECT_U_EV,
    check_ready,
    cp2k_input,
    kpoints,
    load_calculator_config,
    make_calculator,
    resolved_parameters,
)


@pytest.fixture
def nio():
    a = 2.09
    return Atoms("NiO", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]],
                 cell=[[0, a, a], [a, 0, a], [a, a, 0]], pbc=True)


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    """Executables that exist but do nothing: the codes are never run here."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("vasp_std", "pw.x", "cp2k.psmp"):
        exe = folder / name
        exe.write_text("#!/bin/sh\nexit 1\n")
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


def fake_potcars(root, elements):
    for el in elements:
        d = root / "potpaw_PBE" / el
        d.mkdir(parents=True)
        (d / "POTCAR").write_text(f"  PAW_PBE {el} 06Sep2000\n   TITEL  = PAW_PBE {el}\n"
                                  "   POMASS =   58.690; ZVAL   =   10.000\n End of Dataset\n")


def test_vasp_incar_has_dft_plus_u_in_species_order(nio, tmp_path, fake_bin):
    fake_potcars(tmp_path / "pp", ["Ni", "O"])
    config = load_calculator_config({"name": "vasp", "pseudo_dir": str(tmp_path / "pp"),
                                     "hubbard_U_eV": "materials_project",
                                     "spin_polarized": True, "magnetic_moments": {"Ni": 2.0}})
    calc = make_calculator(config, nio, tmp_path / "run")
    calc.write_input(nio)
    incar = {line.split("=")[0].strip(): line.split("=")[1].strip()
             for line in (tmp_path / "run" / "INCAR").read_text().splitlines() if "=" in line}
    assert incar["LDAU"] == ".TRUE." and incar["LDAUTYPE"] == "2"
    assert incar["LDAUL"].split() == ["2", "-1"]  # POSCAR order: Ni, O
    assert [float(x) for x in incar["LDAUU"].split()] == [6.2, 0.0]
    assert incar["ISPIN"] == "2" and incar["MAGMOM"].split() == ["1*2.0000", "1*0.0000"]
    assert float(incar["EDIFF"]) == 1e-5
    poscar = (tmp_path / "run" / "POSCAR").read_text().splitlines()
    assert poscar[5].split() == ["Ni", "O"]


def test_espresso_input_has_hubbard_u_and_pseudopotentials(nio, tmp_path, fake_bin):
    pseudo = tmp_path / "pseudo"
    pseudo.mkdir()
    for name in ("Ni.pbe-n-kjpaw_psl.0.1.UPF", "O.pbe-n-kjpaw_psl.0.1.UPF"):
        (pseudo / name).write_text("<UPF/>")
    config = load_calculator_config({"name": "espresso", "pseudo_dir": str(pseudo),
                                     "hubbard_U_eV": {"Ni": 6.0}, "cutoff_eV": 544.23})
    calc = make_calculator(config, nio, tmp_path / "qe")
    calc.write_inputfiles(nio, ["energy", "forces"])
    text = (tmp_path / "qe" / "espresso.pwi").read_text()
    keys = {line.split("=")[0].strip().lower(): line.split("=")[1].strip()
            for line in text.splitlines() if "=" in line}
    assert keys["lda_plus_u"] == ".true."
    assert float(keys["hubbard_u(1)"]) == 6.0  # species 1 = Ni (ATOMIC_SPECIES order)
    assert "hubbard_u(2)" not in keys
    assert float(keys["ecutwfc"]) == pytest.approx(40.0, abs=1e-3)  # 544.23 eV in Ry
    species = text.split("ATOMIC_SPECIES")[1].split("\n")[1:3]
    assert species[0].split()[::2] == ["Ni", "Ni.pbe-n-kjpaw_psl.0.1.UPF"]


def test_gpaw_and_cp2k_parameters(nio):
    gpaw = resolved_parameters(load_calculator_config(
        {"name": "gpaw", "hubbard_U_eV": {"Ni": 6.0}}), nio)["parameters"]
    assert gpaw["setups"] == {"Ni": ":d,6.0"} and gpaw["mode"] == {"name": "pw", "ecut": 520.0}
    config = load_calculator_config({"name": "cp2k", "hubbard_U_eV": "materials_project",
                                     "spin_polarized": True, "magnetic_moments": {"Ni": 2.0}})
    text = cp2k_input(config, nio)
    assert "PLUS_U_METHOD MULLIKEN" in text and "U_MINUS_J [eV] 6.2" in text
    assert "MAGNETIZATION 2.0" in text and "SCHEME MONKHORST-PACK" in text
    assert text.count("&KIND") == 2


def test_missing_executables_and_pseudopotentials_fail_before_any_job(nio, tmp_path,
                                                                      monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing runnable
    with pytest.raises(ConfigError, match="executable") as info:
        check_ready(load_calculator_config({"name": "vasp", "pseudo_dir": str(tmp_path)}),
                    ["Ni", "O"])
    assert info.value.field == "command"
    exe = tmp_path / "vasp_std"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    with pytest.raises(ConfigError, match="pseudopotential folder"):
        check_ready(load_calculator_config({"name": "vasp", "pseudo_dir": "/nowhere"}),
                    ["Ni", "O"])
    with pytest.raises(ConfigError, match="POTCAR"):
        check_ready(load_calculator_config({"name": "vasp", "pseudo_dir": str(tmp_path)}),
                    ["Ni", "O"])


def test_u_values_presets_and_k_points(nio):
    assert MATERIALS_PROJECT_U_EV == {"Co": 3.32, "Cr": 3.7, "Fe": 5.3, "Mn": 3.9,
                                      "Mo": 4.38, "Ni": 6.2, "V": 3.25, "W": 6.2}
    with pytest.raises(ConfigError, match="Fe"):
        check_ready(load_calculator_config({"name": "emt", "hubbard_U_eV": {"Fe": 5.3}}),
                    ["Ni", "O"])
    slab = load_calculator_config({"name": "vasp", "preset": "slab"})
    assert slab.force_convergence_eV_per_A == 0.02 and slab.energy_convergence_eV == 1e-5
    assert kpoints(slab, [10.0, 10.0, 30.0], supercell=(3, 3, 1)) == [2, 2, 1]
    assert kpoints(slab, [2.5, 2.5, 30.0]) == [6, 6, 1]
    bulk = load_calculator_config("vasp")
    assert kpoints(bulk, [5.0, 5.0, 12.5]) == [5, 5, 2]
    with pytest.raises(ConfigError, match="unknown calculator"):
        load_calculator_config("castep")
