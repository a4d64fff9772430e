"""MPI-parallel kMC: independent replicas and spatial domain decomposition (mpi4py).

- :mod:`~kmcflow.kmc.parallel.comm` the communicator (mpi4py when installed, else a serial
  stand-in) and the one-line error that says how to install the ``mpi`` extra;
- :mod:`~kmcflow.kmc.parallel.replicas` R independent trajectories spread over the ranks,
  reduced to means and standard errors that do not depend on the number of ranks;
- :mod:`~kmcflow.kmc.parallel.grid` the process grid (which rank owns which cells);
- :mod:`~kmcflow.kmc.parallel.exchange_kernels` numba kernels of the ghost exchanges;
- :mod:`~kmcflow.kmc.parallel.domain` one large lattice split into slabs with ghost layers,
  advanced sector by sector (synchronous sublattice algorithm, Shim and Amar 2005);
- :mod:`~kmcflow.kmc.parallel.domain_runner` a decomposed run into an output folder, with
  collective checkpoints.
"""

from __future__ import annotations
