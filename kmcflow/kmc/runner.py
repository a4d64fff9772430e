"""Run a couple from a catalog into an output folder (``kmcflow kmc run``), resumably.

The folder is built as ``.NAME.partial`` beside the final path and renamed when the run is
complete, so a half-finished run never looks finished. While it runs, a checkpoint (state plus
the samples taken so far) is written every ``checkpoint_interval_s`` seconds; after a kill,
running the same command with ``resume=True`` continues from it bit for bit.

Outputs: ``summary.json`` (inputs, events, simulated time, speed, fitted interdiffusion
coefficient with units), ``observables.npz`` (``time`` s, ``z`` Angstrom, ``species``,
``concentration`` samples x species x layers, ``vacancy_concentration``, ``width_10_90``
Angstrom, ``width_erfc`` Angstrom, ``msd`` samples x species Angstrom^2, ``n_events``),
``checkpoint.npz`` (the final state) and optionally ``snapshots.extxyz``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kmcflow.atomic_io import replace_directory
from kmcflow.errors import CheckpointError, ConfigError
from kmcflow.kmc import kernels
from kmcflow.kmc.analysis import CoupleGeometry
from kmcflow.kmc.catalog import Catalog
from kmcflow.kmc.engine import Simulation
from kmcflow.kmc.observables import (
    write_extxyz,
)
from kmcflow.kmc.result import KmcResult, kmc_result, partial_path
from kmcflow.kmc.run_settings import RunSettings, check_run_settings, settings_from_catalog
from kmcflow.outputs import check_output_folder, write_marker

ProgressCallback = Callable[[float, str], None]
def _settings_json(settings: RunSettings) -> str:
    return json.dumps(asdict(settings), sort_keys=True)


def file_sha256(path: str | None) -> str | None:
    """SHA-256 of a file's bytes, or None when there is no such file."""
    if path is None or not os.path.exists(path):
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class SampleRecorder:
    """Samples taken so far, stored in fixed-size arrays so a checkpoint can hold them."""

    def __init__(self, n_species: int, n_layers: int, n_samples: int) -> None:
        n_s, n_l = n_species, n_layers
        self.time = np.full(n_samples, np.nan)
        self.n_events = np.zeros(n_samples, np.int64)
        self.concentration = np.zeros((n_samples, n_s, n_l))
        self.vacancy = np.zeros((n_samples, n_l))
        self.msd = np.zeros((n_samples, n_s))
        self.count = 0

    def take(self, sim: Simulation, t: float) -> None:
        """Record the simulation's observables at time ``t`` (s)."""
        self.record(sim.sample(), t, sim.n_events)

    def record(self, obs: dict[str, np.ndarray], t: float, n_events: int) -> None:
        """Record one sample of observables taken at time ``t`` after ``n_events`` events."""
        i = self.count
        self.time[i], self.n_events[i] = t, n_events
        self.concentration[i] = obs["concentration"]
        self.vacancy[i] = obs["vacancy_concentration"]
        self.msd[i] = obs["msd_A2"]
        self.count += 1

    def arrays(self) -> dict[str, np.ndarray]:
        """The sample arrays and count, as a checkpoint stores them."""
        return {"time": self.time, "n_events": self.n_events, "concentration": self.concentration,
                "vacancy_concentration": self.vacancy, "msd": self.msd,
                "count": np.array([self.count], np.int64)}

    def truncate(self) -> None:
        """Drop the sample slots that were never filled (a stalled run)."""
        n = self.count
        self.time, self.n_events = self.time[:n], self.n_events[:n]
        self.concentration, self.vacancy, self.msd = (self.concentration[:n],
                                                      self.vacancy[:n], self.msd[:n])

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore the samples a checkpoint stored (ValueError when they are damaged)."""
        count = int(arrays["count"][0])
        if not 1 <= count <= self.time.size:
            raise ValueError(f"{count} samples taken of {self.time.size}")
        taken = np.asarray(arrays["time"])[:count]
        if taken.shape != (count,) or not np.all(np.isfinite(taken)) or np.any(
                np.diff(taken) < 0):
            raise ValueError("the saved sample times are not finite and increasing")
        self.time[:], self.n_events[:] = arrays["time"], arrays["n_events"]
        self.concentration[:] = arrays["concentration"]
        self.vacancy[:] = arrays["vacancy_concentration"]
        self.msd[:] = arrays["msd"]
        self.count = int(arrays["count"][0])


def make_simulation(catalog: Catalog, settings: RunSettings,
                    catalog_file: str | None = None) -> Simulation:
    """Set up (and so validate) the simulation of a run without running it."""
    return Simulation(catalog, settings.cells, settings.temperature_K, settings.vacancy_fraction,
                      seed=settings.seed, replica=settings.replica, catalog_file=catalog_file)


def sample_marks(settings: RunSettings) -> list[float]:
    """Where the samples are taken: event counts (``steps``) or times in s (``time_s``)."""
    n = settings.samples
    if settings.steps is not None:
        return [round(m * settings.steps / (n - 1)) for m in range(n)]
    return [m * settings.time_s / (n - 1) for m in range(n)]


def sample_trajectory(sim: Simulation, settings: RunSettings, rec: SampleRecorder, *,
                      cpu_s: float = 0.0, progress: ProgressCallback | None = None,
                      chunk_events: int = 2_000_000,
                      after_chunk: Callable[[float], None] | None = None,
                      after_sample: Callable[[], None] | None = None) -> tuple[float, bool]:
    """Run ``sim`` until ``rec`` holds every sample of ``settings``.

    ``after_chunk(cpu_s)`` runs after every chunk of events (a checkpoint hook) and
    ``after_sample()`` after every sample. Returns the CPU seconds spent (``cpu_s`` included)
    and whether the run stalled (no hop possible; the recorder then holds fewer samples).
    """
    marks = sample_marks(settings)
    cpu, stalled = cpu_s, False
    while rec.count < settings.samples and not stalled:
        target = marks[rec.count]
        while True:
            if settings.steps is not None:
                todo = int(target) - sim.n_events
                if todo <= 0:
                    break
                t0 = time.process_time()
                status = sim.run(min(todo, chunk_events))
            else:
                t0 = time.process_time()
                status = sim.run(chunk_events, t_stop=float(target))
            cpu += time.process_time() - t0
            if status == kernels.STATUS_STALLED:
                stalled = True
                break
            if settings.time_s is not None and status == kernels.STATUS_TIME_REACHED:
                break
            if progress is not None:
                progress(_fraction(settings, sim), _info(sim))
            if after_chunk is not None:
                after_chunk(cpu)
        rec.take(sim, float(target) if settings.time_s is not None else sim.time_s)
        if after_sample is not None:
            after_sample()
        if progress is not None:
            progress(rec.count / settings.samples, _info(sim))
    return cpu, stalled


def _accelerated_extra(sim: Simulation, rec: SampleRecorder) -> dict | None:
    if sim.scaler is None:
        return None
    if sim.scaler.scaled_windows:  # the scaled hops ran less often than they would
        rec.msd[:] = np.nan
    return {"acceleration": acceleration_record(sim)}


def as_catalog(catalog: Catalog | str | os.PathLike[str] | dict) -> Catalog:
    """A :class:`Catalog` from a catalog, a catalog file or its parsed JSON (checked)."""
    from kmcflow.kmc.catalog import catalog_from_data, load_catalog

    if isinstance(catalog, Catalog):
        return catalog
    if isinstance(catalog, str | os.PathLike):
        return load_catalog(catalog)
    if isinstance(catalog, dict):
        return catalog_from_data(catalog)
    raise ConfigError(f"a catalog must be a Catalog, a catalog file or its JSON mapping, got a "
                      f"{type(catalog).__name__}", field="catalog",
                      hint="e.g. kmcflow.load_catalog('catalog.json')")


def as_run_settings(settings: object) -> RunSettings:
    """``settings`` if it is a :class:`RunSettings`, else one clear error."""
    if not isinstance(settings, RunSettings):
        raise ConfigError(f"settings must be a RunSettings, got a {type(settings).__name__}",
                          field="settings", hint="leave it out to use the catalog's conditions, "
                          "or give keyword conditions such as temperature_K=900")
    return settings


def run_kmc(catalog: Catalog | str | os.PathLike[str] | dict,
            settings: RunSettings | None = None, *,
            progress: ProgressCallback | None = None, acceleration=None,
            catalog_file: str | None = None, **conditions: object) -> KmcResult:
    """Run one trajectory in memory and return its :class:`~kmcflow.kmc.result.KmcResult`.

    ``settings`` defaults to the catalog's ``conditions``; keyword ``conditions`` (``cells``,
    ``temperature_K``, ``vacancy_fraction``, ``steps``, ``time_s``, ``samples``, ``seed``,
    ``replica``) override them and are checked like the command-line flags. Nothing is
    written; ``result.write(folder)`` writes what ``kmcflow kmc run`` writes.
    ``acceleration`` is an :class:`~kmcflow.kmc.acceleration.AccelerationSettings`.
    """
    catalog = as_catalog(catalog)
    if settings is None:
        settings = settings_from_catalog(catalog, **conditions)
    elif conditions:
        raise ConfigError("give either settings or keyword conditions, not both",
                          field=", ".join(sorted(conditions)))
    else:
        settings = check_run_settings(as_run_settings(settings))
    sim = make_simulation(catalog, settings, catalog_file)
    if acceleration is not None:
        sim.enable_acceleration(acceleration)
    rec = SampleRecorder(len(catalog.species), sim.block.n_layers, settings.samples)
    rec.take(sim, 0.0)
    cpu, stalled = sample_trajectory(sim, settings, rec, progress=progress)
    if stalled:
        rec.truncate()
    extra = _accelerated_extra(sim, rec)
    return result_of(RunFacts.of(sim), settings, rec, catalog_file, cpu, stalled, extra)


def run_to_directory(catalog: Catalog, settings: RunSettings, out_dir: str | os.PathLike[str],
                     catalog_file: str | None = None, **options) -> dict:
    """:func:`run_kmc_to_folder`, returning the summary record (``summary.json``)."""
    return run_kmc_to_folder(catalog, settings, out_dir, catalog_file, **options).summary


def run_kmc_to_folder(
    catalog: Catalog,
    settings: RunSettings,
    out_dir: str | os.PathLike[str],
    catalog_file: str | None = None,
    progress: ProgressCallback | None = None,
    resume: bool = False,
    checkpoint_interval_s: float = 300.0,
    snapshots: bool = False,
    chunk_events: int = 2_000_000,
    sim: Simulation | None = None,
    acceleration=None,
    overwrite: bool = False,
) -> KmcResult:
    """Run one trajectory, checkpointing into ``out_dir``, and write its outputs there.

    ``sim`` may be a fresh simulation from :func:`make_simulation` (set up beforehand so that
    input errors surface before any output or progress display). An existing ``out_dir`` is
    replaced only if it is a kmcflow run and ``overwrite`` (or ``resume``) is given
    (:func:`kmcflow.outputs.check_output_folder`).
    """
    catalog = as_catalog(catalog)
    settings = check_run_settings(as_run_settings(settings))
    if not isinstance(out_dir, str | os.PathLike):
        raise ConfigError(f"the output folder must be a path, got {out_dir!r}", field="out_dir")
    check_output_folder(out_dir, "kmc_run", overwrite=overwrite, reuse=resume,
                        inputs=[catalog_file] if catalog_file else ())
    if sim is None:
        sim = make_simulation(catalog, settings, catalog_file)
    if acceleration is not None and sim.scaler is None:
        sim.enable_acceleration(acceleration)
    rec = SampleRecorder(len(sim.catalog.species), sim.block.n_layers, settings.samples)
    work = partial_path(out_dir)
    ckpt = work / "checkpoint.npz"
    cpu = 0.0
    if resume and ckpt.exists():
        extra = sim.restore_checkpoint(ckpt)
        try:
            saved = bytes(extra.get("settings_json", np.zeros(0, np.uint8))).decode()
        except (UnicodeDecodeError, TypeError, ValueError):
            saved = ""
        if saved != _settings_json(settings):
            raise CheckpointError("the checkpoint was written with other --steps/--time/"
                                  "--samples", file=str(ckpt),
                                  hint="resume with the flags of the killed run, or drop "
                                  "--resume to start afresh")
        try:
            rec.load(extra)
            cpu = float(extra["cpu_s"][0])
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            raise CheckpointError(f"the saved samples are damaged ({type(exc).__name__})",
                                  file=str(ckpt), hint="drop --resume to start afresh") from exc
    else:
        if work.exists():
            shutil.rmtree(work)
        rec.take(sim, 0.0)
    work.mkdir(parents=True, exist_ok=True)
    write_marker(work, "kmc_run")  # the unfinished run is kmcflow's too
    last_ckpt = [time.monotonic()]

    def save(cpu_s: float) -> None:
        sim.write_checkpoint(ckpt, **rec.arrays(), cpu_s=np.array([cpu_s]),
                             settings_json=np.frombuffer(_settings_json(settings).encode(),
                                                         np.uint8))

    def checkpoint_when_due(cpu_s: float) -> None:
        if time.monotonic() - last_ckpt[0] > checkpoint_interval_s:
            save(cpu_s)
            last_ckpt[0] = time.monotonic()

    def snapshot() -> None:
        write_extxyz(work / "snapshots.extxyz", sim, append=rec.count > 1)

    try:
        cpu, stalled = sample_trajectory(sim, settings, rec, cpu_s=cpu, progress=progress,
                                         chunk_events=chunk_events,
                                         after_chunk=checkpoint_when_due,
                                         after_sample=snapshot if snapshots else None)
        save(cpu)
        if stalled:
            rec.truncate()
        result = finish_run(RunFacts.of(sim), settings, rec, work, catalog_file, cpu, stalled,
                            _accelerated_extra(sim, rec))
    except BaseException:
        if not ckpt.exists():
            shutil.rmtree(work, ignore_errors=True)
        raise
    replace_directory(work, Path(out_dir))
    return result


ACCELERATION_METHOD = ("pair scaling of quasi-equilibrated event types in windows (Dybeck, "
                       "Plaisance and Neurock 2017) with a per-event separation floor and a "
                       "transport floor (host crossings per slow event)")
TRACER_MSD_UNAVAILABLE = ("unavailable: the scaled hops ran fewer times than they would have, "
                          "so the tracer displacements (msd) are not those of the real "
                          "dynamics; observables.npz holds NaN")


def acceleration_record(sim: Simulation) -> dict:
    """What ``summary.json`` says of an accelerated run: method, settings, factor, checks."""
    scaler = sim.scaler
    r, names = sim.rates.rate_Hz.shape[1], sim.rates.regions
    scaled = {}
    for i, f in enumerate(scaler.factor):
        species, ri, rf = i // (r * r), (i // r) % r, i % r
        if f < 1.0 and species > 0:
            scaled[f"{sim.catalog.species[species - 1]}:{names[ri]}->{names[rf]}"] = float(f)
    crossings = scaler.host_crossings_per_slow_event
    record = {
        "method": ACCELERATION_METHOD,
        "settings": asdict(scaler.settings),
        "factor": sim.acceleration_factor,
        "windows": scaler.windows, "scaled_windows": scaler.scaled_windows,
        "final_scale_factors": scaled,
        "hops_to_cross_host": scaler.hops_to_cross,
        "host_crossings_per_slow_event": crossings,
        "tracer_msd": TRACER_MSD_UNAVAILABLE if scaler.scaled_windows else
        "valid: nothing was scaled",
    }
    target = scaler.settings.equilibration
    if crossings is not None and target > 0 and crossings < 0.8 * target:
        record["warning"] = (f"the scaled hops allowed only {crossings:.3g} host crossings per "
                             f"slow event (target {target:g}): vacancies may not have evened "
                             "out between slow events, so D may be biased; run longer or raise "
                             "--accelerate-equilibration")
    return record


def _fraction(settings: RunSettings, sim: Simulation) -> float:
    if settings.steps is not None:
        return min(1.0, sim.n_events / max(1, settings.steps))
    return min(1.0, sim.time_s / settings.time_s)


def _info(sim: Simulation) -> str:
    return f"{sim.n_events:,} events, t = {sim.time_s:.3e} s"


@dataclass(frozen=True)
class RunFacts:
    """What the output writer needs to know about a finished run (serial or decomposed).

    ``event_counts`` is (S+1, R, R): hops per species, initial region and final region.
    """

    catalog: Catalog
    layer_z_A: np.ndarray
    length_z_A: float
    periodic_z: bool
    lattice_name: str
    n_sites: int
    n_vacancies: int
    regions: list[str]
    event_index: np.ndarray
    event_counts: np.ndarray
    n_events: int
    time_s: float
    bytes_per_site: float
    geometry: CoupleGeometry
    environments: dict | None = None  # Simulation.environment_report() of a schema-2 catalog

    @classmethod
    def of(cls, sim: Simulation) -> RunFacts:
        """The facts of a serial :class:`~kmcflow.kmc.engine.Simulation`."""
        b = sim.block
        return cls(sim.catalog, b.layer_z_A, b.length_z_A, b.periodic_z, b.definition.name,
                   b.n_sites, int(sim.vac_site.size), sim.rates.regions, sim.rates.event_index,
                   sim.event_counts, sim.n_events, sim.time_s, sim.bytes_per_site(),
                   sim.couple.geometry(b), sim.environment_report())


def event_count_record(facts: RunFacts) -> dict[str, int]:
    """Executed hops per catalog event id (or ``species:initial->final`` for defaulted ones)."""
    counts: dict[str, int] = {}
    for s, name in enumerate(facts.catalog.species, start=1):
        for ri, rname in enumerate(facts.regions):
            for rf, fname in enumerate(facts.regions):
                n = int(facts.event_counts[s, ri, rf])
                idx = int(facts.event_index[s, ri, rf])
                if n:
                    key = facts.catalog.events[idx].id if idx >= 0 else f"{name}:{rname}->{fname}"
                    counts[key] = counts.get(key, 0) + n
    return counts


def finish_run(facts: RunFacts, settings: RunSettings, rec: SampleRecorder, work: Path,
               catalog_file: str | None, cpu: float, stalled: bool,
               extra: dict | None = None) -> KmcResult:
    """Analyse the samples, write ``observables.npz`` and ``summary.json`` into ``work``."""
    result = result_of(facts, settings, rec, catalog_file, cpu, stalled, extra)
    result.write_into(work)
    return result


def result_of(facts: RunFacts, settings: RunSettings, rec: SampleRecorder,
              catalog_file: str | None, cpu: float, stalled: bool,
              extra: dict | None = None) -> KmcResult:
    """The :class:`~kmcflow.kmc.result.KmcResult` of a finished run (nothing written)."""
    simulated = facts.time_s if settings.steps is not None else float(rec.time[-1])
    if facts.environments is not None:  # hops by rate source, environments the table lacks
        extra = {**(extra or {}), "environments": facts.environments}
    return kmc_result(
        catalog=facts.catalog, settings=settings, samples=rec.arrays(),
        layer_z_A=facts.layer_z_A, length_z_A=facts.length_z_A, periodic_z=facts.periodic_z,
        geometry=facts.geometry, catalog_file=catalog_file,
        catalog_sha256=file_sha256(catalog_file), extra=extra,
        facts={"lattice": facts.lattice_name, "n_sites": facts.n_sites,
               "n_vacancies": facts.n_vacancies, "events_executed": facts.n_events,
               "simulated_time_s": simulated, "cpu_time_s": cpu,
               "bytes_per_site": facts.bytes_per_site, "stalled": stalled,
               "event_counts": event_count_record(facts)})
