"""A prepared campaign folder run task by task (as array tasks would), watched and collected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("jobflow", reason="needs the workflows extra")

from kmcflow.cli import main
from kmcflow.kmc.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "campaigns" / "cu_ni_emt.yaml"
PROFILE = ROOT / "hpc_configs" / "local_slurm.yaml"


def test_prepare_run_tasks_status_and_collect(tmp_path, capsys):
    out = tmp_path / "camp"
    assert main(["campaign", "prepare", str(EXAMPLE), "--profile", str(PROFILE), "--out",
                 str(out)]) == 0
    plan = json.loads((out / "plan.json").read_text())
    n = len(plan["hops"])
    assert n == 6
    script = (out / "scripts" / "array.sh").read_text()
    assert f"#SBATCH --array=0-{n - 1}%2" in script and "kmcflow.hpc.task" in script
    capsys.readouterr()
    main(["campaign", "status", str(out), "--json"])
    assert {s["state"] for s in json.loads(capsys.readouterr().out)} == {"pending"}
    # two tasks run as the scheduler would run them, in their own processes
    for index in (0, 2):
        proc = subprocess.run([sys.executable, "-m", "kmcflow.hpc.task", str(out), str(index)],
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
    # a broken hop: its endpoint file is damaged, the task records why
    (out / "hops" / "hop_001" / "final.json").write_text("{broken")
    proc = subprocess.run([sys.executable, "-m", "kmcflow.hpc.task", str(out), "1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "failed" in proc.stdout
    main(["campaign", "status", str(out), "--json"])
    states = {s["index"]: s for s in json.loads(capsys.readouterr().out)}
    assert states[0]["state"] == states[2]["state"] == "done"
    assert states[1]["state"] == "failed" and states[1]["reason"] == "job_error"
    assert states[3]["state"] == "pending"
    assert main(["campaign", "collect", str(out)]) == 0
    catalog = load_catalog(out / "catalog.json")
    assert {e.key for e in catalog.events} == {plan["hops"][0]["event_key"],
                                               plan["hops"][2]["event_key"]}
    report = json.loads((out / "report.json").read_text())
    assert {f["event_key"] for f in report["failed"]} == {
        h["event_key"] for h in plan["hops"] if h["index"] not in (0, 2)}


def test_task_entry_point_refuses_bad_arguments(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "kmcflow.hpc.task", str(tmp_path), "x"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "usage" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "kmcflow.hpc.task", str(tmp_path), "0"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "plan.json" in proc.stderr and "Traceback" not in proc.stderr


def test_a_task_records_the_exception_of_a_job_that_raised(tmp_path):
    """The code exits with an error inside the relaxation job: failure.json says which job
    raised what, with the traceback (before, it said "see jobs/" and jobs/ was empty)."""
    import yaml

    pseudo = tmp_path / "pseudo"
    pseudo.mkdir()
    for el in ("Cu", "Ni"):
        (pseudo / f"{el}.pbe.UPF").write_text("")
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["calculator"] = {"name": "espresso", "command": "false", "pseudo_dir": str(pseudo)}
    campaign = tmp_path / "broken.yaml"
    campaign.write_text(yaml.safe_dump(spec))
    out = tmp_path / "camp"
    assert main(["campaign", "prepare", str(campaign), "--profile", str(PROFILE), "--out",
                 str(out)]) == 0
    proc = subprocess.run([sys.executable, "-m", "kmcflow.hpc.task", str(out), "0"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "failed: job_error" in proc.stdout, proc.stderr
    failure = json.loads((out / "hops" / "hop_000" / "failure.json").read_text())
    cause = failure["exception"]
    assert (cause["job"], cause["exception_type"]) == ("kmcflow relax initial",
                                                       "CalledProcessError")
    assert "CalledProcessError" in cause["traceback"] and "'false'" in failure["message"]
