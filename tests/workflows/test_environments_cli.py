"""``kmcflow environments sample|compute|fit``: end to end with EMT, and bad input."""

from __future__ import annotations

import json

import pytest

from kmcflow.cli import main
from kmcflow.kmc.catalog import load_catalog


@pytest.fixture
def catalog_file(tmp_path, cu_ni_region_catalog):
    path = tmp_path / "cu_ni.json"
    path.write_text(json.dumps(cu_ni_region_catalog(3.55, {"Cu": 0.75, "Ni": 1.09})))
    return path


def one_line_error(capsys, code) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_sample_compute_fit_and_run(catalog_file, tmp_path, capsys):
    envs = tmp_path / "envs"
    code = main(["environments", "sample", str(catalog_file), "--composition", "Ni=0.25",
                 "--composition", "Ni=0.75", "--count", "3", "--seed", "4",
                 "--lattice-constants", "Cu=3.59,Ni=3.49", "--out", str(envs)])
    assert code in (0, None)
    manifest = json.loads((envs / "environments.json").read_text())
    assert len(manifest["hops"]) == 6
    assert (envs / manifest["hops"][0]["initial"]).is_file()
    code = main(["environments", "compute", str(envs), "--calculator", "emt"])
    assert code in (0, None)
    results = sorted((envs / "results").glob("hop_*.json"))
    assert len(results) == 6
    out_catalog = tmp_path / "learned.json"
    capsys.readouterr()
    code = main(["environments", "fit", str(catalog_file), str(envs), "--out",
                 str(out_catalog), "--json"])
    assert code in (0, None)
    report = json.loads(capsys.readouterr().out)
    assert report["fit"]["n_train"] == 6
    # a CI-NEB barrier of a Cu or Ni vacancy hop in EMT Cu-Ni lies near 0.7-1.2 eV, and a
    # model of 2 x 9 numbers fitted to 6 hops reproduces them closely
    assert report["fit"]["rmse_eV"] < 0.02
    catalog = load_catalog(out_catalog)
    assert catalog.schema_version == 2 and len(catalog.environments.table) == 12
    for entry in catalog.environments.table:
        assert 0.5 < entry.barrier_eV < 1.4
    # the engine runs the learned catalog and reports where its rates came from
    run = tmp_path / "run"
    code = main(["kmc", "run", str(out_catalog), "-T", "1200", "--cells", "6", "6", "12",
                 "--steps", "20000", "--out", str(run), "--no-plots"])
    assert code in (0, None)
    summary = json.loads((run / "summary.json").read_text())
    sources = summary["environments"]["fraction_by_source"]
    assert sources["region"] == 0 and sources["model"] > 0.5


@pytest.mark.parametrize(("args", "words"), [
    (["--out", "OUT"], "nothing to sample"),
    (["--composition", "Ni=2", "--out", "OUT"], "fractions must lie in 0-1"),
    (["--composition", "Ni", "--out", "OUT"], "bad --composition"),
    (["--composition", "Fe=0.5", "--out", "OUT"], "unknown species Fe"),
    (["--composition", "Ni=0.5", "--repeats", "3,3", "--out", "OUT"], "bad --repeats"),
    (["--from-run", "NOWHERE", "--out", "OUT"], "no summary.json"),
    (["--composition", "Ni=0.5", "--out", "EXISTS"], "exists"),
])
def test_sample_bad_input(catalog_file, tmp_path, capsys, args, words):
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "mine.txt").write_text("keep me")
    args = [a.replace("OUT", str(tmp_path / "out")).replace("EXISTS", str(tmp_path / "exists"))
            .replace("NOWHERE", str(tmp_path / "nowhere")) for a in args]
    line = one_line_error(capsys, main(["environments", "sample", str(catalog_file), *args]))
    assert words in line
    assert not (tmp_path / "out").exists()
    assert (tmp_path / "exists" / "mine.txt").read_text() == "keep me"


@pytest.mark.parametrize(("unlisted", "words"), [
    ([{"key": "Cu|c0|" + ",".join(["V"] + ["Cu"] * 17), "executed": 9}],
     "no environment to sample"),
    ([{"executed": 9}], "without a key text"),
])
def test_sample_from_a_run_with_nothing_to_compute(catalog_file, tmp_path, capsys, unlisted,
                                                     words):
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps({"environments": {"unlisted": unlisted}}))
    line = one_line_error(capsys, main(["environments", "sample", str(catalog_file),
                                        "--from-run", str(run), "--out", str(tmp_path / "o")]))
    assert words in line and not (tmp_path / "o").exists()


def test_compute_and_fit_bad_input(catalog_file, tmp_path, capsys):
    line = one_line_error(capsys, main(["environments", "compute", str(tmp_path)]))
    assert "not a folder of environment samples" in line
    bad = tmp_path / "bad.yaml"
    bad.write_text("neb: {n_images: 0}\n")
    envs = tmp_path / "envs"
    assert main(["environments", "sample", str(catalog_file), "--composition", "Ni=0.5",
                 "--count", "1", "--out", str(envs)]) in (0, None)
    capsys.readouterr()
    line = one_line_error(capsys, main(["environments", "compute", str(envs), "--settings",
                                        str(bad)]))
    assert "n_images" in line
    line = one_line_error(capsys, main(["environments", "fit", str(catalog_file), str(envs),
                                        "--out", str(tmp_path / "c.json")]))
    assert "no computed hops" in line and not (tmp_path / "c.json").exists()
