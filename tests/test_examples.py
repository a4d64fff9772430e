"""The runnable documentation: ``examples/api_tour.py`` and every Python block of the README.

Each runs in a fresh interpreter in an empty folder that sees the repository's ``examples/``,
and asserts its own numbers (a failed assert is a failed test). The tour checks an EMT barrier
against a constrained midpoint relaxation, D against the exact f0 c_v w a^2 of an isotope
couple, and a published table (ASE's NEB tutorial) recomputed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)


def _run(code_or_file: list[str], cwd: Path, timeout_s: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, *code_or_file], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout_s)


def test_the_block_finder_finds_python_blocks_only():
    text = "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = 2\n```\n"
    assert _python_blocks(text) == ["x = 1\n", "y = 2\n"]


def test_every_python_block_of_the_readme_runs(tmp_path: Path):
    blocks = _python_blocks((ROOT / "README.md").read_text())
    assert blocks, "the README has no Python example"
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    for i, block in enumerate(blocks):
        proc = _run(["-c", block], tmp_path, 600)
        assert proc.returncode == 0, f"README Python block {i + 1} failed:\n{proc.stderr}"


@pytest.mark.slow
def test_the_api_tour_runs_and_checks_its_numbers(tmp_path: Path):
    figure = tmp_path / "sigma2.png"
    proc = _run([str(ROOT / "examples" / "api_tour.py"), str(figure)], tmp_path, 900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "exact f0 c_v w a^2" in proc.stdout and "recomputed" in proc.stdout
    assert figure.stat().st_size > 10_000
    assert not [p for p in tmp_path.iterdir() if p.name != "sigma2.png"]  # nothing else left
