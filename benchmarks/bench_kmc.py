"""Speed and memory of the serial kMC engine (prints a table; not a test).

Cases of the foundation issue: (a) the 2D square A|B couple with hop rates k_A = 1 and
k_B = 0.5 at 64 x 64 with 40 vacancies and at 256 x 256 with 1 % vacancies; (b) fcc 32^3
cells with 1 % vacancies; (c) a lattice of 10^6 sites (sc 100^3, 1 % vacancies). Events per
second are CPU seconds of the kernel after a warm-up (numba compilation excluded); bytes per
site count the per-site state arrays.

The baseline measured in the same run is a plain rejection-free loop in Python/numpy that
rebuilds the list of all possible hops at every step (what one writes first), on the smallest
case only, so the speed-up of the numba sum-tree engine is visible on this machine.

Issue 17 adds fcc 32^3 cells with 1 % vacancies under a Cu|Ni KRA catalog with pair bonds
(region events) and the same physics as an environment catalog of schema 2 (a table of one
environment per species plus the orbit model for the rest): every hop within two shells of a
moved pair is re-rated from its 18 environment sites (target 5e5 events per CPU second).

Usage: python benchmarks/bench_kmc.py [--events N] [--only TEXT ...] [--repeat R] [--json]

``--only environment`` runs the rows whose name contains one of the texts (case-insensitive),
``--repeat 3`` measures each row three times on the same simulation and keeps the best (the
machine is shared; the spread is printed).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from kmcflow.kmc.catalog import Catalog
from kmcflow.kmc.engine import Simulation

TARGETS = {"square 64x64, 40 vacancies": 2e6, "square 256x256, 1 %": 1e6,
           "sc 100^3 = 1e6 sites, 1 %": 4e5, "fcc 32^3, 1 %, environment model": 5e5}


def two_rate_catalog(lattice: str) -> Catalog:
    """Species A hops at 1 Hz and B at 0.5 Hz everywhere (barrier 0)."""
    events = []
    for sp, rate in (("A", 1.0), ("B", 0.5)):
        for ri in ("A_host", "B_host"):
            for rf in ("A_host", "B_host"):
                events.append({"id": f"{sp}_{ri}_{rf}", "species": sp, "initial_region": ri,
                               "final_region": rf, "barrier_eV": 0.0, "prefactor_Hz": rate,
                               "provenance": {"source": "benchmark"}})
    return Catalog.model_validate({
        "schema": "kmcflow.catalog", "schema_version": 1, "name": "bench", "units": {},
        "lattice": {"preset": lattice, "a_A": 1.0}, "species": ["A", "B"],
        "hosts": [{"name": "A_host", "initial_species": "A"},
                  {"name": "B_host", "initial_species": "B"}],
        "rate_model": "table", "events": events})


def cu_ni_catalog(environments: bool) -> Catalog:
    """Cu|Ni on fcc with KRA events and pair bonds; with ``environments`` the schema-2 form."""
    events = [{"id": f"{sp}_{ri}_{rf}", "species": sp, "initial_region": ri,
               "final_region": rf, "kra_eV": kra, "prefactor_Hz": 1e13,
               "provenance": {"source": "benchmark"}}
              for sp, kra in (("Cu", 0.70), ("Ni", 0.95)) for ri in ("Cu", "Ni")
              for rf in ("Cu", "Ni")]
    data = {"schema": "kmcflow.catalog", "schema_version": 2 if environments else 1,
            "name": "bench_cu_ni", "units": {}, "lattice": {"preset": "fcc", "a_A": 3.6},
            "species": ["Cu", "Ni"], "hosts": [{"name": "Cu", "initial_species": "Cu"},
                                               {"name": "Ni", "initial_species": "Ni"}],
            "rate_model": "kra", "events": events,
            "energy_model": {"pair_interactions_eV": {"Cu-Ni": -0.03, "Ni-Ni": 0.02}}}
    if environments:
        pure = {"Cu": "Cu|c0|" + ",".join(["Cu"] * 18), "Ni": "Ni|c0|" + ",".join(["Ni"] * 18)}
        orbit = [{"Ni": 0.01 * (o + 1), "V": -0.02} for o in range(4)]
        data["environments"] = {
            "table": [{"key": pure[sp], "barrier_eV": kra, "prefactor_Hz": 1e13,
                       "provenance": {"source": "benchmark"}}
                      for sp, kra in (("Cu", 0.70), ("Ni", 0.95))],
            "model": {"terms": [{"species": sp, "kra_eV": kra, "prefactor_Hz": 1e13,
                                 "orbit_eV": orbit} for sp, kra in (("Cu", 0.70),
                                                                     ("Ni", 0.95))]}}
    return Catalog.model_validate(data)


def measure(lattice: str, cells: tuple[int, int, int], vacancy_fraction: float,
            n_events: int, catalog: Catalog | None = None, temperature_K: float = 300.0,
            repeat: int = 1) -> dict:
    """Events per CPU second (best of ``repeat`` runs) and bytes per site of one case."""
    sim = Simulation(catalog or two_rate_catalog(lattice), cells, temperature_K,
                     vacancy_fraction, seed=1)
    sim.run(min(n_events // 10, 100_000))  # warm-up (compilation, caches)
    speeds = []
    for _ in range(max(1, repeat)):
        t0 = time.process_time()
        sim.run(n_events)
        speeds.append(n_events / (time.process_time() - t0))
    return {"sites": sim.block.n_sites, "vacancies": int(sim.vac_site.size),
            "events_per_s": max(speeds), "all_events_per_s": speeds,
            "bytes_per_site": sim.bytes_per_site()}


def baseline_python(cells: tuple[int, int, int], n_vac: int, n_events: int) -> float:
    """Events per CPU second of a naive Python BKL loop (all hops listed every step)."""
    nx, _, nz = cells
    rng = np.random.default_rng(1)
    occ = np.ones((nx, nz), np.int8)
    occ[:, nz // 2:] = 2
    flat = rng.choice(nx * nz, n_vac, replace=False)
    occ.reshape(-1)[flat] = 0
    rate_of = np.array([0.0, 1.0, 0.5])
    moves = ((1, 0), (-1, 0), (0, 1), (0, -1))
    t0 = time.process_time()
    for _ in range(n_events):
        vx, vz = np.nonzero(occ == 0)
        hops, rates = [], []
        for x, z in zip(vx, vz, strict=True):
            for dx, dz in moves:
                jx, jz = (x + dx) % nx, (z + dz) % nz
                s = occ[jx, jz]
                if s:
                    hops.append((x, z, jx, jz))
                    rates.append(rate_of[s])
        cum = np.cumsum(rates)
        k = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
        x, z, jx, jz = hops[k]
        occ[x, z], occ[jx, jz] = occ[jx, jz], 0
        _ = -np.log(1.0 - rng.random()) / cum[-1]
    return n_events / (time.process_time() - t0)


def main() -> None:
    """Run the cases and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000, help="events per case")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="run only the rows whose name contains TEXT (repeatable)")
    parser.add_argument("--repeat", type=int, default=1, help="measurements per row (best kept)")
    parser.add_argument("--json", action="store_true", help="print JSON records")
    args = parser.parse_args()

    def wanted(name: str) -> bool:
        return not args.only or any(t.lower() in name.lower() for t in args.only)

    cases = [
        ("square 64x64, 40 vacancies", "square", (64, 1, 64), 40 / 4096),
        ("square 256x256, 1 %", "square", (256, 1, 256), 0.01),
        ("fcc 32^3 cells, 1 %", "fcc", (32, 32, 32), 0.01),
        ("sc 100^3 = 1e6 sites, 1 %", "sc", (100, 100, 100), 0.01),
    ]
    rows = []
    for name, lattice, cells, cv in cases:
        if not wanted(name):
            continue
        row = {"case": name, **measure(lattice, cells, cv, args.events, repeat=args.repeat)}
        row["target_events_per_s"] = TARGETS.get(name)
        rows.append(row)
    for name, env in (("fcc 32^3, 1 %, KRA + pair bonds (regions)", False),
                      ("fcc 32^3, 1 %, environment model", True)):
        if not wanted(name):
            continue
        row = {"case": name, **measure("fcc", (32, 32, 32), 0.01, args.events // 5,
                                       cu_ni_catalog(env), 1000.0, args.repeat)}
        row["target_events_per_s"] = TARGETS.get(name)
        rows.append(row)
    base_name = "baseline: naive Python BKL, square 64x64, 40 vacancies"
    base = None
    if wanted(base_name):
        base = baseline_python((64, 1, 64), 40, 2_000)
        rows.append({"case": base_name, "sites": 4096, "vacancies": 40, "events_per_s": base,
                     "bytes_per_site": None, "target_events_per_s": None})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'case':55s} {'sites':>9s} {'events/s':>10s} {'target':>9s} {'B/site':>7s}")
    for r in rows:
        target = f"{r['target_events_per_s']:.0e}" if r["target_events_per_s"] else "-"
        bps = f"{r['bytes_per_site']:.1f}" if r["bytes_per_site"] else "-"
        spread = ""
        if len(r.get("all_events_per_s", [])) > 1:
            spread = "  (" + ", ".join(f"{x:.3g}" for x in r["all_events_per_s"]) + ")"
        print(f"{r['case']:55s} {r['sites']:9d} {r['events_per_s']:10.3e} {target:>9s} {bps:>7s}"
              f"{spread}")
    if base is not None and rows[0] is not rows[-1]:
        print(f"speed-up over the naive baseline ({rows[0]['case']}): "
              f"{rows[0]['events_per_s'] / base:.0f}x")


if __name__ == "__main__":
    main()
