"""The catalog contract: bundled examples, reference rates, detailed balance, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from kmcflow.cli import main
from kmcflow.errors import CatalogError
from kmcflow.kmc.catalog import K_B_EV_PER_K, load_catalog, write_catalog
from kmcflow.kmc.rates import resolve_rates


def test_examples_load_and_li_na_rates_match_the_reference_table(examples: Path) -> None:
    cat = load_catalog(examples / "li_na_couple.json")
    rates = resolve_rates(cat, 300.0)
    code = {n: i for i, n in enumerate(cat.species, start=1)}
    reg = {n: i for i, n in enumerate(cat.region_names)}
    # The contract stores (E_a, nu) and recomputes rates; the source table's rate column does
    # not follow from its own barriers at 300 K (Li: 7.6e8 from 0.25 eV and 1.2e13 Hz, but
    # 2.1e9 printed), so the engine must use nu exp(-E_a / k_B T), never the printed rate.
    kt = K_B_EV_PER_K * 300.0
    rows = {("Li", "Li_host", "Li_host"): (0.25, 1.2e13),
            ("Na", "Na_host", "Na_host"): (0.30, 1e13),
            ("Li", "Li_host", "Na_host"): (0.75, 1e13), ("Na", "Na_host", "Li_host"): (0.80, 1e13)}
    for (sp, ri, rf), (barrier, nu) in rows.items():
        got = rates.rate_Hz[code[sp], reg[ri], reg[rf]]
        assert got == pytest.approx(nu * math.exp(-barrier / kt), rel=1e-12), (sp, ri, rf)
    li = rates.rate_Hz[code["Li"], reg["Li_host"], reg["Li_host"]]
    assert li == pytest.approx(7.57e8, rel=1e-3)
    assert any("rate column" in note for note in cat.notes)
    assert load_catalog(examples / "isotope_couple.json").rate_model == "table"


def test_write_is_atomic_and_round_trips(tmp_path: Path, examples: Path) -> None:
    cat = load_catalog(examples / "li_na_couple.json")
    target = tmp_path / "copy.json"
    write_catalog(cat, target)
    assert load_catalog(target) == cat
    assert [p.name for p in tmp_path.iterdir()] == ["copy.json"]


def _mutated(examples: Path, tmp_path: Path, change) -> Path:
    data = json.loads((examples / "li_na_couple.json").read_text())
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


def _event(data: dict, ident: str) -> dict:
    return next(e for e in data["events"] if e["id"] == ident)


BAD_CASES = {
    "missing_field": (lambda d: _event(d, "Li_into_Na_host").pop("prefactor_Hz"),
                      ["Li_into_Na_host", "prefactor_Hz"]),
    "negative_barrier": (lambda d: _event(d, "Na_hop_in_Na_host").update(barrier_eV=-0.1),
                         ["Na_hop_in_Na_host", "barrier_eV"]),
    "zero_prefactor": (lambda d: _event(d, "Li_hop_in_Li_host").update(prefactor_Hz=0),
                       ["Li_hop_in_Li_host", "prefactor_Hz"]),
    "detailed_balance": (lambda d: _event(d, "Li_from_Na_host").update(barrier_eV=0.6),
                         ["detailed balance", "Li_", "barrier_eV"]),
    "unknown_species": (lambda d: _event(d, "Na_hop_in_Li_host").update(species="K"),
                        ["Na_hop_in_Li_host", "species", "'K'"]),
    "missing_environment": (lambda d: d["events"].remove(_event(d, "Na_hop_in_Li_host")),
                            ["Na", "Li_host", "no event covers it"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_catalog_gives_one_line_exit_2_and_no_output(case, examples, tmp_path, capsys):
    change, needles = BAD_CASES[case]
    bad = _mutated(examples, tmp_path, change)
    out_dir = tmp_path / "run"
    code = main(["kmc", "run", str(bad), "--out", str(out_dir), "--steps", "10"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(bad) in err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not out_dir.exists() and not any(p.name.endswith(".partial") for p in tmp_path.iterdir())
    assert main(["catalog", "check", str(bad)]) == 2


def test_malformed_json(tmp_path, capsys):
    bad = tmp_path / "broken.json"
    bad.write_text('{"schema": "kmcflow.catalog", "schema_version": 1,')
    assert main(["catalog", "check", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "malformed JSON" in err and str(bad) in err


@pytest.mark.parametrize("args, needle", [
    (["--temperature", "-5"], "temperature"),
    (["--vacancy-fraction", "1.5"], "vacancy-fraction"),
    (["--cells", "2", "2", "2"], "cells"),
    (["--steps", "abc"], "--steps"),
])
def test_nonsense_cli_values(args, needle, examples, tmp_path, capsys):
    out_dir = tmp_path / "run"
    code = main(["kmc", "run", str(examples / "isotope_couple.json"), "--out", str(out_dir),
                 "--steps", "10", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err
    assert not out_dir.exists()


def test_check_prints_events_rates_and_problems(examples, capsys):
    assert main(["catalog", "check", str(examples / "li_na_couple.json"), "--temperature",
                 "300", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] and len(report["events"]) == 8
    li = next(e for e in report["events"] if e["id"] == "Li_hop_in_Li_host")
    assert li["rate_Hz"] == pytest.approx(1.2e13 * math.exp(-0.25 / (K_B_EV_PER_K * 300)))


def test_detailed_balance_uses_site_energies(examples, tmp_path):
    def shift(d):  # Li prefers its own host by 0.2 eV: the reverse barrier must drop by 0.2
        d["energy_model"]["site_energies_eV"]["Li"]["Na_host"] = 0.2
    bad = _mutated(examples, tmp_path, shift)
    with pytest.raises(CatalogError, match="detailed balance"):
        resolve_rates(load_catalog(bad), 300.0)

    def fixed(d):
        shift(d)
        _event(d, "Li_from_Na_host")["barrier_eV"] = 0.55
    rates = resolve_rates(load_catalog(_mutated(examples, tmp_path, fixed)), 300.0)
    assert np.isfinite(rates.rate_Hz).all()


def test_kra_model_is_balanced_by_construction() -> None:
    from kmcflow.kmc.validate import uniform_catalog

    cat = uniform_catalog("fcc", site_energies_eV={"A": {"A_host": 0.0, "B_host": 0.3},
                                                   "B": {"A_host": -0.1, "B_host": 0.0}})
    r = resolve_rates(cat, 500.0)
    kt = K_B_EV_PER_K * 500.0
    for s in (1, 2):
        d_e = r.site_energy_eV[s, 1] - r.site_energy_eV[s, 0]
        ratio = r.rate_Hz[s, 0, 1] / r.rate_Hz[s, 1, 0]
        assert ratio == pytest.approx(math.exp(-d_e / kt), rel=1e-12)
