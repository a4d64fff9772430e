"""Cluster profiles: what a batch job asks the scheduler for and how it sets itself up.

A profile is a YAML file (``hpc_configs/*.yaml``) validated on load; every error names the
file and the key. Values that end up in a job script are either restricted to a safe alphabet
(names, partitions, accounts, modules: letters, digits and ``_ . + - /``) or shell-quoted by
:mod:`kmcflow.hpc.scripts` (environment values, launch commands, paths), so nothing in a profile
is ever executed as shell code.

Fields: ``scheduler`` (``slurm`` or ``pbs``; PBS means PBS Pro syntax: ``select`` and ``-J``
arrays), ``partition`` (SLURM partition or PBS queue), ``account``, ``qos``, ``nodes``,
``tasks_per_node``, ``cpus_per_task``, ``memory_GB`` (per node), ``walltime`` (``HH:MM:SS``,
``D-HH:MM:SS`` or seconds), ``modules`` (loaded in order), ``activate`` (a virtual
environment's ``bin/activate`` script, sourced; a relative path is taken from the folder the
campaign is prepared in and stored absolute), ``environment`` (variables exported),
``launchers`` (the launch command of each DFT code run as a program: ``vasp``, ``espresso``,
``cp2k``; exported as ASE's command variable; GPAW, a library, is refused here),
``array_max_parallel`` (at most this many array tasks at once; SLURM only, PBS Pro's ``-J``
has no such limit), ``warning_signal_s`` (SLURM only: ask for ``SIGUSR1`` this many seconds
before the walltime, ``--signal=B:USR1@N``; the task saves and stops cleanly on it. Without it,
and on PBS, the task still traps the ``SIGTERM`` that comes at the walltime, followed by
``SIGKILL`` after the scheduler's grace period: SLURM's ``KillWait``, PBS's ``kill_delay``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kmcflow.errors import SchedulerError

SAFE = r"^[A-Za-z0-9_.+/-]+$"
SAFE_NAME = r"^[A-Za-z0-9_.+-]+$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
LAUNCH_VARIABLES = {"vasp": "ASE_VASP_COMMAND", "espresso": "ASE_ESPRESSO_COMMAND",
                    "cp2k": "ASE_CP2K_COMMAND"}
# GPAW is a Python library: it computes inside the task's own process, so no launch command
# reaches it (a 24-core GPAW hop would silently run on one process); refused, not ignored
NOT_LAUNCHED = {"gpaw": "GPAW runs inside the task's Python process, not as a launched "
                        "program: kmcflow cannot start it under MPI (remove it; GPAW hops "
                        "run serially)"}
MAX_WALLTIME_S = 365 * 24 * 3600
_WALLTIME = re.compile(r"^(?:(\d+)-)?(\d{1,3}):([0-5]\d):([0-5]\d)$")


def walltime_seconds(value: str | int | float) -> int:
    """Parse ``HH:MM:SS``, ``D-HH:MM:SS`` or a number of seconds; refuse zero and negatives."""
    if isinstance(value, bool):
        raise ValueError("walltime must be a duration, not a boolean")
    if isinstance(value, int | float):
        seconds = int(value)
    else:
        text = str(value).strip()
        if text.isdigit():
            seconds = int(text)
        else:
            m = _WALLTIME.match(text)
            if not m:
                raise ValueError(f"walltime {text!r} is not HH:MM:SS, D-HH:MM:SS or seconds")
            days, h, mnt, s = (int(x) if x else 0 for x in m.groups())
            seconds = ((days * 24 + h) * 60 + mnt) * 60 + s
    if seconds <= 0:
        raise ValueError(f"walltime must be positive, got {value!r}")
    if seconds > MAX_WALLTIME_S:
        raise ValueError(f"walltime {value!r} is more than a year")
    return seconds


def format_walltime(seconds: int) -> str:
    """``HH:MM:SS`` (hours may exceed 24), accepted by SLURM and PBS."""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"


class ClusterProfile(BaseModel):
    """A validated cluster profile (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Annotated[str, Field(pattern=SAFE_NAME)]
    scheduler: Literal["slurm", "pbs"]
    partition: Annotated[str, Field(pattern=SAFE_NAME)] | None = None
    account: Annotated[str, Field(pattern=SAFE_NAME)] | None = None
    qos: Annotated[str, Field(pattern=SAFE_NAME)] | None = None
    nodes: Annotated[int, Field(ge=1)] = 1
    tasks_per_node: Annotated[int, Field(ge=1)] = 1
    cpus_per_task: Annotated[int, Field(ge=1)] = 1
    memory_GB: Annotated[float, Field(gt=0)] | None = None
    walltime: str | int = "01:00:00"
    modules: list[Annotated[str, Field(pattern=SAFE)]] = []
    activate: str | None = None
    environment: dict[str, str] = {}
    launchers: dict[str, str] = {}
    array_max_parallel: Annotated[int, Field(ge=1)] | None = None
    warning_signal_s: Annotated[int, Field(ge=1, le=65535)] | None = None
    description: str = ""

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, value):
        walltime_seconds(value)
        return value

    @field_validator("environment")
    @classmethod
    def _env_names(cls, value: dict[str, str]):
        for key in value:
            if not re.match(ENV_NAME, key):
                raise ValueError(f"environment variable name {key!r} is not a shell name")
        return {k: str(v) for k, v in value.items()}

    @field_validator("launchers")
    @classmethod
    def _launchers(cls, value: dict[str, str]):
        for code, command in value.items():
            if code in NOT_LAUNCHED:
                raise ValueError(f"launchers.{code}: {NOT_LAUNCHED[code]}")
            if code not in LAUNCH_VARIABLES:
                raise ValueError(f"unknown code {code!r} in launchers (use "
                                 f"{', '.join(LAUNCH_VARIABLES)})")
            if "\n" in command or not command.strip():
                raise ValueError(f"launch command of {code} must be one non-empty line")
        return value

    @property
    def walltime_s(self) -> int:
        """The walltime in seconds."""
        return walltime_seconds(self.walltime)


def load_profile(path: str | os.PathLike[str]) -> ClusterProfile:
    """Read and validate a profile YAML; errors name the file and the key."""
    from kmcflow.readers import read_yaml

    p = Path(path)
    data = read_yaml(p, error=SchedulerError, what="cluster profile",
                     hint="see hpc_configs/ for the shipped profiles")
    return profile_from_dict(data, str(p))


def profile_from_dict(data, file: str | None = None) -> ClusterProfile:
    """Validate a profile given as a mapping."""
    if not isinstance(data, dict):
        raise SchedulerError("a cluster profile must be a mapping", file=file)
    try:
        return ClusterProfile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or None
        msg = first["msg"].replace("\n", " ")
        if first["type"] == "string_pattern_mismatch":
            msg = f"{first['input']!r} has characters a job script cannot take safely"
        raise SchedulerError(msg, file=file, field=where,
                             hint="use letters, digits and _ . + - only" if "pattern"
                             in first["type"] else None) from exc
