"""``kmcflow catalog ...``: check a catalog and print its JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kmcflow.cli.console import out
from kmcflow.errors import KmcflowError

catalog_app = typer.Typer(no_args_is_help=True, help="Inspect and check event catalogs.")

CatalogArg = Annotated[Path, typer.Argument(help="Event catalog (JSON).", show_default=False)]


@catalog_app.command("check")
def catalog_check(
    file: CatalogArg,
    temperature: Annotated[float | None, typer.Option(
        "--temperature", "-T", help="Temperature in K for the rates (default: the catalog's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Print every event with barrier, prefactor and rate at T, and every problem found.

    Example: kmcflow catalog check examples/catalogs/li_na_couple.json --temperature 300
    """
    import math

    from kmcflow.errors import ConfigError
    from kmcflow.kmc.catalog import read_catalog
    from kmcflow.kmc.rates import resolve_rates

    if temperature is not None and not (temperature > 0 and math.isfinite(temperature)):
        raise ConfigError(f"--temperature must be a positive number of K, got {temperature}",
                          field="--temperature", hint="e.g. -T 600")
    catalog, problems = read_catalog(file)
    rows = []
    if catalog is not None and not any(p.severity == "error" for p in problems):
        temp = temperature if temperature is not None else catalog.conditions.temperature_K
        try:
            from kmcflow.kmc.engine import Simulation

            sim = Simulation(catalog, catalog.conditions.cells, temp,
                             catalog.conditions.vacancy_fraction, catalog_file=str(file))
            rates = sim.rates
        except KmcflowError as exc:
            from kmcflow.kmc.catalog import Problem

            problems.append(Problem(severity="error", field=exc.field or "(lattice)",
                                    message=exc.message, hint=exc.hint))
            rates = None
        code = {n: i for i, n in enumerate(catalog.species, start=1)}
        regions = {n: i for i, n in enumerate(catalog.region_names)}
        if rates is None:  # still show the listed events, resolved on their own region pairs
            listed = {(regions[e.initial_region], regions[e.final_region])
                      for e in catalog.events}
            try:
                rates = resolve_rates(catalog, temp, listed, file=str(file))
            except KmcflowError:
                rates = None
        if rates is not None:
            for ev in catalog.events:
                s, ri, rf = code.get(ev.species), regions.get(ev.initial_region), regions.get(
                    ev.final_region)
                if s is None or ri is None or rf is None:
                    continue
                rows.append({"id": ev.id, "species": ev.species, "initial_region":
                             ev.initial_region, "final_region": ev.final_region,
                             "barrier_eV": float(rates.barrier_eV[s, ri, rf]),
                             "prefactor_Hz": ev.prefactor_Hz,
                             "rate_Hz": float(rates.rate_Hz[s, ri, rf]),
                             "source": ev.provenance.source})
    n_err = sum(p.severity == "error" for p in problems)
    from kmcflow.kmc.acceleration import rate_span

    span = rate_span({r["id"]: r["rate_Hz"] for r in rows}) if rows else None
    if as_json:
        print(json.dumps({"file": str(file), "events": rows, "temperature_K": temperature,
                          "rate_span": span,
                          "problems": [p.model_dump() for p in problems], "valid": n_err == 0},
                         indent=2))
    else:
        if rows:
            title = f"{catalog.name}: {len(rows)} events"
            table = Table(title=title)
            for col in ("id", "species", "from", "to", "E_a (eV)", "nu (Hz)", "rate (Hz)"):
                table.add_column(col, justify="right" if "(" in col else "left")
            for r in rows:
                table.add_row(r["id"], r["species"], r["initial_region"], r["final_region"],
                              f"{r['barrier_eV']:.4f}", f"{r['prefactor_Hz']:.3e}",
                              f"{r['rate_Hz']:.3e}")
            out.print(table)
        if span and span["ratio"] is not None:
            out.print(f"rates span {span['ratio']:.2e}: fastest {span['fastest']} "
                      f"{span['fastest_Hz']:.3e} Hz, slowest {span['slowest']} "
                      f"{span['slowest_Hz']:.3e} Hz", highlight=False)
            if span["suggest_accelerate"]:
                out.print(f"[yellow]advice[/]: {span['advice']}", highlight=False)
        for p in problems:
            out.print(f"[{'red' if p.severity == 'error' else 'yellow'}]{p.severity}[/]: "
                      + p.one_line(str(file)), highlight=False)
        out.print(f"{file}: {'valid' if n_err == 0 else f'{n_err} error(s)'}, "
                  f"{len(problems) - n_err} warning(s)")
    if n_err:
        raise typer.Exit(2)


@catalog_app.command("schema")
def catalog_schema() -> None:
    """Print the JSON Schema of the catalog format (for editors and validators)."""
    from kmcflow.kmc.catalog import catalog_json_schema

    print(json.dumps(catalog_json_schema(), indent=2))
