"""One hop from its two endpoints: relax, CI-NEB, Vineyard prefactor, and the result.

These are plain functions on ASE ``Atoms``; the jobflow makers (:mod:`kmcflow.workflows.makers`)
and ``kmcflow barrier`` both call them, so a hop computed either way gives the same numbers.
They take the settings models of :mod:`kmcflow.workflows.settings` (``RelaxSettings``,
``NebSettings`` and ``PrefactorSettings`` are importable from here too) and return the result
models of :mod:`kmcflow.workflows.results`; :func:`compute_hop` returns a
:class:`~kmcflow.workflows.results.HopResult`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from kmcflow.errors import WorkflowError
from kmcflow.workflows.calculators import (
    DFT_CODES,
    CalculatorConfig,
    band_calculators,
    batch_evaluator,
    make_calculator,
    resolved_parameters,
)
from kmcflow.workflows.neb import (
    check_endpoints,
    interpolate_band,
    moved_index,
    relax_band,
    spline_barrier,
)
from kmcflow.workflows.prefactor import vineyard_prefactor
from kmcflow.workflows.results import HopNebResult, HopResult, PrefactorResult, RelaxResult

# the settings' home is kmcflow.workflows.settings; imported from here too
from kmcflow.workflows.settings import (
    NebSettings,
    PrefactorSettings,
    RelaxSettings,
    as_settings,
)


def relax_endpoint(atoms, config: CalculatorConfig, settings: RelaxSettings,
                   workdir: str | Path) -> RelaxResult:
    """Relax positions at fixed cell with BFGS; constraints (FixAtoms) are honoured."""
    from ase.optimize import BFGS

    from kmcflow.workflows.neb import counted

    work = atoms.copy()
    counter = [0]
    work.calc = counted(make_calculator(config, work, workdir), counter)
    if not settings.enabled:
        return RelaxResult.with_atoms(work, energy_eV=float(work.get_potential_energy()),
                                      converged=True, force_calls=counter[0])
    opt = BFGS(work, logfile=None)
    converged = bool(opt.run(fmax=settings.fmax_eV_per_A, steps=settings.steps))
    return RelaxResult.with_atoms(work, energy_eV=float(work.get_potential_energy()),
                                  converged=converged, steps=opt.nsteps,
                                  force_calls=counter[0])


def run_neb(initial, final, config: CalculatorConfig, settings: NebSettings,
            workdir: str | Path, checkpoint: str | Path | None = None,
            hop_inputs: tuple[str, str] | None = None) -> HopNebResult:
    """Interpolate and relax the band between two (relaxed) endpoints.

    ``hop_inputs``: digests of the hop's unrelaxed endpoints, for the checkpoint's identity.
    """
    images = interpolate_band(initial, final, settings.n_images, settings.interpolation)
    return relax_band_with(config, images, settings, workdir, checkpoint,
                           {"hop": list(hop_inputs) if hop_inputs else None})


def relax_band_with(config: CalculatorConfig, images: list, settings: NebSettings,
                    workdir: str | Path, checkpoint: str | Path | None = None,
                    identity: dict[str, Any] | None = None) -> HopNebResult:
    """Relax a band (interpolated, or carried over from a warm start) with ``config``.

    One place for ``kmcflow barrier``, the makers and the table recipes: the calculator of
    each image (one folder each), the batched evaluation, the optimizer choice for the code,
    and the surrogate band (``settings.surrogate``), whose prior is the config's warm-start
    calculator when it has one. ``identity`` joins the calculator config in the checkpoint's.
    """
    own = config.without_warm_start()
    work = Path(workdir)
    ident = {"calculator": config.identity(), **(identity or {})}
    if settings.surrogate == "gp":
        from kmcflow.workflows.surrogate import relax_band_surrogate

        cheap = config.warm_start
        band = relax_band_surrogate(
            images, band_calculators(own, images, work), settings,
            prior_for=None if cheap is None else band_calculators(cheap, images,
                                                                  work / "prior"),
            checkpoint=checkpoint, identity=ident)
    else:
        band = relax_band(images, band_calculators(own, images, work), settings,
                          batch_evaluator(own) if settings.batched else None,
                          checkpoint=checkpoint, identity=ident,
                          expensive_calls=own.name in DFT_CODES)
    return band.model_copy(update={"calculator": {"name": config.name}})


def warm_start_hop(initial, final, config: CalculatorConfig, relax: RelaxSettings,
                   neb: NebSettings, workdir: str | Path
                   ) -> tuple[RelaxResult, RelaxResult, HopNebResult]:
    """The cheap part of a warm start: both endpoints and the band with ``config.warm_start``.

    The band runs without a surrogate (cheap calls need none). See
    :mod:`kmcflow.workflows.warm_start`.
    """
    cheap = config.warm_start
    if cheap is None:
        raise WorkflowError("the calculator config has no warm start", field="warm_start",
                            hint="e.g. {name: espresso, warm_start: chgnet}")
    work = Path(workdir)
    ini = relax_endpoint(initial, cheap, relax, work / "relax_initial")
    fin = relax_endpoint(final, cheap, relax, work / "relax_final")
    band = run_neb(ini.atoms, fin.atoms, cheap, neb.model_copy(update={"surrogate": "none"}),
                   work / "neb")
    return ini, fin, band


def run_prefactor(initial, neb: HopNebResult, config: CalculatorConfig,
                  settings: PrefactorSettings, workdir: str | Path,
                  moving: int | None = None) -> PrefactorResult:
    """Vineyard prefactor at ``initial`` and the climbing image of ``neb``.

    ``initial`` None: the band's first image.
    """
    images = neb.atoms()
    if neb.saddle_index is None or not images:
        return PrefactorResult(failure="no saddle: the band failed")
    initial = images[0] if initial is None else initial
    moving = moved_index(images[0], images[-1]) if moving is None else moving
    work = Path(workdir)
    return vineyard_prefactor(initial, images[neb.saddle_index],
                              lambda name: make_calculator(config, initial, work / name),
                              moving, work / "vibrations", final=images[-1], settings=settings,
                              tangent=None if neb.tangent is None else np.asarray(neb.tangent))


def hop_result(hop: dict[str, Any], initial: RelaxResult, final: RelaxResult,
               neb: HopNebResult, prefactor: PrefactorResult, config: CalculatorConfig,
               atoms, warm_start: dict[str, Any] | None = None) -> HopResult:
    """The result of one hop (one function for every path: ``barrier``, the flows, HPC).

    ``atoms`` (a structure of the hop) resolves the calculator's parameters for the record;
    ``warm_start`` is :func:`~kmcflow.workflows.warm_start.warm_start_record` of a hop that
    had one (its calls are ``warm_start_force_calls``, never ``force_calls``).
    """
    e = list(neb.energies or [])
    saddle = e[neb.saddle_index] if e and neb.saddle_index is not None else None
    try:
        spline = spline_barrier(e) if len(e) >= 3 else None
    except Exception:
        spline = None
    before = (int(neb.settings.get("force_calls_before_resume") or 0)
              + initial.force_calls_before_resume + final.force_calls_before_resume)
    # this run's calls; a run that continued a killed one also spent the calls before
    calls = neb.force_calls + initial.force_calls + final.force_calls + prefactor.force_calls
    result = HopResult(
        hop=hop, event_key=hop.get("event_key"),
        forward_barrier_eV=neb.forward_barrier, reverse_barrier_eV=neb.reverse_barrier,
        kra_eV=None if saddle is None else saddle - 0.5 * (e[0] + e[-1]),
        reaction_energy_eV=None if not e else e[-1] - e[0],
        energies_eV=e, saddle_index=neb.saddle_index, spline=spline,
        prefactor_Hz=prefactor.prefactor_Hz,
        reverse_prefactor_Hz=prefactor.reverse_prefactor_Hz,
        prefactor_route=prefactor.prefactor_route, prefactor=prefactor,
        converged=bool(neb.converged and initial.converged and final.converged),
        neb_converged=neb.converged,
        endpoints_converged=[initial.converged, final.converged],
        force_calls=calls, force_calls_before_resume=before,
        force_calls_all_runs=calls + before, neb_force_calls=neb.force_calls,
        failure_reason=neb.failure_reason or (None if prefactor.prefactor_Hz is not None
                                              else "prefactor_failed"),
        failure_message=neb.failure_message or (prefactor.failure or ""),
        neb_settings=neb.settings,
        calculator=(resolved_parameters(config, atoms) if atoms is not None
                    else {"code": config.name, "config": config.model_dump(mode="json")}),
        code_versions=code_versions(config), warm_start=warm_start,
        warm_start_force_calls=None if warm_start is None else warm_start["force_calls"])
    return result.with_band(neb)


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


def compute_hop(initial, final, config: CalculatorConfig | str | dict[str, Any], *,
                neb: NebSettings | None = None, relax: RelaxSettings | None = None,
                prefactor: PrefactorSettings | None = None,
                workdir: str | Path | None = None, hop: dict[str, Any] | None = None,
                checkpoint: str | Path | None = None) -> HopResult:
    """Relax both endpoints, run the CI-NEB and the prefactor of one hop.

    A config with a ``warm_start`` calculator relaxes endpoints and band with it first
    (:mod:`kmcflow.workflows.warm_start`); ``neb.surrogate="gp"`` relaxes the band on a
    Gaussian-process surrogate (:mod:`kmcflow.workflows.surrogate`).

    ``initial`` and ``final`` are ASE ``Atoms`` (same atoms, same order); ``config`` a
    :class:`CalculatorConfig`, a code name (``"emt"``) or a config mapping/file. Settings left
    out are the models' defaults. The calculators' files go to ``workdir`` (default: a
    temporary folder, removed afterwards). With ``checkpoint`` the band is saved after every
    step and a rerun continues from it. The result keeps its band (``result.band``).
    """
    import tempfile

    from kmcflow.workflows.calculators import load_calculator_config

    # every input is checked before the first force call
    config = load_calculator_config(config)
    neb = as_settings(NebSettings, neb, "neb")
    relax = as_settings(RelaxSettings, relax, "relax")
    prefactor = as_settings(PrefactorSettings, prefactor, "prefactor")
    hop_record = _hop_record(hop)
    initial, final = endpoint_atoms(initial, "initial"), endpoint_atoms(final, "final")
    check_endpoints(initial, final)
    moving = moved_index(initial, final)
    from kmcflow.workflows.resume import structure_digest
    from kmcflow.workflows.warm_start import carry_band, warm_start_record

    identity = {"hop": [structure_digest(initial), structure_digest(final)]}
    own = config.without_warm_start()
    warm = None
    with tempfile.TemporaryDirectory(prefix="kmcflow-hop-") as scratch:
        work = Path(workdir) if workdir is not None else Path(scratch)
        if config.warm_start is not None:
            ini_c, fin_c, band_c = warm_start_hop(initial, final, config, relax, neb,
                                                  work / "warm_start")
            warm = warm_start_record(config.warm_start.name, ini_c, fin_c, band_c)
            ini = relax_endpoint(ini_c.atoms, own, relax, work / "relax_initial")
            fin = relax_endpoint(fin_c.atoms, own, relax, work / "relax_final")
            images = carry_band(band_c.atoms(), ini.atoms, fin.atoms)
        else:
            ini = relax_endpoint(initial, own, relax, work / "relax_initial")
            fin = relax_endpoint(final, own, relax, work / "relax_final")
            images = interpolate_band(ini.atoms, fin.atoms, neb.n_images, neb.interpolation)
        band = relax_band_with(config, images, neb, work / "neb", checkpoint, identity)
        pre = run_prefactor(ini.atoms, band, own, prefactor, work, moving)
    return hop_result(hop_record, ini, fin, band, pre, config, ini.atoms, warm_start=warm)


def _hop_record(hop: Any) -> dict[str, Any]:
    """The hop's record for the result: a :class:`~kmcflow.structures.hops.Hop`, a mapping."""
    if hop is None:
        return {}
    if isinstance(hop, dict):
        return dict(hop)
    if callable(getattr(hop, "record", None)):  # a structures Hop
        return hop.record()
    raise WorkflowError(f"hop must be a Hop or a mapping, got a {type(hop).__name__}",
                        field="hop", hint="pass the Hop from enumerate_hops, or leave it out")


def endpoint_atoms(endpoint: Any, which: str):
    """ASE ``Atoms`` of an endpoint given as ``Atoms``, a structure file, or a structure.

    A pymatgen ``Structure`` or a labelled structure is converted (fixed sites become
    ``FixAtoms``; kmcflow's per-site labels are dropped); a path is read by
    :func:`read_atoms`.
    """
    from ase import Atoms

    if isinstance(endpoint, Atoms):
        return endpoint
    if isinstance(endpoint, str | os.PathLike):
        return read_atoms(Path(endpoint))
    from kmcflow.errors import StructureError
    from kmcflow.structures.io import read_structure, to_ase_atoms

    try:
        return to_ase_atoms(read_structure(endpoint), labels=False)
    except StructureError as exc:
        raise WorkflowError(f"the {which} endpoint: {exc.message}", field=which,
                            hint="give ASE Atoms, a pymatgen Structure or a structure file"
                            ) from exc


def read_atoms(path: Path):
    """Read one structure as ASE Atoms (fixed atoms kept), naming the file on failure."""
    if not path.exists():
        raise WorkflowError("structure file not found", file=str(path), hint="check the path")
    if path.suffix.lower() in (".json", ".extxyz", ".cif", ".vasp") or path.name.startswith(
            ("POSCAR", "CONTCAR")):
        from kmcflow.structures.io import read_structure, to_ase_atoms

        return to_ase_atoms(read_structure(path), labels=False)  # every check of the file
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
