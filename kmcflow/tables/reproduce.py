"""Reproduce a published barrier table: check its rates, recompute its recipes, pair rows.

:func:`reproduce_table` is what ``kmcflow reproduce TABLE`` prints: every row's published rate
against nu exp(-E_a / k_B T) (:func:`kmcflow.tables.check.check_row`), the barrier recomputed
by CI-NEB where the row has a recipe and a calculator is available, and detailed balance of
forward/reverse pairs. A failed band is a noted row (``recompute_failure``), never a barrier.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmcflow.errors import ConfigError, KmcflowError
from kmcflow.tables.check import (
    DEFAULT_TOLERANCE_FACTOR,
    DEFAULT_ZERO_RATE_PER_S,
    check_pairs,
    check_row,
)
from kmcflow.tables.table import BarrierTable, read_table

DEFAULT_BARRIER_TOLERANCE_EV = 0.05
"""A recomputed barrier further than this (eV) from the published one makes its row disagree."""


@dataclass
class Reproduction:
    """The checked table: one record per row (the keys ``--json`` prints) and the pairs."""

    table: BarrierTable
    tolerance_factor: float
    barrier_tolerance_eV: float
    rows: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def disagreeing(self) -> list[dict[str, Any]]:
        """Rows whose rate or recomputed barrier disagrees with the publication."""
        return [r for r in self.rows if r["disagrees"]]

    @property
    def not_recomputed(self) -> list[dict[str, Any]]:
        """Rows with a recipe and no recomputed barrier (not run, bad recipe, failed band).

        ``recompute_note`` says why. They neither agree nor disagree.
        """
        return [r for r, row in zip(self.rows, self.table.rows, strict=True)
                if row.recipe is not None and "computed_barrier_eV" not in r]

    @property
    def confirmed(self) -> bool:
        """Every rate consistent and every recipe recomputed to within the barrier tolerance."""
        return not self.disagreeing and not self.not_recomputed

    @property
    def recomputed(self) -> dict[str, float]:
        """Recomputed barriers (eV) by event name, for the rows whose band succeeded."""
        return {r["event"]: r["computed_barrier_eV"] for r in self.rows
                if "computed_barrier_eV" in r}

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the whole check."""
        return {"table": self.table.name, "source": self.table.source,
                "file": str(self.table.path), "tolerance_factor": self.tolerance_factor,
                "barrier_tolerance_eV": self.barrier_tolerance_eV, "rows": self.rows,
                "pairs": self.pairs, "n_disagreeing": len(self.disagreeing),
                "n_not_recomputed": len(self.not_recomputed), "confirmed": self.confirmed}


def reproduce_table(
    table: str | os.PathLike[str] | BarrierTable,
    *,
    tolerance_factor: float | None = None,
    zero_rate_per_s: float = DEFAULT_ZERO_RATE_PER_S,
    barrier_tolerance_eV: float = DEFAULT_BARRIER_TOLERANCE_EV,
    recompute: bool = True,
    on_recompute: Callable[[str], Any] | None = None,
) -> Reproduction:
    """Check a barrier table (a file or a read :class:`BarrierTable`).

    ``tolerance_factor`` defaults to the table's own, else
    :data:`~kmcflow.tables.check.DEFAULT_TOLERANCE_FACTOR`. ``on_recompute(event)`` is called
    before each recipe runs (recomputing is a CI-NEB: seconds with EMT, hours with DFT).
    """
    data = table if isinstance(table, BarrierTable) else read_table(table)
    tol = tolerance_factor if tolerance_factor is not None else (data.tolerance_factor
                                                                 or DEFAULT_TOLERANCE_FACTOR)
    if not (tol > 1 and math.isfinite(tol)):
        raise ConfigError("the tolerance factor must exceed 1", field="--tolerance")
    if not (zero_rate_per_s > 0 and math.isfinite(zero_rate_per_s)):
        raise ConfigError(f"--zero-rate must be a positive rate in s^-1, got {zero_rate_per_s}",
                          field="--zero-rate", hint="e.g. --zero-rate 1e-10")
    if not (barrier_tolerance_eV >= 0 and math.isfinite(barrier_tolerance_eV)):
        raise ConfigError("the barrier tolerance must be a non-negative number of eV",
                          field="--barrier-tolerance", hint="e.g. --barrier-tolerance 0.05")
    records = [check_row(r, tol, zero_rate_per_s) for r in data.rows]
    for rec, row in zip(records, data.rows, strict=True):
        if row.recipe is None:
            continue
        if not recompute:
            rec["recompute_note"] = "recipe not run (--no-recompute)"
            continue
        _recompute(rec, row, data, barrier_tolerance_eV, on_recompute)
    for rec in records:
        rec["disagrees"] = rec["consistent"] is False or rec.get("barrier_agrees") is False
    pairs = check_pairs(data, tol)
    for pair in pairs:
        for rec in records:
            if rec["event"] == pair["reverse"]:
                rec["detailed_balance"] = pair
    return Reproduction(data, tol, barrier_tolerance_eV, records, pairs)


def _recompute(rec: dict[str, Any], row, data: BarrierTable, barrier_tolerance_eV: float,
               on_recompute: Callable[[str], Any] | None) -> None:
    try:
        from kmcflow.tables.recipes import recompute_barrier
    except ModuleNotFoundError as exc:  # no workflows extra: the row is checked, not recomputed
        rec["recompute_note"] = (f"recipe not run: recomputing needs the 'workflows' extra "
                                 f"({exc.name} is not installed)")
        return
    if on_recompute is not None:
        on_recompute(row.event)
    with tempfile.TemporaryDirectory(prefix="kmcflow-recipe-") as work:
        try:
            rec.update(recompute_barrier(row.recipe, data.path.parent, Path(work)))
        except KmcflowError as exc:  # a bad recipe or a failed band: noted, not fatal
            rec["recompute_note"] = exc.one_line()
            return
    if "computed_barrier_eV" in rec:  # a failed band has none (recompute_failure says why)
        diff = rec["computed_barrier_eV"] - rec["published_barrier_eV"]
        rec["barrier_difference_eV"] = diff
        rec["barrier_agrees"] = bool(abs(diff) <= barrier_tolerance_eV)
