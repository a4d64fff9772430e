"""Checkpoints that let a killed relaxation or band continue where it stopped.

A relaxation run with :func:`saving_positions` writes the positions of every structure its
calculator evaluates to ``relax_<digest>.npz`` (atomically: a kill never leaves half a file),
where the digest names the *input* structure. When the same input is relaxed again (the job
was killed and resubmitted), :func:`resume_positions` hands back the last evaluated positions
and the relaxation starts there instead of at the input. The NEB band has its own checkpoint
(:func:`kmcflow.workflows.neb.relax_band`); its optimizer state (for BFGS the Hessian: 30 MB
of JSON per step for a 200-atom band when ASE writes its own restart file) is kept in memory by
:class:`OptimizerState` and written as compressed ``.npz`` every few minutes and when
:func:`flush_all` is called: the batch task calls it from its ``SIGTERM``/``SIGUSR1`` trap,
so a job killed at its walltime saves the state of the step it had reached.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kmcflow.readers import NPZ_ERRORS


def structure_digest(atoms) -> str:
    """A short hash of species, cell and positions (rounded to 1e-6 Angstrom)."""
    h = hashlib.sha256()
    h.update(" ".join(atoms.get_chemical_symbols()).encode())
    h.update(np.round(np.asarray(atoms.cell.array, float), 6).tobytes())
    h.update(np.round(np.asarray(atoms.positions, float), 6).tobytes())
    return h.hexdigest()[:16]


def checkpoint_path(folder: str | Path, atoms) -> Path:
    """Where the relaxation of ``atoms`` (the input structure) keeps its last positions."""
    return Path(folder) / f"relax_{structure_digest(atoms)}.npz"


def resume_positions(path: Path, atoms) -> int | None:
    """Put the saved positions into ``atoms`` if ``path`` holds a fitting set.

    Returns the force calls the killed runs had spent (0 for a checkpoint that does not
    record them), or None when there was nothing to resume from.
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            positions = data["positions"]
            calls = int(data["force_calls"]) if "force_calls" in data.files else 0
    except NPZ_ERRORS:  # unreadable: start from the input
        return None
    if positions.shape != (len(atoms), 3) or not np.all(np.isfinite(positions)):
        return None
    atoms.positions = positions
    return max(calls, 0)


def saving_positions(inner, path: Path, calls_before: int = 0):
    """Wrap an ASE calculator so that every evaluated structure's positions are saved.

    The file also counts the force calls of every run of this relaxation so far
    (``calls_before`` from the runs a kill interrupted, plus this one's).
    """
    from ase.calculators.calculator import Calculator, all_changes

    from kmcflow.atomic_io import write_npz

    path.parent.mkdir(parents=True, exist_ok=True)
    calls = [calls_before]

    class Saving(Calculator):
        implemented_properties = ("energy", "forces", "free_energy")

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            Calculator.calculate(self, atoms, properties, system_changes)
            inner.calculate(self.atoms, ["energy", "forces"], system_changes)
            self.results = {"energy": inner.results["energy"],
                            "free_energy": inner.results.get("free_energy",
                                                             inner.results["energy"]),
                            "forces": inner.results["forces"]}
            calls[0] += 1
            write_npz(path, positions=np.asarray(self.atoms.positions),
                      force_calls=np.array(calls[0]))

    return Saving()


_FLUSHERS: list[Callable[[], None]] = []


def flush_all() -> None:
    """Write every registered in-memory checkpoint now (called from the signal trap)."""
    for flush in list(_FLUSHERS):
        flush()


class OptimizerState:
    """An ASE optimizer's restart data, kept in memory, written every ``interval_s`` and on flush.

    ASE optimizers hand their state to ``dump`` after every step and take it back through
    ``load``/``read``; :meth:`attach` catches the former, :meth:`restore` feeds the latter.
    ``on_flush`` runs before each write: a band saves its positions there, so the positions
    and the state on disk belong to the same step even when a signal interrupts the force
    evaluation that follows it.
    """

    def __init__(self, path: Path, interval_s: float = 300.0,
                 on_flush: Callable[[], None] | None = None):
        self.path = Path(path)
        self.interval_s = interval_s
        self.on_flush = on_flush  # saves what must match the state (the band's positions)
        self.data: tuple | None = None
        self.dirty = False
        self.written = time.monotonic()
        _FLUSHERS.append(self.flush)

    def attach(self, optimizer) -> None:
        """Take the optimizer's state after every step instead of letting it write a file."""
        optimizer.dump = self.keep

    def keep(self, data) -> None:
        """Hold the newest state; write it if the last write is ``interval_s`` old."""
        self.data = tuple(data)
        self.dirty = True
        if time.monotonic() - self.written >= self.interval_s:
            self.flush()

    def flush(self) -> None:
        """Write the newest state (atomically)."""
        from kmcflow.atomic_io import write_npz

        if self.data is None or not self.dirty:
            return
        arrays, nones = {}, []
        for k, item in enumerate(self.data):
            if item is None:
                nones.append(k)
            else:
                arrays[f"item_{k}"] = np.asarray(item)
        arrays["manifest"] = np.asarray(json.dumps({"n": len(self.data), "none": nones}))
        if self.on_flush is not None:
            self.on_flush()
        write_npz(self.path, **arrays)
        self.dirty = False
        self.written = time.monotonic()

    def restore(self, optimizer) -> bool:
        """Give a saved state to a new optimizer (its ``read``); say whether there was one."""
        if not self.path.is_file():
            return False
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                manifest = json.loads(str(saved["manifest"]))
                data = tuple(None if k in manifest["none"] else
                             (saved[f"item_{k}"].item() if saved[f"item_{k}"].ndim == 0
                              else saved[f"item_{k}"]) for k in range(manifest["n"]))
            optimizer.load = lambda: data
            optimizer.read()
        except (*NPZ_ERRORS, TypeError, AssertionError):
            optimizer.initialize()  # unreadable or not this optimizer's: start its state afresh
            return False
        self.data = data
        return True

    def close(self) -> None:
        """Write the state and stop listening for flushes."""
        self.flush()
        if self.flush in _FLUSHERS:
            _FLUSHERS.remove(self.flush)
