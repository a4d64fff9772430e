"""The ``kmcflow`` command line: parse, call the library, print. Nothing else lives here.

Each stage has its module (``demo``, ``kmc``, ``catalog``, ``structures``, ``workflows``,
``hpc``, ``tables``); this package adds every sub-app and command to :data:`app` explicitly,
so importing a module never registers anything. ``console`` is the shared leaf (consoles and
the progress bar).

Errors a user can fix (:class:`kmcflow.errors.KmcflowError`, and bad command-line values)
print one line on stderr and exit with code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

import typer
from typer.exceptions import TyperException

from kmcflow.cli.calibrate import calibrate_u_command
from kmcflow.cli.catalog import catalog_app
from kmcflow.cli.demo import demo_command
from kmcflow.cli.environments import environments_app
from kmcflow.cli.hpc import (
    campaign_collect,
    campaign_prepare,
    campaign_resume,
    campaign_status,
    campaign_submit,
)
from kmcflow.cli.kmc import kmc_app
from kmcflow.cli.learn import learn_command
from kmcflow.cli.structures import bulk_app, hops_command, interface_app
from kmcflow.cli.tables import reproduce_command
from kmcflow.cli.workflows import barrier_command, campaign_run
from kmcflow.errors import KmcflowError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="kmcflow: from two bulk crystals to interface inter-diffusion by kMC.")
campaign_app = typer.Typer(no_args_is_help=True,
                           help="Barrier campaigns: hops -> CI-NEB + prefactors -> catalog.")
campaign_app.command("run")(campaign_run)
campaign_app.command("prepare")(campaign_prepare)
campaign_app.command("submit")(campaign_submit)
campaign_app.command("resume")(campaign_resume)
campaign_app.command("status")(campaign_status)
campaign_app.command("collect")(campaign_collect)

app.add_typer(catalog_app, name="catalog")
app.add_typer(kmc_app, name="kmc")
app.add_typer(bulk_app, name="bulk")
app.add_typer(interface_app, name="interface")
app.command("hops")(hops_command)
app.command("barrier")(barrier_command)
app.add_typer(campaign_app, name="campaign")
app.add_typer(environments_app, name="environments")
app.command("learn")(learn_command)
app.command("reproduce")(reproduce_command)
app.command("calibrate-u")(calibrate_u_command)
app.command("demo")(demo_command)

__all__ = ["app", "main"]


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


