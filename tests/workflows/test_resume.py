"""Checkpoints: a relaxation continues from its last structure, an optimizer from its state,
and pw.x gets DFT+U on the right species of an antiferromagnet."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ase")

from ase.build import bulk
from ase.calculators.emt import EMT
from ase.optimize import BFGS

from kmcflow.workflows.neb import counted
from kmcflow.workflows.resume import (
    OptimizerState,
    checkpoint_path,
    flush_all,
    resume_positions,
    saving_positions,
)


def _vacancy_cell():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
    del atoms[0]
    atoms.rattle(0.05, seed=3)
    return atoms


class Killed(Exception):
    """What the scheduler's signal does to a running relaxation (from the trap)."""


class KilledAfter(EMT):
    """EMT that is killed on its ``n + 1``-th evaluation."""

    def __init__(self, n: int):
        super().__init__()
        self.left = n

    def calculate(self, *args, **kwargs):
        if self.left == 0:
            raise Killed
        self.left -= 1
        super().calculate(*args, **kwargs)


def test_killed_relaxation_continues_from_its_last_structure(tmp_path):
    start = _vacancy_cell()
    fresh = start.copy()
    calls = [0]
    fresh.calc = counted(EMT(), calls)
    BFGS(fresh, logfile=None).run(fmax=0.01)
    n_fresh = calls[0]

    path = checkpoint_path(tmp_path, start)
    first = start.copy()
    first.calc = saving_positions(KilledAfter(6), path)
    with pytest.raises(Killed):
        BFGS(first, logfile=None).run(fmax=0.01)
    assert path.is_file()

    second = start.copy()
    assert checkpoint_path(tmp_path, second) == path  # named by the input, not the progress
    assert resume_positions(path, second) == 6  # the force calls the killed run spent
    assert not np.allclose(second.positions, start.positions)
    calls2 = [0]
    second.calc = counted(EMT(), calls2)
    BFGS(second, logfile=None).run(fmax=0.01)
    assert calls2[0] < n_fresh
    assert second.get_potential_energy() == pytest.approx(fresh.get_potential_energy(),
                                                          abs=2e-3)
    other = bulk("Cu", "fcc", a=3.6, cubic=True)
    assert resume_positions(path, other) is None  # wrong size: ignored


def test_optimizer_state_round_trip_gives_the_same_next_step(tmp_path):
    atoms = _vacancy_cell()
    atoms.calc = EMT()
    opt = BFGS(atoms, logfile=None)
    state = OptimizerState(tmp_path / "opt.npz", interval_s=1e9)
    state.attach(opt)
    opt.run(fmax=1e-6, steps=4)
    assert not (tmp_path / "opt.npz").exists()  # kept in memory until a flush
    flush_all()
    assert (tmp_path / "opt.npz").is_file()
    copy = atoms.copy()
    copy.calc = EMT()
    opt2 = BFGS(copy, logfile=None)
    assert OptimizerState(tmp_path / "opt.npz").restore(opt2)
    np.testing.assert_allclose(opt2.H, opt.H)
    opt.run(fmax=1e-6, steps=1)
    opt2.run(fmax=1e-6, steps=1)
    np.testing.assert_allclose(copy.positions, atoms.positions, atol=1e-12)
    state.close()
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    opt3 = BFGS(atoms.copy(), logfile=None)
    assert not OptimizerState(tmp_path / "bad.npz").restore(opt3)


def test_espresso_hubbard_u_follows_the_up_and_down_species(tmp_path):
    pytest.importorskip("pymatgen")
    from pymatgen.io.ase import AseAtomsAdaptor

    from kmcflow.structures.bulk import bundled_structure
    from kmcflow.structures.magnetic import rocksalt_afm_111
    from kmcflow.workflows.calculators import (
        espresso_moment_fractions,
        espresso_species,
        load_calculator_config,
        resolved_parameters,
    )

    # UPF headers as Quantum ESPRESSO's pseudopotential files write them
    (tmp_path / "Ni.test.UPF").write_text('<UPF version="2.0.1">\n<PP_HEADER\n'
                                          '   z_valence="1.000000000000e1"\n/>\n')
    (tmp_path / "O.test.UPF").write_text('<UPF version="2.0.1">\n<PP_HEADER\n'
                                         '   z_valence="6.0"\n/>\n')
    config = load_calculator_config({"name": "espresso", "hubbard_U_eV": {"Ni": 6.0},
                                     "spin_polarized": True, "pseudo_dir": str(tmp_path),
                                     "kpoints": [2, 2, 2]})
    atoms = AseAtomsAdaptor.get_atoms(rocksalt_afm_111(bundled_structure("NiO"), 2.0))
    assert espresso_species(config, atoms) == [("Ni", 2.0), ("Ni", -2.0), ("O", 0.0)]
    system = resolved_parameters(config, atoms)["parameters"]["input_data"]["system"]
    assert system["Hubbard_U(1)"] == system["Hubbard_U(2)"] == 6.0
    assert "Hubbard_U(3)" not in system
    assert espresso_moment_fractions(config, atoms) == pytest.approx([0.2, -0.2, 0.0, 0.0])
