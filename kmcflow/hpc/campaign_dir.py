"""A campaign as a self-contained directory: one folder per hop, run by batch array tasks.

Layout written by :func:`prepare_campaign`::

    DIR/plan.json                 campaign settings, catalog sections, one record per hop
    DIR/campaign.yaml             the campaign file as validated
    DIR/profile.yaml              the cluster profile as validated
    DIR/hops/hop_NNN/initial.json, final.json   endpoint structures (pymatgen JSON)
    DIR/scripts/array.sh          the array job (task i runs hop i)
    DIR/logs/                     scheduler output

:func:`run_task` (``python -m kmcflow.hpc.task DIR INDEX``, what each array task runs) computes
one hop with ``jobflow.run_locally`` and a file store of its own inside the hop folder (array
tasks never share a store file), then writes ``result.json`` atomically, or ``failure.json``
with the reason. :func:`hop_states` reads the folders back (pending, running, done, failed) and
:func:`collect` assembles whatever finished into ``DIR/catalog.json``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

import yaml

from kmcflow.atomic_io import write_json, write_text
from kmcflow.errors import ConfigError, SchedulerError

PLAN = "plan.json"
RESULT = "result.json"
FAILURE = "failure.json"
STARTED = "started.json"


def _hop_dir(out: Path, index: int) -> Path:
    return out / "hops" / f"hop_{index:03d}"


def prepare_campaign(spec, profile, out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Plan the hops and write the campaign directory and its array script."""
    from kmcflow.hpc.scripts import render_script
    from kmcflow.structures.io import LabelledStructure, write_json_structure
    from kmcflow.workflows.calculators import check_ready, load_calculator_config
    from kmcflow.workflows.campaign import plan_hops

    out = Path(out_dir).resolve()
    if (out / PLAN).exists():
        raise SchedulerError("a campaign is already prepared here", file=str(out / PLAN),
                             hint="use `kmcflow campaign status` or choose another folder")
    config = load_calculator_config(spec.calculator)
    check_ready(config, sorted(set(spec.species)))
    planned, sections = plan_hops(spec)
    hops = []
    for k, hop in enumerate(planned):
        folder = _hop_dir(out, k)
        folder.mkdir(parents=True, exist_ok=True)
        for name, structure in (("initial", hop.initial), ("final", hop.final)):
            write_json_structure(LabelledStructure(structure, name, "plan"),
                                 folder / f"{name}.json")
        hops.append({"index": k, "event_key": hop.record["event_key"],
                     "origin": hop.origin, "folder": str(folder.relative_to(out)),
                     "record": hop.record})
    plan = {"schema": "kmcflow.campaign_plan", "schema_version": 1, "name": spec.name,
            "spec": spec.model_dump(mode="json"), "calculator": config.model_dump(mode="json"),
            "sections": sections, "profile": profile.name, "hops": hops}
    write_text(out / "campaign.yaml", yaml.safe_dump(spec.model_dump(mode="json")))
    write_text(out / "profile.yaml", yaml.safe_dump(profile.model_dump(mode="json")))
    (out / "logs").mkdir(exist_ok=True)
    command = ["python", "-m", "kmcflow.hpc.task", str(out), "{index}"]
    if len(hops) > 1 or profile.scheduler == "slurm":  # PBS arrays need two tasks or more
        write_text(out / "scripts" / "array.sh",
                   render_script(profile, f"{spec.name}_hops"[:64], out, command,
                                 n_tasks=len(hops)))
    write_json(out / PLAN, plan)
    return plan


def load_plan(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Read ``plan.json`` of a prepared campaign."""
    path = Path(out_dir) / PLAN
    if not path.is_file():
        raise SchedulerError("not a prepared campaign folder (no plan.json)", file=str(path),
                             hint="run `kmcflow campaign prepare` first")
    return json.loads(path.read_text(encoding="utf-8"))


def run_task(out_dir: str | os.PathLike[str], index: int) -> dict[str, Any]:
    """Compute hop ``index`` of a prepared campaign (what one array task does)."""
    import warnings

    from jobflow import run_locally
    from pymatgen.core import Structure

    from kmcflow.workflows.calculators import load_calculator_config
    from kmcflow.workflows.campaign import CampaignSpec, _store, find_done, hop_flow_maker
    from kmcflow.workflows.flows import cache_key

    warnings.filterwarnings("ignore", message="Use contextlib.chdir")
    out = Path(out_dir).resolve()
    plan = load_plan(out)
    if not 0 <= index < len(plan["hops"]):
        raise SchedulerError(f"no hop {index}: the plan has {len(plan['hops'])}",
                             file=str(out / PLAN), field="index")
    hop = plan["hops"][index]
    folder = out / hop["folder"]
    write_json(folder / STARTED, {"index": index, "pid": os.getpid(),
                                  "job_id": os.environ.get("SLURM_JOB_ID")
                                  or os.environ.get("PBS_JOBID")})
    for stale in (FAILURE,):
        (folder / stale).unlink(missing_ok=True)
    try:
        spec = CampaignSpec.model_validate(plan["spec"])
        maker = hop_flow_maker(spec, load_calculator_config(plan["calculator"]))
        # a task killed by its walltime continues its band from here when run again
        maker.neb_maker.checkpoint_dir = str(folder / "neb_checkpoint")
        initial, final = (Structure.from_dict(json.loads((folder / f"{n}.json").read_text()))
                          for n in ("initial", "final"))
        store = _store(folder)
        key = cache_key(hop["record"], initial, final, maker.settings())
        result = find_done(store, key)
        if result is None:
            run_locally(maker.make(initial, final, hop["record"]), store=store,
                        create_folders=True, root_dir=str(folder / "jobs"), log=False)
            result = find_done(store, key, include_failed=True)
        if result is None:
            raise RuntimeError("the hop flow stopped before its result job (see jobs/)")
    except Exception as exc:
        failure = {"index": index, "event_key": hop["event_key"],
                   "failure_reason": "job_error", "message": f"{type(exc).__name__}: {exc}",
                   "traceback": traceback.format_exc()}
        write_json(folder / FAILURE, failure)
        return failure
    from kmcflow.workflows.output import json_safe

    result = json_safe(dict(result))
    if result.get("failure_reason"):
        write_json(folder / FAILURE, {"index": index, "event_key": hop["event_key"],
                                      "failure_reason": result["failure_reason"],
                                      "message": result.get("failure_message", "")})
    write_json(folder / RESULT, result)
    return result


def hop_states(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """State of every hop from its folder: pending, running, done or failed (with reason)."""
    out = Path(out_dir)
    plan = load_plan(out)
    states = []
    for hop in plan["hops"]:
        folder = out / hop["folder"]
        state, reason = "pending", None
        if (folder / FAILURE).is_file():
            state = "failed"
            reason = json.loads((folder / FAILURE).read_text()).get("failure_reason")
        elif (folder / RESULT).is_file():
            state = "done"
        elif (folder / STARTED).is_file():
            state = "running"
        states.append({"index": hop["index"], "event_key": hop["event_key"],
                       "origin": hop["origin"], "state": state, "reason": reason})
    return states


def collect(out_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Assemble the finished hops into ``DIR/catalog.json`` (and ``DIR/report.json``)."""
    from kmcflow.workflows.assembly import assemble_catalog

    out = Path(out_dir)
    plan = load_plan(out)
    results = []
    for hop in plan["hops"]:
        path = out / hop["folder"] / RESULT
        if path.is_file():
            results.append(json.loads(path.read_text()))
        else:
            results.append({"event_key": hop["event_key"], "hop": hop["record"],
                            "failure_reason": "missing", "failure_message":
                            "no result yet (pending, running or failed)"})
    spec = plan["spec"]
    catalog, report = assemble_catalog(results, plan["sections"], name=plan["name"],
                                       conditions=spec.get("conditions"),
                                       allow_mixed_theory=spec.get("allow_mixed_theory", False))
    write_json(out / "catalog.json", catalog)
    write_json(out / "report.json", report)
    return catalog, report


def task_main(argv: list[str] | None = None) -> int:
    """Run one hop: ``python -m kmcflow.hpc.task DIR INDEX``.

    Exits 0 even when the hop failed (the reason is in ``failure.json``), 2 on bad arguments.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not args[1].lstrip("-").isdigit():
        print("usage: python -m kmcflow.hpc.task CAMPAIGN_DIR INDEX", file=sys.stderr)
        return 2
    try:
        result = run_task(args[0], int(args[1]))
    except (SchedulerError, ConfigError) as exc:
        print(f"kmcflow: error: {exc.one_line()}", file=sys.stderr)
        return 2
    state = "failed: " + str(result.get("failure_reason")) if result.get("failure_reason") \
        else "done"
    print(f"hop {args[1]} {result.get('event_key')}: {state}")
    return 0
