"""NEB endpoints of a hop: the initial and final supercells with the vacancy.

The cell is repeated (diagonally; along the two in-plane vectors only for an interface) until
the shortest lattice vector of the supercell, which is the distance between periodic images of
the vacancy, reaches ``min_image_distance_A``; among the repeats that do, the one with fewest
atoms (then the most even one) is taken. In the *initial* structure the destination site is
empty; the *final* structure has the same atoms in the same order with the moving atom on the
destination site, so exactly one atom differs, by the hop length (minimum image).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from kmcflow.atomic_io import atomic_directory, write_json
from kmcflow.errors import KmcflowError, StructureError
from kmcflow.outputs import check_output_folder, write_marker
from kmcflow.structures.geometry import shortest_lattice_vector
from kmcflow.structures.hops import Hop, HopSet
from kmcflow.structures.io import (
    LabelledStructure,
    to_ase_atoms,
    write_extxyz,
    write_json_structure,
)

DEFAULT_MIN_IMAGE_DISTANCE_A = 8.0
DEFAULT_MAX_ATOMS = 600
MAX_ENDPOINT_ATOMS = 20_000
"""The largest endpoint supercell accepted (a DFT NEB of more atoms is not computed)."""
MANIFEST = "hops.json"


@dataclass
class EndpointPair:
    """The two NEB endpoints of one hop and the facts a NEB needs about them."""

    hop: Hop
    initial: LabelledStructure
    final: LabelledStructure
    moving_index: int
    supercell: tuple[int, int, int]
    vacancy_image_distance_A: float
    touches_fixed_atoms: bool

    def ase_atoms(self) -> tuple[Any, Any]:
        """The endpoints as ASE ``Atoms`` (fixed atoms as ``FixAtoms``), ready for a NEB."""
        return to_ase_atoms(self.initial, labels=False), to_ase_atoms(self.final, labels=False)


def _repeats_within(limit: list[int], most: int):
    """Every diagonal repeat (a, b, c) with a <= limit[0], ... and a * b * c <= most."""
    for a in range(1, limit[0] + 1):
        if a > most:
            return
        for b in range(1, limit[1] + 1):
            if a * b > most:
                break
            for c in range(1, limit[2] + 1):
                if a * b * c > most:
                    break
                yield a, b, c


def choose_supercell(matrix: np.ndarray, n_sites: int, min_image_distance_A: float, *,
                     in_plane_only: bool, max_atoms: int = DEFAULT_MAX_ATOMS,
                     source: str | None = None) -> tuple[tuple[int, int, int], float]:
    """Return the diagonal repeat and its image distance (see the module docstring)."""
    if not 0 < min_image_distance_A < math.inf:
        raise StructureError(f"vacancy image distance {min_image_distance_A:g} must be a "
                             "positive number of Angstrom", field="min_image_distance_A",
                             hint="e.g. 8 (Angstrom)")
    if not 1 <= max_atoms <= MAX_ENDPOINT_ATOMS:
        raise StructureError(f"max atoms {max_atoms} must lie in 1-{MAX_ENDPOINT_ATOMS} (no "
                             "NEB endpoint is larger)", field="max_atoms",
                             hint="e.g. --max-atoms 600")
    m = np.asarray(matrix, dtype=float)
    lengths = np.linalg.norm(m, axis=1)
    limit = [math.ceil(min_image_distance_A / max(L * 0.5, 1e-9)) + 1 for L in lengths]
    if in_plane_only:
        limit[2] = 1
    # no repeat may exceed max_atoms, so no axis needs more than max_atoms / n_sites copies:
    # the search stays small however large the distance asked for
    most = max(1, max_atoms // max(n_sites, 1))
    limit = [min(k, most) for k in limit]
    best: tuple[int, float, tuple[int, int, int], float] | None = None
    for reps in _repeats_within(limit, most):
        count = n_sites * reps[0] * reps[1] * reps[2]
        if best is not None and count > best[0]:
            continue
        if min(r * L for r, L in zip(reps, lengths, strict=True)) + 1e-9 < min_image_distance_A:
            continue  # a repeated cell vector is itself shorter than the distance asked for
        distance = shortest_lattice_vector(m * np.asarray(reps)[:, None])
        if distance + 1e-9 < min_image_distance_A:
            continue
        spread = max(reps[0] * lengths[0], reps[1] * lengths[1]) / min(
            reps[0] * lengths[0], reps[1] * lengths[1])
        if best is None or (count, spread) < (best[0], best[1]):
            best = (count, spread, reps, distance)
    if best is None:
        what = " or thicken the slab (use vacuum)" if in_plane_only else ""
        raise StructureError(f"no repeat of the cell within {max_atoms} atoms keeps vacancy "
                             f"images {min_image_distance_A:g} Angstrom apart", file=source,
                             field="max_atoms",
                             hint=f"lower --min-image-distance, raise --max-atoms{what}")
    return best[2], best[3]


def _nearest_site(frac_all: np.ndarray, target: np.ndarray, matrix: np.ndarray) -> tuple[int,
                                                                                        float]:
    diff = frac_all - target
    diff -= np.round(diff)
    dist = np.linalg.norm(diff @ matrix, axis=1)
    k = int(np.argmin(dist))
    return k, float(dist[k])


def hop_endpoints(labelled: LabelledStructure, hop: Hop,
                  min_image_distance_A: float = DEFAULT_MIN_IMAGE_DISTANCE_A,
                  max_atoms: int = DEFAULT_MAX_ATOMS) -> EndpointPair:
    """Build the initial and final supercells of one hop (see the module docstring).

    ``labelled`` is the structure the hop was enumerated on, as anything
    :func:`~kmcflow.structures.io.read_structure` takes.
    """
    from pymatgen.core import Structure

    from kmcflow.structures.io import read_structure

    labelled = read_structure(labelled)
    if not isinstance(hop, Hop):
        raise StructureError(f"hop must be a Hop from enumerate_hops, got a "
                             f"{type(hop).__name__}", field="hop")
    s = labelled.structure
    reps, image_distance = choose_supercell(
        s.lattice.matrix, len(s), min_image_distance_A, in_plane_only=labelled.is_interface,
        max_atoms=max_atoms, source=labelled.source)
    props = {k: v for k, v in s.site_properties.items() if k != "interface_label"}
    base = Structure(s.lattice, s.species, s.frac_coords, site_properties=props)
    sc = base.copy()
    sc.make_supercell(list(reps))
    matrix = sc.lattice.matrix
    cart_i = s.frac_coords[hop.initial_site] @ s.lattice.matrix
    cart_j = (s.frac_coords[hop.final_site] + np.asarray(hop.final_image)) @ s.lattice.matrix
    inv = np.linalg.inv(matrix)
    i_sc, di = _nearest_site(sc.frac_coords, cart_i @ inv, matrix)
    j_sc, dj = _nearest_site(sc.frac_coords, cart_j @ inv, matrix)
    if max(di, dj) > 1e-4 or i_sc == j_sc:
        raise StructureError("could not place the hop in the supercell", file=labelled.source)
    initial = sc.copy()
    initial.remove_sites([j_sc])
    moving = i_sc if i_sc < j_sc else i_sc - 1
    final = initial.copy()
    final.replace(moving, final[moving].species, coords=cart_j, coords_are_cartesian=True,
                  properties=dict(final[moving].properties))
    touches_fixed = False
    if "selective_dynamics" in props:
        flags = sc.site_properties["selective_dynamics"]
        touches_fixed = not (all(flags[i_sc]) and all(flags[j_sc]))
        for struct in (initial, final):  # the moving atom is always free to move
            struct[moving].properties["selective_dynamics"] = [True, True, True]
    moved = final.frac_coords[moving] - initial.frac_coords[moving]
    moved -= np.round(moved)
    if abs(np.linalg.norm(moved @ matrix) - hop.length_A) > 1e-3:
        raise StructureError("the endpoint pair does not reproduce the hop length",
                             file=labelled.source)
    name = labelled.name
    return EndpointPair(
        hop=hop,
        initial=LabelledStructure(initial, name, labelled.source, labelled.interface),
        final=LabelledStructure(final, name, labelled.source, labelled.interface),
        moving_index=int(moving), supercell=tuple(int(r) for r in reps),
        vacancy_image_distance_A=float(image_distance), touches_fixed_atoms=touches_fixed)


def write_hops(labelled: LabelledStructure, hopset: HopSet, out_dir: str | Path, *,
               min_image_distance_A: float = DEFAULT_MIN_IMAGE_DISTANCE_A,
               max_atoms: int = DEFAULT_MAX_ATOMS, overwrite: bool = False,
               progress=None) -> dict[str, Any]:
    """Write every hop's endpoints and the ``hops.json`` manifest into ``out_dir``.

    Layout: ``hop_NNN/initial.extxyz``, ``final.extxyz`` (and pymatgen JSON twins), one folder
    per distinct hop, plus ``hops.json`` (settings, the kMC lattice, and one record per hop
    with ``initial_file``/``final_file`` relative to ``out_dir``). The folder appears whole or
    not at all.
    """
    from kmcflow.structures.sublattice import catalog_sections

    out = Path(out_dir)
    source = Path(labelled.source)
    check_output_folder(out, "hops", overwrite=overwrite,
                        inputs=[source] if source.exists() else [])
    records = []
    with atomic_directory(out) as tmp:
        for hop in hopset.hops:
            pair = hop_endpoints(labelled, hop, min_image_distance_A, max_atoms)
            folder = tmp / f"hop_{hop.index:03d}"
            folder.mkdir()
            write_extxyz(pair.initial, folder / "initial.extxyz")
            write_extxyz(pair.final, folder / "final.extxyz")
            write_json_structure(pair.initial, folder / "initial.json")
            write_json_structure(pair.final, folder / "final.json")
            record = {**hop.record(),
                      "initial_file": f"{folder.name}/initial.extxyz",
                      "final_file": f"{folder.name}/final.extxyz",
                      "moving_index": pair.moving_index,
                      "supercell": list(pair.supercell),
                      "n_atoms": len(pair.initial.structure),
                      "vacancy_image_distance_A": round(pair.vacancy_image_distance_A, 4),
                      "touches_fixed_atoms": pair.touches_fixed_atoms}
            write_json(folder / "hop.json", record)
            records.append(record)
            if progress is not None:
                progress(hop)
        try:
            sections = catalog_sections(labelled, hopset.network_species,
                                        band_thickness_A=hopset.band_thickness_A)
        except KmcflowError as exc:  # a lattice the engine cannot use: say why, keep the hops
            sections = {"error": exc.one_line()}
        manifest = {
            "schema": "kmcflow.hops", "schema_version": 1,
            "structure": labelled.name, "source": labelled.source,
            "is_interface": labelled.is_interface,
            "species": hopset.species, "network_species": hopset.network_species,
            "band_thickness_A": hopset.band_thickness_A,
            "min_image_distance_A": min_image_distance_A,
            "n_directed_hops": hopset.n_directed_hops,
            "n_symmetry_operations": hopset.n_symmetry_operations,
            "interface": labelled.interface.to_dict() if labelled.interface else None,
            "catalog_sections": sections,
            "hops": records,
        }
        write_json(tmp / MANIFEST, manifest)
        write_marker(tmp, "hops")
        if labelled.is_interface:
            write_extxyz(labelled, tmp / "structure.extxyz")
    return manifest


def impurity_endpoints(pair: EndpointPair, impurity: str) -> EndpointPair:
    """The same hop with the moving atom replaced by ``impurity`` (a dilute solute's hop).

    The solute sits on the hop's initial site of the host and jumps into the vacancy, so the
    event is ``impurity/host->host``: the hop of a species inside the other host, which a
    perfect interface does not have.
    """
    from pymatgen.core import Element

    element = Element(impurity)
    structures = []
    for lab in (pair.initial, pair.final):
        s = lab.structure.copy()
        s.replace(pair.moving_index, element, coords=s[pair.moving_index].frac_coords,
                  properties=dict(s[pair.moving_index].properties))
        structures.append(LabelledStructure(s, lab.name, lab.source, lab.interface))
    hop = replace(pair.hop, species=impurity, multiplicity=1)  # its key follows the species
    return EndpointPair(hop, structures[0], structures[1], pair.moving_index,
                        pair.supercell, pair.vacancy_image_distance_A, pair.touches_fixed_atoms)
