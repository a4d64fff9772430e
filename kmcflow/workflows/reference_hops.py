"""Reference hops with published or well-known barriers, as endpoint pairs of ASE Atoms.

- :func:`au_on_al100`: ASE's NEB tutorial, an Au adatom hopping between hollow sites of
  Al(100) (2x2x3 slab, the two bottom layers fixed); EMT gives 0.374 eV.
- :func:`bulk_vacancy_hop`: the first distinct nearest-neighbour vacancy hop of a species in a
  bundled crystal, in the smallest diagonal supercell whose vacancy images are
  ``min_image_distance_A`` apart (fcc Cu, or Li in antifluorite Li2O for CHGNet).

- :func:`perturbed_emt`: a deliberately different cheap model for warm starts and surrogate
  priors in tests and benchmarks: EMT with its pair-repulsion strength V0 scaled (0.8 by
  default), which moves the EMT barriers by 0.02 (Au/Al(100)), 0.14 (Cu) and 0.21 eV (Ni).

Used by the tests, the NEB benchmark and the table reproduction (the Au/Al recipe).
"""

from __future__ import annotations


def au_on_al100():
    """Initial and final states of the Au/Al(100) tutorial hop (unrelaxed, as ASE builds it)."""
    from ase.build import add_adsorbate, fcc100
    from ase.constraints import FixAtoms

    slab = fcc100("Al", size=(2, 2, 3))
    add_adsorbate(slab, "Au", 1.7, "hollow")
    slab.center(axis=2, vacuum=4.0)
    slab.set_constraint(FixAtoms(mask=[atom.tag > 1 for atom in slab]))
    initial = slab.copy()
    slab[-1].x += slab.get_cell()[0, 0] / 2
    return initial, slab.copy()


def bulk_vacancy_hop(name: str = "Cu", species: str | None = None,
                     min_image_distance_A: float = 7.0):
    """Initial and final states of a ``species`` vacancy hop in the bundled crystal ``name``."""
    from kmcflow.structures.endpoints import hop_endpoints
    from kmcflow.structures.hops import enumerate_hops
    from kmcflow.structures.io import read_structure, to_ase_atoms

    bulk = read_structure(name)
    pair = hop_endpoints(bulk, enumerate_hops(bulk, species or name).hops[0],
                         min_image_distance_A=min_image_distance_A)
    return to_ase_atoms(pair.initial), to_ase_atoms(pair.final)


def perturbed_emt(v0_scale: float = 0.8):
    """ASE's EMT with every element's pair-repulsion strength ``V0`` scaled by ``v0_scale``.

    A cheap model that knows the rough shape of the energy surface but not its numbers (the
    role a universal potential plays before DFT), for testing and benchmarking warm starts and
    surrogate priors against plain EMT as the "expensive" calculator.
    """
    from ase.calculators.emt import EMT

    class PerturbedEMT(EMT):
        def initialize(self, atoms):
            super().initialize(atoms)
            self.par["V0"] = self.par["V0"] * v0_scale
            self.par["neghalfv0overgamma2"] = self.par["neghalfv0overgamma2"] * v0_scale

    return PerturbedEMT()
