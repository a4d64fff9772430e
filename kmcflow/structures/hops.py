"""Symmetry-distinct cation vacancy hops in a bulk crystal or an interface slab.

A *hop* is directed: an atom of the mobile species on site ``i`` jumps into a vacancy on a
neighbouring *network* site ``j`` (in the cell ``image`` of ``j``). Network sites are the sites
the mobile species can occupy: in a bulk crystal its own sites; in an interface also the cation
sites of a host that lacks the mobile species (in Cu|Ni the Ni sites for a Cu atom: the cation
sublattice the two hosts share). ``network_species`` overrides this rule.

Neighbours: by default the first shell of each mobile site (every network site within
``1 + shell_tolerance`` times that site's shortest network distance); ``max_length_A`` takes
every network site up to that length instead.

Two hops are equivalent when a symmetry operation maps one onto the other (the space group of a
bulk crystal; for an interface, the operations that keep every site's signed distance from
the interface: in-plane ones, and in a bi-crystal those swapping its two interfaces; see
:mod:`kmcflow.structures.symmetry`). Each distinct hop carries its multiplicity, the
number of equivalent directed hops in the cell, so the multiplicities add up to the number of
directed hops of the cell.

Each hop carries the catalog event key ``species/initial_region->final_region`` built with the
engine's own region rule (:func:`kmcflow.kmc.catalog.region_name`): a barrier computed for the
hop lands in the catalog entry the engine will use for it. For an interface each hop also has a
``band``: 0 when it touches a network layer adjacent to the interface plane, k when its nearer
end lies in the (k+1)-th network layer from the interface.

The ``host:interface`` regions of the event keys are assigned as the engine assigns them on
its lattice: the k-th network layer from the plane is taken at (k - 1/2) d, d the substrate's
network layer spacing, whatever the strained geometry says, so the key of a hop is the key of
the same hop in the kMC lattice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kmcflow.errors import StructureError
from kmcflow.kmc.catalog import event_key, region_name
from kmcflow.structures.io import DISTANCE, HOST, LabelledStructure, read_structure
from kmcflow.structures.symmetry import symmetry_mappings

MAX_HOP_LENGTH_A = 10.0
"""The longest hop considered: beyond a few shells a jump is no vacancy hop."""
ANION_ELEMENTS = frozenset({"O", "S", "Se", "Te", "F", "Cl", "Br", "I", "N", "H"})
LAYER_TOLERANCE_A = 0.3


@dataclass
class Hop:
    """One symmetry-distinct directed vacancy hop (see the module docstring)."""

    index: int
    species: str
    initial_site: int
    final_site: int
    final_image: tuple[int, int, int]
    length_A: float
    multiplicity: int
    initial_host: str
    final_host: str
    initial_region: str
    final_region: str
    final_site_species: str
    band: int | None = None
    initial_distance_A: float | None = None
    final_distance_A: float | None = None

    @property
    def event_key(self) -> str:
        """The catalog event key of this hop."""
        return event_key(self.species, self.initial_region, self.final_region)

    def record(self) -> dict[str, Any]:
        """Return the hop as a JSON-ready dictionary."""
        return {
            "index": self.index,
            "species": self.species,
            "length_A": round(self.length_A, 6),
            "multiplicity": self.multiplicity,
            "initial_host": self.initial_host,
            "final_host": self.final_host,
            "initial_region": self.initial_region,
            "final_region": self.final_region,
            "band": self.band,
            "event_key": self.event_key,
            "initial_site": self.initial_site,
            "final_site": self.final_site,
            "final_image": list(self.final_image),
            "final_site_species": self.final_site_species,
            "initial_distance_A": _round(self.initial_distance_A),
            "final_distance_A": _round(self.final_distance_A),
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


@dataclass
class HopSet:
    """The distinct hops of one structure, with what was counted to find them."""

    structure_name: str
    is_interface: bool
    species: list[str]
    network_species: list[str]
    band_thickness_A: float
    n_directed_hops: int
    n_symmetry_operations: int
    hops: list[Hop] = field(default_factory=list)

    def by_band(self) -> dict[int | None, list[Hop]]:
        """Group the hops by distance band (None for a bulk crystal)."""
        groups: dict[int | None, list[Hop]] = {}
        for hop in self.hops:
            groups.setdefault(hop.band, []).append(hop)
        return groups


def _element(site) -> str:
    return site.specie.symbol if hasattr(site.specie, "symbol") else site.species_string


def is_cation(site) -> bool:
    """Whether a site holds a cation: a positive oxidation state, else not a typical anion."""
    oxi = getattr(site.specie, "oxi_state", None)
    if oxi is not None and oxi != 0:
        return oxi > 0
    return _element(site) not in ANION_ELEMENTS


def default_network(labelled: LabelledStructure, species: str) -> list[str]:
    """The species whose sites a mobile ``species`` can hop into (see the module docstring)."""
    s = labelled.structure
    network = {species}
    if labelled.is_interface:
        hosts = s.site_properties[HOST]
        for host in sorted(set(hosts)):
            members = [site for site, h in zip(s, hosts, strict=True) if h == host]
            if not any(_element(site) == species for site in members):
                network |= {_element(site) for site in members if is_cation(site)}
    return sorted(network)


def enumerate_hops(
    labelled: LabelledStructure | Any,
    species: str | list[str],
    *,
    network_species: list[str] | None = None,
    shell_tolerance: float = 0.1,
    max_length_A: float | None = None,
    band_thickness_A: float = 0.0,
    symprec_A: float = 0.05,
) -> HopSet:
    """Enumerate the symmetry-distinct vacancy hops of one or more mobile species.

    Parameters
    ----------
    labelled
        A bulk crystal or an interface: anything :func:`kmcflow.structures.io.read_structure`
        takes (a labelled structure, a pymatgen ``Structure``, ASE ``Atoms``, a file).
    species
        The mobile species (element symbols), one or several.
    network_species
        Elements whose sites form the hop network; default :func:`default_network`.
    shell_tolerance
        Relative width of the first neighbour shell.
    max_length_A
        Take every hop up to this length instead of the first shell.
    band_thickness_A
        The catalog's ``interface.band_thickness_A``; sites within it of an interface plane
        are in the ``host:interface`` region.
    symprec_A
        Position tolerance of the symmetry search.

    """
    labelled = read_structure(labelled)
    s = labelled.structure
    elements = [_element(site) for site in s]
    if not isinstance(species, str | list | tuple) or not all(
            isinstance(s, str) for s in ([species] if isinstance(species, str) else species)):
        raise StructureError(f"species must be an element symbol or a list of them, got "
                             f"{species!r}", field="species", hint="e.g. 'Li' or ['Cu', 'Ni']")
    mobile_species = [species] if isinstance(species, str) else list(species)
    if not mobile_species:
        raise StructureError("no mobile species given", field="species", hint="e.g. --species Li")
    for sp in mobile_species:
        if sp not in elements:
            raise StructureError(f"the structure has no {sp!r} sites", file=labelled.source,
                                 field="species",
                                 hint=f"choose among {', '.join(sorted(set(elements)))}")
    if max_length_A is not None and not 0 < max_length_A <= MAX_HOP_LENGTH_A:
        raise StructureError(f"max hop length must lie in (0, {MAX_HOP_LENGTH_A:g}] Angstrom, "
                             f"got {max_length_A}", field="max_length_A",
                             hint="vacancy hops are first- or second-shell jumps: e.g. 4")
    if not 0 < shell_tolerance < 1:
        raise StructureError(f"shell tolerance {shell_tolerance} is not in (0, 1)",
                             field="shell_tolerance", hint="0.1 takes hops within 10 % of the "
                             "shortest")
    if not (band_thickness_A >= 0 and math.isfinite(band_thickness_A)):
        raise StructureError(f"band thickness must be a non-negative number of Angstrom, got "
                             f"{band_thickness_A}", field="band_thickness_A")
    hosts = s.site_properties[HOST]
    distance = s.site_properties.get(DISTANCE) if labelled.is_interface else None
    mappings = symmetry_mappings(labelled, symprec_A)
    hops: list[Hop] = []
    total = 0
    networks: set[str] = set()
    for sp in mobile_species:
        network = sorted(network_species) if network_species else default_network(labelled, sp)
        networks |= set(network)
        directed = _neighbour_hops(s, elements, sp, network, shell_tolerance, max_length_A,
                                   labelled.source)
        total += len(directed)
        rank, spacing = (_layer_rank(labelled, [e in network for e in elements])
                         if labelled.is_interface else (None, None))
        for orbit in _orbits(directed, mappings):
            i, j, img = orbit[0]
            d_i = None if distance is None else float(distance[i])
            d_j = None if distance is None else float(distance[j])
            band = None if rank is None else int(min(rank[i], rank[j]) - 1)
            # regions as the engine assigns them: layer k from the plane sits at (k - 1/2) d
            e_i = None if rank is None else (rank[i] - 0.5) * spacing
            e_j = None if rank is None else (rank[j] - 0.5) * spacing
            vec = (s.frac_coords[j] + np.asarray(img) - s.frac_coords[i]) @ s.lattice.matrix
            hops.append(Hop(
                index=-1, species=sp, initial_site=int(i), final_site=int(j),
                final_image=tuple(int(v) for v in img), length_A=float(np.linalg.norm(vec)),
                multiplicity=len(orbit), initial_host=hosts[i], final_host=hosts[j],
                initial_region=region_name(hosts[i], e_i, band_thickness_A),
                final_region=region_name(hosts[j], e_j, band_thickness_A),
                final_site_species=elements[j], band=band,
                initial_distance_A=d_i, final_distance_A=d_j))
    hops.sort(key=lambda h: (h.species, -1 if h.band is None else h.band,
                             round(h.length_A, 3), h.initial_host, h.final_host,
                             h.initial_site, h.final_site))
    for k, hop in enumerate(hops):
        hop.index = k
    return HopSet(labelled.name, labelled.is_interface, mobile_species, sorted(networks),
                  band_thickness_A, total, len(mappings), hops)


def _neighbour_hops(s, elements: list[str], species: str, network: list[str],
                    shell_tolerance: float, max_length_A: float | None,
                    source: str) -> list[tuple[int, int, tuple[int, int, int]]]:
    """Return every directed hop (i, j, image of j) of the mobile species in the cell."""
    mobile = [i for i, e in enumerate(elements) if e == species]
    is_network = np.array([e in network for e in elements])
    cutoff = max_length_A if max_length_A is not None else 4.0
    while True:
        centers, points, images, dist = s.get_neighbor_list(cutoff, sites=[s[i] for i in mobile])
        keep = is_network[points] & (dist > 1e-6)
        centers, points, images, dist = centers[keep], points[keep], images[keep], dist[keep]
        found = set(centers.tolist())
        if max_length_A is not None or len(found) == len(mobile) or cutoff > 12.0:
            break
        cutoff *= 1.5
    if max_length_A is None:
        if len(found) < len(mobile):
            raise StructureError(f"some {species} sites have no network site within "
                                 f"{cutoff:.1f} Angstrom", file=source, field="species",
                                 hint="check the structure, or give the network species")
        nearest = np.full(len(mobile), np.inf)
        np.minimum.at(nearest, centers, dist)
        keep = dist <= nearest[centers] * (1.0 + shell_tolerance)
        centers, points, images, dist = centers[keep], points[keep], images[keep], dist[keep]
    if len(centers) == 0:
        raise StructureError(f"no {species} hops up to {cutoff:.2f} Angstrom", file=source,
                             field="max_length_A", hint="raise the maximum hop length")
    return [(mobile[c], int(p), tuple(int(v) for v in im))
            for c, p, im in zip(centers, points, images, strict=True)]


def _orbits(directed: list[tuple[int, int, tuple[int, int, int]]],
            mappings) -> list[list[tuple[int, int, tuple[int, int, int]]]]:
    """Group directed hops into symmetry orbits (union-find over the site mappings)."""
    index = {h: k for k, h in enumerate(directed)}
    parent = list(range(len(directed)))

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    arr = np.array([[i, j, *img] for i, j, img in directed], dtype=int)
    for m in mappings:
        ni = m.perm[arr[:, 0]]
        nj = m.perm[arr[:, 1]]
        nimg = m.shift[arr[:, 1]] + arr[:, 2:5] @ m.rotation.T - m.shift[arr[:, 0]]
        for k in range(len(directed)):
            other = index.get((int(ni[k]), int(nj[k]), tuple(int(v) for v in nimg[k])))
            if other is None:
                continue  # mapped outside the neighbour set: a tolerance edge case, keep apart
            a, b = find(k), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[tuple[int, int, tuple[int, int, int]]]] = {}
    for k, h in enumerate(directed):
        groups.setdefault(find(k), []).append(h)
    return [sorted(g) for _, g in sorted(groups.items())]


def _layer_rank(labelled: LabelledStructure, network: list[bool]) -> tuple[np.ndarray, float]:
    """Return the network layer rank of each site and the substrate's network layer spacing.

    Ranks count layers from the interface on each site's own side (1 = adjacent); the spacing
    (Angstrom) is the engine's layer spacing on the substrate's lattice.
    """
    s = labelled.structure
    dist = np.asarray(s.site_properties[DISTANCE], dtype=float)
    net = np.asarray(network, dtype=bool)
    rank = np.zeros(len(s), dtype=int)
    for side in (dist < 0, dist >= 0):
        idx = np.flatnonzero(side & net)
        if idx.size == 0:
            continue
        mags = np.abs(dist[idx])
        order = np.argsort(mags, kind="stable")
        steps = np.diff(mags[order]) > LAYER_TOLERANCE_A
        rank[idx[order]] = np.concatenate([[1], 1 + np.cumsum(steps)])
    for side in (dist < 0, dist >= 0):  # the substrate's spacing; the film's if it has none
        heights = np.sort(np.abs(dist[side & net]))
        if heights.size == 0:
            continue
        layers = heights[np.concatenate([[True], np.diff(heights) > LAYER_TOLERANCE_A])]
        if len(layers) >= 2:
            return rank, float(np.median(np.diff(layers)))
    raise StructureError("no side of the interface has two layers of network sites",
                         file=labelled.source, hint="thicken the slabs")
