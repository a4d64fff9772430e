"""Spatial domain decomposition of one lattice over MPI ranks (synchronous sublattice kMC).

Layout. The ``nx x ny`` cells of the x-y plane are split over a ``px x py`` process grid into
slabs (``py = 1``) or columns; z, the interface normal, is never split, so every rank holds whole
concentration profiles. Each rank stores its owned cells plus ``g`` ghost cells on each split
side, where ``g`` is the reach of a rate in cells (1 without pair interactions: a hop rate
depends on the two sites; 2 with them: also on the neighbours of both). The local block is
built as a periodic block of ``(nx_local + 2 g) x (ny_local + 2 g) x nz`` cells; its
wrap-around bonds join ghosts to ghosts only; no active hop's rate depends on them (the
kernel may refresh an inactive far-edge vacancy through one, from rate 0 to rate 0).

Algorithm (Shim and Amar, Phys. Rev. B 71, 125432 (2005); the sectors of SPPARKS). Each rank's
owned cells are cut into 2 sectors along x (and 2 along y when ``py > 1``). Time advances in
sweeps of length ``window_s``; in a sweep every sector is made active once, in an order drawn
from the seed that all ranks share, and all ranks run the serial BKL kernel on their active
sector for ``window_s`` of simulated time. A hop belongs to the sector that holds its vacancy,
so a hop across a sector (or rank) boundary is executed exactly once, by the rank whose active
sector holds the vacancy, and may move an atom out of a ghost cell. Between sectors two
exchanges run: ghost sites a rank changed are sent back to their owners (*reverse*), then
owners refresh every ghost (*forward*). Sectors are at least ``g + 1`` cells wide, so the sites
one rank writes (its active sector and one cell around it) are never read or written by another
rank in the same window: the only approximation is the splitting of the event set into
sectors for a finite window, whose error vanishes with ``window_s`` (default ``1 / (z w_max)``,
the mean time for the fastest vacancy to make one hop; see
:meth:`DomainSimulation.window_default_s`).

Inactive sectors are frozen without touching the kernel: the region code of a site outside the
active sector is shifted by R (the number of regions) and the rate tables are doubled so that
a hop *into* a shifted region has rate 0, while a hop *from* one keeps its rate.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any

import numpy as np

from kmcflow.errors import ParallelError
from kmcflow.kmc import kernels
from kmcflow.kmc.catalog import Catalog
from kmcflow.kmc.engine import couple_regions, lattice_from_catalog, resolve_block_rates
from kmcflow.kmc.environment_rates import no_environments
from kmcflow.kmc.lattice import LatticeBlock, build_block
from kmcflow.kmc.parallel import exchange_kernels as xk
from kmcflow.kmc.parallel.exchange_kernels import SITE_BYTES
from kmcflow.kmc.parallel.grid import choose_grid

_TAG_FORWARD = 11
_TAG_REVERSE = 12


class DomainSimulation:
    """The part of one large lattice that this rank owns, with its ghosts and exchanges.

    Parameters
    ----------
    catalog
        A validated catalog.
    cells
        Cells (nx, ny, nz) of the *whole* lattice.
    temperature_K, vacancy_fraction
        Conditions; each rank places ``round(vacancy_fraction * owned sites)`` vacancies.
    comm
        An mpi4py communicator.
    seed, replica
        Fix the run for a given number of ranks: rank ``p`` draws from
        ``SeedSequence(seed, spawn_key=(replica, 1, p))``; the sector order of sweep ``k`` from
        ``SeedSequence(seed, spawn_key=(replica, 2, k))`` on every rank.
    grid
        (px, py), or None to choose (see :func:`choose_grid`).
    debug_checks
        After every window, check that no owner site was written by two ranks and that the
        number of atoms of each species is conserved; raise :class:`ParallelError` otherwise.
    catalog_file
        For error messages and provenance.

    """

    def __init__(
        self,
        catalog: Catalog,
        cells: tuple[int, int, int],
        temperature_K: float,
        vacancy_fraction: float,
        comm: Any,
        seed: int = 0,
        replica: int = 0,
        grid: tuple[int, int] | None = None,
        debug_checks: bool = False,
        periodic_z: bool | None = None,
        catalog_file: str | None = None,
    ) -> None:
        from mpi4py import MPI

        self._mpi = MPI
        self.comm = comm
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.catalog, self.catalog_file = catalog, catalog_file
        self.cells = tuple(int(c) for c in cells)
        self.temperature_K = float(temperature_K)
        self.vacancy_fraction = float(vacancy_fraction)
        self.seed, self.replica = int(seed), int(replica)
        self.debug_checks = debug_checks
        if periodic_z is None:
            periodic_z = catalog.interface.boundary_z == "periodic"
        if catalog.environments is not None:
            raise ParallelError("an environment-resolved catalog runs serially or as "
                                "independent replicas, not in a decomposed domain",
                                field="--decompose", hint="drop --decompose")
        defn = lattice_from_catalog(catalog)
        nx, ny, nz = self.cells
        if defn.dimension == 2 and ny != 1:
            raise ParallelError(f"a 2D lattice needs ny = 1, got {ny}", field="--cells")
        # the rate tables depend on the layers only: resolve them on a thin probe block
        probe = build_block(defn, (3, 3 if defn.dimension == 3 else 1, nz), periodic_z)
        _, _, probe_region = couple_regions(catalog, probe)
        self.rates = resolve_block_rates(catalog, probe, probe_region, self.temperature_K,
                                         catalog_file)
        self.reach_cells = 2 if self.rates.use_pairs else 1
        self.grid = choose_grid(self.size, self.cells, defn.dimension, self.reach_cells, grid)
        gxi, gyi = self.grid.coords(self.rank)
        self.x0, x1 = self.grid.x_bounds[gxi], self.grid.x_bounds[gxi + 1]
        self.y0, y1 = self.grid.y_bounds[gyi], self.grid.y_bounds[gyi + 1]
        self.nx_own, self.ny_own = x1 - self.x0, y1 - self.y0
        self.gx = self.reach_cells if self.grid.px > 1 else 0
        self.gy = self.reach_cells if self.grid.py > 1 else 0
        local = (self.nx_own + 2 * self.gx, self.ny_own + 2 * self.gy, nz)
        self.block: LatticeBlock = build_block(defn, local, periodic_z)
        self.couple, host, self.base_region = couple_regions(catalog, self.block)
        self.n_regions = len(self.rates.regions)
        if 2 * self.n_regions > 127:
            raise ParallelError("too many regions for the sector masks", field="regions")
        self._extend_tables()
        self.sites_per_column = nz * defn.n_basis
        n = self.block.n_sites
        lx, ly = np.meshgrid(np.arange(local[0]), np.arange(local[1]), indexing="ij")
        owned_cell = ((lx >= self.gx) & (lx < self.gx + self.nx_own)
                      & (ly >= self.gy) & (ly < self.gy + self.ny_own))
        sx = ((lx - self.gx) >= self.nx_own // 2).astype(np.int8)
        sy = ((ly - self.gy) >= self.ny_own // 2).astype(np.int8) if self.grid.py > 1 else 0
        sector_cell = np.where(owned_cell, sx + 2 * sy, -1).astype(np.int8)
        self.n_sectors = 4 if self.grid.py > 1 else 2
        self.sector = np.repeat(sector_cell.ravel(), self.sites_per_column)
        self.owned = np.flatnonzero(self.sector >= 0)
        self.n_owned_sites = self.owned.size
        self.n_sites = nx * ny * nz * defn.n_basis
        # initial state of the owned sites; ghosts come from their owners
        codes = np.array([catalog.species.index(h.initial_species) + 1 for h in catalog.hosts],
                         np.int8)
        occ = codes[host]
        placement = np.random.default_rng(np.random.SeedSequence(
            self.seed, spawn_key=(self.replica, 3, self.rank)))
        n_vac = round(self.vacancy_fraction * self.owned.size)
        occ[np.sort(placement.choice(self.owned, size=n_vac, replace=False))] = 0
        occ[self.sector < 0] = 0
        self.occ = occ
        self.disp = np.zeros((n, 3), np.int16)
        self.basis0 = np.tile(np.arange(defn.n_basis, dtype=np.uint8), n // defn.n_basis)
        self.sector_regions = []
        for k in range(self.n_sectors):
            masked = self.base_region.copy()
            masked[self.sector != k] += np.int8(self.n_regions)
            self.sector_regions.append(masked)
        self.region = self.sector_regions[0]
        self.class_basis = (np.arange(self.block.offsets.shape[0]) % defn.n_basis).astype(
            np.int64)
        self.nbr_shift = self.block.shell.shift.astype(np.int64)
        self.rng = np.random.SeedSequence(self.seed, spawn_key=(self.replica, 1, self.rank)
                                          ).generate_state(4, np.uint64)
        self.clock = np.zeros(2)
        self.event_counts_ext = np.zeros((len(catalog.species) + 1, 2 * self.n_regions,
                                          2 * self.n_regions), np.int64)
        self.n_events_local = 0
        self.sweeps_done = 0
        self.time_s = 0.0
        self.comm_time_s = 0.0
        self.kernel_time_s = 0.0
        self._touched: list[np.ndarray] | None = None
        self._plan_exchanges()
        self.exchange_forward()
        self.initial_counts = self.global_species_counts()
        if self.initial_counts[0] < 1:
            raise ParallelError(f"vacancy fraction {vacancy_fraction} gives no vacancy",
                                field="vacancy_fraction", hint="use a larger fraction")

    # ------------------------------------------------------------------ set-up
    def _extend_tables(self) -> None:
        r = self.rates
        big = 2 * self.n_regions
        keep = np.zeros(big, bool)
        keep[: self.n_regions] = True  # a hop may end in an active (unshifted) region only
        src = np.arange(big) % self.n_regions

        def widen(table: np.ndarray, zero_inactive: bool) -> np.ndarray:
            out = table[:, src][:, :, src].copy()
            if zero_inactive:
                out[:, :, ~keep] = 0.0
            return out

        self.tables = (widen(r.rate_Hz, True), widen(r.kra_eV, False),
                       widen(r.prefactor_Hz, True), r.site_energy_eV[:, src].copy(), r.pair_eV,
                       1.0 / r.kT_eV, r.use_pairs, no_environments(len(self.catalog.species)))

    def _global_site(self, local_sites: np.ndarray) -> np.ndarray:
        nx, ny, _ = self.cells
        col, within = np.divmod(local_sites, self.sites_per_column)
        lx, ly = np.divmod(col, self.block.cells[1])
        gxc = (self.x0 + lx - self.gx) % nx
        gyc = (self.y0 + ly - self.gy) % ny
        return (gxc * ny + gyc) * self.sites_per_column + within

    def _local_site(self, global_sites: np.ndarray) -> np.ndarray:
        nx, ny, _ = self.cells
        col, within = np.divmod(global_sites, self.sites_per_column)
        gxc, gyc = np.divmod(col, ny)
        lx = (gxc - self.x0) % nx + self.gx
        ly = (gyc - self.y0) % ny + self.gy
        if np.any(lx >= self.gx + self.nx_own) or np.any(ly >= self.gy + self.ny_own):
            raise ParallelError("internal error: a ghost request for a site this rank does not "
                                "own", field="decomposition")
        return (lx * self.block.cells[1] + ly) * self.sites_per_column + within

    def _owner_of(self, global_sites: np.ndarray) -> np.ndarray:
        _, ny, _ = self.cells
        col = global_sites // self.sites_per_column
        gxc, gyc = np.divmod(col, ny)
        ix = np.searchsorted(self.grid.x_bounds, gxc, side="right") - 1
        iy = np.searchsorted(self.grid.y_bounds, gyc, side="right") - 1
        return ix * self.grid.py + iy

    def _plan_exchanges(self) -> None:
        """Agree with the neighbours which owned site fills which ghost (once, collectively)."""
        ghosts = np.flatnonzero(self.sector < 0)
        glob = self._global_site(ghosts)
        owner = self._owner_of(glob)
        requests = [glob[owner == q] for q in range(self.size)]
        self.ghost_idx = {q: ghosts[owner == q] for q in range(self.size) if np.any(owner == q)}
        incoming = self.comm.alltoall(requests)
        self.send_idx = {q: self._local_site(np.asarray(g)) for q, g in enumerate(incoming)
                         if len(g)}
        if self.rank in self.ghost_idx or self.rank in self.send_idx:
            raise ParallelError("internal error: a rank is its own ghost owner",
                                field="decomposition")
        self.neighbours = sorted(set(self.ghost_idx) | set(self.send_idx))
        # message buffers, allocated once: forward records (8 bytes per site), reverse records
        # with a changed flag (9), and the ghost records at the start of the window
        def buffers(plan: dict[int, np.ndarray], width: int) -> dict[int, np.ndarray]:
            return {q: np.empty((i.size, width), np.uint8) for q, i in plan.items()}

        self._send_bufs = buffers(self.send_idx, SITE_BYTES)
        self._ghost_bufs = buffers(self.ghost_idx, SITE_BYTES)
        self._reverse_out = buffers(self.ghost_idx, SITE_BYTES + 1)
        self._reverse_in = buffers(self.send_idx, SITE_BYTES + 1)
        self._ghost_before = buffers(self.ghost_idx, SITE_BYTES)
        self.ghost_sites = ghosts
        self.ghost_bytes_per_window = 2 * SITE_BYTES * sum(i.size for i in self.ghost_idx.values())

    # ------------------------------------------------------------------ exchanges
    def _exchange(self, send: dict[int, np.ndarray], recv: dict[int, np.ndarray],
                  tag: int) -> None:
        MPI = self._mpi
        reqs = [self.comm.Irecv([buf, MPI.BYTE], source=q, tag=tag) for q, buf in recv.items()]
        reqs += [self.comm.Isend([buf, MPI.BYTE], dest=q, tag=tag) for q, buf in send.items()]
        MPI.Request.Waitall(reqs)

    def exchange_forward(self) -> None:
        """Owners refresh every ghost copy of their boundary sites."""
        t0 = time.perf_counter()
        for q, idx in self.send_idx.items():
            xk.pack(self.occ, self.basis0, self.disp, idx, self._send_bufs[q])
        self._exchange(self._send_bufs, self._ghost_bufs, _TAG_FORWARD)
        for q, idx in self.ghost_idx.items():
            xk.unpack(self._ghost_bufs[q], idx, self.occ, self.basis0, self.disp, False)
        self.comm_time_s += time.perf_counter() - t0

    def exchange_reverse(self) -> None:
        """Send the ghost sites this rank changed in the window back to their owners.

        Each message is the packed ghost state with one more byte per site: 1 where it differs
        from the state packed at the start of the window.
        """
        t0 = time.perf_counter()
        for q, idx in self.ghost_idx.items():
            xk.pack_changes(self.occ, self.basis0, self.disp, idx, self._ghost_before[q],
                            self._reverse_out[q])
        self._exchange(self._reverse_out, self._reverse_in, _TAG_REVERSE)
        written = np.zeros(self.block.n_sites, np.int8) if self.debug_checks else None
        for q, buf in self._reverse_in.items():
            changed = buf[:, SITE_BYTES] == 1
            if not np.any(changed):
                continue
            idx = self.send_idx[q][changed]
            if written is not None:
                self._check_reverse(q, idx, self._owned_snapshot[q][changed], written)
            xk.unpack(buf, self.send_idx[q], self.occ, self.basis0, self.disp, True)
            self._touched.append(idx)
        self.comm_time_s += time.perf_counter() - t0

    def _check_reverse(self, q: int, idx: np.ndarray, snap: np.ndarray,
                       written: np.ndarray) -> None:
        if xk.differs(self.occ, self.basis0, self.disp, idx, np.ascontiguousarray(snap)):
            raise ParallelError(f"conflict in sweep {self.sweeps_done}: rank {q} changed sites "
                                f"that their owner {self.rank} also changed in the same window",
                                field="decomposition", hint="this is a bug; report it")
        if np.any(written[idx]):
            raise ParallelError(f"conflict in sweep {self.sweeps_done}: two ranks changed the "
                                f"same site of rank {self.rank}", field="decomposition",
                                hint="this is a bug; report it")
        written[idx] = 1

    # ------------------------------------------------------------------ running
    def window_default_s(self) -> float:
        """The default window, ``1 / (z w_max)``: the mean time for the fastest vacancy to hop.

        ``w_max`` is the fastest hop rate of the resolved tables (with pair interactions, a bound:
        the KRA barrier lowered by half the most negative energy change any neighbourhood can
        give) and ``z`` the largest coordination. On the isotope couple (fcc, 2 ranks, 6 cells
        per sector) this window loses about 1 % of the hops at sector boundaries and gives D
        within 2 % of f0 c_v w a^2; the bias falls in proportion to the window.
        """
        r = self.rates
        z = int(self.block.offsets.shape[1])
        if r.use_pairs:  # bound the barrier from below: the most negative energy change
            site = r.site_energy_eV[1:]
            d_site = float(np.min(site[:, None, :] - site[:, :, None]))
            d_pair = z * (min(float(np.min(r.pair_eV)), 0.0) - max(float(np.max(r.pair_eV)), 0.0))
            lowest = np.maximum(r.kra_eV + 0.5 * (d_site + d_pair), 0.0)
            fastest = float(np.max(r.prefactor_Hz * np.exp(-lowest / r.kT_eV)))
        else:
            fastest = float(np.max(r.rate_Hz))
        return math.inf if fastest <= 0 else 1.0 / (z * fastest)

    def _refresh_vacancies(self) -> None:
        """Update the vacancy list after the exchanges (which touch boundary sites only)."""
        if self._touched is None:
            self.vac_site = np.flatnonzero(self.occ == 0).astype(np.int64)
            self.vac_of_site = np.full(self.block.n_sites, -1, np.int32)
            self.vac_of_site[self.vac_site] = np.arange(self.vac_site.size, dtype=np.int32)
        else:
            touched = np.concatenate([self.ghost_sites, *self._touched])
            self.vac_site = xk.refresh_vacancies(self.occ, self.vac_site, self.vac_of_site,
                                                 touched)
        self._touched = []

    def _activate(self, k: int) -> None:
        self.region = self.sector_regions[k]
        self._refresh_vacancies()
        self.leaf0 = 1 << max(0, math.ceil(math.log2(max(1, self.vac_site.size))))
        self.tree = np.zeros(2 * self.leaf0)
        self.slot_rate = np.zeros((self.vac_site.size, self.block.offsets.shape[1]))
        xk.build_tree_active(self.vac_site, self.slot_rate, self.tree, self.leaf0, self.occ,
                             self.region, self.block.site_class, self.block.offsets,
                             *self.tables, self.n_regions)

    def sweep(self, window_s: float) -> None:
        """Advance the whole lattice by ``window_s``: every sector active once, in random order."""
        order = np.random.default_rng(np.random.SeedSequence(
            self.seed, spawn_key=(self.replica, 2, self.sweeps_done))).permutation(self.n_sectors)
        for k in order:
            self._activate(int(k))
            for q, idx in self.ghost_idx.items():
                xk.pack(self.occ, self.basis0, self.disp, idx, self._ghost_before[q])
            if self.debug_checks:
                self._owned_snapshot = {}
                for q, idx in self.send_idx.items():
                    self._owned_snapshot[q] = np.empty((idx.size, SITE_BYTES), np.uint8)
                    xk.pack(self.occ, self.basis0, self.disp, idx, self._owned_snapshot[q])
            t0 = time.perf_counter()
            total = float(self.tree[1])
            self.clock[0] = 0.0
            self.clock[1] = (-math.log(kernels.uniform_open(self.rng)) / total
                             if total > 0 else math.inf)
            done, status = kernels.run_events(
                self.occ, self.region, self.block.site_class, self.class_basis,
                self.block.offsets, self.nbr_shift, self.block.shell.reverse, self.disp,
                self.basis0, self.vac_site, self.vac_of_site, self.slot_rate, self.tree,
                self.leaf0, self.rng, self.clock, self.event_counts_ext, *self.tables,
                np.iinfo(np.int64).max, float(window_s))
            self.kernel_time_s += time.perf_counter() - t0
            if status == kernels.STATUS_OVERFLOW:
                raise ParallelError("an atom moved more than 32000 cells: the displacement "
                                    "counters would overflow", field="--time")
            self.n_events_local += int(done)
            self.exchange_reverse()
            self.exchange_forward()
            if self.debug_checks:
                counts = self.global_species_counts()
                if not np.array_equal(counts, self.initial_counts):
                    raise ParallelError(
                        f"sweep {self.sweeps_done}: atoms per species changed from "
                        f"{self.initial_counts.tolist()} to {counts.tolist()} (a doubly occupied "
                        "or lost site)", field="decomposition", hint="this is a bug; report it")
        self.sweeps_done += 1

    # ------------------------------------------------------------------ observables
    def _owned_view(self, a: np.ndarray) -> np.ndarray:
        lx, ly, _ = self.block.cells
        shaped = a.reshape(lx, ly, self.sites_per_column, *a.shape[1:])
        sub = shaped[self.gx:self.gx + self.nx_own, self.gy:self.gy + self.ny_own]
        return np.ascontiguousarray(sub).reshape(-1, *a.shape[1:])

    def global_species_counts(self) -> np.ndarray:
        """Sites per species code (0 = vacancy) over the whole lattice (collective)."""
        local = np.bincount(self.occ[self.owned], minlength=len(self.catalog.species) + 1
                            ).astype(np.int64)
        total = np.zeros_like(local)
        self.comm.Allreduce(local, total, op=self._mpi.SUM)
        return total

    def sample(self) -> dict[str, np.ndarray]:
        """Whole-lattice profiles and tracer MSD, as :meth:`Simulation.sample` (collective)."""
        b = self.block
        defn = b.definition
        counts, sq, n_atoms = kernels.sample_observables(
            self._owned_view(self.occ), self._owned_view(self.disp),
            self._owned_view(self.basis0), np.array((self.nx_own, self.ny_own, b.cells[2]),
                                                    np.int64),
            b.layers_per_cell, b.site_layer_of_basis, defn.vectors_A,
            defn.basis_frac @ defn.vectors_A, len(self.catalog.species) + 1)
        MPI = self._mpi
        counts_all = np.zeros_like(counts)
        sq_all = np.zeros_like(sq)
        atoms_all = np.zeros_like(n_atoms)
        self.comm.Allreduce(counts, counts_all, op=MPI.SUM)
        self.comm.Allreduce(sq, sq_all, op=MPI.SUM)
        self.comm.Allreduce(n_atoms, atoms_all, op=MPI.SUM)
        per_layer = counts_all.sum(axis=0).astype(float)
        msd = np.where(atoms_all > 0, sq_all / np.maximum(atoms_all, 1), 0.0)
        return {"concentration": counts_all[1:] / per_layer,
                "vacancy_concentration": counts_all[0] / per_layer,
                "msd_A2": msd[1:], "n_atoms": atoms_all[1:]}

    def global_event_counts(self) -> np.ndarray:
        """Executed hops (S+1, R, R) of the whole run over all ranks (collective)."""
        r = self.n_regions
        ext = self.event_counts_ext
        folded = (ext[:, :r, :r] + ext[:, r:, :r] + ext[:, :r, r:] + ext[:, r:, r:]).copy()
        total = np.zeros_like(folded)
        self.comm.Allreduce(folded, total, op=self._mpi.SUM)
        return total

    def global_n_events(self) -> int:
        """Events executed by all ranks (collective)."""
        return int(self.comm.allreduce(self.n_events_local))

    def bytes_per_site(self) -> float:
        """State bytes of this rank (ghosts and sector map included) per owned site."""
        arrays = [self.occ, self.base_region, *self.sector_regions, self.sector,
                  self.block.site_class, self.disp, self.basis0]
        arrays += [getattr(self, n) for n in ("vac_of_site", "vac_site", "slot_rate", "tree")
                   if hasattr(self, n)]
        return sum(a.nbytes for a in arrays) / self.n_owned_sites

    # ------------------------------------------------------------------ checkpoints
    def fingerprint(self, window_s: float) -> str:
        """A hash of everything that fixes the run except its progress (ranks included)."""
        payload = {"catalog": self.catalog.to_json_dict(), "cells": list(self.cells),
                   "periodic_z": self.block.periodic_z, "temperature_K": self.temperature_K,
                   "vacancy_fraction": self.vacancy_fraction, "seed": self.seed,
                   "replica": self.replica, "grid": [self.grid.px, self.grid.py],
                   "window_s": window_s}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The state of this rank at a sweep boundary, enough to continue bit for bit.

        Besides the sites it holds the vacancy list in its current order and the sites that
        the last reverse exchange changed, so that the next window orders its vacancies (and
        so its random choices) exactly as an uninterrupted run does.
        """
        touched = (np.concatenate(self._touched).astype(np.int64) if self._touched
                   else np.zeros(0, np.int64))
        vac = getattr(self, "vac_site", None)
        return {"occ": self.occ, "disp": self.disp, "basis0": self.basis0, "rng": self.rng,
                "event_counts_ext": self.event_counts_ext,
                "counters": np.array([self.n_events_local, self.sweeps_done], np.int64),
                "vac_site": np.zeros(0, np.int64) if vac is None else vac,
                "touched": touched,
                "fresh": np.array([self._touched is None])}

    def restore_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Load :meth:`state_arrays` written by the same rank of an identical set-up."""
        for name, cur in self.state_arrays().items():
            if name not in arrays or (arrays[name].shape != cur.shape
                                      and name not in ("vac_site", "touched")):
                raise ParallelError(f"checkpoint array {name!r} is missing or has the wrong "
                                    "shape", field="checkpoint")
        occ, vac = arrays["occ"], arrays["vac_site"]
        n_species = len(self.catalog.species)
        bad_codes = occ.size > 0 and (int(occ.min()) < 0 or int(occ.max()) > n_species)
        # (a saved vacancy list may name ghost sites a neighbour has filled since: only the
        # range is checked)
        bad_vacancies = vac.size > 0 and not bool(arrays["fresh"][0]) and (
            int(vac.min()) < 0 or int(vac.max()) >= occ.size)
        if bad_codes or bad_vacancies:
            raise ParallelError("the checkpoint's lattice or vacancy list is damaged (species "
                                "codes or vacancy sites out of range)", field="checkpoint",
                                hint="drop --resume to start afresh")
        self.occ[:] = arrays["occ"]
        self.disp[:] = arrays["disp"]
        self.basis0[:] = arrays["basis0"]
        self.rng[:] = arrays["rng"]
        self.event_counts_ext[:] = arrays["event_counts_ext"]
        self.n_events_local, self.sweeps_done = (int(v) for v in arrays["counters"])
        self.exchange_forward()
        if bool(arrays["fresh"][0]):
            self._touched = None
            return
        self.vac_site = arrays["vac_site"].astype(np.int64)
        self.vac_of_site = np.full(self.block.n_sites, -1, np.int32)
        self.vac_of_site[self.vac_site] = np.arange(self.vac_site.size, dtype=np.int32)
        self._touched = [arrays["touched"].astype(np.int64)]

