"""R independent trajectories over P ranks, reduced to means with standard errors.

Replica ``r`` is the serial trajectory fixed by ``(seed, r)`` (see
:mod:`kmcflow.kmc.engine`); rank ``p`` runs replicas ``p, p + P, p + 2P, ...``, each into its own
folder ``replicas/rNNNN`` with the serial runner (its own checkpoints). The per-replica arrays are
gathered to rank 0 (an MPI collective), put in replica order and reduced there, so the ensemble
result is bit-identical for any number of ranks, one included, and with or without mpi4py.

Outputs in the run folder: ``ensemble.json`` (inputs, per-replica and mean interdiffusion
coefficients with the standard error and a 95 % Student-t confidence interval, the fit of the
mean profile), ``ensemble.npz`` (``time`` s, ``z`` Angstrom, and for ``x_first_host``,
``width_10_90`` Angstrom, ``width_erfc`` Angstrom, ``msd`` Angstrom^2: ``*_mean`` and
``*_stderr`` over replicas), ``sigma2_vs_time.png`` (the replica mean of the erfc-fit variance
sigma^2 ± 1 s.e. and the line ``2 D t + b`` of the reported D), ``width_band.png`` and
``profile_band.png``, and ``replicas/``.

Restart: a killed replica run resumes replica by replica: finished replicas (their folder has a
``summary.json``) are kept, unfinished ones continue from their own checkpoint.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from kmcflow.atomic_io import replace_directory, write_json, write_npz
from kmcflow.errors import CheckpointError, ConfigError, ParallelError
from kmcflow.kmc.catalog import Catalog
from kmcflow.kmc.runner import ProgressCallback, RunSettings, partial_path, run_to_directory
from kmcflow.outputs import check_output_folder, write_marker
from kmcflow.readers import NPZ_ERRORS, read_json

_SERIES = ("x_first_host", "width_10_90", "width_erfc", "msd")
_GEOMETRY = ("interfaces_z_A", "first_host_below")


def replica_dir(work: Path, replica: int) -> Path:
    """The folder of one replica inside a replica run."""
    return work / "replicas" / f"r{replica:04d}"


def _load_replica(folder: Path) -> dict[str, Any]:
    try:
        with np.load(folder / "observables.npz", allow_pickle=False) as data:
            arrays = {k: data[k] for k in ("time", "z", "length_z_A", "periodic_z", *_GEOMETRY,
                                           *_SERIES) if k in data.files}
    except NPZ_ERRORS as exc:
        raise CheckpointError(f"a finished replica's observables are unreadable ({exc})",
                              file=str(folder / "observables.npz"),
                              hint="drop --resume to run the replicas afresh") from exc
    missing = [k for k in ("time", "z", "length_z_A", "periodic_z", *_SERIES) if k not in arrays]
    if missing:
        raise CheckpointError(f"a finished replica's observables lack {', '.join(missing)}",
                              file=str(folder / "observables.npz"),
                              hint="drop --resume to run the replicas afresh")
    summary = read_json(folder / "summary.json", error=CheckpointError, what="replica summary",
                        hint="drop --resume to run the replicas afresh")
    if not isinstance(summary, dict) or not isinstance(summary.get("interdiffusion"), dict):
        raise CheckpointError("not a replica summary", file=str(folder / "summary.json"),
                              hint="drop --resume to run the replicas afresh")
    arrays["summary"] = summary
    return arrays


def student_t_95(dof: int) -> float:
    """Two-sided 95 % quantile of Student's t with ``dof`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def reduce_replicas(results: list[dict[str, Any]]) -> tuple[dict[str, np.ndarray], dict]:
    """Mean and standard error over replicas (in the given order) of every sampled series.

    Returns the arrays of ``ensemble.npz`` and the ``interdiffusion`` record.
    """
    n = len(results)
    n_samples = min(r["time"].size for r in results)
    arrays: dict[str, np.ndarray] = {k: results[0][k] for k in ("z", "length_z_A",
                                                                 "periodic_z", *_GEOMETRY)
                                     if k in results[0]}
    arrays["time"] = results[0]["time"][:n_samples]
    for name in _SERIES:
        stack = np.stack([r[name][:n_samples] for r in results])
        arrays[f"{name}_mean"] = np.mean(stack, axis=0)
        arrays[f"{name}_stderr"] = (np.std(stack, axis=0, ddof=1) / math.sqrt(n) if n > 1
                                    else np.full(stack.shape[1:], np.nan))
    d_values = [r["summary"]["interdiffusion"].get("D_A2_per_s") for r in results]
    record: dict[str, Any] = {"per_replica_D_A2_per_s": d_values}
    good = np.array([d for d in d_values if d is not None], float)
    if good.size:
        mean = float(np.mean(good))
        record["D_A2_per_s"] = mean
        record["D_cm2_per_s"] = mean * 1e-16
        record["replicas_fitted"] = int(good.size)
        intercepts = [r["summary"]["interdiffusion"].get("intercept_A2") for r in results
                      if r["summary"]["interdiffusion"].get("D_A2_per_s") is not None]
        if all(b is not None for b in intercepts):  # the line 2 D t + b of this D
            record["intercept_A2"] = float(np.mean(intercepts))
        if good.size > 1:
            se = float(np.std(good, ddof=1) / math.sqrt(good.size))
            half = student_t_95(good.size - 1) * se
            record["D_stderr_A2_per_s"] = se
            record["D_95ci_A2_per_s"] = [mean - half, mean + half]
        record["method"] = ("mean over replicas of the per-replica erfc fits; standard error "
                            "from their spread; 95 % interval from Student's t")
    else:
        record["error"] = "no replica could be fitted (too short a run?)"
    arrays["n_replicas"] = np.array(n)
    return arrays, record


def run_replicas(
    catalog: Catalog,
    settings: RunSettings,
    out_dir: str | os.PathLike[str],
    n_replicas: int,
    comm: Any,
    catalog_file: str | None = None,
    resume: bool = False,
    checkpoint_interval_s: float = 300.0,
    progress: ProgressCallback | None = None,
    plots: bool = True,
    snapshots: bool = False,
    overwrite: bool = False,
    acceleration=None,
) -> dict:
    """Run ``n_replicas`` trajectories over the ranks of ``comm``; return the ensemble summary.

    Collective: every rank calls it and gets the summary back. ``out_dir`` follows
    :func:`kmcflow.outputs.check_output_folder` (``overwrite`` replaces an earlier run).
    ``acceleration`` (:class:`~kmcflow.kmc.acceleration.AccelerationSettings`) accelerates
    every replica alike; each replica's scaling depends on its own trajectory only, so the
    ensemble stays rank-independent.
    """
    if n_replicas < 1:
        raise ConfigError(f"--replicas must be at least 1, got {n_replicas}", field="replicas")
    check_output_folder(out_dir, "kmc_run", overwrite=overwrite, reuse=resume,
                        inputs=[catalog_file] if catalog_file else ())
    rank, size = comm.Get_rank(), comm.Get_size()
    work = partial_path(out_dir)
    if rank == 0:
        if work.exists() and not resume:
            shutil.rmtree(work)
        (work / "replicas").mkdir(parents=True, exist_ok=True)
        write_marker(work, "kmc_run")
    comm.barrier()
    mine = list(range(rank, n_replicas, size))
    loaded = []
    for i, r in enumerate(mine):
        folder = replica_dir(work, r)
        finished = resume and (folder / "summary.json").exists()
        if finished:
            _check_finished_replica(folder, catalog, settings, r, acceleration)
        if not finished:
            def report(frac: float, info: str, i: int = i, r: int = r) -> None:
                if progress is not None:
                    progress((i + frac) / len(mine), f"replica {r}: {info}")

            run_to_directory(catalog, replace(settings, replica=r), folder, catalog_file,
                             progress=report, resume=resume, snapshots=snapshots,
                             overwrite=True, acceleration=acceleration,
                             checkpoint_interval_s=checkpoint_interval_s)
        loaded.append((r, _load_replica(folder)))
    gathered = comm.gather(loaded, root=0)
    summary = None
    if rank == 0:
        by_replica = dict(item for part in gathered for item in part)
        if sorted(by_replica) != list(range(n_replicas)):
            raise ParallelError("replica results are missing after the run",
                                field="replicas", hint="rerun with --resume")
        results = [by_replica[r] for r in range(n_replicas)]
        arrays, d_record = reduce_replicas(results)
        write_npz(work / "ensemble.npz", **arrays)
        mean_fit = _fit_mean_profile(arrays)
        summaries = [r["summary"] for r in results]
        summary = {
            "mode": "replicas",
            "n_replicas": n_replicas,
            "ranks": size,
            "catalog": summaries[0]["catalog"],
            "inputs": {**summaries[0]["inputs"], "replica": None},
            "events_executed": int(sum(s["events_executed"] for s in summaries)),
            "cpu_time_s": float(sum(s["cpu_time_s"] for s in summaries)),
            "interdiffusion": d_record,
            "interdiffusion_of_mean_profile": mean_fit,
            "final_width_10_90_A": {
                "mean": _finite(arrays["width_10_90_mean"][-1]),
                "stderr": _finite(arrays["width_10_90_stderr"][-1])},
            "units": {"time": "s", "length": "Angstrom", "D": "Angstrom^2/s (and cm^2/s)"},
        }
        if acceleration is not None:
            summary["acceleration"] = ensemble_acceleration(summaries)
        write_json(work / "ensemble.json", summary)
        write_marker(work, "kmc_run")
        if plots:
            _plot_bands(arrays, work, catalog.name)
            _plot_sigma2(results, d_record, work,
                         f"{catalog.name} at {settings.temperature_K:g} K")
        out = Path(out_dir)
        replace_directory(work, out)
    return comm.bcast(summary, root=0)


def ensemble_acceleration(summaries: list[dict]) -> dict:
    """The replicas' acceleration records in one: settings, factor and checks per replica."""
    records = [s["acceleration"] for s in summaries]
    factors = [float(a["factor"]) for a in records]
    crossings = [a.get("host_crossings_per_slow_event") for a in records]
    known = [c for c in crossings if c is not None]
    merged = {"method": records[0]["method"], "settings": records[0]["settings"],
              "factor": float(np.mean(factors)), "per_replica_factor": factors,
              "hops_to_cross_host": records[0].get("hops_to_cross_host"),
              "host_crossings_per_slow_event": min(known) if known else None,
              "tracer_msd": next((a["tracer_msd"] for a in records
                                  if str(a.get("tracer_msd", "")).startswith("unavailable")),
                                 records[0].get("tracer_msd"))}
    warnings = [f"replica {i}: {a['warning']}" for i, a in enumerate(records) if a.get("warning")]
    if warnings:
        merged["warning"] = "; ".join(warnings)
    return merged


def _check_finished_replica(folder: Path, catalog: Catalog, settings: RunSettings,
                            replica: int, acceleration=None) -> None:
    """Refuse to reuse a finished replica that was run with other inputs or another catalog."""
    from dataclasses import asdict

    summary = read_json(folder / "summary.json", error=CheckpointError, what="replica summary",
                        hint="drop --resume to run the replicas afresh")
    if not isinstance(summary, dict) or not isinstance(summary.get("inputs", {}), dict) \
            or not isinstance(summary.get("catalog", {}), dict):
        raise CheckpointError("not a replica summary", file=str(folder / "summary.json"),
                              hint="drop --resume to run the replicas afresh")
    done = dict(summary.get("inputs", {}))
    wanted = {**asdict(replace(settings, replica=replica)), "cells": list(settings.cells)}
    differs = sorted(k for k, v in wanted.items() if done.get(k) != v)
    if summary.get("catalog", {}).get("name") != catalog.name:
        differs.append("catalog")
    saved = summary.get("acceleration")
    wanted_acc = None if acceleration is None else asdict(acceleration)
    if (saved.get("settings") if isinstance(saved, dict) else None) != wanted_acc:
        differs.append("acceleration settings")
    if differs:
        raise CheckpointError(f"finished replica {replica} was run with other "
                              f"{', '.join(differs)}", file=str(folder / "summary.json"),
                              hint="resume with the flags of the killed run, or drop --resume "
                              "to start afresh")


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _fit_mean_profile(arrays: dict[str, np.ndarray]) -> dict:
    from kmcflow.kmc.analysis import fit_interdiffusion
    from kmcflow.kmc.observables import saved_geometry

    z = arrays["z"]
    geom = saved_geometry(arrays)
    try:
        fit = fit_interdiffusion(arrays["time"], z, arrays["x_first_host_mean"], geom)
    except ConfigError as exc:
        return {"error": exc.message}
    return fit.record("erfc fit of the replica-mean first-host fraction")


def _plot_bands(arrays: dict[str, np.ndarray], work: Path, name: str) -> None:
    from kmcflow.kmc.plots import plot_profile_band, plot_width_band

    plot_width_band(arrays["time"], arrays["width_10_90_mean"], arrays["width_10_90_stderr"],
                    work / "width_band.png", title=f"{name}: mean of replicas ± 1 s.e.")
    plot_profile_band(arrays["z"], arrays["x_first_host_mean"][-1],
                      arrays["x_first_host_stderr"][-1], work / "profile_band.png",
                      title=f"{name}: final profile, mean ± 1 s.e.")


def _plot_sigma2(results: list[dict[str, Any]], record: dict, work: Path, title: str) -> None:
    """sigma^2(t): replica mean ± 1 s.e. and the line of ``record``'s D (mean of the fits)."""
    from kmcflow.kmc.analysis import WIDTH_10_90_PER_SIGMA
    from kmcflow.kmc.plots import plot_sigma2, sigma2_curve

    curve = sigma2_curve([r["time"] for r in results],
                         [(np.asarray(r["width_erfc"], float) / WIDTH_10_90_PER_SIGMA) ** 2
                          for r in results], title, record.get("D_A2_per_s"),
                         record.get("intercept_A2"))
    plot_sigma2([curve], work / "sigma2_vs_time.png")
