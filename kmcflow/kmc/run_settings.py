"""The conditions of one kMC run (:class:`RunSettings`), checked like the command-line flags."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from kmcflow.errors import ConfigError
from kmcflow.kmc.catalog import Catalog

MAX_SAMPLES = 100_000
"""More samples than this resolve w(t) no better and fill memory (samples x species x layers)."""


@dataclass(frozen=True)
class RunSettings:
    """Conditions of one run; every field has its unit in its name."""

    cells: tuple[int, int, int]
    temperature_K: float
    vacancy_fraction: float
    steps: int | None
    time_s: float | None
    samples: int
    seed: int
    replica: int = 0


def _is_int(x: object) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


def _is_real(x: object) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def settings_from_catalog(catalog: Catalog, **overrides: object) -> RunSettings:
    """Combine the catalog's ``conditions`` with overrides (None = keep), checked.

    The overrides are :class:`RunSettings` fields (``temperature_K``, ``steps``, ...); an
    unknown name is refused with the known ones.
    """
    known = {f.name for f in fields(RunSettings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(f"unknown run condition {unknown[0]!r}", field=unknown[0],
                          hint=f"use {', '.join(sorted(known))}")
    cond = catalog.conditions
    values = {
        "cells": tuple(cond.cells), "temperature_K": cond.temperature_K,
        "vacancy_fraction": cond.vacancy_fraction, "steps": cond.steps,
        "time_s": cond.time_s, "samples": cond.samples, "seed": cond.seed, "replica": 0,
    }
    if overrides.get("steps") is not None:
        values["time_s"] = None
    if overrides.get("time_s") is not None:
        values["steps"] = None
    values.update({k: v for k, v in overrides.items() if v is not None})
    cells = values["cells"]
    values["cells"] = tuple(cells) if isinstance(cells, list | tuple | np.ndarray) else cells
    return check_run_settings(RunSettings(**values))  # type: ignore[arg-type]


def check_run_settings(s: RunSettings) -> RunSettings:
    """Refuse settings no run can have (one line naming the flag); return them unchanged.

    Counts must be integers (a float of steps or cells is refused, not truncated), numbers
    finite and in range.
    """
    if not (isinstance(s.cells, tuple) and len(s.cells) == 3 and all(_is_int(c) for c in s.cells)
            and min(s.cells) >= 1):
        raise ConfigError(f"--cells needs three positive integers, got {s.cells}", field="cells")
    if (s.steps is None) == (s.time_s is None):
        raise ConfigError("give exactly one of --steps and --time", field="steps/time",
                          hint="for example --steps 1000000")
    if s.steps is not None and not (_is_int(s.steps) and s.steps >= 1):
        raise ConfigError(f"--steps must be a positive integer, got {s.steps!r}", field="steps")
    if s.time_s is not None and not (_is_real(s.time_s) and s.time_s > 0
                                     and math.isfinite(s.time_s)):
        raise ConfigError(f"--time must be a positive number of seconds, got {s.time_s!r}",
                          field="time")
    if not (_is_real(s.temperature_K) and s.temperature_K > 0
            and math.isfinite(s.temperature_K)):
        raise ConfigError(f"--temperature must be a positive number of K, got "
                          f"{s.temperature_K!r}", field="temperature")
    if not (_is_real(s.vacancy_fraction) and 0 < s.vacancy_fraction < 1):
        raise ConfigError(f"--vacancy-fraction must lie in (0, 1), got {s.vacancy_fraction!r}",
                          field="vacancy-fraction")
    if not (_is_int(s.samples) and 2 <= s.samples <= MAX_SAMPLES):
        raise ConfigError(f"--samples must be an integer in 2-{MAX_SAMPLES}, got {s.samples!r}",
                          field="samples", hint="e.g. --samples 21")
    if not (_is_int(s.seed) and s.seed >= 0):
        raise ConfigError(f"--seed must be an integer >= 0, got {s.seed!r}", field="seed")
    if not (_is_int(s.replica) and s.replica >= 0):
        raise ConfigError(f"the replica must be an integer >= 0, got {s.replica!r}",
                          field="replica")
    return s
