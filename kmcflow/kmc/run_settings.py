"""The conditions of one kMC run (:class:`RunSettings`), checked like the command-line flags."""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def settings_from_catalog(catalog: Catalog, **overrides: object) -> RunSettings:
    """Combine the catalog's ``conditions`` with command-line overrides (None = keep)."""
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
    s = RunSettings(**values)  # type: ignore[arg-type]
    if (s.steps is None) == (s.time_s is None):
        raise ConfigError("give exactly one of --steps and --time", field="steps/time",
                          hint="for example --steps 1000000")
    if s.steps is not None and s.steps < 1:
        raise ConfigError(f"--steps must be a positive integer, got {s.steps}", field="steps")
    if s.time_s is not None and not (s.time_s > 0 and math.isfinite(s.time_s)):
        raise ConfigError(f"--time must be a positive number of seconds, got {s.time_s}",
                          field="time")
    if not (s.temperature_K > 0 and math.isfinite(s.temperature_K)):
        raise ConfigError(f"--temperature must be a positive number of K, got "
                          f"{s.temperature_K}", field="temperature")
    if not 0 < s.vacancy_fraction < 1:
        raise ConfigError(f"--vacancy-fraction must lie in (0, 1), got {s.vacancy_fraction}",
                          field="vacancy-fraction")
    if not 2 <= s.samples <= MAX_SAMPLES:
        raise ConfigError(f"--samples must lie in 2-{MAX_SAMPLES}, got {s.samples}",
                          field="samples", hint="e.g. --samples 21")
    if s.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {s.seed}", field="seed")
    if len(s.cells) != 3 or min(s.cells) < 1:
        raise ConfigError(f"--cells needs three positive integers, got {s.cells}", field="cells")
    return s
