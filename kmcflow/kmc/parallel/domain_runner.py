"""Run one decomposed lattice into an output folder (``kmcflow kmc run --decompose``).

The outputs are those of a serial run (``summary.json``, ``observables.npz``; so ``kmcflow kmc
analyze`` works on them) plus a ``parallel`` record in the summary: the process grid, the
window, the sweeps, the events of the whole run per wall second, and the time spent in ghost
exchanges. Rank 0 writes the shared files; every rank writes its own checkpoint.

Time. A decomposed run is driven by simulated time (``--time``): samples are taken every
``time / (samples - 1)`` s, each interval split into an integer number of sweeps whose window is
at most the requested one (default :meth:`DomainSimulation.window_default_s`).

Checkpoints are collective: generation ``k`` is the folder ``checkpoints/gen-k`` with one
``rank-NNNNN.npz`` per rank and ``recorder.npz`` (the samples so far); after every rank has
written, rank 0 points ``checkpoints/latest.json`` at it and removes the older generation. A
killed run restarts from the generation named there, with the same number of ranks and flags,
and continues bit for bit. A finished run removes its checkpoints.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from kmcflow.atomic_io import replace_directory, write_json, write_npz
from kmcflow.errors import CheckpointError, ParallelError
from kmcflow.kmc.catalog import Catalog
from kmcflow.kmc.parallel.domain import DomainSimulation
from kmcflow.kmc.runner import (
    ProgressCallback,
    RunFacts,
    RunSettings,
    SampleRecorder,
    finish_run,
    partial_path,
)
from kmcflow.outputs import check_output_folder, write_marker
from kmcflow.readers import NPZ_ERRORS

CHECKPOINT_FORMAT = "kmcflow.domain-checkpoint/1"


def _settings_json(settings: RunSettings, window_s: float, grid: tuple[int, int]) -> str:
    return json.dumps({**asdict(settings), "window_s": window_s, "grid": list(grid)},
                      sort_keys=True)


def make_domain_simulation(catalog: Catalog, settings: RunSettings, comm: Any,
                           grid: tuple[int, int] | None = None, debug_checks: bool = False,
                           catalog_file: str | None = None) -> DomainSimulation:
    """Set up (and so validate) this rank's part of a decomposed run (collective)."""
    if settings.time_s is None:
        raise ParallelError("a decomposed run is driven by simulated time, not by a number of "
                            "events", field="--steps", hint="give --time SECONDS instead")
    return DomainSimulation(catalog, settings.cells, settings.temperature_K,
                            settings.vacancy_fraction, comm, seed=settings.seed,
                            replica=settings.replica, grid=grid, debug_checks=debug_checks,
                            catalog_file=catalog_file)


def sweep_schedule(time_s: float, samples: int, window_max_s: float) -> tuple[int, float]:
    """Sweeps per sample interval and the window that divides the interval exactly."""
    interval = time_s / (samples - 1)
    if not window_max_s > 0:
        raise ParallelError(f"the window must be a positive time, got {window_max_s}",
                            field="--window")
    n = max(1, math.ceil(interval / window_max_s * (1.0 - 1e-12)))
    return n, interval / n


def run_decomposed_to_directory(
    sim: DomainSimulation,
    settings: RunSettings,
    out_dir: str | os.PathLike[str],
    catalog_file: str | None = None,
    window_s: float | None = None,
    resume: bool = False,
    checkpoint_interval_s: float = 300.0,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
) -> dict:
    """Run ``sim`` to ``settings.time_s`` and write the outputs; return the summary.

    Collective: every rank calls it and gets the summary back. ``out_dir`` follows
    :func:`kmcflow.outputs.check_output_folder` (``overwrite`` replaces an earlier run).
    """
    check_output_folder(out_dir, "kmc_run", overwrite=overwrite, reuse=resume,
                        inputs=[catalog_file] if catalog_file else ())
    comm, rank = sim.comm, sim.rank
    root = rank == 0
    window_max = window_s if window_s is not None else sim.window_default_s()
    per_sample, window = sweep_schedule(settings.time_s, settings.samples, window_max)
    grid = (sim.grid.px, sim.grid.py)
    fingerprint = sim.fingerprint(window)
    settings_json = _settings_json(settings, window, grid)
    work = partial_path(out_dir)
    ckdir = work / "checkpoints"
    rec = SampleRecorder(len(sim.catalog.species), sim.block.n_layers, settings.samples)
    cpu = 0.0
    generation = 0
    latest = ckdir / "latest.json"
    resumed = False
    if resume:
        info, problem = None, None
        if root and latest.exists():
            try:
                info = json.loads(latest.read_text(encoding="utf-8"))
                if not isinstance(info, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError, RecursionError) as exc:
                info, problem = None, f"cannot read {latest}: {exc}"
            else:
                if info.get("format") != CHECKPOINT_FORMAT or info.get("fingerprint") != \
                        fingerprint:
                    problem = (f"{latest} belongs to another catalog, set-up, window or number "
                               f"of ranks ({info.get('ranks')} ranks, grid {info.get('grid')})")
                elif info.get("settings") != settings_json:
                    problem = f"{latest} was written with other --time/--samples/--window"
                elif not isinstance(info.get("generation"), int) or info["generation"] < 0:
                    problem = f"{latest} names no checkpoint generation (damaged)"
        info, problem = comm.bcast((info, problem), root=0)
        if problem:
            raise CheckpointError(problem, file=str(latest),
                                  hint="resume with the flags and number of ranks of the killed "
                                  "run, or drop --resume to start afresh")
        if info is not None:
            gen_dir = ckdir / f"gen-{info['generation']:06d}"
            state, arrays, failure = None, None, None
            try:  # every rank reads; then all agree, so no rank is left waiting on a failure
                with np.load(gen_dir / f"rank-{rank:05d}.npz", allow_pickle=False) as data:
                    state = {k: data[k] for k in data.files}
                if root:
                    with np.load(gen_dir / "recorder.npz", allow_pickle=False) as data:
                        arrays = {k: data[k] for k in data.files}
            except NPZ_ERRORS as exc:
                failure = f"rank {rank}: {exc}"
            failures = [f for f in comm.allgather(failure) if f]
            if failures:
                error = CheckpointError(f"cannot read checkpoint generation {info['generation']}"
                                        f" ({'; '.join(failures)})", file=str(gen_dir),
                                        hint="drop --resume to start afresh")
                error.collective = True  # every rank raises it here, after the allgather
                raise error
            sim.restore_state(state)
            if root:
                rec.load(arrays)
                cpu = float(arrays["cpu_s"][0])
            generation = int(info["generation"])
            resumed = True
    if not resumed:
        if root:
            if work.exists():
                shutil.rmtree(work)
            work.mkdir(parents=True)
            write_marker(work, "kmc_run")
        comm.barrier()
        obs = sim.sample()
        if root:
            rec.record(obs, 0.0, 0)
    count = comm.bcast(rec.count if root else None, root=0)

    def save() -> None:
        nonlocal generation
        generation += 1
        gen_dir = ckdir / f"gen-{generation:06d}"
        gen_dir.mkdir(parents=True, exist_ok=True)
        write_npz(gen_dir / f"rank-{rank:05d}.npz", **sim.state_arrays())
        if root:
            write_npz(gen_dir / "recorder.npz", **rec.arrays(), cpu_s=np.array([cpu]))
        comm.barrier()
        if root:
            write_json(latest, {"format": CHECKPOINT_FORMAT, "generation": generation,
                                "ranks": sim.size, "grid": list(grid),
                                "fingerprint": fingerprint, "settings": settings_json,
                                "samples_done": rec.count, "time_s": rec.time[rec.count - 1]})
            old = ckdir / f"gen-{generation - 1:06d}"
            if old.exists():
                shutil.rmtree(old)

    wall0 = time.perf_counter()
    last_ckpt = time.monotonic()
    interval = settings.time_s / (settings.samples - 1)
    comm_before = sim.comm_time_s
    cpu_rank = 0.0
    try:
        while count < settings.samples:
            t0 = time.process_time()
            for _ in range(per_sample):
                sim.sweep(window)
            cpu_rank += time.process_time() - t0
            obs = sim.sample()
            n_events = sim.global_n_events()
            if root:
                rec.record(obs, count * interval, n_events)
                if progress is not None:
                    progress(rec.count / settings.samples,
                             f"{n_events:,} events, t = {count * interval:.3e} s")
            count += 1
            due = comm.bcast(time.monotonic() - last_ckpt > checkpoint_interval_s
                             if root else None, root=0)
            if due:
                cpu_total = comm.allreduce(cpu_rank)
                cpu, cpu_rank = cpu + cpu_total if root else cpu, 0.0
                save()
                last_ckpt = time.monotonic()
        cpu_total = comm.allreduce(cpu_rank)
        cpu = cpu + cpu_total if root else cpu
        save()
    except BaseException:
        if root and not latest.exists():
            shutil.rmtree(work, ignore_errors=True)
        raise
    wall = time.perf_counter() - wall0
    n_events = sim.global_n_events()
    counts = sim.global_event_counts()
    comm_times = comm.gather(sim.comm_time_s - comm_before, root=0)
    kernel_times = comm.gather(sim.kernel_time_s, root=0)
    bytes_site = comm.allreduce(sim.bytes_per_site() * sim.n_owned_sites) / sim.n_sites
    summary = None
    if root:
        facts = RunFacts(sim.catalog, sim.block.layer_z_A, sim.block.length_z_A,
                         sim.block.periodic_z, sim.block.definition.name, sim.n_sites,
                         int(sim.initial_counts[0]), sim.rates.regions, sim.rates.event_index,
                         counts, n_events, float(rec.time[-1]), bytes_site,
                         sim.couple.geometry(sim.block))
        parallel = {
            "mode": "domain decomposition (synchronous sublattice, Shim and Amar 2005)",
            "ranks": sim.size, "grid": list(grid), "sectors_per_rank": sim.n_sectors,
            "ghost_cells": sim.reach_cells, "window_s": window,
            "window_default_s": sim.window_default_s(), "sweeps": sim.sweeps_done,
            "wall_time_s_this_session": wall,
            "events_per_wall_second": n_events / wall if wall > 0 and not resumed else None,
            "comm_time_s_max_rank": max(comm_times), "comm_time_s_per_rank": comm_times,
            "kernel_time_s_per_rank": kernel_times,
            "ghost_bytes_per_window_rank0": sim.ghost_bytes_per_window,
            "species_counts": sim.initial_counts.tolist(),
            "resumed": resumed,
        }
        summary = finish_run(facts, settings, rec, work, catalog_file, cpu, False,
                             extra={"parallel": parallel}).summary  # marks it a kmc run
        shutil.rmtree(ckdir / f"gen-{generation:06d}", ignore_errors=True)
        latest.unlink(missing_ok=True)
        shutil.rmtree(ckdir, ignore_errors=True)
        out = Path(out_dir)
        replace_directory(work, out)
    return comm.bcast(summary, root=0)
