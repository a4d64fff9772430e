"""Reference calculations: one static DFT(+U) or potential calculation of a bulk cell.

Before thousands of barriers, a campaign can check its calculator on the bulk phases: the
energy, the forces and, for a magnetic oxide, that the intended magnetic order survives the
self-consistency (an antiferromagnet: total magnetization near 0, absolute magnetization near
the sum of the local moments). :class:`StaticMaker` (atomate2 style: one dataclass ``Maker``)
runs it as a jobflow job; its output holds the numbers, the resolved calculator parameters
(the Hubbard U per element among them) and, for Quantum ESPRESSO, what pw.x itself printed:
the U of each species, the magnetizations and the band gap
(:mod:`kmcflow.workflows.band_gap`: across both spin channels and all k-points).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from jobflow import Maker, job

from kmcflow.workflows.calculators import (
    hubbard_u,
    load_calculator_config,
    make_calculator,
    resolved_parameters,
)

_U_LINE = re.compile(r"^\s*U\(\s*(\d+)\)\s*=\s*([-+0-9.Ee]+)", re.M)
_MAG = re.compile(r"(total|absolute) magnetization\s*=\s*([-+0-9.Ee]+)\s*Bohr mag/cell")


def espresso_output_summary(text: str) -> dict[str, Any]:
    """What pw.x printed: U per species index (eV) and the final magnetizations (Bohr mag)."""
    summary: dict[str, Any] = {"hubbard_U_eV_by_species": {
        int(k): float(v) for k, v in _U_LINE.findall(text)}}
    for kind, value in _MAG.findall(text):
        summary[f"{kind}_magnetization_muB"] = float(value)  # the last one is the converged
    summary["converged"] = "convergence has been achieved" in text
    return summary


@dataclass
class StaticMaker(Maker):
    """A static calculation (energy, forces, magnetization) with a kmcflow calculator config."""

    name: str = "kmcflow static"
    calculator_config: dict = field(default_factory=lambda: {"name": "emt"})

    @job(data=["code_output"])
    def make(self, structure, label: str = "") -> dict[str, Any]:
        """Run it in the job's folder; initial moments come from the ``magmom`` site property."""
        from pymatgen.io.ase import AseAtomsAdaptor

        config = load_calculator_config(self.calculator_config)
        atoms = AseAtomsAdaptor.get_atoms(structure)
        folder = Path.cwd() / "static"
        atoms.calc = make_calculator(config, atoms, folder)
        if config.name == "espresso":  # every band printed: pw.x drops them from 100 k-points
            atoms.calc.parameters["input_data"]["control"]["verbosity"] = "high"
        energy = float(atoms.get_potential_energy())
        forces = np.asarray(atoms.get_forces(), float)
        elements = sorted({s.symbol for s in atoms})
        record: dict[str, Any] = {
            "label": label, "formula": structure.composition.reduced_formula,
            "n_atoms": len(atoms), "energy_eV": energy,
            "energy_per_atom_eV": energy / len(atoms),
            "max_force_eV_per_A": float(np.linalg.norm(forces, axis=1).max()),
            "initial_moments_muB": [float(m) for m in atoms.get_initial_magnetic_moments()],
            "hubbard_U_eV": hubbard_u(config, elements),
            "calculator": resolved_parameters(config, atoms), "code_output": None}
        output = folder / "espresso.pwo"
        if config.name == "espresso" and output.is_file():
            text = output.read_text(errors="replace")
            record["code_output"] = text
            record.update(espresso_output_summary(text))
            record.update(_band_gap_fields(output))
        return record


def _band_gap_fields(output: Path) -> dict[str, Any]:
    """``band_gap_eV`` and its edges from a pw.x output, or why there is none."""
    from kmcflow.errors import KmcflowError
    from kmcflow.workflows.band_gap import espresso_band_gap

    try:
        gap = espresso_band_gap(output)
    except KmcflowError as exc:
        return {"band_gap_eV": None, "band_gap_why_none": exc.one_line()}
    return {"band_gap_eV": gap.gap_eV, "band_gap": gap.record()}
