"""Tune a Hubbard U so that a computed property (a band gap) meets a target value.

:func:`tune_u` is the search alone; what computes the property at a given U (a ``pw.x`` SCF
of the cell with that U) is the caller's ``evaluate``. The search:

1. **Grid**: ``n_grid`` evenly spaced U values over ``[u_min_eV, u_max_eV]`` (the points are
   independent: a cluster can run them at once).
2. **Bracket**: a grid point within ``tolerance`` of the target ends the search there;
   otherwise the first pair of neighbouring grid points whose values lie on both sides of
   the target. None: the target is out of reach over the range (the result says so, with the
   range the property spans), never a U clamped to an end. A property that does not rise (or
   fall) monotonically over the grid is reported in ``warnings``: the gap of a Mott insulator
   saturates at large U (AFM NiO with ``pw.x`` here: 3.03 eV at U = 8 eV, 3.17 at 10, 3.14 at
   12), so a target can be met twice or not at all.
3. **Refine** by regula falsi with the Illinois correction (a secant step that keeps the
   bracket) until a computed point lies within ``tolerance`` of the target, or the bracket is
   narrower than ``u_resolution_eV``, or ``max_refinements`` are spent.

The tuned U is a *computed* point (its value is a result, not an interpolation). Its standard
uncertainty combines the target's error and the tolerance, each turned into U through the
local slope (of the final bracket, or of the grid neighbours of a grid point that met the
target): ``sigma_U = sqrt(reference_error^2 + (tolerance/sqrt(3))^2) / |slope|``. A search that
narrows the bracket without meeting the tolerance (a property that jumps) or finds no slope
fails, saying so.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from kmcflow.errors import ConfigError


@dataclass
class ScanPoint:
    """One computed U: the property's value and whatever the evaluation recorded."""

    U_eV: float
    value: float
    stage: str  # "grid" or "refine"
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class UTuning:
    """The search's result: every point, the tuned U (or why there is none)."""

    target: float
    points: list[ScanPoint]
    success: bool
    why: str
    tuned_U_eV: float | None = None
    tuned_value: float | None = None
    U_uncertainty_eV: float | None = None
    slope_per_eV: float | None = None
    warnings: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The result as plain JSON-able data (``calibration.json``)."""
        return asdict(self)


Evaluate = Callable[[float], "float | tuple[float, dict[str, Any]]"]


def check_search(target, u_min_eV, u_max_eV, n_grid, tolerance, reference_error) -> None:
    """Refuse a search that cannot run (one line naming the setting)."""
    checks = [
        (math.isfinite(target), "target", "a finite number"),
        (0.0 <= u_min_eV < u_max_eV <= 15.0, "U range", "0 <= U_min < U_max <= 15 eV"),
        (2 <= n_grid <= 50, "n_grid", "2 to 50 grid points (--points)"),
        (tolerance > 0 and math.isfinite(tolerance), "tolerance", "a positive number"),
        (reference_error >= 0 and math.isfinite(reference_error), "reference_error",
         "zero or a positive number"),
    ]
    for ok, name, fix in checks:
        if not ok:
            raise ConfigError(f"bad {name}", field=name, hint=f"give {fix}")


def tune_u(evaluate: Evaluate, target: float, *, u_min_eV: float = 0.0,
           u_max_eV: float = 10.0, n_grid: int = 4, tolerance: float = 0.05,
           reference_error: float = 0.0, u_resolution_eV: float = 0.05,
           max_refinements: int = 8, progress: Callable[[ScanPoint], None] | None = None
           ) -> UTuning:
    """Search U in ``[u_min_eV, u_max_eV]`` for ``evaluate(U) == target`` (module docstring).

    ``evaluate`` returns the property at U, or ``(value, record)`` to keep provenance with
    the point.
    """
    check_search(target, u_min_eV, u_max_eV, n_grid, tolerance, reference_error)
    points: list[ScanPoint] = []

    def run(u: float, stage: str) -> ScanPoint:
        got = evaluate(u)
        value, record = got if isinstance(got, tuple) else (got, {})
        point = ScanPoint(round(u, 6), float(value), stage, dict(record))
        points.append(point)
        if progress:
            progress(point)
        return point

    step = (u_max_eV - u_min_eV) / (n_grid - 1)
    grid = [run(u_min_eV + i * step, "grid") for i in range(n_grid)]
    values = [p.value for p in grid]
    warnings = []
    steps = [b - a for a, b in itertools.pairwise(values)]
    if not (all(d > 0 for d in steps) or all(d < 0 for d in steps)):
        warnings.append("the property is not monotonic in U over the grid: "
                        + ", ".join(f"{p.value:.4g} at {p.U_eV:g} eV" for p in grid))
    close = [p for p in grid if abs(p.value - target) <= tolerance]
    bracket = next(((a, b) for a, b in itertools.pairwise(grid)
                    if (a.value - target) * (b.value - target) <= 0), None)
    if bracket is None and not close:
        return UTuning(target, points, False,
                       f"the target {target:g} is out of reach: the property spans "
                       f"{min(values):.4g}-{max(values):.4g} for U {u_min_eV:g}-"
                       f"{u_max_eV:g} eV", warnings=warnings)
    refinements = 0
    if close:
        best = min(close, key=lambda p: abs(p.value - target))
        k = grid.index(best)  # the slope there: from its neighbours on the grid
        lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    else:
        lo, hi = bracket
        best = None
        side = 0  # Illinois: halve the weight of an end kept twice in a row
        f_lo, f_hi = lo.value - target, hi.value - target
        for _ in range(max_refinements):
            if hi.U_eV - lo.U_eV <= u_resolution_eV:
                break
            u = (lo.U_eV * f_hi - hi.U_eV * f_lo) / (f_hi - f_lo) if f_hi != f_lo else \
                (lo.U_eV + hi.U_eV) / 2
            u = min(max(u, lo.U_eV + u_resolution_eV / 2), hi.U_eV - u_resolution_eV / 2)
            p = run(u, "refine")
            refinements += 1
            f = p.value - target
            if abs(f) <= tolerance:
                best = p
                break
            if f * f_lo > 0:
                lo, f_lo = p, f
                if side == -1:
                    f_hi /= 2
                side = -1
            else:
                hi, f_hi = p, f
                if side == 1:
                    f_lo /= 2
                side = 1
    slope = (hi.value - lo.value) / (hi.U_eV - lo.U_eV) if hi.U_eV != lo.U_eV else None
    if best is None:
        nearest = min(points, key=lambda p: abs(p.value - target))
        return UTuning(target, points, False,
                       f"no computed U within {tolerance:g} of the target {target:g} after "
                       f"{refinements} refinements (nearest: {nearest.value:.4g} at U = "
                       f"{nearest.U_eV:g} eV; bracket {lo.U_eV:.4g}-{hi.U_eV:.4g} eV: the "
                       "property may jump there)", slope_per_eV=slope, warnings=warnings)
    if not slope:
        return UTuning(target, points, False,
                       f"the property does not change with U near {best.U_eV:g} eV "
                       f"({best.value:.4g} on both sides): U cannot be tuned by it",
                       slope_per_eV=slope, warnings=warnings)
    sigma = math.sqrt(reference_error ** 2 + tolerance ** 2 / 3) / abs(slope)
    return UTuning(target, points, True,
                   f"U = {best.U_eV:.4g} eV gives {best.value:.4g} (target {target:g} +- "
                   f"{tolerance:g})", tuned_U_eV=best.U_eV, tuned_value=best.value,
                   U_uncertainty_eV=sigma, slope_per_eV=slope, warnings=warnings)
