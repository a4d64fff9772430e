"""What was submitted from a campaign folder, and what the scheduler still lists of it.

``DIR/submissions.json`` holds one record per submission (job ids, the task id of every hop,
the walltime), written by :mod:`kmcflow.hpc.submit` and read by
:mod:`kmcflow.hpc.campaign_dir` for the hops' states; ``DIR/profile.yaml`` is the cluster
profile the folder was prepared with. This module imports neither of the two.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kmcflow.errors import SchedulerError
from kmcflow.hpc.profiles import ClusterProfile, profile_from_dict
from kmcflow.hpc.scheduler import Scheduler, get_scheduler

SUBMISSIONS = "submissions.json"


def load_submissions(out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The submission records of a campaign folder (empty if nothing was submitted)."""
    from kmcflow.readers import read_json

    path = Path(out_dir) / SUBMISSIONS
    if not path.is_file():
        return []
    hint = "restore it from a backup or remove it (the scheduler's job ids are then forgotten)"
    records = read_json(path, error=SchedulerError, what="submission record", hint=hint)
    if not isinstance(records, list) or not all(
            isinstance(r, dict) and isinstance(r.get("tasks"), dict)
            and isinstance(r.get("jobs"), list) for r in records):
        raise SchedulerError("not a list of submission records", file=str(path), hint=hint)
    return records


def folder_profile(out_dir: str | os.PathLike[str],
                   walltime: str | int | None = None) -> ClusterProfile:
    """The profile stored in the campaign folder, with another walltime if given."""
    from kmcflow.readers import read_yaml

    path = Path(out_dir) / "profile.yaml"
    if not path.is_file():
        raise SchedulerError("not a prepared campaign folder (no profile.yaml)", file=str(path),
                             hint="run `kmcflow campaign prepare` or `campaign submit` first")
    data = read_yaml(path, error=SchedulerError, what="campaign profile")
    if not isinstance(data, dict):
        raise SchedulerError("a cluster profile must be a mapping", file=str(path))
    if walltime is not None:
        data = {**data, "walltime": walltime}
    return profile_from_dict(data, str(path) if walltime is None else "--walltime")


def latest_task_ids(out_dir: str | os.PathLike[str]) -> dict[int, str]:
    """The job (or array task) id of each hop's latest submission."""
    ids: dict[int, str] = {}
    for record in load_submissions(out_dir):
        ids.update({int(k): v for k, v in record["tasks"].items()})
    return ids


def active_tasks(out_dir: str | os.PathLike[str],
                 scheduler: Scheduler | None = None) -> dict[str, str]:
    """Task id -> ``queued``/``running`` for the jobs of this folder the scheduler still lists."""
    records = load_submissions(out_dir)
    if not records:
        return {}
    sched = scheduler or get_scheduler(records[-1]["scheduler"])
    jobs = sorted({j for r in records for j in r["jobs"]})
    return sched.active(jobs)
