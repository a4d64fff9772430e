"""The process grid of a decomposed run: how the x-y cells are split over the ranks.

Only x and y are split (z, the interface normal, stays whole on every rank). A split axis needs
at least ``2 (reach + 1)`` cells per rank, where ``reach`` is how many cells a hop rate depends
on: two sectors per rank, each wider than the reach plus one (see
:mod:`kmcflow.kmc.parallel.domain`).
"""

from __future__ import annotations

from dataclasses import dataclass

from kmcflow.errors import ParallelError


@dataclass(frozen=True)
class ProcessGrid:
    """How the x-y cells are split: rank ``r`` sits at ``(r // py, r % py)``.

    ``x_bounds`` (px + 1,) and ``y_bounds`` (py + 1,) are the first cell of each slab.
    """

    px: int
    py: int
    x_bounds: tuple[int, ...]
    y_bounds: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of ranks."""
        return self.px * self.py

    def coords(self, rank: int) -> tuple[int, int]:
        """Grid coordinates of ``rank``."""
        return rank // self.py, rank % self.py

    def rank_at(self, ix: int, iy: int) -> int:
        """Rank at grid coordinates (periodic)."""
        return (ix % self.px) * self.py + (iy % self.py)


def _bounds(n: int, parts: int) -> tuple[int, ...]:
    return tuple((i * n) // parts for i in range(parts + 1))


def choose_grid(n_ranks: int, cells: tuple[int, int, int], dimension: int, reach_cells: int,
                grid: tuple[int, int] | None = None) -> ProcessGrid:
    """Pick the process grid for ``n_ranks`` (or check the one asked for).

    A split axis needs at least ``2 (reach_cells + 1)`` cells per rank (two sectors each wider
    than the reach of a rate plus one). Among the valid grids the one with the fewest ghost
    cells wins (ties go to more ranks along x).
    """
    nx, ny, _ = cells
    min_cells = 2 * (reach_cells + 1)
    candidates = [grid] if grid is not None else [
        (p, n_ranks // p) for p in range(n_ranks, 0, -1) if n_ranks % p == 0]
    best: tuple[float, tuple[int, int]] | None = None
    problems = []
    for px, py in candidates:
        if px * py != n_ranks:
            problems.append(f"grid {px}x{py} does not use {n_ranks} ranks")
            continue
        if py > 1 and dimension == 2:
            problems.append(f"grid {px}x{py} splits y, which a 2D lattice does not have")
            continue
        if (px > 1 and nx // px < min_cells) or (py > 1 and ny // py < min_cells) or nx < 2:
            problems.append(f"grid {px}x{py} leaves fewer than {min_cells} cells per rank")
            continue
        gx = reach_cells if px > 1 else 0
        gy = reach_cells if py > 1 else 0
        ghost = (nx / px + 2 * gx) * (ny / py + 2 * gy) - (nx / px) * (ny / py)
        key = (ghost, (px, py))
        if best is None or key[0] < best[0]:
            best = key
    if best is None:
        raise ParallelError(
            f"cannot split {nx} x {ny} cells over {n_ranks} ranks: " + "; ".join(problems),
            field="--cells/--grid",
            hint=f"each split axis needs at least {min_cells} cells per rank: use more cells "
                 "or fewer ranks")
    px, py = best[1]
    return ProcessGrid(px, py, _bounds(nx, px), _bounds(ny, py))
