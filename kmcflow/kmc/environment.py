"""Canonical keys for the local environment of a vacancy hop on a kMC lattice.

A hop ``j -> v`` moves the atom on site ``j`` into the vacancy on its nearest neighbour ``v``.
Its *environment* is the set of sites in the first neighbour shell of ``v`` or of ``j``, less
``v`` and ``j`` themselves (fcc: 12 + 12 - 2 - 4 common = 18 sites; bcc 14; sc 10).

Two hops related by a symmetry operation of the crystal (a space-group operation of the lattice
with its basis), with correspondingly mapped occupations, get the same key. The machinery:

1. :func:`symmetry_operations` finds the crystal's operations ``x -> R x + t`` (Cartesian):
   integer matrices ``M`` with entries in {-1, 0, 1} acting on fractional row vectors whose
   Cartesian form ``R^T = A^-1 M A`` is orthogonal, each with every translation that maps the
   basis onto itself. Two-dimensional lattices (x-z plane) keep only ops with ``R e_y = e_y``:
   they already realise every in-plane operation, and ``y -> -y`` acts trivially on the sites.
2. The directed hops ``(b, k)`` (basis ``b`` of ``v``, neighbour slot ``k``) fall into *hop
   classes* under these operations; the class's *reference hop* is its smallest ``(b, k)``.
3. The reference hop's environment sites are put in a fixed order (distance to the hop
   midpoint, then rounded coordinates). Every hop of the class orders its environment as the
   image of that order under an operation mapping the reference onto it, and stores each site
   as a *reach code* ``endpoint * z_max + slot``: endpoint 0 is ``v + offsets[class_v, slot]``,
   endpoint 1 is ``j + offsets[class_j, slot]`` (endpoint 0 is used for common neighbours), so
   the numba kernel reaches the sites without a neighbour list.
4. The operations fixing ``v`` and ``j`` of the reference hop (its *stabiliser*) act on the
   environment order as permutations; the key is the minimum over them of the environment's
   codes read as a base-``n_species + 2`` number (see :func:`canonical_key`).

Codes of a site: its occupation (0 vacancy, 1..S species), ``S + 1`` (*none code*) for a site
that does not exist (beyond a closed z boundary) and for padding. A full hop identity is
``(moving species, hop class, environment key)``; :func:`key_text` writes it as text.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from kmcflow.errors import CatalogError, LatticeError
from kmcflow.kmc.lattice import LatticeDefinition, NeighbourShell, nearest_neighbours

ORTHOGONAL_TOLERANCE = 1e-6
POSITION_TOLERANCE_A = 1e-4
"""Two positions closer than this (Angstrom) are the same site."""
VACANCY_TEXT = "V"
NO_SITE_TEXT = "-"
KEY_BITS = 63


@dataclass(frozen=True)
class SymmetryOperation:
    """A space-group operation ``x -> rotation @ x + translation_A`` (Cartesian, Angstrom).

    ``basis_map[b]`` is the basis index of the image of basis site ``b``; ``matrix_frac`` is
    the integer matrix acting on fractional row vectors (``f -> f @ M + t_frac``).
    """

    rotation: np.ndarray  # (3, 3)
    translation_A: np.ndarray  # (3,)
    matrix_frac: np.ndarray  # (3, 3) int64
    basis_map: np.ndarray  # (nb,) int64


@dataclass(frozen=True)
class HopEnvironments:
    """Hop classes and environment orders of a lattice (see the module docstring).

    Attributes
    ----------
    n_classes
        Number of symmetry-distinct directed hops.
    hop_class
        (nb, z_max) int64 class of the hop from basis ``b`` along slot ``k`` (-1 beyond the
        coordination of ``b``).
    hop_operation
        (nb, z_max) int64 index into ``operations`` of an operation that maps the reference hop
        of the class onto hop ``(b, k)`` (-1 beyond the coordination).
    n_env
        E: the largest environment size over the classes; shorter ones are padded.
    n_env_of_class
        (n_classes,) int64 environment size of each class.
    n_common_of_class
        (n_classes,) int64 number of environment sites that neighbour both ``v`` and ``j``.
    reach
        (nb, z_max, E) int64 reach codes ``endpoint * z_max + slot`` of each hop's environment
        in its order (-1 padding and beyond the coordination).
    reference_hop
        (n_classes, 2) int64 ``(basis, slot)`` of each class's reference hop.
    positions_A
        (n_classes, E, 3) environment positions of the reference hop relative to ``v``
        (Angstrom; NaN padding), in the environment order.
    hop_vector_A
        (n_classes, 3) vector ``j - v`` of the reference hop (Angstrom).
    permutations
        (n_classes, G, E) int64: the stabiliser of each reference hop (operations fixing ``v``
        and ``j``, duplicates removed) as permutations of the environment order:
        ``permutations[c, g, e]`` is the index of the image of site ``e``. Rows beyond a
        class's group order, and entries beyond its environment size, are the identity.
    group_order
        (n_classes,) int64 number of distinct stabiliser permutations of each class.
    orbits
        (n_classes, E) int64 orbit label (smallest member index) of each environment site under
        the stabiliser (-1 padding).
    reverse_class
        (n_classes,) int64 class of the reverse hop (the atom going back from ``v`` to ``j``).
    reverse_permutation
        (n_classes, E) int64: environment site ``e`` of the reference hop is site
        ``reverse_permutation[c, e]`` of the reverse hop (whose ``v`` is the old ``j``), in the
        reverse hop's own environment order (that of hop ``(basis_j, reverse slot)``).
    orbits_with_reversal
        (n_classes, E) int64 orbit labels under the stabiliser plus the reversal where the
        reverse hop is in the same class; equal to ``orbits`` otherwise.
    operations
        The crystal's symmetry operations.
    z_max
        Number of neighbour slots per site (``offsets.shape[1]``).

    """

    n_classes: int
    hop_class: np.ndarray
    hop_operation: np.ndarray
    n_env: int
    n_env_of_class: np.ndarray
    n_common_of_class: np.ndarray
    reach: np.ndarray
    reference_hop: np.ndarray
    positions_A: np.ndarray
    hop_vector_A: np.ndarray
    permutations: np.ndarray
    group_order: np.ndarray
    orbits: np.ndarray
    reverse_class: np.ndarray
    reverse_permutation: np.ndarray
    orbits_with_reversal: np.ndarray
    operations: tuple[SymmetryOperation, ...]
    z_max: int

    def env_vectors_A(self, basis: int, slot: int, shell: NeighbourShell) -> np.ndarray:
        """Return (E_c, 3) environment positions of hop ``(basis, slot)`` relative to ``v``."""
        c = int(self.hop_class[basis, slot])
        if c < 0:
            raise LatticeError(f"basis {basis} has no neighbour slot {slot}", field="hop")
        d = shell.vector_A[basis, slot]
        bj = int(shell.basis[basis, slot])
        out = np.empty((int(self.n_env_of_class[c]), 3))
        for e in range(out.shape[0]):
            endpoint, s = divmod(int(self.reach[basis, slot, e]), self.z_max)
            out[e] = shell.vector_A[basis, s] if endpoint == 0 else d + shell.vector_A[bj, s]
        return out


def _lattice_cache_key(lat: LatticeDefinition) -> tuple:
    return (lat.name, lat.vectors_A.tobytes(), lat.basis_frac.tobytes(), int(lat.dimension),
            float(lat.nn_tolerance))


def _wrap_frac(f: np.ndarray) -> np.ndarray:
    return f - np.floor(f + 1e-9)


def symmetry_operations(lat: LatticeDefinition) -> tuple[SymmetryOperation, ...]:
    """Return the crystal's space-group operations (see the module docstring, step 1)."""
    a = lat.vectors_A
    a_inv = np.linalg.inv(a)
    basis = lat.basis_frac
    nb = lat.n_basis
    tol_frac = POSITION_TOLERANCE_A / np.linalg.norm(a, axis=1).max()
    ops: list[SymmetryOperation] = []
    for entries in itertools.product((-1, 0, 1), repeat=9):
        m = np.array(entries, float).reshape(3, 3)
        if abs(abs(np.linalg.det(m)) - 1) > 1e-9:
            continue
        rt = a_inv @ m @ a
        if np.abs(rt @ rt.T - np.eye(3)).max() > ORTHOGONAL_TOLERANCE:
            continue
        r = rt.T
        if lat.dimension == 2 and (abs(r[1, 1] - 1) > ORTHOGONAL_TOLERANCE
                                   or np.abs(r[1, [0, 2]]).max() > ORTHOGONAL_TOLERANCE
                                   or np.abs(r[[0, 2], 1]).max() > ORTHOGONAL_TOLERANCE):
            continue
        images = basis @ m
        for target in range(nb):
            t_frac = basis[target] - images[0]
            mapped = _wrap_frac(images + t_frac)
            bmap = -np.ones(nb, np.int64)
            for b in range(nb):
                diff = mapped[b][None, :] - basis
                diff -= np.round(diff)
                hit = np.flatnonzero(np.abs(diff).max(axis=1) < tol_frac)
                if len(hit) != 1:
                    break
                bmap[b] = hit[0]
            if np.any(bmap < 0) or len(set(bmap.tolist())) != nb:
                continue
            ops.append(SymmetryOperation(r.copy(), _wrap_frac(t_frac) @ a,
                                         m.astype(np.int64), bmap))
    return tuple(ops)


def _find_vector(vectors: np.ndarray, n: int, target: np.ndarray) -> int:
    diff = np.linalg.norm(vectors[:n] - target[None, :], axis=1)
    k = int(np.argmin(diff))
    return k if diff[k] < POSITION_TOLERANCE_A else -1


def _env_of_hop(shell: NeighbourShell, b: int, k: int, z_max: int):
    """Environment (positions relative to v, reach codes) of hop (b, k), unordered."""
    d = shell.vector_A[b, k]
    bj = int(shell.basis[b, k])
    pos, codes = [], []
    for s in range(shell.coordination[b]):
        if s != k:
            pos.append(shell.vector_A[b, s])
            codes.append(s)
    n_common = 0
    for s in range(shell.coordination[bj]):
        p = d + shell.vector_A[bj, s]
        if np.linalg.norm(p) < POSITION_TOLERANCE_A:
            continue
        if _find_vector(np.array(pos), len(pos), p) >= 0:
            n_common += 1
            continue
        pos.append(p)
        codes.append(z_max + s)
    return np.array(pos), np.array(codes, np.int64), n_common


def _orbit_labels(n: int, perms: list[np.ndarray]) -> np.ndarray:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in perms:
        for e in range(n):
            ra, rb = find(e), find(int(p[e]))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(e) for e in range(n)], np.int64)


_CACHE: dict[tuple, HopEnvironments] = {}


def hop_environments(lat: LatticeDefinition) -> HopEnvironments:
    """Return the hop classes and environment orders of ``lat`` (cached per definition)."""
    key = _lattice_cache_key(lat)
    if key not in _CACHE:
        _CACHE[key] = _build(lat)
    return _CACHE[key]


def _build(lat: LatticeDefinition) -> HopEnvironments:
    shell = nearest_neighbours(lat)
    ops = symmetry_operations(lat)
    nb, z_max = shell.basis.shape
    coord = shell.coordination
    hops = [(b, k) for b in range(nb) for k in range(int(coord[b]))]

    def image(g: int, b: int, k: int) -> tuple[int, int]:
        op = ops[g]
        b2 = int(op.basis_map[b])
        k2 = _find_vector(shell.vector_A[b2], int(coord[b2]), op.rotation @ shell.vector_A[b, k])
        if k2 < 0:
            raise LatticeError("a symmetry operation maps a hop onto no hop (internal error)",
                               field="lattice")
        return b2, k2

    hop_class = -np.ones((nb, z_max), np.int64)
    hop_op = -np.ones((nb, z_max), np.int64)
    refs: list[tuple[int, int]] = []
    for b, k in hops:  # hops are in (b, k) order, so the first unassigned one is the smallest
        if hop_class[b, k] >= 0:
            continue
        c = len(refs)
        refs.append((b, k))
        for g in range(len(ops)):
            b2, k2 = image(g, b, k)
            if hop_class[b2, k2] < 0:
                hop_class[b2, k2], hop_op[b2, k2] = c, g
    n_classes = len(refs)

    # reference orders
    ref_pos, ref_common = [], []
    for b, k in refs:
        pos, _, n_common = _env_of_hop(shell, b, k, z_max)
        mid = shell.vector_A[b, k] / 2
        order = sorted(range(len(pos)), key=lambda e, p=pos, m=mid: (
            round(float(np.linalg.norm(p[e] - m)), 6), *np.round(p[e], 6).tolist()))
        ref_pos.append(pos[order])
        ref_common.append(n_common)
    n_env = max(len(p) for p in ref_pos)
    n_env_of = np.array([len(p) for p in ref_pos], np.int64)

    reach = -np.ones((nb, z_max, n_env), np.int64)
    for b, k in hops:
        c = int(hop_class[b, k])
        r = ops[int(hop_op[b, k])].rotation
        pos, codes, _ = _env_of_hop(shell, b, k, z_max)
        for e, p in enumerate(ref_pos[c]):
            hit = _find_vector(pos, len(pos), r @ p)
            if hit < 0:
                raise LatticeError("a hop's environment is not the image of its reference "
                                   "(internal error)", field="lattice")
            reach[b, k, e] = codes[hit]

    # stabilisers as permutations
    perm_lists: list[list[np.ndarray]] = []
    for c, (b, k) in enumerate(refs):
        d = shell.vector_A[b, k]
        seen: dict[bytes, np.ndarray] = {}
        for op in ops:
            if op.basis_map[b] != b or np.linalg.norm(op.rotation @ d - d) > POSITION_TOLERANCE_A:
                continue
            perm = np.array([_find_vector(ref_pos[c], n_env_of[c], op.rotation @ p)
                             for p in ref_pos[c]], np.int64)
            seen.setdefault(perm.tobytes(), perm)
        perm_lists.append(sorted(seen.values(), key=lambda p: p.tolist()))
    g_max = max(len(p) for p in perm_lists)
    permutations = np.tile(np.arange(n_env, dtype=np.int64), (n_classes, g_max, 1))
    orbits = -np.ones((n_classes, n_env), np.int64)
    for c, plist in enumerate(perm_lists):
        for g, p in enumerate(plist):
            permutations[c, g, :len(p)] = p
        orbits[c, :n_env_of[c]] = _orbit_labels(int(n_env_of[c]), plist)

    # reversal
    reverse_class = np.empty(n_classes, np.int64)
    reverse_perm = -np.ones((n_classes, n_env), np.int64)
    orbits_rev = orbits.copy()
    for c, (b, k) in enumerate(refs):
        bj, kr = int(shell.basis[b, k]), int(shell.reverse[b, k])
        c2 = int(hop_class[bj, kr])
        reverse_class[c] = c2
        r2 = ops[int(hop_op[bj, kr])].rotation
        rev_pos = np.array([r2 @ p for p in ref_pos[c2]])
        d = shell.vector_A[b, k]
        for e, p in enumerate(ref_pos[c]):
            reverse_perm[c, e] = _find_vector(rev_pos, len(rev_pos), p - d)
        if c2 == c:
            orbits_rev[c, :n_env_of[c]] = _orbit_labels(
                int(n_env_of[c]), [*perm_lists[c], reverse_perm[c, :n_env_of[c]]])
    if np.any(reverse_perm[np.arange(n_env)[None, :] < n_env_of[:, None]] < 0):
        raise LatticeError("the reverse hop's environment does not match (internal error)",
                           field="lattice")

    positions = np.full((n_classes, n_env, 3), np.nan)
    for c, p in enumerate(ref_pos):
        positions[c, :len(p)] = p
    return HopEnvironments(
        n_classes=n_classes, hop_class=hop_class, hop_operation=hop_op, n_env=n_env,
        n_env_of_class=n_env_of, n_common_of_class=np.array(ref_common, np.int64), reach=reach,
        reference_hop=np.array(refs, np.int64), positions_A=positions,
        hop_vector_A=np.array([shell.vector_A[b, k] for b, k in refs]),
        permutations=permutations, group_order=np.array([len(p) for p in perm_lists], np.int64),
        orbits=orbits, reverse_class=reverse_class, reverse_permutation=reverse_perm,
        orbits_with_reversal=orbits_rev, operations=ops, z_max=int(z_max))


# --- kernels -------------------------------------------------------------------------------


@njit(inline="always")
def environment_codes(occ, v, j, site_class, offsets, reach_row, none_code, out) -> None:
    """Fill ``out[e]`` with the occupation of environment site ``e`` of hop ``j -> v``.

    ``reach_row`` is ``reach[basis of v, slot of j]``; a missing site (closed z boundary) and
    padding get ``none_code``.
    """
    z_max = offsets.shape[1]
    for e in range(reach_row.shape[0]):
        r = reach_row[e]
        if r < 0:
            out[e] = none_code
            continue
        if r < z_max:
            base_site = v
            slot = r
        else:
            base_site = j
            slot = r - z_max
        off = offsets[site_class[base_site], slot]
        if off == 0:
            out[e] = none_code
        else:
            out[e] = occ[base_site + off]


@njit(inline="always")
def canonical_key(codes, perms, base) -> int:
    """Return ``min over g of sum_e codes[perms[g, e]] * base**e`` (int64)."""
    best = np.int64(-1)
    n = codes.shape[0]
    for g in range(perms.shape[0]):
        key = np.int64(0)
        w = np.int64(1)
        for e in range(n):
            key += np.int64(codes[perms[g, e]]) * w
            w *= np.int64(base)
        if best < 0 or key < best:
            best = key
    return best


# --- Python helpers ------------------------------------------------------------------------


def key_base(n_species: int) -> int:
    """Digit base of the keys: occupations 0..S plus the none code S + 1."""
    return int(n_species) + 2


def check_key_fits(envs: HopEnvironments, n_species: int) -> None:
    """Raise :class:`CatalogError` unless ``n_env * log2(base) < 63`` (an int64 key)."""
    base = key_base(n_species)
    if n_species < 1:
        raise CatalogError(f"need at least one species, got {n_species}", field="species")
    if envs.n_env * math.log2(base) >= KEY_BITS:
        raise CatalogError(
            f"{n_species} species and {envs.n_env} environment sites need "
            f"{envs.n_env * math.log2(base):.1f} bits: too many species for an int64 "
            "environment key", field="species",
            hint=f"use at most {int(2 ** (KEY_BITS / envs.n_env)) - 2} species on this lattice")


def environment_key(occ_codes, hop_class: int, envs: HopEnvironments, n_species: int) -> int:
    """Return the canonical key of environment codes given in hop class ``hop_class``'s order.

    ``occ_codes`` are the codes of a hop of that class in its own environment order (as
    :func:`environment_codes` gives them), padded or not to ``n_env`` with the none code.
    """
    check_key_fits(envs, n_species)
    codes = _padded_codes(occ_codes, envs, n_species)
    return int(canonical_key(codes, envs.permutations[int(hop_class)], key_base(n_species)))


def _padded_codes(occ_codes, envs: HopEnvironments, n_species: int) -> np.ndarray:
    codes = np.full(envs.n_env, key_base(n_species) - 1, np.int64)
    arr = np.asarray(occ_codes, np.int64)
    codes[:len(arr)] = arr
    return codes


def key_digits(key: int, envs: HopEnvironments, n_species: int) -> np.ndarray:
    """Return the (E,) codes a key stands for (digit ``e`` is the code of site ``e``)."""
    base = key_base(n_species)
    out = np.empty(envs.n_env, np.int64)
    k = int(key)
    for e in range(envs.n_env):
        k, out[e] = divmod(k, base)
    return out


def reverse_key(key: int, hop_class: int, envs: HopEnvironments, n_species: int) -> tuple:
    """Return ``(reverse class, key)`` of the reverse hop (the atom goes back from v to j).

    The environment occupation is the same before and after a hop, so the reverse key is the
    same occupation read in the reverse hop's environment order.
    """
    c = int(hop_class)
    digits = key_digits(key, envs, n_species)
    c2 = int(envs.reverse_class[c])
    rev = np.full(envs.n_env, key_base(n_species) - 1, np.int64)
    n = int(envs.n_env_of_class[c])
    rev[envs.reverse_permutation[c, :n]] = digits[:n]
    return c2, environment_key(rev, c2, envs, n_species)


def key_text(species_names, moving_species: int, hop_class: int, codes) -> str:
    """Return ``"Cu|c0|Ni,Cu,V,-,..."``: moving species, hop class, environment codes.

    ``moving_species`` is 1-based (an occupation code); ``codes`` are the environment codes (use
    :func:`key_digits` of a canonical key to write the canonical form). ``V`` is a vacancy and
    ``-`` no site.
    """
    names = list(species_names)
    if not 1 <= int(moving_species) <= len(names):
        raise CatalogError(f"moving species {moving_species} is not 1..{len(names)}",
                           field="moving_species")
    if VACANCY_TEXT in names or NO_SITE_TEXT in names:
        raise CatalogError(f"species may not be named {VACANCY_TEXT!r} or {NO_SITE_TEXT!r}",
                           field="species")
    words = []
    for code in np.asarray(codes, np.int64).tolist():
        if code == 0:
            words.append(VACANCY_TEXT)
        elif 1 <= code <= len(names):
            words.append(names[code - 1])
        elif code == len(names) + 1:
            words.append(NO_SITE_TEXT)
        else:
            raise CatalogError(f"environment code {code} is out of range", field="codes")
    return f"{names[int(moving_species) - 1]}|c{int(hop_class)}|{','.join(words)}"


def parse_key_text(text: str, species_names, envs: HopEnvironments | None = None):
    """Parse :func:`key_text` output into ``(moving species, hop class, codes array)``.

    Raises :class:`CatalogError` naming the bad field. With ``envs`` the class and the number
    of codes are checked against the lattice.
    """
    names = list(species_names)
    parts = str(text).split("|")
    if len(parts) != 3:
        raise CatalogError(f"environment key {text!r} must read 'species|cN|site,site,...'",
                           field="key")
    moving, cls, env = parts
    if moving not in names:
        raise CatalogError(f"unknown moving species {moving!r} in {text!r}",
                           field="key.moving_species", hint=f"use one of {', '.join(names)}")
    if not (cls.startswith("c") and cls[1:].isdigit()):
        raise CatalogError(f"hop class {cls!r} in {text!r} must read cN", field="key.hop_class")
    c = int(cls[1:])
    if envs is not None and c >= envs.n_classes:
        raise CatalogError(f"hop class {c} in {text!r}: the lattice has {envs.n_classes}",
                           field="key.hop_class")
    lookup = {VACANCY_TEXT: 0, NO_SITE_TEXT: len(names) + 1}
    lookup.update({n: i + 1 for i, n in enumerate(names)})
    words = env.split(",") if env else []
    bad = [w for w in words if w not in lookup]
    if bad:
        raise CatalogError(f"unknown environment site {bad[0]!r} in {text!r}",
                           field="key.environment",
                           hint=f"use {', '.join(names)}, {VACANCY_TEXT} or {NO_SITE_TEXT}")
    if envs is not None and len(words) != envs.n_env:
        raise CatalogError(f"{len(words)} environment sites in {text!r}, the lattice has "
                           f"{envs.n_env}", field="key.environment")
    return names.index(moving) + 1, c, np.array([lookup[w] for w in words], np.int64)
