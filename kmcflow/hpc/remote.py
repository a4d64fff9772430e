"""jobflow-remote for sites that already run MongoDB.

:func:`project_dict` turns a cluster profile into a jobflow-remote project: one ``local``
worker (jobs submitted with the profile's scheduler and resources from the machine the runner
runs on), an execution config with the profile's modules, environment and launch commands,
and the queue and job stores in the user's MongoDB (``--mongo URL``). :func:`write_project`
validates it with jobflow-remote's own ``Project`` model before it writes the YAML.
:func:`submit_remote` submits the campaign flow (every hop flow, then the catalog assembly)
with the profile's resources. The direct backend (:mod:`kmcflow.hpc.submit`) needs no database
and is the default.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from kmcflow.atomic_io import write_text
from kmcflow.errors import SchedulerError
from kmcflow.hpc.profiles import LAUNCH_VARIABLES, ClusterProfile, format_walltime

DEFAULT_MONGO = "mongodb://localhost:27017/kmcflow"


def _mongo_store(url: str, collection: str) -> dict[str, Any]:
    parsed = urlparse(url)
    if parsed.scheme not in ("mongodb", "mongodb+srv") or not parsed.hostname:
        raise SchedulerError(f"{url!r} is not a MongoDB URL", field="--mongo",
                             hint="e.g. mongodb://user:password@host:27017/database")
    store = {"type": "MongoStore", "host": parsed.hostname, "port": parsed.port or 27017,
             "database": parsed.path.strip("/") or "kmcflow", "collection_name": collection}
    if parsed.username:
        store.update(username=parsed.username, password=parsed.password or "")
    return store


def resources(profile: ClusterProfile) -> dict[str, Any]:
    """The profile's request in qtoolkit's template keys (what a jobflow-remote worker takes)."""
    if profile.scheduler == "slurm":
        res: dict[str, Any] = {"nodes": profile.nodes, "ntasks_per_node": profile.tasks_per_node,
                               "cpus_per_task": profile.cpus_per_task,
                               "time": format_walltime(profile.walltime_s)}
        for key in ("partition", "account", "qos"):
            if getattr(profile, key):
                res[key] = getattr(profile, key)
        if profile.memory_GB:
            res["mem"] = f"{round(profile.memory_GB * 1024)}M"
        return res
    ncpus = profile.tasks_per_node * profile.cpus_per_task
    select = f"select={profile.nodes}:ncpus={ncpus}:mpiprocs={profile.tasks_per_node}"
    if profile.memory_GB:
        select += f":mem={round(profile.memory_GB * 1024)}mb"
    res = {"select": select, "walltime": format_walltime(profile.walltime_s)}
    if profile.partition:
        res["queue"] = profile.partition
    if profile.account:
        res["account"] = profile.account
    return res


def project_dict(profile: ClusterProfile, name: str, work_dir: str | os.PathLike[str],
                 mongo_url: str = DEFAULT_MONGO) -> dict[str, Any]:
    """A jobflow-remote project (as a mapping) from a cluster profile."""
    work = Path(work_dir).resolve()
    export = dict(profile.environment)
    export.update({LAUNCH_VARIABLES[code]: command for code, command in profile.launchers.items()})
    pre_run = f"source {shlex.quote(profile.activate)}" if profile.activate else None
    outputs = _mongo_store(mongo_url, "outputs")
    return {
        "name": name,
        "base_dir": str(work / "jfremote"),
        "workers": {profile.name: {
            "type": "local", "scheduler_type": profile.scheduler,
            "work_dir": str(work / "jobs"), "resources": resources(profile),
            "pre_run": pre_run, "max_jobs": profile.array_max_parallel}},
        "exec_config": {profile.name: {"modules": list(profile.modules) or None,
                                       "export": export or None}},
        "queue": {"store": _mongo_store(mongo_url, "jobs")},
        "jobstore": {"docs_store": outputs,
                     "additional_stores": {"data": {**outputs, "type": "GridFSStore",
                                                    "collection_name": "outputs_blobs"}}},
    }


def write_project(data: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Validate ``data`` with jobflow-remote's ``Project`` model, then write it as YAML."""
    try:
        from jobflow_remote.config.base import Project
    except ImportError as exc:
        raise SchedulerError("jobflow-remote is not installed",
                             hint="pip install 'kmcflow[hpc]'") from exc
    from pydantic import ValidationError

    try:
        Project.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SchedulerError(f"jobflow-remote refuses the project: {first['msg']}",
                             field=".".join(str(x) for x in first["loc"])) from exc
    target = Path(path)
    write_text(target, yaml.safe_dump(data, sort_keys=False))
    return target


def submit_remote(spec, profile: ClusterProfile, out_dir: str | os.PathLike[str], *,
                  mongo_url: str = DEFAULT_MONGO, submit: bool = True) -> Path:
    """Write and validate the project file; with ``submit``, submit the campaign flow.

    The project file is ``OUT/jfremote/<name>.yaml``; jobflow-remote finds it through
    ``JFREMOTE_PROJECTS_FOLDER`` (set here for the submission; set it, or copy the file to
    ``~/.jfremote/``, to run ``jf runner start`` and ``jf job list``).
    """
    out = Path(out_dir).resolve()
    name = f"kmcflow_{spec.name}"
    project = write_project(project_dict(profile, name, out, mongo_url),
                            out / "jfremote" / f"{name}.yaml")
    if not submit:
        return project
    _check_mongo(mongo_url)
    import jobflow_remote

    # jobflow-remote reads JFREMOTE_PROJECTS_FOLDER once, when it is first imported (which
    # write_project has done): point its live settings at the project written here
    os.environ["JFREMOTE_PROJECTS_FOLDER"] = str(project.parent)
    os.environ["JFREMOTE_PROJECT"] = name
    jobflow_remote.SETTINGS.projects_folder = str(project.parent)
    jobflow_remote.SETTINGS.project = name
    submit_flow = jobflow_remote.submit_flow

    from kmcflow.workflows.calculators import load_calculator_config
    from kmcflow.workflows.campaign import hop_flow_maker, plan_hops
    from kmcflow.workflows.flows import CampaignFlowMaker

    planned, sections = plan_hops(spec)
    maker = CampaignFlowMaker(hop_maker=hop_flow_maker(spec,
                                                       load_calculator_config(spec.calculator)))
    flow = maker.make([(h.initial, h.final, h.record) for h in planned], sections, spec.name,
                      {"conditions": spec.conditions_record()})
    # the execution config carries the profile's modules, environment and DFT launch
    # commands: without it the jobs would run with none of them
    submit_flow(flow, worker=profile.name, project=name, exec_config=profile.name,
                resources=resources(profile))
    return project


def _check_mongo(url: str, timeout_ms: int = 3000) -> None:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    try:
        MongoClient(url, serverSelectionTimeoutMS=timeout_ms).admin.command("ping")
    except PyMongoError as exc:
        raise SchedulerError(f"MongoDB at {urlparse(url).hostname} does not answer: the "
                             "jobflow-remote backend needs it", field="--mongo",
                             hint="start MongoDB or use --backend direct (no database)") from exc
