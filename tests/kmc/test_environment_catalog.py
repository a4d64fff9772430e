"""Environment-resolved catalogs (schema 2): validation, the kernel's rates, the engine's report.

The kernel's rate of every possible hop is compared with an independent Python evaluation:
environment sites found from Cartesian positions, the model's formula written out, dE from the
pair bonds counted by hand.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from kmcflow.kmc.catalog import K_B_EV_PER_K, Catalog, validate_catalog
from kmcflow.kmc.engine import Simulation
from kmcflow.kmc.environment import environment_key, key_digits, key_text
from kmcflow.kmc.environment_rates import environment_geometry
from kmcflow.kmc.five_frequency import five_frequency_catalog, manning_solute_correlation
from kmcflow.kmc.lattice import preset

T_K = 900.0
PAIR = {"Cu-Cu": 0.0, "Cu-Ni": -0.03, "Ni-Ni": 0.02}


def cu_ni(environments: dict | None = None, rate_model: str = "kra",
          pairs: dict | None = None, kra: dict | None = None) -> dict:
    """A Cu|Ni fcc catalog (schema 2) with KRA events, pair bonds and optional environments."""
    kra = kra or {"Cu": 0.70, "Ni": 0.95}
    events = []
    for sp in ("Cu", "Ni"):
        for ri in ("Cu", "Ni"):
            for rf in ("Cu", "Ni"):
                events.append({"id": f"{sp}_{ri}_{rf}", "species": sp, "initial_region": ri,
                               "final_region": rf, "kra_eV": kra[sp], "prefactor_Hz": 1e13,
                               "provenance": {"source": "test"}})
    data = {"schema": "kmcflow.catalog", "schema_version": 2, "name": "cu_ni_env",
            "units": {}, "lattice": {"preset": "fcc", "a_A": 3.6}, "species": ["Cu", "Ni"],
            "hosts": [{"name": "Cu", "initial_species": "Cu"},
                      {"name": "Ni", "initial_species": "Ni"}],
            "rate_model": rate_model, "events": events,
            "energy_model": {"pair_interactions_eV": dict(pairs if pairs is not None
                                                          else PAIR)}}
    if environments is not None:
        data["environments"] = environments
    return data


def orbit_terms(n_orbits: int) -> list[dict]:
    """Distinct, made-up orbit terms: Ni neighbours raise a Cu hop, a vacancy lowers it."""
    rng = np.random.default_rng(7)
    return [{"Ni": float(rng.uniform(0.0, 0.08)), "V": float(rng.uniform(-0.1, 0.0))}
            for _ in range(n_orbits)]


@pytest.fixture(scope="module")
def geometry():
    return environment_geometry(preset("fcc", 3.6))


def random_alloy(sim: Simulation, seed: int, ni_fraction: float = 0.4,
                 vacancy_fraction: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = sim.block.n_sites
    occ = np.where(rng.random(n) < ni_fraction, 2, 1).astype(np.int8)
    occ[rng.choice(n, size=int(vacancy_fraction * n), replace=False)] = 0
    return occ


def brute_force_rates(sim: Simulation, occ: np.ndarray, model: dict, geometry) -> dict:
    """Rate of every possible hop from positions and the model's formula (no kernel code)."""
    pos = sim.block.site_positions_A()
    box = sim.block.cell_matrix_A()
    inv = np.linalg.inv(box)
    d_nn = 3.6 / math.sqrt(2)

    def wrap(d):
        f = d @ inv
        return (f - np.round(f)) @ box

    pair = np.zeros((3, 3))
    for key, value in PAIR.items():
        a, b = (["Cu", "Ni"].index(x) + 1 for x in key.split("-"))
        pair[a, b] = pair[b, a] = value
    terms = {t["species"]: t for t in model["terms"]}
    kT = K_B_EV_PER_K * T_K
    envs = geometry.envs
    rates = {}
    for v in np.flatnonzero(occ == 0):
        dv = np.linalg.norm(wrap(pos - pos[v]), axis=1)
        for j in np.flatnonzero(np.abs(dv - d_nn) < 1e-3):
            s = int(occ[j])
            if s == 0:
                continue
            dj = np.linalg.norm(wrap(pos - pos[j]), axis=1)
            near_v = np.abs(dv - d_nn) < 1e-3
            near_j = np.abs(dj - d_nn) < 1e-3
            env = np.flatnonzero((near_v | near_j) & (np.arange(occ.size) != v)
                                 & (np.arange(occ.size) != j))
            # place each environment site on the reference template of the hop: the template
            # is the reference hop's geometry mapped by a cubic operation taking its hop vector
            # onto this one (any of them: the model is symmetric)
            d_hop = wrap(pos[j] - pos[v])
            rel = wrap(pos[env] - pos[v])
            e_kra = terms[["Cu", "Ni"][s - 1]]["kra_eV"]
            orbits = terms[["Cu", "Ni"][s - 1]]["orbit_eV"]
            for op in envs.operations:
                if np.allclose(op.rotation @ envs.hop_vector_A[0], d_hop, atol=1e-6):
                    template = envs.positions_A[0] @ op.rotation.T
                    break
            for r, site in zip(rel, env, strict=True):
                e = int(np.argmin(np.linalg.norm(template - r, axis=1)))
                name = {0: "V", 1: "Cu", 2: "Ni"}[int(occ[site])]
                e_kra += orbits[int(geometry.orbit_index[0, e])].get(name, 0.0)
            d_e = (sum(pair[s, occ[n]] for n in np.flatnonzero(near_v) if n != j)
                   - sum(pair[s, occ[n]] for n in np.flatnonzero(near_j) if n != v))
            ea = max(e_kra + d_e / 2, d_e, 0.0)
            rates[int(v), int(j)] = 1e13 * math.exp(-ea / kT)
    return rates


def kernel_rates(sim: Simulation) -> dict:
    out = {}
    for q, v in enumerate(sim.vac_site.tolist()):
        c = sim.block.site_class[v]
        for k in range(sim.block.offsets.shape[1]):
            off = sim.block.offsets[c, k]
            if off and sim.occ[v + off] != 0:
                out[v, v + off] = sim.slot_rate[q, k]
    return out


def test_the_kernel_rates_every_hop_as_the_model_says(geometry):
    n_orb = int(geometry.n_orbits[0])
    model = {"terms": [{"species": "Cu", "kra_eV": 0.70, "prefactor_Hz": 1e13,
                        "orbit_eV": orbit_terms(n_orb)},
                       {"species": "Ni", "kra_eV": 0.95, "prefactor_Hz": 1e13,
                        "orbit_eV": orbit_terms(n_orb)[::-1]}]}
    cat = Catalog.model_validate(cu_ni({"model": model}))
    sim = Simulation(cat, (3, 3, 4), T_K, 0.05, seed=1)
    occ = random_alloy(sim, 3)
    sim = Simulation(cat, (3, 3, 4), T_K, 0.05, seed=1, initial_occupation=occ)
    expected = brute_force_rates(sim, occ, model, geometry)
    got = kernel_rates(sim)
    assert set(got) == set(expected) and len(got) > 60
    worst = max(abs(got[h] / expected[h] - 1) for h in got)
    assert worst < 1e-12
    # and the rates are not all alike: the environment matters
    assert np.std(np.log(list(got.values()))) > 0.3


def test_a_flat_model_reproduces_the_region_catalog_trajectory():
    """Orbit terms 0: the model is the v1 KRA model with pairs, bit for bit."""
    plain = Catalog.model_validate({**cu_ni(), "schema_version": 1})
    model = {"terms": [{"species": "Cu", "kra_eV": 0.70, "prefactor_Hz": 1e13},
                       {"species": "Ni", "kra_eV": 0.95, "prefactor_Hz": 1e13}]}
    env = Catalog.model_validate(cu_ni({"model": model}))
    a = Simulation(plain, (4, 4, 8), T_K, 0.02, seed=4)
    b = Simulation(env, (4, 4, 8), T_K, 0.02, seed=4)
    a.run(20_000)
    b.run(20_000)
    assert np.array_equal(a.occ, b.occ) and a.time_s == b.time_s
    report = b.environment_report()
    assert report["events_by_source"] == {"table": 0, "model": 20_000, "region": 0}
    assert report["unlisted_executed"] == 20_000 and len(report["unlisted"]) <= 200


def test_table_entries_win_over_the_model_and_are_counted(geometry):
    """A pure-Cu environment in the table, a model for the rest: sources add up."""
    n = int(geometry.envs.n_env_of_class[0])
    pure = key_text(["Cu", "Ni"], 1, 0, [1] * n)
    table = [{"key": pure, "barrier_eV": 0.60, "prefactor_Hz": 1e13,
              "provenance": {"source": "test"}}]
    model = {"terms": [{"species": "Cu", "kra_eV": 0.70, "prefactor_Hz": 1e13}]}
    cat = Catalog.model_validate(cu_ni({"table": table, "model": model}))
    sim = Simulation(cat, (4, 4, 8), T_K, 0.01, seed=2)
    sim.run(30_000)
    report = sim.environment_report()
    by = report["events_by_source"]
    assert sum(by.values()) == sim.n_events == 30_000
    assert by["table"] > 0 and by["model"] > 0 and by["region"] > 0  # Ni has no term
    assert all(u["key"] != pure for u in report["unlisted"])
    assert report["unlisted"][0]["executed"] >= report["unlisted"][-1]["executed"]
    # the rate of a vacancy deep in pure Cu with 12 Cu neighbours is the table's
    rate = 1e13 * math.exp(-0.60 / (K_B_EV_PER_K * T_K))
    occ = np.ones(sim.block.n_sites, np.int8)
    occ[0] = 0
    lone = Simulation(cat, (4, 4, 8), T_K, 0.01, seed=2, initial_occupation=occ)
    assert lone.total_rate_Hz == pytest.approx(12 * rate, rel=1e-12)


def test_a_checkpoint_keeps_the_environment_counts(tmp_path, geometry):
    model = {"terms": [{"species": "Cu", "kra_eV": 0.70, "prefactor_Hz": 1e13},
                       {"species": "Ni", "kra_eV": 0.95, "prefactor_Hz": 1e13}]}
    cat = Catalog.model_validate(cu_ni({"model": model}))
    a = Simulation(cat, (4, 4, 8), T_K, 0.02, seed=5)
    a.run(5_000)
    a.write_checkpoint(tmp_path / "c.npz")
    a.run(5_000)
    b = Simulation(cat, (4, 4, 8), T_K, 0.02, seed=5)
    b.restore_checkpoint(tmp_path / "c.npz")
    b.run(5_000)
    assert b.environment_report() == a.environment_report()


def _problems(data: dict) -> list[str]:
    return [f"{p.field}: {p.message}" for p in validate_catalog(data) if p.severity == "error"]


def test_bad_environment_tables_are_refused_naming_the_field(geometry):
    n = int(geometry.envs.n_env_of_class[0])
    good = key_text(["Cu", "Ni"], 1, 0, [1] * (n - 1) + [2])

    def table(*entries):
        return {"table": [{"key": k, "barrier_eV": b, "prefactor_Hz": 1e13,
                           "provenance": {"source": "test"}} for k, b in entries]}

    short = "Cu|c0|" + ",".join(["Cu"] * (n - 1))
    assert any("environments.table[0].key" in p and "environment sites" in p
               for p in _problems(cu_ni(table((short, 0.7)))))
    assert any("key.hop_class" in p for p in _problems(cu_ni(table(("Cu|c3|" + ",".join(
        ["Cu"] * n), 0.7)))))
    assert any("key.environment" in p for p in _problems(cu_ni(table(
        ("Cu|c0|" + ",".join(["Cu"] * (n - 1) + ["Zn"]), 0.7)))))
    assert any("same environment" in p for p in _problems(cu_ni(table((good, 0.7),
                                                                      (good, 0.8)))))
    # the reverse of `good`: the same Ni seen from the other end; its barrier must differ by
    # the pair-energy change of the hop
    s, c, key = 1, 0, environment_key([1] * (n - 1) + [2], 0, geometry.envs, 2)
    from kmcflow.kmc.environment import reverse_key

    c2, key2 = reverse_key(key, c, geometry.envs, 2)
    reverse = key_text(["Cu", "Ni"], s, c2, key_digits(key2, geometry.envs, 2))
    if key2 != key:
        bad = _problems(cu_ni(table((good, 0.70), (reverse, 0.70))))
        assert any("detailed balance broken" in p for p in bad), bad
    version1 = {**cu_ni(table((good, 0.7))), "schema_version": 1}
    assert any("schema_version 2" in p for p in _problems(version1))


def test_catalog_check_gives_one_line_and_exit_2(tmp_path, capsys, geometry):
    from kmcflow.cli import main

    n = int(geometry.envs.n_env_of_class[0])
    data = cu_ni({"table": [{"key": "Cu|c0|" + ",".join(["Cu"] * (n + 2)),
                             "barrier_eV": 0.7, "prefactor_Hz": 1e13,
                             "provenance": {"source": "test"}}]})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["catalog", "check", str(path)]) == 2
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "environments.table[0].key.environment" in text, text


def test_five_frequency_catalog_lists_every_environment_once():
    cat = five_frequency_catalog((1e6, 2e6, 3e6, 4e6, 5e6))
    notes = sorted(e.provenance.notes for e in cat.environments.table)
    # fcc: all-A (w0), B moving (w2), and the orbits of one B among the 18 sites
    assert notes.count("w0") == 1 and notes.count("w2") == 1
    assert {"w1", "w3", "w4"} <= set(notes)
    rate = {e.provenance.notes: e.prefactor_Hz * math.exp(-e.barrier_eV / (K_B_EV_PER_K * 1000))
            for e in cat.environments.table}
    assert rate["w3"] == pytest.approx(4e6) and rate["w4"] == pytest.approx(5e6)
    # detailed balance: w4 / w3 = exp(-dE_association / kT), dE from the A-B pair energy
    d_e = cat.energy_model.pair_interactions_eV["A-B"]
    assert math.exp(d_e / (K_B_EV_PER_K * 1000)) == pytest.approx(5e6 / 4e6)


def test_manning_formula_limits():
    assert manning_solute_correlation(1, 1, 1, 1, 1) == pytest.approx(0.7815, abs=2e-4)
    assert manning_solute_correlation(1, 1, 1e6, 1, 1) < 1e-5  # B rattles with its vacancy
    assert manning_solute_correlation(1, 1, 1e-6, 1, 1) == pytest.approx(1, abs=1e-5)


def test_kmc_run_reports_the_sources_in_its_summary(tmp_path):
    from kmcflow.kmc.runner import run_kmc

    model = {"terms": [{"species": "Cu", "kra_eV": 0.70, "prefactor_Hz": 1e13}]}
    path = tmp_path / "env.json"
    path.write_text(json.dumps(cu_ni({"model": model})))
    result = run_kmc(str(path), cells=(4, 4, 8), steps=20_000, temperature_K=T_K,
                     vacancy_fraction=0.01, samples=3, seed=1)
    result.write(tmp_path / "run")
    summary = result.summary
    env = summary["environments"]
    assert sum(env["events_by_source"].values()) == summary["events_executed"] == 20_000
    assert env["events_by_source"]["model"] > 0 and env["events_by_source"]["region"] > 0
    assert env["fraction_by_source"]["table"] == 0.0
    assert env["unlisted"] and env["unlisted"][0]["key"].split("|")[0] in ("Cu", "Ni")
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["environments"] == env


def test_five_frequency_rates_are_checked_on_the_command_line(capsys):
    from kmcflow.cli import main

    for bad in (["--rates", "1,2,3"], ["--rates", "1,1,-1,1,1"], ["--rates", "a,b,c,d,e"], []):
        capsys.readouterr()
        assert main(["kmc", "validate", "--check", "five-frequency", *bad]) == 2
        captured = capsys.readouterr()
        assert "--rates" in captured.err + captured.out
    assert main(["kmc", "validate", "--check", "five-freq"]) == 2


# W0, W1, W2, W3, W4 (Hz) spanning w2/w1 from 0.1 to 10 and w4/w0 from 0.3 to 3, binding
# either way, with the box each needs: the solute's periodic images bring a dissociated
# vacancy back sooner than an infinite crystal would, which matters when association is strong
# (measured, 1e5 solute jumps, (1e6, 5e5, 2e6, 4e5, 3e6): 4^3 cells +2.2 %, 6^3 +1.1 %,
# 8^3 +0.2 % against Manning); the others read within 0.3 % of Manning at 4^3
FIVE_FREQUENCY_SETS = [
    ((1e6, 1e6, 1e7, 1e6, 1e6), 4),
    ((1e6, 1e6, 1e5, 2e5, 3e6), 4),
    ((1e6, 2e6, 5e6, 3e5, 3e5), 4),
    ((1e6, 5e5, 2e6, 4e5, 3e6), 8),
    ((1e6, 5e6, 5e5, 2e5, 2e6), 4),
]


@pytest.mark.slow
def test_equal_frequencies_give_the_fcc_tracer_correlation_factor():
    from kmcflow.kmc.five_frequency import check_five_frequency

    # 4^3 cells read 0.7828 +- 0.0025 with 1e5 jumps (3^3: 0.7876, 5^3: 0.7848)
    r = check_five_frequency((1e6,) * 5, solute_jumps=60_000, cells=(4, 4, 4))
    print(f"\nf_B (all five equal) = {r.measured:.4f} +- {r.measured_stderr:.4f}, "
          f"fcc f0 = 0.78145")
    assert r.measured == pytest.approx(0.78145, rel=0.01)
    assert r.events_by_source["region"] == 0 and r.events_by_source["model"] == 0


@pytest.mark.slow
@pytest.mark.parametrize(("rates", "cells"), FIVE_FREQUENCY_SETS)
def test_five_frequency_solute_correlation_matches_manning(rates, cells):
    from kmcflow.kmc.five_frequency import check_five_frequency

    r = check_five_frequency(rates, solute_jumps=40_000, cells=(cells,) * 3)
    print(f"\nrates {rates}, {cells}^3 cells: f_B = {r.measured:.4f} +- "
          f"{r.measured_stderr:.4f}, Manning {r.reference:.4f} ({100 * r.relative_error:+.2f} %)")
    assert abs(r.relative_error) <= 0.02
    assert r.events_by_source["region"] == 0  # the table covers every environment met


def test_a_table_catalogs_events_stay_barriers_beside_pair_bonds():
    """Pair bonds serve the environment model; a hop neither covers gets the event's barrier
    (they were read as E_KRA + dE/2: 1.3986 and 1.3793 eV instead of 1.3890 eV)."""
    data = cu_ni({"table": []}, rate_model="table")
    for ev in data["events"]:
        ev["barrier_eV"] = ev.pop("kra_eV")
    cat = Catalog.model_validate(data)
    sim = Simulation(cat, (4, 4, 4), T_K, 0.05, seed=1)
    occ = random_alloy(sim, 5)
    sim = Simulation(cat, (4, 4, 4), T_K, 0.05, seed=1, initial_occupation=occ)
    kT = K_B_EV_PER_K * T_K
    allowed = {1e13 * math.exp(-0.70 / kT), 1e13 * math.exp(-0.95 / kT)}
    rates = set(kernel_rates(sim).values())
    assert rates == allowed


def test_a_table_entry_needs_its_reverse_with_the_same_prefactor(geometry):
    n = int(geometry.envs.n_env_of_class[0])
    codes = [1] * (n - 1) + [2]
    key = environment_key(codes, 0, geometry.envs, 2)
    from kmcflow.kmc.environment import reverse_key

    c2, key2 = reverse_key(key, 0, geometry.envs, 2)
    fwd = key_text(["Cu", "Ni"], 1, 0, codes)
    rev = key_text(["Cu", "Ni"], 1, c2, key_digits(key2, geometry.envs, 2))
    pair = {"Cu-Ni": -0.03, "Cu-Cu": 0.0}
    d_e = geometry.near_v[0, n - 1] * -0.03 - geometry.near_j[0, n - 1] * -0.03
    assert key2 != key and d_e != 0

    def entry(k, b, nu=1e13):
        return {"key": k, "barrier_eV": b, "prefactor_Hz": nu, "provenance": {"source": "t"}}

    alone = [p for p in validate_catalog(cu_ni({"table": [entry(fwd, 0.7)]}, pairs=pair))
             if p.severity == "error"]
    assert any("neither in the table nor rated by the model" in p.message and rev in p.hint
               for p in alone)
    consistent = cu_ni({"table": [entry(fwd, 0.7), entry(rev, 0.7 - d_e)]}, pairs=pair)
    assert _problems(consistent) == []
    nu = _problems(cu_ni({"table": [entry(fwd, 0.7), entry(rev, 0.7 - d_e, 2e13)]},
                         pairs=pair))
    assert any("prefactor" in p for p in nu)
    # the reverse rated by the model: its barrier is checked like a table entry's
    model = {"terms": [{"species": "Cu", "kra_eV": 0.7, "prefactor_Hz": 1e13}]}
    e_rev = max(0.7 - d_e / 2, -d_e, 0.0)
    ok = cu_ni({"table": [entry(fwd, e_rev + d_e)], "model": model}, pairs=pair)
    assert _problems(ok) == []
    off = _problems(cu_ni({"table": [entry(fwd, e_rev + d_e + 0.05)], "model": model},
                          pairs=pair))
    assert any("detailed balance broken" in p and "model" in p for p in off)
