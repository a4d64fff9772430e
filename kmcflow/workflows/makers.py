"""jobflow makers of one hop, following atomate2: one dataclass ``Maker`` per calculation.

- :class:`RelaxMaker` subclasses atomate2's ``AseRelaxMaker`` (fixed cell, fixed atoms kept as
  ``FixAtoms`` from pymatgen ``selective_dynamics``); its output is atomate2's
  ``AseStructureTaskDoc``. The calculator comes from a kmcflow calculator config per structure.
  With ``checkpoint_dir`` the last evaluated positions are saved, and a rerun of the same
  input continues from them (:mod:`kmcflow.workflows.resume`).
- :class:`NebMaker` subclasses atomate2's ``AseNebFromImagesMaker`` and keeps its job, its
  ``NebResult`` schema and its data handling, but runs kmcflow's two-stage band
  (:func:`kmcflow.workflows.neb.relax_band`: plain NEB then climbing image, an explicit tangent
  method, one calculator folder per image, force calls counted, failure reasons), because
  atomate2 0.1.5 runs a single stage without climbing image by default, shares one calculator
  folder between images (file-based DFT codes overwrite each other) and counts no force calls.
  Its output :class:`HopNebResult` extends emmet's ``NebResult``.
- :class:`PrefactorMaker`: the Vineyard prefactor (atomate2 has none).
- :func:`interpolate_job` and :func:`hop_result_job`: the IDPP band and the result record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from atomate2.ase.jobs import _ASE_DATA_OBJECTS, AseRelaxMaker
from atomate2.ase.neb import AseNebFromImagesMaker
from emmet.core.neb import NebResult
from jobflow import Maker, job
from pydantic import BaseModel, Field
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from kmcflow.workflows.calculators import (
    band_calculators,
    batch_evaluator,
    load_calculator_config,
    make_calculator,
)
from kmcflow.workflows.hop import PrefactorSettings, RelaxOutcome, result_record
from kmcflow.workflows.neb import (
    NebOutcome,
    NebSettings,
    counted,
    interpolate_band,
    moved_index,
    relax_band,
)
from kmcflow.workflows.prefactor import PrefactorOutcome, vineyard_prefactor
from kmcflow.workflows.resume import checkpoint_path, resume_positions, saving_positions


def _atoms(structure):
    return AseAtomsAdaptor.get_atoms(structure) if isinstance(structure, Structure) else structure


@dataclass
class RelaxMaker(AseRelaxMaker):
    """Fixed-cell relaxation of an endpoint with a kmcflow calculator config."""

    name: str = "kmcflow relax"
    calculator_config: dict = field(default_factory=lambda: {"name": "emt"})
    relax_cell: bool = False
    steps: int = 300
    relax_kwargs: dict = field(default_factory=lambda: {"fmax": 0.02})
    optimizer_kwargs: dict = field(default_factory=lambda: {"optimizer": "BFGS"})
    checkpoint_dir: str | None = None

    def _get_calculator(self):
        """A stand-in naming the code; :meth:`run_ase` builds the real one per structure."""
        from types import SimpleNamespace

        return SimpleNamespace(name=load_calculator_config(self.calculator_config).name)

    def run_ase(self, mol_or_struct, prev_dir=None):
        """Build the calculator for this structure, then relax as atomate2 does."""
        config = load_calculator_config(self.calculator_config)
        atoms = _atoms(mol_or_struct)
        calculator = make_calculator(config, atoms, Path.cwd() / "relax")
        before = 0
        if self.checkpoint_dir is not None and isinstance(mol_or_struct, Structure):
            path = checkpoint_path(self.checkpoint_dir, atoms)
            resumed = resume_positions(path, atoms)
            if resumed is not None:  # a killed run of this input got this far
                before = resumed
                mol_or_struct = Structure(mol_or_struct.lattice, mol_or_struct.species,
                                          atoms.positions, coords_are_cartesian=True,
                                          site_properties=mol_or_struct.site_properties)
            calculator = saving_positions(calculator, path, calls_before=before)
        counter = [0]
        self._calculator = counted(calculator, counter)
        self._force_calls = (counter, before)
        return super().run_ase(mol_or_struct, prev_dir=prev_dir)

    @job(data=_ASE_DATA_OBJECTS)
    def make(self, mol_or_struct, prev_dir=None):
        """Relax as atomate2's maker does; the document's tags carry the force calls.

        ``force_calls=N`` (this run) and ``force_calls_before_resume=M`` (the runs a kill
        interrupted), read back by :func:`relax_force_calls`.
        """
        doc = AseRelaxMaker.make.original(self, mol_or_struct, prev_dir)
        counter, before = self._force_calls
        doc.tags = [*(doc.tags or []), f"force_calls={counter[0]}",
                    f"force_calls_before_resume={before}"]
        return doc


class HopNebResult(NebResult):
    """emmet's ``NebResult`` plus what a catalog needs from a band."""

    force_calls: int = 0
    converged: bool = False
    failure_reason: str | None = None
    failure_message: str = ""
    saddle_index: int | None = None
    tangent: list[list[float]] | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    calculator: dict[str, Any] = Field(default_factory=dict)

    def outcome(self) -> NebOutcome:
        """Back to the plain-function form (images as ASE Atoms)."""
        images = [AseAtomsAdaptor.get_atoms(s) for s in (self.images or [])]
        return NebOutcome(images, list(self.energies or []), self.forward_barrier,
                          self.reverse_barrier, self.saddle_index, self.force_calls,
                          self.converged, self.failure_reason, self.failure_message,
                          dict(self.settings),
                          None if self.tangent is None else np.asarray(self.tangent))


@dataclass
class NebMaker(AseNebFromImagesMaker):
    """Two-stage CI-NEB of an interpolated band (see the module docstring).

    With ``checkpoint_dir`` the band is saved after every step and a rerun continues from it
    (:func:`kmcflow.workflows.neb.relax_band`); ``checkpoint_identity`` (``{"hop": [digests of
    the unrelaxed endpoints]}``) tells the checkpoint which hop it belongs to.
    """

    name: str = "kmcflow CI-NEB"
    calculator_config: dict = field(default_factory=lambda: {"name": "emt"})
    settings: dict = field(default_factory=dict)
    checkpoint_dir: str | None = None
    checkpoint_identity: dict = field(default_factory=dict)

    def run_ase(self, images, prev_dir=None) -> HopNebResult:
        """Relax the band with kmcflow's engine and return the extended emmet document."""
        config = load_calculator_config(self.calculator_config)
        atoms = [_atoms(im) for im in images]
        settings = NebSettings(**{**self.settings, "n_images": len(atoms) - 2})
        out = relax_band(atoms, band_calculators(config, atoms, Path.cwd()), settings,
                         batch_evaluator(config) if settings.batched else None,
                         checkpoint=self.checkpoint_dir,
                         identity={"calculator": config.model_dump(mode="json"),
                                   **self.checkpoint_identity})
        structures = [AseAtomsAdaptor.get_structure(a) for a in out.images]
        ok = out.failure_reason is None
        return HopNebResult(
            images=structures, energies=out.energies_eV or None,
            forward_barrier=out.forward_barrier_eV, reverse_barrier=out.reverse_barrier_eV,
            state="successful" if ok else "failed", force_calls=out.force_calls,
            converged=out.converged, failure_reason=out.failure_reason,
            failure_message=out.message, saddle_index=out.saddle_index,
            tangent=None if out.tangent is None else out.tangent.tolist(),
            settings=out.settings, calculator={"name": config.name},
            tags=["kmcflow", f"method:{settings.method}", "climbing_image"])


class PrefactorDoc(BaseModel):
    """Output of :class:`PrefactorMaker` (see :class:`PrefactorOutcome`)."""

    prefactor_Hz: float | None = None
    prefactor_route: str = "failed"
    reverse_prefactor_Hz: float | None = None
    indices: list[int] = Field(default_factory=list)
    n_imaginary_saddle: int = 0
    initial_frequencies_THz: list[float] = Field(default_factory=list)
    saddle_frequencies_THz: list[float] = Field(default_factory=list)
    final_frequencies_THz: list[float] = Field(default_factory=list)
    flagged: bool = False
    failure: str | None = None
    force_calls: int = 0

    def outcome(self) -> PrefactorOutcome:
        """Back to the plain-function form."""
        return PrefactorOutcome(self.prefactor_Hz, self.prefactor_route, list(self.indices),
                                list(self.initial_frequencies_THz),
                                list(self.saddle_frequencies_THz), self.n_imaginary_saddle,
                                self.flagged, self.failure, self.force_calls,
                                self.reverse_prefactor_Hz, list(self.final_frequencies_THz))


@dataclass
class PrefactorMaker(Maker):
    """Vineyard prefactor at the band's initial image and its climbing image."""

    name: str = "kmcflow prefactor"
    calculator_config: dict = field(default_factory=lambda: {"name": "emt"})
    radius_A: float = 0.0
    allow_fallback: bool = False
    delta_A: float = 0.01

    @job(output_schema=PrefactorDoc)
    def make(self, neb: HopNebResult) -> PrefactorDoc:
        """Finite-difference Hessians and the Vineyard ratio (or a recorded failure)."""
        out = neb.outcome()
        if out.saddle_index is None or not out.images:
            return PrefactorDoc(failure="no saddle: the band failed")
        config = load_calculator_config(self.calculator_config)
        initial = out.images[0]
        moving = moved_index(out.images[0], out.images[-1])
        settings = PrefactorSettings(self.radius_A, self.allow_fallback, self.delta_A)
        work = Path.cwd()
        res = vineyard_prefactor(initial, out.images[out.saddle_index],
                                 lambda name: make_calculator(config, initial, work / name),
                                 moving, work / "vibrations", final=out.images[-1],
                                 radius_A=settings.radius_A,
                                 tangent=out.tangent, allow_fallback=settings.allow_fallback,
                                 delta_A=settings.delta_A)
        record = res.record()
        return PrefactorDoc(**{k: record[k] for k in PrefactorDoc.model_fields if k in record})


@job
def interpolate_job(initial, final, n_images: int, method: str = "idpp") -> list[Structure]:
    """The interpolated band between two relaxed endpoints (fixed atoms kept)."""
    images = interpolate_band(_atoms(initial), _atoms(final), n_images, method)
    return [AseAtomsAdaptor.get_structure(a) for a in images]


def relax_force_calls(doc) -> tuple[int, int]:
    """Force calls of a :class:`RelaxMaker` document: (this run, the runs before a resume)."""
    tags = dict(t.split("=", 1) for t in (getattr(doc, "tags", None) or []) if "=" in t)
    return int(tags.get("force_calls", 0)), int(tags.get("force_calls_before_resume", 0))


def _relax_outcome(doc) -> RelaxOutcome:
    energy = getattr(getattr(doc, "output", None), "energy", None)
    converged = getattr(doc, "is_force_converged", None)
    calls, before = relax_force_calls(doc)
    return RelaxOutcome(None, float(energy) if energy is not None else float("nan"),
                        bool(converged) if converged is not None else True, 0, calls, before)


@job
def hop_result_job(hop: dict, relax_initial, relax_final, neb: HopNebResult,
                   prefactor: PrefactorDoc, calculator: dict) -> dict:
    """The result record of one hop (the same record ``kmcflow barrier`` writes)."""
    config = load_calculator_config(calculator)
    out = neb.outcome()
    return result_record(hop, _relax_outcome(relax_initial), _relax_outcome(relax_final), out,
                         prefactor.outcome(), config,
                         out.images[0] if out.images else None)
