"""Reading and writing structures: bulk crystals, labelled interfaces and hop endpoints.

Every structure the package hands around is a :class:`LabelledStructure`: a pymatgen
``Structure`` whose sites carry a ``host`` label (the host phase; for a bulk crystal, its name)
and, for an interface, ``distance_from_interface_A`` (signed: negative on the substrate side),
plus an :class:`InterfaceInfo` record (None for a bulk crystal).

Formats read: CIF, POSCAR/CONTCAR (``.vasp``), extended XYZ (``.extxyz``/``.xyz``), pymatgen
JSON (``Structure`` or ``Interface`` only: every class the file names, nested ones in site
properties included, is checked against an allow-list of pymatgen structure classes before
anything is built, so no other module is ever imported; nothing is unpickled), or the name of a
bundled crystal.
Interfaces are written as pymatgen ``Interface`` JSON (the record in
``interface_properties["kmcflow"]``) and as extended XYZ (the record as JSON in the comment
line, ``host`` and ``distance_from_interface_A`` as per-atom columns, fixed atoms as ASE's
``move_mask``). Every write is atomic.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kmcflow.atomic_io import atomic_path, write_text
from kmcflow.errors import StructureError
from kmcflow.readers import parse_json, read_json

HOST = "host"
DISTANCE = "distance_from_interface_A"
INFO_KEY = "kmcflow"
_ALLOWED_JSON_CLASSES = {"Structure", "Interface", "Slab"}
# every (@module, @class) that may appear anywhere in a structure file: pymatgen decodes
# nested {"@module", "@class"} dicts (site properties) by importing the module and calling
# the class, so anything else would run code named by the file
_ALLOWED_NESTED_CLASSES = {
    ("pymatgen.core.structure", "Structure"), ("pymatgen.core.structure", "IStructure"),
    ("pymatgen.core.interface", "Interface"), ("pymatgen.core.surface", "Slab"),
    ("pymatgen.core.lattice", "Lattice"), ("pymatgen.core.sites", "PeriodicSite"),
    ("pymatgen.core.sites", "Site"), ("pymatgen.core.composition", "Composition"),
    ("pymatgen.core.periodic_table", "Element"), ("pymatgen.core.periodic_table", "Species"),
    ("pymatgen.core.periodic_table", "DummySpecies"), ("numpy", "array"),
}


def _refuse_foreign_classes(data: Any, file: str) -> None:
    """Raise :class:`StructureError` if any nested dict names a class outside the allow-list.

    Walks the whole document (iteratively: no depth limit to hit) before anything is built.
    """
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            if "@module" in item or "@class" in item:
                pair = (str(item.get("@module")), str(item.get("@class")))
                if pair not in _ALLOWED_NESTED_CLASSES:
                    raise StructureError(f"the file names the class {pair[1]!r} of module "
                                         f"{pair[0]!r} at {where or 'the top'}; only pymatgen "
                                         "structure classes are read", file=file,
                                         field=where or "@class", hint="write the file with "
                                         "Structure.to(filename='x.json')")
            stack.extend((v, f"{where}.{k}" if where else str(k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
_POSCAR_NAMES = ("POSCAR", "CONTCAR")
MAX_STRUCTURE_FILE_BYTES = 200_000_000
MIN_DISTANCE_A = 0.5
"""Atoms closer than this are overlapping (a wrong scale or coordinate type), not a crystal."""
MAX_ATOMS_PAIR_CHECK = 20_000


@dataclass
class InterfaceInfo:
    """What kmcflow records about an interface it built (JSON-safe).

    Attributes
    ----------
    substrate_name, film_name
        Host names of the two phases (the catalog's ``hosts``).
    substrate_miller, film_miller
        Miller indices of the bulk planes that meet.
    termination
        pymatgen's termination label (film, substrate).
    periodic_bicrystal
        True when there is no vacuum: the film's top meets the substrate's bottom across the
        cell boundary, so the cell holds two interfaces.
    plane_heights_A
        Heights (along the interface normal, from the cell origin) of the interface planes,
        each midway between the last substrate layer and the first film layer.
    gap_A, vacuum_A
        Film-substrate separation and vacuum above the film.
    substrate_layers, film_layers
        Atomic layers of each phase; ``fixed_layers`` of the substrate's bottom are fixed.
    match
        The lattice match (strain, area, supercell vectors).
    registry
        How the film was placed in plane (offset, rotation, shortest cross distances).
    sources
        Where each bulk crystal came from (bundled name or file) and its reference.

    """

    substrate_name: str
    film_name: str
    substrate_miller: list[int]
    film_miller: list[int]
    termination: list[str]
    periodic_bicrystal: bool
    plane_heights_A: list[float]
    gap_A: float
    vacuum_A: float
    substrate_layers: int
    film_layers: int
    fixed_layers: int
    substrate_thickness_A: float
    film_thickness_A: float
    match: dict[str, Any] = field(default_factory=dict)
    registry: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a plain dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], file: str | None = None) -> InterfaceInfo:
        """Build the record from :meth:`to_dict` output, naming the file on a bad field."""
        try:
            return cls(**data)
        except TypeError as exc:
            raise StructureError(f"bad kmcflow interface record: {exc}", file=file,
                                 field=INFO_KEY, hint="rebuild the interface with "
                                 "`kmcflow interface build`") from exc

    @property
    def hosts(self) -> list[str]:
        """The host names, substrate first (the order of a catalog's ``hosts``)."""
        return [self.substrate_name, self.film_name]


@dataclass
class LabelledStructure:
    """A structure whose sites carry host labels, with its interface record if any."""

    structure: Any  # pymatgen Structure (or Interface)
    name: str
    source: str
    interface: InterfaceInfo | None = None

    @property
    def is_interface(self) -> bool:
        """Whether the structure is an interface (two hosts) rather than a bulk crystal."""
        return self.interface is not None

    @property
    def hosts(self) -> list[str]:
        """The host label of every site."""
        return list(self.structure.site_properties[HOST])


def _suffix_kind(path: Path) -> str | None:
    name = path.name
    low = name.lower()
    if low.endswith(".cif"):
        return "cif"
    if low.endswith((".extxyz", ".xyz")):
        return "extxyz"
    if low.endswith(".json"):
        return "json"
    if low.endswith((".vasp", ".poscar")) or name.startswith(_POSCAR_NAMES):
        return "poscar"
    return None


def read_json_structure(path: Path):
    """A pymatgen ``Structure``/``Interface`` from JSON, with no class outside the allow-list.

    Raises :class:`StructureError` naming the file for a damaged, foreign or hostile file.
    """
    from pymatgen.core import Structure
    from pymatgen.core.interface import Interface

    data = read_json(path, error=StructureError, what="structure file",
                     hint="give a pymatgen Structure or Interface JSON file")
    cls = data.get("@class") if isinstance(data, dict) else None
    module = str(data.get("@module", "")) if isinstance(data, dict) else ""
    if cls not in _ALLOWED_JSON_CLASSES or not module.startswith("pymatgen."):
        raise StructureError(f"not a pymatgen structure JSON (a Structure or an Interface; "
                             f"@class {cls!r})",
                             file=str(path), field="@class",
                             hint="write the file with Structure.to(filename='x.json')")
    _refuse_foreign_classes(data, str(path))
    try:
        builder = Interface if cls == "Interface" else Structure
        if cls == "Interface" and "interface_label" not in (
                data["sites"][0].get("properties") or {}):
            builder = Structure
        return builder.from_dict(data)
    except Exception as exc:  # pymatgen raises many types for a damaged document
        raise StructureError(f"not a readable structure ({type(exc).__name__}: {exc})",
                             file=str(path), hint="write the file again with "
                             "Structure.to(filename='x.json')") from exc


def _read_extxyz(path: Path):
    from ase.io import read
    from pymatgen.io.ase import AseAtomsAdaptor

    with open(path, encoding="utf-8", errors="replace") as handle:
        first = handle.readline().strip()
        n_lines = 1 + sum(1 for _ in handle)
    if first.isdigit() and int(first) > n_lines - 1:  # ASE would try to read them all
        raise ValueError(f"the first frame declares {int(first)} atoms but the file has "
                         f"{n_lines} lines")
    try:
        atoms = read(path, format="extxyz", index=-1)
    except StopIteration as exc:  # ASE's way of saying the file holds no frame
        raise ValueError("no frame in the file") from exc
    structure = AseAtomsAdaptor.get_structure(atoms)
    for key in (HOST, DISTANCE):
        if key in atoms.arrays:
            values = atoms.arrays[key]
            structure.add_site_property(key, [v.item() if hasattr(v, "item") else v
                                              for v in values])
    info = atoms.info.get(INFO_KEY)
    return structure, info


def read_structure(source: Any, name: str | None = None) -> LabelledStructure:
    """Read a bulk crystal or a kmcflow interface: from a file, a bundled name or an object.

    Parameters
    ----------
    source
        A file path (CIF, POSCAR, extxyz, pymatgen JSON), a bundled name such as ``"MgO"``, a
        pymatgen ``Structure`` or ASE ``Atoms`` (checked like a file: ordered, finite, no
        overlapping atoms), or a :class:`LabelledStructure` (returned as it is, renamed if
        ``name`` is given).
    name
        Host name for a bulk crystal; defaults to the bundled name or the reduced formula.

    Raises
    ------
    StructureError
        The file is missing, unreadable or of an unknown kind, or holds no periodic structure.

    """
    from kmcflow.structures.bulk import bundled_names, bundled_structure

    if isinstance(source, LabelledStructure):
        if name is None or source.is_interface or name == source.name:
            return source
        return _label_bulk(source.structure, name, source.source)
    if not isinstance(source, (str, os.PathLike)):
        structure = _structure_of(source)
        described = f"<{type(source).__name__} {structure.composition.reduced_formula}>"
        _check_structure(structure, described)
        return _label_bulk(structure, name or structure.composition.reduced_formula, described)
    text = str(source)
    path = Path(text)
    if not path.exists():
        if text in bundled_names():
            structure = bundled_structure(text)
            return _label_bulk(structure, name or text, f"bundled:{text}")
        raise StructureError("file not found, and not a bundled structure name", file=text,
                             hint=f"give a CIF/POSCAR/extxyz/JSON path or one of "
                             f"{', '.join(bundled_names())}")
    if path.is_dir():
        raise StructureError("is a directory, not a structure file", file=text)
    if not path.is_file():  # a device, a FIFO: reading it would block or never end
        raise StructureError("is not a regular file", file=text,
                             hint="give a CIF/POSCAR/extxyz/JSON file")
    if path.stat().st_size > MAX_STRUCTURE_FILE_BYTES:
        raise StructureError(f"the file is {path.stat().st_size / 1e6:.0f} MB, more than any "
                             f"structure kmcflow can compute ({MAX_STRUCTURE_FILE_BYTES / 1e6:.0f}"
                             " MB)", file=text, hint="give one structure, not a trajectory")
    kind = _suffix_kind(path)
    if kind is None:
        raise StructureError("unknown structure file type", file=text,
                             hint="use .cif, .vasp/POSCAR/CONTCAR, .extxyz or .json")
    info_raw: Any = None
    try:
        if kind == "cif":
            import warnings

            from pymatgen.io.cif import CifParser

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    structures = CifParser(path).parse_structures(primitive=False)
                except ValueError:
                    structures = []
            if not structures:
                why = " ".join(str(caught[-1].message).split()) if caught else "no structure"
                raise ValueError(f"no structure in the CIF ({why})")
            structure = structures[0]
        elif kind == "poscar":
            from pymatgen.io.vasp import Poscar

            structure = Poscar.from_file(path).structure
        elif kind == "extxyz":
            structure, info_raw = _read_extxyz(path)
        else:
            structure = read_json_structure(path)
            props = getattr(structure, "interface_properties", None) or {}
            info_raw = props.get(INFO_KEY)
    except StructureError:
        raise
    except Exception as exc:  # parsers raise many types; name the file, keep the message
        raise StructureError(f"cannot read the {kind} file: {exc}", file=text,
                             hint="check that the file is complete and of the type its "
                             "name says") from exc
    _check_structure(structure, text)
    if info_raw is not None:
        record = (parse_json(info_raw, file=text, error=StructureError)
                  if isinstance(info_raw, str) else info_raw)
        info = InterfaceInfo.from_dict(record, file=text)
        for key in (HOST, DISTANCE):
            if key not in structure.site_properties:
                raise StructureError(f"an interface file without the per-site {key} column",
                                     file=text, field=key,
                                     hint="rebuild it with `kmcflow interface build`")
        return LabelledStructure(structure, name or f"{info.film_name}|{info.substrate_name}",
                                 text, info)
    return _label_bulk(structure, name or structure.composition.reduced_formula, text)


def _structure_of(obj: Any):
    """A pymatgen ``Structure`` from a ``Structure`` (copied) or ASE ``Atoms``."""
    from pymatgen.core import Structure

    if isinstance(obj, Structure):
        return obj.copy()
    from ase import Atoms

    if isinstance(obj, Atoms):
        from pymatgen.io.ase import AseAtomsAdaptor

        if not all(obj.pbc):
            raise StructureError("the Atoms object is not periodic in all three directions",
                                 field="pbc", hint="set atoms.pbc = True and give it a cell")
        return AseAtomsAdaptor.get_structure(obj)
    raise StructureError(f"cannot read a structure from a {type(obj).__name__}",
                         hint="give a file path, a bundled name, a pymatgen Structure or "
                         "ASE Atoms")


def _check_structure(structure, source: str) -> None:
    """Refuse a structure no calculation can use, naming where it came from."""
    if len(structure) == 0:
        raise StructureError("the structure holds no atoms", file=source)
    if not (np.all(np.isfinite(structure.lattice.matrix))
            and np.all(np.isfinite(structure.frac_coords))):
        raise StructureError("the cell or the coordinates hold NaN or infinite numbers",
                             file=source, hint="check the numbers in the file")
    if not structure.lattice.volume > 1e-3:
        raise StructureError(f"the cell has no volume ({structure.lattice.volume:.3g} "
                             "Angstrom^3): its vectors are not independent", file=source,
                             hint="check the lattice vectors")
    if not structure.is_ordered:
        raise StructureError("the structure has partially occupied sites (a disordered "
                             "crystal): kmcflow needs one atom per site", file=source,
                             hint="order it first (e.g. pymatgen's "
                             "OrderDisorderedStructureTransformation)")
    if len(structure) <= MAX_ATOMS_PAIR_CHECK and not structure.is_valid(tol=MIN_DISTANCE_A):
        raise StructureError(f"two atoms lie closer than {MIN_DISTANCE_A} Angstrom "
                             "(overlapping atoms)", file=source,
                             hint="check the coordinates (fractional vs Cartesian, the scale)")


def _label_bulk(structure, name: str, source: str) -> LabelledStructure:
    structure = structure.copy()
    structure.add_site_property(HOST, [name] * len(structure))
    return LabelledStructure(structure, name, source, None)


def to_ase_atoms(labelled: LabelledStructure, labels: bool = True):
    """Convert to ASE ``Atoms``: fixed sites become ``FixAtoms``, labels per-atom arrays.

    ``labels=False`` leaves out kmcflow's host and distance columns and interface record:
    the plain atoms a calculation takes.
    """
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    s = labelled.structure
    plain = Structure(s.lattice, s.species, s.frac_coords,
                      site_properties={k: v for k, v in s.site_properties.items()
                                       if k in ("selective_dynamics", "magmom")})
    atoms = AseAtomsAdaptor.get_atoms(plain)
    if not labels:
        return atoms
    atoms.arrays[HOST] = np.array(s.site_properties[HOST], dtype=str)
    if DISTANCE in s.site_properties:
        atoms.arrays[DISTANCE] = np.array(s.site_properties[DISTANCE], dtype=float)
    if labelled.interface is not None:
        atoms.info[INFO_KEY] = json.dumps(labelled.interface.to_dict())
    return atoms


def write_extxyz(labelled: LabelledStructure, path: str | os.PathLike[str]) -> Path:
    """Write extended XYZ atomically and return the path."""
    from ase.io import write

    target = Path(path)
    with atomic_path(target, suffix=".extxyz") as tmp:
        write(tmp, to_ase_atoms(labelled), format="extxyz")
    return target


def write_json_structure(labelled: LabelledStructure, path: str | os.PathLike[str]) -> Path:
    """Write pymatgen JSON atomically (an ``Interface`` keeps the kmcflow record)."""
    from monty.json import jsanitize

    s = labelled.structure
    if labelled.interface is not None and hasattr(s, "interface_properties"):
        s.interface_properties[INFO_KEY] = labelled.interface.to_dict()
    data = jsanitize(s.as_dict(), strict=False, allow_bson=False)
    target = Path(path)
    write_text(target, json.dumps(data, allow_nan=False) + "\n")
    return target
