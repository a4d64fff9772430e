"""Symmetry operations of a labelled structure and how they permute its sites.

spglib finds the operations of the cell with every site typed by (species, host), so that two
hosts made of the same element are never mixed up. For an interface only the operations that
map every site onto one at the same signed distance from the (nearest) interface plane count:
in a slab these are the in-plane operations; in a periodic bi-crystal also those that swap its
two equivalent interfaces. Positions are used as stored (not wrapped into the cell), so the
lattice shifts match the images of a neighbour list built on the same structure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kmcflow.structures.io import DISTANCE, HOST, LabelledStructure


@dataclass(frozen=True)
class SiteMapping:
    """How one symmetry operation maps the sites of the cell.

    ``image[i] = perm[i]`` plus the lattice translation ``shift[i]``: the operation takes the
    site ``i`` in the home cell to site ``perm[i]`` in the cell ``shift[i]``.
    """

    rotation: np.ndarray  # (3, 3) integer, acts on fractional column vectors
    translation: np.ndarray  # (3,) fractional
    perm: np.ndarray  # (n,) int
    shift: np.ndarray  # (n, 3) int


def _site_types(labelled: LabelledStructure) -> np.ndarray:
    s = labelled.structure
    keys = [(site.species_string, host) for site, host in zip(s, s.site_properties[HOST],
                                                              strict=True)]
    table = {k: i for i, k in enumerate(sorted(set(keys)))}
    return np.array([table[k] for k in keys], dtype=int)


def symmetry_mappings(labelled: LabelledStructure, symprec_A: float = 0.05) -> list[SiteMapping]:
    """Return the site mappings of the symmetry operations that count for this structure.

    For a bulk crystal all space-group operations of the cell; for an interface only those
    that keep heights along the interface normal unchanged. The identity is always first.
    """
    import spglib

    s = labelled.structure
    frac = s.frac_coords
    types = _site_types(labelled)
    cell = (s.lattice.matrix, np.mod(frac, 1.0), types)
    dataset = spglib.get_symmetry(cell, symprec=symprec_A)
    rotations = [np.eye(3, dtype=int)]
    translations = [np.zeros(3)]
    if dataset is not None:
        rotations += [np.asarray(r, dtype=int) for r in dataset["rotations"]]
        translations += [np.asarray(t, dtype=float) for t in dataset["translations"]]
    matrix = s.lattice.matrix
    signed = (np.asarray(s.site_properties[DISTANCE], dtype=float) if labelled.is_interface
              else None)
    mappings: list[SiteMapping] = []
    seen: set[tuple] = set()
    for rot, trans in zip(rotations, translations, strict=True):
        key = (rot.tobytes(), tuple(np.round(np.mod(trans, 1.0), 6) % 1.0))
        if key in seen:
            continue
        seen.add(key)
        mapped = frac @ rot.T + trans
        perm, shift = _match_sites(frac, mapped, types, matrix, symprec_A)
        if perm is None:
            continue
        if signed is not None and not np.allclose(signed[perm], signed, atol=symprec_A):
            continue  # it would move a site to another distance from the interface
        mappings.append(SiteMapping(rot, trans, perm, shift))
    return mappings


def _match_sites(frac: np.ndarray, mapped: np.ndarray, types: np.ndarray, matrix: np.ndarray,
                 tol_A: float) -> tuple[np.ndarray | None, np.ndarray]:
    """Find, for each mapped position, the site (same type) it lands on and the cell shift."""
    n = len(frac)
    perm = np.full(n, -1, dtype=int)
    shift = np.zeros((n, 3), dtype=int)
    for t in np.unique(types):
        idx = np.flatnonzero(types == t)
        diff = mapped[idx][:, None, :] - frac[idx][None, :, :]
        cells = np.round(diff)
        dist = np.linalg.norm((diff - cells) @ matrix, axis=2)
        best = np.argmin(dist, axis=1)
        if np.any(dist[np.arange(len(idx)), best] > tol_A):
            return None, shift
        perm[idx] = idx[best]
        shift[idx] = cells[np.arange(len(idx)), best].astype(int)
    if len(np.unique(perm)) != n:
        return None, shift
    return perm, shift
