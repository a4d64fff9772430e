"""One hop from its two endpoints: relax, CI-NEB, Vineyard prefactor, and the result record.

These are plain functions on ASE ``Atoms``; the jobflow makers (:mod:`kmcflow.workflows.makers`)
and ``kmcflow barrier`` both call them, so a hop computed either way gives the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kmcflow.errors import WorkflowError
from kmcflow.workflows.calculators import (
    CalculatorConfig,
    band_calculators,
    batch_evaluator,
    make_calculator,
    resolved_parameters,
)
from kmcflow.workflows.neb import (
    NebOutcome,
    NebSettings,
    check_endpoints,
    interpolate_band,
    moved_index,
    relax_band,
    spline_barrier,
)
from kmcflow.workflows.prefactor import PrefactorOutcome, vineyard_prefactor


@dataclass(frozen=True)
class RelaxSettings:
    """Fixed-cell relaxation of an endpoint (fixed atoms stay fixed)."""

    fmax_eV_per_A: float = 0.02
    steps: int = 300
    enabled: bool = True


@dataclass(frozen=True)
class PrefactorSettings:
    """Which atoms vibrate and whether a flagged 1e13 Hz fallback is allowed."""

    radius_A: float = 0.0
    allow_fallback: bool = False
    delta_A: float = 0.01


@dataclass
class RelaxOutcome:
    """A relaxed endpoint."""

    atoms: Any
    energy_eV: float
    converged: bool
    steps: int
    force_calls: int
    force_calls_before_resume: int = 0


def relax_endpoint(atoms, config: CalculatorConfig, settings: RelaxSettings,
                   workdir: str | Path) -> RelaxOutcome:
    """Relax positions at fixed cell with BFGS; constraints (FixAtoms) are honoured."""
    from ase.optimize import BFGS

    from kmcflow.workflows.neb import counted

    work = atoms.copy()
    counter = [0]
    work.calc = counted(make_calculator(config, work, workdir), counter)
    if not settings.enabled:
        return RelaxOutcome(work, float(work.get_potential_energy()), True, 0, counter[0])
    opt = BFGS(work, logfile=None)
    converged = bool(opt.run(fmax=settings.fmax_eV_per_A, steps=settings.steps))
    return RelaxOutcome(work, float(work.get_potential_energy()), converged, opt.nsteps,
                        counter[0])


def run_neb(initial, final, config: CalculatorConfig, settings: NebSettings,
            workdir: str | Path, checkpoint: str | Path | None = None,
            hop_inputs: tuple[str, str] | None = None) -> NebOutcome:
    """Interpolate and relax the band between two (relaxed) endpoints.

    ``hop_inputs``: digests of the hop's unrelaxed endpoints, for the checkpoint's identity.
    """
    images = interpolate_band(initial, final, settings.n_images, settings.interpolation)
    return relax_band(images, band_calculators(config, images, workdir),
                      settings, batch_evaluator(config) if settings.batched else None,
                      checkpoint=checkpoint,
                      identity={"calculator": config.model_dump(mode="json"),
                                "hop": list(hop_inputs) if hop_inputs else None})


def run_prefactor(initial, neb: NebOutcome, config: CalculatorConfig,
                  settings: PrefactorSettings, workdir: str | Path,
                  moving: int | None = None) -> PrefactorOutcome:
    """Vineyard prefactor at the initial state and the climbing image of ``neb``."""
    if neb.saddle_index is None:
        return PrefactorOutcome(None, "failed", [], failure="no saddle (the band failed)")
    saddle = neb.images[neb.saddle_index]
    moving = moved_index(neb.images[0], neb.images[-1]) if moving is None else moving
    work = Path(workdir)
    return vineyard_prefactor(initial, saddle, lambda name: make_calculator(config, initial,
                                                                            work / name),
                              moving, work / "vibrations", final=neb.images[-1],
                              radius_A=settings.radius_A,
                              tangent=neb.tangent, allow_fallback=settings.allow_fallback,
                              delta_A=settings.delta_A)


@dataclass
class HopComputation:
    """Everything computed for one hop, with the record that goes into results and catalogs."""

    initial: RelaxOutcome
    final: RelaxOutcome
    neb: NebOutcome
    prefactor: PrefactorOutcome
    config: CalculatorConfig
    hop: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """JSON-ready result (energies eV, prefactor Hz); see :func:`result_record`."""
        return result_record(self.hop, self.initial, self.final, self.neb, self.prefactor,
                             self.config, self.initial.atoms)


def result_record(hop: dict[str, Any], initial: RelaxOutcome, final: RelaxOutcome,
                  neb: NebOutcome, prefactor: PrefactorOutcome, config: CalculatorConfig,
                  atoms) -> dict[str, Any]:
    """The result of one hop as the README documents it (one function for every path)."""
    e = neb.energies_eV
    saddle = e[neb.saddle_index] if e and neb.saddle_index is not None else None
    kra = None if saddle is None else saddle - 0.5 * (e[0] + e[-1])
    try:
        spline = spline_barrier(e) if len(e) >= 3 else None
    except Exception:
        spline = None
    failure = neb.failure_reason or (None if prefactor.prefactor_Hz is not None
                                     else "prefactor_failed")
    before = (int(neb.settings.get("force_calls_before_resume") or 0)
              + initial.force_calls_before_resume + final.force_calls_before_resume)
    return {
        "hop": hop,
        "event_key": hop.get("event_key"),
        "forward_barrier_eV": neb.forward_barrier_eV,
        "reverse_barrier_eV": neb.reverse_barrier_eV,
        "kra_eV": kra,
        "reaction_energy_eV": None if not e else e[-1] - e[0],
        "energies_eV": e,
        "saddle_index": neb.saddle_index,
        "spline": spline,
        "prefactor_Hz": prefactor.prefactor_Hz,
        "reverse_prefactor_Hz": prefactor.reverse_prefactor_Hz,
        "prefactor_route": prefactor.route,
        "prefactor": prefactor.record(),
        "converged": bool(neb.converged and initial.converged and final.converged),
        "neb_converged": neb.converged,
        "endpoints_converged": [initial.converged, final.converged],
        # this run's calls; a run that continued a killed one also spent the calls before
        "force_calls": (neb.force_calls + initial.force_calls + final.force_calls
                        + prefactor.force_calls),
        "force_calls_before_resume": before,
        "force_calls_all_runs": (neb.force_calls + initial.force_calls + final.force_calls
                                 + prefactor.force_calls + before),
        "neb_force_calls": neb.force_calls,
        "failure_reason": failure,
        "failure_message": neb.message or (prefactor.failure or ""),
        "neb_settings": neb.settings,
        "calculator": (resolved_parameters(config, atoms) if atoms is not None
                       else {"code": config.name, "config": config.model_dump(mode="json")}),
        "code_versions": code_versions(config),
    }


def code_versions(config: CalculatorConfig) -> dict[str, str]:
    """Versions of the packages that computed a result."""
    from importlib.metadata import PackageNotFoundError, version

    extra = {"chgnet": ["chgnet", "torch"], "sevenn": ["sevenn", "torch"], "gpaw": ["gpaw"]}
    names = ["kmcflow", "ase", "numpy", *extra.get(config.name, [])]
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def compute_hop(initial, final, config: CalculatorConfig, *, neb: NebSettings | None = None,
                relax: RelaxSettings | None = None, prefactor: PrefactorSettings | None = None,
                workdir: str | Path = ".", hop: dict[str, Any] | None = None,
                checkpoint: str | Path | None = None) -> HopComputation:
    """Relax both endpoints, run the CI-NEB and the prefactor of one hop.

    With ``checkpoint`` the band is saved after every step and a rerun continues from it.
    """
    neb = neb or NebSettings()
    relax = relax or RelaxSettings()
    prefactor = prefactor or PrefactorSettings()
    neb.check()
    check_endpoints(initial, final)
    moving = moved_index(initial, final)
    work = Path(workdir)
    ini = relax_endpoint(initial, config, relax, work / "relax_initial")
    fin = relax_endpoint(final, config, relax, work / "relax_final")
    from kmcflow.workflows.resume import structure_digest

    band = run_neb(ini.atoms, fin.atoms, config, neb, work / "neb", checkpoint,
                   hop_inputs=(structure_digest(initial), structure_digest(final)))
    pre = run_prefactor(ini.atoms, band, config, prefactor, work, moving)
    return HopComputation(ini, fin, band, pre, config, dict(hop or {}))


def read_atoms(path: Path):
    """Read one structure as ASE Atoms (fixed atoms kept), naming the file on failure."""
    if not path.exists():
        raise WorkflowError("structure file not found", file=str(path), hint="check the path")
    if path.suffix.lower() in (".json", ".extxyz", ".cif", ".vasp") or path.name.startswith(
            ("POSCAR", "CONTCAR")):
        from kmcflow.structures.io import read_structure, to_ase_atoms

        atoms = to_ase_atoms(read_structure(path))  # every check of a structure file
        for name in ("host", "distance_from_interface_A"):
            if name in atoms.arrays:
                del atoms.arrays[name]
        return atoms
    if not path.is_file():  # a folder, a device, a FIFO
        raise WorkflowError("is not a regular file", file=str(path),
                            hint="give extxyz, POSCAR, CIF or pymatgen JSON")
    from ase.io import read

    try:
        atoms = read(path, index=-1)
    except Exception as exc:  # ASE raises many types for a bad file
        raise WorkflowError(f"cannot read the structure: {exc}", file=str(path),
                            hint="give extxyz, POSCAR, CIF or pymatgen JSON") from exc
    if not (np.all(np.isfinite(atoms.positions)) and np.all(np.isfinite(atoms.cell.array))):
        raise WorkflowError("the cell or the positions hold NaN or infinite numbers",
                            file=str(path), hint="check the numbers in the file")
    return atoms
