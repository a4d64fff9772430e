"""Analysis of diffusion-couple profiles: erfc fits, interdiffusion D, Boltzmann-Matano, Arrhenius.

Units are carried in the names: lengths in Angstrom (``_A``), times in s, temperatures in K,
energies in eV and diffusion coefficients in Angstrom^2/s (``_A2_per_s``). With a constant D the
initial step broadens as an error function of width ``sigma = sqrt(2 D t)``.

Only numpy is imported at module level; scipy is imported inside the functions that need it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from kmcflow.errors import ConfigError
from kmcflow.kmc.arrhenius import ArrheniusFit, arrhenius_fit
from kmcflow.kmc.matano import MatanoResult, boltzmann_matano

WIDTH_10_90_PER_SIGMA = 2.0 * math.sqrt(2.0) * 0.9061938024368232
"""10-90 % width of an erfc profile in units of sigma: 2 sqrt(2) erfinv(0.8) = 2.5631."""

WIDTH_10_90_PER_SQRT_DT = 2.0 * WIDTH_10_90_PER_SIGMA / math.sqrt(2.0)
"""10-90 % width in units of sqrt(D t): 4 erfinv(0.8) = 3.6248."""


@dataclass(frozen=True)
class CoupleGeometry:
    """Where the A|B interfaces of a diffusion couple lie along z.

    ``length_z_A`` is the period (periodic) or box length (closed) along z; ``interfaces_z_A``
    are the interface planes in [0, length_z_A); ``a_below[i]`` is True when A lies on the
    low-z side of interface ``i``. Along z the interfaces must alternate A-below / A-above.
    """

    length_z_A: float
    periodic: bool
    interfaces_z_A: tuple[float, ...]
    a_below: tuple[bool, ...]

    def __post_init__(self) -> None:
        n = len(self.interfaces_z_A)
        if n == 0 or len(self.a_below) != n or not self.length_z_A > 0:
            raise ConfigError("need length_z_A > 0 and one a_below per interface", field="a_below")
        flags = [self.a_below[i] for i in self._order()]
        alternating = all(flags[i] != flags[i + 1] for i in range(n - 1))
        if not alternating or (self.periodic and (n % 2 or flags[0] == flags[-1])):
            raise ConfigError(
                "interfaces must alternate between A-below and A-above along z",
                field="a_below",
                hint="a periodic couple has an even number of interfaces",
            )

    def _order(self) -> list[int]:
        return sorted(range(len(self.interfaces_z_A)), key=lambda i: self.interfaces_z_A[i])

    @classmethod
    def half_and_half(
        cls, z_layers_A: np.ndarray, length_z_A: float, periodic: bool
    ) -> CoupleGeometry:
        """Build the geometry when the first ``L // 2`` layers (by index) are A.

        The interface (A below) lies midway between the last A and the first B layer; when
        ``periodic``, a second one (B below) lies midway between the last B layer and the
        first A layer across the boundary, wrapped into [0, length_z_A).

        Parameters
        ----------
        z_layers_A
            Layer positions, Angstrom, ascending.
        length_z_A
            Period or box length along z, Angstrom.
        periodic
            Whether z is periodic.

        Returns
        -------
        CoupleGeometry

        """
        z = np.asarray(z_layers_A, dtype=float)
        if z.ndim != 1 or z.size < 2:
            raise ConfigError("need at least two layers", field="z_layers_A")
        half = z.size // 2
        z_hi = 0.5 * (z[half - 1] + z[half])
        if not periodic:
            return cls(float(length_z_A), False, (float(z_hi),), (True,))
        z_lo = (0.5 * (z[-1] + z[0] + length_z_A)) % length_z_A
        return cls(float(length_z_A), True, (float(z_lo), float(z_hi)), (False, True))


@dataclass(frozen=True)
class ErfcFit:
    """Result of :func:`fit_erfc`; ``shifts_A`` has one displacement per interface."""

    sigma_A: float
    sigma_stderr_A: float
    shifts_A: tuple[float, ...]
    c_a: float
    c_b: float
    residual_rms: float


SINGLE_TRAJECTORY_STDERR_NOTE = (
    "one trajectory gives no standard error of D: its samples are correlated, so the "
    "least-squares error of the line (line_fit_stderr_A2_per_s) understates it about 5x; run "
    "replicas (--replicas R) for one")


@dataclass(frozen=True, eq=False)
class InterdiffusionFit:
    """Result of :func:`fit_interdiffusion`: ``sigma^2 = 2 D t + intercept`` over ``used``.

    ``D_stderr_A2_per_s`` is the least-squares error of the slope / 2: right for independent
    points, too small for the correlated samples of one kMC trajectory (see :meth:`record`).
    """

    D_A2_per_s: float
    D_stderr_A2_per_s: float
    intercept_A2: float
    intercept_stderr_A2: float
    times_s: np.ndarray
    sigma2_A2: np.ndarray
    used: np.ndarray
    n_samples_used: int

    @property
    def D_cm2_per_s(self) -> float:
        """Diffusion coefficient in cm^2/s."""
        return self.D_A2_per_s * 1e-16

    def record(self, method: str) -> dict:
        """A JSON-safe summary of the fit of one sigma^2(t) series.

        ``D_stderr_A2_per_s`` is None: the samples of one trajectory are correlated (each
        sigma^2 builds on the last), so the least-squares error of the line, kept as
        ``line_fit_stderr_A2_per_s``, understates the uncertainty of D (5.5x over 16 seeds of
        the isotope couple). A standard error of D needs independent trajectories (replicas).
        """

        def finite(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        return {"D_A2_per_s": self.D_A2_per_s, "D_stderr_A2_per_s": None,
                "D_stderr_note": SINGLE_TRAJECTORY_STDERR_NOTE,
                "line_fit_stderr_A2_per_s": finite(self.D_stderr_A2_per_s),
                "D_cm2_per_s": self.D_cm2_per_s, "intercept_A2": self.intercept_A2,
                "samples_used": self.n_samples_used, "method": method}


def step_profile(
    z_A: np.ndarray,
    geometry: CoupleGeometry,
    sigma_A: float,
    c_a: float = 1.0,
    c_b: float = 0.0,
    shifts_A: np.ndarray | tuple[float, ...] | None = None,
) -> np.ndarray:
    """Exact constant-D solution of Fick's second law for the initial A|B step.

    Closed couples are treated as an infinite medium (the walls are ignored); periodic couples
    sum the periodic images of each A slab (a Fourier series is used once sigma exceeds the
    period, where it converges faster).

    Parameters
    ----------
    z_A, geometry
        Positions (Angstrom) and the couple geometry.
    sigma_A
        ``sqrt(2 D t)``, Angstrom; 0 gives the sharp step (A on [z_lo, z_hi)).
    c_a, c_b
        Concentration in the A and B plateaus.
    shifts_A
        Optional displacement of each interface plane, Angstrom.

    Returns
    -------
    numpy.ndarray
        Concentration at ``z_A``.

    """
    z = np.asarray(z_A, dtype=float)
    if not sigma_A >= 0.0:
        raise ConfigError("sigma_A must be >= 0", field="sigma_A")
    order = geometry._order()
    pos = np.asarray(geometry.interfaces_z_A, dtype=float)
    if shifts_A is not None:
        shifts = np.asarray(shifts_A, dtype=float)
        if shifts.shape != pos.shape:
            raise ConfigError("need one shift per interface", field="shifts_A")
        pos = pos + shifts
    pos = pos[order]
    below = [geometry.a_below[i] for i in order]
    s = math.sqrt(2.0) * sigma_A

    def erf_(d: np.ndarray) -> np.ndarray:
        if sigma_A == 0.0:  # sharp step: sign(d) with sign(0) = +1, so A occupies [z_lo, z_hi)
            return np.where(d >= 0.0, 1.0, -1.0)
        from scipy.special import erf

        return erf(d / s)

    if not geometry.periodic:
        frac = np.full(z.shape, 1.0 if below[0] else 0.0)
        for zi, a_low in zip(pos, below, strict=True):
            frac += (-0.5 if a_low else 0.5) * (1.0 + erf_(z - zi))
        return c_b + (c_a - c_b) * frac
    length = geometry.length_z_A
    starts = [pos[i] for i in range(len(pos)) if not below[i]]
    ends = [pos[(i + 1) % len(pos)] for i in range(len(pos)) if not below[i]]
    frac = np.zeros(z.shape)
    for a, b in zip(starts, ends, strict=True):
        b = b + length if b < a else b
        if sigma_A <= length:
            n_img = math.ceil(8.0 * sigma_A / length) + 1
            for k in range(-n_img, n_img + 1):
                zk = z - k * length
                frac += 0.5 * (erf_(zk - a) - erf_(zk - b))
        else:
            frac += (b - a) / length
            for n in range(1, 11):
                kn = 2.0 * math.pi * n / length
                amp = math.exp(-0.5 * (kn * sigma_A) ** 2) / (n * math.pi)
                frac += amp * (np.sin(kn * (z - a)) - np.sin(kn * (z - b)))
    return c_b + (c_a - c_b) * frac


def interface_windows(geometry: CoupleGeometry) -> list[tuple[float, float]]:
    """Half-distance to the neighbouring interface (or box end) below and above each one."""
    pos = np.asarray(geometry.interfaces_z_A, dtype=float)
    order = geometry._order()
    n, length = len(pos), geometry.length_z_A
    out: list[tuple[float, float]] = [(0.0, 0.0)] * n
    for rank, i in enumerate(order):
        if geometry.periodic:
            lo_gap = (pos[i] - pos[order[rank - 1]]) % length or length
            hi_gap = (pos[order[(rank + 1) % n]] - pos[i]) % length or length
            out[i] = (0.5 * lo_gap, 0.5 * hi_gap)
        else:
            lo = 0.5 * (pos[i] - pos[order[rank - 1]]) if rank > 0 else pos[i]
            hi = 0.5 * (pos[order[rank + 1]] - pos[i]) if rank < n - 1 else length - pos[i]
            out[i] = (lo, hi)
    return out


def _crossing(d: np.ndarray, y: np.ndarray, level: float) -> float | None:
    """Mean of the first and last linearly interpolated crossings of ``level`` (None if none)."""
    dy = y - level
    idx = np.nonzero((dy[:-1] * dy[1:] <= 0.0) & (y[:-1] != y[1:]))[0]
    if idx.size == 0:
        return None
    t = dy[idx] / (y[idx] - y[idx + 1])
    hits = d[idx] + t * (d[idx + 1] - d[idx])
    return 0.5 * float(hits[0] + hits[-1])


def width_10_90(
    z_A: np.ndarray,
    x: np.ndarray,
    geometry: CoupleGeometry,
    *,
    c_a: float = 1.0,
    c_b: float = 0.0,
) -> float:
    """10-90 % interface width, Angstrom, averaged over the interfaces.

    Each interface is analysed within the window that reaches halfway to its neighbouring
    interfaces (or to the box ends for a closed couple). ``x`` is normalised with the plateau
    values ``c_a`` (A side) and ``c_b``. Noise can make the profile cross a level several
    times; the crossing used is the mean of the first and the last one (linear interpolation
    between layers), which is symmetric and insensitive to a single noisy layer. An exact
    erfc profile gives ``2.5631 sigma = 3.6248 sqrt(D t)``.

    Parameters
    ----------
    z_A, x, geometry
        Layer positions (Angstrom), fraction of A per layer and the couple geometry.
    c_a, c_b
        Plateau values used for the normalisation.

    Returns
    -------
    float
        Mean width, Angstrom.

    """
    z = np.asarray(z_A, dtype=float)
    y_all = (np.asarray(x, dtype=float) - c_b) / (c_a - c_b)
    if z.shape != y_all.shape or z.ndim != 1:
        raise ConfigError("z_A and x must be 1-D arrays of equal length", field="x")
    widths = []
    for i, (lo, hi) in enumerate(interface_windows(geometry)):
        d = z - geometry.interfaces_z_A[i]
        if geometry.periodic:
            d = (d + 0.5 * geometry.length_z_A) % geometry.length_z_A - 0.5 * geometry.length_z_A
        keep = (d >= -lo) & (d <= hi)
        order = np.argsort(d[keep])
        dk = d[keep][order]
        yk = y_all[keep][order]
        if not geometry.a_below[i]:
            yk = 1.0 - yk
        hi_pos, lo_pos = _crossing(dk, yk, 0.9), _crossing(dk, yk, 0.1)
        if hi_pos is None or lo_pos is None:
            raise ConfigError(
                f"the profile does not cross the 10 % and 90 % levels near interface {i}",
                field="x",
                hint="check the plateau values, or the profile has already flattened",
            )
        widths.append(lo_pos - hi_pos)
    return float(np.mean(widths))


def fit_erfc(
    z_A: np.ndarray, x: np.ndarray, geometry: CoupleGeometry, free_plateaus: bool = False
) -> ErfcFit:
    """Least-squares fit of :func:`step_profile` (sigma and one shift per interface).

    The initial sigma comes from :func:`width_10_90` (or the layer spacing); the model uses
    ``|sigma|`` so the unconstrained Levenberg-Marquardt search cannot leave the domain.

    Parameters
    ----------
    z_A, x, geometry
        Layer positions (Angstrom), fraction of A per layer and the couple geometry.
    free_plateaus
        Also fit the plateau values ``c_a`` and ``c_b`` (otherwise fixed at 1 and 0).

    Returns
    -------
    ErfcFit

    """
    from scipy.optimize import OptimizeWarning, curve_fit

    z = np.asarray(z_A, dtype=float)
    y = np.asarray(x, dtype=float)
    if z.shape != y.shape or z.ndim != 1:
        raise ConfigError("z_A and x must be 1-D arrays of equal length", field="x")
    n_int = len(geometry.interfaces_z_A)
    spacing = float(np.mean(np.diff(z))) if z.size > 1 else 1.0
    try:
        sigma0 = max(width_10_90(z, y, geometry) / WIDTH_10_90_PER_SIGMA, spacing)
    except ConfigError:
        sigma0 = spacing
    p0 = [sigma0] + [0.0] * n_int
    if free_plateaus:
        p0 += [1.0, 0.0]
    n_par = len(p0)
    if z.size <= n_par:
        raise ConfigError("too few layers to fit the profile", field="x")

    def model(zz: np.ndarray, *p: float) -> np.ndarray:
        c_a, c_b = (p[-2], p[-1]) if free_plateaus else (1.0, 0.0)
        return step_profile(zz, geometry, abs(p[0]), c_a, c_b, shifts_A=p[1 : 1 + n_int])

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            popt, pcov = curve_fit(model, z, y, p0=p0, maxfev=5000)
    except RuntimeError as exc:
        raise ConfigError(f"the erfc fit did not converge: {exc}", field="x") from exc
    resid = y - model(z, *popt)
    c_a, c_b = (float(popt[-2]), float(popt[-1])) if free_plateaus else (1.0, 0.0)
    return ErfcFit(
        sigma_A=abs(float(popt[0])),
        sigma_stderr_A=float(np.sqrt(pcov[0, 0])) if np.isfinite(pcov[0, 0]) else math.nan,
        shifts_A=tuple(float(v) for v in popt[1 : 1 + n_int]),
        c_a=c_a,
        c_b=c_b,
        residual_rms=float(np.sqrt(np.mean(resid**2))),
    )


def fit_interdiffusion(
    times_s: np.ndarray,
    z_A: np.ndarray,
    x_samples: np.ndarray,
    geometry: CoupleGeometry,
    free_plateaus: bool = False,
    min_sigma_A: float | None = None,
) -> InterdiffusionFit:
    """Fit ``sigma^2 = 2 D t + b`` to the erfc widths of a time series of profiles.

    Every sample is fitted with :func:`fit_erfc` (a failed fit gives NaN). Samples enter the
    ordinary least-squares line only when ``t > 0`` and ``sigma >= min_sigma_A`` (default half
    the mean layer spacing: the lattice cannot resolve narrower profiles). The standard errors
    come from the regression covariance with the residual variance (NaN with two samples).

    Parameters
    ----------
    times_s, z_A, x_samples
        Sample times (s, shape (n,)), layer positions (Angstrom, shape (L,)) and fraction of
        A per layer (shape (n, L)).
    geometry, free_plateaus
        Passed to :func:`fit_erfc`.
    min_sigma_A
        Narrowest usable profile, Angstrom.

    Returns
    -------
    InterdiffusionFit

    """
    t = np.asarray(times_s, dtype=float)
    xs = np.asarray(x_samples, dtype=float)
    z = np.asarray(z_A, dtype=float)
    if xs.ndim != 2 or xs.shape != (t.size, z.size):
        raise ConfigError("x_samples must have shape (len(times_s), len(z_A))", field="x_samples")
    if min_sigma_A is None:
        spacing = geometry.length_z_A / z.size if geometry.periodic else np.mean(np.diff(z))
        min_sigma_A = 0.5 * float(spacing)
    sigma2 = np.full(t.size, np.nan)
    for k in range(t.size):
        try:
            sigma2[k] = fit_erfc(z, xs[k], geometry, free_plateaus).sigma_A ** 2
        except ConfigError:
            pass
    used = (t > 0) & np.isfinite(sigma2) & (sigma2 >= min_sigma_A**2)
    n = int(used.sum())
    if n < 2:
        raise ConfigError(
            f"only {n} sample(s) with t > 0 and sigma >= {min_sigma_A:.3g} Angstrom",
            field="x_samples",
            hint="run longer or record more samples so the interface broadens measurably",
        )
    a = np.column_stack([t[used], np.ones(n)])
    coef, *_ = np.linalg.lstsq(a, sigma2[used], rcond=None)
    cov = np.full((2, 2), np.nan)
    if n > 2:
        rss = float(np.sum((sigma2[used] - a @ coef) ** 2))
        cov = rss / (n - 2) * np.linalg.inv(a.T @ a)
    return InterdiffusionFit(
        D_A2_per_s=0.5 * float(coef[0]),
        D_stderr_A2_per_s=0.5 * float(np.sqrt(cov[0, 0])),
        intercept_A2=float(coef[1]),
        intercept_stderr_A2=float(np.sqrt(cov[1, 1])),
        times_s=t,
        sigma2_A2=sigma2,
        used=used,
        n_samples_used=n,
    )


__all__ = [
    "WIDTH_10_90_PER_SIGMA", "WIDTH_10_90_PER_SQRT_DT", "ArrheniusFit",
    "CoupleGeometry", "ErfcFit", "InterdiffusionFit", "MatanoResult", "arrhenius_fit",
    "boltzmann_matano", "fit_erfc", "fit_interdiffusion", "step_profile", "width_10_90",
]
