"""kmcflow demo --quick: Cu|Ni from bulk crystals to an Arrhenius law, checked by numbers."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("jobflow", reason="needs the workflows extra")

from kmcflow.cli import main
from kmcflow.kmc.catalog import load_catalog

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "demo.json").read_text())


def test_bulk_barriers_are_emt_values_and_reproducible(demo):
    from kmcflow.workflows.calculators import load_calculator_config
    from kmcflow.workflows.hop import RelaxSettings, compute_hop
    from kmcflow.workflows.neb import NebSettings
    from kmcflow.workflows.reference_hops import bulk_vacancy_hop

    out, summary = demo
    bulk = summary["bulk_barriers_eV"]
    assert set(bulk) == {"Cu/Cu->Cu", "Ni/Ni->Ni"}
    assert all(0.0 < b < 1.5 for b in bulk.values())
    assert bulk["Ni/Ni->Ni"] > bulk["Cu/Cu->Cu"]  # Ni's stiffer lattice, as in experiment
    # the Cu hop again, outside the campaign, from the same endpoints and settings
    initial, final = bulk_vacancy_hop("Cu", min_image_distance_A=7.0)
    comp = compute_hop(initial, final, load_calculator_config("emt"),
                       neb=NebSettings(n_images=4, fmax_eV_per_A=0.05),
                       relax=RelaxSettings(fmax_eV_per_A=0.02), workdir=out / "check")
    assert comp.forward_barrier_eV == pytest.approx(bulk["Cu/Cu->Cu"], abs=0.01)
    catalog = load_catalog(out / "campaign" / "catalog.json")
    assert len(catalog.events) == len(summary["events"]) == 8


def test_interfaces_widen_and_the_arrhenius_fit_is_tight(demo):
    out, summary = demo
    for w in summary["widths"]:
        width = [x for x in w["width_10_90_A"] if x is not None]
        assert width[-1] > 2.0 * width[0], w["run"]  # w(t) grows
        t = np.asarray(w["time_s"])
        assert np.all(np.diff(t) > 0)
    a = summary["arrhenius"]
    assert a["r_squared"] > 0.98
    d = [row["D_A2_per_s"] for row in a["temperatures"]]
    assert all(x > 0 for x in d) and d == sorted(d)  # faster when hotter
    lo, hi = summary["executed_barrier_range_eV"]
    # E_a between the lowest and the highest executed barrier, within three standard errors
    # of the fit (the slow mode of a closed couple puts it near the top of the range)
    err = a["Ea_stderr_eV"]
    assert 0 < err < 0.1
    assert lo - 3 * err < a["Ea_eV"] < hi + 3 * err, (a["Ea_eV"], err, lo, hi)
    report = (out / "report.md").read_text()
    for figure in ("width_vs_time.png", "kmc/arrhenius.png"):
        assert f"]({figure})" in report and (out / figure).is_file()
    assert "E_a = **" in report and "Cu/Cu->Cu" in report
    # the report describes the box the engine ran (the bi-crystal is periodic: it once said
    # "closed") and where E_a's error comes from (two replicas: the fit residuals)
    boundary = load_catalog(out / "campaign" / "catalog.json").interface.boundary_z
    assert ("is periodic along z" if boundary == "periodic" else "is closed along z") in report
    assert "one standard error from the scatter of ln D about the fitted line" in report


def test_a_second_run_reuses_every_stage(demo):
    out, summary = demo
    start = time.monotonic()
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    assert time.monotonic() - start < 60
    again = json.loads((out / "demo.json").read_text())
    assert again["arrhenius"]["Ea_eV"] == summary["arrhenius"]["Ea_eV"]
    assert math.isclose(again["bulk_barriers_eV"]["Cu/Cu->Cu"],
                        summary["bulk_barriers_eV"]["Cu/Cu->Cu"])


def test_bad_demo_options_get_one_line(tmp_path, capsys):
    assert main(["demo", "--calculator", "vasp", "--out", str(tmp_path / "d")]) == 2
    assert "calculator" in capsys.readouterr().err
    assert main(["demo", "--width-fraction", "1.5", "--out", str(tmp_path / "d")]) == 2
    assert main(["demo", "-T", "900", "--out", str(tmp_path / "d")]) == 2
    assert "two different temperatures" in capsys.readouterr().err
    # the learned environments hold lattice sites only: an oxide couple is refused up front
    assert main(["demo", "--calculator", "chgnet", "--environments", "--out",
                 str(tmp_path / "d")]) == 2
    assert "--environments needs a couple" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_species_lattice_constants_follow_the_bulk_crystals():
    from kmcflow.demo_environments import species_lattice_constants

    catalog = load_catalog(Path(__file__).parent / "data" / "cu_ni_emt_demo_catalog.json")
    constants = species_lattice_constants(catalog, ["Cu", "Ni"])
    # the bundled crystals: Cu a = 3.61496, Ni a = 3.52387 Angstrom (fcc, 4 atoms a cell)
    assert constants == pytest.approx({"Cu": 3.61496, "Ni": 3.52387}, abs=1e-5)
