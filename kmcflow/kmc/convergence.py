"""Whether an accelerated D is converged in its error control (``kmc converge-acceleration``).

The same couple, temperature and simulated time are run as replica ensembles at increasing
values of one error-control parameter of :class:`~kmcflow.kmc.acceleration.AccelerationSettings`
(``equilibration``, the host crossings per slow event, or ``separation``, the per-event rate
ratio), optionally beside plain BKL. Each setting reports D with its standard error over the
replicas; D is converged when the two most conservative settings agree within two combined
standard errors (and, with ``plain``, when the most conservative one agrees with plain BKL).

Outputs in the study folder: one replica run per setting (``equilibration_30/`` ...,
``plain/``), ``convergence.json`` and ``convergence.png``.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from kmcflow.atomic_io import write_json
from kmcflow.errors import ConfigError
from kmcflow.kmc.acceleration import AccelerationSettings
from kmcflow.kmc.catalog import Catalog
from kmcflow.kmc.runner import ProgressCallback, RunSettings
from kmcflow.outputs import check_output_folder, write_marker

PARAMETERS = ("equilibration", "separation")


def _label(parameter: str, value: float | None) -> str:
    return "plain" if value is None else f"{parameter}_{value:.6g}"


def converge_acceleration(
    catalog: Catalog,
    settings: RunSettings,
    out_dir: str | os.PathLike[str],
    values: list[float],
    parameter: str = "equilibration",
    replicas: int = 4,
    base: AccelerationSettings | None = None,
    plain: bool = False,
    comm: Any = None,
    catalog_file: str | None = None,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
    resume: bool = False,
) -> dict:
    """Run the study; return the ``convergence.json`` record (collective under MPI)."""
    from kmcflow.kmc.parallel.comm import world
    from kmcflow.kmc.parallel.replicas import run_replicas
    from kmcflow.kmc.runner import make_simulation

    if parameter not in PARAMETERS:
        raise ConfigError(f"--parameter must be one of {', '.join(PARAMETERS)}, got "
                          f"{parameter!r}", field="--parameter")
    if settings.time_s is None:
        raise ConfigError("the study compares runs over the same simulated time: give --time",
                          field="--time", hint="e.g. --time 100 at 300 K on the Li|Na couple")
    if len(values) < 2 or len({_label(parameter, v) for v in values}) != len(values):
        raise ConfigError("give at least two different values to compare", field="--values",
                          hint="e.g. --values 10 --values 30 --values 100")
    for v in values:
        low = 0.0 if parameter == "equilibration" else 1.0
        if not (math.isfinite(v) and (v >= low if parameter == "equilibration" else v > low)):
            need = ">= 0 (0: the transport control off)" if parameter == "equilibration" \
                else "> 1"
            raise ConfigError(f"every {parameter} value must be a finite number {need}, got {v}",
                              field="--values", hint="e.g. --values 10 --values 30 --values 100")
    if replicas < 2:
        raise ConfigError("the study needs standard errors: --replicas must be at least 2",
                          field="--replicas")
    base = base or AccelerationSettings()
    values = sorted(float(v) for v in values)
    setups = [replace(base, **{parameter: v}) for v in values]
    for s in setups:
        s.check()
    comm = comm or world()
    make_simulation(catalog, settings, catalog_file)  # input errors before any output
    out = Path(out_dir)
    check_output_folder(out, "convergence", overwrite=overwrite, reuse=resume,
                        inputs=[catalog_file] if catalog_file else ())
    if comm.Get_rank() == 0:
        out.mkdir(parents=True, exist_ok=True)
        write_marker(out, "convergence")
    comm.barrier()
    runs: list[tuple[float | None, AccelerationSettings | None]] = list(zip(values, setups,
                                                                          strict=True))
    if plain:
        runs.insert(0, (None, None))
    rows = []
    for k, (value, acc) in enumerate(runs):
        def report(frac: float, info: str, k: int = k, value: float | None = value) -> None:
            if progress is not None:
                progress((k + frac) / len(runs), f"{_label(parameter, value)}: {info}")

        folder = out / _label(parameter, value)
        summary = _finished_ensemble(folder, settings, replicas, acc) if resume else None
        if summary is None:
            summary = run_replicas(catalog, settings, folder, replicas, comm, catalog_file,
                                   resume=resume, progress=report, plots=False,
                                   overwrite=True, acceleration=acc)
        d = summary["interdiffusion"]
        acc_rec = summary.get("acceleration", {})
        rows.append({"setting": _label(parameter, value), parameter: value,
                     "D_A2_per_s": d.get("D_A2_per_s"),
                     "D_stderr_A2_per_s": d.get("D_stderr_A2_per_s"),
                     "per_replica_D_A2_per_s": d.get("per_replica_D_A2_per_s"),
                     "replicas_fitted": d.get("replicas_fitted", 0),
                     "warning": acc_rec.get("warning"),
                     "acceleration_factor": acc_rec.get("factor", 1.0),
                     "host_crossings_per_slow_event":
                         acc_rec.get("host_crossings_per_slow_event"),
                     "cpu_time_s": summary["cpu_time_s"],
                     "events_executed": summary["events_executed"]})
    record = {"parameter": parameter, "temperature_K": settings.temperature_K,
              "simulated_time_s": settings.time_s, "replicas": replicas,
              "base_settings": asdict(base), "rows": rows,
              "verdict": convergence_verdict(rows, parameter),
              "units": {"D": "Angstrom^2/s", "time": "s"}}
    if comm.Get_rank() == 0:
        write_json(out / "convergence.json", record)
        _plot(rows, parameter, out / "convergence.png",
              f"{catalog.name}, {settings.temperature_K:g} K")
        write_marker(out, "convergence")
    comm.barrier()
    return record


def _finished_ensemble(folder: Path, settings: RunSettings, replicas: int,
                       acceleration: AccelerationSettings | None) -> dict | None:
    """The ``ensemble.json`` of a finished setting run with these inputs, else None."""
    from kmcflow.readers import read_json

    path = folder / "ensemble.json"
    if not path.is_file():
        return None
    try:
        summary = read_json(path, what="ensemble summary")
    except ConfigError:
        return None
    if not isinstance(summary, dict) or not isinstance(summary.get("inputs"), dict):
        return None
    wanted = {**asdict(settings), "cells": list(settings.cells), "replica": None}
    saved_acc = summary.get("acceleration")
    same = (all(summary["inputs"].get(k) == v for k, v in wanted.items())
            and summary.get("n_replicas") == replicas
            and (saved_acc.get("settings") if isinstance(saved_acc, dict) else None)
            == (None if acceleration is None else asdict(acceleration)))
    return summary if same else None


def _agree(a: dict, b: dict) -> dict | None:
    """Difference of two rows' D in per cent and in standard errors of the difference.

    Every setting runs the same replicas (same seed, replicas 0..R-1), so the runs are
    paired: the standard error of the difference is taken from the per-replica differences
    when both rows have every replica fitted, else from the two standard errors combined.
    """
    if a["D_A2_per_s"] is None or b["D_A2_per_s"] is None or a["D_stderr_A2_per_s"] is None \
            or b["D_stderr_A2_per_s"] is None:
        return None
    diff = a["D_A2_per_s"] - b["D_A2_per_s"]
    da, db = a.get("per_replica_D_A2_per_s"), b.get("per_replica_D_A2_per_s")
    se_combined = math.hypot(a["D_stderr_A2_per_s"], b["D_stderr_A2_per_s"])
    se, how = se_combined, "two standard errors combined"
    if da and db and len(da) == len(db) > 1 and None not in da and None not in db:
        import numpy as np

        paired = np.asarray(da, float) - np.asarray(db, float)
        se_paired = float(np.std(paired, ddof=1) / math.sqrt(paired.size))
        # the larger of the two: never more lenient than either view of the noise
        if se_paired > se_combined:
            se, how = se_paired, "per-replica differences (paired)"
    return {"difference_percent": 100 * diff / b["D_A2_per_s"],
            "difference_sigma": diff / se if se > 0 else 0.0, "agree": abs(diff) <= 2 * se,
            "standard_error_from": how}


def convergence_verdict(rows: list[dict], parameter: str) -> dict:
    """Converged when the two most conservative settings agree within two standard errors."""
    accel = [r for r in rows if r[parameter] is not None]
    plain = next((r for r in rows if r[parameter] is None), None)
    last, before = accel[-1], accel[-2]
    pair = _agree(before, last)
    verdict: dict[str, Any] = {"compared": [before["setting"], last["setting"]],
                               "last_two": pair}
    if plain is not None:
        verdict["most_conservative_vs_plain"] = _agree(last, plain)
    checks = [pair, verdict.get("most_conservative_vs_plain", pair)]
    verdict["converged"] = all(c is not None and c["agree"] for c in checks)
    if pair is None:
        verdict["text"] = ("no verdict: a setting has no D with a standard error (too short a "
                           "run, or replicas that could not be fitted)")
    elif verdict["converged"]:
        verdict["text"] = ("D no longer moves: the two largest settings agree within two "
                           "standard errors" + (" and the largest agrees with plain BKL"
                                                if plain is not None else ""))
    else:
        verdict["text"] = ("D still moves with the setting: raise the parameter, run more "
                           "replicas or a longer time")
    return verdict


def _plot(rows: list[dict], parameter: str, path: Path, title: str) -> None:
    from kmcflow.kmc.plots import plot_convergence

    accel = [r for r in rows if r[parameter] is not None and r[parameter] > 0
             and r["D_A2_per_s"] is not None]  # a log axis: 0 (control off) is in the table
    plain = next((r for r in rows if r[parameter] is None and r["D_A2_per_s"]), None)
    plot_convergence([r[parameter] for r in accel], [r["D_A2_per_s"] for r in accel],
                     [r["D_stderr_A2_per_s"] or 0.0 for r in accel], path, parameter, title,
                     plain=None if plain is None else (plain["D_A2_per_s"],
                                                       plain["D_stderr_A2_per_s"] or 0.0))
