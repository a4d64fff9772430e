"""Warm starts: a cheap calculator relaxes a hop first, the expensive one refines it.

A campaign's cost is the expensive calculator's force calls (DFT: minutes to hours each). A
cheap calculator (a universal potential such as CHGNet, EMT, or the same DFT code at coarse
settings) already knows the rough shape of the band, so:

1. both endpoints are relaxed with the cheap calculator, then with the expensive one from
   there (a few expensive steps instead of a full relaxation);
2. the band is interpolated between the cheap endpoints and relaxed with the cheap calculator
   (plain stage, then climbing image, to the band's thresholds);
3. the cheap band's interior images are carried onto the expensive endpoints
   (:func:`carry_band`) and relaxed with the expensive calculator, which alone judges
   convergence, for every image, as for a band without a warm start.

A cheap band that fails (no interior maximum, not converged) is still a better first guess
than the interpolation; its state is recorded in the hop's ``warm_start`` record, never read
as a barrier. The expensive calls are the hop's ``force_calls``, the cheap ones its
``warm_start_force_calls``. The warm-start calculator is the ``warm_start`` field of the
calculator config (:class:`~kmcflow.workflows.calculators.CalculatorConfig`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kmcflow.workflows.results import HopNebResult, RelaxResult


def _mic(delta: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Minimum-image displacements in a (fully periodic or slab) cell."""
    frac = np.linalg.solve(cell.T, delta.T).T
    frac -= np.round(frac)
    return frac @ cell


def carry_band(cheap_images: list, initial, final) -> list:
    """The cheap band's images with their endpoints replaced by ``initial`` and ``final``.

    Each interior image ``k`` of ``n`` moves by the endpoints' own shifts (expensive minus
    cheap, minimum image) weighted by its place along the band, ``(1 - s) d_initial +
    s d_final`` with ``s = k / (n + 1)``, so that a calculator with another equilibrium
    geometry starts from a band that joins its own endpoints. Constraints are the initial
    endpoint's; the images are copies.
    """
    n = len(cheap_images) - 2
    cell = np.asarray(initial.cell.array, float)
    d_initial = _mic(initial.positions - cheap_images[0].positions, cell)
    d_final = _mic(final.positions - cheap_images[-1].positions, cell)
    band = [initial.copy()]
    for k, image in enumerate(cheap_images[1:-1], start=1):
        s = k / (n + 1)
        moved = initial.copy()
        moved.positions = image.positions + (1 - s) * d_initial + s * d_final
        band.append(moved)
    band.append(final.copy())
    for im in band:
        im.calc = None
        im.set_constraint([c.copy() for c in initial.constraints])
    return band


def warm_start_record(name: str, initial: RelaxResult, final: RelaxResult,
                      band: HopNebResult) -> dict[str, Any]:
    """What the warm start did, for the hop's result (JSON-ready)."""
    return {"calculator": name,
            "force_calls": int(initial.force_calls + final.force_calls + band.force_calls),
            "endpoint_force_calls": int(initial.force_calls + final.force_calls),
            "neb_force_calls": int(band.force_calls),
            "forward_barrier_eV": band.forward_barrier,
            "neb_converged": bool(band.converged),
            "failure_reason": band.failure_reason}
