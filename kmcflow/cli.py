"""The ``kmcflow`` command line: parse, call the library, print. Nothing else lives here.

Errors a user can fix (:class:`kmcflow.errors.KmcflowError`, and bad command-line values)
print one line on stderr and exit with code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from typer.exceptions import TyperException

from kmcflow import cli_hpc  # noqa: F401  (registers the scheduler commands of campaign)
from kmcflow.cli_demo import demo_command
from kmcflow.cli_kmc import kmc_app
from kmcflow.cli_structures import bulk_app, hops_command, interface_app
from kmcflow.cli_tables import reproduce_command
from kmcflow.cli_workflows import barrier_command, campaign_app
from kmcflow.errors import KmcflowError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="kmcflow: from two bulk crystals to interface inter-diffusion by kMC.")
catalog_app = typer.Typer(no_args_is_help=True, help="Inspect and check event catalogs.")
app.add_typer(catalog_app, name="catalog")
app.add_typer(kmc_app, name="kmc")
app.add_typer(bulk_app, name="bulk")
app.add_typer(interface_app, name="interface")
app.command("hops")(hops_command)
app.command("barrier")(barrier_command)
app.add_typer(campaign_app, name="campaign")
app.command("reproduce")(reproduce_command)
app.command("demo")(demo_command)

out = Console()
err = Console(stderr=True)

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


def _report_error(line: str, *, collective: bool = False) -> None:
    """Print a one-line error; under an MPI job of several ranks, end the whole job.

    A *collective* error (raised by every rank at the same point) is printed by rank 0 and
    every rank then returns normally, so the job ends with the exit code and nothing is lost.
    Otherwise rank 0 prints, gives the launcher a moment to forward the line (``MPI_Abort``
    tears down the output pipes) and aborts the job; another rank waits first (rank 0 usually
    ends the job when every rank saw the error), then prints with its rank and aborts, so an
    error on one rank never leaves the others waiting in a collective.
    """
    import time

    mpi = sys.modules.get("mpi4py.MPI")
    if not _in_mpi_job():
        import os

        launcher_rank = os.environ.get("PMI_RANK") or os.environ.get("OMPI_COMM_WORLD_RANK")
        if launcher_rank in (None, "0"):  # every rank failed the same way before MPI started
            print(line, file=sys.stderr)
        return
    rank = mpi.COMM_WORLD.Get_rank()
    if collective:
        if rank == 0:
            print(line, file=sys.stderr, flush=True)
        return
    if rank > 0:
        time.sleep(2.0)
        line = f"[rank {rank}] {line}"
    print(line, file=sys.stderr, flush=True)
    time.sleep(0.5)
    mpi.COMM_WORLD.Abort(2)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kmcflow`` console script; returns the exit code."""
    try:
        result = app(args=argv, standalone_mode=False)
    except KmcflowError as exc:
        _report_error(f"kmcflow: error: {exc.one_line()}", collective=exc.collective)
        return 2
    except typer.Exit as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except typer.Abort:
        print("kmcflow: aborted", file=sys.stderr)
        return 130
    except TyperException as exc:  # bad command-line usage (typer's vendored click errors)
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            return 0  # typer has printed the help
        msg = " ".join(exc.format_message().split()) if hasattr(exc, "format_message") else str(
            exc)
        print(f"kmcflow: error: {msg} (see --help)", file=sys.stderr)
        return 2
    except BaseException:
        if _in_mpi_job():  # a bug or an I/O failure on one rank: never leave the others waiting
            import traceback

            traceback.print_exc()
            _report_error("kmcflow: error: unexpected failure (traceback above)")
        raise
    return result if isinstance(result, int) else 0


def _in_mpi_job() -> bool:
    """Whether MPI is running with more than one rank in this process."""
    mpi = sys.modules.get("mpi4py.MPI")
    return bool(mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized()
                and mpi.COMM_WORLD.Get_size() > 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
