"""The engine's canonical hop-environment key, computed from a pymatgen structure.

:func:`hop_environment_key` gives a vacancy hop in a structure the same key as
:mod:`kmcflow.kmc.environment` gives the same hop on the kMC lattice, so an energy computed for
the structure lands on the engine's key. The structure's lattice sites (those whose species is
in ``species`` or is the vacancy marker) must lie on the kMC lattice in the same Cartesian
frame and origin (positions ``(n + basis_frac) @ vectors_A``) within 0.3 Angstrom; sites of
other species (anions, say) are ignored. A lattice site of the hop's environment with no atom
in the structure counts as a vacancy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kmcflow.errors import StructureError
from kmcflow.kmc.environment import (
    check_key_fits,
    environment_key,
    hop_environments,
    key_digits,
    key_text,
)
from kmcflow.kmc.lattice import LatticeDefinition, nearest_neighbours

MATCH_TOLERANCE_A = 0.3
"""A structure site lies on a lattice site when it is closer than this (Angstrom)."""
VACANCY_MARKER = "X"
"""Species symbol of a site that stands for a vacancy (pymatgen's dummy species ``X``)."""


@dataclass(frozen=True)
class HopEnvironmentKey:
    """The identity of a hop: moving species (1-based code), hop class, environment key."""

    moving_species: int
    hop_class: int
    env_key: int
    text: str


def _symbol(site) -> str:
    sp = site.specie if site.is_ordered else max(site.species.items(), key=lambda x: x[1])[0]
    return str(getattr(sp, "symbol", sp))


def hop_environment_key(
    structure,
    initial_index: int,
    final_index: int | np.ndarray,
    lattice: LatticeDefinition,
    species: list[str],
    vacancy_marker: str = VACANCY_MARKER,
) -> HopEnvironmentKey:
    """Return the engine's key of the hop ``initial_index -> final_index`` in ``structure``.

    Parameters
    ----------
    structure
        A pymatgen ``Structure`` whose lattice sites lie on ``lattice`` (same frame).
    initial_index
        Index of the moving atom's site.
    final_index
        Index of the vacancy's site (its species must be ``vacancy_marker``), or a Cartesian
        position (3 numbers, Angstrom) where the vacancy site is absent from the structure.
    lattice
        The kMC lattice.
    species
        Species names in engine order: species ``i`` has occupation code ``i + 1``.
    vacancy_marker
        Species symbol that marks a vacancy site (default ``"X"``, a pymatgen dummy species).

    """
    names = [str(s) for s in species]
    envs = hop_environments(lattice)
    n_species = len(names)
    check_key_fits(envs, n_species)
    shell = nearest_neighbours(lattice)
    a = lattice.vectors_A
    a_inv = np.linalg.inv(a)
    symbols = [_symbol(site) for site in structure]
    on_lattice = np.array([s in names or s == vacancy_marker for s in symbols], bool)
    cart = np.array(structure.cart_coords, float)
    matrix = np.array(structure.lattice.matrix, float)

    if not 0 <= int(initial_index) < len(structure):
        raise StructureError(f"initial_index {initial_index} is not a site of the structure",
                             field="initial_index")
    moving = symbols[int(initial_index)]
    if moving not in names:
        raise StructureError(f"site {initial_index} ({moving}) is not one of the species "
                             f"{', '.join(names)}", field="initial_index")
    final_site: int | None
    if np.ndim(final_index) == 0:
        final_site = int(final_index)
        if not 0 <= final_site < len(structure):
            raise StructureError(f"final_index {final_index} is not a site of the structure",
                                 field="final_index")
        if symbols[final_site] != vacancy_marker:
            raise StructureError(f"site {final_site} ({symbols[final_site]}) is not marked as a "
                                 f"vacancy", field="final_index",
                                 hint=f"give it the species {vacancy_marker!r}")
        x_v = cart[final_site]
    else:
        final_site = None
        x_v = np.asarray(final_index, float).reshape(3)

    def basis_of(x: np.ndarray, what: str) -> int:
        f = x @ a_inv
        best, best_d = -1, np.inf
        for b in range(lattice.n_basis):
            df = f - lattice.basis_frac[b]
            dist = float(np.linalg.norm((df - np.round(df)) @ a))
            if dist < best_d:
                best, best_d = b, dist
        if best_d > MATCH_TOLERANCE_A:
            raise StructureError(f"{what} is {best_d:.2f} Angstrom from the nearest site of the "
                                 f"{lattice.name} lattice (more than {MATCH_TOLERANCE_A})",
                                 field="structure",
                                 hint="put the structure in the kMC lattice's frame and origin")
        return best

    b_v = basis_of(x_v, "the vacancy site" if final_site is None else f"site {final_site}")
    basis_of(cart[int(initial_index)], f"site {initial_index}")

    inv_m = np.linalg.inv(matrix)
    df = (cart - x_v) @ inv_m
    rel = (df - np.round(df)) @ matrix  # minimum images from the vacancy
    d_hop = rel[int(initial_index)]
    coord = int(shell.coordination[b_v])
    gap = np.linalg.norm(shell.vector_A[b_v, :coord] - d_hop[None, :], axis=1)
    slot = int(np.argmin(gap))
    if gap[slot] > MATCH_TOLERANCE_A:
        raise StructureError(f"sites {initial_index} and the vacancy are not nearest "
                             "neighbours on the lattice", field="initial_index")
    c = int(envs.hop_class[b_v, slot])
    template = envs.env_vectors_A(b_v, slot, shell)

    codes = np.zeros(len(template), np.int64)  # an empty lattice site is a vacancy
    radius = float(np.linalg.norm(template, axis=1).max()) + MATCH_TOLERANCE_A
    filled: dict[int, int] = {}
    near = np.flatnonzero(on_lattice & (np.linalg.norm(rel, axis=1) < radius))
    for i in near.tolist():
        if i == int(initial_index) or i == final_site:
            continue
        dist = np.linalg.norm(template - rel[i][None, :], axis=1)
        e = int(np.argmin(dist))
        if dist[e] > MATCH_TOLERANCE_A:
            if min(np.linalg.norm(rel[i]), np.linalg.norm(rel[i] - d_hop)) < MATCH_TOLERANCE_A:
                raise StructureError(f"site {i} ({symbols[i]}) sits on an end of the hop",
                                     field="structure")
            # a site farther out than the environment must still lie on the lattice
            basis_of(cart[i], f"site {i} ({symbols[i]})")
            continue
        if e in filled:
            raise StructureError(f"sites {filled[e]} and {i} sit on the same lattice site",
                                 field="structure")
        filled[e] = i
        codes[e] = 0 if symbols[i] == vacancy_marker else names.index(symbols[i]) + 1
    key = environment_key(codes, c, envs, n_species)
    digits = key_digits(key, envs, n_species)[: int(envs.n_env_of_class[c])]
    moving_code = names.index(moving) + 1
    return HopEnvironmentKey(moving_code, c, key, key_text(names, moving_code, c, digits))
