"""``learn`` refuses what cannot run, and a folder of other settings, before any hop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kmcflow.errors import ConfigError
from kmcflow.learn import LearnLoop, LearnSettings

pytest.importorskip("jobflow", reason="needs the workflows extra")

CATALOG = Path(__file__).parent / "data" / "cu_ni_emt_demo_catalog.json"


@pytest.mark.parametrize(("change", "field"), [
    ({"cells": (0, 0, 0)}, "cells"), ({"steps": 0}, "steps"),
    ({"vacancy_fraction": 1.5}, "vacancy"), ({"seed_count": 0}, "seed_count"),
    ({"replicas": 1}, "replicas"), ({"max_iterations": 1}, "max_iterations"),
    ({"d_tolerance": 0.0}, "d_tolerance"), ({"hop": {"neb": {"n_images": 0}}}, "hop"),
    ({"wait": False}, "profile"), ({"poll_s": 5.0}, "profile"),
    ({"profile": "x.yaml", "poll_s": float("inf")}, "poll_s"),
    ({"profile": "x.yaml", "max_submissions": 0}, "max_submissions"),
])
def test_bad_settings_are_refused_up_front(tmp_path, change, field):
    with pytest.raises(ConfigError) as info:
        LearnLoop(CATALOG, tmp_path / "learn", LearnSettings(**change))
    assert field in str(info.value)
    assert not (tmp_path / "learn").exists()


def test_a_folder_continues_only_with_its_own_settings_and_catalog(tmp_path):
    out = tmp_path / "learn"
    first = LearnSettings(lattice_constants_A={"Cu": 3.615, "Ni": 3.524})
    loop = LearnLoop(CATALOG, out, first)
    out.mkdir()
    from kmcflow.outputs import write_marker

    write_marker(out, "learn")
    (out / "learn.json").write_text(json.dumps({
        "catalog_sha256": loop.catalog_sha256, "settings": json.loads(json.dumps(
            first.shaping()))}))
    # what decides when to stop may change; what shaped the results may not
    LearnLoop(CATALOG, out, LearnSettings(lattice_constants_A={"Cu": 3.615, "Ni": 3.524},
                                          max_iterations=9, workers=2))
    with pytest.raises(ConfigError, match="lattice_constants_A"):
        LearnLoop(CATALOG, out, LearnSettings(lattice_constants_A={"Cu": 3.6, "Ni": 3.5}))
    with pytest.raises(ConfigError, match="temperature_K"):
        LearnLoop(CATALOG, out, LearnSettings(lattice_constants_A={"Cu": 3.615, "Ni": 3.524},
                                              temperature_K=1100.0))
    other = tmp_path / "other.json"
    data = json.loads(CATALOG.read_text())
    data["name"] = "another"
    other.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="another catalog"):
        LearnLoop(other, out, first)
