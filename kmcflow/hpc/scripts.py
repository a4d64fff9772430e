"""Batch scripts for SLURM and PBS Pro from a :class:`~kmcflow.hpc.profiles.ClusterProfile`.

Every value that reaches a script is either validated against a safe alphabet (job names,
partitions, accounts, modules: checked again here) or passed through :func:`shlex.quote`
(paths, environment values, launch commands, the task command), so a hostile value is a
literal string in the script, never shell code. An array job runs one task per index; the
task reads its index from ``$SLURM_ARRAY_TASK_ID`` or ``$PBS_ARRAY_INDEX``. The command is run
with ``exec``, so the Python task *is* the batch process and receives the scheduler's signals
(``SIGUSR1`` before the walltime, ``SIGTERM`` at it) itself. A job may depend on others
(``afterany``: it starts when they have ended, whatever their outcome); job ids are checked
against the scheduler's id syntax before they reach a directive.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from kmcflow.errors import SchedulerError
from kmcflow.hpc.profiles import LAUNCH_VARIABLES, SAFE_NAME, ClusterProfile, format_walltime

ARRAY_INDEX = {"slurm": "$SLURM_ARRAY_TASK_ID", "pbs": "$PBS_ARRAY_INDEX"}
JOB_ID = {"slurm": r"[0-9]+(_[0-9]+)?", "pbs": r"[0-9]+(\[[0-9]*\])?(\.[A-Za-z0-9_.-]+)?"}


def check_job_id(job_id: str, scheduler: str) -> str:
    """Refuse a job id that is not in the scheduler's syntax (it goes into a directive)."""
    if not re.fullmatch(JOB_ID[scheduler], str(job_id)):
        raise SchedulerError(f"{job_id!r} is not a {scheduler} job id", field="job_id")
    return str(job_id)


def check_job_name(name: str, scheduler: str = "slurm") -> str:
    """Refuse a job name with characters a scheduler or a shell could misread.

    PBS also wants the name to start with a letter.
    """
    if (not re.fullmatch(SAFE_NAME.strip("^$"), name or "") or len(name) > 64
            or (scheduler == "pbs" and not name[:1].isalpha())):
        raise SchedulerError(f"job name {name!r} has characters a job script cannot take "
                             "safely", field="name", hint="use letters, digits and _ . + - "
                             "(at most 64; a letter first for PBS)")
    return name


def _setup_lines(profile: ClusterProfile, workdir: Path) -> list[str]:
    lines = ["set -euo pipefail"]
    lines += [f"module load {m}" for m in profile.modules]
    if profile.activate:
        lines.append(f"source {shlex.quote(profile.activate)}")
    for key, value in profile.environment.items():
        lines.append(f"export {key}={shlex.quote(value)}")
    for code, command in sorted(profile.launchers.items()):
        lines.append(f"export {LAUNCH_VARIABLES[code]}={shlex.quote(command)}")
    # the task tells a walltime kill from another SIGTERM by the time it has run
    lines.append(f"export KMCFLOW_WALLTIME_S={profile.walltime_s}")
    lines.append('export KMCFLOW_JOB_START_S="$(date +%s)"')
    lines.append(f"cd {shlex.quote(str(workdir))}")
    return lines


def _slurm_header(profile: ClusterProfile, name: str, logs: Path, array: str | None,
                  after: list[str]) -> list[str]:
    h = [f"#SBATCH --job-name={name}"]
    if profile.partition:
        h.append(f"#SBATCH --partition={profile.partition}")
    if profile.account:
        h.append(f"#SBATCH --account={profile.account}")
    if profile.qos:
        h.append(f"#SBATCH --qos={profile.qos}")
    h += [f"#SBATCH --nodes={profile.nodes}",
          f"#SBATCH --ntasks-per-node={profile.tasks_per_node}",
          f"#SBATCH --cpus-per-task={profile.cpus_per_task}"]
    if profile.memory_GB:
        h.append(f"#SBATCH --mem={round(profile.memory_GB * 1024)}M")
    h.append(f"#SBATCH --time={format_walltime(profile.walltime_s)}")
    if profile.warning_signal_s:
        h.append(f"#SBATCH --signal=B:USR1@{profile.warning_signal_s}")
    if after:
        h.append(f"#SBATCH --dependency=afterany:{':'.join(after)}")
    if array:
        h.append(f"#SBATCH --array={array}")
        h.append(f"#SBATCH --output={_safe_path(logs)}/%x_%A_%a.out")
    else:
        h.append(f"#SBATCH --output={_safe_path(logs)}/%x_%j.out")
    return h


def _pbs_header(profile: ClusterProfile, name: str, logs: Path, array: str | None,
                after: list[str]) -> list[str]:
    mem = f":mem={round(profile.memory_GB * 1024)}mb" if profile.memory_GB else ""
    h = [f"#PBS -N {name}"]
    if profile.partition:
        h.append(f"#PBS -q {profile.partition}")
    if profile.account:
        h.append(f"#PBS -A {profile.account}")
    ncpus = profile.tasks_per_node * profile.cpus_per_task
    h += [f"#PBS -l select={profile.nodes}:ncpus={ncpus}:mpiprocs={profile.tasks_per_node}"
          f":ompthreads={profile.cpus_per_task}{mem}",
          f"#PBS -l walltime={format_walltime(profile.walltime_s)}",
          "#PBS -j oe", f"#PBS -o {_safe_path(logs)}/"]
    if after:
        h.append(f"#PBS -W depend=afterany:{':'.join(after)}")
    if array:
        h.append(f"#PBS -J {array}")
    return h


def _safe_path(path: Path, field: str = "workdir") -> str:
    """A path for a directive line (no shell there): refuse characters that break the line."""
    text = str(path)
    if not re.fullmatch(r"[A-Za-z0-9_.+/-]+", text):
        raise SchedulerError(f"path {text!r} has characters a scheduler directive cannot take",
                             field=field, hint="use a folder path of letters, digits and "
                             "_ . + - / (the logs' path goes into #SBATCH/#PBS lines, where "
                             "no quoting exists)")
    return text


def check_campaign_path(folder: str | os.PathLike[str]) -> None:
    """Refuse, before any work, a campaign folder whose path no directive line can hold."""
    _safe_path(Path(folder).resolve() / "logs", field="--out")


def array_range(n_tasks: int, profile: ClusterProfile, indices: list[int] | None = None) -> str:
    """``0-5%4`` style array range (SLURM; ``%`` caps the tasks running at once), ``0-5`` (PBS).

    SLURM takes any list of indices; PBS Pro takes a contiguous range of at least two
    subjobs only (submit anything else as single jobs).
    """
    chosen = sorted(indices) if indices else list(range(n_tasks))
    if not chosen:
        raise SchedulerError("an array job needs at least one task", field="tasks")
    contiguous = chosen == list(range(chosen[0], chosen[-1] + 1))
    if profile.scheduler == "pbs":
        if len(chosen) < 2 or not contiguous:
            raise SchedulerError("PBS arrays take a contiguous range of at least two tasks",
                                 field="tasks", hint="submit these hops as single jobs")
        return f"{chosen[0]}-{chosen[-1]}"
    spec = (f"{chosen[0]}-{chosen[-1]}" if contiguous and len(chosen) > 1
            else ",".join(str(i) for i in chosen))
    if profile.array_max_parallel:
        spec += f"%{profile.array_max_parallel}"
    return spec


def render_script(profile: ClusterProfile, name: str, workdir: Path, command: list[str], *,
                  n_tasks: int | None = None, indices: list[int] | None = None,
                  after: list[str] | None = None) -> str:
    """A batch script running ``command`` in ``workdir``; an array of ``n_tasks`` if given.

    In an array the literal argument ``{index}`` of ``command`` becomes the task index.
    ``after`` lists job ids that must end (successfully or not) before this job starts.
    """
    check_job_name(name, profile.scheduler)
    after = [check_job_id(j, profile.scheduler) for j in (after or [])]
    logs = workdir / "logs"
    array = array_range(n_tasks or 0, profile, indices) if (n_tasks or indices) else None
    header = (_slurm_header if profile.scheduler == "slurm" else _pbs_header)(
        profile, name, logs, array, after)
    words = []
    for word in command:
        if word == "{index}" and array:
            words.append(f'"{ARRAY_INDEX[profile.scheduler]}"')
        else:
            words.append(shlex.quote(word))
    lines = ["#!/bin/bash", *header, f"# generated by kmcflow from profile {profile.name}",
             *_setup_lines(profile, workdir), "exec " + " ".join(words), ""]
    return "\n".join(lines)
