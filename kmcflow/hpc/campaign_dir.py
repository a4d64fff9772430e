"""A campaign as a self-contained directory: one folder per hop, run by batch array tasks.

Layout written by :func:`prepare_campaign`::

    DIR/plan.json                 campaign settings, catalog sections, one record per hop
    DIR/campaign.yaml             the campaign file as validated
    DIR/profile.yaml              the cluster profile as validated
    DIR/hops/hop_NNN/initial.json, final.json   endpoint structures (pymatgen JSON)
    DIR/scripts/array.sh          the array job of every hop (task i runs hop i)
    DIR/submissions.json          what was submitted: job ids per hop (kmcflow.hpc.submissions)
    DIR/logs/                     scheduler output
    DIR/hops/hop_NNN/started.json, result.json | failure.json, store/, neb_checkpoint/, ...

Each task (``python -m kmcflow.hpc.task DIR INDEX``, :mod:`kmcflow.hpc.task`) computes one hop
in its folder. Every run of a task is an *attempt* with its own id: it writes ``started.json``
with the id first, moves the records of the previous attempt aside (``previous_result.json``,
``previous_failure.json``) and stamps its own ``result.json``/``failure.json`` with the id.
:func:`latest_outcome` reads a folder and believes only the records of its latest attempt, so
a hop is done only when its latest attempt wrote a successful result: a stale result of an
earlier attempt (a band that failed, then a rerun killed by ``SIGKILL``) never reads as done.
:func:`hop_states` adds what the scheduler still lists (pending, running, done, failed with a
reason), and :func:`collect` assembles whatever finished into ``DIR/catalog.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kmcflow.atomic_io import atomic_directory, write_json, write_text
from kmcflow.errors import KmcflowError, SchedulerError
from kmcflow.hpc.submissions import active_tasks, latest_task_ids
from kmcflow.outputs import check_output_folder, write_marker

PLAN = "plan.json"
RESULT = "result.json"
FAILURE = "failure.json"
STARTED = "started.json"
PREVIOUS = "previous_"  # prefix of the records an attempt moved aside


def _hop_dir(out: Path, index: int) -> Path:
    return out / "hops" / f"hop_{index:03d}"


def prepare_campaign(spec, profile, out_dir: str | os.PathLike[str],
                     only: list[int] | None = None) -> dict[str, Any]:
    """Plan the hops and write the campaign directory and its array script.

    ``only``: hop indices that will be submitted; refused before anything is written if the
    campaign has no such hop.
    """
    from kmcflow.hpc.scripts import check_campaign_path, render_script
    from kmcflow.structures.io import LabelledStructure, write_json_structure
    from kmcflow.workflows.calculators import load_calculator_config
    from kmcflow.workflows.campaign import check_campaign_ready, plan_hops, plan_references

    out = Path(out_dir).resolve()
    if (out / PLAN).exists():
        raise SchedulerError("a campaign is already prepared here", file=str(out / PLAN),
                             hint="use `kmcflow campaign status` or choose another folder")
    check_output_folder(out_dir, "campaign_folder")
    check_campaign_path(out)
    if profile.activate and not Path(profile.activate).is_absolute():
        # batch jobs start elsewhere (PBS: in $HOME): fix the path where it was meant
        profile = profile.model_copy(update={"activate": str(Path(profile.activate).resolve())})
    config = load_calculator_config(spec.calculator)
    references = plan_references(spec)
    elements = set(spec.species) | {el.symbol for _, s in references
                                    for el in s.composition.elements}
    check_campaign_ready(spec, config, sorted(elements))
    planned, sections = plan_hops(spec)
    n_tasks = len(planned) + len(references)
    bad = sorted(i for i in (only or []) if not 0 <= i < n_tasks)
    if bad:
        raise SchedulerError(f"no hops {bad} in this campaign (it has {n_tasks})",
                             field="--only", hint=f"choose among 0-{n_tasks - 1}")
    hops = []
    with atomic_directory(out) as tmp:  # the folder appears whole or not at all
        for k, hop in enumerate(planned):
            folder = _hop_dir(tmp, k)
            folder.mkdir(parents=True, exist_ok=True)
            for name, structure in (("initial", hop.initial), ("final", hop.final)):
                write_json_structure(LabelledStructure(structure, name, "plan"),
                                     folder / f"{name}.json")
            hops.append({"index": k, "kind": "hop", "event_key": hop.record["event_key"],
                         "origin": hop.origin, "folder": str(folder.relative_to(tmp)),
                         "record": hop.record})
        for record, structure in references:  # tasks after the hops: hop indices stay put
            k = len(hops)
            folder = tmp / "references" / record["name"]
            write_json_structure(LabelledStructure(structure, record["name"], "plan"),
                                 folder / "structure.json")
            hops.append({"index": k, "kind": "reference",
                         "event_key": f"reference:{record['name']}", "origin": "reference",
                         "folder": str(folder.relative_to(tmp)), "record": record})
        plan = {"schema": "kmcflow.campaign_plan", "schema_version": 1, "name": spec.name,
                "spec": spec.model_dump(mode="json"),
                "calculator": config.model_dump(mode="json"), "sections": sections,
                "profile": profile.name, "hops": hops}
        write_text(tmp / "campaign.yaml", yaml.safe_dump(spec.model_dump(mode="json")))
        write_text(tmp / "profile.yaml", yaml.safe_dump(profile.model_dump(mode="json")))
        (tmp / "logs").mkdir(exist_ok=True)
        command = ["python", "-m", "kmcflow.hpc.task", str(out), "{index}"]
        if len(hops) > 1 or profile.scheduler == "slurm":  # PBS arrays need two tasks or more
            write_text(tmp / "scripts" / "array.sh",
                       render_script(profile, f"{spec.name}_hops"[:64], out, command,
                                     n_tasks=len(hops)))
        write_marker(tmp, "campaign_folder")
        write_json(tmp / PLAN, plan)
    return plan


def load_plan(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``plan.json`` of a prepared campaign."""
    from kmcflow.readers import read_json

    path = Path(out_dir) / PLAN
    if not path.is_file():
        raise SchedulerError("not a prepared campaign folder (no plan.json)", file=str(path),
                             hint="run `kmcflow campaign prepare` first")
    hint = "prepare the campaign again in a new folder"
    plan = read_json(path, error=SchedulerError, what="campaign plan", hint=hint)
    if not isinstance(plan, dict) or not isinstance(plan.get("name"), str) or not all(
            isinstance(plan.get(k), dict) for k in ("spec", "sections", "calculator")):
        raise SchedulerError("not a campaign plan (name, spec, sections and calculator "
                             "expected)", file=str(path), hint=hint)
    hops = plan.get("hops")
    shapes = {"index": int, "folder": str, "event_key": str, "origin": str, "record": dict}
    if not isinstance(hops, list) or not all(
            isinstance(h, dict) and all(isinstance(h.get(k), t) for k, t in shapes.items())
            for h in hops):
        raise SchedulerError("not a campaign plan (no list of hops with index, folder, "
                             "event_key, origin and record)", file=str(path), hint=hint)
    root = Path(out_dir).resolve()
    for position, hop in enumerate(hops):
        folder = (root / hop["folder"]).resolve()
        if hop["index"] != position or Path(hop["folder"]).is_absolute() or \
                root not in folder.parents:
            raise SchedulerError(f"hop {position} of the plan names the folder "
                                 f"{hop['folder']!r}, which is not its own folder inside the "
                                 "campaign", file=str(path), field=f"hops[{position}]",
                                 hint=hint)
    return plan


def read_record(path: Path) -> dict[str, Any] | None:
    """A task record (a JSON object), None if absent, ``{"damaged": why}`` if unreadable."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        return {"damaged": f"{path.name} is unreadable ({type(exc).__name__})"}
    if not isinstance(data, dict):
        return {"damaged": f"{path.name} is not a JSON object"}
    return data


@dataclass(frozen=True)
class Outcome:
    """What the latest attempt of a task left in its folder.

    ``state`` is ``done`` (a successful result), ``failed`` (a failure record or a result that
    carries a failure reason), ``started`` (the attempt began and has written nothing since:
    still running, or killed without warning) or ``none`` (never started). ``result`` is the
    result record of the latest attempt (successful or failed), if it wrote one.
    """

    state: str
    reason: str | None = None
    message: str = ""
    result: dict[str, Any] | None = None


def latest_outcome(folder: Path) -> Outcome:
    """Read a task folder, believing only the records of its latest attempt (module docstring).

    A record belongs to the latest attempt when its ``attempt`` equals the one in
    ``started.json`` (folders written before attempts had ids carry none on either side).
    """
    started = read_record(folder / STARTED)
    result = read_record(folder / RESULT)
    failure = read_record(folder / FAILURE)
    for record in (started, result, failure):
        if record is not None and "damaged" in record:
            return Outcome("failed", "damaged_record", record["damaged"] + "; `kmcflow campaign "
                           "resume` runs the hop again")
    attempt = None if started is None else started.get("attempt")

    def latest(record: dict[str, Any] | None) -> bool:
        return record is not None and record.get("attempt") == attempt

    if latest(result) and not result.get("failure_reason"):
        return Outcome("done", result=result)
    if latest(failure):
        return Outcome("failed", failure.get("failure_reason") or "job_error",
                       str(failure.get("message", "")), result if latest(result) else None)
    if latest(result):
        return Outcome("failed", str(result["failure_reason"]),
                       str(result.get("failure_message", "")), result)
    if started is not None:
        return Outcome("started")
    return Outcome("none")


def hop_states(out_dir: str | os.PathLike[str], *, ask_scheduler: bool = True,
               scheduler=None) -> list[dict[str, Any]]:
    """State of every hop: ``pending``, ``running``, ``done`` or ``failed`` (with a reason).

    The result files decide done and failed; for submitted hops the scheduler decides queued
    (state ``pending``, reason ``queued``) and running. A hop whose job the scheduler no longer
    lists but that left neither a result nor a failure record failed with ``no_result``
    (killed without warning: out of memory, a node failure) or ``never_started`` (cancelled
    while queued). Without a reachable scheduler (``ask_scheduler=False``, or the command is
    missing) the files alone decide and a started hop reads ``running``.
    """
    out = Path(out_dir)
    plan = load_plan(out)
    submitted = latest_task_ids(out)
    active: dict[str, str] | None = None
    if ask_scheduler and submitted:
        try:
            active = active_tasks(out, scheduler)
        except SchedulerError:
            active = None
    states = []
    for hop in plan["hops"]:
        index = hop["index"]
        folder = out / hop["folder"]
        job = submitted.get(index)
        state, reason, message = "pending", "not submitted" if job is None else None, ""
        outcome = latest_outcome(folder)
        if outcome.state == "done":
            state, reason = "done", None
        elif active is not None and job in active:
            state = "running" if active[job] == "running" else "pending"
            reason = None if state == "running" else "queued"
        elif outcome.state == "failed":
            state, reason, message = "failed", outcome.reason, outcome.message
        elif outcome.state == "started":
            if active is None or job is None:
                state = "running"
            else:
                state, reason = "failed", "no_result"
                message = ("the job ended without writing a result (killed without warning: "
                           "out of memory, node failure)")
        elif job is not None and active is not None:
            state, reason = "failed", "never_started"
            message = ("the job left the queue before its task started (cancelled, or the "
                       "batch script failed: see the logs/ folder)")
        elif job is not None:
            reason = "submitted"
        states.append({"index": index, "event_key": hop["event_key"], "origin": hop["origin"],
                       "state": state, "reason": reason, "message": message, "job": job})
    return states


def collect(out_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Assemble the finished hops into ``DIR/catalog.json`` (and ``DIR/report.json``).

    Finished reference calculations go to ``DIR/references.json``; a campaign of references
    only writes that file and returns an empty catalog.
    """
    from kmcflow.workflows.assembly import assemble_catalog, failure_list

    out = Path(out_dir)
    plan = load_plan(out)
    outcomes = {t["index"]: latest_outcome(out / t["folder"]) for t in plan["hops"]}
    refs = [outcomes[t["index"]].result for t in plan["hops"]
            if t.get("kind") == "reference" and outcomes[t["index"]].state == "done"]
    if refs:
        write_json(out / "references.json", [{k: v for k, v in r.items() if k != "code_output"}
                                             for r in refs])
    hops_only = [t for t in plan["hops"] if t.get("kind", "hop") == "hop"]
    if not hops_only:
        return {}, {"failed": [], "references": len(refs)}
    results = []
    for hop in hops_only:
        outcome = outcomes[hop["index"]]
        if outcome.result is not None:  # the latest attempt's result, successful or failed
            results.append(outcome.result)
        elif outcome.state == "failed":
            results.append({"event_key": hop["event_key"], "hop": hop["record"],
                            "failure_reason": outcome.reason,
                            "failure_message": outcome.message})
        else:
            results.append({"event_key": hop["event_key"], "hop": hop["record"],
                            "failure_reason": "missing", "failure_message":
                            "no result from the latest attempt (pending, running, or killed "
                            "without warning)"})
    spec = plan["spec"]
    try:
        catalog, report = assemble_catalog(
            results, plan["sections"], name=plan["name"], conditions=spec.get("conditions"),
            allow_mixed_theory=spec.get("allow_mixed_theory", False))
    except KmcflowError:  # nothing to assemble: the report of the failures is still written
        write_json(out / "report.json", {"n_results": len(results), "n_events": 0,
                                         "failed": failure_list(results)})
        raise
    write_json(out / "catalog.json", catalog)
    write_json(out / "report.json", report)
    return catalog, report
