"""Temporal acceleration: a two-state model with a known answer, and the isotope couple."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from kmcflow.kmc.acceleration import AccelerationSettings, PairScaler, two_state_escape

K_FAST, K_ESC = 1.0e6, 1.0  # Hz: A <-> B shuttling, escape from B


def _exact_survival(t: np.ndarray) -> np.ndarray:
    """P(no escape by t) from A, by the matrix exponential of the generator."""
    q = np.array([[-K_FAST, K_FAST], [K_FAST, -(K_FAST + K_ESC)]])
    return np.array([expm(q * x)[0].sum() for x in np.atleast_1d(t)])


def _exact_quantile(p: float) -> float:
    lo, hi = 0.0, 100.0
    for _ in range(80):  # bisection on the survival function
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if 1.0 - _exact_survival(mid)[0] < p else (lo, mid)
    return 0.5 * (lo + hi)


def test_two_state_escape_times_match_the_exact_distribution_with_100x_fewer_events():
    settings = AccelerationSettings(window_events=500, min_executions=50, separation=100.0)
    times, events = two_state_escape(K_FAST, K_FAST, K_ESC, 3000, seed=7, settings=settings)
    exact_mean = (2 * K_FAST + K_ESC) / (K_FAST * K_ESC)  # 2.000001 s
    assert times.mean() == pytest.approx(exact_mean, rel=0.05)
    for p in (0.25, 0.5, 0.75, 0.9):
        assert np.quantile(times, p) == pytest.approx(_exact_quantile(p), rel=0.05)
    # without acceleration a trajectory executes 1 + 2 (k_ba + k_e) / k_e ... events:
    # E[visits to B] = (k_ba + k_e) / k_e, each but the last followed by a return to A
    plain_events = 2 * (K_FAST + K_ESC) / K_ESC
    assert events.mean() * 100 <= plain_events


def test_unaccelerated_model_agrees_with_the_formula_for_events():
    # a slower shuttle so that the plain run is affordable: the event count formula and the
    # mean escape time are exact references for the plain kMC
    k_fast = 200.0
    times, events = two_state_escape(k_fast, k_fast, K_ESC, 2000, seed=3, accelerate=False)
    assert events.mean() == pytest.approx(2 * (k_fast + K_ESC) / K_ESC - 1, rel=0.05)
    assert times.mean() == pytest.approx((2 * k_fast + K_ESC) / (k_fast * K_ESC), rel=0.05)


def test_scaler_leaves_alike_rates_alone_and_resets_unbalanced_pairs():
    # isotope-like: every pair equally fast and balanced, nothing slow to separate from
    rate = np.full(4, 1e9)
    scaler = PairScaler(np.array([1, 0, 3, 2]), rate)
    assert np.all(scaler.update(np.array([300, 310, 295, 305])) == 1.0)
    # one fast balanced pair and a slow irreversible event: scaled, never below the floor
    scaler = PairScaler(np.array([1, 0, -1]), np.array([1e8, 1e8, 1.0]),
                        AccelerationSettings(separation=100.0))
    for _ in range(20):
        factor = scaler.update(np.array([5000, 5000, 0]))
    assert factor[0] == factor[1] == pytest.approx(100.0 * 1.0 / 1e8)
    assert factor[2] == 1.0
    # the pair drifts out of balance: back to 1 at once
    assert np.all(scaler.update(np.array([9000, 1000, 0])) == 1.0)
    with pytest.raises(ValueError, match="reverse"):
        PairScaler(np.array([1, 2, 0]), np.ones(3))


def _sim(name: str):
    from pathlib import Path

    from kmcflow.kmc.catalog import load_catalog
    from kmcflow.kmc.engine import Simulation

    root = Path(__file__).resolve().parents[2]
    catalog = load_catalog(root / "examples" / "catalogs" / name)
    return Simulation(catalog, (8, 8, 12), 600.0, 0.01, seed=3)


def test_acceleration_changes_nothing_on_the_isotope_couple():
    plain, accel = _sim("isotope_couple.json"), _sim("isotope_couple.json")
    accel.enable_acceleration(AccelerationSettings(window_events=1000))
    plain.run(200_000)
    accel.run(200_000)
    assert accel.scaler.windows == 200 and accel.scaler.scaled_windows == 0
    assert np.array_equal(plain.occ, accel.occ) and np.array_equal(plain.disp, accel.disp)
    assert plain.time_s == accel.time_s and accel.acceleration_factor == 1.0
    assert np.array_equal(plain.event_counts, accel.event_counts)


def test_acceleration_scales_the_fast_in_host_hops_of_the_li_na_couple():
    sim = _sim("li_na_couple.json")
    sim.enable_acceleration(AccelerationSettings(window_events=5000))
    sim.run(200_000)
    assert sim.scaler.scaled_windows > 0 and sim.acceleration_factor > 10
    factors = sim.scaler.factor.reshape(sim.rates.rate_Hz.shape)
    li, na = sim.catalog.species.index("Li") + 1, sim.catalog.species.index("Na") + 1
    regions = sim.rates.regions
    li_host, na_host = regions.index("Li_host"), regions.index("Na_host")
    assert factors[li, li_host, li_host] < 1.0  # the 0.25 eV Li hop in its own host
    # the slow cross-interface hops are never scaled
    assert factors[li, li_host, na_host] == factors[na, na_host, li_host] == 1.0
    # error control: the scaled Li hop stays `separation` times above the fastest slow rate
    rate = sim.rates.rate_Hz
    slow = max(rate[li, li_host, na_host], rate[na, na_host, li_host],
               rate[li, na_host, na_host], rate[na, li_host, li_host])
    assert rate[li, li_host, li_host] * factors[li, li_host, li_host] >= 99.9 * slow
