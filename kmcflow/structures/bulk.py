"""The bundled bulk crystals: conventional cells built from published lattice constants.

``data/bulk_library.yaml`` holds one entry per name with its space group, lattice parameters,
Wyckoff sites (asymmetric unit), formal oxidation states and literature reference. Each entry is
built with :meth:`pymatgen.core.Structure.from_spacegroup` and checked against its stated atom
count, so a typo in the file fails loudly instead of giving a wrong crystal.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from kmcflow.errors import StructureError

LIBRARY_FILE = "bulk_library.yaml"
_LATTICE_KEYS = ("a_A", "b_A", "c_A", "alpha_deg", "beta_deg", "gamma_deg")


@cache
def _library() -> dict[str, dict[str, Any]]:
    import yaml

    text = resources.files("kmcflow.structures").joinpath("data", LIBRARY_FILE).read_text(
        encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or data.get("schema") != "kmcflow.bulk_library":
        raise StructureError("the bundled bulk library is not a kmcflow.bulk_library file",
                             file=LIBRARY_FILE)
    return dict(data["structures"])


def bundled_names() -> list[str]:
    """Return the names of the bundled bulk crystals, in file order."""
    return list(_library())


def bundled_entry(name: str) -> dict[str, Any]:
    """Return the raw library entry of a bundled crystal (reference, notes, parameters)."""
    lib = _library()
    if name not in lib:
        raise StructureError(f"no bundled structure named {name!r}",
                             hint=f"use a file path or one of {', '.join(lib)}")
    return dict(lib[name])


def _hexagonal_axes(symbol: str) -> bool:
    """Whether a space group's conventional axes are hexagonal (trigonal or hexagonal)."""
    from pymatgen.symmetry.groups import SpaceGroup

    return SpaceGroup(symbol).crystal_system in ("trigonal", "hexagonal")


def _lattice(entry: dict[str, Any], name: str):
    from pymatgen.core import Lattice

    spec = entry["lattice"]
    unknown = set(spec) - set(_LATTICE_KEYS)
    if unknown:
        raise StructureError(f"unknown lattice keys {sorted(unknown)}", file=LIBRARY_FILE,
                             field=f"structures.{name}.lattice")
    a = float(spec["a_A"])
    b = float(spec.get("b_A", a))
    c = float(spec.get("c_A", a))
    alpha = float(spec.get("alpha_deg", 90.0))
    beta = float(spec.get("beta_deg", 90.0))
    gamma = float(spec.get("gamma_deg", 120.0 if _hexagonal_axes(entry["space_group"])
                           else 90.0))
    return Lattice.from_parameters(a, b, c, alpha, beta, gamma)


def bundled_structure(name: str):
    """Build a bundled crystal as a pymatgen ``Structure`` (conventional standard cell).

    Sites carry oxidation states where the library gives them; ``structure.properties``
    holds ``name``, ``reference`` and ``doi``.
    """
    from pymatgen.core import Structure

    entry = bundled_entry(name)
    species = [s["species"] for s in entry["sites"]]
    coords = [s["frac"] for s in entry["sites"]]
    structure = Structure.from_spacegroup(entry["space_group"], _lattice(entry, name), species,
                                          coords)
    if len(structure) != int(entry["n_atoms"]):
        raise StructureError(f"built {len(structure)} atoms, the entry says {entry['n_atoms']}",
                             file=LIBRARY_FILE, field=f"structures.{name}")
    oxi = entry.get("oxidation_states") or {}
    if oxi:
        structure.add_oxidation_state_by_element(oxi)
    structure.properties = {"name": name, "reference": entry.get("reference"),
                            "doi": entry.get("doi")}
    return structure
