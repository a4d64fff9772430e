"""A fresh ``bash scripts/setup.sh`` prints a few progress lines, not pages of packaging warnings.

pip (>= 25) shows every warning the build backend raises, so the project's setuptools build must
raise none: no deprecated metadata (a ``license`` table instead of an SPDX string), no
"Editable installation ... Please be careful with folders in your working directory" notice.
The build hooks run offline on a copy of the project, in a subprocess (setuptools patches
``distutils`` and ``sys.argv``), against the setuptools in this environment (scripts/setup.sh
keeps it current, as pip's isolated build would use).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP_SH = ROOT / "scripts" / "setup.sh"

# Runs the PEP 517/660 hooks pip calls for ``pip install -e .`` and records every warning.
HOOKS = r"""
import contextlib, io, json, sys, warnings
from setuptools import build_meta
from setuptools.warnings import SetuptoolsWarning

out = sys.argv[1]
sys.argv = sys.argv[:1]
log = io.StringIO()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        build_meta.get_requires_for_build_editable()
        build_meta.prepare_metadata_for_build_editable(out)
        wheel = build_meta.build_editable(out)
        build_meta.build_sdist(out)
found = [
    {"category": w.category.__name__, "message": str(w.message), "file": w.filename}
    for w in caught
    if issubclass(w.category, SetuptoolsWarning)
    or issubclass(w.category, DeprecationWarning)
    or "setuptools" in w.filename or "distutils" in w.filename
]
print(json.dumps({"wheel": wheel, "warnings": found}))
"""


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> dict:
    pytest.importorskip("setuptools", minversion="77")
    project = tmp_path_factory.mktemp("project")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, project / name)
    shutil.copytree(
        ROOT / "kmcflow", project / "kmcflow", ignore=shutil.ignore_patterns("__pycache__")
    )
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-c", HOOKS, str(out)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["dist"] = out
    return result


def test_setuptools_build_raises_no_warnings(build: dict) -> None:
    assert build["warnings"] == [], "\n\n".join(
        f"{w['category']} ({w['file']}):\n{w['message']}" for w in build["warnings"]
    )


def test_editable_install_is_a_plain_pth_to_the_checkout(build: dict) -> None:
    import zipfile

    names = zipfile.ZipFile(build["dist"] / build["wheel"]).namelist()
    assert any(n.startswith("__editable__.kmcflow") and n.endswith(".pth") for n in names)
    # the meta-path-finder strategy is the one that prints the "be careful with folders" screen
    assert not any(n.endswith("_finder.py") for n in names), names


def test_build_system_metadata() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    requires = meta["build-system"]["requires"]
    assert "wheel" not in requires  # setuptools >= 70.1 builds wheels itself
    assert any(r.replace(" ", "").startswith("setuptools>=") for r in requires)
    # an SPDX expression, not the deprecated {text = ...} / {file = ...} table
    assert isinstance(meta["project"]["license"], str)
    assert meta["tool"]["setuptools"]["package-dir"] == {"": "."}


def test_setup_sh_is_quiet_but_fails_loudly() -> None:
    text = SETUP_SH.read_text()
    lines = [line.strip() for line in text.splitlines()]
    strict = lines.index("set -euo pipefail")
    first_command = next(
        i for i, line in enumerate(lines) if line and not line.startswith(("#", "set "))
    )
    assert strict < first_command, "set -euo pipefail must come before any command"
    assert "--quiet" in text and "PIP_DISABLE_PIP_VERSION_CHECK=1" in text
    # silencing notices must not swallow errors or pip's exit status
    for hiding in ("2>/dev/null", "&>/dev/null", "|| true", "-qq", "set +e", "set +o pipefail"):
        assert hiding not in text, hiding
