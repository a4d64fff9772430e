"""``kmcflow learn`` on the demo's Cu|Ni couple with EMT: the loop converges.

The catalog is the one ``kmcflow demo`` assembles (EMT CI-NEB barriers of the Cu|Ni couple,
recorded in ``tests/data/cu_ni_emt_demo_catalog.json`` from a demo run); ``test_demo.py``
checks the demo itself. Acceptance of issue 17: D within 5 % between the last two
iterations.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmcflow.cli import main
from kmcflow.kmc.catalog import load_catalog

pytestmark = pytest.mark.slow

CATALOG = Path(__file__).parent / "data" / "cu_ni_emt_demo_catalog.json"


def test_learn_converges_on_the_demo_couple(tmp_path, capsys):
    out = tmp_path / "learn"
    args = ["learn", str(CATALOG), "--calculator", "emt", "--out", str(out),
            "--lattice-constants", "Cu=3.615,Ni=3.524", "--workers", "2", "--json"]
    code = main(args)
    record = json.loads(capsys.readouterr().out)
    its = record["iterations"]
    with capsys.disabled():
        for it in its:
            print(f"iteration {it['iteration']}: {it['n_hops']} hops, CV RMSE "
                  f"{it['fit']['cv_rmse_eV']:.4f} eV, D {it['D_A2_per_s']:.4g} +- "
                  f"{it['D_stderr_A2_per_s']:.2g} A^2/s, model share {it['model_share']:.2f}")
    assert code in (0, None) and record["converged"], record["why"]
    assert abs(its[-1]["D_A2_per_s"] - its[-2]["D_A2_per_s"]) <= 0.05 * its[-2]["D_A2_per_s"]
    assert its[-1]["model_share"] <= 0.5 and len(its) >= 2
    # every iteration computed new environments: those the previous runs met most
    assert all(it["new_keys"] for it in its[1:])
    assert its[-1]["n_hops"] == 24 + sum(len(it["new_keys"]) for it in its[1:])
    # the learned catalog is a valid schema-2 catalog whose table covers the computed hops
    learned = load_catalog(out / record["final_catalog"])
    assert learned.schema_version == 2
    assert len(learned.environments.table) >= its[-1]["n_hops"]
    # the environments change D by less than a factor 2 (the region catalog's barriers are
    # the dilute limit of the same EMT physics), and not at all by accident
    assert 0.5 < its[-1]["D_A2_per_s"] / its[0]["D_A2_per_s"] < 2.0
    # a rerun reads everything back: no new hops, no new kMC runs, the same record
    code = main(args)
    again = json.loads(capsys.readouterr().out)
    assert again["iterations"] == record["iterations"]
