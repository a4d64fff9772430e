"""A tour of the kmcflow Python API: two crystals to an interdiffusion coefficient, in memory.

Run it with ``python examples/api_tour.py [FIGURE.png]`` (about a minute on two cores, the
``workflows`` extra installed; no DFT code, no cluster). Every stage hands objects to the next
and every number it prints is checked against a reference that does not come from kmcflow:

1. two pymatgen ``Structure`` objects, Cu and Ni, and their coherent (100) interface;
2. the symmetry-distinct vacancy hops of the interface;
3. one barrier by CI-NEB with ASE's EMT (the Cu vacancy hop in bulk Cu), checked against the
   energy of the hop's midpoint found by a plain constrained relaxation (the saddle of this
   symmetric hop lies on the mirror plane half-way);
4. the catalog that one barrier fully defines: a Cu isotope couple (two labels of Cu, every
   hop at the EMT rate);
5. kMC of that couple, in memory: D against the exact f0 c_v w a^2, and the sigma^2(t) figure;
6. a published barrier table (ASE's NEB tutorial, Au on Al(100)) reproduced.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

from ase.constraints import FixAtoms
from ase.optimize import BFGS
from pymatgen.core import Lattice, Structure

import kmcflow

A_CU, A_NI = 3.61, 3.52  # fcc lattice constants, Angstrom
K_B = 8.617333262e-5  # eV/K
F0_FCC = 0.78145  # tracer correlation factor of the fcc vacancy mechanism
FCC = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
EXAMPLES = Path(__file__).resolve().parent

# 1. two crystals and their interface -------------------------------------------------------
cu = Structure(Lattice.cubic(A_CU), ["Cu"] * 4, FCC)
ni = Structure(Lattice.cubic(A_NI), ["Ni"] * 4, FCC)
search = kmcflow.find_matches(cu, ni, (1, 0, 0), (1, 0, 0), film_thickness="4layers",
                              substrate_thickness="4layers")
match = search.matches[0]
print(f"Cu(100) on Ni(100): {len(search.matches)} matches; the first strains Cu by "
      f"{100 * match.strain:+.2f} % over {match.area_A2:.2f} Angstrom^2")
assert math.isclose(match.strain, A_NI / A_CU - 1, abs_tol=1e-4)  # Cu squeezed onto Ni
interface = kmcflow.build_interface(search, vacuum_A=0)  # a periodic bi-crystal, no surface
print(f"interface {interface.name}: {len(interface.structure)} atoms, c = "
      f"{interface.structure.lattice.c:.2f} Angstrom")

# 2. its hops --------------------------------------------------------------------------------
hops = kmcflow.enumerate_hops(interface, ["Cu", "Ni"])
crossing = [h for h in hops.hops if h.initial_host != h.final_host]
print(f"{len(hops.hops)} distinct hops, {len(crossing)} across the interface, e.g. "
      f"{crossing[0].event_key}")
assert {h.species for h in crossing} == {"Cu", "Ni"}

# 3. one barrier with EMT --------------------------------------------------------------------
bulk_hop = kmcflow.enumerate_hops(cu, "Cu").hops[0]
pair = kmcflow.hop_endpoints(kmcflow.read_structure(cu), bulk_hop, min_image_distance_A=7.0)
initial, final = pair.ase_atoms()
hop = kmcflow.compute_hop(initial, final, "emt")  # a HopResult: relaxations, band, prefactor
assert hop.failure_reason is None, hop.failure_message
barrier_eV, prefactor_Hz = hop.forward_barrier_eV, hop.prefactor_Hz
print(f"Cu vacancy hop, EMT, {len(initial)} atoms: barrier {barrier_eV:.3f} eV, Vineyard "
      f"prefactor {prefactor_Hz:.3g} Hz, {hop.force_calls} force calls")

# the independent check with plain ASE: relax the initial state, then everything but the
# moving atom held at the midpoint of the hop
from ase.calculators.emt import EMT  # noqa: E402

moving = pair.moving_index
relaxed = initial.copy()
relaxed.calc = EMT()
BFGS(relaxed, logfile=None).run(fmax=0.01, steps=300)
midpoint = relaxed.copy()
midpoint.positions[moving] = 0.5 * (initial.positions[moving] + final.positions[moving])
midpoint.set_constraint([*relaxed.constraints, FixAtoms(indices=[moving])])
midpoint.calc = EMT()
BFGS(midpoint, logfile=None).run(fmax=0.01, steps=300)
midpoint_barrier_eV = midpoint.get_potential_energy() - relaxed.get_potential_energy()
print(f"constrained midpoint: {midpoint_barrier_eV:.3f} eV")
assert abs(barrier_eV - midpoint_barrier_eV) < 0.02
assert math.isclose(barrier_eV, hop.reverse_barrier_eV, abs_tol=0.01)  # a symmetric hop

# 4. the catalog one barrier defines: a Cu isotope couple ------------------------------------
template = kmcflow.load_catalog(EXAMPLES / "catalogs" / "isotope_couple.json")
data = template.to_json_dict()
data.update(name="cu_isotope_couple_emt", lattice={"preset": "fcc", "a_A": A_CU},
            conditions={**data["conditions"], "temperature_K": 1000.0})
for event in data["events"]:
    event.update(barrier_eV=barrier_eV, prefactor_Hz=prefactor_Hz,
                 provenance={"source": "examples/api_tour.py", "calculator": "emt",
                             "neb_images": len(hop.energies_eV) - 2,
                             "converged": hop.converged})
assert kmcflow.validate_catalog(data) == []
catalog = kmcflow.Catalog.model_validate(data)

# 5. kMC in memory ---------------------------------------------------------------------------
result = kmcflow.run_kmc(catalog, steps=4_000_000, seed=1)
assert result.succeeded, result.failure
cond = catalog.conditions
w_Hz = prefactor_Hz * math.exp(-barrier_eV / (K_B * cond.temperature_K))
exact = F0_FCC * cond.vacancy_fraction * w_Hz * A_CU**2
print(f"kMC at {cond.temperature_K:g} K: D = {result.D_A2_per_s:.4g} Angstrom^2/s; "
      f"exact f0 c_v w a^2 = {exact:.4g} "
      f"({100 * (result.D_A2_per_s / exact - 1):+.1f} %)")
assert abs(result.D_A2_per_s / exact - 1) < 0.08

figure = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "sigma2.png"
result.plot_sigma2(figure)
print(f"sigma^2(t) with the fitted line 2 D t + b: {figure}")
assert figure.stat().st_size > 0

# 6. a published table, reproduced -----------------------------------------------------------
reproduction = kmcflow.reproduce_table(EXAMPLES / "tables" / "ase_emt_au_al100.yaml")
au = reproduction.rows[0]
print(f"ASE tutorial, Au on Al(100): published {au['published_barrier_eV']:.3f} eV, "
      f"recomputed {au['computed_barrier_eV']:.3f} eV")
assert reproduction.confirmed and au["barrier_agrees"]  # recomputed, within 0.05 eV
