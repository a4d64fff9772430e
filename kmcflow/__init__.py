"""kmcflow: from two bulk crystals to a kinetic Monte Carlo prediction of interface inter-diffusion.

The package has four stages, each usable on its own:

- :mod:`kmcflow.structures` builds interface slabs and enumerates vacancy hops (pymatgen);
- :mod:`kmcflow.workflows` computes barriers and prefactors (jobflow + ASE);
- :mod:`kmcflow.kmc.catalog` holds the event catalog, the contract between DFT and kMC;
- :mod:`kmcflow.kmc` runs rejection-free lattice kinetic Monte Carlo (numpy + numba).

Importing :mod:`kmcflow` itself is cheap: it imports none of the stages.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
