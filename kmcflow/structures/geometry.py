"""Small geometric helpers shared by the structure modules: normals, layers, image distances.

Conventions: Cartesian coordinates in Angstrom, lattice matrices with the vectors as rows
(pymatgen's and ASE's convention), fractional coordinates ``frac @ matrix = cart``.
"""

from __future__ import annotations

import itertools

import numpy as np


def plane_normal(matrix: np.ndarray) -> np.ndarray:
    """Return the unit normal of the plane spanned by the first two lattice vectors.

    Oriented so that the third lattice vector has a positive component along it.
    """
    m = np.asarray(matrix, dtype=float)
    n = np.cross(m[0], m[1])
    n /= np.linalg.norm(n)
    return n if float(n @ m[2]) > 0 else -n


def height_period(matrix: np.ndarray) -> float:
    """Return the repeat of the heights along the plane normal (the slab cell's thickness)."""
    m = np.asarray(matrix, dtype=float)
    return float(m[2] @ plane_normal(m))


def group_layers(heights: np.ndarray, tolerance_A: float = 0.3) -> np.ndarray:
    """Assign each height to a layer: sorted heights closer than ``tolerance_A`` share one.

    Returns the layer index of each entry, 0 for the lowest layer. Heights are not wrapped:
    call this on a slab whose material does not cross the cell boundary along the normal.
    """
    h = np.asarray(heights, dtype=float)
    if h.size == 0:
        return np.zeros(0, dtype=int)
    order = np.argsort(h, kind="stable")
    steps = np.diff(h[order]) > tolerance_A
    index_sorted = np.concatenate([[0], np.cumsum(steps)])
    layer = np.empty(h.size, dtype=int)
    layer[order] = index_sorted
    return layer


def shortest_lattice_vector(matrix: np.ndarray) -> float:
    """Return the length of the shortest non-zero lattice vector (Angstrom).

    The basis is LLL-reduced first, after which searching integer combinations in
    ``{-2..2}^3`` finds the shortest vector for any cell a crystal structure can have.
    """
    from pymatgen.core import Lattice

    reduced = Lattice(np.asarray(matrix, dtype=float)).get_lll_reduced_lattice().matrix
    best = np.inf
    for combo in itertools.product(range(-2, 3), repeat=3):
        if combo == (0, 0, 0):
            continue
        best = min(best, float(np.linalg.norm(np.asarray(combo, float) @ reduced)))
    return best


def rotation_to_z(matrix: np.ndarray) -> np.ndarray:
    """Return the rotation that puts ``a1`` along x and the plane normal along z.

    Apply as ``cart @ R.T``; the rotated ``a2`` then lies in the x-y plane.
    """
    m = np.asarray(matrix, dtype=float)
    ez = plane_normal(m)
    ex = m[0] - (m[0] @ ez) * ez
    ex /= np.linalg.norm(ex)
    ey = np.cross(ez, ex)
    return np.vstack([ex, ey, ez])
