"""The documentation site builds with ``mkdocs build --strict`` and its generated pages are whole.

The reference pages are generated from the code at build time (``docs/hooks.py``), so these
checks read what to expect from the code too: the commands from the Typer app's click group,
the fields from the catalog's pydantic model, the names from ``kmcflow.__all__``.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mkdocs", reason="the docs extra (part of dev) builds the documentation")
pytest.importorskip("mkdocstrings", reason="the docs extra (part of dev) builds the documentation")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def _page(site: Path, page: str) -> str:
    path = site / page / "index.html"
    assert path.is_file(), f"{page} was not built"
    return path.read_text(encoding="utf-8")


def _text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def _top_level_commands() -> list[str]:
    import typer.main

    from kmcflow.cli import app

    group = typer.main.get_command(app)
    ctx = group.context_class(group, info_name="kmcflow")
    names = [n for n in group.list_commands(ctx) if not group.get_command(ctx, n).hidden]
    assert len(names) >= 5
    return names


def test_cli_page_lists_every_top_level_command(site: Path) -> None:
    page = _page(site, "reference/cli")
    for name in _top_level_commands():
        assert f'id="kmcflow-{name}"' in page, f"kmcflow {name} has no section"
        assert f"Usage: kmcflow {name}" in _text(page), f"kmcflow {name} has no usage line"


def test_cli_page_lists_options_with_defaults(site: Path) -> None:
    text = _text(_page(site, "reference/cli"))
    # one option of a nested command, its default and help, read from the code
    import typer.main

    from kmcflow.cli import app

    group = typer.main.get_command(app)
    ctx = group.context_class(group, info_name="kmcflow")
    kmc = group.get_command(ctx, "kmc")
    run = kmc.get_command(kmc.context_class(kmc, info_name="kmc", parent=ctx), "run")
    options = [p for p in run.params if p.param_type_name == "option"]
    assert options
    flat = " ".join(text.split())
    for option in options:
        assert option.opts[-1] in text
        if option.help:
            assert " ".join(option.help.split()) in flat


def test_schema_page_lists_every_catalog_field(site: Path) -> None:
    from kmcflow.kmc.catalog import Catalog

    page = _page(site, "reference/catalog-schema")
    start = page.index('id="catalog"')
    table = page[start:page.index("<h3", start)]
    for name, field in Catalog.model_fields.items():
        key = field.alias or name
        assert f"<code>{key}</code>" in table, f"catalog field {key} missing from the table"
    assert "The event catalog" in page  # the prose above the generated part
    assert '"$defs"' in _text(page)  # the raw JSON schema


def test_api_page_includes_the_tour_and_every_public_name(site: Path) -> None:
    import kmcflow

    text = _text(_page(site, "api"))
    tour = (ROOT / "examples" / "api_tour.py").read_text(encoding="utf-8")
    for line in tour.splitlines():
        assert line.strip() in text, f"api.md does not show examples/api_tour.py line {line!r}"
    names = _text(_page(site, "reference/python"))
    for name in kmcflow.__all__:
        assert f"kmcflow.{name}" in text
        assert f"kmcflow.{name}" in names
