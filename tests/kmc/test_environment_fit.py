"""The environment model's fit: exact data give back the model that made them.

The reference is the catalog's own evaluation of a model (``model_barrier`` and
``pair_energy_change`` of :mod:`kmcflow.kmc.environment_rates`, the functions the catalog
validation uses), not the fit's code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kmcflow.errors import CatalogError
from kmcflow.kmc.catalog import EnvironmentModelTerm, catalog_from_data
from kmcflow.kmc.environment import environment_key, key_digits, key_text, parse_key_text
from kmcflow.kmc.environment_fit import (
    EnvironmentSample,
    fit_environment_model,
    table_entries,
)
from kmcflow.kmc.environment_rates import (
    environment_geometry,
    model_barrier,
    pair_energy_change,
)
from kmcflow.kmc.lattice import preset
from kmcflow.workflows.environments import environment_catalog

SPECIES = ["Cu", "Ni"]
# by code: V, Cu, Ni; the own bonds sum to 0, the gauge the fit takes (vacancy-vacancy
# binding left out), so data with vacancies among the environment sites are fitted exactly too
PAIR = np.array([[0, 0, 0], [0, -0.01, -0.03], [0, -0.03, 0.01]])


@pytest.fixture(scope="module")
def geometry():
    return environment_geometry(preset("fcc", 3.6))


@pytest.fixture(scope="module")
def truth(geometry):
    """Made-up model terms per species: Ni on each orbit shifts E_KRA (a vacancy counts as
    the reference occupant, Cu, as the fit assumes)."""
    rng = np.random.default_rng(5)
    n_orb = int(geometry.n_orbits[0])
    return {s: EnvironmentModelTerm(
        species=name, hop_class=0, kra_eV=[0.70, 0.95][s - 1], prefactor_Hz=1e13,
        orbit_eV=[{"Ni": float(rng.uniform(-0.03, 0.06))} for _ in range(n_orb)])
        for s, name in ((1, "Cu"), (2, "Ni"))}


def sample(geometry, truth, s: int, codes: np.ndarray, prefactors=(4e12, 5e12)):
    d_e = pair_energy_change(codes, s, 0, geometry, PAIR)
    barrier = model_barrier(truth[s], codes, 0, geometry, d_e, SPECIES)
    kra = model_barrier(truth[s], codes, 0, geometry, 0.0, SPECIES)  # E_KRA itself (>0 here)
    return EnvironmentSample(key=key_text(SPECIES, s, 0, codes), kra_eV=kra,
                             reaction_energy_eV=d_e, barrier_eV=barrier,
                             prefactor_Hz=prefactors[0], reverse_prefactor_Hz=prefactors[1],
                             provenance={"source": "test"})


def canonical(text: str, geometry) -> str:
    """The key text of the canonical (smallest) symmetry image of an environment."""
    s, c, codes = parse_key_text(text, SPECIES, geometry.envs)
    key = environment_key(codes, c, geometry.envs, len(SPECIES))
    return key_text(SPECIES, s, c, key_digits(key, geometry.envs, len(SPECIES)))


def random_codes(rng, n: int, ni: float, vacancy: float = 0.05) -> np.ndarray:
    codes = np.where(rng.random(n) < ni, 2, 1)
    codes[rng.random(n) < vacancy] = 0
    return codes


def test_exact_data_give_back_the_barriers_of_unseen_environments(geometry, truth):
    rng = np.random.default_rng(1)
    n_env = int(geometry.envs.n_env_of_class[0])
    train = [sample(geometry, truth, s, random_codes(rng, n_env, ni))
             for ni in (0.25, 0.5, 0.75) for s in (1, 2) for _ in range(25)]
    fit = fit_environment_model(train, SPECIES, geometry)
    assert fit.rmse_eV < 1e-5 and fit.cv_rmse_eV < 1e-5 and fit.max_error_eV < 1e-5
    assert fit.kra_rmse_eV < 1e-5 and fit.reaction_energy_rmse_eV < 1e-5
    for _ in range(40):
        s = int(rng.integers(1, 3))
        held = sample(geometry, truth, s, random_codes(rng, n_env, rng.uniform(0.1, 0.9)))
        assert fit.barrier(held.key) == pytest.approx(held.barrier_eV, abs=1e-5)
    # one prefactor per species: the geometric mean of forward and reverse
    assert fit.terms[1, 0][2] == pytest.approx(math.sqrt(4e12 * 5e12))


def test_the_fitted_catalog_keeps_detailed_balance_and_every_computed_barrier(
        geometry, truth, cu_ni_region_catalog):
    rng = np.random.default_rng(2)
    n_env = int(geometry.envs.n_env_of_class[0])
    train = [sample(geometry, truth, s, random_codes(rng, n_env, 0.5))
             for s in (1, 2) for _ in range(40)]
    fit = fit_environment_model(train, SPECIES, geometry)
    base = catalog_from_data(cu_ni_region_catalog(3.6, {"Cu": 0.8, "Ni": 0.8}, 1e13))
    data = environment_catalog(base, train, fit)
    catalog = catalog_from_data(data)  # validation checks detailed balance of every pair
    assert catalog.schema_version == 2
    entries = {e.key: e for e in catalog.environments.table}
    assert len(entries) == 2 * len(train)  # each hop and its reverse
    for item in train:
        entry = entries[canonical(item.key, geometry)]
        assert entry.barrier_eV == pytest.approx(item.barrier_eV, abs=1e-5)
        assert entry.prefactor_Hz == pytest.approx(math.sqrt(4e12 * 5e12))
    assert data["environments"]["model"]["fit"]["n_train"] == len(train)


def test_the_pair_bonds_do_not_depend_on_the_order_of_the_species(geometry, truth):
    rng = np.random.default_rng(4)
    n_env = int(geometry.envs.n_env_of_class[0])
    data = [sample(geometry, truth, s, random_codes(rng, n_env, 0.5, vacancy=0.0))
            for s in (1, 2) for _ in range(30)]
    swapped = [EnvironmentSample(**{**d.__dict__, "key": d.key.replace("Cu", "X")
                                    .replace("Ni", "Cu").replace("X", "Ni")}) for d in data]
    a = fit_environment_model(data, SPECIES, geometry).pair_interactions_eV()
    b = fit_environment_model(swapped, SPECIES[::-1], geometry).pair_interactions_eV()
    assert a["Cu-Cu"] == pytest.approx(b["Ni-Ni"], abs=1e-6)
    assert a["Ni-Ni"] == pytest.approx(b["Cu-Cu"], abs=1e-6)
    assert a["Cu-Cu"] + a["Ni-Ni"] == pytest.approx(0.0, abs=2e-6)
    # and every reaction energy is the data's (the gauge changes no hop)
    assert a["Cu-Ni"] - a["Cu-Cu"] == pytest.approx(PAIR[1, 2] - PAIR[1, 1], abs=1e-6)


def test_a_hop_computed_twice_is_one_table_pair(geometry, truth):
    rng = np.random.default_rng(3)
    n_env = int(geometry.envs.n_env_of_class[0])
    codes = random_codes(rng, n_env, 0.5, vacancy=0.0)
    twice = [sample(geometry, truth, 1, codes), sample(geometry, truth, 1, codes)]
    others = [sample(geometry, truth, s, random_codes(rng, n_env, 0.5)) for s in (1, 2)
              for _ in range(10)]
    fit = fit_environment_model(twice + others, SPECIES, geometry)
    entries = table_entries(twice, fit)
    assert len(entries) == 2
    assert len(entries[0]["provenance"]["computed"]) == 2


def test_nothing_to_fit_and_bad_settings_are_refused(geometry, truth):
    with pytest.raises(CatalogError, match="no computed hops"):
        fit_environment_model([], SPECIES, geometry)
    one = [sample(geometry, truth, 1, np.ones(18, int))]
    with pytest.raises(CatalogError, match="folds must be >= 2"):
        fit_environment_model(one, SPECIES, geometry, folds=1)
    with pytest.raises(CatalogError, match="ridge"):
        fit_environment_model(one, SPECIES, geometry, ridge_eV2=-1.0)
    bad = [EnvironmentSample(key="Fe|c0|" + ",".join(["Cu"] * 18), kra_eV=1, barrier_eV=1,
                             reaction_energy_eV=0, prefactor_Hz=1e13)]
    with pytest.raises(CatalogError, match="sample 0"):
        fit_environment_model(bad, SPECIES, geometry)


def test_a_hop_and_its_reverse_are_ranked_as_one_computation(geometry):
    from kmcflow.kmc.environment import reverse_key
    from kmcflow.workflows.environments import rank_unlisted

    rng = np.random.default_rng(6)
    n_env = int(geometry.envs.n_env_of_class[0])
    codes = [random_codes(rng, n_env, 0.5, vacancy=0.0) for _ in range(3)]
    texts = [key_text(SPECIES, 1, 0, c) for c in codes]
    key = environment_key(codes[0], 0, geometry.envs, 2)
    c_rev, k_rev = reverse_key(key, 0, geometry.envs, 2)
    back = key_text(SPECIES, 1, c_rev, key_digits(k_rev, geometry.envs, 2))
    # texts[1] is executed most, but texts[0] and its reverse together weigh more
    unlisted = [(texts[1], 100), (texts[0], 60), (back, 50), (texts[2], 10),
                ("Cu|c0|" + ",".join(["V"] + ["Cu"] * 17), 1000)]  # a second vacancy: skipped
    assert rank_unlisted(unlisted, SPECIES, geometry.envs, 2) == [texts[0], texts[1]]
    done = {(1, 0, environment_key(codes[1], 0, geometry.envs, 2))}
    assert rank_unlisted(unlisted, SPECIES, geometry.envs, 5, done) == [texts[0], texts[2]]
