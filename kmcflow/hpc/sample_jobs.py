"""Environment sample folders on a cluster: one batch array task per hop.

``kmcflow environments submit FOLDER --profile P`` and ``kmcflow learn --profile P`` compute
the hops of a sample folder (:mod:`kmcflow.workflows.environments`) as SLURM/PBS array tasks
instead of local processes. What this adds to the folder::

    hop_settings.json     calculator (as a resolved config) and neb/relax/prefactor settings
    profile.yaml          the cluster profile
    scripts/hops_NN.sh    one array script per submission
    submissions.json      job ids per hop (kmcflow.hpc.submissions)
    logs/                 scheduler output

Task ``i`` (``python -m kmcflow.hpc.sample_jobs FOLDER i``) runs hop ``i`` through the same
per-hop store as a local run (:func:`kmcflow.workflows.hop_batch.compute_stored_hop`) and
writes ``results/hop_NNN.json``; an error of its own (settings, store) is written there as a
failure too. A hop's result file is moved aside (``results/previous/``) *before* its job is
submitted, so the file, when there, is always the latest submission's: a job that never
started or was killed cannot leave an older result standing in for it.

A hop's state (:func:`sample_hop_states`) is ``done``, ``failed`` (a result with a failure
reason), ``queued`` or ``running`` (the scheduler lists its task), ``lost`` (submitted, no
longer listed, no result: killed by its walltime or memory limit, or it never started; see
``logs/``) or ``unsubmitted``. Submitting holds a lock on the folder, refuses hops that are
queued or running, and records every job the moment it is submitted: no hop runs twice.

A folder computed here (``kmcflow environments compute``) is not submitted, and a submitted
one is not computed here: its hop settings and results belong to the cluster.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from kmcflow.atomic_io import write_json, write_text
from kmcflow.errors import ConfigError, KmcflowError, SchedulerError
from kmcflow.hpc.scheduler import Scheduler, get_scheduler, submit_command
from kmcflow.hpc.submissions import (
    SUBMISSIONS,
    active_tasks,
    folder_profile,
    latest_task_ids,
    load_submissions,
)
from kmcflow.workflows.environments import HOP_SETTINGS

PROFILE = "profile.yaml"
BUSY = ("queued", "running")
MAX_POLL_S = 3600.0
LOST = ("ended without a result: killed by the scheduler (walltime, memory) or it never "
        "started; see logs/")


def _result_path(folder: Path, index: int) -> Path:
    return folder / "results" / f"hop_{index:03d}.json"


@contextmanager
def _submit_lock(folder: Path) -> Iterator[None]:
    """One submitter at a time per folder (two ``learn`` or ``submit`` runs at once)."""
    with open(folder / ".submit.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prepare_sample_jobs(folder: str | os.PathLike[str], settings, profile) -> Path:
    """Fix the hop settings and cluster profile of a sample folder's tasks.

    ``settings`` (:class:`~kmcflow.workflows.environments.EnvironmentHopSettings`) is stored
    with its calculator resolved to a full config, so a task does not depend on the
    submitting shell's files. Once a hop was submitted the folder keeps its settings: other
    ones are refused (its hops would mix two calculations). A folder computed locally is
    refused (its results' settings are not known here). Checked before anything is written:
    the scheduler's submit command must be on PATH.
    """
    from kmcflow.hpc.scripts import check_campaign_path
    from kmcflow.workflows.calculators import load_calculator_config
    from kmcflow.workflows.environments import read_sample_folder

    out = Path(folder).resolve()
    read_sample_folder(out)  # a sample folder, with readable endpoints
    check_campaign_path(out)
    submit_command(profile.scheduler)
    config = load_calculator_config(settings.calculator)
    wanted = settings.model_copy(update={"calculator": config.model_dump(mode="json")}
                                 ).model_dump(mode="json")
    path = out / HOP_SETTINGS
    if not path.is_file() and any((out / "results").glob("hop_*.json")):
        raise ConfigError("this folder's hops were computed here (results/, no "
                          f"{HOP_SETTINGS}): their settings are not known", file=str(out),
                          hint="finish it with `kmcflow environments compute`, or sample a "
                          "new folder for the cluster")
    if path.is_file() and load_submissions(out):
        from kmcflow.readers import read_json

        before = read_json(path, error=ConfigError, what="hop settings")
        if before != wanted:
            changed = sorted(k for k in wanted if (before or {}).get(k) != wanted[k])
            raise ConfigError(f"this folder's hops were submitted with other settings "
                              f"({', '.join(changed) or 'format'})", file=str(path),
                              field=changed[0] if changed else None,
                              hint="use the same calculator and settings, or sample a new "
                              "folder")
    else:
        write_json(path, wanted)  # nothing submitted yet: the settings may still change
    if profile.activate and not Path(profile.activate).is_absolute():
        # batch jobs start elsewhere (PBS: in $HOME): fix the path where it was meant
        profile = profile.model_copy(update={"activate": str(Path(profile.activate).resolve())})
    write_text(out / PROFILE, yaml.safe_dump(profile.model_dump(mode="json")))
    (out / "logs").mkdir(exist_ok=True)
    return out


def read_hop_settings(folder: Path):
    """The :class:`EnvironmentHopSettings` a folder's tasks run with."""
    from pydantic import ValidationError

    from kmcflow.readers import read_json
    from kmcflow.workflows.environments import EnvironmentHopSettings

    path = folder / HOP_SETTINGS
    if not path.is_file():
        raise SchedulerError("no hop settings in the folder (it was never submitted)",
                             file=str(path), hint="submit it: kmcflow environments submit")
    try:
        return EnvironmentHopSettings.model_validate(
            read_json(path, error=SchedulerError, what="hop settings"))
    except ValidationError as exc:
        raise SchedulerError(f"bad hop settings: {exc}".splitlines()[0], file=str(path),
                             hint="submit the folder again with valid settings") from exc


def sample_hop_states(folder: str | os.PathLike[str], *,
                      scheduler: Scheduler | None = None) -> list[dict[str, Any]]:
    """One record per hop: ``index``, ``key``, ``state``, ``task``, ``submissions``, ``why``."""
    from kmcflow.readers import read_json
    from kmcflow.workflows.environments import read_sample_folder

    out = Path(folder).resolve()
    _, planned = read_sample_folder(out)
    records = load_submissions(out)
    tasks = latest_task_ids(out)
    # only a submitted hop without a result can still be queued or running (results are
    # moved aside before a submission): ask the scheduler only then
    open_tasks = [k for k in tasks if not _result_path(out, k).is_file()]
    active = active_tasks(out, scheduler) if open_tasks else {}
    states = []
    for k, hop in enumerate(planned):
        task = tasks.get(k)
        count = sum(str(k) in r["tasks"] for r in records)
        path = _result_path(out, k)
        why = ""
        if task is not None and task in active:
            state = active[task]
        elif path.is_file():
            try:
                result = read_json(path, error=KmcflowError, what="hop result")
            except KmcflowError as exc:
                result = {"failure_reason": "unreadable", "failure_message": exc.message}
            if not isinstance(result, dict):
                result = {"failure_reason": "unreadable",
                          "failure_message": "the result file is not a JSON object"}
            reason = result.get("failure_reason")
            state, why = ("failed", f"{reason}: {result.get('failure_message', '')}"
                          ) if reason else ("done", "")
        elif task is not None:
            state, why = "lost", LOST
        else:
            state = "unsubmitted"
        states.append({"index": k, "key": hop.record.get("environment_key"), "state": state,
                       "task": task, "submissions": count, "why": why})
    return states


def submit_sample_hops(folder: str | os.PathLike[str], indices: list[int] | None = None, *,
                       scheduler: Scheduler | None = None) -> dict[str, Any]:
    """Submit hops ``indices`` (default: every one not done nor queued); return the record.

    The folder must have been prepared (:func:`prepare_sample_jobs`). Hops queued or running
    are refused. SLURM takes any list of indices in one array; PBS Pro a contiguous range of
    two or more, otherwise one job per hop. Each job is recorded in ``submissions.json`` as
    soon as it is submitted, and each hop's old result moved aside before.
    """
    out = Path(folder).resolve()
    read_hop_settings(out)
    profile = folder_profile(out)
    sched = scheduler or get_scheduler(profile.scheduler)
    with _submit_lock(out):
        states = sample_hop_states(out)
        if indices is None:
            indices = [s["index"] for s in states if s["state"] in ("unsubmitted", "lost",
                                                                      "failed")]
        chosen = sorted(set(indices))
        bad = [i for i in chosen if not 0 <= i < len(states)]
        if bad:
            raise SchedulerError(f"no hops {bad} in this folder (it has {len(states)})",
                                 file=str(out), field="--only",
                                 hint=f"choose among 0-{len(states) - 1}")
        busy = [i for i in chosen if states[i]["state"] in BUSY]
        if busy:
            raise SchedulerError(f"hops {busy} are still queued or running", file=str(out),
                                 field="--only", hint="wait for them (`kmcflow environments "
                                 "status`) or cancel their jobs first")
        if not chosen:
            return {"jobs": [], "tasks": {}, "scheduler": profile.scheduler}
        return _submit(out, chosen, profile, sched)


def _submit(out: Path, chosen: list[int], profile, sched: Scheduler) -> dict[str, Any]:
    from kmcflow.hpc.submit import submit_tasks

    previous = out / "results" / "previous"
    for i in chosen:  # the old result must not stand in for the new job's
        if _result_path(out, i).is_file():
            previous.mkdir(parents=True, exist_ok=True)
            os.replace(_result_path(out, i), previous / _result_path(out, i).name)
    number = len(load_submissions(out))
    command = ["python", "-m", "kmcflow.hpc.sample_jobs", str(out), "{index}"]
    name = f"env_{out.name}"[:40]
    record = {"number": number, "scheduler": profile.scheduler,
              "submitted": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "walltime_s": profile.walltime_s, "jobs": [], "tasks": {}}
    earlier = load_submissions(out)

    def submitted(job: str, tasks: dict[str, str]) -> None:  # recorded at once
        record["jobs"].append(job)
        record["tasks"].update(tasks)
        write_json(out / SUBMISSIONS, [*earlier, record])

    submit_tasks(profile, sched, out, name, command, chosen, number, submitted)
    return record


def write_lost_result(folder: str | os.PathLike[str], index: int, why: str) -> Path:
    """Record a hop that never returned as failed (``killed``), so a fit lists it as left out."""
    from kmcflow.workflows.environments import read_sample_folder
    from kmcflow.workflows.hop_batch import export_result

    out = Path(folder).resolve()
    _, planned = read_sample_folder(out)
    record = planned[index].record
    return export_result(out / "results", index, {
        "hop": record, "event_key": record["event_key"], "job_index": index,
        "failure_reason": "killed", "failure_message": why})


def run_folder_on_cluster(folder: str | os.PathLike[str], settings, profile, *,
                          wait: bool = True, poll_s: float = 30.0, max_submissions: int = 2,
                          progress=None, scheduler: Scheduler | None = None
                          ) -> list[dict[str, Any]]:
    """Submit every hop of a sample folder not done, and (``wait``) poll until they end.

    A hop never submitted, or lost (killed by the scheduler) fewer than ``max_submissions``
    times, is submitted; a failed hop is not (its failure is a result: a fit lists it as
    left out). A hop lost ``max_submissions`` times is recorded as failed (``killed``).
    Returns the hops' states: some still queued or running (:data:`BUSY`) only without
    ``wait``. Nothing is submitted twice: a rerun finds the jobs of the first. A scheduler
    that does not answer is asked again at the next poll, five times at most in a row.
    """
    import time

    if not 0 < poll_s <= MAX_POLL_S:
        raise ConfigError(f"poll_s must be 0-{MAX_POLL_S:g} s, got {poll_s!r}", field="poll_s",
                          hint="e.g. --poll 30")
    report = progress or (lambda message: None)
    out = prepare_sample_jobs(folder, settings, profile)
    sched = scheduler or get_scheduler(profile.scheduler)
    silent = 0
    while True:
        try:
            states = sample_hop_states(out, scheduler=scheduler)
        except SchedulerError as exc:
            silent += 1
            if silent >= 5 or not wait:
                raise
            report(f"the scheduler did not answer ({exc.message}); asking again in "
                   f"{poll_s:g} s")
            time.sleep(poll_s)
            continue
        silent = 0
        todo = [st["index"] for st in states if st["state"] == "unsubmitted"
                or (st["state"] == "lost" and st["submissions"] < max_submissions)]
        if todo:
            record = submit_sample_hops(out, todo, scheduler=sched)
            report(f"submitted {len(todo)} hops ({profile.scheduler} job "
                   f"{', '.join(record['jobs'])})")
            continue
        busy = [st for st in states if st["state"] in BUSY]
        if not busy or not wait:
            break
        ended = sum(st["state"] in ("done", "failed") for st in states)
        report(f"{ended}/{len(states)} hops ended, {len(busy)} queued or running")
        time.sleep(poll_s)
    for st in states:
        if st["state"] == "lost":  # killed every time: left out of the fit, with why
            write_lost_result(out, st["index"], f"{LOST} ({st['submissions']} submissions)")
    return states


def run_sample_task(folder: str | os.PathLike[str], index: int) -> dict[str, Any]:
    """Compute hop ``index`` of a submitted sample folder (what one array task does)."""
    from kmcflow.workflows.calculators import load_calculator_config
    from kmcflow.workflows.environments import read_sample_folder
    from kmcflow.workflows.hop_batch import compute_stored_hop, export_result

    out = Path(folder).resolve()
    settings = read_hop_settings(out)
    _, planned = read_sample_folder(out)
    if not 0 <= index < len(planned):
        raise SchedulerError(f"no hop {index}: the folder has {len(planned)}", file=str(out),
                             field="index")
    path = _result_path(out, index)
    if path.is_file():  # a result of this hop's earlier run here (resubmitted by hand)
        path.unlink()
    try:
        result, _ = compute_stored_hop(settings, load_calculator_config(settings.calculator),
                                       index, planned[index], out)
    except Exception as exc:  # the task's own error (calculator config, store): a result too
        from kmcflow.workflows.execution import JobFailure

        failure = JobFailure.of(exc)
        record = planned[index].record
        result = {"hop": record, "event_key": record["event_key"],
                  "failure_reason": "task_error", "failure_message": failure.summary(),
                  "exception": failure.record()}
    result["job_index"] = index
    export_result(out / "results", index, result)
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m kmcflow.hpc.sample_jobs FOLDER INDEX``: exit 0 even if the hop failed."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not (args[1].isascii() and args[1].isdigit()):
        print("usage: python -m kmcflow.hpc.sample_jobs SAMPLE_FOLDER INDEX", file=sys.stderr)
        return 2
    try:
        result = run_sample_task(args[0], int(args[1]))
    except KmcflowError as exc:
        print(f"kmcflow: error: {exc.one_line()}", file=sys.stderr)
        return 2
    reason = result.get("failure_reason")
    print(f"hop {args[1]} {result.get('event_key')}: "
          f"{'failed: ' + str(reason) if reason else 'done'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
