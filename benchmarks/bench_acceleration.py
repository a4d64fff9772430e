"""Plain against accelerated kMC on the Li|Na couple: is D right, and how much faster.

The verification ladder of ``kmcflow kmc run --accelerate`` on the Li|Na couple
(``examples/catalogs/li_na_couple.json``): at each temperature, R replicas of plain BKL and R
replicas of the accelerated run (at each ``--equilibrations`` value) cover the same simulated
time; each replica's D is the erfc fit of its own profile, and the table prints the mean D with
its standard error per method, the difference from plain in per cent and in combined standard
errors, and simulated seconds per CPU second. The simulated time at temperature T is the
catalog's 4e-8 s at 1000 K scaled by the slowest hop's Arrhenius factor (0.80 eV), so every
temperature reaches about the same width. The baseline (plain BKL) is measured in the same run.

With ``--speed-only T ...`` it measures simulated seconds per CPU second alone (plain against
accelerated, no D), where plain BKL cannot reach a width at all (500 and 300 K).

Usage:
  python benchmarks/bench_acceleration.py --temperatures 1000 800 --replicas 20 --jobs 2
  python benchmarks/bench_acceleration.py --speed-only 1000 800 500 300
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from kmcflow.kmc.catalog import load_catalog
from kmcflow.kmc.constants import K_B_EV_PER_K

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "examples" / "catalogs" / "li_na_couple.json"
SLOW_BARRIER_EV = 0.80


def time_at(temperature_K: float, base_s: float = 4e-8) -> float:
    """Simulated time that reaches about the width the catalog's 1000 K run reaches."""
    return base_s * math.exp(SLOW_BARRIER_EV / K_B_EV_PER_K * (1 / temperature_K - 1 / 1000.0))


def one_replica(args: tuple) -> dict:
    """Run one replica (plain when separation is None); return D, CPU and simulated time."""
    from kmcflow.kmc.acceleration import AccelerationSettings
    from kmcflow.kmc.runner import run_to_directory, settings_from_catalog

    temperature, equilibration, replica, cells, sim_time, seed, separation = args
    catalog = load_catalog(CATALOG)
    settings = settings_from_catalog(catalog, temperature_K=temperature, time_s=sim_time,
                                     cells=cells, seed=seed, samples=21, replica=replica)
    acc = None if equilibration is None else AccelerationSettings(
        separation=separation, equilibration=equilibration)
    with tempfile.TemporaryDirectory() as tmp:
        summary = run_to_directory(catalog, settings, Path(tmp) / "run", str(CATALOG),
                                   acceleration=acc, checkpoint_interval_s=1e9)
    return {"D": summary["interdiffusion"].get("D_A2_per_s"), "cpu_s": summary["cpu_time_s"],
            "time_s": summary["simulated_time_s"], "events": summary["events_executed"],
            "width_A": summary["final_width_10_90_A"],
            "factor": summary.get("acceleration", {}).get("factor", 1.0),
            "crossings": summary.get("acceleration", {}).get("host_crossings_per_slow_event")}


def ladder_rung(temperature: float, equilibrations: list[float | None], replicas: int,
                cells: tuple[int, int, int], jobs: int, seed: int,
                separation: float) -> list[dict]:
    """Plain and accelerated ensembles at one temperature, same simulated time."""
    sim_time = time_at(temperature)
    tasks = [(temperature, eq, r, cells, sim_time, seed, separation) for eq in equilibrations
             for r in range(replicas)]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one_replica, tasks))
    rows = []
    for k, eq in enumerate(equilibrations):
        part = results[k * replicas:(k + 1) * replicas]
        d = np.array([p["D"] for p in part if p["D"] is not None], float)
        cpu = sum(p["cpu_s"] for p in part)
        rows.append({"temperature_K": temperature, "method": "plain" if eq is None
                     else f"accelerated, C >= {eq:g}", "equilibration": eq,
                     "separation": None if eq is None else separation,
                     "replicas": int(d.size), "D_A2_per_s": float(d.mean()),
                     "D_stderr_A2_per_s": float(d.std(ddof=1) / math.sqrt(d.size)),
                     "simulated_s_per_cpu_s": sum(p["time_s"] for p in part) / cpu,
                     "cpu_s": cpu, "events": int(sum(p["events"] for p in part)),
                     "width_A": float(np.mean([p["width_A"] for p in part])),
                     "factor": float(np.mean([p["factor"] for p in part])),
                     "simulated_time_s": sim_time,
                     "per_replica_D_A2_per_s": [p["D"] for p in part],
                     "host_crossings_per_slow_event": [p["crossings"] for p in part]})
    plain = rows[0]
    for row in rows:
        diff = row["D_A2_per_s"] - plain["D_A2_per_s"]
        se = math.hypot(row["D_stderr_A2_per_s"], plain["D_stderr_A2_per_s"])
        row["difference_percent"] = 100 * diff / plain["D_A2_per_s"]
        row["difference_sigma"] = diff / se if se > 0 else 0.0
        row["two_combined_se_percent"] = 200 * se / plain["D_A2_per_s"]
        # replica r of every method starts from the same vacancy placement and random
        # stream: the paired differences are the other view of the noise
        pairs = [(a, b) for a, b in zip(row["per_replica_D_A2_per_s"],
                                        plain["per_replica_D_A2_per_s"], strict=True)
                 if a is not None and b is not None]
        d = np.array([a - b for a, b in pairs])
        se_paired = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else 0.0
        row["difference_sigma_paired"] = d.mean() / se_paired if se_paired > 0 else 0.0
    return rows


def speed(temperature: float, cells: tuple[int, int, int], events: int,
          separation: float) -> dict:  # default transport floor
    """Simulated seconds per CPU second, plain against accelerated, after a warm-up."""
    from kmcflow.kmc.acceleration import AccelerationSettings
    from kmcflow.kmc.engine import Simulation

    catalog = load_catalog(CATALOG)
    out = {"temperature_K": temperature}
    for name, acc in (("plain", None), ("accelerated", AccelerationSettings(
            separation=separation))):
        sim = Simulation(catalog, cells, temperature, 0.01, seed=1)
        if acc is not None:
            sim.enable_acceleration(acc)
        sim.run(events // 5)  # warm-up: compilation, and the scale factors settle
        t0, c0 = sim.time_s, time.process_time()
        sim.run(events)
        out[f"{name}_simulated_s_per_cpu_s"] = (sim.time_s - t0) / (time.process_time() - c0)
    out["speed_up"] = out["accelerated_simulated_s_per_cpu_s"] / out["plain_simulated_s_per_cpu_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--temperatures", type=float, nargs="+", default=[1000.0, 800.0])
    p.add_argument("--equilibrations", type=float, nargs="+", default=[30.0],
                   help="transport floors C to compare (0: the per-event separation alone)")
    p.add_argument("--separation", type=float, default=100.0)
    p.add_argument("--replicas", type=int, default=20)
    p.add_argument("--cells", type=int, nargs=3, default=[12, 12, 24])
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--speed-only", type=float, nargs="*", default=None, metavar="T")
    p.add_argument("--speed-events", type=int, default=2_000_000)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    cells = tuple(a.cells)
    if a.speed_only is not None:
        rows = [speed(t, cells, a.speed_events, a.separation) for t in a.speed_only]
        if a.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'T (K)':>7} {'plain s/CPU s':>15} {'accel s/CPU s':>15} {'speed-up':>10}")
        for r in rows:
            print(f"{r['temperature_K']:7g} {r['plain_simulated_s_per_cpu_s']:15.3e} "
                  f"{r['accelerated_simulated_s_per_cpu_s']:15.3e} {r['speed_up']:10.3g}")
        return 0
    rows = []
    for temp in a.temperatures:
        rows += ladder_rung(temp, [None, *a.equilibrations], a.replicas, cells, a.jobs, a.seed,
                            a.separation)
        print(f"T = {temp:g} K done", file=sys.stderr, flush=True)
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'T (K)':>7} {'method':<30} {'R':>3} {'D (A^2/s)':>11} {'s.e.':>9} {'diff %':>7} "
          f"{'sigma':>6} {'paired':>6} {'2 s.e. %':>8} {'factor':>8} {'sim s/CPU s':>12}")
    for r in rows:
        print(f"{r['temperature_K']:7g} {r['method']:<30} {r['replicas']:3d} "
              f"{r['D_A2_per_s']:11.4e} {r['D_stderr_A2_per_s']:9.2e} "
              f"{r['difference_percent']:7.2f} {r['difference_sigma']:6.2f} "
              f"{r['difference_sigma_paired']:6.2f} "
              f"{r['two_combined_se_percent']:8.2f} {r['factor']:8.3g} "
              f"{r['simulated_s_per_cpu_s']:12.3e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
