"""Cu-Ni with EMT: the fitted environment model predicts CI-NEB barriers it was not fitted to.

Acceptance of issue 17: at least 30 held-out environments (random Cu/Ni neighbourhoods at
25, 50 and 75 % Ni), mean absolute error of the model's E_a against their CI-NEB forward
barriers at most 0.03 eV. The test prints the errors.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from kmcflow.kmc.lattice import preset
from kmcflow.structures.environment_sampling import random_alloy_hops
from kmcflow.workflows.environments import (
    EnvironmentHopSettings,
    compute_sample_folder,
    fit_folders,
    write_sample_folder,
)

pytestmark = pytest.mark.slow

SPECIES = ["Cu", "Ni"]


def emt_lattice_constant(element: str) -> float:
    """EMT's own fcc lattice constant (equation of state of the conventional cell)."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.eos import EquationOfState

    volumes, energies = [], []
    for x in np.linspace(0.97, 1.03, 7):
        atoms = bulk(element, "fcc", a=3.55 * x, cubic=True)
        atoms.calc = EMT()
        volumes.append(atoms.get_volume())
        energies.append(atoms.get_potential_energy())
    v0, _, _ = EquationOfState(volumes, energies).fit()
    return float(v0 ** (1 / 3))


def test_cu_ni_model_predicts_held_out_emt_barriers(tmp_path, cu_ni_region_catalog):
    lattice = preset("fcc", 3.52)
    constants = {el: emt_lattice_constant(el) for el in SPECIES}
    assert 3.58 < constants["Cu"] < 3.60 and 3.48 < constants["Ni"] < 3.50
    seen: set[str] = set()
    folders = {}
    for name, per, seed in (("train", 15, 100), ("test", 10, 200)):
        hops = []
        for i, x in enumerate((0.25, 0.5, 0.75)):
            batch = random_alloy_hops(lattice, SPECIES, {"Ni": x}, per, seed=seed + i,
                                      lattice_constants_A=constants, skip_keys=seen)
            seen |= {h.key for h in batch}
            hops += batch
        folders[name] = write_sample_folder(tmp_path / name, hops, catalog_name="cu_ni",
                                            species=SPECIES, lattice={"preset": "fcc",
                                                                      "a_A": 3.52},
                                            settings={})
    settings = EnvironmentHopSettings(neb={"n_images": 3, "fmax_eV_per_A": 0.05},
                                      relax={"fmax_eV_per_A": 0.02},
                                      prefactor={"radius_A": 0.0})
    for folder in folders.values():
        results = compute_sample_folder(folder, settings, workers=2)
        assert all(not r.get("failure_reason") for r in results)
    base = tmp_path / "base.json"
    base.write_text(json.dumps(cu_ni_region_catalog(3.52, {"Cu": 0.9, "Ni": 0.9})))
    report = fit_folders(base, [folders["train"]], tmp_path / "learned.json",
                         test=[folders["test"]])
    fit, held = report["fit"], report["test"]
    barriers = [h["computed_eV"] for h in held["per_hop"]]
    print(f"\nCu-Ni EMT environment model: {fit['n_train']} training hops, RMSE "
          f"{fit['rmse_eV']:.4f} eV, 5-fold CV RMSE "
          f"{fit['cv_rmse_eV']:.4f} eV; {held['n']} held-out hops: MAE {held['mae_eV']:.4f} "
          f"eV, RMSE {held['rmse_eV']:.4f} eV, max {held['max_error_eV']:.4f} eV; barriers "
          f"{min(barriers):.3f}-{max(barriers):.3f} eV")
    assert held["n"] >= 30 and report["left_out"] == []
    # the environments matter: knowing only the moving species (each held-out barrier
    # predicted by its species' mean over the held-out set itself) errs far more
    species = np.array([h["key"].split("|")[0] for h in held["per_hop"]])
    computed = np.array(barriers)
    species_mean = np.array([computed[species == s].mean() for s in species])
    species_only_mae = float(np.mean(np.abs(computed - species_mean)))
    print(f"species-only MAE {species_only_mae:.4f} eV")
    assert held["mae_eV"] < 0.5 * species_only_mae
    assert held["mae_eV"] <= 0.03
    assert fit["cv_rmse_eV"] <= 0.04
