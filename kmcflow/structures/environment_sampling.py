"""NEB endpoints of vacancy hops in chosen local environments, for the environment model.

The engine rates a hop from its environment key (:mod:`kmcflow.kmc.environment`); the
barriers behind the keys come from hops computed in periodic supercells of the kMC lattice
whose environment sites hold the key's occupation. Two ways to choose them:

- :func:`random_alloy_hops`: random substitutional alloys of a given composition; each cell
  gets one vacancy and one of its neighbours moves into it (the training and test sets of
  the model);
- :func:`hops_for_keys`: a hop with exactly the environment a key names (the keys a kMC run
  met and the table lacks), the sites beyond the environment a random alloy of the
  environment's own composition (or one given).

Each :class:`EnvironmentHop` holds the initial structure (the vacancy site empty) and the
final one (the moving atom on the vacancy site), same atoms in the same order, as pymatgen
``Structure`` objects, and its key text, which is the engine's key of the hop in the ideal
(unrelaxed) cell.

Lattice constant. The cell is the kMC lattice repeated ``repeats`` times, scaled to the
lattice constant ``a = sum_s x_s a_s`` (Vegard's law over the atoms of the cell) when
``lattice_constants_A`` gives each species' own constant (in the convention of the lattice's
``a_A``), else the lattice's own ``a_A``. The cell is not relaxed (endpoint relaxations move
the atoms, not the cell): a hop's barrier is the one at the alloy's mean lattice constant.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kmcflow.errors import StructureError
from kmcflow.kmc.environment import (
    NO_SITE_TEXT,
    check_key_fits,
    environment_key,
    hop_environments,
    key_base,
    key_digits,
    key_text,
    parse_key_text,
)
from kmcflow.kmc.lattice import LatticeDefinition, nearest_neighbours

MAX_SITES = 20_000
"""Most sites a sampled cell may have (a DFT code would not take more; EMT copes)."""
DEFAULT_REPEATS = (3, 3, 3)
"""Repeats of the lattice cell (fcc conventional: 108 sites, every environment site and its
neighbours distinct from their periodic images)."""


@dataclass(frozen=True)
class EnvironmentHop:
    """One hop to compute: endpoints, its key and how it was chosen.

    ``codes`` are the occupation codes of the environment sites in the hop class's order
    (0 vacancy, ``i + 1`` species ``i``); ``composition`` the fractions of the species over
    the cell's atoms; ``origin`` ``"random_alloy"`` or ``"key"``.
    """

    key: str
    species: str
    hop_class: int
    codes: tuple[int, ...]
    initial: Any  # pymatgen Structure
    final: Any
    composition: dict[str, float]
    lattice_constant_A: float
    repeats: tuple[int, int, int]
    origin: str
    seed: int
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """The hop's record (``event_key`` is the key text; JSON-ready)."""
        return {"event_key": self.key, "environment_key": self.key, "species": self.species,
                "hop_class": self.hop_class, "codes": list(self.codes),
                "composition": dict(self.composition),
                "lattice_constant_A": self.lattice_constant_A, "supercell": list(self.repeats),
                "n_atoms": len(self.initial), "origin": self.origin, "seed": self.seed,
                **self.extra}


class _Cell:
    """The sites of the repeated lattice and a lookup from a position to its site index."""

    def __init__(self, lattice: LatticeDefinition, repeats: tuple[int, int, int]):
        reps = tuple(int(r) for r in repeats)
        if len(reps) != 3 or min(reps) < 1:
            raise StructureError(f"repeats must be three whole numbers >= 1, got {repeats}",
                                 field="repeats", hint="e.g. 3,3,3")
        if lattice.dimension != 3:
            raise StructureError(f"the {lattice.name} lattice is two-dimensional: a periodic "
                                 "3D cell of it would be another crystal", field="lattice",
                                 hint="compute the hops of a 2D lattice in a slab by hand")
        if np.prod(reps) * lattice.n_basis > MAX_SITES:
            raise StructureError(f"{'x'.join(map(str, reps))} cells hold "
                                 f"{np.prod(reps) * lattice.n_basis} sites (at most {MAX_SITES})",
                                 field="repeats", hint="e.g. 3,3,3")
        self.lattice = lattice
        self.repeats = reps
        nb = lattice.n_basis
        cells = np.array(list(itertools.product(*(range(r) for r in reps))), float)
        frac = (cells[:, None, :] + lattice.basis_frac[None, :, :]).reshape(-1, 3)
        self.basis = np.tile(np.arange(nb), len(cells))
        self.cart = frac @ lattice.vectors_A
        self.matrix = lattice.vectors_A * np.array(reps, float)[:, None]
        self._inv = np.linalg.inv(self.matrix)
        self._index = {self._token(x): i for i, x in enumerate(self.cart)}
        if len(self._index) != len(self.cart):
            raise StructureError("two basis sites of the lattice coincide", field="lattice")

    def _token(self, x: np.ndarray) -> tuple[int, int, int]:
        f = np.asarray(x) @ self._inv
        f = f - np.floor(f)
        grid = np.round(f * 1e4).astype(np.int64) % 10000
        return int(grid[0]), int(grid[1]), int(grid[2])

    def site_at(self, x: np.ndarray) -> int:
        """Index of the site at Cartesian position ``x`` (Angstrom, any periodic image)."""
        i = self._index.get(self._token(x))
        if i is None:
            raise StructureError("a neighbour position is not a site of the lattice",
                                 field="lattice")
        return i


def _hop_sites(cell: _Cell, envs, shell, v: int, slot: int) -> tuple[int, np.ndarray]:
    """The site ``j`` of slot ``slot`` of ``v`` and the sites of the hop's environment."""
    b = int(cell.basis[v])
    j = cell.site_at(cell.cart[v] + shell.vector_A[b, slot])
    env = np.array([cell.site_at(cell.cart[v] + x)
                    for x in envs.env_vectors_A(b, slot, shell)], np.int64)
    if len(set(env.tolist()) | {v, j}) != len(env) + 2:
        raise StructureError(f"a {'x'.join(map(str, cell.repeats))} cell is too small: the "
                             "hop's environment meets its own periodic images",
                             field="repeats", hint="use more repeats (e.g. 4,4,4)")
    return j, env


def _structures(cell: _Cell, occ: np.ndarray, v: int, j: int, names: list[str],
                lattice_constants_A: dict[str, float] | None):
    """Initial and final structures of the hop ``j -> v`` in the occupation ``occ``."""
    from pymatgen.core import Lattice, Structure

    atoms = np.flatnonzero(occ > 0)
    counts = np.bincount(occ[atoms], minlength=len(names) + 1)[1:]
    composition = {n: float(c) / len(atoms) for n, c in zip(names, counts, strict=True)}
    a_lat = float(cell.lattice.a_A)
    if lattice_constants_A:
        missing = [n for n in names if composition[n] > 0 and n not in lattice_constants_A]
        if missing:
            raise StructureError(f"no lattice constant for {', '.join(missing)}",
                                 field="lattice_constants_A",
                                 hint="give one for every species, or none")
        a = sum(composition[n] * float(lattice_constants_A[n]) for n in names
                if composition[n] > 0)
    else:
        a = a_lat
    scale = a / a_lat
    lattice = Lattice(cell.matrix * scale)
    symbols = [names[occ[i] - 1] for i in atoms]
    start = cell.cart[atoms] * scale
    end = start.copy()
    end[int(np.flatnonzero(atoms == j)[0])] = cell.cart[v] * scale
    initial = Structure(lattice, symbols, start, coords_are_cartesian=True)
    final = Structure(lattice, symbols, end, coords_are_cartesian=True)
    return initial, final, composition, a


def _fractions(names: list[str], fractions: dict[str, float], where: str) -> np.ndarray:
    """Fractions of every species: those named, the rest shared equally by the others."""
    unknown = sorted(set(fractions) - set(names))
    if unknown:
        raise StructureError(f"unknown species {', '.join(unknown)}", field=where,
                             hint=f"use {', '.join(names)}")
    given = np.array([float(fractions[n]) for n in fractions], float)
    if np.any(~np.isfinite(given)) or np.any(given < 0) or np.any(given > 1):
        raise StructureError(f"fractions must lie in 0-1, got {fractions}", field=where,
                             hint="e.g. Ni=0.5 (the rest Cu)")
    rest = 1.0 - float(given.sum())
    others = [n for n in names if n not in fractions]
    if rest < -1e-9 or (not others and abs(rest) > 1e-6) or (others and rest <= 1e-12
                                                             and given.sum() <= 0):
        raise StructureError(f"the fractions {fractions} add up to {given.sum():g}",
                             field=where, hint="name fractions that add up to 1, or name "
                             "fewer species and let the rest share what is left")
    x = np.array([float(fractions[n]) if n in fractions else max(rest, 0.0) / len(others)
                  for n in names])
    return x / x.sum()


def _fill(rng: np.random.Generator, n_sites: int, x: np.ndarray) -> np.ndarray:
    """Occupation codes of ``n_sites`` sites with the composition ``x`` (exact up to rounding)."""
    counts = np.floor(x * n_sites).astype(int)
    rest = n_sites - counts.sum()
    order = np.argsort(-(x * n_sites - counts), kind="stable")
    counts[order[:rest]] += 1
    codes = np.repeat(np.arange(1, len(x) + 1), counts)
    rng.shuffle(codes)
    return codes


def _check_constants(constants: dict[str, float] | None, names: list[str]) -> None:
    import math

    for name, value in (constants or {}).items():
        if name not in names:
            raise StructureError(f"a lattice constant for {name!r}, not a species here",
                                 field="lattice_constants_A", hint=f"use {', '.join(names)}")
        if not (isinstance(value, int | float) and math.isfinite(value) and 1.0 < value < 20.0):
            raise StructureError(f"lattice constant of {name} must lie in 1-20 Angstrom, got "
                                 f"{value}", field="lattice_constants_A", hint="e.g. Cu=3.615")


def _setup(lattice: LatticeDefinition, species: list[str], repeats,
           constants: dict[str, float] | None = None):
    names = [str(s) for s in species]
    _check_constants(constants, names)
    envs = hop_environments(lattice)
    check_key_fits(envs, len(names))
    return names, envs, nearest_neighbours(lattice), _Cell(lattice, repeats)


def _key_of(codes: np.ndarray, s: int, c: int, envs, names: list[str]) -> tuple[str, tuple]:
    key = environment_key(codes, c, envs, len(names))
    digits = key_digits(key, envs, len(names))[: int(envs.n_env_of_class[c])]
    return key_text(names, s, c, digits), tuple(int(d) for d in digits)


def random_alloy_hops(lattice: LatticeDefinition, species: list[str],
                      fractions: dict[str, float], count: int, *, seed: int = 0,
                      repeats: tuple[int, int, int] = DEFAULT_REPEATS,
                      moving: str | None = None,
                      lattice_constants_A: dict[str, float] | None = None,
                      skip_keys: set[str] | None = None) -> list[EnvironmentHop]:
    """``count`` hops, each in a random alloy of composition ``fractions`` (one vacancy).

    Every cell is a fresh random arrangement (seeded: the same arguments give the same hops);
    the vacancy's neighbour that moves is drawn at random, or is made ``moving`` when given.
    A key met before (or in ``skip_keys``) is drawn again, so the hops' keys are distinct.
    """
    names, envs, shell, cell = _setup(lattice, species, repeats, lattice_constants_A)
    x = _fractions(names, fractions, "composition")
    if moving is not None and moving not in names:
        raise StructureError(f"unknown moving species {moving!r}", field="moving",
                             hint=f"use {', '.join(names)}")
    if int(count) < 1:
        raise StructureError(f"count must be >= 1, got {count}", field="count")
    rng = np.random.default_rng(seed)
    seen = set(skip_keys or ())
    hops: list[EnvironmentHop] = []
    tries = 0
    while len(hops) < int(count):
        tries += 1
        if tries > 50 * int(count) + 100:
            raise StructureError(f"found only {len(hops)} distinct environments of {count}",
                                 field="count", hint="ask for fewer, or a richer composition")
        occ = _fill(rng, len(cell.cart), x)
        v = int(rng.integers(len(cell.cart)))
        b = int(cell.basis[v])
        slot = int(rng.integers(int(shell.coordination[b])))
        j, env = _hop_sites(cell, envs, shell, v, slot)
        occ[v] = 0
        if moving is not None:
            occ[j] = names.index(moving) + 1
        c = int(envs.hop_class[b, slot])
        s = int(occ[j])
        text, digits = _key_of(occ[env], s, c, envs, names)
        if text in seen:
            continue
        seen.add(text)
        initial, final, comp, a = _structures(cell, occ, v, j, names, lattice_constants_A)
        hops.append(EnvironmentHop(text, names[s - 1], c, digits, initial, final, comp, a,
                                   cell.repeats, "random_alloy", int(seed),
                                   {"target_composition": dict(zip(names, x.tolist(),
                                                                   strict=True))}))
    return hops


def hops_for_keys(keys: list[str], lattice: LatticeDefinition, species: list[str], *,
                  seed: int = 0, repeats: tuple[int, int, int] = DEFAULT_REPEATS,
                  background: dict[str, float] | None = None,
                  lattice_constants_A: dict[str, float] | None = None
                  ) -> list[EnvironmentHop]:
    """One hop per key text, its environment sites occupied as the key says.

    The other sites are a random alloy (seeded) of ``background``, by default the
    composition of the key's own environment sites (a hop met deep in the A side of a couple
    sits in A). A key with a ``-`` site (beyond a closed boundary) cannot be realised in a
    periodic cell and is refused.
    """
    names, envs, shell, cell = _setup(lattice, species, repeats, lattice_constants_A)
    none = key_base(len(names)) - 1
    rng = np.random.default_rng(seed)
    hops = []
    for i, text in enumerate(keys):
        s, c, codes = parse_key_text(text, names, envs)
        n_env = int(envs.n_env_of_class[c])
        codes = np.asarray(codes[:n_env], np.int64)
        if np.any(codes == none):
            raise StructureError(f"key {text!r} has a site beyond a closed boundary "
                                 f"({NO_SITE_TEXT!r}); a periodic cell cannot hold it",
                                 field=f"keys[{i}]", hint="compute it in a slab by hand")
        found = np.argwhere(envs.hop_class == c)
        b, slot = int(found[0][0]), int(found[0][1])
        v = int(np.flatnonzero(cell.basis == b)[0])
        j, env = _hop_sites(cell, envs, shell, v, slot)
        if background is None:
            atoms = codes[codes > 0]
            x = np.bincount(atoms, minlength=len(names) + 1)[1:].astype(float)
            x = x / x.sum() if x.sum() > 0 else np.eye(len(names))[s - 1]
        else:
            x = _fractions(names, background, "background")
        occ = _fill(rng, len(cell.cart), x)
        occ[v] = 0
        occ[j] = s
        occ[env] = codes
        text_back, digits = _key_of(occ[env], s, c, envs, names)
        if text_back != _key_of(codes, s, c, envs, names)[0]:  # the cell must hold the key
            raise StructureError(f"the cell built for {text!r} has another environment "
                                 "(internal error)", field=f"keys[{i}]")
        initial, final, comp, a = _structures(cell, occ, v, j, names, lattice_constants_A)
        hops.append(EnvironmentHop(text_back, names[s - 1], c, digits, initial, final, comp, a,
                                   cell.repeats, "key", int(seed),
                                   {"requested_key": text}))
    return hops
