"""Files that exhaust a parser get the one-line error and exit 2, never a traceback.

Issue 12: deep nesting (RecursionError), an integer of 5000 digits (ValueError from int()),
bytes that are not UTF-8 and a YAML alias bomb ended in tracebacks (or a 4 GB allocation).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kmcflow.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEEP_JSON = "[" * 200_000 + "]" * 200_000
DEEP_YAML = "a: " + "[" * 200_000 + "]" * 200_000 + "\n"
HUGE_NUMBER = '{"schema": "kmcflow.catalog", "schema_version": 1' + "1" * 5000 + "}"
NOT_UTF8 = b"\xff\xfe\x00garbage\x80\x81"
ALIAS_BOMB = "\n".join(
    ["rows: []", "description: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"x{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 9)}]" for k in range(1, 10)]) + "\n"

JSON_BAD = {"deep": DEEP_JSON, "huge number": HUGE_NUMBER, "not utf-8": NOT_UTF8}
YAML_BAD = {"deep": DEEP_YAML, "not utf-8": NOT_UTF8, "alias bomb": ALIAS_BOMB}


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _one_line_exit_2(capsys, args: list[str], path: Path) -> None:
    capsys.readouterr()
    start = time.monotonic()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "Traceback" not in err, err
    assert time.monotonic() - start < 60


@pytest.mark.parametrize("kind", JSON_BAD)
def test_catalog_files_that_exhaust_the_json_parser(tmp_path, capsys, kind):
    path = _write(tmp_path / "catalog.json", JSON_BAD[kind])
    _one_line_exit_2(capsys, ["catalog", "check", str(path)], path)
    _one_line_exit_2(capsys, ["kmc", "run", str(path), "--out", str(tmp_path / "run")], path)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kind", YAML_BAD)
def test_tables_that_exhaust_the_yaml_parser(tmp_path, capsys, kind):
    path = _write(tmp_path / "table.yaml", YAML_BAD[kind])
    _one_line_exit_2(capsys, ["reproduce", str(path)], path)


@pytest.mark.parametrize("kind", YAML_BAD)
def test_campaign_and_profile_files_that_exhaust_the_yaml_parser(tmp_path, capsys, kind):
    pytest.importorskip("jobflow", reason="needs the workflows extra")
    path = _write(tmp_path / "campaign.yaml", YAML_BAD[kind])
    _one_line_exit_2(capsys, ["campaign", "run", str(path), "--out", str(tmp_path / "c")], path)
    profile = ROOT / "hpc_configs" / "local_slurm.yaml"
    _one_line_exit_2(capsys, ["campaign", "prepare", str(path), "--profile", str(profile),
                              "--out", str(tmp_path / "p")], path)
    _one_line_exit_2(capsys, ["campaign", "prepare", str(ROOT / "examples" / "campaigns" /
                                                         "cu_ni_emt.yaml"),
                              "--profile", str(path), "--out", str(tmp_path / "p")], path)


@pytest.mark.parametrize("kind", JSON_BAD)
def test_campaign_folders_and_runs_that_exhaust_the_json_parser(tmp_path, capsys, kind):
    pytest.importorskip("jobflow", reason="needs the workflows extra")
    folder = tmp_path / "camp"
    folder.mkdir()
    path = _write(folder / "plan.json", JSON_BAD[kind])
    _one_line_exit_2(capsys, ["campaign", "status", str(folder)], path)
    _one_line_exit_2(capsys, ["campaign", "collect", str(folder)], path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "observables.npz").write_bytes(b"")
    summary = _write(run / "summary.json", JSON_BAD[kind])
    _one_line_exit_2(capsys, ["kmc", "analyze", str(run)], summary)


@pytest.mark.parametrize("kind", JSON_BAD)
def test_structure_files_that_exhaust_the_json_parser(tmp_path, capsys, kind):
    pytest.importorskip("pymatgen", reason="needs the structures extra")
    path = _write(tmp_path / "film.json", JSON_BAD[kind])
    _one_line_exit_2(capsys, ["bulk", "show", str(path)], path)


def test_the_alias_bomb_is_measured_not_expanded():
    from kmcflow.errors import ConfigError
    from kmcflow.readers import parse_yaml

    start = time.monotonic()
    with pytest.raises(ConfigError, match="expands to more than"):
        parse_yaml(ALIAS_BOMB, file="bomb.yaml")
    assert time.monotonic() - start < 1.0
    shared = "a: &x [1, 2]\nb: *x\nc: *x\n"  # ordinary aliases stay fine
    assert parse_yaml(shared) == {"a": [1, 2], "b": [1, 2], "c": [1, 2]}
    assert json.loads(json.dumps(parse_yaml("x: 1"))) == {"x": 1}


@pytest.mark.parametrize("text", ['a: !!bool maybe', 'a: !!int ""', 'a: !!float ""',
                                  'a: !!timestamp "x"', "a: 2001-02-30"])
def test_values_the_safe_constructors_cannot_build_are_one_line_errors(text):
    """PyYAML's safe constructors raise KeyError, IndexError, AttributeError and ValueError
    for such values, not YAMLError: they escaped as tracebacks."""
    from kmcflow.errors import ConfigError
    from kmcflow.readers import parse_yaml

    with pytest.raises(ConfigError, match="malformed YAML") as refused:
        parse_yaml(text, file="bad.yaml")
    assert refused.value.one_line().startswith("bad.yaml: malformed YAML")
