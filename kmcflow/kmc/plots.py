"""PNG plots of diffusion-couple results: interface width, profiles and Arrhenius lines.

matplotlib is imported inside each function (Agg backend), so importing this module is cheap.
Every PNG is written atomically (temporary file in the same folder, then renamed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kmcflow.atomic_io import atomic_path
from kmcflow.errors import ConfigError
from kmcflow.kmc.analysis import (
    WIDTH_10_90_PER_SIGMA,
    WIDTH_10_90_PER_SQRT_DT,
    ArrheniusFit,
    InterdiffusionFit,
)
from kmcflow.kmc.constants import K_B_EV_PER_K


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    plt = _pyplot()
    target = Path(path)
    try:
        with atomic_path(target, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=120)
    finally:
        plt.close(fig)
    return target


def plot_width(
    times_s: np.ndarray,
    width_10_90_A: np.ndarray,
    path: str | os.PathLike[str],
    fit: InterdiffusionFit | None = None,
    title: str | None = None,
) -> Path:
    """Plot the 10-90 % interface width against time.

    Parameters
    ----------
    times_s
        Sample times, s.
    width_10_90_A
        10-90 % widths, Angstrom.
    path
        Destination PNG.
    fit
        If given, draw ``3.6248 sqrt(D t)`` and the fitted ``2.5631 sqrt(2 D t + b)``.
    title
        Optional title.

    Returns
    -------
    pathlib.Path
        The written file.

    """
    t = np.asarray(times_s, dtype=float)
    w = np.asarray(width_10_90_A, dtype=float)
    if t.shape != w.shape:
        raise ConfigError("times_s and width_10_90_A must have equal length", field="width")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(t, w, "o", label="kMC 10-90 % width")
    if fit is not None:
        tt = np.linspace(0.0, float(np.max(t)) if t.size else 1.0, 200)
        d = fit.D_A2_per_s
        ax.plot(
            tt,
            WIDTH_10_90_PER_SQRT_DT * np.sqrt(np.maximum(d * tt, 0.0)),
            "-",
            label=rf"$3.625\sqrt{{Dt}}$, D = {d:.3g} Å$^2$/s",
        )
        sig2 = np.maximum(2.0 * d * tt + fit.intercept_A2, 0.0)
        ax.plot(tt, WIDTH_10_90_PER_SIGMA * np.sqrt(sig2), ":", label=r"$2.563\,\sigma$ (fit)")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("10-90 % width (Å)")
    if title:
        ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_profiles(
    z_A: np.ndarray,
    concentration: np.ndarray,
    species: Sequence[str],
    times_s: np.ndarray,
    path: str | os.PathLike[str],
    max_curves: int = 6,
) -> Path:
    """Plot concentration profiles, one panel per species, curves coloured by time.

    Parameters
    ----------
    z_A
        Layer positions, Angstrom, shape (L,).
    concentration
        Shape (samples, species, layers).
    species
        Species names, one per panel.
    times_s
        Sample times, s, shape (samples,).
    path
        Destination PNG.
    max_curves
        At most this many samples (evenly spaced, first and last included) are drawn.

    Returns
    -------
    pathlib.Path
        The written file.

    """
    z = np.asarray(z_A, dtype=float)
    conc = np.asarray(concentration, dtype=float)
    t = np.asarray(times_s, dtype=float)
    if conc.ndim != 3 or conc.shape[1] != len(species) or conc.shape[2] != z.size:
        raise ConfigError(
            "concentration must have shape (samples, species, layers)", field="concentration"
        )
    if t.size != conc.shape[0] or conc.shape[0] == 0:
        raise ConfigError("need one time per sample", field="times_s")
    plt = _pyplot()
    picks = np.unique(np.round(np.linspace(0, t.size - 1, max(1, max_curves))).astype(int))
    cmap = plt.get_cmap("viridis")
    t_max = float(np.max(t[picks])) or 1.0
    n_sp = len(species)
    fig, axes = plt.subplots(1, n_sp, figsize=(4.5 * n_sp, 3.8), squeeze=False, sharey=True)
    for s, name in enumerate(species):
        ax = axes[0, s]
        for k in picks:
            ax.plot(z, conc[k, s], color=cmap(t[k] / t_max), label=f"t = {t[k]:.3g} s")
        ax.set_title(name)
        ax.set_xlabel("z (Å)")
    axes[0, 0].set_ylabel("fraction per layer")
    axes[0, -1].legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def plot_arrhenius(
    temperatures_K: np.ndarray,
    D: np.ndarray,
    path: str | os.PathLike[str],
    fit: ArrheniusFit | None = None,
    D_stderr: np.ndarray | None = None,
) -> Path:
    """Plot ln D against 1000/T with error bars and the Arrhenius line.

    Parameters
    ----------
    temperatures_K
        Temperatures, K.
    D
        Diffusion coefficients, Angstrom^2/s (labels assume these units).
    path
        Destination PNG.
    fit
        If given, draw ``ln D0 - Ea / (k_B T)`` with Ea and D0 in the legend.
    D_stderr
        Optional standard errors of D (drawn as ``D_stderr / D`` on ln D).

    Returns
    -------
    pathlib.Path
        The written file.

    """
    temp = np.asarray(temperatures_K, dtype=float)
    d = np.asarray(D, dtype=float)
    if temp.shape != d.shape or np.any(~(d > 0)) or np.any(~(temp > 0)):
        raise ConfigError("need positive D and T of equal length", field="D")
    yerr = None if D_stderr is None else np.asarray(D_stderr, dtype=float) / d
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    inv = 1000.0 / temp
    ax.errorbar(inv, np.log(d), yerr=yerr, fmt="o", capsize=3, label="kMC")
    if fit is not None:
        xx = np.linspace(inv.min(), inv.max(), 100)
        yy = fit.ln_D0 - fit.Ea_eV / (K_B_EV_PER_K * 1000.0 / xx)
        ax.plot(
            xx,
            yy,
            "-",
            label=(
                rf"$E_a$ = {fit.Ea_eV:.3f}"
                + (f" ± {fit.Ea_stderr_eV:.3f}" if np.isfinite(fit.Ea_stderr_eV) else "")
                + rf" eV, $D_0$ = {fit.D0:.3g} Å$^2$/s"
            ),
        )
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("ln D  (D in Å$^2$/s)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def _plot_band(x: np.ndarray, mean: np.ndarray, stderr: np.ndarray, path: str | os.PathLike[str],
               labels: tuple[str, str, str], title: str | None, ylim: tuple | None) -> Path:
    """A mean curve with a band of one standard error; ``labels`` = (curve, x axis, y axis)."""
    x, m = np.asarray(x, dtype=float), np.asarray(mean, dtype=float)
    e = np.nan_to_num(np.asarray(stderr, dtype=float))
    if not x.shape == m.shape == e.shape:
        raise ConfigError("x, mean and stderr must have equal length", field=labels[0])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.fill_between(x, m - e, m + e, alpha=0.3, label="± 1 standard error")
    ax.plot(x, m, "o-" if x.size < 60 else "-", ms=3, label=labels[0])
    ax.set_xlabel(labels[1])
    ax.set_ylabel(labels[2])
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_width_band(times_s: np.ndarray, mean_A: np.ndarray, stderr_A: np.ndarray,
                    path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Plot the replica-mean 10-90 % width (Angstrom) against time (s) with a ± 1 s.e. band."""
    return _plot_band(times_s, mean_A, stderr_A, path,
                      ("mean 10-90 % width", "time (s)", "10-90 % width (Å)"), title, None)


def plot_profile_band(z_A: np.ndarray, mean: np.ndarray, stderr: np.ndarray,
                      path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Plot a replica-mean first-host fraction per layer (z in Angstrom) with a ± 1 s.e. band."""
    return _plot_band(z_A, mean, stderr, path,
                      ("mean first-host fraction", "z (Å)", "first-host fraction"), title,
                      (-0.05, 1.05))


def plot_convergence(values: list[float], D_A2_per_s: list[float], D_stderr: list[float],
                     path: str | os.PathLike[str], parameter: str, title: str,
                     plain: tuple[float, float] | None = None) -> Path:
    """D (± 2 s.e.) against an error-control parameter, with plain BKL as a band."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.errorbar(values, D_A2_per_s, yerr=[2 * e for e in D_stderr], fmt="o-", capsize=3,
                label="accelerated (± 2 s.e.)")
    if plain is not None:
        d, se = plain
        ax.axhspan(d - 2 * se, d + 2 * se, color="0.85", label="plain BKL (± 2 s.e.)")
        ax.axhline(d, color="0.4", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel(parameter)
    ax.set_ylabel("D (Angstrom^2/s)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_width_squared(series: dict[float, list[tuple[np.ndarray, np.ndarray]]],
                       path: str | os.PathLike[str]) -> Path:
    """sigma^2 against t per temperature, mean of the replicas ± 1 s.e., with its straight line.

    ``series`` maps a temperature (K) to the replicas' ``(time_s, sigma_A)`` arrays, sigma
    being the width of the erfc fit of each profile (``width_erfc`` / 2.5631). kmcflow reads D
    from ``sigma^2 = 2 D t + b`` (:func:`kmcflow.kmc.analysis.fit_interdiffusion`), so each
    panel is linear in both axes and its legend gives half the slope of the replica mean.
    """
    plt = _pyplot()
    temps = sorted(series)
    fig, axes = plt.subplots(1, len(temps), figsize=(3.2 * len(temps), 3.4), squeeze=False)
    for ax, temp in zip(axes[0], temps, strict=True):
        runs = series[temp]
        n = min(t.size for t, _ in runs)
        t = runs[0][0][:n]
        s2 = np.stack([np.asarray(w[:n], float) ** 2 for _, w in runs])
        finite = np.isfinite(s2)
        counts = finite.sum(axis=0)
        mean = np.where(counts > 0, np.where(finite, s2, 0.0).sum(axis=0)
                        / np.maximum(counts, 1), np.nan)
        dev = np.where(finite, s2 - mean, 0.0)
        se = np.where(counts > 1, np.sqrt((dev ** 2).sum(axis=0) / np.maximum(counts - 1, 1)
                                          / np.maximum(counts, 1)), 0.0)
        ax.errorbar(t, mean, yerr=se, fmt="o", ms=3, capsize=2,
                    label=f"mean of {len(runs)} ± 1 s.e." if len(runs) > 1 else "run")
        ok = np.isfinite(mean) & (t > 0)
        if ok.sum() >= 2:
            slope, intercept = np.polyfit(t[ok], mean[ok], 1)
            ax.plot(t, slope * t + intercept, "-", lw=1,
                    label=f"line: D = slope / 2 = {slope / 2:.3g} Å²/s")
        ax.set_title(f"{temp:g} K")
        ax.set_xlabel("time (s)")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        ax.legend(fontsize="x-small", loc="lower right")
    axes[0][0].set_ylabel("σ² of the erfc fit (Å²)")
    fig.tight_layout()
    return _save(fig, path)
