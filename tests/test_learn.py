"""``kmcflow learn`` on the demo's Cu|Ni couple with EMT.

The catalog is the one ``kmcflow demo`` assembles (EMT CI-NEB barriers of the Cu|Ni couple,
recorded in ``tests/data/cu_ni_emt_demo_catalog.json`` from a demo run); ``test_demo.py``
checks the demo itself.

Issue 17 asks for D within 5 % between the last two iterations. Measured on this couple
(12x12x24 cells, 4e6 events a run, 1250 K): one replica's D scatters by about 12 %, and the
paired difference of two iterations by about 17 % per replica pair, so resolving a 5 %
change takes about 16 replicas per iteration (5 minutes of kMC per comparison here). The loop
therefore never declares convergence on a change smaller than its own error: it doubles the
replicas until the change is resolved (``--max-replicas``). This CI test bounds the work (2
replicas, at most 4, 3 iterations) and checks what that budget measures: the table takes over
from the model, D stays within the noise of the seed catalog's, and convergence is claimed
only with a resolved change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmcflow.cli import main
from kmcflow.kmc.catalog import load_catalog

pytestmark = pytest.mark.slow

CATALOG = Path(__file__).parent / "data" / "cu_ni_emt_demo_catalog.json"


def test_learn_on_the_demo_couple(tmp_path, capsys):
    out = tmp_path / "learn"
    args = ["learn", str(CATALOG), "--calculator", "emt", "--out", str(out),
            "--lattice-constants", "Cu=3.615,Ni=3.524", "--workers", "2", "--replicas", "2",
            "--max-replicas", "4", "--max-iterations", "3", "--json"]
    code = main(args)
    record = json.loads(capsys.readouterr().out)
    its = record["iterations"]
    with capsys.disabled():
        for it in its:
            change = it.get("D_change")
            print(f"iteration {it['iteration']}: {it['n_hops']} hops, CV RMSE "
                  f"{it['fit']['cv_rmse_eV']:.4f} eV, D {it['D_A2_per_s']:.4g} +- "
                  f"{it['D_stderr_A2_per_s']:.2g} A^2/s ({it['replicas']} replicas), model "
                  f"share {it['model_share']:.2f}" + ("" if change is None else
                                                      f", change {100 * change:+.1f} +- "
                                                      f"{100 * it['D_change_stderr']:.1f} %"))
        print(record["why"])
    # the exit code says whether it converged, and a claim of convergence is a resolved one
    assert code == (0 if record["converged"] else 1)
    if record["converged"]:
        assert abs(its[-1]["D_change"]) <= 0.05 and its[-1]["D_change_stderr"] <= 0.05
    else:
        assert "not converged after 3 iterations" in record["why"]
    # the seed catalog rates nearly every hop by the model; the environments the runs met
    # most (pure Cu, a Ni neighbour, ...) then go into the table and take over
    assert its[0]["model_share"] > 0.8
    assert all(it["model_share"] < 0.5 for it in its[1:])
    assert all(it["new_keys"] for it in its[1:])
    assert its[-1]["n_hops"] == 24 + sum(len(it["new_keys"]) for it in its[1:])
    # a sanity bound, not a precision claim: the learned catalogs' D stay within 40 % of
    # each other (the replicas alone scatter by about 12 %)
    assert all(abs(it["D_change"]) < 0.4 for it in its[1:])
    # the learned catalog is a valid schema-2 catalog whose table covers the computed hops
    learned = load_catalog(out / record["final_catalog"])
    assert learned.schema_version == 2
    assert len(learned.environments.table) >= its[-1]["n_hops"]
    # a rerun reads everything back: no new hops, no new kMC runs, the same record
    code_again = main(args)
    again = json.loads(capsys.readouterr().out)
    assert code_again == code and again["iterations"] == record["iterations"]
