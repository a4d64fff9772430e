"""Submission records, hop states and PBS job chains, checked against a recording scheduler.

No PBS server can run here (none in Debian or on PyPI), so PBS submission is checked with a
scheduler that records the scripts it is given and answers with PBS-style job ids; the scripts
must be what ``qsub`` would take (dependencies, single jobs when no array fits).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("jobflow", reason="needs the workflows extra")

from kmcflow.errors import SchedulerError
from kmcflow.hpc.campaign_dir import STARTED, hop_states, prepare_campaign
from kmcflow.hpc.profiles import load_profile, profile_from_dict
from kmcflow.hpc.scheduler import array_task_id
from kmcflow.hpc.submissions import load_submissions
from kmcflow.hpc.submit import resume, submit_hops
from kmcflow.hpc.task import _kill_reason
from kmcflow.workflows.campaign import load_campaign

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "campaigns" / "cu_ni_emt.yaml"


class RecordingScheduler:
    """Takes scripts, hands out job ids, reports the jobs it is told are active."""

    def __init__(self, name: str):
        self.name = name
        self.scripts: list[str] = []
        self.listed: dict[str, str] = {}

    def submit(self, script: Path) -> str:
        self.scripts.append(script.read_text())
        n = 100 + len(self.scripts)
        if self.name == "pbs":
            return f"{n}[].pbs01" if "#PBS -J" in self.scripts[-1] else f"{n}.pbs01"
        return str(n)

    def active(self, job_ids):
        return dict(self.listed)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A prepared Cu|Ni campaign folder for the PBS profile (6 hops)."""
    out = tmp_path_factory.mktemp("pbs") / "camp"
    prepare_campaign(load_campaign(EXAMPLE), load_profile(ROOT / "hpc_configs/generic_pbs.yaml"),
                     out)
    return out


def test_pbs_array_and_dependent_collect_job(prepared):
    sched = RecordingScheduler("pbs")
    record = submit_hops(prepared, scheduler=sched)
    array, collect = sched.scripts
    assert "#PBS -J 0-5" in array and 'exec python -m kmcflow.hpc.task' in array
    assert "#PBS -W depend=afterany:101[].pbs01" in collect
    assert collect.rstrip().endswith(f"{prepared} collect")
    assert record["tasks"]["3"] == "101[3].pbs01" == array_task_id("pbs", "101[].pbs01", 3)
    for text in sched.scripts:
        assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0


def test_pbs_resubmits_scattered_hops_as_single_jobs(prepared):
    sched = RecordingScheduler("pbs")
    before = len(load_submissions(prepared))
    record = submit_hops(prepared, [1, 4], scheduler=sched)
    assert record["number"] == before
    singles, collect = sched.scripts[:2], sched.scripts[2]
    assert all("#PBS -J" not in s for s in singles)
    assert singles[0].rstrip().endswith(f"{prepared} 1")
    assert "#PBS -W depend=afterany:101.pbs01:102.pbs01" in collect
    assert record["tasks"] == {"1": "101.pbs01", "4": "102.pbs01"}


def test_a_job_taken_before_a_failed_qsub_is_recorded(prepared):
    """The second single job is refused: the first, already queued, must not be forgotten."""
    class RefusesSecond(RecordingScheduler):
        def submit(self, script: Path) -> str:
            if len(self.scripts) == 1:
                raise SchedulerError("qsub: would exceed the queue's job limit")
            return super().submit(script)

    before = len(load_submissions(prepared))
    with pytest.raises(SchedulerError):
        submit_hops(prepared, [0, 2], scheduler=RefusesSecond("pbs"))
    record = load_submissions(prepared)[-1]
    assert len(load_submissions(prepared)) == before + 1
    assert record["jobs"] == ["101.pbs01"] and record["tasks"] == {"0": "101.pbs01"}


def test_states_from_files_and_scheduler(tmp_path):
    out = tmp_path / "camp"
    prepare_campaign(load_campaign(EXAMPLE), load_profile(ROOT / "hpc_configs/local_slurm.yaml"),
                     out)
    sched = RecordingScheduler("slurm")
    assert {s["reason"] for s in hop_states(out, scheduler=sched)} == {"not submitted"}
    submit_hops(out, [0, 1, 2, 3], scheduler=sched)
    assert "#SBATCH --array=0-3%2" in sched.scripts[0]
    assert "#SBATCH --dependency=afterany:101" in sched.scripts[1]
    hops = out / "hops"
    (hops / "hop_000" / "result.json").write_text("{}")
    (hops / "hop_001" / STARTED).write_text("{}")  # started, then vanished from the queue
    (hops / "hop_002" / STARTED).write_text("{}")
    sched.listed = {"101_2": "running", "101_3": "queued"}
    states = {s["index"]: s for s in hop_states(out, scheduler=sched)}
    assert [states[i]["state"] for i in range(6)] == ["done", "failed", "running", "pending",
                                                      "pending", "pending"]
    assert states[1]["reason"] == "no_result" and states[3]["reason"] == "queued"
    assert states[4]["reason"] == "not submitted"
    sched.listed = {"101_2": "running"}
    assert {s["index"]: s["reason"] for s in hop_states(out, scheduler=sched)}[3] == \
        "never_started"
    # resume: the vanished hop, the one that never started and the two never submitted
    record = resume(out, scheduler=sched)
    assert sorted(map(int, record["tasks"])) == [1, 3, 4, 5]
    assert "#SBATCH --array=1,3-5%2" in sched.scripts[-2] or \
        "#SBATCH --array=1,3,4,5%2" in sched.scripts[-2]
    # without a scheduler answer the files decide
    assert {s["index"]: s["state"] for s in hop_states(out, ask_scheduler=False)}[2] == \
        "running"


def test_bad_submissions_are_refused(tmp_path, prepared):
    with pytest.raises(SchedulerError, match="no hops"):
        submit_hops(prepared, [7], scheduler=RecordingScheduler("pbs"))
    with pytest.raises(SchedulerError, match="walltime"):
        submit_hops(prepared, [0], walltime="-00:10:00", scheduler=RecordingScheduler("pbs"))
    (tmp_path / "submissions.json").write_text("[{broken")
    with pytest.raises(SchedulerError, match=r"submissions\.json"):
        load_submissions(tmp_path)


def test_kill_reason_tells_walltime_from_cancel(monkeypatch):
    import signal
    import time

    monkeypatch.setenv("KMCFLOW_WALLTIME_S", "600")
    monkeypatch.setenv("KMCFLOW_JOB_START_S", str(int(time.time()) - 595))
    assert _kill_reason(signal.SIGTERM, time.time()) == "walltime"
    monkeypatch.setenv("KMCFLOW_JOB_START_S", str(int(time.time()) - 30))
    assert _kill_reason(signal.SIGTERM, time.time()) == "terminated"
    assert _kill_reason(signal.SIGUSR1, time.time()) == "walltime"  # the warning signal


def test_jobflow_remote_project_from_the_local_profile_validates(tmp_path):
    pytest.importorskip("jobflow_remote", reason="needs the hpc extra")
    import yaml
    from jobflow_remote.config.base import Project

    from kmcflow.hpc.remote import project_dict, write_project

    profile = load_profile(ROOT / "hpc_configs" / "local_slurm.yaml")
    data = project_dict(profile, "kmcflow_cu_ni", tmp_path, "mongodb://db.example:27017/kmc")
    path = write_project(data, tmp_path / "kmcflow_cu_ni.yaml")
    project = Project.model_validate(yaml.safe_load(path.read_text()))
    worker = project.workers["local-slurm"]
    assert worker.scheduler_type == "slurm" and worker.max_jobs == 2
    assert worker.resources == {"nodes": 1, "ntasks_per_node": 1, "cpus_per_task": 1,
                                "time": "00:30:00", "partition": "debug", "mem": "2048M"}
    assert project.exec_config["local-slurm"].export["OMP_NUM_THREADS"] == "1"
    assert project.queue.store["host"] == "db.example"
    # jobflow-remote renders its own SLURM header from these resources through qtoolkit
    from qtoolkit.io.slurm import SlurmIO

    header = SlurmIO().generate_header(dict(worker.resources))
    assert "#SBATCH --partition=debug" in header and "#SBATCH --time=00:30:00" in header
    pbs = project_dict(load_profile(ROOT / "hpc_configs" / "generic_pbs.yaml"), "p", tmp_path)
    Project.model_validate(pbs)
    assert pbs["workers"]["generic-pbs"]["resources"]["select"] == \
        "select=1:ncpus=24:mpiprocs=24:mem=98304mb"


def test_jobflow_remote_refuses_a_bad_project_and_a_missing_database(tmp_path, capsys):
    pytest.importorskip("jobflow_remote", reason="needs the hpc extra")
    from kmcflow.cli import main
    from kmcflow.hpc.remote import write_project

    with pytest.raises(SchedulerError, match="jobflow-remote refuses"):
        write_project({"name": "x", "workers": {"w": {"type": "local"}}}, tmp_path / "x.yaml")
    assert not (tmp_path / "x.yaml").exists()
    code = main(["campaign", "submit", str(EXAMPLE), "--profile",
                 str(ROOT / "hpc_configs" / "local_slurm.yaml"), "--out", str(tmp_path / "c"),
                 "--backend", "jobflow-remote", "--mongo", "mongodb://127.0.0.1:1/kmcflow"])
    assert code == 2
    err = capsys.readouterr().err
    assert "MongoDB" in err and "--backend direct" in err
    assert (tmp_path / "c" / "jfremote" / "kmcflow_cu_ni_emt.yaml").is_file()


def test_hostile_profile_values_never_reach_a_shell(tmp_path):
    profile = profile_from_dict({"name": "p", "scheduler": "slurm",
                                 "environment": {"X": "$(touch pwned); `id`"}})
    out = tmp_path / "camp"
    prepare_campaign(load_campaign(EXAMPLE), profile, out)
    sched = RecordingScheduler("slurm")
    submit_hops(out, [0], scheduler=sched)
    assert "export X='$(touch pwned); `id`'" in sched.scripts[0]
    assert json.loads((out / "submissions.json").read_text())[0]["tasks"] == {"0": "101_0"}


def test_jobflow_remote_jobs_get_the_profiles_modules_environment_and_launchers(
        tmp_path, monkeypatch):
    """Issue 12, defect 5: submit_flow was called without exec_config, so jobs ran without
    the profile's modules, environment and DFT commands. No MongoDB runs here: the database
    step is replaced by a recorder that resolves the names the way jobflow-remote does
    before it writes to the database (its ConfigManager on the project file written)."""
    jfr = pytest.importorskip("jobflow_remote", reason="needs the hpc extra")
    from jobflow_remote.config import ConfigManager

    from kmcflow.hpc import remote

    calls = []

    def recording_submit_flow(flow, worker=None, project=None, exec_config=None,
                              resources=None, **kwargs):
        manager = ConfigManager()
        manager.get_worker(worker_name=worker, project_name=project)
        config = manager.get_exec_config(exec_config_name=exec_config, project_name=project)
        calls.append({"worker": worker, "project": project, "exec_config": config,
                      "resources": resources, "n_jobs": len(list(flow.iterflow()))})
        return []

    monkeypatch.setattr(jfr, "submit_flow", recording_submit_flow)
    for name in ("projects_folder", "project"):  # restored after the test
        monkeypatch.setattr(jfr.SETTINGS, name, getattr(jfr.SETTINGS, name))
    for var in ("JFREMOTE_PROJECTS_FOLDER", "JFREMOTE_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(remote, "_check_mongo", lambda url: None)
    profile = profile_from_dict({**yaml_profile("generic_pbs.yaml"), "activate": None})
    remote.submit_remote(load_campaign(EXAMPLE), profile, tmp_path / "c",
                         mongo_url="mongodb://db.example:27017/kmc")
    (call,) = calls
    assert call["worker"] == "generic-pbs" and call["project"] == "kmcflow_cu_ni_emt"
    assert call["exec_config"].modules == ["openmpi/4.1", "quantum-espresso/7.2"]
    assert call["exec_config"].export["ESPRESSO_PSEUDO"] == "/opt/qe/pseudo"
    assert call["exec_config"].export["ASE_ESPRESSO_COMMAND"] == "mpirun -np 24 pw.x"
    assert call["resources"]["select"] == "select=1:ncpus=24:mpiprocs=24:mem=98304mb"
    assert call["n_jobs"] >= 6  # every hop's jobs and the assembly


def yaml_profile(name: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / "hpc_configs" / name).read_text())


def test_pbs_status_asks_for_wide_ids(tmp_path, monkeypatch):
    """``qstat -t`` cuts job ids at 16 characters (``1234567[3].pbs-s*``), so a running hop
    read ``no_result``; ``-w`` prints them whole. No PBS server installs here: a stand-in
    ``qstat`` answers in PBS Pro's two formats, narrow or wide as asked."""
    from kmcflow.hpc.scheduler import PbsScheduler

    long_id = "1234567[3].pbs-server01.cluster.example"
    fake = tmp_path / "qstat"
    fake.write_text("#!/bin/sh\n"
                    "printf 'Job id            Name             User              Time Use S "
                    "Queue\\n----------------  ---------------- ----------------  -------- - "
                    "-----\\n'\n"
                    'case " $* " in *" -w "*) id="' + long_id + '";; *) id="1234567[3].pbs-s*";; '
                    "esac\n"
                    'printf "%s cu_ni_hops me 00:00:10 R workq\\n" "$id"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert PbsScheduler().active(["1234567[].pbs-server01.cluster.example"]) == {
        long_id: "running"}
