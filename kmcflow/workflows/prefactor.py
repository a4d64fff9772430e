"""Harmonic transition state theory prefactors (Vineyard) from finite-difference Hessians.

Vineyard (J. Phys. Chem. Solids 3, 121 (1957)): nu = prod_i nu_i(initial) / prod_j nu_j(saddle)
over the 3N real normal modes of the initial state and the 3N - 1 real modes of the saddle.
Hessians come from ``ase.vibrations.Vibrations`` (central differences) over the moving atom and,
optionally, the free atoms within ``radius_A`` of it at the initial or the final state (one set
for all three states, so a symmetric hop has equal forward and reverse prefactors); the rest
of the crystal is held fixed, so there are no zero translational modes to remove.

Routes (recorded with the result):

- ``vineyard``: the saddle Hessian has exactly one imaginary mode;
- ``vineyard_tangent_projected``: it has none (a flat or shallow saddle, common with
  machine-learned potentials and symmetric hops): the mass-weighted saddle Hessian is
  projected orthogonal to the NEB tangent, and its 3N - 1 remaining modes are used;
- ``fallback``: more than one imaginary mode (or none and no tangent), and a fallback was asked
  for: nu = 1e13 Hz, flagged. Without a fallback the result carries a failure instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kmcflow.workflows.results import PrefactorResult
from kmcflow.workflows.settings import PrefactorSettings

# 1 eV / (Angstrom^2 amu) in s^-2
_EV_PER_A2_AMU_IN_S2 = 1.602176634e-19 / (1e-20 * 1.66053906660e-27)
FALLBACK_PREFACTOR_HZ = 1e13


def vibration_indices(atoms, moving_index: int, radius_A: float) -> list[int]:
    """The moving atom plus the free atoms within ``radius_A`` of it (minimum image)."""
    from ase.constraints import FixAtoms

    fixed: set[int] = set()
    for c in atoms.constraints:
        if isinstance(c, FixAtoms):
            fixed |= set(int(i) for i in c.get_indices())
    chosen = [moving_index]
    if radius_A > 0:
        d = atoms.get_distances(moving_index, list(range(len(atoms))), mic=True)
        chosen += [i for i in np.argsort(d) if 0 < d[i] <= radius_A and i not in fixed
                   and i != moving_index]
    return [int(i) for i in chosen]


def mass_weighted_hessian(atoms, indices: list[int], calculator, workdir: Path,
                          delta_A: float) -> tuple[np.ndarray, int]:
    """Finite-difference Hessian over ``indices``, mass-weighted (eV / (A^2 amu)); calls made."""
    from ase.vibrations import Vibrations

    work = atoms.copy()
    work.calc = calculator
    vib = Vibrations(work, indices=indices, delta=delta_A, nfree=2, name=str(workdir))
    vib.run()
    hessian = vib.get_vibrations().get_hessian_2d()
    masses = np.repeat(work.get_masses()[indices], 3)
    hessian = 0.5 * (hessian + hessian.T)
    return hessian / np.sqrt(np.outer(masses, masses)), 6 * len(indices)


def _frequencies_THz(eigenvalues: np.ndarray) -> np.ndarray:
    """Signed frequencies: sqrt(lambda)/(2 pi), negative for a negative eigenvalue."""
    nu = np.sqrt(np.abs(eigenvalues) * _EV_PER_A2_AMU_IN_S2) / (2 * np.pi) / 1e12
    return np.where(eigenvalues < 0, -nu, nu)


def vineyard_prefactor(initial, saddle, calculator_for: Callable[[str], Any], moving_index: int,
                       workdir: str | Path, *, final=None,
                       settings: PrefactorSettings | None = None,
                       tangent: np.ndarray | None = None,
                       soft_mode_THz: float = 0.05) -> PrefactorResult:
    """Compute the Vineyard prefactor of a hop (see the module docstring for the routes).

    ``calculator_for(name)`` returns a fresh calculator for the state ``name`` (``"initial"``,
    ``"saddle"`` or ``"final"``). ``tangent`` is the (n_atoms, 3) NEB tangent at the saddle.
    With ``final``, the reverse hop's prefactor (final-state modes over the same saddle modes)
    is computed too, over the same atoms. ``settings`` (the vibrating radius, the finite
    difference step, the fallback) left out are the model's defaults.
    """
    settings = settings or PrefactorSettings()
    radius_A, delta_A, allow_fallback = (settings.radius_A, settings.delta_A,
                                         settings.allow_fallback)
    work = Path(workdir)
    indices = vibration_indices(initial, moving_index, radius_A)
    if final is not None:  # the same atoms at both ends: the shells of both positions
        indices += [i for i in vibration_indices(final, moving_index, radius_A)
                    if i not in indices]
    h_i, calls_i = mass_weighted_hessian(initial, indices, calculator_for("initial"),
                                         work / "initial", delta_A)
    h_s, calls_s = mass_weighted_hessian(saddle, indices, calculator_for("saddle"),
                                         work / "saddle", delta_A)
    nu_i = _frequencies_THz(np.linalg.eigvalsh(h_i))
    eig_s = np.linalg.eigvalsh(h_s)
    nu_s = _frequencies_THz(eig_s)
    soft = soft_mode_THz
    n_imag = int(np.sum(nu_s < -soft))
    calls = calls_i + calls_s
    base = {"indices": indices, "initial_frequencies_THz": nu_i.tolist(),
            "saddle_frequencies_THz": nu_s.tolist(), "n_imaginary_saddle": n_imag,
            "force_calls": calls}
    if np.any(nu_i <= soft):
        return _fail_or_fallback("the initial state has an imaginary or zero mode: not a "
                                 "minimum", allow_fallback, base)
    log_num = float(np.sum(np.log(nu_i)))
    log_rev = None
    if final is not None:
        h_f, calls_f = mass_weighted_hessian(final, indices, calculator_for("final"),
                                             work / "final", delta_A)
        nu_f = _frequencies_THz(np.linalg.eigvalsh(h_f))
        base["final_frequencies_THz"] = nu_f.tolist()
        base["force_calls"] += calls_f
        log_rev = float(np.sum(np.log(nu_f))) if np.all(nu_f > soft) else None
    if n_imag == 1:
        real = np.sort(nu_s)[1:]
        if np.any(real <= soft):
            return _fail_or_fallback("a soft real mode at the saddle", allow_fallback, base)
        log_den = float(np.sum(np.log(real)))
        nu = np.exp(log_num - log_den) * 1e12
        rev = None if log_rev is None else float(np.exp(log_rev - log_den) * 1e12)
        return PrefactorResult(prefactor_Hz=float(nu), prefactor_route="vineyard",
                               reverse_prefactor_Hz=rev, **base)
    if n_imag == 0 and tangent is not None:
        masses = np.repeat(saddle.get_masses()[indices], 3)
        t = np.asarray(tangent)[indices].reshape(-1) * np.sqrt(masses)
        if np.linalg.norm(t) == 0:
            return _fail_or_fallback("the NEB tangent is zero on the vibrating atoms",
                                     allow_fallback, base)
        t /= np.linalg.norm(t)
        proj = np.eye(len(t)) - np.outer(t, t)
        eig_p = np.linalg.eigvalsh(proj @ h_s @ proj)
        order = np.argsort(np.abs(eig_p))  # drop the mode along the tangent (eigenvalue 0)
        kept = _frequencies_THz(eig_p[order[1:]])
        if np.any(kept <= soft):
            return _fail_or_fallback("the tangent-projected saddle Hessian is not positive",
                                     allow_fallback, base)
        log_den = float(np.sum(np.log(kept)))
        nu = np.exp(log_num - log_den) * 1e12
        rev = None if log_rev is None else float(np.exp(log_rev - log_den) * 1e12)
        return PrefactorResult(prefactor_Hz=float(nu), prefactor_route="vineyard_tangent_projected",
                               reverse_prefactor_Hz=rev, **base)
    return _fail_or_fallback(f"the saddle has {n_imag} imaginary modes", allow_fallback, base)


def _fail_or_fallback(why: str, allow: bool, base: dict[str, Any]) -> PrefactorResult:
    if allow:
        return PrefactorResult(prefactor_Hz=FALLBACK_PREFACTOR_HZ, prefactor_route="fallback",
                               flagged=True, failure=why,
                               reverse_prefactor_Hz=FALLBACK_PREFACTOR_HZ, **base)
    return PrefactorResult(prefactor_route="failed", failure=why, **base)
