"""Interface slabs and vacancy hops from bulk crystals (pymatgen).

Planned contents (issue "Structures"): bulk input, the coherent interface builder over
pymatgen's lattice matching, symmetry-distinct hop enumeration with catalog event keys, and the
kMC lattice extracted from an interface. Nothing is implemented here yet; importing this package
needs nothing beyond the standard library.
"""

from __future__ import annotations
