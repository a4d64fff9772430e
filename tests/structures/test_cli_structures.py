"""The structure commands end to end: JSON records, files on disk, one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from kmcflow.cli import main

MILLER = ["--film-miller", "1", "0", "0", "--substrate-miller", "1", "0", "0"]


def run(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_matches_json_records(capsys):
    code, out, err = run(capsys, "interface", "matches", "MgO", "NiO", *MILLER, "--json")
    assert code == 0, err
    records = json.loads(out)
    assert records[0]["strain"] == pytest.approx((4.1771 - 4.2117) / 4.2117, abs=1e-5)
    for key in ("strain", "von_mises_strain", "area_A2", "n_atoms"):
        assert all(key in r for r in records)
    assert [r["index"] for r in records] == list(range(len(records)))
    assert records[0]["n_atoms"] == 24


def test_build_then_hops_writes_files(tmp_path: Path, capsys):
    stem = tmp_path / "cu_ni"
    code, out, err = run(capsys, "interface", "build", "Cu", "Ni", *MILLER, "--out", str(stem))
    assert code == 0, err
    for ext in (".json", ".extxyz", ".png"):
        assert (tmp_path / f"cu_ni{ext}").stat().st_size > 0
    code, out, err = run(capsys, "hops", str(tmp_path / "cu_ni.json"), "--species", "Cu,Ni",
                         "--out", str(tmp_path / "hops"), "--json")
    assert code == 0, err
    records = json.loads(out)
    required = {"species", "length_A", "multiplicity", "initial_host", "final_host", "band",
                "event_key", "initial_file", "final_file"}
    assert all(required <= set(r) for r in records)
    assert {r["species"] for r in records} == {"Cu", "Ni"}
    assert all(Path(r["initial_file"]).is_file() and Path(r["final_file"]).is_file()
               for r in records)
    cross = [r for r in records if r["initial_host"] != r["final_host"]]
    assert cross and all(r["band"] == 0 for r in cross)
    # the table form prints every hop and the count of directed hops
    code, out, err = run(capsys, "hops", str(tmp_path / "cu_ni.extxyz"), "--species", "Cu")
    assert code == 0, err
    assert "distinct hops of" in out


def test_bulk_hops_table_and_lattice(capsys):
    code, out, err = run(capsys, "hops", "Fe", "--species", "Fe", "--json")
    assert code == 0, err
    (record,) = json.loads(out)
    assert record["length_A"] == pytest.approx(2.8665 * math.sqrt(3) / 2, abs=1e-5)
    assert record["band"] is None and record["initial_file"] is None
    code, out, err = run(capsys, "interface", "lattice", "NiO", "--species", "Ni")
    assert code == 0, err
    assert json.loads(out) == {"lattice": {"preset": "fcc", "a_A": 4.1771}}
    code, out, err = run(capsys, "bulk", "list", "--json")
    assert {"Cu", "LiFePO4"} <= {r["name"] for r in json.loads(out)}


@pytest.mark.parametrize(("args", "words"), [
    (["hops", "nowhere.cif", "--species", "Li"], "nowhere.cif"),
    (["hops", "LiCoO2", "--species", "Na"], "no 'Na' sites"),
    (["interface", "matches", "Cu", "Ni", "--film-miller", "0", "0", "0",
      "--substrate-miller", "1", "0", "0"], "0 0 0"),
    (["interface", "matches", "Cu", "Ni", *MILLER, "--max-strain", "0.0001"], "--max-strain"),
    (["interface", "matches", "Cu", "Ni", *MILLER, "--max-strain", "-1"], "max_strain"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, args, words):
    code, _out, err = run(capsys, *args)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err
    assert words in lines[0]


def test_unreadable_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "broken.vasp"
    bad.write_text("not a poscar\n")
    code, _out, err = run(capsys, "hops", str(bad), "--species", "Li")
    assert code == 2 and "broken.vasp" in err and len(err.strip().splitlines()) == 1


def test_overwrite_keeps_the_old_folder_when_the_new_run_fails(tmp_path, capsys):
    out_dir = tmp_path / "hcu"
    code, _, err = run(capsys, "hops", "Cu", "--species", "Cu", "--out", str(out_dir))
    assert code == 0, err
    before = sorted(p.name for p in out_dir.iterdir())
    code, _, err = run(capsys, "hops", "Cu", "--species", "Cu", "--out", str(out_dir),
                       "--overwrite", "--max-atoms", "10")
    assert code == 2 and "max_atoms" in err
    assert sorted(p.name for p in out_dir.iterdir()) == before
    code, _, err = run(capsys, "hops", "Cu", "--species", "Cu", "--out", str(out_dir),
                       "--overwrite", "--min-image-distance", "12")
    assert code == 0, err
    record = json.loads((out_dir / "hops.json").read_text())["hops"][0]
    assert record["vacancy_image_distance_A"] >= 12


def test_a_nested_module_in_a_structure_file_is_refused_without_importing_it(tmp_path):
    """pymatgen decodes nested {"@module", "@class"} dicts (site properties) by importing the
    module: the allow-list checked the top level only, so a file could run code on reading.
    The canary module writes a file when imported; the reader must refuse before that."""
    import subprocess
    import sys

    from kmcflow.structures.bulk import bundled_structure

    canary = tmp_path / "kmcflow_canary_module.py"
    marker = tmp_path / "IMPORTED"
    canary.write_text(f"open({str(marker)!r}, 'w').write('ran')\nclass Boom:\n"
                      "    @classmethod\n    def from_dict(cls, d):\n        return cls()\n")
    data = bundled_structure("Cu").as_dict()
    data["sites"][0]["properties"] = {"note": {"@module": "kmcflow_canary_module",
                                               "@class": "Boom"}}
    hostile = tmp_path / "hostile.json"
    hostile.write_text(json.dumps(data))
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])])}
    probe = ("import sys\nfrom kmcflow.cli import main\n"
             f"code = main(['bulk', 'show', {str(hostile)!r}])\n"
             "print('imported' if 'kmcflow_canary_module' in sys.modules else 'not imported')\n"
             "sys.exit(code)\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "not imported" in proc.stdout and not marker.exists()
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and str(hostile) in err
    assert "kmcflow_canary_module" in err and "sites[0].properties.note" in err
    # the same file without the nested class reads fine
    del data["sites"][0]["properties"]["note"]
    hostile.write_text(json.dumps(data))
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
