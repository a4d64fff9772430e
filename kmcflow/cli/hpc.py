"""Command-line commands for campaigns on a batch scheduler (``kmcflow campaign ...``).

``prepare`` writes the campaign folder; ``submit`` prepares (if needed) and submits the hops as
a job array plus a dependent collect job; ``status`` shows each hop's state from the scheduler
and the result files; ``resume`` resubmits what is missing or failed; ``collect`` assembles
whatever finished. Thin: parse, call :mod:`kmcflow.hpc`, print.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kmcflow.cli.console import err, out

CampaignArg = Annotated[Path, typer.Argument(help="Campaign YAML.", show_default=False)]
ProfileOpt = Annotated[Path, typer.Option("--profile", help="Cluster profile YAML (hpc_configs/).",
                                          show_default=False)]
Walltime = Annotated[str | None, typer.Option(
    "--walltime", help="Walltime of each hop job for this submission (HH:MM:SS, D-HH:MM:SS "
    "or seconds); default: the profile's.", show_default=False)]


def _print_submission(record, folder: Path) -> None:
    n = len(record["tasks"])
    out.print(f"submitted {n} hop{'s' * (n != 1)} as job {', '.join(record['jobs'])} "
              f"({record['scheduler']}); collect job {record['collect_job']} runs when they "
              f"end. Watch: kmcflow campaign status {folder}")


def campaign_prepare(
    campaign: CampaignArg,
    profile: ProfileOpt,
    write: Annotated[Path, typer.Option("--out", help="Campaign folder to create.",
                                        show_default=False)],
) -> None:
    """Write a self-contained campaign folder: one folder per hop and the array job script.

    Example: kmcflow campaign prepare cu_ni.yaml --profile hpc_configs/local_slurm.yaml --out cu_ni
    """
    from kmcflow.hpc.campaign_dir import prepare_campaign
    from kmcflow.hpc.profiles import load_profile
    from kmcflow.workflows.campaign import load_campaign

    prof = load_profile(profile)
    spec = load_campaign(campaign)
    with err.status("planning hops and writing endpoints"):
        plan = prepare_campaign(spec, prof, write)
    out.print(f"prepared {len(plan['hops'])} hops in {write}; array script "
              f"{write}/scripts/array.sh (task i runs `python -m kmcflow.hpc.task {write} i`)")


def campaign_submit(
    campaign: CampaignArg,
    profile: ProfileOpt,
    write: Annotated[Path, typer.Option("--out", help="Campaign folder (created if absent).",
                                        show_default=False)],
    walltime: Walltime = None,
    only: Annotated[str | None, typer.Option(
        "--only", help="Submit these hop indices only (e.g. 0,2,5).",
        show_default=False)] = None,
    backend: Annotated[str, typer.Option(
        "--backend", help="direct (sbatch/qsub, no database) or jobflow-remote (needs "
        "MongoDB).")] = "direct",
    project_only: Annotated[bool, typer.Option(
        "--project-only", help="jobflow-remote: write and validate the project file, do not "
        "submit.")] = False,
    mongo: Annotated[str, typer.Option(
        "--mongo", help="jobflow-remote: MongoDB URL of the queue and the job store.")
    ] = "mongodb://localhost:27017/kmcflow",
) -> None:
    """Submit a campaign: one array task per hop, then a job that collects the catalog.

    Example: kmcflow campaign submit cu_ni.yaml --profile hpc_configs/local_slurm.yaml --out cu_ni
    """
    from kmcflow.errors import SchedulerError
    from kmcflow.hpc.campaign_dir import PLAN, prepare_campaign
    from kmcflow.hpc.profiles import load_profile
    from kmcflow.hpc.submit import submit_hops
    from kmcflow.workflows.campaign import load_campaign

    prof = load_profile(profile)
    spec = load_campaign(campaign)
    if backend == "jobflow-remote":
        from kmcflow.hpc.remote import submit_remote

        project = submit_remote(spec, prof, write, mongo_url=mongo, submit=not project_only)
        out.print(f"wrote and validated jobflow-remote project {project}"
                  + ("" if project_only else "; submitted the campaign flow (jf job list)"))
        return
    if backend != "direct":
        raise SchedulerError(f"unknown backend {backend!r}", field="--backend",
                             hint="use direct or jobflow-remote")
    # everything that can be checked is checked before the folder is prepared
    indices = parse_only(only)
    if walltime is not None:
        from kmcflow.hpc.profiles import walltime_seconds

        try:
            walltime_seconds(walltime)
        except ValueError as exc:
            raise SchedulerError(str(exc), field="--walltime",
                                 hint="HH:MM:SS, D-HH:MM:SS or seconds") from exc
    from kmcflow.hpc.scheduler import submit_command

    submit_command(prof.scheduler)  # sbatch/qsub on PATH, or one line saying it is not
    if (write / PLAN).is_file():
        from kmcflow.hpc.campaign_dir import load_plan
        from kmcflow.hpc.submissions import load_submissions

        if load_plan(write)["spec"] != spec.model_dump(mode="json"):
            raise SchedulerError(f"{write} holds a campaign prepared from other settings than "
                                 f"{campaign}", field="--out", hint="submit into a new folder, "
                                 "or use `kmcflow campaign resume` on this one")
        if indices is None and load_submissions(write):
            raise SchedulerError(f"{write} was submitted before: submitting every hop again "
                                 "would queue the same hops twice", field="--only",
                                 hint="use `kmcflow campaign resume` (the missing and failed "
                                 "hops), or --only for chosen hops")
    else:
        with err.status("planning hops and writing endpoints"):
            prepare_campaign(spec, prof, write, only=indices)
    _print_submission(submit_hops(write, indices, walltime=walltime), write)


def parse_only(only: str | None) -> list[int] | None:
    """The hop indices of ``--only`` (non-negative integers), or None."""
    from kmcflow.errors import SchedulerError

    if not only:
        return None
    try:
        indices = [int(x) for x in only.split(",") if x.strip()]
    except ValueError as exc:
        raise SchedulerError(f"--only {only!r} is not a list of hop indices", field="--only",
                             hint="e.g. --only 0,2,5") from exc
    if not indices or min(indices) < 0:
        raise SchedulerError(f"--only {only!r} names no hop (indices count from 0)",
                             field="--only", hint="e.g. --only 0,2,5")
    return indices


def campaign_resume(
    folder: Annotated[Path, typer.Argument(help="A submitted campaign folder.",
                                           show_default=False)],
    walltime: Walltime = None,
) -> None:
    """Resubmit only the hops that are missing or failed; they continue from checkpoints."""
    from kmcflow.hpc.submit import resume

    record = resume(folder, walltime=walltime)
    if record is None:
        out.print("nothing to resume: every hop is done, queued or running")
        return
    _print_submission(record, folder)


def campaign_status(
    folder: Annotated[Path, typer.Argument(help="A prepared campaign folder.",
                                           show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record per hop.")] = False,
) -> None:
    """Show each hop's state (pending, running, done, failed with its reason)."""
    from kmcflow.hpc.campaign_dir import hop_states

    states = hop_states(folder)
    if as_json:
        print(json.dumps(states, indent=2))
        return
    table = Table("hop", "event key", "origin", "job", "state", "reason")
    for s in states:
        table.add_row(str(s["index"]), s["event_key"], s["origin"], s["job"] or "",
                      s["state"], s["reason"] or "")
    out.print(table)
    counts = {k: sum(1 for s in states if s["state"] == k)
              for k in ("done", "failed", "running", "pending")}
    out.print(", ".join(f"{v} {k}" for k, v in counts.items()))


def campaign_collect(
    folder: Annotated[Path, typer.Argument(help="A prepared campaign folder.",
                                           show_default=False)],
) -> None:
    """Assemble the finished hops into FOLDER/catalog.json (failed and missing ones listed)."""
    from kmcflow.hpc.campaign_dir import collect

    catalog, report = collect(folder)
    out.print(f"wrote {folder}/catalog.json with {len(catalog['events'])} events")
    for f in report["failed"]:
        err.print(f"[yellow]not in the catalog[/yellow] {f['event_key']}: "
                  f"{f['failure_reason']} {f['message']}")
