"""``kmcflow learn`` on the demo's Cu|Ni couple with EMT: it converges.

The catalog is the one ``kmcflow demo`` assembles (EMT CI-NEB barriers of the Cu|Ni couple,
recorded in ``tests/data/cu_ni_emt_demo_catalog.json`` from a demo run); ``test_demo.py``
checks the demo itself.

Issue 17 asks for D within 5 % between the last two iterations. Measured on this couple at
1250 K: one run's D scatters by about 16 % (8x8x24 cells, 2e6 events, 6 s a run; 12x12x24
cells with 4e6 events scatter as much at twice the cost, 6x6x24 with 1e6 by 28 %), so
resolving a 5 % change takes about 30 replicas per iteration. The loop never declares
convergence on a change smaller than its own error: it doubles the replicas (here 8 up to 48)
until the change is resolved, or is beyond the tolerance by more than its error. With 16
replicas per iteration, D read 5.28, 4.37, 4.49, 4.35, 4.65 e6 A^2/s over five iterations
(+-0.2 each): the first ten table entries (pure Cu, a Ni neighbour, ...) lower D by 17 %,
after that it moves within the noise.
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
            "--lattice-constants", "Cu=3.615,Ni=3.524", "--workers", "2", "--cells", "8", "8",
            "24", "--steps", "2000000", "--replicas", "8", "--max-replicas", "48",
            "--max-iterations", "4", "--json"]
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
    # converged, and resolved: D changed by at most 5 %, measured to 5 %
    assert code == 0 and record["converged"], record["why"]
    assert abs(its[-1]["D_change"]) <= 0.05 and its[-1]["D_change_stderr"] <= 0.05
    assert its[-1]["replicas"] >= 16
    # the seed catalog rates nearly every hop by the model; the environments the runs met
    # most (pure Cu, a Ni neighbour, ...) then go into the table and take over
    assert its[0]["model_share"] > 0.8
    assert all(it["model_share"] < 0.5 for it in its[1:])
    assert all(it["new_keys"] for it in its[1:])
    assert its[-1]["n_hops"] == 24 + sum(len(it["new_keys"]) for it in its[1:])
    # the first table entries lower D by about 17 % (resolved, so the loop went on)
    assert its[1]["D_change"] < -0.05
    # the learned catalog is a valid schema-2 catalog whose table covers the computed hops
    learned = load_catalog(out / record["final_catalog"])
    assert learned.schema_version == 2
    assert len(learned.environments.table) >= its[-1]["n_hops"]
    # a rerun reads everything back: no new hops, no new kMC runs, the same record
    code_again = main(args)
    again = json.loads(capsys.readouterr().out)
    assert code_again == code and again["iterations"] == record["iterations"]
