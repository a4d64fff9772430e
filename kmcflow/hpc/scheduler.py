"""Talk to a batch scheduler: submit a script, ask which jobs are still queued or running.

The direct backend needs no database: it submits with ``sbatch``/``qsub`` (the command and the
parsing of its answer come from qtoolkit's ``SlurmIO``/``PBSIO``) and asks ``squeue``/``qstat``
about the jobs it submitted. Commands run as argument lists, never through a shell.

A job the scheduler no longer lists has ended (SLURM drops finished jobs after ``MinJobAge``,
PBS after its ``job_history_duration``); what it left behind (``result.json``,
``failure.json``) says how it ended. Array tasks have their own ids: ``123_4`` (SLURM) and
``123[4].server`` (PBS), from :func:`array_task_id`.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Protocol

from kmcflow.errors import SchedulerError
from kmcflow.hpc.scripts import check_job_id

QUEUED, RUNNING = "queued", "running"


class Scheduler(Protocol):
    """What the campaign folder needs of a scheduler."""

    name: str

    def submit(self, script: Path) -> str:
        """Submit a batch script; return the job id."""

    def active(self, job_ids: list[str]) -> dict[str, str]:
        """``{task id: "queued" | "running"}`` for the jobs (and their array tasks) still listed."""


def _run(argv: list[str], what: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    if "=" in argv[0]:  # qtoolkit prefixes some commands with VAR=value
        argv = ["env", *argv]
    exe = next(a for a in argv if a != "env" and "=" not in a)
    if shutil.which(exe) is None:
        raise SchedulerError(f"{exe} not found: cannot {what}",
                             hint="run on a machine with the scheduler's commands on PATH "
                             "(or start a local SLURM: bash scripts/start_slurm.sh)")
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise SchedulerError(f"{exe} did not answer within {timeout_s:.0f} s: cannot {what}"
                             ) from exc


def _submit(io, command: str, scheduler: str, script: Path) -> str:
    """Submit with qtoolkit's command for this scheduler; the checked job id."""
    proc = _run(shlex.split(io.get_submit_cmd(str(script))), "submit")
    result = io.parse_submit_output(proc.returncode, proc.stdout, proc.stderr)
    if result.job_id is None:
        raise SchedulerError(f"{command} refused the job: {proc.stderr.strip() or proc.stdout}",
                             file=str(script))
    return check_job_id(str(result.job_id).strip(), scheduler)


class SlurmScheduler:
    """SLURM through ``sbatch`` and ``squeue``."""

    name = "slurm"

    def submit(self, script: Path) -> str:
        """``sbatch SCRIPT``; the job id."""
        from qtoolkit.io.slurm import SlurmIO

        return _submit(SlurmIO(), "sbatch", "slurm", script)

    def active(self, job_ids: list[str]) -> dict[str, str]:
        """``squeue -r``: every listed task (array tasks one by one) as queued or running."""
        if not job_ids:
            return {}
        # -r lists every array task on its own line (pending ones too)
        proc = _run(["squeue", "-h", "-r", "-o", "%i %t", "--jobs=" + ",".join(job_ids)],
                    "ask squeue")
        if proc.returncode != 0:
            if "Invalid job id" in proc.stderr:  # every listed job has left the queue
                return {}
            raise SchedulerError(f"squeue failed: {proc.stderr.strip()}")
        states = {}
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2:
                states[parts[0]] = QUEUED if parts[1] in ("PD", "CF", "RQ", "S") else RUNNING
        return states


class PbsScheduler:
    """PBS Pro through ``qsub`` and ``qstat`` (untested here: no PBS server installs on Debian)."""

    name = "pbs"

    def submit(self, script: Path) -> str:
        """``qsub SCRIPT``; the job id."""
        from qtoolkit.io.pbs import PBSIO

        return _submit(PBSIO(), "qsub", "pbs", script)

    def active(self, job_ids: list[str]) -> dict[str, str]:
        """``qstat -t -w``: every listed job and subjob not finished, as queued or running."""
        if not job_ids:
            return {}
        # -w: wide columns, so long job ids (123[4].server.domain) are never cut off
        proc = _run(["qstat", "-t", "-w", *job_ids], "ask qstat")
        states = {}
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[0][:1].isdigit() and parts[4] not in ("F", "X"):
                states[parts[0]] = RUNNING if parts[4] == "R" else QUEUED
        return states


def submit_command(scheduler: str) -> str:
    """The submit command of a scheduler (``sbatch``, ``qsub``); refuse if it is not on PATH.

    Checked before a campaign folder is prepared, so a machine without the scheduler's
    commands fails at once, with nothing written.
    """
    command = {"slurm": "sbatch", "pbs": "qsub"}.get(scheduler)
    if command is None:
        raise SchedulerError(f"unknown scheduler {scheduler!r}", field="scheduler",
                             hint="use slurm or pbs")
    if shutil.which(command) is None:
        raise SchedulerError(f"{command} not found: cannot submit to {scheduler}",
                             field="--profile", hint="run on a machine with the scheduler's "
                             "commands on PATH (or `kmcflow campaign prepare` here and submit "
                             "there)")
    return command


def get_scheduler(name: str) -> Scheduler:
    """The scheduler named by a profile."""
    if name == "slurm":
        return SlurmScheduler()
    if name == "pbs":
        return PbsScheduler()
    raise SchedulerError(f"unknown scheduler {name!r}", field="scheduler",
                         hint="use slurm or pbs")


def array_task_id(scheduler: str, array_id: str, index: int) -> str:
    """The id of one task of an array job: ``123_4`` (SLURM), ``123[4].server`` (PBS)."""
    if scheduler == "slurm":
        return f"{array_id}_{index}"
    head, _, server = array_id.partition(".")
    head = head.removesuffix("[]")
    return f"{head}[{index}]" + (f".{server}" if server else "")


def slurm_available() -> bool:
    """True when ``sinfo`` answers (a SLURM controller is reachable from here)."""
    if shutil.which("sinfo") is None:
        return False
    proc = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=30,
                          check=False)
    return proc.returncode == 0
