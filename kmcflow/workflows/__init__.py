"""DFT+U relaxations, CI-NEB barriers and Vineyard prefactors as jobflow flows (ASE, atomate2).

Planned contents (issue "Workflows"): the calculator factory, the relax/NEB/prefactor makers and
the flows that assemble an event catalog (:mod:`kmcflow.kmc.catalog`). Nothing is implemented
here yet; importing this package needs nothing beyond the standard library.
"""

from __future__ import annotations
