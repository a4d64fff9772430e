"""Boltzmann-Matano analysis: a concentration-dependent D(c) from one interface profile."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kmcflow.errors import ConfigError


@dataclass(frozen=True, eq=False)
class MatanoResult:
    """Result of :func:`boltzmann_matano`: D at each concentration level."""

    z_matano_A: float
    c_levels: np.ndarray
    D_A2_per_s: np.ndarray


def _isotonic(y: np.ndarray) -> np.ndarray:
    """Non-decreasing least-squares fit (pool adjacent violators)."""
    vals: list[float] = []
    counts: list[int] = []
    for v in y:
        vals.append(float(v))
        counts.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            c = counts[-2] + counts[-1]
            vals[-2] = (vals[-2] * counts[-2] + vals[-1] * counts[-1]) / c
            counts[-2] = c
            del vals[-1], counts[-1]
    return np.repeat(vals, counts)


def boltzmann_matano(
    z_A: np.ndarray,
    c: np.ndarray,
    time_s: float,
    c_left: float | None = None,
    c_right: float | None = None,
    levels: np.ndarray | None = None,
    window_layers: int = 7,
) -> MatanoResult:
    """Concentration-dependent D of one interface by the Boltzmann-Matano method.

    The profile is normalised to ``u = (c - c_left) / (c_right - c_left)`` and made
    non-decreasing by isotonic regression; this monotone profile gives the level positions,
    the Matano plane ``z_M = z_end - int u dz`` (mass balance) and the integral
    ``int_0^u (z - z_M) du``. The slope ``du/dz`` at each level comes from a local quadratic
    least-squares fit of the raw normalised data over the ``window_layers`` nearest layers
    (smoothing). Levels where the slope is not positive give NaN.

    Parameters
    ----------
    z_A, c, time_s
        Positions (Angstrom, ascending), the concentration profile going from ``c_left``
        (low z) to ``c_right`` (high z), and the diffusion time (s).
    c_left, c_right
        Plateau values; default the mean of the first/last ``max(1, min(5, L // 10))`` points.
    levels
        Levels as fractions of ``c_right - c_left``; default ``0.2, 0.3, ..., 0.8``.
    window_layers
        Number of layers in the local slope fit.

    Returns
    -------
    MatanoResult
        ``c_levels`` in the units of ``c``, ``D_A2_per_s`` at each level.

    """
    z = np.asarray(z_A, dtype=float)
    cc = np.asarray(c, dtype=float)
    if z.ndim != 1 or z.shape != cc.shape or z.size < 5 or np.any(np.diff(z) <= 0):
        raise ConfigError("need matching 1-D arrays, z ascending, >= 5 points", field="z_A")
    if not time_s > 0:
        raise ConfigError("time_s must be positive", field="time_s")
    n_edge = max(1, min(5, z.size // 10))
    c_left = float(np.mean(cc[:n_edge])) if c_left is None else float(c_left)
    c_right = float(np.mean(cc[-n_edge:])) if c_right is None else float(c_right)
    if c_left == c_right:
        raise ConfigError("the plateaus are equal: no interface to analyse", field="c")
    fr = np.linspace(0.2, 0.8, 7) if levels is None else np.asarray(levels, dtype=float)
    u_raw = (cc - c_left) / (c_right - c_left)
    u = np.clip(_isotonic(u_raw), 0.0, 1.0)
    seg = np.diff(z) * 0.5 * (u[1:] + u[:-1])
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    z_m = float(z[-1] - cum[-1])
    d_out = np.full(fr.shape, np.nan)
    for k, lev in enumerate(fr):
        j = int(np.searchsorted(u, lev, side="left"))
        if j == 0 or j >= z.size or not 0.0 < lev < 1.0:
            continue
        z_star = z[j - 1] + (lev - u[j - 1]) / (u[j] - u[j - 1]) * (z[j] - z[j - 1])
        integral_u = cum[j - 1] + 0.5 * (z_star - z[j - 1]) * (u[j - 1] + lev)
        moment = (z_star - z_m) * lev - integral_u
        near = np.argsort(np.abs(z - z_star))[: max(3, window_layers)]
        dz = z[near] - z_star
        slope = np.polyfit(dz, u_raw[near], 2)[1]
        if slope > 0:
            d_out[k] = -moment / (2.0 * time_s * slope)
    return MatanoResult(z_matano_A=z_m, c_levels=c_left + fr * (c_right - c_left), D_A2_per_s=d_out)
