"""Analyses of finished runs: fits and plots of one run, Arrhenius over temperatures."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kmcflow.atomic_io import write_json
from kmcflow.errors import ConfigError
from kmcflow.kmc.catalog import Catalog
from kmcflow.kmc.constants import K_B_EV_PER_K
from kmcflow.kmc.run_settings import check_run_settings
from kmcflow.kmc.runner import (
    ProgressCallback,
    RunSettings,
    as_run_settings,
    make_simulation,
    run_to_directory,
)
from kmcflow.outputs import check_output_folder, write_marker
from kmcflow.readers import NPZ_ERRORS, read_json

if TYPE_CHECKING:  # annotations only: the plots module is imported where a figure is drawn
    from kmcflow.kmc.plots import Sigma2Curve


def _load_run(run_dir: Path) -> tuple[dict, dict[str, np.ndarray]]:
    summary_path, obs_path = run_dir / "summary.json", run_dir / "observables.npz"
    for p in (summary_path, obs_path):
        if not p.exists():
            raise ConfigError("not a finished kmcflow run (missing file)", file=str(p),
                              hint="give the --out folder of a completed `kmcflow kmc run`")
    summary = read_json(summary_path, what="run summary")
    if not isinstance(summary, dict):
        raise ConfigError("not a run summary (a JSON object)", file=str(summary_path))
    try:
        with np.load(obs_path, allow_pickle=False) as data:
            obs = {k: data[k] for k in data.files}
    except NPZ_ERRORS as exc:  # an empty, truncated or non-npz file
        raise ConfigError(f"cannot read the observables: {exc}", file=str(obs_path),
                          hint="run the simulation again") from exc
    _check_run_files(summary, obs, summary_path, obs_path)
    return summary, obs


def _check_run_files(summary: dict, obs: dict[str, np.ndarray], summary_path: Path,
                     obs_path: Path) -> None:
    """Refuse a run whose files lack what the analysis reads, or hold it in other shapes."""
    hint = "run the simulation again (the files are damaged or not a kmcflow run)"
    for key in ("catalog", "inputs"):
        if not isinstance(summary.get(key), dict):
            raise ConfigError(f"the summary has no {key!r} record", file=str(summary_path),
                              field=key, hint=hint)
    if not isinstance(summary["inputs"].get("temperature_K"), int | float):
        raise ConfigError("the summary gives no temperature", file=str(summary_path),
                          field="inputs.temperature_K", hint=hint)
    if not isinstance(summary["catalog"].get("name"), str):
        raise ConfigError("the summary names no catalog", file=str(summary_path),
                          field="catalog.name", hint=hint)
    needed = ("time", "z", "x_first_host", "width_10_90", "concentration", "species",
              "length_z_A", "periodic_z")
    missing = [k for k in needed if k not in obs]
    if missing:
        raise ConfigError(f"the observables lack {', '.join(missing)}", file=str(obs_path),
                          hint=hint)
    n, layers = obs["time"].shape[:1], obs["z"].shape
    shapes_ok = (obs["time"].ndim == 1 and obs["z"].ndim == 1 and obs["time"].size >= 1
                 and obs["x_first_host"].shape == n + layers
                 and obs["width_10_90"].shape == n
                 and obs["concentration"].shape == n + obs["species"].shape + layers
                 and obs["length_z_A"].size == 1 and obs["periodic_z"].size == 1)
    if not shapes_ok:
        raise ConfigError("the observables' arrays do not fit together (samples, layers, "
                          "species)", file=str(obs_path), hint=hint)
    numeric = ("time", "z", "x_first_host", "width_10_90", "concentration", "length_z_A")
    if not all(np.issubdtype(obs[k].dtype, np.number) for k in numeric):
        raise ConfigError("the observables hold text where numbers go", file=str(obs_path),
                          hint=hint)
    finite = ("time", "z", "x_first_host", "concentration", "length_z_A")
    if not all(np.all(np.isfinite(obs[k])) for k in finite) or np.any(np.diff(obs["time"]) < 0):
        raise ConfigError("the observables hold NaN or infinite values, or times that go "
                          "back", file=str(obs_path), hint=hint)


def analyze_directory(run_dir: str | os.PathLike[str]) -> dict:
    """Fit and plot a finished run; write ``analysis.json`` and PNGs into the folder."""
    from kmcflow.kmc.analysis import boltzmann_matano, fit_interdiffusion, interface_windows
    from kmcflow.kmc.observables import saved_geometry
    from kmcflow.kmc.plots import plot_profiles, plot_sigma2, plot_width, sigma2_curve

    run = Path(run_dir)
    summary, obs = _load_run(run)
    z, t, x = obs["z"], obs["time"], obs["x_first_host"]
    geom = saved_geometry(obs)  # where the engine put the interfaces
    periodic, length = geom.periodic, geom.length_z_A
    result: dict = {"run": str(run), "units": {"D": "Angstrom^2/s", "length": "Angstrom"}}
    fit = None
    try:
        fit = fit_interdiffusion(t, z, x, geom)
        result["interdiffusion_erfc"] = fit.record("erfc fit of the first-host fraction")
    except ConfigError as exc:
        result["interdiffusion_erfc"] = {"error": exc.message}
    # Boltzmann-Matano on the interface with the first host below, within its window (half
    # way to the neighbouring interfaces or the walls), in coordinates relative to its plane
    i_int = geom.a_below.index(True)
    plane = geom.interfaces_z_A[i_int]
    lo, hi = interface_windows(geom)[i_int]
    offset = z - plane
    if periodic:
        offset = (offset + 0.5 * length) % length - 0.5 * length
    window = (offset >= -lo) & (offset <= hi)
    order = np.argsort(offset[window])
    try:
        bm = boltzmann_matano(offset[window][order], x[-1][window][order], float(t[-1]),
                              c_left=1.0, c_right=0.0)
        result["boltzmann_matano"] = {
            "time_s": float(t[-1]),
            "z_matano_A": (plane + bm.z_matano_A) % length if periodic else plane + bm.z_matano_A,
            "c_levels": [float(c) for c in bm.c_levels],
            "D_A2_per_s": [None if not np.isfinite(d) else float(d) for d in bm.D_A2_per_s]}
    except ConfigError as exc:  # too little mixing for a Matano analysis
        result["boltzmann_matano"] = {"error": exc.message}
    result["width_10_90_A"] = [None if np.isnan(w) else float(w) for w in obs["width_10_90"]]
    result["time_s"] = [float(v) for v in t]
    species = [str(s) for s in obs["species"]]
    title = f"{summary['catalog']['name']} at {summary['inputs']['temperature_K']} K"
    plot_width(t, obs["width_10_90"], run / "width.png", fit=fit, title=title)
    plot_profiles(z, obs["concentration"], species, t, run / "profiles.png")
    result["plots"] = ["width.png", "profiles.png"]
    if fit is not None:  # sigma^2 of the samples with the line D is read from
        curve = sigma2_curve([t], [fit.sigma2_A2], title, fit.D_A2_per_s, fit.intercept_A2)
        plot_sigma2([curve], run / "sigma2_vs_time.png")
        result["plots"].append("sigma2_vs_time.png")
    write_json(run / "analysis.json", result)
    return result


def finished_run(run_dir: Path, settings: RunSettings, catalog_file: str | None,
                 acceleration=None) -> dict | None:
    """The summary of a finished run with these settings and this catalog file, else None."""
    from kmcflow.kmc.runner import file_sha256

    path = run_dir / "summary.json"
    if not (path.is_file() and (run_dir / "observables.npz").is_file()):
        return None
    try:
        summary = read_json(path, what="run summary")
    except ConfigError:
        return None
    if not isinstance(summary, dict) or not isinstance(summary.get("inputs", {}), dict):
        return None
    inputs = summary.get("inputs", {})
    wanted = {**asdict(settings), "cells": list(settings.cells)}
    if any(inputs.get(k) != v for k, v in wanted.items()):
        return None
    if summary.get("catalog", {}).get("sha256") != file_sha256(catalog_file):
        return None
    saved = summary.get("acceleration")
    if (saved.get("settings") if isinstance(saved, dict) else None) != (
            None if acceleration is None else asdict(acceleration)):
        return None
    return summary


MAX_STUDY_REPLICAS = 999


def replica_stream(temperature_K: float, replica: int) -> int:
    """The random stream of ``replica`` at a temperature of a study: distinct at every one.

    With the same stream at every temperature the points of an Arrhenius plot are correlated:
    on a catalog with one barrier the trajectory is the same sequence of hops at every
    temperature, only rescaled in time, and the fit came out exact (E_a 0.500 +/- 0.000 eV,
    R^2 = 1). Streams are ``replica + 1000 x (temperature in 0.1 K)``.
    """
    return int(replica) + 1000 * round(10.0 * temperature_K)


def arrhenius_study(
    catalog: Catalog,
    temperatures_K: list[float],
    base: RunSettings,
    out_dir: str | os.PathLike[str],
    catalog_file: str | None = None,
    progress: ProgressCallback | None = None,
    replicas: int = 1,
    reuse_finished: bool = False,
    time_s_at: Callable[[float], float] | None = None,
    overwrite: bool = False,
    acceleration=None,
) -> dict:
    """Run the couple at each temperature, fit D(T) and the Arrhenius law; write a plot.

    Each temperature uses ``base`` with its own temperature (``replicas`` trajectories each,
    their D averaged with the standard error as the spread; the fit is weighted by those
    errors from three replicas on). The folder holds one run per
    temperature, ``arrhenius.json``, ``arrhenius.png`` (ln D against 1000/T, error bars from
    the replicas' standard errors) and ``sigma2_vs_time.png`` (:func:`study_sigma2_curves`:
    sigma^2 per temperature with the line of the reported D). With ``reuse_finished`` a run
    whose folder already holds a summary with the same settings is read, not run again (a
    study stopped half-way continues). ``time_s_at(T)`` gives each temperature its own
    simulated time (instead of ``base``'s steps or time), so that every run covers the same
    progress of the slow process. The fit's coefficient of determination of ln D is reported
    as ``r_squared``. An existing ``out_dir`` must be a study kmcflow wrote, continued with
    ``reuse_finished`` or replaced with ``overwrite``. ``acceleration``
    (:class:`~kmcflow.kmc.acceleration.AccelerationSettings`) accelerates every run; then a
    fixed number of steps covers about the same progress of the slow hops at every
    temperature, since the scaled fast hops are held at a fixed multiple of them.
    """
    from kmcflow.kmc.analysis import arrhenius_fit
    from kmcflow.kmc.plots import plot_arrhenius, plot_sigma2

    temps = sorted(float(t) for t in temperatures_K)
    if len(set(temps)) < 2 or any(not (t > 0 and math.isfinite(t)) for t in temps):
        raise ConfigError("give at least two different positive temperatures",
                          field="temperatures", hint="e.g. -T 600 -T 700 -T 800")
    if not (isinstance(replicas, int) and not isinstance(replicas, bool)
            and 1 <= replicas <= MAX_STUDY_REPLICAS):
        raise ConfigError(f"replicas must be an integer in 1-{MAX_STUDY_REPLICAS}, got "
                          f"{replicas!r}", field="replicas", hint="e.g. --replicas 4")
    # base's own temperature is replaced by each of temps
    check_run_settings(replace(as_run_settings(base), temperature_K=temps[0]))
    # every input error surfaces now, before the study folder exists
    make_simulation(catalog, replace(base, temperature_K=temps[0]), catalog_file)
    out = Path(out_dir)
    check_output_folder(out, "arrhenius", overwrite=overwrite, reuse=reuse_finished,
                        inputs=[catalog_file] if catalog_file else ())
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, "arrhenius")
    d_mean, d_err, rows, curves = [], [], [], []
    for i, temp in enumerate(temps):
        values, factors, warnings, fits = [], [], [], []
        for r in range(replicas):
            settings = replace(base, temperature_K=temp, replica=replica_stream(temp, r))
            if time_s_at is not None:
                settings = replace(settings, steps=None, time_s=float(time_s_at(temp)))
            sub = out / f"T{temp:g}K" / f"replica{r}"

            def report(frac: float, info: str, i: int = i, r: int = r, temp: float = temp) -> None:
                if progress is not None:
                    progress((i + (r + frac) / replicas) / len(temps), f"T = {temp:g} K: {info}")

            summary = (finished_run(sub, settings, catalog_file, acceleration)
                       if reuse_finished else None)
            if summary is None:
                summary = run_to_directory(catalog, settings, sub, catalog_file,
                                           progress=report, overwrite=True,
                                           acceleration=acceleration)
            fit = summary["interdiffusion"]
            if "D_A2_per_s" not in fit:
                raise ConfigError(f"no interdiffusion coefficient at {temp:g} K: {fit['error']}",
                                  hint="run more steps so that the interface widens")
            values.append(fit["D_A2_per_s"])
            fits.append(fit)
            if "acceleration" in summary:
                factors.append(summary["acceleration"]["factor"])
                if summary["acceleration"].get("warning"):
                    warnings.append(f"replica {r}: {summary['acceleration']['warning']}")
        d = float(np.mean(values))
        err = float(np.std(values, ddof=1) / math.sqrt(len(values))) if replicas > 1 else None
        d_mean.append(d)
        curves.append(_temperature_curve(out, temp, fits))
        d_err.append(err)
        rows.append({"temperature_K": temp, "D_A2_per_s": d, "D_stderr_A2_per_s": err,
                     "replicas": replicas})
        if factors:
            rows[-1]["acceleration_factor"] = float(np.mean(factors))
        if warnings:
            rows[-1]["acceleration_warnings"] = warnings
    # two replicas give a standard error too noisy to weight by (one degree of freedom):
    # weight the fit from three replicas on
    use_err = np.array(d_err, float) if replicas >= 3 else None
    fit = arrhenius_fit(np.array(temps), np.array(d_mean), use_err)
    # the error bars are the replicas' standard errors whatever the weighting (none: one replica)
    plot_arrhenius(np.array(temps), np.array(d_mean), out / "arrhenius.png", fit=fit,
                   D_stderr=d_err)
    plot_sigma2(curves, out / "sigma2_vs_time.png",
                title=f"{catalog.name}: σ² = 2 D t + b, D as in arrhenius.json")
    ln_d = np.log(np.array(d_mean))
    predicted = fit.ln_D0 - fit.Ea_eV / (K_B_EV_PER_K * np.array(temps))
    total = float(np.sum((ln_d - ln_d.mean()) ** 2))
    r_squared = 1.0 - float(np.sum((ln_d - predicted) ** 2)) / total if total > 0 else None
    error_source = ("the replicas' standard errors of D (fit weighted by them)"
                    if use_err is not None else "the scatter of ln D about the fitted line "
                    "(unweighted fit: fewer than three replicas per temperature)")
    def finite(x: float) -> float | None:  # two temperatures leave no residual: no error
        return float(x) if math.isfinite(x) else None

    result = {"temperatures": rows, "Ea_eV": fit.Ea_eV, "Ea_stderr_eV": finite(fit.Ea_stderr_eV),
              "Ea_stderr_source": error_source if math.isfinite(fit.Ea_stderr_eV) else
              "none: two temperatures fix the line exactly (use three or more for an error)",
              "r_squared": r_squared,
              "D0_A2_per_s": fit.D0, "D0_stderr_A2_per_s": finite(fit.D0_stderr),
              "D0_cm2_per_s": fit.D0 * 1e-16, "plot": "arrhenius.png",
              "sigma2_plot": "sigma2_vs_time.png"}
    if acceleration is not None:
        from kmcflow.kmc.runner import ACCELERATION_METHOD

        result["acceleration"] = {"method": ACCELERATION_METHOD,
                                  "settings": asdict(acceleration)}
    write_json(out / "arrhenius.json", result)
    return result


def _replica_sigma2(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Sample times (s) and erfc-fit variances sigma^2 (Angstrom^2) of one finished run."""
    from kmcflow.kmc.analysis import WIDTH_10_90_PER_SIGMA

    path = folder / "observables.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            t = np.asarray(data["time"], float)
            werf = (np.asarray(data["width_erfc"], float) if "width_erfc" in data.files
                    else np.full(t.shape, np.nan))  # a run from before width_erfc was saved
    except NPZ_ERRORS as exc:
        raise ConfigError(f"cannot read the observables: {exc}", file=str(path),
                          hint="run the study again without reusing this run") from exc
    return t, (werf / WIDTH_10_90_PER_SIGMA) ** 2


def _temperature_curve(study: Path, temp: float, fits: list[dict]) -> Sigma2Curve:
    """sigma^2(t) of one temperature's replicas; the line from the mean of their fits.

    ``fits`` are the replicas' ``interdiffusion`` records in replica order; D is their mean,
    computed as :func:`arrhenius_study` reports it, and b the mean of their intercepts.
    """
    from kmcflow.kmc.plots import sigma2_curve

    series = [_replica_sigma2(study / f"T{temp:g}K" / f"replica{r}") for r in range(len(fits))]
    d = [f.get("D_A2_per_s") for f in fits]
    b = [f.get("intercept_A2") for f in fits]
    known = all(v is not None for v in d + b)
    return sigma2_curve([t for t, _ in series], [s2 for _, s2 in series], f"{temp:g} K",
                        float(np.mean(d)) if known else None,
                        float(np.mean(b)) if known else None)


def study_sigma2_curves(study_dir: str | os.PathLike[str], temperatures_K: list[float],
                        replicas: int) -> list[Sigma2Curve]:
    """sigma^2(t) per temperature of a finished :func:`arrhenius_study` folder, coldest first.

    Each curve is the replica mean of the erfc-fit variance with its standard error and the
    line ``2 D t + b``: D is the temperature's D of ``arrhenius.json`` (the mean of the
    replicas' fits) and b the mean of their intercepts. Draw them with
    :func:`kmcflow.kmc.plots.plot_sigma2`.
    """
    study = Path(study_dir)
    curves = []
    for temp in sorted(float(t) for t in temperatures_K):
        fits = []
        for r in range(replicas):
            path = study / f"T{temp:g}K" / f"replica{r}" / "summary.json"
            summary = read_json(path, what="run summary")
            fit = summary.get("interdiffusion") if isinstance(summary, dict) else None
            if not isinstance(fit, dict):
                raise ConfigError("not a run summary with an interdiffusion record",
                                  file=str(path), hint="run the study again")
            fits.append(fit)
        curves.append(_temperature_curve(study, temp, fits))
    return curves
