"""Campaigns on a real single-node SLURM: submit, fail, walltime kill, resume, collect, DFT+U.

The cluster is started by ``bash scripts/start_slurm.sh`` (``.ci/run`` does it and sets
``KMCFLOW_REQUIRE_SLURM=1``, which turns a missing SLURM into a failure instead of a skip).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("jobflow", reason="needs the workflows extra")
pytest.importorskip("qtoolkit", reason="needs the hpc extra")

from kmcflow.cli import main
from kmcflow.hpc.campaign_dir import hop_states
from kmcflow.hpc.scheduler import SlurmScheduler, slurm_available
from kmcflow.hpc.submissions import load_submissions
from kmcflow.hpc.task import run_task
from kmcflow.kmc.catalog import load_catalog

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "hpc_configs" / "local_slurm.yaml"
REQUIRED = os.environ.get("KMCFLOW_REQUIRE_SLURM") == "1"

# Cu|Ni with thick interface slabs: the four bulk and solute hops (31 atoms) take seconds,
# the two cross-interface hops (about 290 atoms) take minutes with BFGS, longer than a 1-minute
# walltime. The band optimizer is pinned to BFGS: optimizer auto takes FIRE for a band this
# large on EMT and finishes it inside the walltime, and this test needs a hop the walltime kills
CAMPAIGN = {
    "name": "cu_ni_slurm", "calculator": "emt",
    "interface": {"film": "Cu", "substrate": "Ni", "film_miller": [1, 0, 0],
                  "substrate_miller": [1, 0, 0], "vacuum_A": 0,
                  "film_thickness": "14layers", "substrate_thickness": "14layers"},
    "species": ["Cu", "Ni"], "min_image_distance_A": 7.0,
    "neb": {"n_images": 4, "fmax_eV_per_A": 0.05, "optimizer": "BFGS"},
    "relax": {"fmax_eV_per_A": 0.02},
    "conditions": {"temperature_K": 900.0, "cells": [8, 8, 16], "vacancy_fraction": 0.01,
                   "steps": 20000},
}


@pytest.fixture(scope="module")
def slurm():
    if not slurm_available():
        if REQUIRED:
            pytest.fail("KMCFLOW_REQUIRE_SLURM=1 but no SLURM answers: "
                        "bash scripts/start_slurm.sh")
        pytest.skip("no SLURM here (start one: bash scripts/start_slurm.sh)")
    return SlurmScheduler()


def _wait(out: Path, scheduler: SlurmScheduler, timeout_s: float) -> list[dict]:
    """Until no hop is queued or running and the latest collect job has ended."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        states = hop_states(out, scheduler=scheduler)
        collect_job = load_submissions(out)[-1]["collect_job"]
        busy = [s for s in states if s["state"] == "running"
                or (s["state"] == "pending" and s["reason"] == "queued")]
        if not busy and not scheduler.active([collect_job]):
            return states
        time.sleep(2)
    raise AssertionError(f"the campaign did not settle in {timeout_s} s: {states}")


def _status_json(out: Path, capsys) -> dict[int, dict]:
    capsys.readouterr()
    assert main(["campaign", "status", str(out), "--json"]) == 0
    return {s["index"]: s for s in json.loads(capsys.readouterr().out)}


def test_array_with_a_failure_and_a_walltime_kill_resumes_to_a_complete_catalog(
        slurm, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)  # the profile's venv path is relative to the repository
    campaign = tmp_path / "cu_ni.yaml"
    campaign.write_text(yaml.safe_dump(CAMPAIGN))
    out = tmp_path / "camp"
    assert main(["campaign", "prepare", str(campaign), "--profile", str(PROFILE),
                 "--out", str(out)]) == 0
    plan = json.loads((out / "plan.json").read_text())
    assert len(plan["hops"]) >= 4
    interface = [h["index"] for h in plan["hops"] if h["origin"] == "interface"]
    broken, slow = interface[0], interface[1]
    # a bad structure: the endpoint file of one interface hop is damaged
    final = out / plan["hops"][broken]["folder"] / "final.json"
    good_text = final.read_text()
    final.write_text('{"not": "a structure"}')

    assert main(["campaign", "submit", str(campaign), "--profile", str(PROFILE), "--out",
                 str(out), "--walltime", "00:01:00"]) == 0
    first = load_submissions(out)[0]
    assert sorted(map(int, first["tasks"])) == list(range(len(plan["hops"])))
    assert first["tasks"][str(slow)] == f"{first['jobs'][0]}_{slow}"
    _wait(out, slurm, 600)

    states = _status_json(out, capsys)
    failed = {i for i, s in states.items() if s["state"] != "done"}
    assert failed == {broken, slow}
    assert states[broken]["reason"] == "job_error" and "structure" in states[broken]["message"]
    assert states[slow]["reason"] == "walltime", states[slow]
    band = out / plan["hops"][slow]["folder"] / "neb_checkpoint"
    saved_calls = json.loads((band / "band_state.json").read_text())["force_calls"]
    assert saved_calls > 0 and list(band.glob("optimizer_*.npz"))  # saved by the trap
    # the collect job ran after the array and assembled what finished
    report = json.loads((out / "report.json").read_text())
    assert {f["event_key"] for f in report["failed"]} >= {
        plan["hops"][broken]["event_key"], plan["hops"][slow]["event_key"]}

    final.write_text(good_text)  # the user fixes the structure, then resumes
    capsys.readouterr()
    assert main(["campaign", "resume", str(out)]) == 0
    second = load_submissions(out)[-1]
    assert sorted(map(int, second["tasks"])) == sorted([broken, slow])
    assert second["walltime_s"] == 1800
    _wait(out, slurm, 900)

    states = _status_json(out, capsys)
    assert {s["state"] for s in states.values()} == {"done"}, states
    resumed = json.loads((out / plan["hops"][slow]["folder"] / "result.json").read_text())
    neb = resumed["neb_settings"]
    assert neb["resumed_from_stage"] in ("plain", "climb")
    assert neb["force_calls_before_resume"] >= saved_calls > 0
    # the hop's cost is reported both ways: this run, and every run of it
    assert resumed["force_calls_before_resume"] >= neb["force_calls_before_resume"]
    assert resumed["force_calls_all_runs"] == (resumed["force_calls"]
                                               + resumed["force_calls_before_resume"])
    # the same hop from scratch (a copy of the folder without its checkpoints and store)
    fresh_out = tmp_path / "fresh"
    shutil.copytree(out, fresh_out)
    hop_folder = fresh_out / plan["hops"][slow]["folder"]
    for name in ("neb_checkpoint", "relax_checkpoint", "store", "jobs", "result.json"):
        shutil.rmtree(hop_folder / name, ignore_errors=True)
        (hop_folder / name).unlink(missing_ok=True)
    fresh = run_task(fresh_out, slow)
    assert fresh["neb_settings"]["resumed_from_stage"] is None
    print(f"NEB force calls: resumed {resumed['neb_force_calls']} after "
          f"{neb['force_calls_before_resume']} before the kill; fresh {fresh['neb_force_calls']}")
    assert resumed["neb_force_calls"] < fresh["neb_force_calls"]
    assert resumed["forward_barrier_eV"] == pytest.approx(fresh["forward_barrier_eV"], abs=0.01)
    assert 0.0 < resumed["forward_barrier_eV"] < 2.0
    catalog = load_catalog(out / "catalog.json")  # written by the second collect job
    keys = {e.key for e in catalog.events}
    assert {h["event_key"] for h in plan["hops"]} <= keys
    assert json.loads((out / "report.json").read_text())["failed"] == []
    assert main(["campaign", "resume", str(out)]) == 0
    assert "nothing to resume" in capsys.readouterr().out


def test_a_failed_hop_killed_on_its_rerun_never_reads_done_and_is_resubmitted(
        slurm, tmp_path, capsys, monkeypatch):
    """Issue 12, defect 1, on a real SLURM: a band fails (a step limit of 2 leaves it
    not_converged, with a result.json), the hop is resubmitted, and the rerun is killed by
    ``scancel --signal=KILL`` while it computes (out of memory, a node lost). Before, status
    said done from the moment the rerun removed failure.json, resume skipped the hop and
    collect assembled the stale failed result."""
    monkeypatch.chdir(ROOT)
    campaign = tmp_path / "rerun.yaml"
    campaign.write_text(yaml.safe_dump({**CAMPAIGN, "name": "cu_ni_rerun",
                                        "neb": {"n_images": 4, "fmax_eV_per_A": 0.05,
                                                "steps": 2}}))
    out = tmp_path / "camp"
    assert main(["campaign", "prepare", str(campaign), "--profile", str(PROFILE),
                 "--out", str(out)]) == 0
    plan = json.loads((out / "plan.json").read_text())
    hop = next(h["index"] for h in plan["hops"] if h["origin"] == "interface")  # ~290 atoms
    folder = out / plan["hops"][hop]["folder"]
    assert main(["campaign", "submit", str(campaign), "--profile", str(PROFILE), "--out",
                 str(out), "--only", str(hop), "--walltime", "00:20:00"]) == 0
    _wait(out, slurm, 900)
    state = _status_json(out, capsys)[hop]
    assert (state["state"], state["reason"]) == ("failed", "not_converged"), state
    first_start = json.loads((folder / "started.json").read_text())["started"]

    assert main(["campaign", "submit", str(campaign), "--profile", str(PROFILE), "--out",
                 str(out), "--only", str(hop), "--walltime", "00:20:00"]) == 0
    rerun = load_submissions(out)[-1]
    job = rerun["tasks"][str(hop)]
    seen = []
    deadline = time.time() + 600
    while time.time() < deadline:  # until the rerun computes: its own attempt, records aside
        seen.append(_status_json(out, capsys)[hop]["state"])
        started = json.loads((folder / "started.json").read_text())
        if started.get("started") != first_start and not (folder / "failure.json").exists():
            break
        assert slurm.active([rerun["jobs"][0]]), "the rerun ended before it could be killed"
        time.sleep(0.3)
    seen.append(_status_json(out, capsys)[hop]["state"])
    # SIGKILL to the batch step itself (plain --signal=KILL is a cancel: SIGTERM first)
    subprocess.run(["scancel", "--batch", "--signal=KILL", job], check=True)
    while slurm.active([rerun["jobs"][0]]) and time.time() < deadline:
        seen.append(_status_json(out, capsys)[hop]["state"])
        time.sleep(0.3)
    slurm_gone = time.time() + 60
    while slurm.active([rerun["collect_job"]]) and time.time() < slurm_gone:
        time.sleep(0.5)  # the collect job that waited for the killed task
    state = _status_json(out, capsys)[hop]
    seen.append(state["state"])
    assert "done" not in seen, seen
    assert "running" in seen
    assert (state["state"], state["reason"]) == ("failed", "no_result"), state
    report = {f["event_key"]: f for f in json.loads((out / "report.json").read_text())["failed"]}
    assert report[plan["hops"][hop]["event_key"]]["failure_reason"] == "missing"

    capsys.readouterr()
    assert main(["campaign", "resume", str(out)]) == 0
    resumed = load_submissions(out)[-1]
    assert str(hop) in resumed["tasks"]
    subprocess.run(["scancel", *resumed["jobs"], resumed["collect_job"]], check=False)


@pytest.mark.dft
@pytest.mark.skipif(shutil.which("pw.x") is None and not REQUIRED,
                    reason="Quantum ESPRESSO (pw.x) is not installed")
def test_dft_plus_u_nio_runs_through_slurm_with_u_in_its_provenance(slurm, tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.chdir(ROOT)
    campaign = tmp_path / "nio.yaml"
    campaign.write_text(yaml.safe_dump({
        "name": "nio_dftu",
        "calculator": {"name": "espresso", "hubbard_U_eV": {"Ni": 6.0}, "spin_polarized": True,
                       "cutoff_eV": 408.0, "kpoints": [3, 3, 3], "smearing_eV": 0.1,
                       "energy_convergence_eV": 1e-4,
                       "pseudopotentials": {"Ni": "Ni.pbe-nd-rrkjus.UPF",
                                            "O": "O.pbe-rrkjus.UPF"}},
        "references": [{"name": "NiO_afm", "structure": "NiO",
                        "magnetic_order": "rocksalt_afm_111", "moment_muB": 2.0}]}))
    out = tmp_path / "nio"
    assert main(["campaign", "submit", str(campaign), "--profile", str(PROFILE), "--out",
                 str(out)]) == 0
    states = _wait(out, slurm, 420)
    assert [s["state"] for s in states] == ["done"], states
    folder = out / "references" / "NiO_afm"
    # the result is in the task's jobflow store, U in its provenance
    docs = json.loads((folder / "store" / "docs.json").read_text())
    (doc,) = [d for d in docs if d["metadata"].get("reference") == "NiO_afm"]
    output = doc["output"]
    assert output["hubbard_U_eV"] == {"Ni": 6.0}
    system = output["calculator"]["parameters"]["input_data"]["system"]
    assert system["lda_plus_u"] is True
    assert system["Hubbard_U(1)"] == system["Hubbard_U(2)"] == 6.0  # Ni up, Ni down
    # pw.x's own output: U on both Ni species, converged antiferromagnet (total 0)
    (pwo,) = folder.glob("jobs/*/static/espresso.pwo")
    text = pwo.read_text()
    assert "U( 1)     =  6.00000000" in text and "U( 2)     =  6.00000000" in text
    assert output["converged"] and abs(output["total_magnetization_muB"]) < 0.05
    assert 2.5 < output["absolute_magnetization_muB"] < 4.5  # two Ni of ~1.7 muB each
    assert output["max_force_eV_per_A"] < 0.05  # forces vanish by symmetry
    # the gap over both spin channels: 3.11 eV with these settings (pw.x 6.7 here); a 4x4x4
    # grid reads about 2.6 (the band edges sit at the quarter points)
    assert 2.7 < output["band_gap_eV"] < 3.3, output.get("band_gap_why_none")
    refs = json.loads((out / "references.json").read_text())
    assert refs[0]["hubbard_U_eV"] == {"Ni": 6.0} and "code_output" not in refs[0]
