"""Force calls and wall time to a converged CI-NEB: ASE's defaults against kmcflow's (not a test).

Cases of the workflows issue: ASE's Au adatom on Al(100) tutorial and an EMT vacancy hop in
fcc Cu (2x2x2 conventional cells). Both sides start from the same relaxed endpoints and stop
at the same climbing-image threshold (0.05 eV/A):

- *ASE defaults*: linear interpolation, ``NEB(images, climb=True)`` with ASE's default spring
  and tangent, BFGS (the optimizer of ASE's tutorial), one stage;
- *kmcflow*: IDPP interpolation with the minimum-image convention, a plain stage to 0.3 eV/A,
  then the climbing image (:func:`kmcflow.workflows.neb.relax_band`).

Force calls count every energy/force evaluation of the band, endpoints included. The target
of the issue is no more force calls than ASE's defaults.

With the ``ml`` extra (``--ml``): CHGNet on the Li vacancy hop of antifluorite Li2O (11 atoms),
the interior images of the interpolated band evaluated one by one (a CHGNetCalculator per
image, as ASE's NEB does) against one batched forward pass over all of them
(:func:`kmcflow.workflows.calculators.batch_evaluator`); seconds per band evaluation, best of
``--repeat``, one torch thread. Target: batched at least 1.5x faster.

``--overhead``: a large band on a cheap potential, the fcc Cu vacancy hop in a 4x4x4 cell
(255 atoms x 4 images, 3060 free coordinates) with EMT: milliseconds of optimizer work per
step (wall time of a step less the force evaluation) for BFGS, the default before
``optimizer: auto``, and for what ``auto`` picks there, and both bands relaxed to convergence
(force calls, wall time, barrier). Target of the large-bands issue: milliseconds, not seconds,
and the same barrier within 0.02 eV.

Usage: python benchmarks/bench_neb.py [--images N] [--ml] [--repeat R] [--overhead] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

from ase.calculators.emt import EMT
from ase.mep import NEB
from ase.optimize import BFGS

from kmcflow.workflows.neb import NebSettings, counted, interpolate_band, relax_band
from kmcflow.workflows.reference_hops import au_on_al100, bulk_vacancy_hop


def relaxed(atoms):
    atoms = atoms.copy()
    atoms.calc = EMT()
    BFGS(atoms, logfile=None).run(fmax=0.01)
    atoms.calc = None
    return atoms


def ase_defaults(initial, final, n_images: int, fmax: float) -> dict:
    counter = [0]
    images = [initial.copy()] + [initial.copy() for _ in range(n_images)] + [final.copy()]
    for im in images:
        im.set_constraint([c.copy() for c in initial.constraints])
        im.calc = counted(EMT(), counter)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ASE warns that the default method changed
        band = NEB(images, climb=True)
    band.interpolate()
    converged = BFGS(band, logfile=None).run(fmax=fmax, steps=1000)
    energies = [im.get_potential_energy() for im in images]
    return {"force_calls": counter[0], "wall_s": time.perf_counter() - start,
            "barrier_eV": max(energies) - energies[0], "converged": bool(converged)}


def kmcflow_defaults(initial, final, n_images: int, fmax: float) -> dict:
    start = time.perf_counter()
    images = interpolate_band(initial, final, n_images)
    out = relax_band(images, lambda i: EMT(), NebSettings(n_images=n_images, fmax_eV_per_A=fmax,
                                                          optimizer="BFGS"))
    return {"force_calls": out.force_calls, "wall_s": time.perf_counter() - start,
            "barrier_eV": out.forward_barrier, "converged": out.converged}


def chgnet_band_evaluation(n_images: int, repeat: int) -> dict:
    import numpy as np
    import torch

    from kmcflow.workflows.calculators import (
        batch_evaluator,
        load_calculator_config,
        make_calculator,
    )

    torch.set_num_threads(1)
    config = load_calculator_config("chgnet")
    band = interpolate_band(*bulk_vacancy_hop("Li2O", "Li", 4.5), n_images)
    interior = band[1:-1]
    calcs = [make_calculator(config, im) for im in interior]
    many = batch_evaluator(config)
    rng = np.random.default_rng(0)
    one, batched, diff = [], [], 0.0
    for _ in range(repeat):
        for im in interior:  # a new geometry each round, as in an optimisation step
            im.positions += rng.normal(0, 0.01, im.positions.shape)
        start = time.perf_counter()
        single = []
        for im, calc in zip(interior, calcs, strict=True):
            im.calc = calc
            single.append(im.get_forces().copy())
            im.calc = None
        one.append(time.perf_counter() - start)
        start = time.perf_counter()
        results = many(interior)
        batched.append(time.perf_counter() - start)
        diff = max(diff, max(float(np.abs(f - r[1]).max()) for f, r in zip(single, results,
                                                                           strict=True)))
    return {"images": n_images, "atoms": len(interior[0]), "one_by_one_s": min(one),
            "batched_s": min(batched), "speedup": min(one) / min(batched),
            "max_force_difference_eV_per_A": diff}


def optimizer_overhead(n_images: int, fmax: float, steps: int = 5) -> list[dict]:
    """Per-step optimizer time and a converged band, BFGS against ``auto``, 255-atom Cu hop."""
    import ase.optimize

    from kmcflow.workflows.settings import band_optimizer

    ini, fin = (relaxed(a) for a in bulk_vacancy_hop("Cu", min_image_distance_A=14.0))
    coordinates = 3 * len(ini) * n_images
    rows = []
    for label, name in (("BFGS (before)", "BFGS"),
                        ("auto (after)", band_optimizer("auto", coordinates, False))):
        images = interpolate_band(ini, fin, n_images)
        for im in images:
            im.calc = EMT()
        band = NEB(images, k=0.1, method="improvedtangent")
        opt = getattr(ase.optimize, name)(band, logfile=None)
        force_s = total_s = 0.0
        for _ in range(steps):
            t0 = time.perf_counter()
            band.get_forces()  # cached: the step below reuses them
            t1 = time.perf_counter()
            opt.step()
            total_s += time.perf_counter() - t0
            force_s += t1 - t0
        start = time.perf_counter()
        out = relax_band(interpolate_band(ini, fin, n_images), lambda i: EMT(),
                         NebSettings(n_images=n_images, fmax_eV_per_A=fmax, optimizer=name),
                         expensive_calls=False)
        rows.append({"case": f"EMT Cu vacancy hop, {len(ini)} atoms x {n_images} images",
                     "settings": f"{label}: {name}", "coordinates": coordinates,
                     "optimizer_ms_per_step": 1e3 * (total_s - force_s) / steps,
                     "forces_ms_per_step": 1e3 * force_s / steps,
                     "force_calls": out.force_calls, "wall_s": time.perf_counter() - start,
                     "barrier_eV": out.forward_barrier, "converged": out.converged})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=4, help="intermediate images")
    parser.add_argument("--fmax", type=float, default=0.05, help="eV/Angstrom")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--ml", action="store_true", help="also the CHGNet batch comparison")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of the CHGNet timing")
    parser.add_argument("--overhead", action="store_true",
                        help="also the optimizer overhead of a 255-atom EMT band")
    args = parser.parse_args()
    rows = []
    for name, make in (("EMT Au on Al(100)", au_on_al100),
                       ("EMT fcc Cu vacancy hop", bulk_vacancy_hop)):
        ini, fin = (relaxed(a) for a in make())
        for label, run in (("ASE defaults", ase_defaults), ("kmcflow", kmcflow_defaults)):
            rows.append({"case": name, "settings": label,
                         **run(ini, fin, args.images, args.fmax)})
    ml = chgnet_band_evaluation(args.images, args.repeat) if args.ml else None
    large = optimizer_overhead(args.images, args.fmax) if args.overhead else None
    if args.json:
        print(json.dumps({"neb": rows, "chgnet_batch": ml, "large_band": large}, indent=2))
        return
    print(f"{'case':26s} {'settings':14s} {'force calls':>11s} {'wall s':>7s} "
          f"{'barrier eV':>10s} converged")
    for r in rows:
        print(f"{r['case']:26s} {r['settings']:14s} {r['force_calls']:11d} {r['wall_s']:7.2f} "
              f"{r['barrier_eV']:10.4f} {r['converged']}")
    for case in dict.fromkeys(r["case"] for r in rows):
        base, ours = (r for r in rows if r["case"] == case)
        ratio = ours["force_calls"] / base["force_calls"]
        verdict = "meets" if ratio <= 1.0 else "misses"
        print(f"{case}: kmcflow/ASE force calls = {ratio:.2f} ({verdict} the target <= 1)")
    for r in large or []:
        print(f"{r['case']}, {r['settings']}: optimizer {r['optimizer_ms_per_step']:.1f} ms/step "
              f"(forces {r['forces_ms_per_step']:.0f} ms/step); converged band: "
              f"{r['force_calls']} force calls, {r['wall_s']:.1f} s, barrier "
              f"{r['barrier_eV']:.4f} eV, converged {r['converged']}")
    if ml:
        verdict = "meets" if ml["speedup"] >= 1.5 else "misses"
        print(f"CHGNet band of {ml['images']} images x {ml['atoms']} atoms: one by one "
              f"{ml['one_by_one_s']:.3f} s, batched {ml['batched_s']:.3f} s per evaluation, "
              f"speed-up {ml['speedup']:.2f}x ({verdict} the target >= 1.5x); largest force "
              f"difference {ml['max_force_difference_eV_per_A']:.1e} eV/A")


if __name__ == "__main__":
    main()
