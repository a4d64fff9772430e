"""Bad input to the workflow commands: one line, exit code 2, no traceback."""

from __future__ import annotations

import pytest
from ase.io import write

from kmcflow.cli import main


@pytest.fixture
def endpoint_files(tmp_path, cu_vacancy_endpoints):
    ini, fin = tmp_path / "ini.extxyz", tmp_path / "fin.extxyz"
    write(ini, cu_vacancy_endpoints[0])
    write(fin, cu_vacancy_endpoints[1])
    short = tmp_path / "short.extxyz"
    write(short, cu_vacancy_endpoints[1][:-1])
    u_config = tmp_path / "u.yaml"
    u_config.write_text("name: emt\nhubbard_U_eV: {Fe: 5.3}\n")
    return ini, fin, short, u_config


@pytest.mark.parametrize(("extra", "words"), [
    (["--calculator", "castep"], "unknown calculator"),
    (["--calculator", "U_CONFIG"], "U given for Fe"),
    (["--images", "0"], "1 to 64 intermediate images"),
    (["FINAL=SHORT"], "atoms"),
])
def test_barrier_bad_input(endpoint_files, tmp_path, capsys, extra, words):
    ini, fin, short, u_config = endpoint_files
    final = short if "FINAL=SHORT" in extra else fin
    extra = [x.replace("U_CONFIG", str(u_config)) for x in extra if x != "FINAL=SHORT"]
    code = main(["barrier", str(ini), str(final), "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert words in lines[0]
    assert not (tmp_path / "o").exists()
