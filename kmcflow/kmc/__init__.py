"""Rejection-free lattice kinetic Monte Carlo of an A|B interface (numpy + numba).

Importing this package needs only numpy, numba and pydantic (the catalog schema): running kMC
from a stored catalog never needs pymatgen, ASE, jobflow or torch. The modules:

- :mod:`~kmcflow.kmc.catalog` the event catalog (schema, loader, atomic writer);
- :mod:`~kmcflow.kmc.rates` dense rate tables per temperature and detailed-balance checks;
- :mod:`~kmcflow.kmc.lattice` presets, general lattices and site tables;
- :mod:`~kmcflow.kmc.kernels` the numba kernels that own the loop;
- :mod:`~kmcflow.kmc.engine` :class:`~kmcflow.kmc.engine.Simulation` and checkpoints;
- :mod:`~kmcflow.kmc.runner` runs into a folder, resumably;
- :mod:`~kmcflow.kmc.analysis` (erfc fits, widths), :mod:`~kmcflow.kmc.matano`,
  :mod:`~kmcflow.kmc.arrhenius`, :mod:`~kmcflow.kmc.plots`, :mod:`~kmcflow.kmc.study` fits and
  plots; :mod:`~kmcflow.kmc.validate` reference checks;
- :mod:`~kmcflow.kmc.parallel` replicas and domain decomposition over MPI (mpi4py is imported
  only by the parallel runs).
"""

from __future__ import annotations
