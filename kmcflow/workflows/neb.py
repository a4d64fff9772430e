"""Climbing-image NEB on ASE images: interpolation, two stages, barriers and failure reasons.

The band is interpolated with IDPP (Smidstrup et al., J. Chem. Phys. 140, 214106 (2014)) under
the minimum-image convention, relaxed first as a plain NEB to a loose force threshold, then with
the climbing image (Henkelman, Uberuaga and Jonsson, J. Chem. Phys. 113, 9901 (2000)) to the
final one; the tangent method is always passed to ASE explicitly (its default changed in 3.27).
Every image has its own calculator (file-based DFT codes must not share a folder), and every
force call is counted.

Barriers are read from the climbing image: forward = E_saddle - E_initial, reverse =
E_saddle - E_final. A failed band is reported with one reason from
:data:`kmcflow.workflows.results.FAILURE_REASONS` rather than raised, so a campaign can list it.
The settings (:class:`~kmcflow.workflows.settings.NebSettings`) and the result
(:class:`~kmcflow.workflows.results.HopNebResult`) are the ones the jobflow ``NebMaker`` uses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kmcflow.errors import WorkflowError
from kmcflow.readers import NPZ_ERRORS
from kmcflow.workflows.results import HopNebResult
from kmcflow.workflows.resume import OptimizerState
from kmcflow.workflows.settings import (  # NebSettings' home; imported from here too
    NebSettings,
    band_optimizer,
)


def counted(inner, counter: list[int]):
    """Return a calculator that delegates to ``inner`` and adds 1 to ``counter[0]`` per call."""
    from ase.calculators.calculator import Calculator, all_changes

    class Counted(Calculator):
        implemented_properties = ("energy", "forces")

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            Calculator.calculate(self, atoms, properties, system_changes)
            inner.calculate(self.atoms, ["energy", "forces"], system_changes)
            self.results = {"energy": inner.results["energy"],
                            "forces": inner.results["forces"]}
            counter[0] += 1

    return Counted()


MIN_HOP_DISPLACEMENT_A = 0.01
"""Endpoints whose atoms all lie closer than this (Angstrom) are one structure, not a hop."""


def check_endpoints(initial, final, files: tuple[str, str] | None = None) -> None:
    """Refuse endpoints that cannot be the two ends of one hop.

    They must hold the same atoms in the same order in the same cell, and must differ (no
    atom moving is a zero-length hop, which would "succeed"). ``files`` names them.
    """
    where = f"{files[0]} and {files[1]}" if files else None
    if len(initial) != len(final):
        raise WorkflowError(f"the endpoints have {len(initial)} and {len(final)} atoms",
                            file=where, field="endpoints",
                            hint="write both from the same supercell")
    if initial.get_chemical_symbols() != final.get_chemical_symbols():
        raise WorkflowError("the endpoints hold different atoms (or the same in another order)",
                            file=where, field="endpoints", hint="the final structure must "
                            "list the same atoms in the same order")
    if not np.allclose(initial.cell.array, final.cell.array, atol=1e-6):
        raise WorkflowError("the endpoints have different cells", file=where,
                            field="endpoints")
    if len(initial):
        d = final.get_positions() - initial.get_positions()
        frac = np.linalg.solve(initial.cell.array.T, d.T).T if initial.cell.rank == 3 else None
        if frac is not None:
            frac -= np.round(frac)
            d = frac @ initial.cell.array
        if float(np.max(np.linalg.norm(d, axis=1))) < MIN_HOP_DISPLACEMENT_A:
            raise WorkflowError(f"the endpoints are the same structure (no atom moves "
                                f"{MIN_HOP_DISPLACEMENT_A} A or more): not a hop", file=where,
                                field="endpoints", hint="give the final structure of the hop")


def interpolate_band(initial, final, n_images: int, method: str | None = None) -> list:
    """Return ``[initial, n_images intermediate images, final]`` (copies, constraints kept).

    ``method``: ``idpp`` or ``linear``; None is :class:`NebSettings`' default.
    """
    from ase.mep import NEB

    method = method or NebSettings().interpolation
    check_endpoints(initial, final)
    images = [initial.copy()] + [initial.copy() for _ in range(n_images)] + [final.copy()]
    for im in images:
        im.set_constraint([c.copy() for c in initial.constraints])
    NEB(images, method="improvedtangent").interpolate(method=method, mic=True,
                                                      apply_constraint=False)
    return images


def moved_index(initial, final) -> int:
    """Index of the atom that moves most between the endpoints (minimum image)."""
    d = final.get_positions() - initial.get_positions()
    frac = np.linalg.solve(initial.cell.array.T, d.T).T
    frac -= np.round(frac)
    return int(np.argmax(np.linalg.norm(frac @ initial.cell.array, axis=1)))


def saddle_tangent(images, index: int) -> np.ndarray:
    """Unit tangent at an image: the central difference of its neighbours (minimum image)."""
    a, b = images[index - 1], images[index + 1]
    d = b.get_positions() - a.get_positions()
    frac = np.linalg.solve(a.cell.array.T, d.T).T
    frac -= np.round(frac)
    t = frac @ a.cell.array
    norm = np.linalg.norm(t)
    return t / norm if norm > 0 else t


class BatchedBand:
    """Evaluates every interior image of a band in one call of ``evaluate_many``.

    ASE's NEB asks the images for forces one after another; the first request after the band
    moved evaluates all interior images that moved in one batch (one forward pass of a
    machine-learned potential over several structures) and the others read the cached
    results. ``evaluate_many(list of Atoms) -> list of (energy_eV, forces)``.
    """

    def __init__(self, images: list, evaluate_many: Callable[[list], list], counter: list[int]):
        self.images = images
        self.evaluate_many = evaluate_many
        self.counter = counter
        self.cache: dict[int, tuple[np.ndarray, float, np.ndarray]] = {}
        self.batches = 0

    def result(self, index: int, atoms) -> tuple[float, np.ndarray]:
        """Energy and forces of image ``index`` at the positions of ``atoms``."""
        cached = self.cache.get(index)
        if cached is None or not np.array_equal(cached[0], atoms.positions):
            stale = [i for i in range(1, len(self.images) - 1)
                     if i not in self.cache
                     or not np.array_equal(self.cache[i][0], self.images[i].positions)]
            if index not in stale:
                stale.append(index)
            batch = [self.images[i] if i != index else atoms for i in stale]
            for i, at, (energy, forces) in zip(stale, batch, self.evaluate_many(batch),
                                               strict=True):
                self.cache[i] = (at.positions.copy(), float(energy), np.asarray(forces))
            self.counter[0] += len(stale)
            self.batches += 1
        _, energy, forces = self.cache[index]
        return energy, forces

    def calculator(self, index: int):
        """An ASE calculator for image ``index`` that reads from the batch."""
        from ase.calculators.calculator import Calculator, all_changes

        band = self

        class Member(Calculator):
            implemented_properties = ("energy", "forces")

            def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
                Calculator.calculate(self, atoms, properties, system_changes)
                energy, forces = band.result(index, self.atoms)
                self.results = {"energy": energy, "forces": forces}

        return Member()


BAND_IDENTITY_FIELDS = ("spring_eV_per_A2", "method", "optimizer", "interpolation")
"""The band settings a checkpoint belongs to (thresholds and step limits may change on resume)."""
ENDPOINT_TOLERANCE_A = 1e-3
"""How far (Angstrom) an endpoint atom may lie from the checkpoint's own and still be its band."""


def band_identity(images: list, settings: NebSettings,
                  extra: dict[str, Any] | None = None) -> str:
    """Digest of what makes a band this band, for its checkpoint.

    Species, cell, image count, band settings and ``extra`` (the calculator config). The
    endpoint positions are checked against the checkpoint's saved band with a tolerance
    (:data:`ENDPOINT_TOLERANCE_A`) instead, so that no rounding boundary splits one band in two.
    """
    import hashlib
    import json

    ends = images[0]
    text = json.dumps({"species": ends.get_chemical_symbols(),
                       "cell_A": np.round(np.asarray(ends.cell.array, float), 4).tolist(),
                       "n_images": len(images) - 2,
                       "settings": {k: getattr(settings, k) for k in BAND_IDENTITY_FIELDS},
                       "extra": extra or {}}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _save_band(folder: Path, images: list, stage: str, force_calls: int, identity: str) -> None:
    """Write the band positions, stage, force calls spent so far (all runs) and identity.

    Each file is written atomically, so a kill never leaves half a file.
    """
    from kmcflow.atomic_io import write_json, write_npz

    write_npz(folder / "band.npz", positions=np.array([im.positions for im in images]))
    write_json(folder / "band_state.json", {"stage": stage, "n_images": len(images),
                                            "force_calls": int(force_calls),
                                            "identity": identity})


def _endpoint_shift_A(images: list, saved: np.ndarray) -> float:
    """Largest distance (minimum image, Angstrom) of an endpoint atom from the saved band's."""
    cell = images[0].cell.array
    worst = 0.0
    for k in (0, -1):
        d = saved[k] - images[k].positions
        frac = np.linalg.solve(cell.T, d.T).T
        frac -= np.round(frac)
        worst = max(worst, float(np.max(np.linalg.norm(frac @ cell, axis=1), initial=0.0)))
    return worst


def _load_band(folder: Path, images: list, identity: str,
               hop_identified: bool = False) -> tuple[dict[str, Any] | None, str | None]:
    """Put a saved band's interior images into ``images``; return (its state, a note).

    The state is None when there is no band to continue. A checkpoint of another band (other
    endpoints, atoms, cell, image count, band settings or calculator) is refused with a
    :class:`WorkflowError` that names the folder: continuing it would report that band's
    barrier as this one's. When the identity names the hop's own unrelaxed endpoints
    (``hop_identified``), endpoints that moved mean the same hop whose endpoint relaxation went
    on after a kill: the saved band is discarded (the note says so) and the band starts
    afresh. The endpoints are never overwritten.
    """
    import json

    state_file, band_file = folder / "band_state.json", folder / "band.npz"
    if not (state_file.is_file() and band_file.is_file()):
        return None, None
    try:
        state = json.loads(state_file.read_text())
        with np.load(band_file, allow_pickle=False) as data:
            positions = data["positions"]
    except (*NPZ_ERRORS, RecursionError):  # unreadable: start afresh
        return None, "discarded an unreadable saved band"
    why = None
    if not isinstance(state, dict) or state.get("identity") is None:
        why = "it records no band identity (written by an older kmcflow)"
    elif state["identity"] != identity:
        why = "its hop, atoms, cell, image count, band settings or calculator differ"
    elif positions.shape != (len(images), len(images[0]), 3):
        why = "its band has another shape"
    else:
        shift = _endpoint_shift_A(images, positions)
        if shift > ENDPOINT_TOLERANCE_A and hop_identified:
            return None, (f"discarded the saved band: this hop's relaxed endpoints moved by "
                          f"{shift:.3g} A since it was saved (their relaxation continued)")
        if shift > ENDPOINT_TOLERANCE_A:
            why = f"its endpoints differ (an atom by {shift:.3g} A)"
    if why is not None:
        raise WorkflowError(f"the NEB checkpoint belongs to another band: {why}",
                            file=str(folder), hint="give this band its own checkpoint folder, "
                            "or delete this one to start the band afresh")
    for im, pos in zip(images[1:-1], positions[1:-1], strict=True):
        im.positions = pos
    return state, None


def _fixed_count(atoms) -> int:
    """Atoms held by ``FixAtoms`` constraints."""
    from ase.constraints import FixAtoms

    return len({int(i) for c in atoms.constraints if isinstance(c, FixAtoms)
                for i in c.get_indices()})


def relax_band(images: list, calculator_for: Callable[[int], Any],
               settings: NebSettings, evaluate_many: Callable[[list], list] | None = None,
               checkpoint: str | Path | None = None,
               identity: dict[str, Any] | None = None,
               expensive_calls: bool = True) -> HopNebResult:
    """Relax an interpolated band (plain NEB, then climbing image) and analyse it.

    The result keeps the relaxed ASE images (``result.atoms()``); a failure is its
    ``failure_reason`` and ``failure_message``, not an exception.

    ``calculator_for(i)`` returns a fresh ASE calculator for image ``i`` (the endpoints always
    use it); with ``evaluate_many`` the interior images are evaluated in batches
    (:class:`BatchedBand`). With a ``checkpoint`` folder the band is saved after every
    optimizer step (the optimizer's own state every few minutes and whenever
    :func:`kmcflow.workflows.resume.flush_all` runs: :class:`~kmcflow.workflows.resume.
    OptimizerState`), and a run that finds a saved band of the same band there continues
    from it, in the stage it had reached, instead of starting over: a job killed by its
    walltime loses at most one step. ``identity`` (the calculator config and, under ``hop``,
    digests of the hop's unrelaxed endpoints) joins the band settings in the checkpoint's
    identity; a checkpoint of another band is refused (:func:`_load_band`).
    ``expensive_calls`` (a DFT code) keeps ``optimizer: auto`` on BFGS whatever the band's size
    (:func:`~kmcflow.workflows.settings.band_optimizer`).
    """
    import ase.optimize
    from ase.mep import NEB

    counter = [0]
    reason, message, converged = None, "", False
    # the settings as run: the band's own image count, and whether it was batched
    free = sum(len(im) - _fixed_count(im) for im in images[1:-1])
    optimizer = band_optimizer(settings.optimizer, 3 * free, expensive_calls)
    record = {**settings.model_dump(mode="json"), "n_images": len(images) - 2,
              "climbing_image": True, "batched": evaluate_many is not None,
              "optimizer": optimizer}
    if settings.optimizer == "auto":
        record["optimizer_choice"] = "auto"
    tags = ["kmcflow", f"method:{settings.method}", "climbing_image"]
    try:
        batched = BatchedBand(images, evaluate_many, counter) if evaluate_many else None
        for i, im in enumerate(images):
            interior = 0 < i < len(images) - 1
            im.calc = (batched.calculator(i) if batched is not None and interior
                       else counted(calculator_for(i), counter))
        energies0 = [images[0].get_potential_energy(), images[-1].get_potential_energy()]
        if settings.symmetric and abs(energies0[0] - energies0[1]) > settings.endpoint_tolerance_eV:
            reason = "unequal_endpoints"
            message = (f"endpoint energies differ by {energies0[1] - energies0[0]:+.4f} eV on a "
                       "symmetric hop")
        folder = None if checkpoint is None else Path(checkpoint)
        stage, calls_before = None, 0
        band_id = band_identity(images, settings, identity)
        if folder is not None:
            from kmcflow.outputs import MARKER, write_marker

            folder.mkdir(parents=True, exist_ok=True)
            if not (folder / MARKER).exists():
                write_marker(folder, "neb_checkpoint")
            state, note = _load_band(folder, images, band_id,
                                     hop_identified=bool((identity or {}).get("hop")))
            if note:
                record["checkpoint_note"] = note
            if state is None:  # no band to continue: optimizer states left here are not ours
                for stale in [*folder.glob("optimizer_*.npz"), folder / "band.npz",
                              folder / "band_state.json"]:
                    stale.unlink(missing_ok=True)
            else:
                stage, calls_before = str(state["stage"]), int(state.get("force_calls", 0))
            record["resumed_from_stage"] = stage
            record["force_calls_before_resume"] = calls_before
        band = NEB(images, k=settings.spring_eV_per_A2, climb=False, method=settings.method)
        opt_cls = getattr(ase.optimize, optimizer)

        def run(name: str, fmax: float) -> bool:
            opt = opt_cls(band, logfile=None)
            if folder is None:
                return bool(opt.run(fmax=fmax, steps=settings.steps))
            def save() -> None:
                _save_band(folder, images, name, calls_before + counter[0], band_id)

            saved = OptimizerState(folder / f"optimizer_{name}.npz", on_flush=save)
            saved.restore(opt)
            saved.attach(opt)
            opt.attach(save, interval=1)
            try:
                return bool(opt.run(fmax=fmax, steps=settings.steps))
            finally:
                saved.close()

        if stage != "climb":
            run("plain", settings.plain_fmax_eV_per_A)
        band.climb = True
        converged = run("climb", settings.fmax_eV_per_A)
        energies = [float(im.get_potential_energy()) for im in images]
    except WorkflowError:
        raise
    except Exception as exc:
        return HopNebResult.from_images(
            images, state="failed", neb_method="climbing_image", force_calls=counter[0],
            failure_reason="calculator_error",
            failure_message=f"{type(exc).__name__}: {exc}", settings=record, tags=tags)
    interior = int(np.argmax(energies[1:-1])) + 1
    forward = energies[interior] - energies[0]
    reverse = energies[interior] - energies[-1]
    if energies[interior] <= max(energies[0], energies[-1]) + 1e-6:
        reason = reason or "no_interior_maximum"
        message = message or "the highest image is an endpoint: no saddle between them"
    if not converged and reason is None:
        reason = "not_converged"
        message = f"climbing-image stage did not reach fmax {settings.fmax_eV_per_A} eV/A " \
                  f"in {settings.steps} steps"
    return HopNebResult.from_images(
        images, energies=energies, forward_barrier=float(forward),
        reverse_barrier=float(reverse), state="successful" if reason is None else "failed",
        neb_method="climbing_image",
        force_calls=counter[0], converged=converged, failure_reason=reason,
        failure_message=message, saddle_index=interior, settings=record, tags=tags,
        tangent=saddle_tangent(images, interior))


def spline_barrier(energies: list[float]) -> dict[str, float]:
    """Barriers from emmet's clamped cubic spline of the image energies (for comparison)."""
    from emmet.core.neb import BarrierAnalysis

    analysis = BarrierAnalysis.from_energies(energies)
    return {"forward_barrier_eV": float(analysis.forward_barrier),
            "reverse_barrier_eV": float(analysis.reverse_barrier),
            "ts_frame_index": float(analysis.ts_frame_index)}
