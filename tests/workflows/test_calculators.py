"""Calculator configs: DFT inputs written without running the codes, clear errors before jobs."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from ase import Atoms

from kmcflow.errors import ConfigError
from kmcflow.workflows.calculators import (
    MATERIALS_PROJECT_U_EV,
    check_ready,
    command_executable,
    cp2k_template,
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
    for name in ("vasp_std", "cp2k.psmp", "mpirun"):
        _script(folder / name, "exit 1")
    # what Debian's pw.x 6.7 prints when it starts
    _script(folder / "pw.x", "echo '     Program PWSCF v.6.7MaX starts on  7Dec2026'; exit 1")
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return folder


def _script(path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


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


def test_gpaw_parameters(nio):
    gpaw = resolved_parameters(load_calculator_config(
        {"name": "gpaw", "hubbard_U_eV": {"Ni": 6.0}}), nio)["parameters"]
    assert gpaw["setups"] == {"Ni": ":d,6.0"} and gpaw["mode"] == {"name": "pw", "ecut": 520.0}


def test_cp2k_template_carries_scf_smearing_u_and_moments(nio, tmp_path):
    """What ASE's CP2K calculator does not write itself (issue 12, defect 4: the runtime path
    dropped the SCF threshold and the smearing)."""
    config = load_calculator_config({"name": "cp2k", "hubbard_U_eV": "materials_project",
                                     "spin_polarized": True, "magnetic_moments": {"Ni": 2.0},
                                     "energy_convergence_eV": 1e-5, "smearing_eV": 0.1,
                                     "pseudo_dir": str(tmp_path)})
    text = cp2k_template(config, nio)
    assert "EPS_SCF 3.675E-07" in text  # 1e-5 eV in Hartree
    assert "ELECTRONIC_TEMPERATURE [K] 1160.5" in text  # 0.1 eV / k_B
    assert "PLUS_U_METHOD MULLIKEN" in text and "U_MINUS_J [eV] 6.2" in text
    assert "MAGNETIZATION 2.0" in text and "SCHEME MONKHORST-PACK" in text
    assert text.count("&KIND") == 1  # O carries neither U nor a moment
    afm = nio.copy()
    afm.set_initial_magnetic_moments([2.0, 0.0])
    afm2 = afm * (2, 1, 1)
    afm2.set_initial_magnetic_moments([2.0, 0.0, -2.0, 0.0])
    with pytest.raises(ConfigError, match="antiferromagnet"):
        cp2k_template(config, afm2)


@pytest.mark.dft
@pytest.mark.skipif(shutil.which("cp2k.psmp") is None
                    and os.environ.get("KMCFLOW_REQUIRE_SLURM") != "1",
                    reason="CP2K (cp2k.psmp) is not installed")
def test_cp2k_runs_in_shell_mode_with_the_input_it_was_given(tmp_path):
    """A real CP2K (Debian's 2023.1) through make_calculator: H2 at the Gamma point."""
    config = load_calculator_config({"name": "cp2k", "kpoints": [1, 1, 1],
                                     "cp2k_density_cutoff_Ry": 200.0, "smearing_eV": 0.1,
                                     "energy_convergence_eV": 1e-5})
    assert config.model_dump()["command"] is None  # the default: cp2k.psmp -s
    def h2(bond_A: float) -> Atoms:
        atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, bond_A]], cell=[5.0, 5.0, 5.0],
                      pbc=True)
        atoms.center()
        return atoms

    calc = make_calculator(config, h2(0.74), tmp_path / "cp2k")
    energies = {}
    for bond in (0.73, 0.75, 0.74):
        atoms = h2(bond)
        atoms.calc = calc
        energies[bond] = atoms.get_potential_energy()
    forces = atoms.get_forces()
    calc.close()
    # a band: one CP2K shell serves every image in turn (a shell per image kept N CP2K
    # processes alive), and each image still gets its own energy (to the SCF threshold: the
    # shell starts each SCF from the previous image's wavefunction)
    from kmcflow.workflows.calculators import band_calculators
    from kmcflow.workflows.neb import counted

    band = [h2(b) for b in (0.73, 0.75, 0.74)]
    calculator_for = band_calculators(config, band, tmp_path / "band")
    assert calculator_for(0) is calculator_for(1) is calculator_for(2)
    calls = [0]
    for k, image in enumerate(band):
        image.calc = counted(calculator_for(k), calls)
    for image, bond in [(band[2], 0.74), (band[0], 0.73), (band[1], 0.75), (band[0], 0.73)]:
        assert image.get_potential_energy() == pytest.approx(energies[bond], abs=5e-4)
    band[0].positions[1, 2] += 0.01  # image 0 moves to 0.74
    assert band[0].get_potential_energy() == pytest.approx(energies[0.74], abs=5e-4)
    assert calls[0] == 4
    calculator_for(0).close()
    written = (tmp_path / "cp2k" / "cp2k.inp").read_text()
    assert "EPS_SCF 3.675E-07" in written and "ELECTRONIC_TEMPERATURE [K] 1160.5" in written
    assert "CUTOFF [eV] 2.7211" in written and "KPOINTS" not in written
    # GTH-PBE H2 is about -1.16 Hartree; the force along the bond is minus the slope of the
    # energy (central difference), in eV/A, and there is no force across it
    assert energies[0.74] == pytest.approx(-31.68, abs=0.05)
    slope = (energies[0.75] - energies[0.73]) / 0.02
    assert forces[1, 2] == pytest.approx(-slope, abs=0.05)
    assert forces[0, 2] == pytest.approx(-forces[1, 2], abs=1e-3)
    assert abs(forces[:, :2]).max() < 1e-3


@pytest.mark.parametrize(("command", "exe"), [
    ("pw.x", "pw.x"),
    ("mpirun -np 4 pw.x -nk 2", "pw.x"),
    ("env OMP_NUM_THREADS=2 mpiexec -np 4 cp2k.psmp -s", "cp2k.psmp"),
    ("srun --mpi=pmi2 /opt/vasp/bin/vasp_std", "/opt/vasp/bin/vasp_std"),
    ("OMP_NUM_THREADS=1 timeout 3600 pw.x -in x", "pw.x"),
])
def test_the_executable_is_found_in_a_launch_command(command, exe):
    code = {"pw": "espresso", "cp": "cp2k", "va": "vasp"}[Path(exe).name[:2]]
    assert command_executable(command, code) == exe


def test_commands_with_launchers_and_arguments_are_accepted(nio, tmp_path, fake_bin):
    """Issue 12, defect 4: check_ready looked at the last word, refusing these."""
    pseudo = tmp_path / "pseudo"
    pseudo.mkdir()
    for el in ("Ni", "O"):
        (pseudo / f"{el}.pbe.UPF").write_text("")
    check_ready(load_calculator_config({"name": "espresso", "pseudo_dir": str(pseudo),
                                        "command": "mpirun -np 4 pw.x -nk 2"}), ["Ni", "O"])
    (tmp_path / "cp2k").mkdir()
    for name in ("BASIS_MOLOPT", "GTH_POTENTIALS"):
        (tmp_path / "cp2k" / name).write_text("")
    cp2k = {"name": "cp2k", "pseudo_dir": str(tmp_path / "cp2k")}
    check_ready(load_calculator_config({**cp2k, "command": "mpirun -np 2 cp2k.psmp -s"}),
                ["Ni", "O"])
    check_ready(load_calculator_config(cp2k), ["Ni", "O"])  # default: cp2k.psmp -s
    with pytest.raises(ConfigError, match="shell mode") as refused:
        check_ready(load_calculator_config({**cp2k, "command": "cp2k.psmp"}), ["Ni", "O"])
    assert "cp2k.psmp -s" in refused.value.one_line()
    # an option's value that looks like the code is not taken for it
    _script(fake_bin / "vasp_std", "exit 1")
    assert command_executable("mpirun -np 4 --wdir /scratch/vasp_runs vasp_std", "vasp") == \
        "vasp_std"
    assert command_executable("env CP2K_DATA_DIR=/usr/share/cp2k cp2k.psmp -s", "cp2k") == \
        "cp2k.psmp"
    # ASE runs pw.x without a shell: a leading assignment would be taken for the program
    with pytest.raises(ConfigError, match=r"env OMP_NUM_THREADS=1 pw\.x"):
        check_ready(load_calculator_config({"name": "espresso", "pseudo_dir": str(pseudo),
                                            "command": "OMP_NUM_THREADS=1 pw.x"}), ["Ni", "O"])
    with pytest.raises(ConfigError, match="'aprun'"):  # a Cray launcher, absent here
        check_ready(load_calculator_config({"name": "espresso", "pseudo_dir": str(pseudo),
                                            "command": "aprun -n 4 pw.x"}), ["Ni", "O"])


def test_espresso_writes_the_hubbard_syntax_its_pw_x_reads(nio, tmp_path, fake_bin):
    pseudo = tmp_path / "pseudo"
    pseudo.mkdir()
    for el in ("Ni", "O"):
        (pseudo / f"{el}.pbe.UPF").write_text("")
    base = {"name": "espresso", "pseudo_dir": str(pseudo), "hubbard_U_eV": {"Ni": 6.0},
            "spin_polarized": True}
    afm = nio * (2, 1, 1)
    afm.set_initial_magnetic_moments([2.0, 0.0, -2.0, 0.0])

    def written(config) -> str:
        calc = make_calculator(load_calculator_config(config), afm.copy(), tmp_path / "qe")
        calc.write_inputfiles(afm, ["energy", "forces"])
        return (tmp_path / "qe" / "espresso.pwi").read_text()

    legacy = written(base)  # the fake pw.x says 6.7
    assert "lda_plus_u       = .true." in legacy and "HUBBARD" not in legacy
    card = written({**base, "espresso_version": "7.2"})
    assert "lda_plus_u" not in card and "hubbard_u(" not in card
    lines = card.split("HUBBARD (atomic)")[1].strip().splitlines()[:2]
    assert lines == ["U Ni-3d 6.0", "U Ni1-3d 6.0"]
    species = card.split("ATOMIC_SPECIES")[1].split("\n")[1:4]
    assert [line.split()[0] for line in species] == ["Ni", "O", "Ni1"]  # the labels it uses
    (tmp_path / "silent").mkdir()
    _script(tmp_path / "silent" / "pw.x", "exit 1")  # a pw.x that prints no version
    silent = {**base, "command": str(tmp_path / "silent" / "pw.x")}
    with pytest.raises(ConfigError, match="espresso_version"):
        check_ready(load_calculator_config(silent), ["Ni", "O"])


def test_vasp_takes_the_checked_pseudopotential_folder_over_vasp_pp_path(nio, tmp_path,
                                                                         fake_bin, monkeypatch):
    """An existing VASP_PP_PATH silently won over the pseudo_dir check_ready had checked."""
    fake_potcars(tmp_path / "checked", ["Ni", "O"])
    fake_potcars(tmp_path / "other", ["Ni", "O"])
    for el in ("Ni", "O"):
        potcar = tmp_path / "other" / "potpaw_PBE" / el / "POTCAR"
        potcar.write_text(potcar.read_text().replace("06Sep2000", "OTHER"))
    monkeypatch.setenv("VASP_PP_PATH", str(tmp_path / "other"))
    config = load_calculator_config({"name": "vasp", "pseudo_dir": str(tmp_path / "checked")})
    calc = make_calculator(config, nio, tmp_path / "run")
    calc.write_input(nio)
    potcar = (tmp_path / "run" / "POTCAR").read_text()
    assert "06Sep2000" in potcar and "OTHER" not in potcar


def test_a_setting_that_was_never_read_is_refused():
    with pytest.raises(ConfigError, match="never read") as refused:
        load_calculator_config({"name": "vasp", "force_convergence_eV_per_A": 0.02})
    assert refused.value.field == "force_convergence_eV_per_A"


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
    assert slab.energy_convergence_eV == 1e-5
    assert kpoints(slab, [10.0, 10.0, 30.0], supercell=(3, 3, 1)) == [2, 2, 1]
    assert kpoints(slab, [2.5, 2.5, 30.0]) == [6, 6, 1]
    bulk = load_calculator_config("vasp")
    assert kpoints(bulk, [5.0, 5.0, 12.5]) == [5, 5, 2]
    with pytest.raises(ConfigError, match="unknown calculator"):
        load_calculator_config("castep")


def test_espresso_without_spin_writes_no_moments_even_if_the_structure_has_some(
        nio, tmp_path, fake_bin):
    """Moments on the structure with spin_polarized false made ASE write nspin = 2 and split
    Ni into Ni and Ni1, while U went to the one Ni species only."""
    pseudo = tmp_path / "pseudo"
    pseudo.mkdir()
    for el in ("Ni", "O"):
        (pseudo / f"{el}.pbe.UPF").write_text("")
    afm = nio * (2, 1, 1)
    afm.set_initial_magnetic_moments([2.0, 0.0, -2.0, 0.0])
    config = load_calculator_config({"name": "espresso", "pseudo_dir": str(pseudo),
                                     "hubbard_U_eV": {"Ni": 6.0}, "espresso_version": "7.2"})
    calc = make_calculator(config, afm.copy(), tmp_path / "qe")
    calc.write_inputfiles(afm, ["energy", "forces"])
    text = (tmp_path / "qe" / "espresso.pwi").read_text()
    assert "nspin            = 1" in text and "Ni1" not in text
    assert "U Ni-3d 6.0" in text
