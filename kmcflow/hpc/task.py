"""One batch task of a campaign folder: ``python -m kmcflow.hpc.task CAMPAIGN_DIR INDEX|collect``.

``INDEX`` computes hop ``INDEX`` (what array task ``INDEX`` runs): the hop flow runs with
``jobflow.run_locally`` and a file store of its own inside the hop folder (array tasks never
share a store file), then ``result.json`` is written atomically, or ``failure.json`` with the
reason. ``collect`` assembles whatever finished (the job that waits for the array).

Killed by the scheduler: the task traps ``SIGTERM`` (sent at the walltime, and by ``scancel``/
``qdel``) and ``SIGUSR1`` (sent before the walltime when the profile sets
``warning_signal_s``). The trap stops the computation at once; the checkpoints are already on
disk (the NEB band and the optimizer state after every step, the relaxations' last structure
after every force call), and the task writes ``failure.json`` with the reason ``walltime``
(the signal came within 10 % of the walltime, or was the warning signal) or ``terminated``.
The next run of the task continues from the checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from kmcflow.atomic_io import write_json
from kmcflow.errors import KmcflowError, SchedulerError
from kmcflow.hpc.campaign_dir import (
    FAILURE,
    PLAN,
    PREVIOUS,
    RESULT,
    STARTED,
    collect,
    load_plan,
)
from kmcflow.workflows.execution import FlowFailed, JobFailure, run_flow


class SchedulerSignal(BaseException):
    """Raised in the task when the scheduler signals it.

    A ``BaseException``: jobflow's ``run_locally`` catches ``Exception`` from a job and would
    carry on with the rest of the flow.
    """

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_signal(signum, frame):
    from kmcflow.workflows.resume import flush_all

    flush_all()  # the optimizer state of the step reached (the band is on disk already)
    raise SchedulerSignal(signum)


def _kill_reason(signum: int, started_s: float) -> str:
    if signum == signal.SIGUSR1:
        return "walltime"
    walltime = float(os.environ.get("KMCFLOW_WALLTIME_S", "0") or 0)
    start = os.environ.get("KMCFLOW_JOB_START_S", "")
    started_s = float(start) if start.isdigit() else started_s  # the job's start, if known
    if walltime and time.time() - started_s >= 0.9 * walltime:
        return "walltime"
    return "terminated"


def _open_store(folder: Path):
    """The hop's file store; a store file a kill left unreadable is moved aside."""
    from kmcflow.workflows.campaign import campaign_store

    for name in ("docs.json", "data.json"):
        path = folder / "store" / name
        if path.is_file():
            try:
                json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, RecursionError):
                path.replace(path.with_suffix(".json.unreadable"))
    return campaign_store(folder)


def _read_structure(path: Path):
    """A pymatgen structure from a task's JSON file (allow-listed classes only).

    A damaged or hostile file raises :class:`StructureError` naming it.
    """
    from kmcflow.structures.io import read_json_structure

    return read_json_structure(path)


def _run_reference(folder: Path, task: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """A static reference calculation through jobflow, its output kept in the task's store."""
    from kmcflow.workflows.output import json_safe
    from kmcflow.workflows.reference import StaticMaker

    structure = _read_structure(folder / "structure.json")
    job = StaticMaker(calculator_config=plan["calculator"]).make(structure,
                                                                   task["record"]["name"])
    job.metadata["reference"] = task["record"]["name"]
    store = _open_store(folder)
    failed = run_flow(job, store, folder / "jobs")
    if failed is not None:
        raise FlowFailed(failed)
    output = store.get_output(job.uuid, load=True)
    return json_safe({**output, "job_id": job.uuid, "event_key": task["event_key"]})


def run_task(out_dir: str | os.PathLike[str], index: int) -> dict[str, Any]:
    """Compute hop ``index`` of a prepared campaign (what one array task does)."""
    import warnings

    from kmcflow.workflows.calculators import load_calculator_config
    from kmcflow.workflows.campaign import CampaignSpec, find_done, hop_flow_maker
    from kmcflow.workflows.flows import cache_key
    from kmcflow.workflows.output import json_safe

    warnings.filterwarnings("ignore", message="cd is deprecated", category=FutureWarning)
    out = Path(out_dir).resolve()
    plan = load_plan(out)
    if not 0 <= index < len(plan["hops"]):
        raise SchedulerError(f"no hop {index}: the plan has {len(plan['hops'])}",
                             file=str(out / PLAN), field="index")
    hop = plan["hops"][index]
    folder = out / hop["folder"]
    started = time.time()
    attempt = uuid.uuid4().hex
    # the new attempt id first: from here on the records of earlier attempts are stale
    # (kmcflow.hpc.campaign_dir.latest_outcome), even if this process is killed before it
    # has moved them aside or written anything of its own
    write_json(folder / STARTED, {"index": index, "attempt": attempt, "pid": os.getpid(),
                                  "started": started,
                                  "job_id": os.environ.get("SLURM_JOB_ID")
                                  or os.environ.get("PBS_JOBID")})
    for name in (RESULT, FAILURE):
        if (folder / name).is_file():
            os.replace(folder / name, folder / f"{PREVIOUS}{name}")
    previous = {s: signal.signal(s, _raise_signal) for s in (signal.SIGTERM, signal.SIGUSR1)}
    try:
        if hop.get("kind") == "reference":
            result = _run_reference(folder, hop, plan)
            write_json(folder / RESULT, {**result, "attempt": attempt})
            return result
        spec = CampaignSpec.model_validate(plan["spec"])
        maker = hop_flow_maker(spec, load_calculator_config(plan["calculator"]))
        # what a task killed by its walltime continues from when it runs again
        maker.neb_maker.checkpoint_dir = str(folder / "neb_checkpoint")
        maker.relax_maker.checkpoint_dir = str(folder / "relax_checkpoint")
        initial, final = (_read_structure(folder / f"{n}.json") for n in ("initial", "final"))
        # the hop's own (unrelaxed) endpoints: its band checkpoint continues only this hop
        maker.neb_maker.checkpoint_identity = {"hop": [
            hashlib.sha256((folder / f"{n}.json").read_bytes()).hexdigest()[:16]
            for n in ("initial", "final")]}
        store = _open_store(folder)
        key = cache_key(hop["record"], initial, final, maker.settings())
        result = find_done(store, key)
        if result is None:
            failed = run_flow(maker.make(initial, final, hop["record"]), store, folder / "jobs")
            # a flow that raised has no result of its own: the store's newest failed result
            # is an earlier attempt's and must not stand in for this one
            result = None if failed else find_done(store, key, include_failed=True)
            if result is None:
                raise FlowFailed(failed or JobFailure(
                    None, "RuntimeError", "the hop flow stopped before its result job", ""))
    except SchedulerSignal as sig:
        failure = {"index": index, "event_key": hop["event_key"], "attempt": attempt,
                   "failure_reason": _kill_reason(sig.signum, started),
                   "message": f"stopped by {sig} after {time.time() - started:.0f} s; the "
                   "checkpoints are saved: `kmcflow campaign resume` continues this hop"}
        write_json(folder / FAILURE, failure)
        return failure
    except Exception as exc:
        cause = exc.failure if isinstance(exc, FlowFailed) else JobFailure.of(exc)
        failure = {"index": index, "event_key": hop["event_key"], "attempt": attempt,
                   "failure_reason": "job_error", "message": cause.summary(),
                   "exception": cause.record()}
        write_json(folder / FAILURE, failure)
        return failure
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    result = {**json_safe(dict(result)), "attempt": attempt}
    if result.get("failure_reason"):
        write_json(folder / FAILURE, {"index": index, "event_key": hop["event_key"],
                                      "attempt": attempt,
                                      "failure_reason": result["failure_reason"],
                                      "message": result.get("failure_message", "")})
    write_json(folder / RESULT, result)
    return result


def task_main(argv: list[str] | None = None) -> int:
    """Run one task: ``python -m kmcflow.hpc.task DIR INDEX`` or ``... DIR collect``.

    A hop task exits 0 even when the hop failed (the reason is in ``failure.json``); 2 on bad
    arguments.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not (args[1].isdigit() or args[1] == "collect"):
        print("usage: python -m kmcflow.hpc.task CAMPAIGN_DIR INDEX|collect", file=sys.stderr)
        return 2
    try:
        if args[1] == "collect":
            catalog, report = collect(args[0])
            print(f"collected {len(catalog.get('events', []))} events; "
                  f"{len(report.get('failed', []))} hops missing or failed")
            return 0
        result = run_task(args[0], int(args[1]))
    except KmcflowError as exc:
        print(f"kmcflow: error: {exc.one_line()}", file=sys.stderr)
        return 2
    state = "failed: " + str(result.get("failure_reason")) if result.get("failure_reason") \
        else "done"
    print(f"hop {args[1]} {result.get('event_key')}: {state}")
    return 0


if __name__ == "__main__":
    sys.exit(task_main())
