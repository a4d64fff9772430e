"""Sample-folder task records without a scheduler: what a task writes, what a state reads."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("jobflow", reason="needs the workflows extra")

from kmcflow.hpc.sample_jobs import HOP_SETTINGS, main, sample_hop_states
from kmcflow.kmc.catalog import catalog_from_data
from kmcflow.kmc.environment_rates import catalog_lattice
from kmcflow.structures.environment_sampling import random_alloy_hops
from kmcflow.workflows.environments import (
    read_folder_results,
    samples_from_results,
    write_sample_folder,
)


@pytest.fixture
def folder(tmp_path, cu_ni_region_catalog):
    catalog = catalog_from_data(cu_ni_region_catalog(3.55, {"Cu": 0.75, "Ni": 1.09}))
    hops = random_alloy_hops(catalog_lattice(catalog), catalog.species, {"Ni": 0.5}, 2, seed=2)
    return write_sample_folder(tmp_path / "envs", hops, catalog_name=catalog.name,
                               species=catalog.species, lattice={"preset": "fcc"},
                               settings={})


def test_a_result_that_is_not_a_record_reads_as_failed_not_a_traceback(folder):
    (folder / "results").mkdir()
    (folder / "results" / "hop_000.json").write_text("[]")
    (folder / "results" / "hop_001.json").write_text("{not json")
    states = sample_hop_states(folder)
    assert [s["state"] for s in states] == ["failed", "failed"]
    assert all(s["why"].startswith("unreadable") for s in states)


def test_a_task_that_cannot_build_its_calculator_writes_a_failure(folder, capsys):
    (folder / HOP_SETTINGS).write_text(json.dumps({"calculator": {"name": "no_such_code"}}))
    assert main([str(folder), "1"]) == 0
    assert "failed: task_error" in capsys.readouterr().out
    result = json.loads((folder / "results" / "hop_001.json").read_text())
    assert result["failure_reason"] == "task_error" and "no_such_code" in \
        result["failure_message"]
    left = samples_from_results(read_folder_results(folder), "test").left_out
    assert left == [{"key": result["hop"]["environment_key"], "job_index": 1,
                     "why": "failed: task_error"}]
    assert main([str(folder), "7"]) == 2 and main([str(folder), "\u00b2"]) == 2
