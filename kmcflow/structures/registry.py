"""How the film sits on the substrate: the in-plane registry search of an interface.

pymatgen's ``CoherentInterfaceBuilder`` leaves the film at in-plane offset (0, 0), which
stacks film atoms directly on substrate atoms, and it flips the film over, which reverses an
ABC stacking into a twin. :func:`best_registry` finds the placement that carries the crystal
on; :func:`apply_registry` moves the film there; :func:`check_like_ions_facing` refuses an
ionic interface whose closest contact still joins like ions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from kmcflow.errors import StructureError
from kmcflow.structures.geometry import plane_normal


@dataclass(frozen=True)
class Registry:
    """The film's placement in plane: C2-rotated about the normal or not, then shifted."""

    offset_frac: tuple[float, float]
    film_rotated: bool
    like_ion_distance_A: float
    any_pair_distance_A: float

    def record(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"offset_frac": [round(x, 6) for x in self.offset_frac],
                "film_rotated_180": self.film_rotated,
                "shortest_like_ion_distance_A": round(self.like_ion_distance_A, 4),
                "shortest_cross_distance_A": round(self.any_pair_distance_A, 4)}


def _c2_about_normal(cart: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Rotate positions by 180 degrees about the normal axis through the origin."""
    return 2.0 * np.outer(cart @ n, n) - cart


def best_registry(iface, resolution_A: float = 0.2, reach_A: float = 5.0) -> Registry:
    """Choose how the film sits on the substrate in plane so that the crystal carries on.

    pymatgen leaves the film at offset (0, 0), which stacks film atoms on top of substrate
    atoms, and it flips the film over, which reverses an ABC stacking into a twin. This scans
    both film orientations (as built, and rotated 180 degrees about the normal, which restores
    the stacking order of a flipped film) and in-plane offsets on a grid of about
    ``resolution_A`` (a multiple of 12 points per side, so 1/2, 1/3, 1/4 and 1/6 are on it), and
    keeps, in order: the largest shortest distance between like ions facing each other across
    the interface (cation-cation and anion-anion; every atom of a metal is a cation), then the
    largest shortest distance of any cross pair, then the smallest soft repulsion
    sum(d^-12) over like cross pairs within ``reach_A`` of the facing layers (this sees the
    second layers, so fcc(111) continues ABC|ABC and not as a twin), then the smallest offset.
    """
    from kmcflow.structures.hops import is_cation

    matrix = iface.lattice.matrix
    inv = np.linalg.inv(matrix)
    n = plane_normal(matrix)
    is_sub = np.array([lbl == "substrate" for lbl in iface.site_properties["interface_label"]])
    cart = iface.cart_coords
    h = cart @ n
    sub_idx = np.flatnonzero(is_sub & (h >= h[is_sub].max() - reach_A))
    film_idx = np.flatnonzero(~is_sub & (h <= h[~is_sub].min() + reach_A))
    cation = np.array([is_cation(site) for site in iface])
    like = (cation[sub_idx][:, None] == cation[film_idx][None, :]).reshape(-1)
    sub_frac = cart[sub_idx] @ inv
    images = np.array([[i, j, 0] for i in (-1, 0, 1) for j in (-1, 0, 1)], float)
    na, nb = (int(min(48, 12 * math.ceil(np.linalg.norm(v) / (12 * resolution_A))))
              for v in matrix[:2])
    best_key, best = None, None
    for rotated in (False, True):
        film_cart = _c2_about_normal(cart[film_idx], n) if rotated else cart[film_idx]
        base = (film_cart @ inv)[None, :, :] - sub_frac[:, None, :]
        base = base.reshape(-1, 3)
        for fa in np.arange(na) / na:
            for fb in np.arange(nb) / nb:
                d = base + np.array([fa, fb, 0.0])
                d[:, :2] -= np.round(d[:, :2])  # nearest in-plane image, then its neighbours
                dist = np.linalg.norm((d[:, None, :] + images[None]) @ matrix, axis=2)
                shortest = dist.min(axis=1)
                like_min = shortest[like].min() if like.any() else shortest.min()
                repulsion = float(np.sum(dist[like] ** -12.0)) if like.any() else 0.0
                key = (round(float(like_min), 2), round(float(shortest.min()), 2),
                       -round(math.log(repulsion), 3) if repulsion > 0 else 0.0,
                       -round(min(fa, 1 - fa) + min(fb, 1 - fb), 6), not rotated)
                if best_key is None or key > best_key:
                    best_key = key
                    best = Registry((float(fa), float(fb)), rotated, float(like_min),
                                    float(shortest.min()))
    return best


def apply_registry(iface, registry: Registry) -> None:
    """Move the film sites of a pymatgen ``Interface`` in place as ``registry`` says."""
    matrix = iface.lattice.matrix
    n = plane_normal(matrix)
    shift = registry.offset_frac[0] * matrix[0] + registry.offset_frac[1] * matrix[1]
    for i, label in enumerate(iface.site_properties["interface_label"]):
        if label == "substrate":
            continue
        p = iface[i].coords
        if registry.film_rotated:
            p = _c2_about_normal(p[None, :], n)[0]
        iface.replace(i, iface[i].species, coords=p + shift, coords_are_cartesian=True,
                      properties=dict(iface[i].properties))


def check_like_ions_facing(iface, registry: Registry, allow: bool) -> None:
    """Refuse an ionic interface whose closest cross contact joins like ions (polar faces)."""
    from kmcflow.structures.hops import is_cation

    kinds = {is_cation(site) for site in iface}
    if allow or len(kinds) < 2:
        return
    if registry.like_ion_distance_A <= registry.any_pair_distance_A + 1e-6:
        raise StructureError(
            f"like ions face each other across the interface ({registry.like_ion_distance_A:.2f}"
            " A apart, no closer unlike pair): the terminations are polar or mismatched",
            field="termination", hint="choose another termination or Miller plane, or pass "
            "--allow-like-ions-facing")
