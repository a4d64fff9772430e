"""PNG plots of diffusion-couple results: sigma^2(t), interface width, profiles, Arrhenius lines.

D is read from the erfc-fit variance, ``sigma^2 = 2 D t + b``: :func:`plot_sigma2` draws the
replica mean of sigma^2 with its standard error and that line, :func:`plot_arrhenius` ln D
against 1000/T with the replicas' standard errors. Their ``*_figure`` twins return the
unsaved Figure, whose artists carry gids, so that tests read the drawn numbers back.

matplotlib is imported inside each function (Agg backend), so importing this module is cheap.
Every PNG is written atomically (temporary file in the same folder, then renamed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
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


def _per_mille_inverse(x: np.ndarray) -> np.ndarray:
    """1000 / x, for the top axis that turns 1000/T (1/K) into T (K) and back."""
    x = np.asarray(x, dtype=float)
    out = np.full(x.shape, np.inf)
    np.divide(1000.0, x, out=out, where=x != 0)
    return out


def arrhenius_figure(
    temperatures_K: np.ndarray,
    D: np.ndarray,
    fit: ArrheniusFit | None = None,
    D_stderr: Sequence[float | None] | np.ndarray | None = None,
) -> Any:
    """The figure of :func:`plot_arrhenius`, not saved (a matplotlib Figure; close it after use).

    Artists carry gids to read back: ``"bars"`` (the points with a standard error),
    ``"errorbars"`` (their bars, a LineCollection of vertical segments), ``"points"`` (the
    points without one) and ``"fit"`` (the fitted line).
    """
    temp = np.asarray(temperatures_K, dtype=float)
    d = np.asarray(D, dtype=float)
    if temp.ndim != 1 or temp.shape != d.shape or np.any(~(d > 0)) or np.any(~(temp > 0)):
        raise ConfigError("need positive D and T of equal length", field="D")
    se = np.full(d.shape, np.nan)
    if D_stderr is not None:
        se = np.array([np.nan if v is None else v for v in D_stderr], dtype=float)
        if se.shape != d.shape:
            raise ConfigError("need one standard error (or None) per D", field="D_stderr")
    ln_err = se / d  # s.e.(ln D) = s.e.(D) / D
    has = np.isfinite(ln_err) & (ln_err > 0)
    inv, ln_d = 1000.0 / temp, np.log(d)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    if has.any():
        bars = ax.errorbar(inv[has], ln_d[has], yerr=ln_err[has], fmt="o", color="C0",
                           capsize=3, label="kMC, ± 1 s.e. of the replicas")
        bars.lines[0].set_gid("bars")
        bars.lines[2][0].set_gid("errorbars")
    if (~has).any():
        (pts,) = ax.plot(inv[~has], ln_d[~has], "o", color="C0",
                         label="kMC (no s.e.)" if has.any() else "kMC")
        pts.set_gid("points")
    if fit is not None:
        xx = np.linspace(inv.min(), inv.max(), 100)
        err = (f" ± {fit.Ea_stderr_eV:.3f}" if np.isfinite(fit.Ea_stderr_eV) else "")
        (line,) = ax.plot(xx, fit.ln_D0 - fit.Ea_eV * xx / (1000.0 * K_B_EV_PER_K), "-",
                          color="C1", label=(rf"fit: $E_a$ = {fit.Ea_eV:.3f}{err} eV"
                                             + ("" if err else " (no s.e.)")
                                             + rf", $D_0$ = {fit.D0:.3g} Å$^2$/s"))
        line.set_gid("fit")
    ax.set_xlabel("1000 / T  (T in K)")
    ax.set_ylabel("ln D  (D in Å$^2$/s)")
    top = ax.secondary_xaxis("top", functions=(_per_mille_inverse, _per_mille_inverse))
    top.set_xlabel("T (K)")
    top.xaxis.set_major_locator(plt.MaxNLocator(5))  # T crowds where 1000/T is small
    ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_arrhenius(
    temperatures_K: np.ndarray,
    D: np.ndarray,
    path: str | os.PathLike[str],
    fit: ArrheniusFit | None = None,
    D_stderr: Sequence[float | None] | np.ndarray | None = None,
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
        If given, draw ``ln D0 - Ea / (k_B T)`` with Ea ± its standard error and D0 in the
        legend.
    D_stderr
        Standard errors of D over the replicas, drawn as ``D_stderr / D`` on ln D; a point
        whose entry is None, NaN or 0 (a single replica) is drawn without an error bar.

    Returns
    -------
    pathlib.Path
        The written file.

    """
    return _save(arrhenius_figure(temperatures_K, D, fit, D_stderr), path)


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


@dataclass(frozen=True, eq=False)
class Sigma2Curve:
    """sigma^2(t) of one temperature: the replica mean, its standard error and the fitted line.

    ``time_s`` (s), ``mean_A2`` and ``stderr_A2`` (Angstrom^2) are per sample; ``stderr_A2`` is
    NaN where fewer than two replicas have a value. The line is ``2 D t + intercept`` with the
    D that the run or study reports (None: no line).
    """

    label: str
    time_s: np.ndarray
    mean_A2: np.ndarray
    stderr_A2: np.ndarray
    n_replicas: int
    D_A2_per_s: float | None = None
    intercept_A2: float | None = None

    def line(self, times_s: np.ndarray) -> np.ndarray:
        """The fitted ``2 D t + intercept`` at ``times_s`` (Angstrom^2)."""
        if self.D_A2_per_s is None or self.intercept_A2 is None:
            raise ConfigError("this curve has no fitted line", field="D_A2_per_s")
        return 2.0 * self.D_A2_per_s * np.asarray(times_s, dtype=float) + self.intercept_A2


def sigma2_curve(
    times_s: Sequence[np.ndarray],
    sigma2_A2: Sequence[np.ndarray],
    label: str,
    D_A2_per_s: float | None = None,
    intercept_A2: float | None = None,
) -> Sigma2Curve:
    """Reduce replicas' sigma^2 series to their mean and its standard error, sample by sample.

    Replica ``r`` gives ``times_s[r]`` and ``sigma2_A2[r]`` (the erfc-fit variance, Angstrom^2,
    NaN where the fit failed). Samples are matched by index up to the shortest series; the time
    of a sample is the replicas' mean time (the same for runs sampled at fixed times). The mean
    skips NaN; the standard error is ``std(ddof=1) / sqrt(n)`` over the ``n`` finite values,
    NaN where ``n < 2``. ``D_A2_per_s`` and ``intercept_A2`` give the line (the reported fit).
    """
    if len(times_s) != len(sigma2_A2) or not times_s:
        raise ConfigError("need one time series per sigma^2 series, at least one",
                          field="sigma2_A2")
    ts = [np.asarray(t, dtype=float).ravel() for t in times_s]
    ss = [np.asarray(s, dtype=float).ravel() for s in sigma2_A2]
    if any(t.size != s.size for t, s in zip(ts, ss, strict=True)):
        raise ConfigError("each replica needs one time per sigma^2 value", field="sigma2_A2")
    n = min(t.size for t in ts)
    t = np.mean(np.stack([x[:n] for x in ts]), axis=0)
    s2 = np.stack([x[:n] for x in ss])
    finite = np.isfinite(s2)
    counts = finite.sum(axis=0)
    filled = np.where(finite, s2, 0.0)
    mean = np.full(n, np.nan)
    np.divide(filled.sum(axis=0), counts, out=mean, where=counts > 0)
    dev2 = np.where(finite, s2 - mean, 0.0) ** 2
    stderr = np.full(n, np.nan)
    many = counts > 1
    stderr[many] = np.sqrt(dev2.sum(axis=0)[many] / (counts[many] - 1) / counts[many])
    return Sigma2Curve(label, t, mean, stderr, len(ts),
                       None if D_A2_per_s is None else float(D_A2_per_s),
                       None if intercept_A2 is None else float(intercept_A2))


def sigma2_figure(curves: Sequence[Sigma2Curve], title: str | None = None) -> Any:
    """The figure of :func:`plot_sigma2`, not saved (a matplotlib Figure; close it after use).

    One panel per curve, linear axes. Artists carry gids to read back: ``"mean"`` (the line
    of the replica mean), ``"stderr"`` (the band) and ``"fit"`` (the line 2 D t + b).
    """
    if not curves:
        raise ConfigError("no sigma^2 curve to plot", field="curves")
    plt = _pyplot()
    ncols = min(len(curves), 3)
    nrows = -(-len(curves) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.8 * ncols, 3.4 * nrows), squeeze=False)
    for ax in axes.flat[len(curves):]:
        ax.set_visible(False)
    for ax, c in zip(axes.flat, curves, strict=False):
        many = c.n_replicas > 1
        (mean_line,) = ax.plot(c.time_s, c.mean_A2, "o-", ms=3, lw=1, color="C0",
                               label=f"mean of {c.n_replicas} replicas" if many else "run")
        mean_line.set_gid("mean")
        if many and np.any(np.isfinite(c.stderr_A2)):
            ok = np.isfinite(c.stderr_A2) & np.isfinite(c.mean_A2)
            e = np.where(ok, c.stderr_A2, 0.0)
            m = np.where(ok, c.mean_A2, 0.0)
            band = ax.fill_between(c.time_s, m - e, m + e, where=ok, color="C0", alpha=0.25,
                                   lw=0, label="± 1 standard error")
            band.set_gid("stderr")
        if c.D_A2_per_s is not None and c.intercept_A2 is not None and c.time_s.size:
            tt = np.array([0.0, float(np.max(c.time_s))])
            (fit_line,) = ax.plot(tt, c.line(tt), "--", color="k", lw=1,
                                  label=f"2 D t + b, D = {c.D_A2_per_s:.3g} Å²/s")
            fit_line.set_gid("fit")
        ax.set_title(c.label)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("σ² of the erfc fit (Å²)")
        ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        ax.legend(fontsize="x-small", loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_sigma2(curves: Sequence[Sigma2Curve], path: str | os.PathLike[str],
                title: str | None = None) -> Path:
    """Plot sigma^2 (the erfc-fit variance, Angstrom^2) against t (s), one panel per curve.

    Each panel shows the replica mean as a line, ± 1 standard error of that mean as a band
    (two or more replicas) and the line ``2 D t + b`` of the reported fit, so the slope on
    the figure is twice the D of the summary. Build the curves with :func:`sigma2_curve`.
    """
    return _save(sigma2_figure(curves, title), path)
