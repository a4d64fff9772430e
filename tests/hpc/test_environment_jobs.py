"""Environment hops and ``kmcflow learn`` on a real single-node SLURM (EMT Cu-Ni hops).

The cluster is started by ``bash scripts/start_slurm.sh`` (``.ci/run`` does it and sets
``KMCFLOW_REQUIRE_SLURM=1``, which turns a missing SLURM into a failure instead of a skip).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("jobflow", reason="needs the workflows extra")
pytest.importorskip("qtoolkit", reason="needs the hpc extra")

from kmcflow.cli import main
from kmcflow.errors import ConfigError
from kmcflow.hpc.sample_jobs import sample_hop_states, write_lost_result
from kmcflow.hpc.scheduler import SlurmScheduler, slurm_available
from kmcflow.kmc.catalog import load_catalog
from kmcflow.kmc.environment_rates import catalog_lattice
from kmcflow.learn import LearnSettings, LearnWaiting, run_learn
from kmcflow.structures.environment_sampling import random_alloy_hops
from kmcflow.workflows.environments import (
    EnvironmentHopSettings,
    compute_sample_folder,
    read_folder_results,
    samples_from_results,
    write_sample_folder,
)

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "hpc_configs" / "local_slurm.yaml"
CATALOG = ROOT / "tests" / "data" / "cu_ni_emt_demo_catalog.json"
CONSTANTS = {"Cu": 3.615, "Ni": 3.524}


@pytest.fixture(scope="module")
def slurm():
    if not slurm_available():
        if os.environ.get("KMCFLOW_REQUIRE_SLURM") == "1":
            pytest.fail("KMCFLOW_REQUIRE_SLURM=1 but no SLURM answers: "
                        "bash scripts/start_slurm.sh")
        pytest.skip("no SLURM here (start one: bash scripts/start_slurm.sh)")
    return SlurmScheduler()


def _sample_folder(folder: Path, count: int, seed: int = 3) -> Path:
    catalog = load_catalog(CATALOG)
    hops = random_alloy_hops(catalog_lattice(catalog), catalog.species, {"Ni": 0.5}, count,
                             seed=seed, lattice_constants_A=CONSTANTS)
    return write_sample_folder(folder, hops, catalog_name=catalog.name,
                               species=catalog.species,
                               lattice=catalog.lattice.model_dump(mode="json",
                                                                  exclude_none=True),
                               settings={"test": True})


def _settle(folder: Path, timeout_s: float = 600) -> list[dict]:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        states = sample_hop_states(folder)
        if not any(s["state"] in ("queued", "running") for s in states):
            return states
        time.sleep(2)
    raise AssertionError(f"the hops did not end in {timeout_s} s: {states}")


def test_submitted_hops_equal_local_ones_and_a_killed_hop_reads_as_lost(tmp_path, slurm,
                                                                        capsys):
    cluster = _sample_folder(tmp_path / "cluster", 2)
    local = tmp_path / "local"
    shutil.copytree(cluster, local)
    assert main(["environments", "submit", str(cluster), "--profile", str(PROFILE)]) == 0
    states = _settle(cluster)
    assert [s["state"] for s in states] == ["done", "done"]
    compute_sample_folder(local, EnvironmentHopSettings())
    for on_cluster, here in zip(read_folder_results(cluster), read_folder_results(local),
                                strict=True):
        assert on_cluster["converged"] and here["converged"]
        assert on_cluster["kra_eV"] == pytest.approx(here["kra_eV"], abs=1e-9)
        assert on_cluster["prefactor_Hz"] == pytest.approx(here["prefactor_Hz"], rel=1e-9)
    capsys.readouterr()
    assert main(["environments", "status", str(cluster), "--json"]) == 0
    assert [s["state"] for s in json.loads(capsys.readouterr().out)] == ["done", "done"]
    # nothing left to submit; other settings on the same folder are refused
    assert main(["environments", "submit", str(cluster), "--profile", str(PROFILE)]) == 0
    assert "nothing to submit" in capsys.readouterr().out
    other = tmp_path / "other.yaml"
    other.write_text("neb:\n  n_images: 5\n")
    assert main(["environments", "submit", str(cluster), "--profile", str(PROFILE),
                 "--settings", str(other)]) == 2
    assert "other settings (neb)" in capsys.readouterr().err

    # a submitted folder is not computed here
    with pytest.raises(ConfigError, match="run on a cluster"):
        compute_sample_folder(cluster, EnvironmentHopSettings())

    # a resubmitted hop whose job never starts (its environment cannot be activated) reads
    # as lost, not as the result of the run before it, which is moved aside
    broken = tmp_path / "broken.yaml"
    broken.write_text(PROFILE.read_text().replace(".venv/bin/activate", "/nonexistent/activate"))
    assert main(["environments", "submit", str(cluster), "--profile", str(broken),
                 "--only", "0"]) == 0
    assert [s["state"] for s in _settle(cluster, 120)] == ["lost", "done"]
    assert (cluster / "results" / "previous" / "hop_000.json").is_file()

    # a hop cancelled before it wrote a result: lost, and a fit leaves it out with why; a hop
    # still queued or running is not submitted again
    fresh = _sample_folder(tmp_path / "fresh", 1, seed=11)
    assert main(["environments", "submit", str(fresh), "--profile", str(PROFILE)]) == 0
    capsys.readouterr()
    assert main(["environments", "submit", str(fresh), "--profile", str(PROFILE),
                 "--only", "0"]) == 2
    assert "still queued or running" in capsys.readouterr().err
    task = sample_hop_states(fresh)[0]["task"]
    subprocess.run(["scancel", task.split("_")[0]], check=True)
    state = _settle(fresh, 60)[0]
    assert state["state"] == "lost" and state["submissions"] == 1, state
    write_lost_result(fresh, 0, state["why"])
    left = samples_from_results(read_folder_results(fresh), "test")
    assert not left.samples and left.left_out[0]["why"] == "failed: killed"

    # a folder computed here is not submitted: the settings of its results are unknown
    assert main(["environments", "submit", str(local), "--profile", str(PROFILE)]) == 2
    assert "computed here" in capsys.readouterr().err


def test_learn_submits_its_hops_and_continues_after_a_no_wait_stop(tmp_path, slurm):
    out = tmp_path / "learn"
    settings = LearnSettings(
        cells=(8, 8, 24), steps=2_000_000, replicas=2, max_replicas=2, seed_fractions=[0.5],
        seed_count=5, top=2, max_iterations=2, lattice_constants_A=CONSTANTS,
        profile=str(PROFILE), wait=False, poll_s=2)
    with pytest.raises(LearnWaiting) as waiting:
        run_learn(CATALOG, out, settings)
    assert waiting.value.iteration == 0 and waiting.value.total == 5
    seeds = out / "hops" / "iter_000"
    assert len(json.loads((seeds / "submissions.json").read_text())) == 1
    # the rerun submits nothing twice: it waits for the same jobs, then goes on
    settings.wait = True
    record = run_learn(CATALOG, out, settings)
    assert len(json.loads((seeds / "submissions.json").read_text())) == 1
    assert [it["n_hops"] for it in record["iterations"]] == [5, 7]
    assert record["iterations"][1]["new_keys"]
    assert all(s["state"] == "done" for s in sample_hop_states(out / "hops" / "iter_001"))
