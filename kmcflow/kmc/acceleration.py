"""Temporal acceleration: scale down fast, quasi-equilibrated event pairs, with error control.

When a catalog's barriers span more than about 1 eV, a plain kMC run spends nearly all its
events on fast hops that go back and forth (a vacancy rattling inside one host) while the
slow events that move the interface almost never happen. Following Dybeck, Plaisance and
Neurock (J. Chem. Theory Comput. 13, 1525 (2017)), the run is cut into windows of
``window_events`` events; after each window every reversible pair (an event and its reverse;
an in-host hop is its own reverse; an irreversible event has none) is judged on its
executions in the window. It is *quasi-equilibrated* when it ran at least ``min_executions``
times and its forward and reverse counts agree within ``balance_tolerance``
(|n_f - n_r| / (n_f + n_r)); an irreversible event never is.

A quasi-equilibrated pair has both directions' rates multiplied by the same factor alpha
(its equilibrium is unchanged), shrunk each window by ``min_executions / n`` (at most by
``max_step``) so that it would run about ``min_executions`` times per window. Error control:
alpha never takes the pair's per-event rate below ``separation`` times the largest
per-event rate among the pairs that are *not* quasi-equilibrated (the slow processes the
fast pair must keep outpacing, possible in the current state or not); a pair that cannot be
kept that far above them is not scaled. A pair that leaves quasi-equilibrium is reset to 1.
If every pair is quasi-equilibrated there is no slow process to separate from and nothing is
scaled: a catalog whose rates are all alike (the isotope couple) runs exactly as without
acceleration, event for event.

Transport error control (``equilibration``). The per-event separation alone is not enough on a
diffusion couple: the scaled in-host hops are also what carries vacancies to the interface and
evens out the vacancy excess the slow cross-interface hops leave behind (the Kirkendall
imbalance). A vacancy needs about ``hops_to_cross = L_host^2 / <dz^2>`` hops to cross a host
of thickness ``L_host`` (``<dz^2>``: the mean square z component of one hop). Measured on the
Li|Na couple (``benchmarks/bench_acceleration.py``, 20 replicas per method): with the
separation rule alone the in-host hops allowed about 3 host crossings per slow event and D came
out 4.4 % and 4.7 % below plain BKL at 1000 and 700 K (2.2 and 2.3 combined standard errors).
So the scaler also keeps
``C = fast executions (at the scaled rates) / slow executions / hops_to_cross`` at or above
``equilibration`` (default 30; there D agrees with plain BKL within two combined standard
errors at 1000, 800 and 700 K, and at 400 K it moves by 0.5 % from 30 to 100): after the
per-pair proposal, every scaled factor is raised by the common multiplier that restores ``C``,
capped at 1. The executions are counted with an
exponential memory of ``memory_windows`` windows; the slow count carries a prior of 3 (the
95 % Poisson bound of a zero count), so that a run which has not yet seen a slow event is
scaled only as far as that evidence allows.

The clock advances with the scaled total rate, so time runs faster: the acceleration factor
is the simulated time per event with scaling over that of the unscaled rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AccelerationSettings:
    """Window and error-control parameters (see the module docstring)."""

    window_events: int = 10_000
    min_executions: int = 50
    balance_tolerance: float = 0.2
    separation: float = 100.0
    max_step: float = 1e-3
    equilibration: float = 30.0
    memory_windows: int = 200

    def check(self) -> None:
        """Refuse settings that cannot work."""
        from kmcflow.errors import ConfigError

        if self.window_events < 1 or self.min_executions < 1 or self.memory_windows < 1:
            raise ConfigError("window_events, min_executions and memory_windows must be "
                              "positive", field="acceleration")
        if not (0 <= self.equilibration < math.inf):
            raise ConfigError(f"--accelerate-equilibration must be a finite number >= 0 (host "
                              f"crossings per slow event), got {self.equilibration}",
                              field="--accelerate-equilibration", hint="e.g. 30")
        if not (0 < self.balance_tolerance < 1 and 1 < self.separation < math.inf
                and 0 < self.max_step <= 1):
            raise ConfigError("need 0 < balance_tolerance < 1, separation > 1, "
                              "0 < max_step <= 1", field="acceleration")


STUCK_RATIO = 1e4
"""Fast hops per slowest hop beyond which ``catalog check`` suggests ``--accelerate``."""


def rate_span(rates_Hz: dict[str, float]) -> dict:
    """The span of a catalog's rates at one temperature, and whether plain kMC would be stuck.

    ``rates_Hz`` maps event ids to rates. Plain BKL executes about ``fastest / slowest``
    fast hops for every slowest one; beyond :data:`STUCK_RATIO` the record suggests
    ``--accelerate``.
    """
    positive = {k: v for k, v in rates_Hz.items() if v > 0}
    if not positive:
        return {"fastest_Hz": None, "slowest_Hz": None, "ratio": None,
                "suggest_accelerate": False}
    fast = max(positive, key=positive.get)
    slow = min(positive, key=positive.get)
    ratio = positive[fast] / positive[slow]
    record = {"fastest": fast, "fastest_Hz": positive[fast], "slowest": slow,
              "slowest_Hz": positive[slow], "ratio": ratio,
              "suggest_accelerate": ratio > STUCK_RATIO}
    if record["suggest_accelerate"]:
        record["advice"] = (f"plain kMC executes about {ratio:.1e} '{fast}' hops for every "
                            f"'{slow}' hop: run with --accelerate (and check it with "
                            "`kmcflow kmc converge-acceleration`)")
    return record


class PairScaler:
    """Scale factors of reversible event pairs, updated window by window.

    Parameters
    ----------
    reverse
        For every event, the index of its reverse (itself for a self-reverse event, -1 for an
        irreversible one).
    rate_Hz
        Every event's unscaled per-event rate (Hz), for the separation floor.
    settings
        Window and error control.
    hops_to_cross
        Hops a vacancy needs to cross the thinnest host (``L_host^2 / <dz^2>``), for the
        transport error control; 1 where there is no host to cross (the two-state model).

    """

    STATE_KEYS = ("factor", "fast_equivalent", "counters", "slow_count")

    def __init__(self, reverse: np.ndarray, rate_Hz: np.ndarray,
                 settings: AccelerationSettings | None = None, hops_to_cross: float = 1.0):
        self.settings = settings or AccelerationSettings()
        self.settings.check()
        self.reverse = np.asarray(reverse, dtype=np.int64)
        self.rate_Hz = np.asarray(rate_Hz, dtype=np.float64)
        n = self.reverse.size
        paired = self.reverse >= 0
        if self.rate_Hz.shape != (n,) or np.any(
                self.reverse[self.reverse[paired]] != np.flatnonzero(paired)):
            raise ValueError("reverse must pair events both ways and match rate_Hz")
        self.factor = np.ones(n)
        self.windows = 0
        self.scaled_windows = 0
        self.hops_to_cross = float(hops_to_cross)
        # executions with an exponential memory: unscaled-equivalent counts per event (the
        # count over the factor it ran with) and the slow (not quasi-equilibrated) count
        self.fast_equivalent = np.zeros(n)
        self.slow_count = 0.0
        # executions in scaled windows: the transport check reported in the summary
        self.scaled_fast = 0.0
        self.scaled_slow = 0.0

    def state(self) -> dict[str, np.ndarray]:
        """Everything :meth:`update` depends on, as arrays (for a checkpoint)."""
        return {"factor": self.factor.copy(), "fast_equivalent": self.fast_equivalent.copy(),
                "counters": np.array([self.windows, self.scaled_windows], np.int64),
                "slow_count": np.array([self.slow_count, self.scaled_fast, self.scaled_slow])}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore :meth:`state`; raise ValueError on arrays that cannot be a saved state."""
        factor = np.asarray(state["factor"], np.float64)
        equiv = np.asarray(state["fast_equivalent"], np.float64)
        counters = np.asarray(state["counters"])
        slow = np.asarray(state["slow_count"], np.float64)
        n = self.factor.size
        if (factor.shape != (n,) or equiv.shape != (n,) or counters.shape != (2,)
                or slow.shape != (3,)):
            raise ValueError("the acceleration state has the wrong shape")
        if not (np.all((factor > 0) & (factor <= 1)) and np.all(np.isfinite(equiv))
                and np.all(equiv >= 0) and np.all(np.isfinite(slow)) and np.all(slow >= 0)
                and np.all(counters >= 0) and counters[1] <= counters[0]):
            raise ValueError("the acceleration state holds impossible values")
        self.factor, self.fast_equivalent = factor.copy(), equiv.copy()
        self.windows, self.scaled_windows = int(counters[0]), int(counters[1])
        self.slow_count, self.scaled_fast, self.scaled_slow = (float(x) for x in slow)

    @property
    def host_crossings_per_slow_event(self) -> float | None:
        """Host crossings the scaled hops allowed per slow event, over the scaled windows."""
        if self.scaled_slow <= 0:
            return None
        return self.scaled_fast / self.scaled_slow / self.hops_to_cross

    def update(self, counts: np.ndarray) -> np.ndarray:
        """New factors from each event's executions in the last window; return them."""
        s = self.settings
        counts = np.asarray(counts, dtype=np.float64)
        idx = np.arange(counts.size)
        paired = self.reverse >= 0
        rev = np.where(paired, self.reverse, idx)
        self_rev = rev == idx
        total = np.where(self_rev, counts, counts + counts[rev])
        balance = np.abs(counts - counts[rev]) / np.maximum(total, 1.0)
        balance[self_rev] = 0.0  # an in-host hop is its own reverse: balanced by construction
        quasi = paired & (total >= s.min_executions) & (balance <= s.balance_tolerance)
        self.windows += 1
        if np.any(self.factor < 1.0):
            self.scaled_fast += float(counts[quasi].sum())
            self.scaled_slow += float(counts[~quasi].sum())
        keep = 1.0 - 1.0 / s.memory_windows
        self.fast_equivalent = keep * self.fast_equivalent + counts / self.factor
        self.slow_count = keep * self.slow_count + float(counts[~quasi].sum())
        new = np.ones(counts.size)
        # the slow processes: hop types that can happen (rate > 0) and are not
        # quasi-equilibrated; with none left there is nothing to separate from
        slow = self.rate_Hz[~quasi & (self.rate_Hz > 0)]
        if quasi.any() and slow.size:
            pair_rate = np.maximum(self.rate_Hz, self.rate_Hz[rev])
            with np.errstate(divide="ignore"):  # a pair that cannot happen: never scaled
                floor = np.where(pair_rate > 0, s.separation * float(slow.max())
                                 / np.where(pair_rate > 0, pair_rate, 1.0), np.inf)
            step = np.clip(s.min_executions / np.maximum(total, 1.0), s.max_step, 1.0)
            proposed = np.maximum(self.factor * step, floor)
            new = np.where(quasi & (floor < 1.0), np.minimum(proposed, 1.0), 1.0)
            new = np.minimum(new, new[rev])  # both directions alike
            new = self._transport_floor(new, quasi)
        if np.any(new < 1.0):
            self.scaled_windows += 1
        self.factor = new
        return self.factor

    def _transport_floor(self, new: np.ndarray, quasi: np.ndarray) -> np.ndarray:
        """Raise the scaled factors by one multiplier so that C >= equilibration.

        The fast executions expected at multiplier m, ``sum over quasi events of
        min(new m, 1) E`` (E: the remembered unscaled-equivalent executions), grow piecewise
        linearly in m; the smallest m that reaches the target is found exactly by walking the
        breakpoints 1 / new in ascending order.
        """
        s = self.settings
        scaled = new < 1.0
        if s.equilibration <= 0 or not scaled.any():
            return new
        target = s.equilibration * self.hops_to_cross * (self.slow_count + 3.0)
        weight = np.where(quasi, self.fast_equivalent, 0.0)
        fixed = float(np.sum(weight[quasi & ~scaled]))  # unscaled quasi events: factor 1
        f, w = new[scaled], weight[scaled]
        if fixed + float(np.sum(f * w)) >= target:
            return new
        order = np.argsort(1.0 / f)  # the factors that reach 1 first come first
        f, w = f[order], w[order]
        # d(fast)/dm of the factors still below 1 at each breakpoint: suffix sums, summed
        # directly (subtracting from the total cancels catastrophically over many decades)
        rising = np.cumsum((f * w)[::-1])[::-1]
        capped = fixed + np.concatenate(([0.0], np.cumsum(w)[:-1]))  # factors already at 1
        reach = capped + rising / f  # fast executions when factor k just reaches 1
        k = int(np.searchsorted(reach >= target, True))
        if k == f.size:
            return np.where(scaled, 1.0, new)  # even unscaled the target is out of reach
        m = (target - capped[k]) / rising[k]
        return np.where(scaled, np.minimum(new * m, 1.0), new)


def two_state_escape(k_ab_Hz: float, k_ba_Hz: float, k_escape_Hz: float, n_trajectories: int,
                     seed: int = 0, settings: AccelerationSettings | None = None,
                     accelerate: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """First-passage times of the two-state model A <-> B -> escape, started in A.

    The validation model of the acceleration: fast shuttling A <-> B (``k_ab``, ``k_ba``)
    and a slow, irreversible escape from B. Each trajectory is a rejection-free kMC run with
    its own :class:`PairScaler` (events: 0 = A->B, 1 = B->A, 2 = escape). Returns the escape
    times (s) and the events executed per trajectory. The exact distribution is
    phase-type, with mean (k_ab + k_ba + k_e) / (k_ab k_e).
    """
    rng = np.random.default_rng(seed)
    rate = np.array([k_ab_Hz, k_ba_Hz, k_escape_Hz])
    reverse = np.array([1, 0, -1])
    window = (settings or AccelerationSettings()).window_events
    times = np.empty(n_trajectories)
    events = np.empty(n_trajectories, dtype=np.int64)
    for n in range(n_trajectories):
        scaler = PairScaler(reverse, rate, settings)
        factor = np.ones(3)
        counts = np.zeros(3)
        t, state, done = 0.0, 0, 0
        while True:
            if state == 0:
                r = rate[0] * factor[0]
                t += rng.exponential(1.0 / r)
                event = 0
            else:
                r_back, r_esc = rate[1] * factor[1], rate[2]
                t += rng.exponential(1.0 / (r_back + r_esc))
                event = 1 if rng.random() * (r_back + r_esc) < r_back else 2
            done += 1
            counts[event] += 1
            if event == 2:
                break
            state = 1 - state
            if accelerate and counts.sum() >= window:
                factor = scaler.update(counts)
                counts[:] = 0
        times[n], events[n] = t, done
    return times, events
