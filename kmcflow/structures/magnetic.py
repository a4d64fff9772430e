"""Magnetic orderings as structures: initial moments carried by the sites (``magmom``).

:func:`rocksalt_afm_111` builds the type-II antiferromagnetic cell of a rock-salt oxide (NiO,
MnO, CoO, FeO below their Neel temperatures): ferromagnetic cation sheets on (111) whose
moments alternate from sheet to sheet. The smallest cell holding it is rhombohedral with
vectors a(1, 1/2, 1/2), a(1/2, 1, 1/2), a(1/2, 1/2, 1) and four atoms: cations at 0 (up) and
(1/2, 1/2, 1/2) (down, the next (111) sheet), anions at (1/4, 1/4, 1/4) and (3/4, 3/4, 3/4).
pymatgen keeps ``magmom`` as a site property and ASE receives it as initial moments, so DFT
codes start from this order.
"""

from __future__ import annotations

import numpy as np

from kmcflow.errors import StructureError


def rocksalt_afm_111(bulk, moment_muB: float = 2.0):
    """The 4-atom AFM-II cell of a rock-salt crystal (a pymatgen ``Structure``).

    ``bulk`` is the cubic rock-salt cell (for example ``bundled_structure("NiO")``); the
    cation is the species at the origin. Returns a pymatgen ``Structure`` with ``magmom``
    +``moment_muB`` / -``moment_muB`` on the two cations and 0 on the anions.
    """
    from pymatgen.core import Lattice, Structure

    bulk = bulk.copy()
    bulk.remove_oxidation_states()
    lengths, angles = bulk.lattice.abc, bulk.lattice.angles
    if not (np.allclose(lengths, lengths[0], rtol=1e-3) and np.allclose(angles, 90.0, atol=0.1)
            and len(bulk) == 8 and len(bulk.composition.elements) == 2):
        raise StructureError("not a cubic 8-atom rock-salt cell", field="structure",
                             hint="give the conventional rock-salt cell (e.g. bundled NiO)")
    at_origin = [s for s in bulk if np.allclose(s.frac_coords % 1.0, 0.0, atol=1e-3)
                 or np.allclose(s.frac_coords % 1.0, 1.0, atol=1e-3)]
    if not at_origin:
        raise StructureError("no site at the origin to take as the cation", field="structure")
    cation = at_origin[0].specie
    anion = next(el for el in bulk.composition.elements if el != cation)
    a = float(lengths[0])
    lattice = Lattice([[a, a / 2, a / 2], [a / 2, a, a / 2], [a / 2, a / 2, a]])
    return Structure(lattice, [cation, cation, anion, anion],
                     [[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], [0.75, 0.75, 0.75]],
                     site_properties={"magmom": [moment_muB, -moment_muB, 0.0, 0.0]})
