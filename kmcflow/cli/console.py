"""The consoles and progress bar every ``kmcflow`` command prints with (a leaf: no CLI imports)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

out = Console()
"""Results, on stdout."""
err = Console(stderr=True)
"""Progress, warnings and errors, on stderr."""


def progress_bar() -> Any:
    """A transient rich progress bar on stderr with a description, percent, time and info."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                    TextColumn("{task.percentage:>5.1f}%"), TimeElapsedColumn(),
                    TextColumn("{task.fields[info]}"), console=err, transient=True)


@contextmanager
def root_progress(root: bool, description: str) -> Iterator[Callable[[float, str], None] | None]:
    """A progress callback ``(fraction, info)`` drawing a bar on MPI rank 0; None elsewhere."""
    if not root:
        yield None
        return
    with progress_bar() as bar:
        task = bar.add_task(description, total=1.0, info="")
        yield lambda fraction, info: bar.update(task, completed=fraction, info=info)


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def one_thread_each() -> None:
    """CHGNet's torch and numpy's BLAS on one thread each, unless the environment chose.

    Measured on the 2-core machine with another process busy on one core: a 63-atom CHGNet
    force call took 1.1 s on one torch thread and 9.3 s on two, and the BFGS step of a
    143-atom endpoint relaxation (numpy's eigh of a 429 x 429 matrix) 0.9 s on two BLAS threads
    against milliseconds on one: threads that wait on each other for a busy core. The BLAS
    variables take effect only before numpy is imported (on the command line, not when
    ``main`` is called inside a process that has numpy already).
    """
    if any(os.environ.get(name) for name in THREAD_VARIABLES):
        return  # the user chose
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    try:
        import torch
    except ImportError:  # the ml extra is missing: the campaign says so, naming the extra
        return
    torch.set_num_threads(1)
