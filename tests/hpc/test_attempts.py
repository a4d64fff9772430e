"""A hop is done only when its latest attempt wrote a successful result (issue 12, defect 1).

A band fails (its result carries ``not_converged``), the hop runs again and that rerun is
killed with ``SIGKILL`` (out of memory, node loss): nothing of the rerun is on disk but its
``started.json``. The stale failed result of the first attempt must not read as done, resume
must resubmit the hop, and collect must not assemble the stale result.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("jobflow", reason="needs the workflows extra")

from kmcflow.errors import KmcflowError
from kmcflow.hpc.campaign_dir import (
    FAILURE,
    PREVIOUS,
    RESULT,
    STARTED,
    collect,
    hop_states,
    latest_outcome,
    prepare_campaign,
)
from kmcflow.hpc.profiles import load_profile
from kmcflow.hpc.submit import resume, submit_hops
from kmcflow.workflows.campaign import load_campaign

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "campaigns" / "cu_ni_emt.yaml"
PROFILE = ROOT / "hpc_configs" / "local_slurm.yaml"


class ListingScheduler:
    """Hands out SLURM-style job ids and lists the tasks it is told are active."""

    name = "slurm"

    def __init__(self):
        self.n = 100
        self.listed: dict[str, str] = {}

    def submit(self, script: Path) -> str:
        self.n += 1
        return str(self.n)

    def active(self, job_ids):
        return dict(self.listed)


def _task(out: Path, index: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kmcflow.hpc.task", str(out), str(index)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_once_started(proc: subprocess.Popen, folder: Path) -> None:
    """Freeze the task once it has started its attempt and cleared the old failure record
    (it is computing now), then SIGKILL it."""
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            pid = json.loads((folder / STARTED).read_text()).get("pid")
        except (OSError, ValueError):
            pid = None
        if pid == proc.pid and not (folder / FAILURE).exists():
            os.kill(proc.pid, signal.SIGSTOP)  # frozen at once, whatever it was doing
            break
        if proc.poll() is not None:
            pytest.fail(f"the rerun ended before it could be killed: {proc.stderr.read()}")
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.fixture
def failing_campaign(tmp_path):
    """The Cu|Ni example with a band step limit of 2: every band fails with not_converged."""
    spec = yaml.safe_load(EXAMPLE.read_text())
    spec["neb"]["steps"] = 2
    path = tmp_path / "cu_ni.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "camp"
    plan = prepare_campaign(load_campaign(path), load_profile(PROFILE), out)
    return out, plan


def test_a_failed_hop_killed_on_its_rerun_is_never_done(failing_campaign):
    out, plan = failing_campaign
    index = next(h["index"] for h in plan["hops"] if h["origin"] == "interface")
    folder = out / plan["hops"][index]["folder"]
    sched = ListingScheduler()
    first = submit_hops(out, [index], scheduler=sched)
    sched.listed = {first["tasks"][str(index)]: "running"}
    proc = _task(out, index)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    sched.listed = {}
    (state,) = [s for s in hop_states(out, scheduler=sched) if s["index"] == index]
    assert (state["state"], state["reason"]) == ("failed", "not_converged"), state
    failed_result = json.loads((folder / RESULT).read_text())
    assert failed_result["failure_reason"] == "not_converged"

    # the rerun (resume resubmits the failed hop) is killed without warning while it runs
    second = resume(out, scheduler=sched)
    assert index in map(int, second["tasks"])
    rerun_job = second["tasks"][str(index)]
    first_attempt = json.loads((folder / STARTED).read_text()).get("attempt")
    proc = _task(out, index)
    sched.listed = {rerun_job: "running"}
    _kill_once_started(proc, folder)
    (state,) = [s for s in hop_states(out, scheduler=sched) if s["index"] == index]
    assert state["state"] == "running", state  # the scheduler still lists the job
    sched.listed = {}  # the job has left the queue
    (state,) = [s for s in hop_states(out, scheduler=sched) if s["index"] == index]
    assert (state["state"], state["reason"]) == ("failed", "no_result"), state
    (state,) = [s for s in hop_states(out, ask_scheduler=False) if s["index"] == index]
    assert state["state"] != "done", state
    # the first attempt's records are kept aside, not believed
    assert latest_outcome(folder).state == "started"
    assert not (folder / RESULT).is_file()
    previous = json.loads((folder / f"{PREVIOUS}{RESULT}").read_text())
    assert (previous["attempt"], previous["failure_reason"]) == (first_attempt, "not_converged")

    third = resume(out, scheduler=sched)
    assert third is not None and index in map(int, third["tasks"])
    with pytest.raises(KmcflowError, match="no hop succeeded"):
        collect(out)  # the only computed hop's result is stale: nothing to assemble
    report = json.loads((out / "report.json").read_text())
    missing = {f["event_key"]: f for f in report["failed"]}
    key = plan["hops"][index]["event_key"]
    assert missing[key]["failure_reason"] == "missing", missing[key]


def test_a_damaged_record_reads_as_failed_not_as_a_traceback(failing_campaign):
    out, plan = failing_campaign
    folder = out / plan["hops"][0]["folder"]
    (folder / STARTED).write_text('{"attempt": "a"}')
    (folder / RESULT).write_text('{"attempt": "a", "forward_barrier_eV": 0.7')  # truncated
    (state,) = [s for s in hop_states(out, ask_scheduler=False) if s["index"] == 0]
    assert (state["state"], state["reason"]) == ("failed", "damaged_record")
    assert "result.json" in state["message"]


def test_a_rerun_that_raises_reports_its_own_exception_not_the_stored_failure(
        failing_campaign):
    """The store keeps the first attempt's failed result; a rerun whose job raises (here the
    band's checkpoint no longer fits) once came back with that stale not_converged result
    and no exception."""
    from kmcflow.hpc.task import run_task

    out, plan = failing_campaign
    index = 0
    folder = out / plan["hops"][index]["folder"]
    first = run_task(out, index)
    assert first["failure_reason"] == "not_converged"
    state_file = folder / "neb_checkpoint" / "band_state.json"
    state = json.loads(state_file.read_text())
    state_file.write_text(json.dumps({**state, "identity": "0000000000000000"}))
    second = run_task(out, index)
    assert second["failure_reason"] == "job_error", second
    assert second["exception"]["job"] == "kmcflow CI-NEB"
    assert "belongs to another band" in second["exception"]["message"]
    failure = json.loads((folder / FAILURE).read_text())
    assert failure["attempt"] == json.loads((folder / STARTED).read_text())["attempt"]
    assert not (folder / RESULT).exists()  # the stale result is aside, not re-stamped
    (state_row,) = [s for s in hop_states(out, ask_scheduler=False) if s["index"] == index]
    assert (state_row["state"], state_row["reason"]) == ("failed", "job_error")
