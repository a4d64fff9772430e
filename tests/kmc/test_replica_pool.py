"""Replicas run in processes of their own equal the same replicas run one after another."""

from __future__ import annotations

import json

from kmcflow.kmc.replica_pool import run_replicas
from kmcflow.kmc.runner import RunSettings


def test_parallel_replicas_equal_serial_ones_and_finished_ones_are_read_back(
        tmp_path, cu_ni_region_catalog):
    catalog = tmp_path / "cu_ni.json"
    catalog.write_text(json.dumps(cu_ni_region_catalog(3.55, {"Cu": 0.75, "Ni": 1.09})))

    def runs(name):
        return [(tmp_path / name / f"r{r}", RunSettings(
            cells=(4, 4, 8), temperature_K=1200.0, vacancy_fraction=0.02, steps=20000, time_s=None,
            samples=3, seed=5, replica=r)) for r in range(3)]

    serial = run_replicas(catalog, runs("serial"), workers=1)
    seen = []
    parallel = run_replicas(catalog, runs("parallel"), workers=2,
                            progress=lambda n, total: seen.append((n, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    for a, b in zip(serial, parallel, strict=True):
        assert a["events_executed"] == b["events_executed"] == 20000
        assert a["simulated_time_s"] == b["simulated_time_s"]
    assert serial[0]["simulated_time_s"] != serial[1]["simulated_time_s"]  # own streams
    # finished runs are read back, not run again
    stamp = (tmp_path / "parallel" / "r1" / "summary.json").stat().st_mtime_ns
    again = run_replicas(catalog, runs("parallel"), workers=2)
    assert again[1]["simulated_time_s"] == parallel[1]["simulated_time_s"]
    assert (tmp_path / "parallel" / "r1" / "summary.json").stat().st_mtime_ns == stamp
