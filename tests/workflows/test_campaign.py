"""A Cu|Ni campaign with EMT: interrupted and resumed, assembled, and run by the kMC engine."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from kmcflow.cli import main
from kmcflow.errors import CatalogError, ConfigError
from kmcflow.kmc.catalog import load_catalog
from kmcflow.workflows.assembly import assemble_catalog
from kmcflow.workflows.campaign import load_campaign, read_results, run_campaign

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "campaigns" / "cu_ni_emt.yaml"


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """Run hops 0 and 1 only (an interrupted campaign), then the whole one via the CLI."""
    out = tmp_path_factory.mktemp("campaign") / "cu_ni"
    spec = load_campaign(EXAMPLE)
    first = run_campaign(spec, out, only=[0, 1])
    code = main(["campaign", "run", str(EXAMPLE), "--out", str(out), "--json"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    return out, first, report


def test_rerun_computes_only_the_missing_hops(campaign):
    out, first, report = campaign
    assert first.report["computed"] == 2 and first.report["reused"] == 0
    assert [r.job_index for r in first.results] == [0, 1] and not first.failed
    assert {e.key for e in first.catalog.events} >= {first.results[0].event_key}
    assert report["n_planned"] == 6
    assert report["computed"] == 4 and report["reused"] == 2
    assert report["failed"] == [] and report["levels_of_theory"] == 1
    filters = list(warnings.filters)
    again = run_campaign(EXAMPLE, out)  # a campaign file goes where a spec goes
    assert warnings.filters == filters  # the caller's warning filters are left alone
    assert again.report["computed"] == 0 and again.report["reused"] == 6
    for result in read_results(out / "results"):
        # every force call of the hop: both relaxations (once left out of campaign results),
        # the band and the prefactor's displacements
        relax = result["force_calls"] - result["neb_force_calls"] - \
            result["prefactor"]["force_calls"]
        assert relax >= 2 and result["neb_force_calls"] > 0
        assert result["force_calls_before_resume"] == 0
        assert result["force_calls_all_runs"] == result["force_calls"]


def test_two_workers_compute_the_same_hops(campaign, tmp_path):
    """Hops in two worker processes: the same barriers, prefactors and calls as one by one."""
    out, _, _ = campaign
    assert main(["campaign", "run", str(EXAMPLE), "--out", str(tmp_path / "w2"), "--workers",
                 "2", "--json"]) == 0
    serial = read_results(out / "results")
    parallel = read_results(tmp_path / "w2" / "results")
    assert [r["event_key"] for r in parallel] == [r["event_key"] for r in serial]
    for a, b in zip(serial, parallel, strict=True):
        assert b["job_index"] == a["job_index"]
        assert b["forward_barrier_eV"] == pytest.approx(a["forward_barrier_eV"], abs=1e-9)
        assert b["prefactor_Hz"] == pytest.approx(a["prefactor_Hz"], rel=1e-9)
        assert b["force_calls"] == a["force_calls"]
    numbers = [[(e.key, e.barrier_eV, e.prefactor_Hz) for e in load_catalog(f).events]
               for f in (tmp_path / "w2" / "catalog.json", out / "catalog.json")]
    assert [n[:2] for n in numbers[0]] == [n[:2] for n in numbers[1]]
    # a prefactor is a product of eigenvalues: another process may round its last digits
    assert [n[2] for n in numbers[0]] == pytest.approx([n[2] for n in numbers[1]], rel=1e-9)
    assert main(["campaign", "run", str(EXAMPLE), "--out", str(tmp_path / "w0"), "--workers",
                 "0"]) == 2


def test_catalog_covers_every_key_and_the_engine_runs_it(campaign, tmp_path, capsys):
    out, _, _ = campaign
    catalog = load_catalog(out / "catalog.json")
    keys = {e.key for e in catalog.events}
    assert keys == {f"{s}/{a}->{b}" for s in ("Cu", "Ni") for a in ("Cu", "Ni")
                    for b in ("Cu", "Ni")}
    assert catalog.lattice.preset == "fcc" and catalog.lattice.a_A == pytest.approx(3.52387)
    by_key = {e.key: e for e in catalog.events}
    # a hop and its reverse share the saddle: E_fwd - E_rev = E_f - E_i
    fwd, rev = by_key["Cu/Cu->Ni"], by_key["Cu/Ni->Cu"]
    assert fwd.barrier_eV - rev.barrier_eV == pytest.approx(
        fwd.provenance.model_extra["reaction_energy_eV"], abs=1e-5)
    for e in catalog.events:
        assert 0.3 < e.barrier_eV < 1.5 and 1e12 <= e.prefactor_Hz <= 1e14
        assert e.provenance.calculator == "emt" and e.provenance.converged
        assert e.provenance.job_id
        assert e.provenance.model_extra["calculator_config"]["name"] == "emt"
    code = main(["kmc", "run", str(out / "catalog.json"), "--steps", "20000", "--cells", "6",
                 "6", "12", "--samples", "4", "--out", str(tmp_path / "run"), "--no-plots"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["events_executed"] == 20000


def test_exported_results_read_back(campaign):
    out, _, _ = campaign
    results = read_results(out / "results")
    assert len(results) == 6
    assert all(r["forward_barrier_eV"] > 0 and r["prefactor_route"] == "vineyard"
               for r in results)
    assert {r["hop"]["origin"] for r in results} == {"bulk", "solute", "interface"}


def test_assembly_refuses_mixed_theory_and_reports_failures(campaign):
    out, _, _ = campaign
    results = read_results(out / "results")
    sections = {k: v for k, v in json.loads((out / "catalog.json").read_text()).items()
                if k in ("lattice", "species", "hosts", "interface")}
    mixed = [dict(r) for r in results]
    mixed[0]["calculator"] = {"code": "chgnet", "config": {"name": "chgnet"}}
    with pytest.raises(CatalogError, match="levels of theory") as info:
        assemble_catalog(mixed, sections, name="x")
    assert "Ni/Ni->Ni" in str(info.value)
    catalog, _ = assemble_catalog(mixed, sections, name="x", allow_mixed_theory=True)
    assert len(catalog["events"]) == 8
    no_reverse = [dict(r) for r in results]
    cross = next(k for k, r in enumerate(no_reverse) if r["event_key"] == "Cu/Cu->Ni")
    no_reverse[cross]["reverse_prefactor_Hz"] = None
    catalog, report = assemble_catalog(no_reverse, sections, name="x")
    assert {"event_key": "Cu/Ni->Cu", "failure_reason": "reverse_prefactor_failed"} in [
        {k: f[k] for k in ("event_key", "failure_reason")} for f in report["failed"]]
    assert len(catalog["events"]) == 7
    failed = [dict(r) for r in results]
    failed[2] = {**failed[2], "failure_reason": "not_converged", "failure_message": "x"}
    catalog, report = assemble_catalog(failed, sections, name="x")
    assert report["failed"] == [{"event_key": "Cu/Cu->Cu", "failure_reason": "not_converged",
                                 "message": "x"}]
    assert "Cu/Cu->Cu" not in {f"{e['species']}/{e['initial_region']}->{e['final_region']}"
                               for e in catalog["events"]}


def test_bad_campaign_files_name_the_field(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text(EXAMPLE.read_text().replace("species: [Cu, Ni]", "specie: [Cu, Ni]"))
    with pytest.raises(ConfigError) as info:
        load_campaign(bad)
    assert str(bad) in info.value.one_line()


def test_the_cause_of_a_failed_job_is_in_the_result_and_the_report(tmp_path):
    """A code that exits with an error inside the relaxation job: the exception type, message
    and traceback reach the hop's result and report.json (issue 12, defect 7)."""
    pseudo = tmp_path / "pseudo"
    pseudo.mkdir()
    for el in ("Cu", "Ni"):
        (pseudo / f"{el}.pbe.UPF").write_text("")
    spec = load_campaign(EXAMPLE).model_copy(update={"calculator": {
        "name": "espresso", "command": "false", "pseudo_dir": str(pseudo)}})
    out = tmp_path / "broken"
    with pytest.raises(CatalogError, match="no hop succeeded"):
        run_campaign(spec, out, only=[0])
    (failed,) = json.loads((out / "report.json").read_text())["failed"]
    assert failed["failure_reason"] == "job_error"
    cause = failed["exception"]
    assert cause["exception_type"] == "CalledProcessError"
    assert cause["job"] == "kmcflow relax initial"
    assert "'false'" in cause["message"] and "returned non-zero exit status 1" in cause["message"]
    assert cause["traceback"].startswith("Traceback") and "CalledProcessError" in cause["traceback"]
    assert failed["message"].startswith("job 'kmcflow relax initial' raised CalledProcessError")
    (result,) = read_results(out / "results")
    assert result["exception"] == cause


def test_bad_run_conditions_are_refused_when_the_campaign_is_read(tmp_path: Path, capsys):
    """They were only found after every hop was computed (a pydantic traceback, exit 1)."""
    import yaml

    data = yaml.safe_load(EXAMPLE.read_text())
    data["conditions"] = {"temperature_K": -5}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    code = main(["campaign", "run", str(bad), "--out", str(tmp_path / "out"), "--only", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "conditions.temperature_K" in err[0] and "bad.yaml" in err[0]
    assert not (tmp_path / "out").exists()
    data["conditions"] = {"temperature_K": 900, "cells": [6, 6, 12]}
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(data))
    assert load_campaign(good).conditions_record() == {"temperature_K": 900.0,
                                                       "cells": [6, 6, 12]}
