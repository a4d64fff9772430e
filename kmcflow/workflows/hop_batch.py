"""Compute a batch of hops, each as a jobflow hop flow with a file-backed store of its own.

The machinery under every local run of hops (a campaign's, and the environment hops of
:mod:`kmcflow.workflows.environments`): :func:`compute_hops` runs each
:class:`PlannedHop` (a record and two endpoint structures) with ``run_locally``, one store per
hop (``OUT/store/hop_NNN``: maggma ``JSONStore`` files, no database server), so a kill during a
store write costs at most that hop. A hop whose result is in its store (same endpoints,
calculator and settings: the ``cache_key``) is not run again; one whose stored result has a
failure reason is retried. Every result is also exported as plain JSON
(``OUT/results/hop_NNN.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from kmcflow.atomic_io import write_json
from kmcflow.workflows.settings import NebSettings, PrefactorSettings, RelaxSettings


class HopSettings(Protocol):
    """What a hop flow needs besides the calculator: the three calculations' settings."""

    neb: NebSettings
    relax: RelaxSettings
    prefactor: PrefactorSettings


@dataclass
class PlannedHop:
    """One hop to compute: its record and its endpoint structures (pymatgen)."""

    record: dict[str, Any]
    initial: Any
    final: Any
    origin: str  # "bulk", "solute", "interface" (campaigns), "environment"


def hop_flow_maker(settings: HopSettings, config):
    """The hop flow maker these settings define (one place for local and HPC runs)."""
    from kmcflow.workflows.flows import HopFlowMaker
    from kmcflow.workflows.makers import NebMaker, PrefactorMaker, RelaxMaker

    calc = config.model_dump(mode="json")
    return HopFlowMaker(
        calculator=calc,
        relax_maker=RelaxMaker(calculator_config=calc, settings=settings.relax),
        neb_maker=NebMaker(calculator_config=calc, settings=settings.neb),
        prefactor_maker=PrefactorMaker(calculator_config=calc, settings=settings.prefactor))


def campaign_store(out: Path, *, read_only: bool = False):
    """The jobflow store of a campaign folder: JSON files under ``out/store`` (no server).

    ``read_only``: only to look (the folder must exist); a writable JSON store rewrites its
    files when it connects.
    """
    from jobflow import JobStore
    from maggma.stores import JSONStore

    folder = (out / "store").resolve()
    docs, data = folder / "docs.json", folder / "data.json"
    if not read_only:
        folder.mkdir(parents=True, exist_ok=True)
        for f in (docs, data):
            if not f.exists():
                f.write_text("[]")
    return JobStore(JSONStore(str(docs), read_only=read_only),
                    additional_stores={"data": JSONStore(str(data), read_only=read_only)})


def find_done(store, key: str, *, include_failed: bool = False) -> dict[str, Any] | None:
    """The newest stored result of a hop with this cache key (with its ``job_id``).

    A result with a failure reason counts as not done (a rerun retries the hop), unless
    ``include_failed``. The stored :class:`~kmcflow.workflows.results.HopResult` (or the
    plain dict an older kmcflow stored) is validated and returned in its JSON form, the form
    the campaign's ``results/`` files and the assembly take.
    """
    from kmcflow.workflows.results import HopResult

    store.connect()
    doc = store.query_one({"metadata.cache_key": key}, properties=["uuid"],
                          sort={"completed_at": -1})
    if not doc:
        return None
    stored = HopResult.model_validate(store.get_output(doc["uuid"], load=True))
    if stored.failure_reason and not include_failed:
        return None
    return stored.model_copy(update={"job_id": doc["uuid"]}).model_dump(mode="json")


def stored_hop(settings: HopSettings, config, k: int, hop: PlannedHop, out: Path
               ) -> dict[str, Any] | None:
    """The good result of hop ``k`` already in its store, else None (nothing is computed)."""
    from kmcflow.workflows.flows import cache_key

    folder = out / "store" / f"hop_{k:03d}"
    if not all((folder / "store" / name).is_file() for name in ("docs.json", "data.json")):
        return None
    maker = hop_flow_maker(settings, config)
    key = cache_key(hop.record, hop.initial, hop.final, maker.settings())
    result = find_done(campaign_store(folder, read_only=True), key)
    return None if result is None else dict(result)


def compute_stored_hop(settings: HopSettings, config, k: int, hop: PlannedHop, out: Path
                       ) -> tuple[dict[str, Any], bool]:
    """The result of hop ``k`` (computed, or reused from its store) and whether it was computed.

    A hop whose flow raised is reported as failed with why; a worker process runs this too.
    """
    import warnings

    from kmcflow.workflows.execution import JobFailure, run_flow
    from kmcflow.workflows.flows import cache_key

    maker = hop_flow_maker(settings, config)
    key = cache_key(hop.record, hop.initial, hop.final, maker.settings())
    # one store per hop: the JSON store rewrites its file on every update, so a kill
    # mid-write can cost at most this hop
    store = campaign_store(out / "store" / f"hop_{k:03d}")
    result = find_done(store, key)
    if result is not None:
        return dict(result), False
    flow = maker.make(hop.initial, hop.final, hop.record)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="cd is deprecated", category=FutureWarning)
        failed = run_flow(flow, store, out / "jobs")
    # a flow that raised has no result of its own (the store may hold an earlier run's failed
    # one: it must not stand in for this one)
    result = None if failed else find_done(store, key, include_failed=True)
    if result is None:  # a job raised: report the hop as failed with why, go on
        cause = failed or JobFailure(None, "RuntimeError",
                                     "the hop flow stopped before its result job", "")
        result = {"hop": hop.record, "event_key": hop.record["event_key"],
                  "failure_reason": "job_error", "failure_message": cause.summary(),
                  "exception": cause.record()}
    return dict(result), True


def compute_hops(settings: HopSettings, config, chosen: list[tuple[int, PlannedHop]], out: Path,
                 progress: Callable[[int, int, PlannedHop, str], None] | None = None,
                 workers: int = 1) -> list[tuple[dict[str, Any], bool]]:
    """Every chosen ``(index, hop)``'s result in that order, ``workers`` at a time.

    Each is ``(result, computed)``: a hop already in its store (``out/store/hop_NNN``) is
    reused. ``workers`` > 1 runs each hop in a spawned process of its own (give each one core,
    one BLAS/torch thread); a worker that raises or dies cancels the queued hops.
    Every result is also written to ``out/results/hop_NNN.json``.
    """
    def report(n_done: int, hop: PlannedHop, result: dict[str, Any]) -> None:
        if progress:
            progress(n_done, len(chosen), hop, "done" if not result.get("failure_reason")
                     else f"failed: {result.get('failure_reason')}")

    outcomes: dict[int, tuple[dict[str, Any], bool]] = {}
    if workers <= 1 or len(chosen) <= 1:
        for n, (k, hop) in enumerate(chosen):
            if progress:
                progress(n, len(chosen), hop, "running")
            outcomes[k] = compute_stored_hop(settings, config, k, hop, out)
            outcomes[k][0]["job_index"] = k
            export_result(out / "results", k, outcomes[k][0])
            report(n + 1, hop, outcomes[k][0])
        return [outcomes[k] for k, _ in chosen]
    # hops already in their stores are read here: a pool of spawned processes costs seconds
    # to start, for nothing when a rerun finds every hop done
    todo = []
    for k, hop in chosen:
        stored = stored_hop(settings, config, k, hop, out)
        if stored is None:
            todo.append((k, hop))
            continue
        outcomes[k] = (stored, False)
        outcomes[k][0]["job_index"] = k
        export_result(out / "results", k, stored)
        report(len(outcomes), hop, stored)
    if not todo:
        return [outcomes[k] for k, _ in chosen]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: a forked copy of a process with torch or BLAS threads can hang
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        futures = {pool.submit(compute_stored_hop, settings, config, k, hop, out): (k, hop)
                   for k, hop in todo}
        # progress counts finished hops only: several run at once, in no fixed order
        for future in as_completed(futures):
            k, hop = futures[future]
            outcomes[k] = future.result()
            outcomes[k][0]["job_index"] = k
            export_result(out / "results", k, outcomes[k][0])
            report(len(outcomes), hop, outcomes[k][0])
    except BaseException:
        # a worker that raised (or died: BrokenProcessPool): stop at once, the hops written so
        # far stay in their stores for the rerun
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return [outcomes[k] for k, _ in chosen]


def export_result(folder: Path, index: int, result: dict[str, Any]) -> Path:
    """Write one hop result as plain JSON (``hop_NNN.json``)."""
    from kmcflow.workflows.output import json_safe

    path = folder / f"hop_{index:03d}.json"
    write_json(path, json_safe(result))
    return path
