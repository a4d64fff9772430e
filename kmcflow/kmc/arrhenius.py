"""Arrhenius fit of diffusion coefficients over temperatures: E_a and D0 with standard errors."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kmcflow.errors import ConfigError
from kmcflow.kmc.constants import K_B_EV_PER_K


@dataclass(frozen=True)
class ArrheniusFit:
    """Result of :func:`arrhenius_fit`: ``D = D0 exp(-Ea / (k_B T))``; D0 in the units of D."""

    Ea_eV: float
    Ea_stderr_eV: float
    D0: float
    D0_stderr: float
    ln_D0: float
    ln_D0_stderr: float


def arrhenius_fit(
    temperatures_K: np.ndarray, D: np.ndarray, D_stderr: np.ndarray | None = None
) -> ArrheniusFit:
    """Weighted least-squares fit of ``ln D = ln D0 - Ea / (k_B T)``.

    Without ``D_stderr`` the fit is unweighted and the standard errors scale with the residual
    variance (NaN with two temperatures). With ``D_stderr`` the weights are ``(D / D_stderr)^2``
    and the errors are taken as absolute (the covariance is not rescaled).

    Parameters
    ----------
    temperatures_K, D, D_stderr
        Temperatures (K), diffusion coefficients (any units; D0 comes out in the same units)
        and their optional standard errors.

    Returns
    -------
    ArrheniusFit

    """
    temp = np.asarray(temperatures_K, dtype=float)
    d = np.asarray(D, dtype=float)
    if temp.ndim != 1 or d.shape != temp.shape:
        raise ConfigError("temperatures_K and D must be 1-D arrays of equal length", field="D")
    if temp.size < 2 or np.unique(temp).size < 2:
        raise ConfigError(
            "an Arrhenius fit needs at least two distinct temperatures",
            field="temperatures_K",
            hint="run the kMC at more temperatures",
        )
    if np.any(~(d > 0)) or np.any(~(temp > 0)):
        raise ConfigError("all D and temperatures must be positive", field="D")
    ln_d = np.log(d)
    a = np.column_stack([np.ones(temp.size), -1.0 / (K_B_EV_PER_K * temp)])
    if D_stderr is not None:
        err = np.asarray(D_stderr, dtype=float)
        if err.shape != d.shape or np.any(~(err > 0)):
            raise ConfigError("D_stderr must be positive, one per D", field="D_stderr")
        w = (d / err) ** 2
    else:
        w = np.ones(temp.size)
    normal = a.T @ (w[:, None] * a)
    coef = np.linalg.solve(normal, a.T @ (w * ln_d))
    cov = np.linalg.inv(normal)
    if D_stderr is None:
        dof = temp.size - 2
        rss = float(np.sum((ln_d - a @ coef) ** 2))
        cov = cov * (rss / dof) if dof > 0 else np.full((2, 2), np.nan)
    ln_d0, ea = float(coef[0]), float(coef[1])
    ln_d0_err, ea_err = float(np.sqrt(cov[0, 0])), float(np.sqrt(cov[1, 1]))
    d0 = math.exp(ln_d0)
    return ArrheniusFit(
        Ea_eV=ea,
        Ea_stderr_eV=ea_err,
        D0=d0,
        D0_stderr=d0 * ln_d0_err,
        ln_D0=ln_d0,
        ln_D0_stderr=ln_d0_err,
    )
