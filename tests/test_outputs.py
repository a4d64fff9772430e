"""One rule for every writer (issue 13): kmcflow replaces only a folder it wrote itself, as the
same kind of output, and only when asked; it never writes under a file, into the current
folder, over its own inputs, or where it cannot write."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kmcflow.cli import main
from kmcflow.outputs import MARKER, output_kind

ROOT = Path(__file__).resolve().parents[1]
ISOTOPE = ROOT / "examples" / "catalogs" / "isotope_couple.json"
RUN = ["--steps", "2000", "--cells", "4", "4", "8", "--samples", "3", "--no-plots"]


def _error(capsys, args: list[str]) -> str:
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_a_folder_kmcflow_did_not_write_is_never_replaced(tmp_path, capsys):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "manuscript.tex").write_text("months of work")
    err = _error(capsys, ["kmc", "run", str(ISOTOPE), "--out", str(thesis), *RUN])
    assert "not a kmcflow output" in err and "--out" in err
    err = _error(capsys, ["kmc", "run", str(ISOTOPE), "--out", str(thesis), "--overwrite",
                          *RUN])
    assert "not a kmcflow output" in err
    assert (thesis / "manuscript.tex").read_text() == "months of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis"]  # nothing else written


def test_the_output_never_holds_the_input(tmp_path, capsys):
    folder = tmp_path / "inputs"
    folder.mkdir()
    catalog = folder / "catalog.json"
    shutil.copy(ISOTOPE, catalog)
    err = _error(capsys, ["kmc", "run", str(catalog), "--out", str(folder), "--overwrite",
                          *RUN])
    assert "holds the input" in err or "not a kmcflow output" in err
    assert catalog.read_bytes() == ISOTOPE.read_bytes()


def test_overwrite_replaces_only_an_earlier_run_and_atomically(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["kmc", "run", str(ISOTOPE), "--out", str(out), *RUN]) == 0
    assert output_kind(out) == "kmc_run" and (out / MARKER).is_file()
    first = json.loads((out / "summary.json").read_text())
    err = _error(capsys, ["kmc", "run", str(ISOTOPE), "--out", str(out), *RUN, "--seed", "9"])
    assert "--overwrite" in err
    assert json.loads((out / "summary.json").read_text()) == first
    assert main(["kmc", "run", str(ISOTOPE), "--out", str(out), *RUN, "--seed", "9",
                 "--overwrite"]) == 0
    second = json.loads((out / "summary.json").read_text())
    assert second["inputs"]["seed"] == 9 and first["inputs"]["seed"] != 9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no .old or .partial left
    # another kind of kmcflow output is not a run either
    err = _error(capsys, ["kmc", "arrhenius", str(ISOTOPE), "-T", "600", "-T", "700",
                          "--out", str(out), "--overwrite", "--steps", "2000", "--cells", "4",
                          "4", "8"])
    assert "kmc_run" in err


@pytest.mark.parametrize("where", ["a file", "under a file", "the current folder",
                                   "a parent of the current folder"])
def test_output_paths_that_cannot_be_folders(tmp_path, capsys, monkeypatch, where):
    afile = tmp_path / "notes.txt"
    afile.write_text("keep")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    target = {"a file": afile, "under a file": afile / "run", "the current folder": Path("."),
              "a parent of the current folder": tmp_path}[where]
    err = _error(capsys, ["kmc", "run", str(ISOTOPE), "--out", str(target), *RUN])
    assert "--out" in err
    assert afile.read_text() == "keep" and list(work.iterdir()) == []


def _can_drop_privileges() -> bool:
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def test_a_read_only_folder_is_refused_before_any_work(tmp_path):
    """Really read-only: as root the mode bits do not bind, so the command runs without
    CAP_DAC_OVERRIDE (setpriv); as another user they bind anyway."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    command = [sys.executable, "-m", "kmcflow.cli", "kmc", "run", str(ISOTOPE), "--out",
               str(locked / "run"), *RUN]
    if _can_drop_privileges():
        command = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
                   "--bounding-set=-dac_override,-dac_read_search", *command]
    elif os.geteuid() == 0:
        pytest.skip("running as root without setpriv: a read-only folder cannot be made")
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=300,
                              env={**os.environ, "MPLBACKEND": "Agg"})
        assert proc.returncode == 2, proc.stderr
        err = proc.stderr.strip()
        assert len(err.splitlines()) == 1 and "cannot write in" in err and str(locked) in err
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)
