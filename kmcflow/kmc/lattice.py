"""Lattices for the kMC engine: presets, a general Bravais lattice with basis, and site tables.

A lattice is a Bravais cell (rows ``a1, a2, a3`` in Angstrom) with a basis. The interface
normal is z: ``a1`` and ``a2`` lie in the x-y plane and ``a3`` has a positive z component, so
every basis site sits on a plane of constant z (a *layer*). Two-dimensional presets lie in the
x-z plane (``a2`` is a dummy direction with no neighbours) and need ``ny = 1``.

Sites of an ``nx x ny x nz`` block are numbered ``((ix * ny + iy) * nz + iz) * nb + b``. To keep
memory at a few bytes per site the engine stores no neighbour list: each site has a small
*class* (its basis index and whether it sits on a low/high face along each axis), and the
neighbour in slot ``k`` of site ``i`` is ``i + offsets[class[i], k]`` (0 means none, which
happens only at a closed z boundary). A neighbour never lies more than one cell away, and a
periodic axis along which neighbours exist needs at least 3 cells, so a site is never its own
neighbour and two slots never name the same site.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from kmcflow.errors import LatticeError
from kmcflow.resources import check_memory

PRESETS_2D = ("square", "triangular", "honeycomb")
PRESETS_3D = ("sc", "bcc", "fcc", "diamond")
PRESET_NAMES = PRESETS_2D + PRESETS_3D
MIN_LATTICE_A, MAX_LATTICE_A = 0.5, 1000.0
"""Lattice constants and vector lengths outside this (Angstrom) are a unit slip."""
BYTES_PER_SITE_ESTIMATE = 32
"""Memory a simulation needs per lattice site, with margin (about 20 bytes measured)."""

_FCC_BASIS = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]


@dataclass(frozen=True)
class LatticeDefinition:
    """A Bravais cell with a basis, and the facts that depend on it alone.

    Attributes
    ----------
    name
        Preset name, or ``"general"``.
    vectors_A
        (3, 3) rows a1, a2, a3 in Angstrom.
    basis_frac
        (nb, 3) fractional positions of the basis sites.
    dimension
        2 (no neighbours along a2) or 3.
    a_A
        The lattice constant used in reference formulas such as D = f0 c_v w a^2 (the cubic
        constant for sc/bcc/fcc/diamond, the nearest-neighbour distance for square/triangular).
    f0
        Tracer correlation factor of the vacancy mechanism, where known (else NaN).

    """

    name: str
    vectors_A: np.ndarray
    basis_frac: np.ndarray
    dimension: int
    a_A: float
    f0: float = math.nan
    nn_tolerance: float = 0.05

    @property
    def n_basis(self) -> int:
        """Number of basis sites per cell."""
        return int(self.basis_frac.shape[0])


def preset(name: str, a_A: float = 1.0) -> LatticeDefinition:
    """Return a preset lattice with lattice constant ``a_A`` (Angstrom).

    Correlation factors (vacancy mechanism, Compaan and Haven 1956; Montet 1973):
    square 1/(pi - 1) = 0.46694, triangular 0.56006, honeycomb 1/3, sc 0.65311,
    bcc 0.72722, fcc 0.78145, diamond 1/2.
    """
    a = float(a_A)
    if not MIN_LATTICE_A <= a <= MAX_LATTICE_A:
        raise LatticeError(f"lattice constant must lie in {MIN_LATTICE_A:g}-{MAX_LATTICE_A:g} "
                           f"Angstrom, got {a_A}", field="lattice.a_A",
                           hint="give it in Angstrom (e.g. 3.61 for Cu)")
    s3 = math.sqrt(3.0)
    if name == "square":
        vec, basis, dim, f0 = [[a, 0, 0], [0, a, 0], [0, 0, a]], [[0, 0, 0]], 2, 1 / (math.pi - 1)
    elif name == "triangular":
        vec = [[a, 0, 0], [0, a, 0], [a / 2, 0, a * s3 / 2]]
        basis, dim, f0 = [[0, 0, 0]], 2, 0.56006
    elif name == "honeycomb":
        vec = [[a, 0, 0], [0, a, 0], [a / 2, 0, a * s3 / 2]]
        basis, dim, f0 = [[0, 0, 0], [1 / 3, 0, 1 / 3]], 2, 1 / 3
    elif name == "sc":
        vec, basis, dim, f0 = np.eye(3) * a, [[0, 0, 0]], 3, 0.65311
    elif name == "bcc":
        vec, basis, dim, f0 = np.eye(3) * a, [[0, 0, 0], [0.5, 0.5, 0.5]], 3, 0.72722
    elif name == "fcc":
        vec, basis, dim, f0 = np.eye(3) * a, _FCC_BASIS, 3, 0.78145
    elif name == "diamond":
        fcc = np.array(_FCC_BASIS)
        basis = np.vstack([fcc, fcc + 0.25])
        vec, dim, f0 = np.eye(3) * a, 3, 0.5
    else:
        raise LatticeError(f"unknown lattice preset {name!r}", field="lattice.preset",
                           hint=f"use one of {', '.join(PRESET_NAMES)}")
    return LatticeDefinition(name, np.array(vec, float), np.array(basis, float), dim, a, f0)


def general(
    vectors_A: list[list[float]] | np.ndarray,
    basis_frac: list[list[float]] | np.ndarray,
    dimension: int = 3,
    nn_tolerance: float = 0.05,
) -> LatticeDefinition:
    """Return a general Bravais lattice with basis (validated)."""
    try:
        vec = np.asarray(vectors_A, dtype=float)
    except (ValueError, TypeError) as exc:  # ragged rows, text
        raise LatticeError("vectors_A must be three rows of three numbers",
                           field="lattice.vectors_A") from exc
    try:
        basis = np.asarray(basis_frac, dtype=float)
    except (ValueError, TypeError) as exc:
        raise LatticeError("basis_frac must be rows of three fractional coordinates",
                           field="lattice.basis_frac") from exc
    if vec.shape != (3, 3):
        raise LatticeError("vectors_A must be three rows of three numbers",
                           field="lattice.vectors_A")
    if basis.ndim != 2 or basis.shape[1] != 3 or basis.shape[0] < 1:
        raise LatticeError("basis_frac must be rows of three fractional coordinates",
                           field="lattice.basis_frac")
    if abs(vec[0, 2]) > 1e-9 or abs(vec[1, 2]) > 1e-9 or vec[2, 2] <= 0:
        raise LatticeError("a1 and a2 must lie in the interface plane (zero z component) and a3 "
                           "must point to +z", field="lattice.vectors_A",
                           hint="rotate the cell so that the interface normal is z")
    if abs(np.linalg.det(vec)) < 1e-9:
        raise LatticeError("the lattice vectors are linearly dependent", field="lattice.vectors_A")
    if np.any(basis < 0) or np.any(basis >= 1):
        raise LatticeError("basis_frac coordinates must lie in [0, 1)", field="lattice.basis_frac")
    lengths = np.linalg.norm(vec, axis=1)
    if lengths.min() < MIN_LATTICE_A or lengths.max() > MAX_LATTICE_A:
        raise LatticeError(f"lattice vectors must be {MIN_LATTICE_A:g}-{MAX_LATTICE_A:g} "
                           "Angstrom long", field="lattice.vectors_A",
                           hint="give the vectors in Angstrom")
    for i in range(len(basis)):  # the same site twice (mod a lattice vector)
        d = basis[i + 1:] - basis[i]
        d -= np.round(d)
        if d.size and np.min(np.linalg.norm(d @ vec, axis=1)) < 0.1:
            raise LatticeError("two basis sites are the same site (closer than 0.1 Angstrom)",
                               field="lattice.basis_frac", hint="list each site once")
    a_nn = _nearest_distance(vec, basis, dimension)
    return LatticeDefinition("general", vec, basis, int(dimension), a_nn, math.nan, nn_tolerance)


def _shift_range(dimension: int, reach: int) -> list[tuple[int, int, int]]:
    ys = [0] if dimension == 2 else range(-reach, reach + 1)
    rng = range(-reach, reach + 1)
    return [(x, y, z) for x, y, z in itertools.product(rng, ys, rng)]


def _candidates(vec: np.ndarray, basis: np.ndarray, dimension: int):
    """All (b1, b2, shift, vector, distance) within two cells, as arrays."""
    shifts = np.array(_shift_range(dimension, 2), float)
    nb = len(basis)
    b1, b2, si = np.meshgrid(np.arange(nb), np.arange(nb), np.arange(len(shifts)), indexing="ij")
    b1, b2, si = b1.ravel(), b2.ravel(), si.ravel()
    vectors = (basis[b2] + shifts[si] - basis[b1]) @ vec
    return b1, b2, shifts[si].astype(np.int64), vectors, np.linalg.norm(vectors, axis=1)


def _nearest_distance(vec: np.ndarray, basis: np.ndarray, dimension: int) -> float:
    dist = _candidates(vec, basis, dimension)[4]
    return float(dist[dist > 1e-8].min())


@dataclass(frozen=True)
class NeighbourShell:
    """Nearest neighbours of each basis site: partner basis index and cell shift per slot.

    ``basis[b, k]`` is -1 for slots beyond the coordination of basis site ``b``.
    """

    distance_A: float
    basis: np.ndarray  # (nb, z_max) int64
    shift: np.ndarray  # (nb, z_max, 3) int64
    vector_A: np.ndarray  # (nb, z_max, 3) float64 hop vectors from site to neighbour
    coordination: np.ndarray  # (nb,) int64
    reverse: np.ndarray  # (nb, z_max) int64: slot of the neighbour that points back


def nearest_neighbours(lat: LatticeDefinition) -> NeighbourShell:
    """Find the nearest-neighbour shell of every basis site."""
    b1, b2, shifts, vectors, dist = _candidates(lat.vectors_A, lat.basis_frac, lat.dimension)
    d0 = float(dist[dist > 1e-8].min())
    keep = (dist > 1e-8) & (dist <= d0 * (1 + lat.nn_tolerance))
    if np.any(np.abs(shifts[keep]) > 1):
        raise LatticeError("a nearest neighbour lies two cells away; the cell is too skewed",
                           field="lattice.vectors_A", hint="use a more compact (reduced) cell")
    per_basis = [
        [(int(b2[i]), tuple(int(c) for c in shifts[i]), vectors[i])
         for i in np.flatnonzero(keep & (b1 == b))]
        for b in range(lat.n_basis)
    ]
    z_max = max(len(f) for f in per_basis)
    nb = lat.n_basis
    basis = -np.ones((nb, z_max), np.int64)
    shift = np.zeros((nb, z_max, 3), np.int64)
    vector = np.zeros((nb, z_max, 3))
    for b, found in enumerate(per_basis):
        for k, (b2, s, vec) in enumerate(found):
            basis[b, k], shift[b, k], vector[b, k] = b2, s, vec
    coord = np.array([len(f) for f in per_basis], np.int64)
    reverse = -np.ones((nb, z_max), np.int64)
    for b in range(nb):
        for k in range(coord[b]):
            b2 = basis[b, k]
            back = [k2 for k2 in range(coord[b2])
                    if basis[b2, k2] == b and np.array_equal(shift[b2, k2], -shift[b, k])]
            reverse[b, k] = back[0]  # distances are symmetric, so the way back exists
    return NeighbourShell(d0, basis, shift, vector, coord, reverse)


@dataclass
class LatticeBlock:
    """An ``nx x ny x nz`` block of a lattice, with everything the kernels need.

    Attributes
    ----------
    site_class
        (N,) uint8/uint16 class of every site; ``offsets[site_class[i], k]`` is the index
        offset of neighbour ``k`` (0: none).
    layer_z_A
        (n_layers,) z position of every layer, ascending.
    site_layer_of_basis
        (nb,) layer index within a cell of each basis site; the layer of a site in cell row
        ``iz`` is ``iz * layers_per_cell + site_layer_of_basis[b]``.

    """

    definition: LatticeDefinition
    shell: NeighbourShell
    cells: tuple[int, int, int]
    periodic_z: bool
    site_class: np.ndarray
    offsets: np.ndarray
    layers_per_cell: int
    site_layer_of_basis: np.ndarray
    layer_z_A: np.ndarray
    length_z_A: float

    @property
    def n_sites(self) -> int:
        """Total number of lattice sites."""
        nx, ny, nz = self.cells
        return nx * ny * nz * self.definition.n_basis

    @property
    def n_layers(self) -> int:
        """Number of layers along z."""
        return self.layers_per_cell * self.cells[2]

    def site_layers(self) -> np.ndarray:
        """Return the layer index of every site (an (N,) int64 array, computed on demand)."""
        nx, ny, nz = self.cells
        iz = np.arange(nz)[:, None] * self.layers_per_cell + self.site_layer_of_basis[None, :]
        return np.broadcast_to(iz, (nx * ny, nz, self.definition.n_basis)).reshape(-1).copy()

    def site_positions_A(self) -> np.ndarray:
        """Return (N, 3) Cartesian positions in Angstrom (computed on demand)."""
        nx, ny, nz = self.cells
        grid = np.stack(np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz),
                                    indexing="ij"), axis=-1).reshape(-1, 3)
        frac = grid[:, None, :] + self.definition.basis_frac[None, :, :]
        return (frac.reshape(-1, 3) @ self.definition.vectors_A).astype(float)

    def cell_matrix_A(self) -> np.ndarray:
        """Return the (3, 3) periodic box of the block (rows), Angstrom."""
        return self.definition.vectors_A * np.array(self.cells, float)[:, None]


def build_block(
    lat: LatticeDefinition, cells: tuple[int, int, int] | list[int], periodic_z: bool = True
) -> LatticeBlock:
    """Build the site tables of an ``nx x ny x nz`` block (periodic in x and y)."""
    nx, ny, nz = (int(c) for c in cells)
    shell = nearest_neighbours(lat)
    nb = lat.n_basis
    axis_used = [bool(np.any(shell.shift[:, :, ax] != 0)) for ax in range(3)]
    for ax, (n, name) in enumerate(zip((nx, ny, nz), "xyz", strict=True)):
        if n < 1:
            raise LatticeError(f"n{name} must be at least 1, got {n}", field="cells")
        periodic = ax < 2 or periodic_z
        if lat.dimension == 2 and ax == 1 and n != 1:
            raise LatticeError(f"the 2D lattice {lat.name!r} lies in the x-z plane: ny must be 1,"
                               f" got {n}", field="cells", hint="use --cells NX 1 NZ")
        if axis_used[ax] and periodic and n < 3:
            raise LatticeError(f"n{name} = {n} is too small for a periodic axis",
                               field="cells", hint=f"use n{name} >= 3")
        if ax == 2 and n < 2:
            raise LatticeError(f"nz = {n}: the couple needs at least 2 cells along z",
                               field="cells", hint="use nz >= 2")
    n_sites = nx * ny * nz * nb
    if n_sites >= 2**31 - 1:
        raise LatticeError(f"{n_sites} sites exceed the 2^31 limit of one block", field="cells",
                           hint="use the MPI domain decomposition for larger lattices")
    # measured peak of a simulation's arrays: about 20 bytes per site (state, tables, tree,
    # samples); the estimate keeps a margin
    check_memory(n_sites * BYTES_PER_SITE_ESTIMATE, f"{n_sites:,} sites", "cells",
                 "use fewer --cells, or --decompose over MPI ranks")
    dims = (nx, ny, nz)
    strides = (ny * nz * nb, nz * nb, nb)
    n_class = nb * 27
    offsets = np.zeros((n_class, shell.basis.shape[1]), np.int64)
    for b in range(nb):
        for cx, cy, cz in itertools.product(range(3), repeat=3):
            cls = b + nb * (cx + 3 * (cy + 3 * cz))
            for k in range(shell.coordination[b]):
                off = shell.basis[b, k] - b
                valid = True
                for ax, c in enumerate((cx, cy, cz)):
                    s = int(shell.shift[b, k, ax])
                    n = dims[ax]
                    if s == 0:
                        continue
                    periodic = ax < 2 or periodic_z
                    wraps = (c == 1 and s < 0) or (c == 2 and s > 0)
                    if wraps and not periodic:
                        valid = False
                    step = s - (n * s if wraps else 0)
                    off += step * strides[ax]
                offsets[cls, k] = off if valid else 0
    # classes per site: 0 interior, 1 low face, 2 high face along each axis
    def face(n: int) -> np.ndarray:
        c = np.zeros(n, np.int64)
        c[0] = 1
        c[-1] = 2 if n > 1 else 1
        return c

    cx, cy, cz = face(nx), face(ny), face(nz)
    for ax, n in enumerate(dims):
        if not axis_used[ax]:
            (cx, cy, cz)[ax][:] = 0
        elif n == 1:
            raise LatticeError("an axis with neighbours needs more than one cell", field="cells")
    cls = (np.arange(nb)[None, None, None, :]
           + nb * (cx[:, None, None, None] + 3 * (cy[None, :, None, None]
                                                   + 3 * cz[None, None, :, None])))
    dtype = np.uint8 if n_class <= 256 else np.uint16
    site_class = cls.astype(dtype).reshape(-1)
    zb = np.round(lat.basis_frac[:, 2] * lat.vectors_A[2, 2], 6)
    uniq = np.unique(zb)
    layer_of_basis = np.searchsorted(uniq, zb).astype(np.int64)
    c = lat.vectors_A[2, 2]
    layer_z = (np.arange(nz)[:, None] * c + uniq[None, :]).reshape(-1)
    return LatticeBlock(lat, shell, (nx, ny, nz), bool(periodic_z), site_class, offsets,
                        len(uniq), layer_of_basis, layer_z, float(nz * c))
