"""Coherent interface slabs between two bulk crystals, over pymatgen's lattice matching.

pymatgen's ``ZSLGenerator`` (Zur and McGill, J. Appl. Phys. 55, 378 (1984)) finds supercells
of the film and substrate surface lattices that nearly coincide; ``CoherentInterfaceBuilder``
strains the film onto the substrate and stacks the slabs. This module adds what a campaign
needs around them:

- the matches as records with the film's in-plane strain (principal stretches of the 2D
  deformation, signed, engineering strain), an in-plane von Mises strain, the interface area
  and the atom count at the chosen thicknesses; equivalent matches (same area and strains)
  listed once; limits on strain, area and atoms that refuse with the limit to raise;
- thicknesses in Angstrom (at least that much material, the default 10 A per phase) or in
  atomic layers;
- the gap between the phases defaulting to the mean of their bulk interlayer spacings, and a
  periodic bi-crystal (vacuum 0: the film's top meets the substrate's bottom across the cell,
  at the same gap) or a slab (the default 15 A of vacuum);
- the bottom atomic layers of the substrate fixed (default 2 in a slab, none in a bi-crystal)
  as pymatgen ``selective_dynamics`` (ASE ``FixAtoms`` on conversion);
- every site labelled with its host and its signed distance from the nearest interface plane
  (negative on the substrate side).

Film-on-substrate convention: the film is strained to the substrate's in-plane lattice.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kmcflow.errors import StructureError
from kmcflow.structures.geometry import group_layers, height_period, plane_normal
from kmcflow.structures.io import (
    DISTANCE,
    HOST,
    InterfaceInfo,
    LabelledStructure,
    read_structure,
)
from kmcflow.structures.registry import (
    Registry,
    apply_registry,
    best_registry,
    check_like_ions_facing,
)

DEFAULT_THICKNESS = "10A"
DEFAULT_VACUUM_A = 15.0
DEFAULT_FIXED_LAYERS_SLAB = 2
LAYER_TOLERANCE_A = 0.3


MAX_AREA_A2 = 2000.0
"""Largest interface area searched: ZSL's cost grows with the area squared."""
MAX_INTERFACE_ATOMS = 20_000
MAX_LAYERS = 500
MAX_THICKNESS_A = 1000.0
MAX_MILLER_INDEX = 10


@dataclass(frozen=True)
class MatchLimits:
    """Limits on the lattice matches considered (each refusal names the one to raise).

    Attributes
    ----------
    max_strain
        Largest film principal strain magnitude (0.05 = 5 %).
    max_area_A2
        Largest interface supercell area searched (Angstrom^2).
    max_atoms
        Largest interface (atoms at the chosen thicknesses).
    max_angle_tol
        Relative tolerance on the angle between the supercell vectors (pymatgen's).

    """

    max_strain: float = 0.05
    max_area_A2: float = 80.0
    max_atoms: int = 400
    max_angle_tol: float = 0.01

    def check(self) -> None:
        """Refuse limits no match can meet."""
        if not 0 < self.max_strain < 0.5:
            raise StructureError(f"max strain {self.max_strain} is impossible",
                                 field="max_strain", hint="give a fraction in (0, 0.5), "
                                 "e.g. 0.05 for 5 %")
        if not 0 < self.max_area_A2 <= MAX_AREA_A2:
            raise StructureError(f"max area {self.max_area_A2} must lie in (0, {MAX_AREA_A2:g}] "
                                 "Angstrom^2 (the ZSL search grows with the area squared)",
                                 field="max_area_A2", hint="e.g. --max-area 80")
        if not 2 <= self.max_atoms <= MAX_INTERFACE_ATOMS:
            raise StructureError(f"max atoms {self.max_atoms} must lie in 2-"
                                 f"{MAX_INTERFACE_ATOMS}", field="max_atoms",
                                 hint="e.g. --max-atoms 400")


@dataclass(frozen=True)
class Thickness:
    """A slab thickness: at least ``value`` Angstrom of material, or ``value`` atomic layers."""

    value: float
    unit: str  # "A" or "layers"

    @classmethod
    def parse(cls, text: str | float | Thickness, field_name: str = "thickness") -> Thickness:
        """Parse ``"12A"``, ``"12"`` (Angstrom), or ``"6layers"`` / ``"6L"``."""
        if isinstance(text, Thickness):
            return text
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(A|Angstrom|layers?|L)?\s*", str(text),
                         flags=re.IGNORECASE)
        if not m or float(m.group(1)) <= 0:
            raise StructureError(f"bad thickness {text!r}", field=field_name,
                                 hint="write e.g. 12A (Angstrom) or 6layers")
        unit = (m.group(2) or "A").lower()
        if unit.startswith("l"):
            if float(m.group(1)) != int(float(m.group(1))):
                raise StructureError(f"a layer count must be whole, got {text!r}",
                                     field=field_name)
            if float(m.group(1)) > MAX_LAYERS:
                raise StructureError(f"{text!r}: more than {MAX_LAYERS} layers is no "
                                     "interface cell kmcflow can compute", field=field_name,
                                     hint="e.g. 6layers")
            return cls(float(int(float(m.group(1)))), "layers")
        if float(m.group(1)) > MAX_THICKNESS_A:
            raise StructureError(f"{text!r}: more than {MAX_THICKNESS_A:g} Angstrom is no "
                                 "interface cell kmcflow can compute", field=field_name,
                                 hint="e.g. 12A")
        return cls(float(m.group(1)), "A")

    def __str__(self) -> str:
        return f"{int(self.value)} layers" if self.unit == "layers" else f"{self.value:g} A"


@dataclass
class InterfaceMatch:
    """One coherent lattice match (see the module docstring for the strain convention)."""

    index: int
    strain: float
    strain_components: tuple[float, float]
    von_mises_strain: float
    area_A2: float
    n_atoms: int
    substrate_supercell: list[list[int]]
    film_supercell: list[list[int]]
    angle_deg: float
    zsl: Any = field(repr=False, default=None)

    def record(self) -> dict[str, Any]:
        """Return the match as a JSON-ready dictionary."""
        return {
            "index": self.index,
            "strain": round(self.strain, 6),
            "strain_percent": round(100 * self.strain, 4),
            "strain_components": [round(x, 6) for x in self.strain_components],
            "von_mises_strain": round(self.von_mises_strain, 6),
            "area_A2": round(self.area_A2, 4),
            "n_atoms": self.n_atoms,
            "angle_deg": round(self.angle_deg, 3),
            "substrate_supercell": self.substrate_supercell,
            "film_supercell": self.film_supercell,
        }


@dataclass
class MatchSearch:
    """The matches and terminations of one film/substrate/Miller combination."""

    film: LabelledStructure
    substrate: LabelledStructure
    film_miller: tuple[int, int, int]
    substrate_miller: tuple[int, int, int]
    limits: MatchLimits
    film_thickness: Thickness
    substrate_thickness: Thickness
    matches: list[InterfaceMatch]
    terminations: list[tuple[str, str]]
    n_raw_matches: int
    builder: Any = field(repr=False, default=None)


def check_miller(miller: Any, field_name: str) -> tuple[int, int, int]:
    """Validate Miller indices: three integers, not all zero."""
    try:
        hkl = tuple(int(x) for x in miller)
    except (TypeError, ValueError) as exc:
        raise StructureError(f"Miller indices must be three integers, got {miller!r}",
                             field=field_name, hint="e.g. 1 0 0") from exc
    if len(hkl) != 3 or any(float(x) != int(x) for x in miller):
        raise StructureError(f"Miller indices must be three integers, got {miller!r}",
                             field=field_name, hint="e.g. 1 0 0")
    if hkl == (0, 0, 0):
        raise StructureError("Miller indices 0 0 0 name no plane", field=field_name,
                             hint="give a plane such as 1 0 0 or 1 1 1")
    if max(abs(x) for x in hkl) > MAX_MILLER_INDEX:
        raise StructureError(f"Miller indices {hkl} above {MAX_MILLER_INDEX} name planes too "
                             "far apart for a coherent interface cell", field=field_name,
                             hint="give a low-index plane such as 1 0 0 or 1 1 0")
    return hkl  # type: ignore[return-value]


def _in_plane_2d(vectors: np.ndarray) -> np.ndarray:
    """Rows of two 3D vectors written in their own plane's 2D frame (rotation-free)."""
    a, b = np.asarray(vectors, dtype=float)[:2]
    la = np.linalg.norm(a)
    cos = float(a @ b) / (la * np.linalg.norm(b))
    lb = np.linalg.norm(b)
    return np.array([[la, 0.0], [lb * cos, lb * math.sqrt(max(0.0, 1 - cos * cos))]])


def film_strain(zsl_match) -> tuple[float, tuple[float, float], float]:
    """Film in-plane strain of a ZSL match: signed largest, both principal, von Mises.

    The 2D deformation gradient maps the film supercell vectors onto the substrate's; the
    principal strains are its singular values minus one. The von Mises strain is that of the
    in-plane Green-Lagrange tensor (zero normal components), with pymatgen's formula.
    """
    film = _in_plane_2d(zsl_match.film_sl_vectors)
    sub = _in_plane_2d(zsl_match.substrate_sl_vectors)
    deform = np.linalg.solve(film, sub).T  # columns: F maps film vectors (columns) to sub
    stretches = np.linalg.svd(deform, compute_uv=False)
    principal = tuple(float(s - 1.0) for s in sorted(stretches))
    largest = max(principal, key=abs)
    green = np.zeros((3, 3))
    green[:2, :2] = 0.5 * (deform.T @ deform - np.eye(2))
    dev = green - np.trace(green) / 3 * np.eye(3)
    von_mises = float(np.sqrt(np.sum(dev * dev) * 2 / 3))
    return largest, principal, von_mises  # type: ignore[return-value]


def _slab_generator(bulk, miller, thickness: Thickness):
    from pymatgen.core.surface import SlabGenerator

    return SlabGenerator(bulk, miller, min_slab_size=thickness.value,
                         min_vacuum_size=3, in_unit_planes=thickness.unit != "A",
                         center_slab=True, primitive=True, reorient_lattice=False)


def _pymatgen_thickness(bulk, miller, thickness: Thickness, shift: float) -> Thickness:
    """Turn an atomic-layer count into pymatgen's unit (whole d_hkl repeats)."""
    if thickness.unit == "A":
        return thickness
    one = _slab_generator(bulk, miller, Thickness(1, "layers")).get_slab(shift=shift)
    n = plane_normal(one.lattice.matrix)
    per_repeat = int(group_layers(one.cart_coords @ n, LAYER_TOLERANCE_A).max()) + 1
    return Thickness(float(math.ceil(thickness.value / per_repeat)), "layers")


def _cache_pymatgen_jit() -> None:
    """Let numba cache pymatgen's lattice-matching kernels on disk.

    pymatgen compiles them without ``cache=True``, which costs about 10 s in every new
    process; ``Dispatcher.enable_caching`` (numba's public API) turns the on-disk cache on.
    Harmless if the cache folder cannot be written (numba then compiles as before).
    """
    from pymatgen.analysis.interfaces import zsl

    for value in vars(zsl).values():
        enable = getattr(value, "enable_caching", None)
        if callable(enable):
            try:
                enable()
            except Exception:
                pass


def find_matches(
    film: LabelledStructure | Any,
    substrate: LabelledStructure | Any,
    film_miller: Any,
    substrate_miller: Any,
    *,
    limits: MatchLimits | None = None,
    film_thickness: str | Thickness = DEFAULT_THICKNESS,
    substrate_thickness: str | Thickness = DEFAULT_THICKNESS,
) -> MatchSearch:
    """List the coherent matches and terminations of a film on a substrate.

    Matches are sorted by atom count, then strain magnitude, and numbered from 0; the list
    keeps those within ``limits`` (an empty list raises, naming the limit to raise).
    ``film`` and ``substrate`` are anything :func:`~kmcflow.structures.io.read_structure`
    takes: a pymatgen ``Structure``, ASE ``Atoms``, a labelled structure, a file or a bundled
    name (a host is named by its reduced formula unless it comes labelled).
    """
    from pymatgen.analysis.interfaces import CoherentInterfaceBuilder, ZSLGenerator

    film, substrate = read_structure(film), read_structure(substrate)

    if isinstance(limits, dict):
        try:
            limits = MatchLimits(**limits)
        except TypeError as exc:
            raise StructureError(f"unknown match limit ({exc})", field="limits",
                                 hint="use max_strain, max_area_A2, max_atoms, max_angle_tol"
                                 ) from exc
    limits = limits or MatchLimits()
    if not isinstance(limits, MatchLimits):
        raise StructureError(f"limits must be a MatchLimits, got a {type(limits).__name__}",
                             field="limits", hint="e.g. MatchLimits(max_strain=0.05)")
    limits.check()
    _cache_pymatgen_jit()
    fm = check_miller(film_miller, "film_miller")
    sm = check_miller(substrate_miller, "substrate_miller")
    ft = Thickness.parse(film_thickness, "film_thickness")
    st = Thickness.parse(substrate_thickness, "substrate_thickness")
    for lab in (film, substrate):
        if lab.is_interface:
            raise StructureError("an interface cannot be a bulk phase of another interface",
                                 file=lab.source, hint="give a bulk crystal")
    zsl = ZSLGenerator(max_area=limits.max_area_A2, max_length_tol=limits.max_strain,
                       max_angle_tol=limits.max_angle_tol,
                       max_area_ratio_tol=2 * limits.max_strain + limits.max_strain ** 2 + 0.01,
                       bidirectional=True)
    try:
        builder = CoherentInterfaceBuilder(substrate.structure, film.structure, fm, sm,
                                           zslgen=zsl, label_index=True)
    except ValueError as exc:
        raise StructureError(f"pymatgen could not match the lattices: {exc}",
                             field="max_strain", hint="raise --max-strain or --max-area") from exc
    raw = list(builder.zsl_matches)
    if not raw:
        raise StructureError(
            f"no coherent match of {film.name}{list(fm)} on {substrate.name}{list(sm)} with "
            f"strain <= {100 * limits.max_strain:g} % and area <= {limits.max_area_A2:g} A^2",
            field="max_strain", hint="raise --max-strain or --max-area")
    terminations = list(builder.terminations)
    shifts = builder._terminations[terminations[0]]
    f_thick = _pymatgen_thickness(film.structure, fm, ft, shifts[0])
    s_thick = _pymatgen_thickness(substrate.structure, sm, st, shifts[1])
    film_slab = _slab_generator(film.structure, fm, f_thick).get_slab(shift=shifts[0])
    sub_slab = _slab_generator(substrate.structure, sm, s_thick).get_slab(shift=shifts[1])
    film_area = film_slab.surface_area
    sub_area = sub_slab.surface_area
    matches: list[InterfaceMatch] = []
    seen: set[tuple] = set()
    for m in raw:
        largest, principal, vm = film_strain(m)
        if abs(largest) > limits.max_strain + 1e-12:
            continue
        area = float(np.linalg.norm(np.cross(*np.asarray(m.substrate_sl_vectors)[:2])))
        n_atoms = int(round(len(film_slab) * area_of(m.film_sl_vectors) / film_area)
                      + round(len(sub_slab) * area / sub_area))
        a, b = np.asarray(m.substrate_sl_vectors, dtype=float)[:2]
        angle = math.degrees(math.acos(float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b))))
        key = (round(area, 2), tuple(round(p, 5) for p in principal), round(vm, 5))
        if key in seen:
            continue
        seen.add(key)
        matches.append(InterfaceMatch(
            index=-1, strain=largest, strain_components=principal, von_mises_strain=vm,
            area_A2=area, n_atoms=n_atoms,
            substrate_supercell=np.asarray(m.substrate_transformation).astype(int).tolist(),
            film_supercell=np.asarray(m.film_transformation).astype(int).tolist(),
            angle_deg=angle, zsl=m))
    if not matches:
        raise StructureError(
            f"every match has a film strain above {100 * limits.max_strain:g} %",
            field="max_strain", hint="raise --max-strain")
    within = [m for m in matches if m.n_atoms <= limits.max_atoms]
    if not within:
        smallest = min(m.n_atoms for m in matches)
        raise StructureError(
            f"the smallest match needs {smallest} atoms at these thicknesses, above the "
            f"limit of {limits.max_atoms}", field="max_atoms",
            hint="raise --max-atoms or make the slabs thinner")
    within.sort(key=lambda m: (m.n_atoms, abs(m.strain), m.area_A2))
    for k, m in enumerate(within):
        m.index = k
    return MatchSearch(film, substrate, fm, sm, limits, ft, st, within, terminations,
                       len(raw), builder)


def area_of(vectors: Any) -> float:
    """Area (Angstrom^2) spanned by the first two vectors."""
    v = np.asarray(vectors, dtype=float)
    return float(np.linalg.norm(np.cross(v[0], v[1])))


def interlayer_spacing(bulk, miller, shift: float = 0.0) -> float:
    """The bulk's atomic interlayer spacing (Angstrom) along the normal of ``miller``."""
    slab = _slab_generator(bulk, miller, Thickness(2, "layers")).get_slab(shift=shift)
    n = plane_normal(slab.lattice.matrix)
    h = np.sort(slab.cart_coords @ n)
    layer = group_layers(h, LAYER_TOLERANCE_A)
    means = np.array([h[layer == k].mean() for k in range(layer.max() + 1)])
    return float(np.median(np.diff(means)))


def build_interface(
    search: MatchSearch,
    *,
    match_index: int = 0,
    termination_index: int = 0,
    gap_A: float | None = None,
    vacuum_A: float = DEFAULT_VACUUM_A,
    fixed_layers: int | None = None,
    allow_like_ions_facing: bool = False,
) -> LabelledStructure:
    """Build one interface from a :class:`MatchSearch` (labelled, with fixed bottom layers).

    Parameters
    ----------
    search
        The output of :func:`find_matches` (thicknesses and limits come from it).
    match_index, termination_index
        Which match and termination (indices of the listing).
    gap_A
        Film-substrate separation; default the mean of the two bulk interlayer spacings.
    vacuum_A
        0 for a periodic bi-crystal, else at least the vacuum above the film (>= 15 A advised).
    fixed_layers
        Bottom substrate atomic layers to fix; default 2 in a slab, 0 in a bi-crystal.
    allow_like_ions_facing
        Build an ionic interface even when its closest cross contact joins like ions.

    """
    if not isinstance(search, MatchSearch):
        raise StructureError(f"build_interface takes the MatchSearch of find_matches, got a "
                             f"{type(search).__name__}", field="search",
                             hint="search = find_matches(film, substrate, film_miller, "
                             "substrate_miller)")
    if not 0 <= match_index < len(search.matches):
        raise StructureError(f"no match {match_index}: there are {len(search.matches)} "
                             f"(0..{len(search.matches) - 1})", field="match",
                             hint="list them with `kmcflow interface matches`")
    if not 0 <= termination_index < len(search.terminations):
        raise StructureError(f"no termination {termination_index}: there are "
                             f"{len(search.terminations)}", field="termination",
                             hint="list them with `kmcflow interface matches`")
    if vacuum_A < 0:
        raise StructureError("vacuum must be 0 (bi-crystal) or positive", field="vacuum_A")
    match = search.matches[match_index]
    termination = search.terminations[termination_index]
    builder = search.builder
    f_shift, s_shift = builder._terminations[termination]
    bicrystal = vacuum_A == 0
    if gap_A is None:
        gap_A = 0.5 * (interlayer_spacing(search.film.structure, search.film_miller, f_shift)
                       + interlayer_spacing(search.substrate.structure, search.substrate_miller,
                                            s_shift))
    if not 0.5 < gap_A <= 10.0:
        raise StructureError(f"gap {gap_A} Angstrom is not an interface (0.5-10 A)",
                             field="gap_A", hint="give about one interlayer spacing (1.5-2.5 A)")
    f_thick = _pymatgen_thickness(search.film.structure, search.film_miller,
                                  search.film_thickness, f_shift)
    s_thick = _pymatgen_thickness(search.substrate.structure, search.substrate_miller,
                                  search.substrate_thickness, s_shift)
    if f_thick.unit != s_thick.unit:  # pymatgen takes one unit for both slabs
        raise StructureError("give both thicknesses in the same unit (Angstrom or layers)",
                             field="film_thickness")
    saved = builder.zsl_matches
    try:  # build exactly the chosen match
        builder.zsl_matches = [match.zsl]
        iface = next(builder.get_interfaces(
            termination, gap=gap_A, vacuum_over_film=gap_A if bicrystal else vacuum_A,
            film_thickness=f_thick.value, substrate_thickness=s_thick.value,
            in_layers=f_thick.unit == "layers"))
    finally:
        builder.zsl_matches = saved
    registry = best_registry(iface)
    check_like_ions_facing(iface, registry, allow_like_ions_facing)
    apply_registry(iface, registry)
    return _label_interface(iface, search, match, termination, gap_A, vacuum_A, bicrystal,
                            fixed_layers, registry)


def _label_interface(iface, search: MatchSearch, match: InterfaceMatch, termination,
                     gap_A: float, vacuum_A: float, bicrystal: bool,
                     fixed_layers: int | None, registry: Registry) -> LabelledStructure:
    """Center the material, label hosts and distances, fix the bottom substrate layers."""
    is_sub = np.array([lbl == "substrate" for lbl in iface.site_properties["interface_label"]])
    period = height_period(iface.lattice.matrix)
    frac_c = np.mod(iface.frac_coords[:, 2], 1.0)
    low = frac_c[is_sub].min()
    if bicrystal:
        offset = 0.5 * gap_A / period - low
    else:
        span = (frac_c.max() - low)
        offset = 0.5 * (1.0 - span) - low
    iface.translate_sites(list(range(len(iface))), [0.0, 0.0, offset], frac_coords=True,
                          to_unit_cell=True)
    heights = np.mod(iface.frac_coords[:, 2], 1.0) * period
    sub_h, film_h = heights[is_sub], heights[~is_sub]
    if sub_h.max() >= film_h.min():
        raise StructureError("the film and the substrate overlap along the normal",
                             field="gap_A", hint="raise the gap")
    planes = [0.5 * (sub_h.max() + film_h.min())]
    if bicrystal:
        planes.append(0.5 * (film_h.max() + sub_h.min() + period))
    dist = np.min([np.minimum(np.abs(heights - p), period - np.abs(heights - p))
                   for p in planes], axis=0)
    signed = np.where(is_sub, -dist, dist)
    sub_layer = group_layers(sub_h, LAYER_TOLERANCE_A)
    film_layer = group_layers(film_h, LAYER_TOLERANCE_A)
    n_fixed = (0 if bicrystal else DEFAULT_FIXED_LAYERS_SLAB) if fixed_layers is None \
        else int(fixed_layers)
    n_sub_layers = int(sub_layer.max()) + 1
    if not 0 <= n_fixed < n_sub_layers:
        raise StructureError(f"cannot fix {n_fixed} of the substrate's {n_sub_layers} layers",
                             field="fixed_layers", hint="fix fewer layers or thicken the "
                             "substrate")
    fixed = np.zeros(len(iface), dtype=bool)
    fixed[np.flatnonzero(is_sub)[sub_layer < n_fixed]] = True
    hosts = _host_names(search)
    iface.add_site_property(HOST, [hosts[0] if s else hosts[1] for s in is_sub])
    iface.add_site_property(DISTANCE, [round(float(d), 6) for d in signed])
    iface.add_site_property("selective_dynamics", [[not f] * 3 for f in fixed])
    n = plane_normal(iface.lattice.matrix)
    info = InterfaceInfo(
        substrate_name=hosts[0], film_name=hosts[1],
        substrate_miller=list(search.substrate_miller), film_miller=list(search.film_miller),
        termination=list(termination), periodic_bicrystal=bicrystal,
        plane_heights_A=[round(float(p), 6) for p in planes], gap_A=float(gap_A),
        vacuum_A=float(vacuum_A), substrate_layers=n_sub_layers,
        film_layers=int(film_layer.max()) + 1, fixed_layers=n_fixed,
        substrate_thickness_A=float(np.ptp(sub_h)), film_thickness_A=float(np.ptp(film_h)),
        match={**match.record(), "normal": [round(float(x), 8) for x in n]},
        registry=registry.record(),
        sources={"substrate": search.substrate.source, "film": search.film.source,
                 "substrate_reference": (search.substrate.structure.properties or {}).get(
                     "reference"),
                 "film_reference": (search.film.structure.properties or {}).get("reference")})
    name = f"{hosts[1]}{''.join(map(str, search.film_miller))}|" \
           f"{hosts[0]}{''.join(map(str, search.substrate_miller))}"
    return LabelledStructure(iface, name, "built", info)


def _host_names(search: MatchSearch) -> tuple[str, str]:
    sub, film = search.substrate.name, search.film.name
    if sub == film:
        return f"{sub}_substrate", f"{film}_film"
    return sub, film
