"""The figures people read: numbers drawn on them, read back and checked against numpy.

sigma^2(t): the replica mean, its standard error band and the line 2 D t + b of the reported
D. Arrhenius: ln D against 1000/T with error bars s.e.(D) / D, none for a single replica.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from kmcflow.demo import _plot_widths as demo_plot_widths
from kmcflow.errors import ConfigError
from kmcflow.kmc import plots
from kmcflow.kmc.analysis import (
    WIDTH_10_90_PER_SIGMA,
    CoupleGeometry,
    fit_interdiffusion,
    step_profile,
)
from kmcflow.kmc.arrhenius import arrhenius_fit
from kmcflow.kmc.catalog import load_catalog
from kmcflow.kmc.constants import K_B_EV_PER_K
from kmcflow.kmc.parallel.comm import SerialComm
from kmcflow.kmc.parallel.replicas import run_replicas
from kmcflow.kmc.plots import (
    arrhenius_figure,
    plot_arrhenius,
    plot_sigma2,
    sigma2_curve,
    sigma2_figure,
)
from kmcflow.kmc.runner import settings_from_catalog
from kmcflow.kmc.study import analyze_directory, arrhenius_study, study_sigma2_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _by_gid(ax, gid):
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    return found[0] if found else None


def _band_points(band) -> np.ndarray:
    """Every vertex of a fill_between band, as (x, y) rows."""
    return np.concatenate([p.vertices for p in band.get_paths()])


def _has_point(points: np.ndarray, x: float, y: float) -> bool:
    return bool(np.any(np.isclose(points[:, 0], x, rtol=1e-12, atol=0)
                       & np.isclose(points[:, 1], y, rtol=1e-9, atol=1e-12)))


@pytest.fixture
def capture(monkeypatch):
    """The figures the library saves, by file name (still readable after they are closed)."""
    figures: dict[str, object] = {}
    save = plots._save

    def keep(fig, path):
        figures[Path(path).name] = fig
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    return figures


# ------------------------------------------------------------------------- sigma^2(t)


def test_sigma2_curve_is_the_numpy_mean_and_standard_error_of_the_replicas():
    rng = np.random.default_rng(7)
    t = np.linspace(0.0, 2e-7, 6)
    reps = [3.0 + 4e7 * t + rng.normal(0.0, 0.5, t.size) for _ in range(4)]
    reps[1][2] = np.nan  # a failed erfc fit: that sample has three values
    reps[0][0] = reps[2][0] = reps[3][0] = np.nan  # and this one only one
    curve = sigma2_curve([t] * 4, reps, "900 K", 1e7, 2.0)
    stack = np.stack(reps)
    count = np.sum(np.isfinite(stack), axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's ddof warning, one value
        want_se = np.nanstd(stack, axis=0, ddof=1) / np.sqrt(count)
    np.testing.assert_allclose(curve.mean_A2, np.nanmean(stack, axis=0), rtol=1e-13)
    np.testing.assert_allclose(curve.stderr_A2[1:], want_se[1:], rtol=1e-12)
    assert math.isnan(curve.stderr_A2[0])  # one value: no standard error
    assert curve.n_replicas == 4 and np.array_equal(curve.time_s, t)


def test_sigma2_curve_matches_samples_by_index_and_averages_their_times():
    t1, t2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.0, 1.2, 2.2])
    curve = sigma2_curve([t1, t2], [np.array([1.0, 2, 3, 4]), np.array([1.0, 4, 5])], "x")
    np.testing.assert_allclose(curve.time_s, [0.0, 1.1, 2.1])
    np.testing.assert_allclose(curve.mean_A2, [1.0, 3.0, 4.0])
    with pytest.raises(ConfigError):
        sigma2_curve([t1], [np.ones(3)], "x")


def test_sigma2_figure_draws_the_mean_its_band_and_the_line_of_the_mean_fit():
    """Three replicas of exact erfc profiles; the reported D is the mean of their fits."""
    z = np.arange(64) * 2.0
    geo = CoupleGeometry.half_and_half(z, 128.0, periodic=True)
    t = np.array([0.0, 1.0, 2.0, 4.0, 6.0, 8.0])
    fits = [fit_interdiffusion(t, z, np.array([step_profile(z, geo, math.sqrt(2 * d * s + 1.0))
                                               for s in t]), geo)
            for d in (2.0, 2.5, 3.5)]
    d_reported = float(np.mean([f.D_A2_per_s for f in fits]))
    b_reported = float(np.mean([f.intercept_A2 for f in fits]))
    curve = sigma2_curve([f.times_s for f in fits], [f.sigma2_A2 for f in fits], "T",
                         d_reported, b_reported)
    fig = sigma2_figure([curve])
    ax = fig.axes[0]
    s2 = np.stack([f.sigma2_A2 for f in fits])
    mean, se = s2.mean(axis=0), s2.std(axis=0, ddof=1) / math.sqrt(3)
    line = _by_gid(ax, "mean")
    np.testing.assert_allclose(line.get_xdata(), t)
    np.testing.assert_allclose(line.get_ydata(), mean, rtol=1e-13)
    band = _by_gid(ax, "stderr")
    pts = _band_points(band)
    for k in range(t.size):
        assert _has_point(pts, t[k], mean[k] + se[k]) and _has_point(pts, t[k], mean[k] - se[k])
    fit = _by_gid(ax, "fit")
    x, y = np.asarray(fit.get_xdata()), np.asarray(fit.get_ydata())
    slope = (y[-1] - y[0]) / (x[-1] - x[0])
    assert slope == pytest.approx(2.0 * d_reported, rel=1e-12)
    assert y[0] - slope * x[0] == pytest.approx(b_reported, rel=1e-9)
    assert d_reported == pytest.approx(np.mean([2.0, 2.5, 3.5]), rel=1e-3)
    assert ax.get_xscale() == ax.get_yscale() == "linear"
    assert "Å²" in ax.get_ylabel() and "(s)" in ax.get_xlabel()


def test_a_single_replica_gets_no_band_and_no_warning(tmp_path):
    t = np.linspace(0.0, 1.0, 5)
    curve = sigma2_curve([t], [2.0 + 6.0 * t], "one run", 3.0, 2.0)
    assert np.all(np.isnan(curve.stderr_A2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = sigma2_figure([curve])
        out = plot_sigma2([curve], tmp_path / "s.png")
    ax = fig.axes[0]
    assert _by_gid(ax, "stderr") is None
    np.testing.assert_array_equal(_by_gid(ax, "mean").get_ydata(), 2.0 + 6.0 * t)
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_one_panel_per_temperature():
    t = np.linspace(0.0, 1.0, 4)
    curves = [sigma2_curve([t, t], [t, 2 * t], f"{k} K", 1.0, 0.0) for k in (1, 2, 3, 4)]
    fig = sigma2_figure(curves)
    shown = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in shown] == ["1 K", "2 K", "3 K", "4 K"]


# ------------------------------------------------------------------------- Arrhenius


def test_arrhenius_error_bars_are_the_replica_standard_errors_over_d():
    rng = np.random.default_rng(3)
    temps = np.array([700.0, 800.0, 900.0, 1000.0])
    truth = 1e12 * np.exp(-0.6 / (K_B_EV_PER_K * temps))
    n_rep = [4, 1, 3, 2]  # the 800 K point has a single replica: no bar
    reps = [d * (1 + 0.05 * rng.standard_normal(n)) for d, n in zip(truth, n_rep, strict=True)]
    d = np.array([np.mean(r) for r in reps])
    se = [float(np.std(r, ddof=1) / math.sqrt(r.size)) if r.size > 1 else None for r in reps]
    fit = arrhenius_fit(temps, d)
    fig = arrhenius_figure(temps, d, fit, D_stderr=se)
    ax = fig.axes[0]
    has = np.array([s is not None for s in se])
    bars = _by_gid(ax, "bars")
    np.testing.assert_allclose(bars.get_xdata(), 1000.0 / temps[has], rtol=1e-14)
    np.testing.assert_allclose(bars.get_ydata(), np.log(d[has]), rtol=1e-14)
    segments = _by_gid(ax, "errorbars").get_segments()
    half = np.array([(s[1][1] - s[0][1]) / 2 for s in segments])
    centre = np.array([(s[1][1] + s[0][1]) / 2 for s in segments])
    want = np.array([s for s in se if s is not None]) / d[has]
    np.testing.assert_allclose(half, want, rtol=1e-9)
    np.testing.assert_allclose(centre, np.log(d[has]), rtol=1e-12)
    assert len(segments) == 3  # no zero-length bar for the single replica
    points = _by_gid(ax, "points")
    np.testing.assert_allclose(points.get_xdata(), [1000.0 / 800.0])
    line = _by_gid(ax, "fit")
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    slope = (y[-1] - y[0]) / (x[-1] - x[0])
    assert slope == pytest.approx(-fit.Ea_eV / (1000.0 * K_B_EV_PER_K), rel=1e-10)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(f"{fit.Ea_eV:.3f} ± {fit.Ea_stderr_eV:.3f} eV" in t for t in legend)
    assert "K" in ax.get_xlabel() and "Å$^2$/s" in ax.get_ylabel()


def test_arrhenius_without_any_standard_error_draws_plain_points(tmp_path):
    temps = np.array([600.0, 700.0])
    d = np.array([1.0, 3.0])
    fig = arrhenius_figure(temps, d, arrhenius_fit(temps, d), D_stderr=[None, None])
    ax = fig.axes[0]
    assert _by_gid(ax, "bars") is None and not ax.containers
    np.testing.assert_allclose(_by_gid(ax, "points").get_ydata(), np.log(d))
    assert any("no s.e." in t.get_text() for t in ax.get_legend().get_texts())
    assert plot_arrhenius(temps, d, tmp_path / "a.png").read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ConfigError):
        arrhenius_figure(temps, d, D_stderr=[0.1])


# ------------------------------------------------------------------ the library's figures


def _replica_sigma2(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(folder / "observables.npz") as obs:
        return obs["time"], (obs["width_erfc"] / WIDTH_10_90_PER_SIGMA) ** 2


def test_arrhenius_study_figures_carry_the_reported_numbers(examples, tmp_path, capture):
    cat = load_catalog(examples / "isotope_couple.json")
    base = settings_from_catalog(cat, cells=(5, 5, 12), steps=60_000, samples=5)
    temps = [600.0, 800.0]
    out = tmp_path / "arr"
    result = arrhenius_study(cat, temps, base, out, replicas=3)
    assert (out / "sigma2_vs_time.png").read_bytes()[:8] == PNG_MAGIC
    assert result["sigma2_plot"] == "sigma2_vs_time.png"
    saved = json.loads((out / "arrhenius.json").read_text())
    fig = capture["sigma2_vs_time.png"]
    for ax, row in zip(fig.axes, saved["temperatures"], strict=True):
        temp = row["temperature_K"]
        runs = [out / f"T{temp:g}K" / f"replica{r}" for r in range(3)]
        s2 = np.stack([_replica_sigma2(run)[1] for run in runs])
        per_d = [json.loads((run / "summary.json").read_text())["interdiffusion"]
                 for run in runs]
        assert ax.get_title() == f"{temp:g} K"
        np.testing.assert_allclose(_by_gid(ax, "mean").get_ydata()[1:], s2.mean(axis=0)[1:],
                                   rtol=1e-12)
        x, y = (np.asarray(a) for a in (_by_gid(ax, "fit").get_xdata(),
                                        _by_gid(ax, "fit").get_ydata()))
        slope = (y[-1] - y[0]) / (x[-1] - x[0])
        assert slope == pytest.approx(2.0 * row["D_A2_per_s"], rel=1e-12)
        assert y[0] == pytest.approx(np.mean([f["intercept_A2"] for f in per_d]), rel=1e-9)
        assert row["D_A2_per_s"] == np.mean([f["D_A2_per_s"] for f in per_d])
        se = s2.std(axis=0, ddof=1) / math.sqrt(3)
        pts = _band_points(_by_gid(ax, "stderr"))
        t = _by_gid(ax, "mean").get_xdata()
        for k in range(1, t.size):
            assert _has_point(pts, t[k], s2.mean(axis=0)[k] + se[k])
    # the folder's curves are what the demo draws: the same numbers
    again = study_sigma2_curves(out, temps, 3)
    assert [c.D_A2_per_s for c in again] == [r["D_A2_per_s"] for r in saved["temperatures"]]
    demo_plot_widths(out, temps, 3, tmp_path / "width_vs_time.png")
    for ax, row in zip(capture["width_vs_time.png"].axes, saved["temperatures"], strict=True):
        x, y = _by_gid(ax, "fit").get_xdata(), _by_gid(ax, "fit").get_ydata()
        assert (y[-1] - y[0]) / (x[-1] - x[0]) == pytest.approx(2 * row["D_A2_per_s"],
                                                                rel=1e-12)
        assert _by_gid(ax, "stderr") is not None
    # Arrhenius: bars of s.e.(D) / D with s.e. from the replicas' D (numpy, independently)
    ax = capture["arrhenius.png"].axes[0]
    half = [(s[1][1] - s[0][1]) / 2 for s in _by_gid(ax, "errorbars").get_segments()]
    want = []
    for row in saved["temperatures"]:
        d = np.array([json.loads((out / f"T{row['temperature_K']:g}K" / f"replica{r}"
                                  / "summary.json").read_text())["interdiffusion"]["D_A2_per_s"]
                      for r in range(3)])
        want.append(np.std(d, ddof=1) / math.sqrt(3) / d.mean())
    np.testing.assert_allclose(half, want, rtol=1e-9)


def test_a_single_replica_study_has_no_error_bars_and_no_band(examples, tmp_path, capture):
    cat = load_catalog(examples / "isotope_couple.json")
    base = settings_from_catalog(cat, cells=(5, 5, 12), steps=60_000, samples=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = arrhenius_study(cat, [600.0, 800.0], base, tmp_path / "one", replicas=1)
    ax = capture["arrhenius.png"].axes[0]
    assert _by_gid(ax, "bars") is None and _by_gid(ax, "errorbars") is None
    assert len(_by_gid(ax, "points").get_xdata()) == 2
    fig = capture["sigma2_vs_time.png"]
    for ax, row in zip(fig.axes, result["temperatures"], strict=True):
        assert _by_gid(ax, "stderr") is None
        x, y = _by_gid(ax, "fit").get_xdata(), _by_gid(ax, "fit").get_ydata()
        assert (y[-1] - y[0]) / (x[-1] - x[0]) == pytest.approx(2 * row["D_A2_per_s"],
                                                                rel=1e-12)


def test_replica_run_draws_sigma2_with_the_ensemble_d(examples, tmp_path, capture):
    cat = load_catalog(examples / "isotope_couple.json")
    settings = settings_from_catalog(cat, cells=(5, 5, 12), steps=60_000, samples=4)
    out = tmp_path / "ens"
    summary = run_replicas(cat, settings, out, 3, SerialComm())
    rec = summary["interdiffusion"]
    per = [json.loads((out / "replicas" / f"r{r:04d}" / "summary.json").read_text())
           ["interdiffusion"] for r in range(3)]
    assert rec["intercept_A2"] == pytest.approx(np.mean([p["intercept_A2"] for p in per]),
                                                rel=1e-12)
    assert (out / "sigma2_vs_time.png").read_bytes()[:8] == PNG_MAGIC
    ax = capture["sigma2_vs_time.png"].axes[0]
    x, y = _by_gid(ax, "fit").get_xdata(), _by_gid(ax, "fit").get_ydata()
    assert (y[-1] - y[0]) / (x[-1] - x[0]) == pytest.approx(2 * rec["D_A2_per_s"], rel=1e-12)
    s2 = np.stack([_replica_sigma2(out / "replicas" / f"r{r:04d}")[1] for r in range(3)])
    np.testing.assert_allclose(_by_gid(ax, "mean").get_ydata()[1:], s2.mean(axis=0)[1:],
                               rtol=1e-12)
    assert _by_gid(ax, "stderr") is not None


def test_analyze_draws_sigma2_with_the_line_of_its_fit(examples, tmp_path, capture):
    cat = load_catalog(examples / "isotope_couple.json")
    settings = settings_from_catalog(cat, cells=(5, 5, 12), steps=60_000, samples=4)
    run_replicas(cat, settings, tmp_path / "ens", 1, SerialComm(), plots=False)
    run = tmp_path / "ens" / "replicas" / "r0000"
    result = analyze_directory(run)
    assert "sigma2_vs_time.png" in result["plots"]
    d = result["interdiffusion_erfc"]["D_A2_per_s"]
    ax = capture["sigma2_vs_time.png"].axes[0]
    x, y = _by_gid(ax, "fit").get_xdata(), _by_gid(ax, "fit").get_ydata()
    assert (y[-1] - y[0]) / (x[-1] - x[0]) == pytest.approx(2 * d, rel=1e-12)
    assert _by_gid(ax, "stderr") is None
