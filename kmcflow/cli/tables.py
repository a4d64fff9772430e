"""``kmcflow reproduce TABLE``: check a published barrier table, recompute it, export it.

Thin: parse, call :mod:`kmcflow.tables`, print.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kmcflow.cli.console import err, out
from kmcflow.tables.check import DEFAULT_TOLERANCE_FACTOR, DEFAULT_ZERO_RATE_PER_S
from kmcflow.tables.reproduce import DEFAULT_BARRIER_TOLERANCE_EV


def _g(value, fmt: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "inf"
    return format(value, fmt)


def reproduce_command(
    table: Annotated[Path, typer.Argument(help="Table file (.csv or .yaml); see "
                                          "examples/tables/.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON record per row.")
                       ] = False,
    tolerance: Annotated[float | None, typer.Option(
        "--tolerance", help="Factor within which published and recomputed rates agree "
        f"(default: the table's, else {DEFAULT_TOLERANCE_FACTOR}).", show_default=False)] = None,
    zero_rate: Annotated[float, typer.Option(
        "--zero-rate", help="A published '~0' agrees when the recomputed rate is below this "
        "(s^-1).")] = DEFAULT_ZERO_RATE_PER_S,
    barrier_tolerance: Annotated[float, typer.Option(
        "--barrier-tolerance", help="A recomputed barrier that differs from the published "
        "one by more than this (eV) makes the row disagree.")] = DEFAULT_BARRIER_TOLERANCE_EV,
    recompute: Annotated[bool, typer.Option(
        "--recompute/--no-recompute", help="Run the rows' recipes (CI-NEB) where a "
        "calculator is available.")] = True,
    export: Annotated[Path | None, typer.Option(
        "--export", help="Write the table as a kMC catalog (onto the table's "
        "catalog_template or --template).", show_default=False)] = None,
    template: Annotated[Path | None, typer.Option(
        "--template", help="Catalog whose events the rows replace on --export.",
        show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing "
                                            "--export file.")] = False,
) -> None:
    """Check a published barrier table: rates against barriers, detailed balance, recompute.

    Example: kmcflow reproduce examples/tables/source_study_interface.yaml
    """
    from kmcflow.tables.export import export_catalog
    from kmcflow.tables.reproduce import reproduce_table
    from kmcflow.tables.table import read_table

    data = read_table(table)
    if export is not None:
        from kmcflow.outputs import check_output_file

        source = template or data.catalog_template
        check_output_file(export, overwrite=overwrite, flag="--export",
                          inputs=[table, *([source] if source else [])])
    status = err.status("checking the table")
    with status:
        result = reproduce_table(
            data, tolerance_factor=tolerance, zero_rate_per_s=zero_rate,
            barrier_tolerance_eV=barrier_tolerance, recompute=recompute,
            on_recompute=lambda event: status.update(f"recomputing '{event}'"))
    exported = export_catalog(data, export, template) if export else None
    if as_json:
        print(json.dumps(result.rows, indent=2))
        if exported:
            err.print(f"exported {len(exported['exported'])} rows to {export}")
        return
    _print(data, result.rows, result.pairs, result.tolerance_factor, barrier_tolerance, exported,
           export)


def _print(data, records, pairs, tol, barrier_tol, exported, export) -> None:
    out.print(f"[bold]{data.name}[/bold]" + (f": {data.source}" if data.source else ""))
    view = Table("event", "E_a (eV)", "nu (Hz)", "T (K)", "published k", "nu exp(-E/kT)",
                 "ratio", "agrees", "explaining T (K)")
    for r in records:
        agrees = {True: "[green]yes[/green]", False: "[red]NO[/red]", None: "-"}[r["consistent"]]
        published = "~0" if r["published_rate_is_zero"] else _g(r["published_rate"])
        view.add_row(r["event"], _g(r["published_barrier_eV"], ".3f"), _g(r["prefactor_Hz"]),
                     _g(r["temperature_K"], "g"), published, _g(r["computed_rate"]),
                     _g(r["ratio"]), agrees, _g(r["explaining_temperature_K"], ".1f"))
    out.print(view)
    bad = [r for r in records if r["disagrees"]]
    out.print(f"{len(bad)} of {len(records)} rows disagree (a rate beyond a factor {tol:g}, or "
              f"a recomputed barrier beyond {barrier_tol:g} eV)")
    for r in bad:
        if r["consistent"] is False:
            out.print(f"  {r['event']}: {r['note']}")
        if r.get("barrier_agrees") is False:
            out.print(f"  {r['event']}: recomputed barrier differs by "
                      f"{r['barrier_difference_eV']:+.4f} eV")
    for r in records:
        if "computed_barrier_eV" in r:
            out.print(f"recomputed '{r['event']}' with {r['calculator']}: "
                      f"{r['computed_barrier_eV']:.4f} eV (published "
                      f"{r['published_barrier_eV']:.4f} eV, difference "
                      f"{r['barrier_difference_eV']:+.4f} eV: "
                      f"{'agrees' if r['barrier_agrees'] else 'DISAGREES'})")
        elif r.get("recompute_failure"):
            out.print(f"[red]could not recompute[/red] '{r['event']}': {r['recompute_note']}")
        elif r.get("recompute_note"):
            out.print(f"not recomputed '{r['event']}': {r['recompute_note']}")
    if pairs:
        for p in pairs:
            state = "ok" if p["consistent"] else "VIOLATED: " + "; ".join(p["problems"])
            out.print(f"detailed balance {p['forward']} / {p['reverse']}: {state}")
    else:
        out.print("detailed balance: the table declares no forward/reverse pairs (reverse_of)")
    if exported:
        out.print(f"wrote {export}: {len(exported['exported'])} rows onto "
                  f"{Path(exported['template']).name}")
        for s in exported["not_exported"]:
            out.print(f"  not exported {s['event']}: {s['reason']}")
