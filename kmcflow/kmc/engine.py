"""The serial kMC engine: set up a diffusion couple from a catalog, run it, checkpoint it.

:class:`Simulation` owns the state arrays (a few bytes per site, see :meth:`bytes_per_site`)
and hands them to the numba kernels in :mod:`kmcflow.kmc.kernels`. Python only sets up,
samples and writes files.

Seeds. A trajectory is fixed by ``(seed, replica)``: ``SeedSequence(seed, spawn_key=(replica,))``
draws the initial vacancy positions and ``SeedSequence(seed, spawn_key=(replica, 0))`` seeds
the kernel generator, so replica ``r`` is the same trajectory whichever process runs it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kmcflow.atomic_io import write_npz
from kmcflow.errors import CheckpointError, ConfigError
from kmcflow.kmc import kernels
from kmcflow.kmc.analysis import CoupleGeometry
from kmcflow.kmc.catalog import Catalog
from kmcflow.kmc.environment_log import EnvironmentLog
from kmcflow.kmc.environment_rates import catalog_lattice, no_environments, resolve_environments
from kmcflow.kmc.lattice import LatticeBlock, LatticeDefinition, build_block
from kmcflow.kmc.rates import ResolvedRates, interface_band_regions, resolve_rates
from kmcflow.readers import NPZ_ERRORS

CHECKPOINT_FORMAT = "kmcflow.checkpoint/1"


def lattice_from_catalog(catalog: Catalog) -> LatticeDefinition:
    """Return the :class:`LatticeDefinition` of a catalog's ``lattice`` section."""
    return catalog_lattice(catalog)


@dataclass(frozen=True)
class Couple:
    """Where the hosts are: host index per layer and the interface planes (Angstrom)."""

    host_of_layer: np.ndarray
    interfaces_z_A: tuple[float, ...]
    first_host_below: tuple[bool, ...]

    def geometry(self, block: LatticeBlock) -> CoupleGeometry:
        """The analysis' view of this couple (first host = A), for widths and fits."""
        return CoupleGeometry(float(block.length_z_A), bool(block.periodic_z),
                              self.interfaces_z_A, self.first_host_below)


def couple_geometry(block: LatticeBlock, first_host_fraction: float) -> Couple:
    """Split the layers: the first ``round(fraction * n_layers)`` belong to the first host."""
    n = block.n_layers
    n_first = round(first_host_fraction * n)
    if not 0 < n_first < n:
        raise ConfigError(f"first_host_fraction {first_host_fraction} leaves a host with no "
                          f"layer out of {n}", field="interface.first_host_fraction",
                          hint="use more cells along z or a fraction nearer 0.5")
    z = block.layer_z_A
    host = np.ones(n, np.int8)
    host[:n_first] = 0
    planes = [0.5 * (z[n_first - 1] + z[n_first])]
    below = [True]
    if block.periodic_z:
        gap = (z[0] + block.length_z_A - z[-1]) * 0.5
        planes.append((z[-1] + gap) % block.length_z_A)
        below.append(False)
    return Couple(host, tuple(float(p) for p in planes), tuple(below))


def distance_to_interfaces(z: np.ndarray, couple: Couple, length_z_A: float, periodic: bool):
    """Return the distance (Angstrom) of each z to the nearest interface plane."""
    d = np.full(z.shape, np.inf)
    for plane in couple.interfaces_z_A:
        delta = np.abs(z - plane)
        if periodic:
            delta = np.minimum(delta, length_z_A - delta)
        d = np.minimum(d, delta)
    return d


def couple_regions(catalog: Catalog, block: LatticeBlock) -> tuple[Couple, np.ndarray, np.ndarray]:
    """Return the couple geometry, the host index and the region code of every site of ``block``.

    Both depend on the layer alone, so a block that is a part of a larger one along x and y
    (a domain of a decomposed run) gets the same codes as the whole lattice.
    """
    couple = couple_geometry(block, catalog.interface.first_host_fraction)
    layers = block.site_layers()
    host = couple.host_of_layer[layers]
    dist = distance_to_interfaces(block.layer_z_A, couple, block.length_z_A,
                                  block.periodic_z)[layers]
    return couple, host, interface_band_regions(host, dist, catalog.interface.band_thickness_A)


def resolve_block_rates(catalog: Catalog, block: LatticeBlock, region: np.ndarray,
                        temperature_K: float, catalog_file: str | None = None) -> ResolvedRates:
    """Resolve the rate tables for every (initial, final) region pair that ``block`` has.

    Regions depend on the layer alone, so the sites of one column (ix = iy = 0) and their
    neighbours produce every region pair of the whole block.
    """
    column = np.arange(block.cells[2] * block.definition.n_basis)
    off = block.offsets[block.site_class[column]]
    mask = off != 0
    final = np.broadcast_to(column[:, None], off.shape)[mask]
    pairs = set(zip(region[(column[:, None] + off)[mask]].tolist(), region[final].tolist(),
                    strict=True))
    return resolve_rates(catalog, temperature_K, pairs, file=catalog_file)


def check_saved_state(occ: np.ndarray, vac_site: np.ndarray, n_species: int,
                      species_counts: np.ndarray, file: str) -> None:
    """Refuse a saved occupation that this set-up cannot have produced.

    Species codes must lie in 0..S, the vacancy list must name exactly the vacant sites
    (each once), and the number of sites of each species must equal this set-up's (hops
    conserve them): a damaged file is never run and then written over.
    """
    hint = "the checkpoint is damaged: drop --resume to start afresh"
    if occ.size and (int(occ.min()) < 0 or int(occ.max()) > n_species):
        raise CheckpointError(f"unknown species code in the saved lattice (0..{n_species} "
                              "expected)", file=file, hint=hint)
    counts = np.bincount(occ.astype(np.int64), minlength=n_species + 1)
    if counts.shape != species_counts.shape or np.any(counts != species_counts):
        raise CheckpointError("the saved lattice holds other numbers of atoms and vacancies "
                              "than this set-up", file=file, hint=hint)
    if vac_site.size != counts[0] or (vac_site.size and (
            int(vac_site.min()) < 0 or int(vac_site.max()) >= occ.size
            or np.unique(vac_site).size != vac_site.size
            or np.any(occ[vac_site] != 0))):
        raise CheckpointError("the saved vacancy list does not match the saved lattice",
                              file=file, hint=hint)


class Simulation:
    """One kMC trajectory of an A|B couple on a lattice block.

    Parameters
    ----------
    catalog
        A validated catalog.
    cells
        (nx, ny, nz) cells of the block.
    temperature_K
        Temperature in K.
    vacancy_fraction
        Fraction of sites that are vacant (at least one vacancy is required).
    seed, replica
        Fix the trajectory (see the module docstring).
    periodic_z
        Override the catalog's ``interface.boundary_z``.
    initial_occupation
        Optional (N,) species codes (0 = vacancy) replacing the couple's initial state.
    catalog_file
        The catalog's file name, for error messages and the checkpoint fingerprint.

    """

    def __init__(
        self,
        catalog: Catalog,
        cells: tuple[int, int, int] | list[int],
        temperature_K: float,
        vacancy_fraction: float,
        seed: int = 0,
        replica: int = 0,
        periodic_z: bool | None = None,
        initial_occupation: np.ndarray | None = None,
        catalog_file: str | None = None,
    ) -> None:
        self.catalog = catalog
        self.catalog_file = catalog_file
        self.seed, self.replica = int(seed), int(replica)
        if periodic_z is None:
            periodic_z = catalog.interface.boundary_z == "periodic"
        try:
            lattice = lattice_from_catalog(catalog)
        except ConfigError as exc:  # the catalog's lattice section: name the catalog
            if exc.file is None:
                exc.file = catalog_file
            raise
        self.block = build_block(lattice, tuple(cells), periodic_z)
        if not 0 < vacancy_fraction < 1:
            raise ConfigError(f"vacancy fraction must lie in (0, 1), got {vacancy_fraction}",
                              field="vacancy_fraction")
        self.vacancy_fraction = float(vacancy_fraction)
        self.temperature_K = float(temperature_K)
        self.couple, host, self.region = couple_regions(catalog, self.block)
        self.rates = resolve_block_rates(catalog, self.block, self.region, self.temperature_K,
                                         catalog_file)
        self.environments = resolve_environments(catalog, self.temperature_K, catalog_file)
        self.environment_log = (None if self.environments is None
                                else EnvironmentLog(self.environments, catalog.species))
        n = self.block.n_sites
        if initial_occupation is None:
            codes = np.array([catalog.species.index(h.initial_species) + 1
                              for h in catalog.hosts], np.int8)
            occ = codes[host]
            n_vac = round(self.vacancy_fraction * n)
            if n_vac < 1:
                raise ConfigError(f"vacancy fraction {vacancy_fraction} gives no vacancy on "
                                  f"{n} sites", field="vacancy_fraction",
                                  hint=f"use at least {1.0 / n:.3g} or more cells")
            placement = np.random.default_rng(np.random.SeedSequence(self.seed,
                                                                     spawn_key=(self.replica,)))
            occ[np.sort(placement.choice(n, size=n_vac, replace=False))] = 0
        else:
            occ = np.asarray(initial_occupation, dtype=np.int8).copy()
            if occ.shape != (n,) or occ.min() < 0 or occ.max() > len(catalog.species):
                raise ConfigError("initial_occupation must be N species codes in 0..S",
                                  field="initial_occupation")
            if not np.any(occ == 0):
                raise ConfigError("initial_occupation has no vacancy", field="initial_occupation")
        self.occ = occ
        self.disp = np.zeros((n, 3), np.int16)
        self.basis0 = np.tile(np.arange(self.block.definition.n_basis, dtype=np.uint8),
                              n // self.block.definition.n_basis)
        self.vac_site = np.flatnonzero(occ == 0).astype(np.int64)
        self.rng = np.random.SeedSequence(self.seed, spawn_key=(self.replica, 0)).generate_state(
            4, np.uint64)
        self.clock = np.zeros(2)
        self.n_events = 0
        self.scaler = None  # temporal acceleration, off unless enable_acceleration() is called
        self.event_counts = np.zeros_like(self.rates.rate_Hz, dtype=np.int64)
        self._build_index()
        self.clock[1] = -math.log(kernels.uniform_open(self.rng)) / self.total_rate_Hz \
            if self.total_rate_Hz > 0 else math.inf

    # ------------------------------------------------------------------ set-up helpers
    def _build_index(self) -> None:
        n = self.block.n_sites
        self.vac_of_site = np.full(n, -1, np.int32)
        self.vac_of_site[self.vac_site] = np.arange(self.vac_site.size, dtype=np.int32)
        self.leaf0 = 1 << max(0, math.ceil(math.log2(max(1, self.vac_site.size))))
        self.tree = np.zeros(2 * self.leaf0)
        self.slot_rate = np.zeros((self.vac_site.size, self.block.offsets.shape[1]))
        defn = self.block.definition
        self.class_basis = (np.arange(self.block.offsets.shape[0]) % defn.n_basis).astype(np.int64)
        self.nbr_shift = self.block.shell.shift.astype(np.int64)
        self.reverse_slot = self.block.shell.reverse
        env = (self.environments.kernel_tuple() if self.environments is not None
               else no_environments(len(self.catalog.species)))
        self._kernel_tables = (self.rates.rate_Hz, self.rates.kra_eV, self.rates.prefactor_Hz,
                               self.rates.site_energy_eV, self.rates.pair_eV,
                               1.0 / self.rates.kT_eV, self.rates.use_pairs, env)
        kernels.build_tree(self.vac_site, self.slot_rate, self.tree, self.leaf0, self.occ,
                           self.region,
                           self.block.site_class, self.block.offsets, *self._kernel_tables)

    # ------------------------------------------------------------------ running
    @property
    def time_s(self) -> float:
        """Simulated time of the last executed event, s."""
        return float(self.clock[0])

    @property
    def total_rate_Hz(self) -> float:
        """Sum of the rates of all possible hops in the current state, Hz."""
        return float(self.tree[1])

    def enable_acceleration(self, settings) -> None:
        """Scale fast quasi-equilibrated hop pairs from now on (:mod:`kmcflow.kmc.acceleration`).

        Event types are (species, initial region, final region); the reverse of a type swaps
        the regions (an in-host hop is its own reverse). A type's factor multiplies its rate;
        with a pair (KRA) model it multiplies the type's prefactor, so the factor applies to
        every local environment of the type alike and detailed balance is kept. The separation
        rule then compares the types' rates without the pair terms (``rates.rate_Hz``).
        """
        from kmcflow.kmc.acceleration import PairScaler

        if self.environments is not None:
            raise ConfigError("temporal acceleration scales region event types; it cannot be "
                              "combined with an environment-resolved catalog",
                              field="acceleration", hint="run without --accelerate")
        s, r = self.rates.rate_Hz.shape[0], self.rates.rate_Hz.shape[1]
        idx = np.arange(s * r * r).reshape(s, r, r)
        reverse = idx.transpose(0, 2, 1).ravel()
        self._unscaled = (self.rates.rate_Hz.copy(), self.rates.prefactor_Hz.copy())
        self.scaler = PairScaler(reverse, self._unscaled[0].ravel(), settings,
                                 hops_to_cross=self.hops_to_cross())
        self._window_counts = np.zeros_like(self.event_counts)
        self._window_done = 0
        self.unscaled_time_s = float(self.clock[0])  # the same events at unscaled rates

    def hops_to_cross(self) -> float:
        """Hops a vacancy needs to cross the thinnest host: ``L_host^2 / <dz^2>``.

        ``<dz^2>`` is the mean square z component of a hop over every neighbour direction of
        the sites of one column; ``L_host`` the thickness of the thinnest host slab.
        """
        b = self.block
        column = np.arange(b.cells[2] * b.definition.n_basis)
        layers = b.site_layers()
        off = b.offsets[b.site_class[column]]
        mask = off != 0
        z = b.layer_z_A
        dz = (z[layers[(column[:, None] + off)[mask]]]
              - z[layers[np.broadcast_to(column[:, None], off.shape)[mask]]])
        if b.periodic_z:
            dz = dz - b.length_z_A * np.round(dz / b.length_z_A)
        mean_dz2 = float(np.mean(dz ** 2)) if dz.size else 0.0
        spacing = b.length_z_A / max(1, z.size)
        host_of_layer = np.asarray(self.couple.host_of_layer)
        thickness = min(int(np.sum(host_of_layer == h)) for h in np.unique(host_of_layer))
        if mean_dz2 <= 0:
            return 1.0
        return max(1.0, (thickness * spacing) ** 2 / mean_dz2)

    def _scaled_tables(self, factor: np.ndarray) -> tuple:
        shape = self._unscaled[0].shape
        f = factor.reshape(shape)
        return (self._unscaled[0] * f, self._kernel_tables[1], self._unscaled[1] * f,
                *self._kernel_tables[3:])

    def _apply_scale(self, factor: np.ndarray) -> None:
        tables = self._scaled_tables(factor)
        if (np.array_equal(tables[0], self._kernel_tables[0])
                and np.array_equal(tables[2], self._kernel_tables[2])):
            return
        self._kernel_tables = tables
        kernels.build_tree(self.vac_site, self.slot_rate, self.tree, self.leaf0, self.occ,
                           self.region, self.block.site_class, self.block.offsets,
                           *self._kernel_tables)
        total = self.total_rate_Hz  # the waiting time is memoryless: draw it afresh
        self.clock[1] = (self.clock[0] - math.log(kernels.uniform_open(self.rng)) / total
                         if total > 0 else math.inf)

    def _unscaled_rate(self) -> float:
        """Total rate of the current state with every factor 1 (for the acceleration factor)."""
        tree = np.zeros_like(self.tree)
        tables = (self._unscaled[0], self._kernel_tables[1], self._unscaled[1],
                  *self._kernel_tables[3:])
        kernels.build_tree(self.vac_site, np.zeros_like(self.slot_rate), tree, self.leaf0,
                           self.occ, self.region, self.block.site_class, self.block.offsets,
                           *tables)
        return float(tree[1])

    def _is_scaled(self) -> bool:
        return bool(np.any(self.scaler.factor < 1.0))

    @property
    def acceleration_factor(self) -> float:
        """Simulated time over the time the same events take at unscaled rates (1 = none)."""
        if self.scaler is None or self.unscaled_time_s <= 0:
            return 1.0
        return self.time_s / self.unscaled_time_s

    def run(self, max_events: int | None = None, t_stop: float = math.inf) -> int:
        """Run until ``max_events`` more events or the next event lies after ``t_stop`` (s).

        Returns the kernel status (see :mod:`kmcflow.kmc.kernels`). With acceleration on, the
        events run in windows after each of which the scale factors are updated.
        """
        if self.scaler is None:
            return self._run(max_events, t_stop)
        left = np.iinfo(np.int64).max if max_events is None else int(max_events)
        window = self.scaler.settings.window_events
        status = kernels.STATUS_MAX_EVENTS
        while left > 0:
            n = min(left, window - self._window_done)
            before, start, t0 = self.event_counts.copy(), self.n_events, self.time_s
            scaled = self._is_scaled()
            rate_unscaled = self._unscaled_rate() if scaled else 0.0
            status = self._run(n, t_stop)
            done = self.n_events - start
            if not scaled:
                self.unscaled_time_s += self.time_s - t0
            elif done and rate_unscaled > 0:
                # the same events at unscaled rates: each would last 1 / R_unscaled on average
                self.unscaled_time_s += done / rate_unscaled
            self._window_counts += self.event_counts - before
            self._window_done += done
            left -= done
            if self._window_done >= window:
                self._apply_scale(self.scaler.update(self._window_counts.ravel()))
                self._window_counts[:] = 0
                self._window_done = 0
            if status != kernels.STATUS_MAX_EVENTS:
                break
        return status

    def _run(self, max_events: int | None = None, t_stop: float = math.inf) -> int:
        left = np.iinfo(np.int64).max if max_events is None else int(max_events)
        while True:
            done, status = kernels.run_events(
                self.occ, self.region, self.block.site_class, self.class_basis,
                self.block.offsets, self.nbr_shift, self.reverse_slot, self.disp, self.basis0,
                self.vac_site, self.vac_of_site, self.slot_rate, self.tree, self.leaf0,
                self.rng, self.clock, self.event_counts, *self._kernel_tables, left,
                float(t_stop))
            self.n_events += int(done)
            left -= int(done)
            if self.environment_log is not None:
                self.environment_log.drain()
            if status != kernels.STATUS_LOG_FULL:
                break
            if left <= 0:
                status = kernels.STATUS_MAX_EVENTS
                break
        if status == kernels.STATUS_OVERFLOW:
            raise ConfigError("an atom moved more than 32000 cells: the displacement counters "
                              "would overflow", hint="run shorter segments or a larger lattice")
        return int(status)

    # ------------------------------------------------------------------ environments
    def log_species_jumps(self, species: str) -> None:
        """Record every executed hop of ``species`` (environment catalogs only).

        The records (one row per hop, columns
        :data:`kmcflow.kmc.environment_rates.LOG_FIELDS`) collect in :attr:`species_jumps`;
        the jump vector of a row is ``-shell.vector_A[basis, slot]``.
        """
        if self.environment_log is None:
            raise ConfigError("jump records need an environment-resolved catalog",
                              field="catalog.environments")
        self.environment_log.log_species(species)

    @property
    def species_jumps(self) -> list[np.ndarray]:
        """The drained records of the species :meth:`log_species_jumps` asked for."""
        return [] if self.environment_log is None else self.environment_log.species_jumps

    def environment_report(self) -> dict | None:
        """Executed hops by rate source and the environments the table lacked, or None.

        See :meth:`kmcflow.kmc.environment_log.EnvironmentLog.report`.
        """
        return None if self.environment_log is None else self.environment_log.report()

    def sample(self) -> dict[str, np.ndarray]:
        """Per-layer concentrations (fraction of the layer's sites) and tracer MSD per species.

        Returns ``concentration`` (S, n_layers), ``vacancy_concentration`` (n_layers,),
        ``msd_A2`` (S,) and ``n_atoms`` (S,).
        """
        b = self.block
        defn = b.definition
        counts, sq, n_atoms = kernels.sample_observables(
            self.occ, self.disp, self.basis0, np.array(b.cells, np.int64), b.layers_per_cell,
            b.site_layer_of_basis, defn.vectors_A, defn.basis_frac @ defn.vectors_A,
            len(self.catalog.species) + 1)
        per_layer = counts.sum(axis=0).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            msd = np.where(n_atoms > 0, sq / np.maximum(n_atoms, 1), 0.0)
        return {
            "concentration": counts[1:] / per_layer,
            "vacancy_concentration": counts[0] / per_layer,
            "msd_A2": msd[1:],
            "n_atoms": n_atoms[1:],
        }

    def bytes_per_site(self) -> float:
        """Memory of the state arrays (per site and per vacancy) divided by the sites."""
        arrays = (self.occ, self.region, self.block.site_class, self.disp, self.basis0,
                  self.vac_of_site, self.vac_site, self.slot_rate, self.tree)
        return sum(a.nbytes for a in arrays) / self.block.n_sites

    # ------------------------------------------------------------------ checkpoints
    def fingerprint(self) -> str:
        """A hash of everything that defines the trajectory except its progress."""
        payload = {
            "catalog": self.catalog.to_json_dict(),
            "cells": list(self.block.cells),
            "periodic_z": self.block.periodic_z,
            "temperature_K": self.temperature_K,
            "vacancy_fraction": self.vacancy_fraction,
            "seed": self.seed,
            "replica": self.replica,
        }
        if self.scaler is not None:  # an accelerated trajectory differs from a plain one
            from dataclasses import asdict

            payload["acceleration"] = asdict(self.scaler.settings)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The arrays that, with the set-up, define the current state exactly.

        With acceleration on, the scaler's state, the counts of the window in progress and the
        unscaled-time account are part of it (``acc_*``).
        """
        arrays = {
            "occ": self.occ, "disp": self.disp, "basis0": self.basis0,
            "vac_site": self.vac_site, "rng": self.rng, "clock": self.clock,
            "n_events": np.array([self.n_events], np.int64), "event_counts": self.event_counts,
        }
        if self.environment_log is not None:
            arrays.update(self.environment_log.state_arrays())
        if self.scaler is not None:
            arrays.update({f"acc_{k}": v for k, v in self.scaler.state().items()})
            arrays["acc_window_counts"] = self._window_counts
            arrays["acc_window_done"] = np.array([self._window_done], np.int64)
            arrays["acc_unscaled_time_s"] = np.array([self.unscaled_time_s])
        return arrays

    def write_checkpoint(self, path: str | os.PathLike[str], **extra: np.ndarray) -> None:
        """Write the state (and ``extra`` arrays) to an ``.npz`` file atomically."""
        meta = np.frombuffer(json.dumps({"format": CHECKPOINT_FORMAT,
                                         "fingerprint": self.fingerprint()}).encode(), np.uint8)
        write_npz(path, meta=meta, **self.state_arrays(),
                  **{f"extra_{k}": v for k, v in extra.items()})

    def _restore_acceleration(self, content: dict[str, np.ndarray], p: Path) -> None:
        try:
            self.scaler.load_state({k: content[f"acc_{k}"] for k in self.scaler.STATE_KEYS})
            done, unscaled = int(content["acc_window_done"][0]), float(
                content["acc_unscaled_time_s"][0])
            if not (0 <= done < self.scaler.settings.window_events and unscaled >= 0
                    and math.isfinite(unscaled) and np.all(content["acc_window_counts"] >= 0)):
                raise ValueError("the window counters are impossible")
        except (KeyError, ValueError, IndexError) as exc:
            raise CheckpointError(f"the saved acceleration state is damaged ({exc})",
                                  file=str(p), hint="drop --resume to start afresh") from exc
        self._window_counts[:] = content["acc_window_counts"]
        self._window_done, self.unscaled_time_s = done, unscaled

    def restore_checkpoint(self, path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
        """Load a checkpoint written by an identical set-up; return its ``extra`` arrays."""
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as data:
                content = {k: data[k] for k in data.files}
        except NPZ_ERRORS as exc:
            raise CheckpointError(f"cannot read checkpoint: {exc}", file=str(p)) from exc
        try:
            meta = json.loads(content.pop("meta").tobytes().decode())
            if not isinstance(meta, dict):
                raise ValueError("meta is not a JSON object")
        except (KeyError, ValueError, RecursionError) as exc:
            raise CheckpointError("not a kmcflow checkpoint", file=str(p)) from exc
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"unsupported checkpoint format {meta.get('format')!r}",
                                  file=str(p))
        if meta.get("fingerprint") != self.fingerprint():
            raise CheckpointError("the checkpoint belongs to a different catalog or run set-up",
                                  file=str(p), hint="use the same catalog, cells, temperature, "
                                  "vacancy fraction and seed as the run that wrote it")
        for name, current in self.state_arrays().items():
            arr = content.get(name)
            if name == "env_unlisted" and arr is not None and arr.ndim == 2 and arr.shape[1] == 4:
                continue  # as many rows as environments met
            if arr is None or arr.shape != current.shape or arr.dtype != current.dtype:
                raise CheckpointError(f"array {name!r} is missing or has the wrong shape",
                                      file=str(p), hint="the checkpoint is damaged: drop "
                                      "--resume to start afresh")
        check_saved_state(content["occ"], content["vac_site"], len(self.catalog.species),
                          np.bincount(self.occ, minlength=len(self.catalog.species) + 1),
                          str(p))
        clock, n_events = content["clock"], content["n_events"]
        if not (np.all(np.isfinite(clock)) and clock[0] >= 0 and n_events[0] >= 0
                and np.all(content["event_counts"] >= 0)):
            raise CheckpointError("the saved clock or event counts are not valid", file=str(p),
                                  hint="the checkpoint is damaged: drop --resume to start "
                                  "afresh")
        if self.scaler is not None:  # validated (and taken) before anything else changes
            self._restore_acceleration(content, p)
        self.occ[:] = content["occ"]
        self.disp[:] = content["disp"]
        self.basis0[:] = content["basis0"]
        self.vac_site[:] = content["vac_site"]
        self.rng[:] = content["rng"]
        self.clock[:] = content["clock"]
        self.n_events = int(content["n_events"][0])
        self.event_counts[:] = content["event_counts"]
        if self.environment_log is not None:
            self.environment_log.restore(content)
        self._build_index()
        if self.scaler is not None:
            self._kernel_tables = self._scaled_tables(self.scaler.factor)
            kernels.build_tree(self.vac_site, self.slot_rate, self.tree, self.leaf0, self.occ,
                               self.region, self.block.site_class, self.block.offsets,
                               *self._kernel_tables)  # the saved clock stays: nothing redrawn
        return {k.removeprefix("extra_"): v for k, v in content.items() if k.startswith("extra_")}
