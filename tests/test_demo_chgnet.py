"""kmcflow demo --quick --calculator chgnet: MgO|NiO from CHGNet barriers to an Arrhenius law.

About 15 minutes on two cores (the wall time is printed and kept in demo.json); the measured
times are on the getting-started page, not asserted here.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import pytest

pytest.importorskip("jobflow", reason="needs the workflows extra")
pytest.importorskip("chgnet", reason="needs the ml extra")

from kmcflow.cli import main
from kmcflow.kmc.catalog import load_catalog

pytestmark = [pytest.mark.ml, pytest.mark.slow]
CLI = "import sys; from kmcflow.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_chgnet") / "demo"
    start = time.monotonic()
    # a process of its own, as on the command line: the CLI limits BLAS to one thread
    # before numpy is imported, which this process has done already
    run = subprocess.run([sys.executable, "-c", CLI, "demo", "--quick", "--calculator",
                          "chgnet", "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    wall = time.monotonic() - start
    summary = json.loads((out / "demo.json").read_text())
    print(f"\nkmcflow demo --quick --calculator chgnet: {wall:.0f} s wall, by stage "
          f"{summary['wall_time_s']}")
    return out, summary


def test_every_hop_succeeded_with_the_oxide_barriers(demo):
    out, summary = demo
    hops = summary["hops"]
    assert [h["event_key"] for h in hops] == [
        "Ni/NiO->NiO", "Mg/NiO->NiO", "Mg/MgO->MgO", "Ni/MgO->MgO", "Mg/MgO->NiO",
        "Ni/NiO->MgO"]
    failed = [(h["event_key"], h["failure_reason"], h["failure_message"])
              for h in hops if not h["succeeded"]]
    assert not failed
    assert all(h["converged"] for h in hops)
    assert {h["n_atoms"] for h in hops if h["origin"] == "interface"} == {143}
    bulk = summary["bulk_barriers_eV"]
    # CHGNet's cation vacancy hops: NiO 0.92 eV, MgO 1.97 eV with the demo's settings
    assert 0.7 < bulk["Ni/NiO->NiO"] < 1.2
    assert 1.7 < bulk["Mg/MgO->MgO"] < 2.2
    # a cation vacancy costs less in NiO: moving one into MgO (Mg into NiO) costs energy
    transfer = summary["transfer_energies_eV"]
    assert 0.3 < transfer["Mg/MgO->NiO"] < 0.9
    assert -0.8 < transfer["Ni/NiO->MgO"] < -0.2
    catalog = load_catalog(out / "campaign" / "catalog.json")
    assert len(catalog.events) == len(summary["events"]) == 8
    report = (out / "report.md").read_text()
    assert "6 of 6 hops succeeded" in report and "Mg/MgO->NiO" in report


def test_the_interfaces_widen_and_the_arrhenius_fit_holds(demo):
    out, summary = demo
    assert summary["run_sizing"]["width_measure"] == "erfc"
    for w in summary["widths"]:
        width = [x for x in w["width_erfc_A"] if x is not None]
        assert width[-1] > 2.0 * width[1], w["run"]  # the erfc width grows
    a = summary["arrhenius"]
    d = [row["D_A2_per_s"] for row in a["temperatures"]]
    assert all(x > 0 for x in d) and d == sorted(d)  # faster when hotter
    assert math.isfinite(a["Ea_eV"]) and a["r_squared"] > 0.95
    err = a["Ea_stderr_eV"]
    assert err is not None and 0 < err < 0.3
    # E_a of the closed couple's slow mode: above the fast NiO-side hops, at most the
    # slowest hop plus the largest transfer energy (the bound the run sizing uses)
    lo, _ = summary["executed_barrier_range_eV"]
    assert lo < a["Ea_eV"] < summary["run_sizing"]["sizing_slope_eV"] + 3 * err
    assert summary["wall_time_s"]["total"] > 0
    report = (out / "report.md").read_text()
    assert "E_a = **" in report and "Wall time of this run" in report
    for figure in ("width_vs_time.png", "kmc/arrhenius.png"):
        assert (out / figure).is_file()


def test_a_second_run_reuses_every_stage(demo):
    out, summary = demo
    assert main(["demo", "--quick", "--calculator", "chgnet", "--out", str(out)]) == 0
    again = json.loads((out / "demo.json").read_text())
    assert again["arrhenius"]["Ea_eV"] == summary["arrhenius"]["Ea_eV"]
    assert again["bulk_barriers_eV"] == summary["bulk_barriers_eV"]
