"""``kmcflow reproduce TABLE``: check a published barrier table, recompute it, export it.

Thin: parse, call :mod:`kmcflow.tables`, print.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kmcflow.cli.console import err, out
from kmcflow.tables.check import DEFAULT_TOLERANCE_FACTOR, DEFAULT_ZERO_RATE_PER_S

DEFAULT_BARRIER_TOLERANCE_EV = 0.05



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
    from kmcflow.errors import ConfigError, KmcflowError
    from kmcflow.tables.check import check_pairs, check_row
    from kmcflow.tables.export import export_catalog
    from kmcflow.tables.table import read_table

    data = read_table(table)
    if export is not None:
        from kmcflow.outputs import check_output_file

        source = template or data.catalog_template
        check_output_file(export, overwrite=overwrite, flag="--export",
                          inputs=[table, *([source] if source else [])])
    tol = tolerance if tolerance is not None else (data.tolerance_factor
                                                    or DEFAULT_TOLERANCE_FACTOR)
    if not (tol > 1 and math.isfinite(tol)):
        raise ConfigError("the tolerance factor must exceed 1", field="--tolerance")
    if not (zero_rate > 0 and math.isfinite(zero_rate)):
        raise ConfigError(f"--zero-rate must be a positive rate in s^-1, got {zero_rate}",
                          field="--zero-rate", hint="e.g. --zero-rate 1e-10")
    if not (barrier_tolerance >= 0 and math.isfinite(barrier_tolerance)):
        raise ConfigError("the barrier tolerance must be a non-negative number of eV",
                          field="--barrier-tolerance", hint="e.g. --barrier-tolerance 0.05")
    records = [check_row(r, tol, zero_rate) for r in data.rows]
    for rec, row in zip(records, data.rows, strict=True):
        if row.recipe is None:
            continue
        if not recompute:
            rec["recompute_note"] = "recipe not run (--no-recompute)"
            continue
        from kmcflow.tables.recipes import recompute_barrier

        with (err.status(f"recomputing '{row.event}' ({row.recipe.get('name', 'files')})"),
              tempfile.TemporaryDirectory(prefix="kmcflow-recipe-") as work):
            try:
                rec.update(recompute_barrier(row.recipe, data.path.parent, Path(work)))
            except KmcflowError as exc:  # a bad recipe or a failed band: noted, not fatal
                rec["recompute_note"] = exc.one_line()
                continue
        if "computed_barrier_eV" in rec:  # a failed band has none (recompute_failure says why)
            diff = rec["computed_barrier_eV"] - rec["published_barrier_eV"]
            rec["barrier_difference_eV"] = diff
            rec["barrier_agrees"] = bool(abs(diff) <= barrier_tolerance)
    for rec in records:
        rec["disagrees"] = rec["consistent"] is False or rec.get("barrier_agrees") is False
    pairs = check_pairs(data, tol)
    for pair in pairs:
        for rec in records:
            if rec["event"] == pair["reverse"]:
                rec["detailed_balance"] = pair
    exported = export_catalog(data, export, template) if export else None
    if as_json:
        print(json.dumps(records, indent=2))
        if exported:
            err.print(f"exported {len(exported['exported'])} rows to {export}")
        return
    _print(data, records, pairs, tol, barrier_tolerance, exported, export)


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
