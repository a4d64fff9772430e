"""Tests of kmcflow.kmc.analysis and kmcflow.kmc.plots against analytic references."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import erfc, erfinv

import kmcflow
from kmcflow.errors import ConfigError
from kmcflow.kmc.analysis import (
    WIDTH_10_90_PER_SIGMA,
    WIDTH_10_90_PER_SQRT_DT,
    CoupleGeometry,
    arrhenius_fit,
    boltzmann_matano,
    fit_erfc,
    fit_interdiffusion,
    step_profile,
    width_10_90,
)
from kmcflow.kmc.constants import K_B_EV_PER_K
from kmcflow.kmc.plots import plot_arrhenius, plot_profiles, plot_width

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _periodic_layers(n: int = 200, spacing_A: float = 2.0):
    length = n * spacing_A
    z = (np.arange(n) + 0.5) * spacing_A
    return z, CoupleGeometry.half_and_half(z, length, periodic=True)


# ---------------------------------------------------------------- geometry / step_profile


def test_half_and_half_geometry():
    z, geo = _periodic_layers(10, 1.0)
    assert geo.periodic and geo.length_z_A == 10.0
    assert geo.interfaces_z_A == (0.0, 5.0)
    assert geo.a_below == (False, True)
    closed = CoupleGeometry.half_and_half(z, 10.0, periodic=False)
    assert closed.interfaces_z_A == (5.0,) and closed.a_below == (True,)
    with pytest.raises(ConfigError):
        CoupleGeometry(10.0, True, (2.0, 5.0), (True, True))


def test_step_profile_periodic_conserves_and_matches_erfc():
    dz = 0.05
    length = 100.0
    z = np.arange(0.0, length, dz)
    geo = CoupleGeometry(length, True, (25.0, 75.0), (False, True))
    step = step_profile(z, geo, 0.0)
    np.testing.assert_array_equal(step, ((z >= 25.0) & (z < 75.0)).astype(float))
    initial = step.sum()
    for sigma in (3.0, 20.0, 99.0, 101.0, 300.0):
        prof = step_profile(z, geo, sigma)
        assert prof.sum() == pytest.approx(initial, rel=1e-9)
        assert np.all(prof >= -1e-12) and np.all(prof <= 1 + 1e-12)
    # image sum (sigma <= L) and Fourier series (sigma > L) agree at the switch
    np.testing.assert_allclose(
        step_profile(z, geo, length), step_profile(z, geo, length * (1 + 1e-12)), atol=1e-12
    )
    sigma = 2.0
    near = np.abs(z - 75.0) < 10.0
    ref = 0.5 * erfc((z[near] - 75.0) / (math.sqrt(2.0) * sigma))
    np.testing.assert_allclose(step_profile(z, geo, sigma)[near], ref, atol=1e-12)
    ref_lo = 1.0 - 0.5 * erfc((z[np.abs(z - 25.0) < 10] - 25.0) / (math.sqrt(2.0) * sigma))
    np.testing.assert_allclose(step_profile(z, geo, sigma)[np.abs(z - 25.0) < 10], ref_lo)
    # plateaus and shifts
    shifted = step_profile(z, geo, 0.0, c_a=0.8, c_b=0.1, shifts_A=(5.0, -5.0))
    np.testing.assert_allclose(shifted, np.where((z >= 30.0) & (z < 70.0), 0.8, 0.1))
    with pytest.raises(ConfigError):
        step_profile(z, geo, -1.0)


def test_step_profile_closed_is_erfc():
    z = np.linspace(0.0, 100.0, 501)
    geo = CoupleGeometry(100.0, False, (40.0,), (True,))
    ref = 0.2 + 0.6 * 0.5 * erfc((z - 40.0) / (math.sqrt(2.0) * 7.0))
    np.testing.assert_allclose(step_profile(z, geo, 7.0, c_a=0.8, c_b=0.2), ref, atol=1e-14)


# ------------------------------------------------------------------------- width_10_90


def test_width_constant_matches_erfinv():
    assert WIDTH_10_90_PER_SQRT_DT == pytest.approx(4.0 * erfinv(0.8), rel=1e-14)
    assert WIDTH_10_90_PER_SIGMA == pytest.approx(2.0 * math.sqrt(2.0) * erfinv(0.8), rel=1e-14)
    assert WIDTH_10_90_PER_SQRT_DT == pytest.approx(3.6248, abs=1e-4)


@pytest.mark.parametrize("periodic", [False, True])
def test_width_10_90_exact_erfc(periodic):
    d_a2_per_s, t_s = 4.0, 2.0
    sigma = math.sqrt(2.0 * d_a2_per_s * t_s)
    length = 40.0 * sigma
    z = np.arange(0.0, length, sigma / 10.0) + sigma / 20.0
    geo = CoupleGeometry.half_and_half(z, length, periodic)
    x = step_profile(z, geo, sigma)
    expected = 4.0 * erfinv(0.8) * math.sqrt(d_a2_per_s * t_s)
    assert width_10_90(z, x, geo) == pytest.approx(expected, rel=0.01)
    # renormalised plateaus
    y = 0.1 + 0.7 * x
    assert width_10_90(z, y, geo, c_a=0.8, c_b=0.1) == pytest.approx(expected, rel=0.01)


def test_width_10_90_no_crossing_raises():
    z, geo = _periodic_layers(50, 1.0)
    with pytest.raises(ConfigError):
        width_10_90(z, np.full(z.size, 0.5), geo)


# ---------------------------------------------------------------------------- fit_erfc


def test_fit_erfc_exact_noisy_and_shift():
    z, geo = _periodic_layers()
    sigma = 12.0
    fit = fit_erfc(z, step_profile(z, geo, sigma), geo)
    assert fit.sigma_A == pytest.approx(sigma, rel=0.005)
    assert fit.residual_rms < 1e-6
    assert (fit.c_a, fit.c_b) == (1.0, 0.0)

    rng = np.random.default_rng(12345)
    noisy = step_profile(z, geo, sigma) + rng.normal(0.0, 0.02, z.size)
    fit = fit_erfc(z, noisy, geo)
    assert fit.sigma_A == pytest.approx(sigma, rel=0.04)
    assert abs(fit.sigma_A - sigma) < 4 * fit.sigma_stderr_A
    assert fit.residual_rms == pytest.approx(0.02, rel=0.2)

    shifted = step_profile(z, geo, sigma, shifts_A=(3.0, -2.0))
    fit = fit_erfc(z, shifted, geo)
    np.testing.assert_allclose(fit.shifts_A, (3.0, -2.0), atol=1e-3)
    assert fit.sigma_A == pytest.approx(sigma, rel=1e-4)

    plateaus = step_profile(z, geo, sigma, c_a=0.9, c_b=0.05)
    fit = fit_erfc(z, plateaus, geo, free_plateaus=True)
    assert fit.c_a == pytest.approx(0.9, abs=1e-6)
    assert fit.c_b == pytest.approx(0.05, abs=1e-6)
    assert fit.sigma_A == pytest.approx(sigma, rel=1e-4)


# ------------------------------------------------------------------ fit_interdiffusion


def test_fit_interdiffusion_exact_and_noisy():
    z, geo = _periodic_layers()
    d_true = 5.0
    times = np.array([0.0, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0])
    xs = np.array([step_profile(z, geo, math.sqrt(2 * d_true * t)) for t in times])
    fit = fit_interdiffusion(times, z, xs, geo)
    assert fit.n_samples_used == 6
    assert not fit.used[0]
    assert fit.D_A2_per_s == pytest.approx(d_true, rel=0.01)
    assert fit.D_cm2_per_s == pytest.approx(d_true * 1e-16, rel=0.01)
    assert abs(fit.intercept_A2) < 0.5
    np.testing.assert_allclose(fit.sigma2_A2[1:], 2 * d_true * times[1:], rtol=0.005)

    rng = np.random.default_rng(7)
    noisy = xs + rng.normal(0.0, 0.02, xs.shape)
    fit = fit_interdiffusion(times, z, noisy, geo)
    assert fit.D_stderr_A2_per_s > 0
    assert abs(fit.D_A2_per_s - d_true) < 3 * fit.D_stderr_A2_per_s
    assert fit.D_A2_per_s == pytest.approx(d_true, rel=0.1)


def test_fit_interdiffusion_too_few_samples():
    z, geo = _periodic_layers()
    xs = np.array([step_profile(z, geo, 0.0), step_profile(z, geo, 10.0)])
    with pytest.raises(ConfigError) as info:
        fit_interdiffusion([0.0, 1.0], z, xs, geo)
    assert info.value.hint


# -------------------------------------------------------------------- boltzmann_matano


def test_boltzmann_matano_constant_d():
    d_true, t_s = 2.0, 100.0
    z = np.arange(400.0)
    c = 0.5 * erfc((z - 213.0) / (2.0 * math.sqrt(d_true * t_s)))
    res = boltzmann_matano(z, c, t_s)
    assert res.z_matano_A == pytest.approx(213.0, abs=0.05)
    np.testing.assert_allclose(res.c_levels, np.linspace(0.8, 0.2, 7), atol=1e-6)
    np.testing.assert_allclose(res.D_A2_per_s[1:-1], d_true, rtol=0.03)
    assert np.all(np.isfinite(res.D_A2_per_s))


def _fd_profile(d0, n=400, dz=1.0, t_end=400.0):
    """Explicit finite differences for dc/dt = d/dz(D(c) dc/dz), D = d0 (1 + c), c: 1 | 0."""
    c = np.where(np.arange(n) < n // 2, 1.0, 0.0)
    dt = 0.2 * dz**2 / (2.0 * d0)
    steps = round(t_end / dt)
    for _ in range(steps):
        d_face = d0 * (1.0 + 0.5 * (c[1:] + c[:-1]))
        flux = -d_face * np.diff(c) / dz
        c[1:-1] -= dt * np.diff(flux) / dz
    return (np.arange(n) * dz), c, steps * dt


def test_boltzmann_matano_concentration_dependent_d():
    d0 = 1.0
    z, c, t_s = _fd_profile(d0)
    res = boltzmann_matano(z, c, t_s, c_left=1.0, c_right=0.0, levels=[0.7, 0.5, 0.3])
    c_lev = np.array([0.3, 0.5, 0.7])
    np.testing.assert_allclose(res.c_levels, c_lev)
    np.testing.assert_allclose(res.D_A2_per_s, d0 * (1.0 + c_lev), rtol=0.05)


def test_boltzmann_matano_noise_and_errors():
    d_true, t_s = 2.0, 100.0
    z = np.arange(400.0)
    rng = np.random.default_rng(3)
    c = 0.5 * erfc((z - 200.0) / (2.0 * math.sqrt(d_true * t_s))) + rng.normal(0, 0.01, z.size)
    res = boltzmann_matano(z, c, t_s, window_layers=21)
    np.testing.assert_allclose(res.D_A2_per_s[2:-2], d_true, rtol=0.25)
    with pytest.raises(ConfigError):
        boltzmann_matano(z, np.ones(z.size), t_s)
    with pytest.raises(ConfigError):
        boltzmann_matano(z, c, 0.0)


# ----------------------------------------------------------------------- arrhenius_fit


def test_arrhenius_exact_and_noisy():
    ea, d0 = 1.2, 3.0e13
    temps = np.array([800.0, 900.0, 1000.0, 1100.0, 1200.0, 1300.0])
    d = d0 * np.exp(-ea / (K_B_EV_PER_K * temps))
    fit = arrhenius_fit(temps, d)
    assert fit.Ea_eV == pytest.approx(ea, rel=1e-10)
    assert fit.D0 == pytest.approx(d0, rel=1e-10)
    assert fit.ln_D0 == pytest.approx(math.log(d0), rel=1e-10)
    assert fit.Ea_stderr_eV < 1e-8

    rng = np.random.default_rng(2024)
    noisy = d * (1.0 + 0.02 * rng.standard_normal(temps.size))
    fit = arrhenius_fit(temps, noisy)
    assert 0 < fit.Ea_stderr_eV < 0.1
    assert abs(fit.Ea_eV - ea) < 3 * fit.Ea_stderr_eV
    weighted = arrhenius_fit(temps, noisy, D_stderr=0.02 * noisy)
    assert abs(weighted.Ea_eV - ea) < 3 * weighted.Ea_stderr_eV
    assert weighted.D0_stderr == pytest.approx(weighted.D0 * weighted.ln_D0_stderr)

    two = arrhenius_fit(temps[:2], d[:2])
    assert two.Ea_eV == pytest.approx(ea, rel=1e-10)
    assert math.isnan(two.Ea_stderr_eV)


def test_arrhenius_errors():
    with pytest.raises(ConfigError):
        arrhenius_fit([1000.0], [1.0])
    with pytest.raises(ConfigError):
        arrhenius_fit([900.0, 1000.0], [1.0, 0.0])
    with pytest.raises(ConfigError):
        arrhenius_fit([900.0, 1000.0], [1.0, -2.0])


# ------------------------------------------------------------------------------ plots


def _is_png(path):
    data = path.read_bytes()
    return len(data) > 100 and data[:8] == PNG_MAGIC


def test_plots_write_png(tmp_path):
    z, geo = _periodic_layers(100, 2.0)
    times = np.array([0.0, 1.0, 2.0, 4.0, 8.0])
    xs = np.array([step_profile(z, geo, math.sqrt(2 * 3.0 * t)) for t in times])
    fit = fit_interdiffusion(times, z, xs, geo)
    widths = [width_10_90(z, x, geo) for x in xs[1:]]
    out = plot_width(times[1:], widths, tmp_path / "w.png", fit=fit, title="width")
    assert _is_png(out)

    conc = np.stack([xs, 1.0 - xs], axis=1)
    out = plot_profiles(z, conc, ["A", "B"], times, tmp_path / "sub" / "p.png", max_curves=3)
    assert _is_png(out)

    temps = np.array([900.0, 1000.0, 1100.0])
    d = 1e13 * np.exp(-1.0 / (K_B_EV_PER_K * temps))
    afit = arrhenius_fit(temps, d, D_stderr=0.05 * d)
    out = plot_arrhenius(temps, d, tmp_path / "a.png", fit=afit, D_stderr=0.05 * d)
    assert _is_png(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "sub", "w.png"]


def test_import_is_lazy():
    code = (
        "import sys, kmcflow.kmc.analysis, kmcflow.kmc.plots; "
        "bad = [m for m in ('scipy', 'matplotlib') if m in sys.modules]; "
        "assert not bad, bad"
    )
    root = str(Path(kmcflow.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
