"""Interface slabs and vacancy hops from bulk crystals (pymatgen, spglib, ASE).

Stage 1 of the pipeline; needs the ``structures`` extra. One module per job:

- :mod:`~kmcflow.structures.bulk`: the bundled crystals (published lattice constants);
- :mod:`~kmcflow.structures.io`: reading CIF/POSCAR/extxyz/JSON, labelled structures, writing;
- :mod:`~kmcflow.structures.interface`: lattice matches and coherent interface slabs;
- :mod:`~kmcflow.structures.registry`: where the film sits in plane (stacking carried on);
- :mod:`~kmcflow.structures.symmetry`: symmetry operations as site permutations;
- :mod:`~kmcflow.structures.hops`: symmetry-distinct vacancy hops with catalog event keys;
- :mod:`~kmcflow.structures.endpoints`: NEB endpoint supercells and the ``hops.json`` manifest;
- :mod:`~kmcflow.structures.sublattice`: the kMC lattice (catalog sections) of a structure;
- :mod:`~kmcflow.structures.environment`: the environment key of a hop in a structure (the
  key the engine computes on its lattice, :mod:`kmcflow.kmc.environment`);
- :mod:`~kmcflow.structures.plots`: the side view of an interface.

Importing this package needs nothing beyond the standard library; the modules import pymatgen.
"""

from __future__ import annotations
