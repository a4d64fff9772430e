"""Submit a prepared campaign folder to its scheduler, and resubmit what did not finish.

:func:`submit_hops` writes an array script for the chosen hops (:func:`submit_tasks`: SLURM
takes any list of indices; PBS Pro takes a contiguous range of two or more, otherwise one job
per hop; each job is recorded the moment the scheduler took it) and a
collect script that depends on them (``afterany``: it runs when they have all ended, however
they ended, and assembles whatever finished into ``DIR/catalog.json``), submits both and
appends a record to ``DIR/submissions.json``: the job ids, the task id of every hop, the
walltime. :func:`resume` submits again exactly the hops that are neither done nor still queued
or running; their tasks continue from the checkpoints in their folders.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kmcflow.atomic_io import write_json, write_text
from kmcflow.errors import SchedulerError
from kmcflow.hpc.campaign_dir import hop_states, load_plan
from kmcflow.hpc.scheduler import Scheduler, array_task_id, get_scheduler
from kmcflow.hpc.submissions import SUBMISSIONS, folder_profile, load_submissions


def _next_number(out: Path) -> int:
    return len(load_submissions(out))


def submit_hops(out_dir: str | os.PathLike[str], indices: list[int] | None = None, *,
                walltime: str | int | None = None,
                scheduler: Scheduler | None = None) -> dict[str, Any]:
    """Submit hops ``indices`` (default: all) and the dependent collect job; return the record."""
    from kmcflow.hpc.scripts import render_script

    out = Path(out_dir).resolve()
    plan = load_plan(out)
    profile = folder_profile(out, walltime)
    n_hops = len(plan["hops"])
    chosen = sorted(set(range(n_hops) if indices is None else indices))
    bad = [i for i in chosen if not 0 <= i < n_hops]
    if bad or not chosen:
        raise SchedulerError(f"no hops {bad or chosen} in this campaign (it has {n_hops})",
                             field="hops", hint=f"choose among 0-{n_hops - 1}")
    sched = scheduler or get_scheduler(profile.scheduler)
    number = _next_number(out)
    base = f"{plan['name']}"[:48]
    command = ["python", "-m", "kmcflow.hpc.task", str(out), "{index}"]
    record = {"number": number, "scheduler": profile.scheduler,
              "submitted": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "walltime_s": profile.walltime_s, "jobs": [], "tasks": {}, "collect_job": None}
    earlier = load_submissions(out)

    def submitted(job: str, tasks: dict[str, str]) -> None:  # recorded the moment it is taken
        record["jobs"].append(job)
        record["tasks"].update(tasks)
        write_json(out / SUBMISSIONS, [*earlier, record])

    submit_tasks(profile, sched, out, f"{base}_hops", command, chosen, number, submitted)
    collect_script = out / "scripts" / f"collect_{number:02d}.sh"
    collect_profile = profile.model_copy(update={"walltime": 3600, "warning_signal_s": None})
    write_text(collect_script, render_script(
        collect_profile, f"{base}_collect", out,
        ["python", "-m", "kmcflow.hpc.task", str(out), "collect"], after=record["jobs"]))
    record["collect_job"] = sched.submit(collect_script)
    write_json(out / SUBMISSIONS, [*earlier, record])
    return record


def submit_tasks(profile, sched: Scheduler, out: Path, name: str, command: list[str],
                 chosen: list[int], number: int,
                 submitted: Callable[[str, dict[str, str]], None]) -> None:
    """Submit the tasks ``chosen`` of ``command`` (``{index}`` = the task) from folder ``out``.

    SLURM takes any list of indices in one array; PBS Pro a contiguous range of two or more,
    otherwise one job per task (``scripts/hops_NN.sh`` or ``scripts/hop_III_NN.sh``).
    ``submitted(job, {index: task id})`` is called as each job is taken, so a caller can
    record it before the next submission can fail.
    """
    from kmcflow.hpc.scripts import render_script

    contiguous = chosen == list(range(chosen[0], chosen[-1] + 1))
    if profile.scheduler == "slurm" or (len(chosen) > 1 and contiguous):
        script = out / "scripts" / f"hops_{number:02d}.sh"
        write_text(script, render_script(profile, name, out, command, indices=chosen))
        job = sched.submit(script)
        submitted(job, {str(i): array_task_id(profile.scheduler, job, i) for i in chosen})
        return
    for i in chosen:  # PBS without a usable array range: one job per task
        script = out / "scripts" / f"hop_{i:03d}_{number:02d}.sh"
        single = [str(i) if w == "{index}" else w for w in command]
        write_text(script, render_script(profile, f"{name[:40]}_{i}", out, single))
        job = sched.submit(script)
        submitted(job, {str(i): job})


def resume(out_dir: str | os.PathLike[str], *, walltime: str | int | None = None,
           scheduler: Scheduler | None = None) -> dict[str, Any] | None:
    """Resubmit the hops that are neither done nor queued/running; None if there are none."""
    states = hop_states(out_dir, scheduler=scheduler)
    todo = [s["index"] for s in states if s["state"] == "failed"
            or (s["state"] == "pending" and s.get("job") is None)]
    if not todo:
        return None
    return submit_hops(out_dir, todo, walltime=walltime, scheduler=scheduler)
