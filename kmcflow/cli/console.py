"""The consoles and progress bar every ``kmcflow`` command prints with (a leaf: no CLI imports)."""

from __future__ import annotations

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
