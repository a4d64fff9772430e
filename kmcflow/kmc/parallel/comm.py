"""The communicator: mpi4py's ``COMM_WORLD`` when mpi4py is installed, else a serial stand-in.

Replica runs work without MPI (every replica runs in this process); a decomposed run needs
real MPI and :func:`require_mpi` says how to get it in one line. The stand-in implements only
the collectives kmcflow uses (``bcast``, ``gather``, ``allgather``, ``allreduce``, ``barrier``)
with their single-rank meaning.
"""

from __future__ import annotations

import os
from typing import Any

from kmcflow.errors import ParallelError

INSTALL_HINT = ("install the MPI extra: pip install 'kmcflow[mpi]' (the mpich wheel and mpi4py; "
                "a system MPI works too), then run under mpiexec -n P")


class SerialComm:
    """A one-rank communicator with the collective methods of ``mpi4py.MPI.Comm``."""

    rank = 0
    size = 1
    is_mpi = False

    def Get_rank(self) -> int:
        """Return 0."""
        return 0

    def Get_size(self) -> int:
        """Return 1."""
        return 1

    def bcast(self, obj: Any, root: int = 0) -> Any:
        """Return ``obj``."""
        return obj

    def gather(self, obj: Any, root: int = 0) -> list[Any]:
        """Return ``[obj]``."""
        return [obj]

    def allgather(self, obj: Any) -> list[Any]:
        """Return ``[obj]``."""
        return [obj]

    def allreduce(self, obj: Any, op: Any = None) -> Any:
        """Return ``obj``."""
        return obj

    def barrier(self) -> None:
        """Do nothing."""

    def Abort(self, errorcode: int = 1) -> None:
        """Exit the process."""
        os._exit(errorcode)


def mpi_available() -> bool:
    """Whether mpi4py can be imported (it needs an MPI library: the mpich wheel or a system one)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def world(require: bool = False) -> Any:
    """Return ``MPI.COMM_WORLD``, or a :class:`SerialComm` when mpi4py is missing.

    ``KMCFLOW_NO_MPI=1`` forces the serial stand-in (used by the tests of the fallback).
    With ``require=True`` a missing mpi4py raises :class:`~kmcflow.errors.ParallelError`.
    """
    if os.environ.get("KMCFLOW_NO_MPI") == "1" or not mpi_available():
        if require:
            raise ParallelError("this option needs MPI, and mpi4py is not installed",
                                field="--decompose", hint=INSTALL_HINT)
        return SerialComm()
    try:
        from mpi4py import MPI
    except ImportError as exc:  # mpi4py present but no MPI library behind it
        if require:
            raise ParallelError(f"mpi4py cannot load an MPI library ({exc})",
                                field="--decompose", hint=INSTALL_HINT) from exc
        return SerialComm()
    comm = MPI.COMM_WORLD
    return comm


def is_root(comm: Any) -> bool:
    """Whether this is rank 0 (the rank that prints and writes shared files)."""
    return comm.Get_rank() == 0
