"""The kMC lattice of a structure: its cation (network) sublattice as a catalog ``lattice``.

For a bulk crystal the network sites of the cell give the lattice; for an interface the
substrate's network sites do, in the interface orientation (a1 along x, a2 in the x-y plane,
the interface normal along z, as the engine wants). The film is coherent with the substrate in
plane; its different spacing along the normal is not part of a lattice model. The stacking
vector ``a3`` is the shortest translation (smallest normal component, in-plane part reduced)
that maps the substrate's network sites onto themselves.

When the sublattice is fcc, bcc or simple cubic and the interface normal is a cube axis (layer
spacing a/2, a/2, a respectively; no other plane family of these lattices has it) the lattice is
the named preset with its cubic constant; otherwise a general lattice with basis. Either way
the result is checked by building it with :mod:`kmcflow.kmc.lattice`.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from typing import Any

import numpy as np

from kmcflow.errors import StructureError
from kmcflow.structures.geometry import group_layers, plane_normal, rotation_to_z
from kmcflow.structures.io import HOST, LabelledStructure

POSITION_TOLERANCE_A = 0.05
_PRESET_BY_SPACEGROUP = {225: ("fcc", 4, 0.5), 229: ("bcc", 2, 0.5), 221: ("sc", 1, 1.0)}


def _elements(structure) -> list[str]:
    return [site.specie.symbol if hasattr(site.specie, "symbol") else site.species_string
            for site in structure]


def _preset_of(vectors: np.ndarray, cart: np.ndarray) -> tuple[str, float] | None:
    """Return (preset, cubic a) when the point lattice is fcc/bcc/sc with a cube-axis normal."""
    import spglib

    frac = np.mod(cart @ np.linalg.inv(vectors), 1.0)
    dataset = spglib.get_symmetry_dataset((vectors, frac, np.ones(len(frac), int)),
                                          symprec=POSITION_TOLERANCE_A)
    if dataset is None or dataset.number not in _PRESET_BY_SPACEGROUP:
        return None
    name, sites_per_cube, spacing_over_a = _PRESET_BY_SPACEGROUP[dataset.number]
    volume_per_site = abs(np.linalg.det(vectors)) / len(frac)
    a = (volume_per_site * sites_per_cube) ** (1 / 3)
    heights = cart[:, 2]
    layers = group_layers(heights, 0.1)
    n_layers = int(layers.max()) + 1
    spacing = vectors[2, 2] / n_layers
    if abs(spacing - spacing_over_a * a) > 1e-3 * a:
        return None
    return name, float(a)


def _stacking_vector(cart: np.ndarray, matrix: np.ndarray, source: str) -> np.ndarray:
    """Shortest translation with a positive normal part mapping the sites onto themselves."""
    inplane = matrix[:2]
    n = plane_normal(matrix)
    h = cart @ n
    top = h.max()
    inv2 = np.linalg.pinv(inplane)  # in-plane fractional coordinates of a vector

    def covered(points: np.ndarray) -> bool:
        for p in points:
            d = cart - p
            d -= (np.round(d @ inv2) @ inplane)
            if np.min(np.linalg.norm(d, axis=1)) > POSITION_TOLERANCE_A:
                return False
        return True

    ref = cart[np.argmin(h)]
    candidates = cart[h > h.min() + 0.1] - ref
    order = np.lexsort((np.linalg.norm(candidates, axis=1), candidates @ n))
    for t in candidates[order]:
        inside = cart[h + t @ n <= top + POSITION_TOLERANCE_A]
        if len(inside) and covered(inside + t):
            frac = t @ inv2  # reduce the in-plane part into the cell around the origin
            best = t
            for da, db in itertools.product(range(-2, 3), repeat=2):
                trial = t - (np.floor(frac) + np.array([da, db])) @ inplane
                if np.linalg.norm(trial - (trial @ n) * n) < np.linalg.norm(best - (best @ n) * n):
                    best = trial
            return best
    raise StructureError("the substrate's cation sites do not repeat along the normal within "
                         "the slab", file=source, hint="thicken the substrate (two repeats at "
                         "least)")


def kmc_lattice(labelled: LabelledStructure, network_species: list[str]) -> dict[str, Any]:
    """Return the catalog ``lattice`` section of the structure's network sublattice."""
    s = labelled.structure
    elements = _elements(s)
    net = np.array([e in network_species for e in elements])
    if not net.any():
        raise StructureError(f"no sites of {network_species} in the structure",
                             file=labelled.source, field="species")
    if labelled.is_interface:
        info = labelled.interface
        sub = np.array([h == info.substrate_name for h in s.site_properties[HOST]])
        cart = s.cart_coords[net & sub]
        matrix = s.lattice.matrix
        if len(cart) == 0:
            raise StructureError("the substrate has none of the network species",
                                 file=labelled.source, field="species")
        t = _stacking_vector(cart, matrix, labelled.source)
        return _interface_lattice(cart, matrix, t, labelled.source)
    return _cell_lattice(s.lattice.matrix.copy(), s.cart_coords[net], s.lattice.matrix)


def _interface_lattice(cart: np.ndarray, matrix: np.ndarray, t: np.ndarray,
                       source: str) -> dict[str, Any]:
    """Lattice spec with a3 = k stacking steps, the smallest k the engine can use.

    One step can leave a nearest neighbour two cells up (fcc(110), bcc(111)); k steps with
    k layers of basis keep every neighbour within one cell. The coordination of the result
    must equal that of a cell of several steps (the reference), so no neighbour is lost.
    """
    from kmcflow.errors import LatticeError
    from kmcflow.kmc import lattice as kmc_lat

    n = plane_normal(matrix)
    h = cart @ n
    specs, coordination = [], []
    for k in range(1, 7):
        vectors = np.vstack([matrix[0], matrix[1], k * t])
        layer = cart[h < h.min() + k * (t @ n) - POSITION_TOLERANCE_A]
        if k > 1 and len(layer) < len(cart[h < h.min() + (t @ n) - POSITION_TOLERANCE_A]) * k:
            break  # the slab holds fewer than k repeats
        try:
            spec = _cell_lattice(vectors, layer, matrix)
            if "preset" in spec:
                return spec
            shell = kmc_lat.nearest_neighbours(kmc_lat.general(spec["vectors_A"],
                                                               spec["basis_frac"]))
        except LatticeError:
            continue
        specs.append(spec)
        coordination.append(sorted(set(shell.coordination.tolist())))
    if not specs:
        raise StructureError("no stacking of the substrate's cation sites gives a lattice the "
                             "engine can use", file=source, hint="thicken the substrate")
    reference = coordination[-1]
    for spec, coord in zip(specs, coordination, strict=True):
        if coord == reference:
            return spec
    return specs[-1]


def _cell_lattice(vectors: np.ndarray, cart: np.ndarray, normal_from: np.ndarray
                  ) -> dict[str, Any]:
    """Lattice spec of the points ``cart`` in the cell ``vectors`` (rotated to z normal)."""
    from kmcflow.kmc import lattice as kmc_lat

    matrix = normal_from
    rot = rotation_to_z(vectors)
    vectors = vectors @ rot.T
    cart = (cart - cart[np.argmin(cart @ plane_normal(matrix))]) @ rot.T
    frac = np.mod(cart @ np.linalg.inv(vectors), 1.0)
    frac[np.isclose(frac, 1.0, atol=1e-9)] = 0.0
    cart = frac @ vectors
    preset = _preset_of(vectors, cart)
    if preset is not None:
        spec = {"preset": preset[0], "a_A": round(preset[1], 6)}
        kmc_lat.preset(preset[0], preset[1])
        return spec
    vectors = np.where(np.abs(vectors) < 1e-10, 0.0, vectors)
    spec = {"vectors_A": np.round(vectors, 6).tolist(), "basis_frac": np.round(frac, 6).tolist()}
    definition = kmc_lat.general(spec["vectors_A"], spec["basis_frac"])
    kmc_lat.nearest_neighbours(definition)  # raises on a cell the engine cannot use
    return spec


def catalog_sections(labelled: LabelledStructure, network_species: list[str], *,
                     band_thickness_A: float = 0.0) -> dict[str, Any]:
    """Return the catalog sections a structure fixes.

    ``lattice`` always; for an interface also ``hosts`` (substrate first, each with its most
    common network species), ``species`` and ``interface`` (boundary: periodic for a
    bi-crystal, closed for a slab; the substrate's share of the cation layers; the band).
    """
    if not (band_thickness_A >= 0 and math.isfinite(band_thickness_A)):
        raise StructureError(f"band thickness must be a non-negative number of Angstrom, got "
                             f"{band_thickness_A}", field="band_thickness_A",
                             hint="e.g. --band-thickness 0 (no interface band) or 3.0")
    sections: dict[str, Any] = {"lattice": kmc_lattice(labelled, network_species)}
    if not labelled.is_interface:
        return sections
    info = labelled.interface
    s = labelled.structure
    elements = _elements(s)
    hosts = s.site_properties[HOST]
    net = [e in network_species for e in elements]
    heights = s.cart_coords @ plane_normal(s.lattice.matrix)
    host_records, layer_counts, species = [], [], []
    for name in info.hosts:
        members = [k for k in range(len(s)) if hosts[k] == name and net[k]]
        if not members:
            raise StructureError(f"host {name} has none of the network species",
                                 file=labelled.source, field="species")
        common = Counter(elements[k] for k in members).most_common(1)[0][0]
        host_records.append({"name": name, "initial_species": common})
        layer_counts.append(int(group_layers(heights[members], 0.3).max()) + 1)
        species.append(common)
    fraction = layer_counts[0] / sum(layer_counts)
    sections["species"] = sorted(set(species) | set(network_species) & set(elements))
    sections["hosts"] = host_records
    sections["interface"] = {
        "boundary_z": "periodic" if info.periodic_bicrystal else "closed",
        "first_host_fraction": round(fraction, 6),
        "band_thickness_A": float(band_thickness_A),
    }
    if not math.isfinite(fraction) or not 0 < fraction < 1:
        raise StructureError("cannot split the layers between the hosts", file=labelled.source)
    return sections
