"""Run a jobflow flow locally and keep the cause of a failed job.

``jobflow.run_locally`` catches an exception raised inside a job and only logs it; with logging
off (as campaigns run it) the cause is gone and the hop reads "failed" with nothing to go on.
:func:`run_flow` runs with ``raise_immediately`` and turns the exception into a
:class:`JobFailure`: the job's name, the exception type, its message and the traceback. Every
failure record of a campaign (a hop's result, ``failure.json``, ``report.json``) carries it.
"""

from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class JobFailure:
    """Why a job of a flow raised: which job, what exception, where."""

    job: str | None
    exception_type: str
    message: str
    traceback: str

    @classmethod
    def of(cls, exc: BaseException) -> JobFailure:
        """The failure record of an exception raised while a flow ran."""
        from kmcflow.errors import KmcflowError

        message = exc.one_line() if isinstance(exc, KmcflowError) else str(exc)
        return cls(_failed_job_name(exc), type(exc).__name__, message,
                   "".join(traceback.format_exception(exc)))

    def summary(self) -> str:
        """One line: the job, the exception type and its message."""
        where = f"job '{self.job}' raised " if self.job else ""
        return f"{where}{self.exception_type}: {self.message}"

    def record(self) -> dict[str, Any]:
        """JSON-ready form (``job``, ``exception_type``, ``message``, ``traceback``)."""
        return asdict(self)


def _failed_job_name(exc: BaseException) -> str | None:
    """The name of the jobflow job whose ``run`` the exception passed through, if any."""
    from jobflow import Job

    name = None
    tb = exc.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if tb.tb_frame.f_code.co_name == "run" and isinstance(owner, Job):
            name = owner.name  # the innermost job wins
        tb = tb.tb_next
    return name


def run_flow(flow, store, root_dir: str | Path) -> JobFailure | None:
    """Run ``flow`` with ``jobflow.run_locally`` in ``root_dir``; the failure, or None.

    The first job that raises stops the flow (its children could not run anyway). Signals
    (``BaseException`` that is not an ``Exception``, such as the batch task's
    ``SchedulerSignal``) pass through.
    """
    from jobflow import run_locally

    try:
        run_locally(flow, store=store, create_folders=True, root_dir=str(root_dir), log=False,
                    raise_immediately=True)
    except Exception as exc:
        return JobFailure.of(exc)
    return None


class FlowFailed(Exception):
    """A flow stopped on a failed job; carries the :class:`JobFailure`."""

    def __init__(self, failure: JobFailure):
        super().__init__(failure.summary())
        self.failure = failure
