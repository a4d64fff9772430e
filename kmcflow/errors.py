"""One exception hierarchy for every user-facing error in kmcflow.

Every error carries where it happened (``file``), what is wrong (``field``) and how to fix it
(``hint``). The command line turns a :class:`KmcflowError` into one line on stderr and exit
code 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class KmcflowError(Exception):
    """Base class of the errors a user can fix by changing their input.

    Parameters
    ----------
    message
        What is wrong, in one sentence.
    file
        The file the problem was found in, if any.
    field
        The field (a dotted path such as ``events[3].barrier_eV``), if any.
    hint
        How to fix it, if there is something specific to say.

    Attributes
    ----------
    collective
        Set to ``True`` by MPI code that raises the error on every rank at the same point
        (after agreeing on it with a collective); the command line then ends the job with a
        normal exit instead of ``MPI_Abort``, so the message is never lost to the abort.

    """

    collective: bool = False

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = None if file is None else str(file)
        self.field = field
        self.hint = hint

    def one_line(self) -> str:
        """Return the error as a single line: ``file: field: message (hint)``."""
        parts = [p for p in (self.file, self.field) if p]
        text = ": ".join([*parts, self.message])
        if self.hint:
            text += f" (fix: {self.hint})"
        return " ".join(text.split())

    def __str__(self) -> str:
        return self.one_line()


class CatalogError(KmcflowError):
    """The event catalog is malformed, inconsistent or incomplete."""


class ConfigError(KmcflowError):
    """A run configuration, command-line value or settings file is invalid."""


class LatticeError(ConfigError):
    """A lattice definition or lattice size is invalid."""


class CheckpointError(KmcflowError):
    """A checkpoint cannot be read or does not belong to the run it is used for."""


class StructureError(KmcflowError):
    """A crystal structure or interface cannot be built as asked."""


class WorkflowError(KmcflowError):
    """A calculation or flow cannot be set up or has failed."""


class SchedulerError(KmcflowError):
    """A cluster profile or a scheduler interaction failed."""


class ParallelError(KmcflowError):
    """MPI is missing, or a parallel run cannot be laid out or has lost consistency."""
