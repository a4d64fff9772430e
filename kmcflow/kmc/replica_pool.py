"""Independent kMC runs of one catalog, several at a time, each in a process of its own."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_replica(catalog_file: str, run_dir: Path, settings) -> dict[str, Any]:
    """Run one replica (:class:`~kmcflow.kmc.runner.RunSettings`) into ``run_dir``."""
    from kmcflow.kmc.catalog import load_catalog
    from kmcflow.kmc.runner import run_to_directory

    return run_to_directory(load_catalog(catalog_file), settings, run_dir, catalog_file,
                            overwrite=True)


def run_replicas(catalog_file: str | os.PathLike[str], runs: list[tuple[Path, Any]], *,
                 workers: int = 1, progress: Callable[[int, int], None] | None = None
                 ) -> list[dict[str, Any]]:
    """The summary of every ``(run folder, RunSettings)``, in that order.

    A run already finished with the same settings and catalog file is read back, not rerun.
    The others run ``workers`` at a time, each in a spawned process (a forked copy of a
    process with BLAS or numba threads can hang); one that raises stops the rest at once.
    ``progress(n_done, n_runs)`` is called as runs end.
    """
    from kmcflow.kmc.study import finished_run

    catalog = str(catalog_file)
    summaries: dict[int, dict[str, Any]] = {}
    for i, (run_dir, settings) in enumerate(runs):
        done = finished_run(Path(run_dir), settings, catalog)
        if done is not None:
            summaries[i] = done
    todo = [i for i in range(len(runs)) if i not in summaries]

    def finished(i: int, summary: dict[str, Any]) -> None:
        summaries[i] = summary
        if progress:
            progress(len(summaries), len(runs))

    if workers <= 1 or len(todo) <= 1:
        for i in todo:
            finished(i, run_replica(catalog, Path(runs[i][0]), runs[i][1]))
        return [summaries[i] for i in range(len(runs))]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=min(workers, len(todo)),
                               mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(run_replica, catalog, Path(runs[i][0]), runs[i][1]): i
                   for i in todo}
        for future in as_completed(futures):
            finished(futures[future], future.result())
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return [summaries[i] for i in range(len(runs))]
