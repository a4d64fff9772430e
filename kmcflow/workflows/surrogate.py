"""Climbing-image NEB relaxed on a Gaussian-process surrogate of the energy surface.

A band relaxed directly with DFT spends most of its force calls on steps that a model of the
surface could have taken. Here the band is relaxed on a Gaussian process (GP) trained on the
expensive energies and forces computed so far. The expensive calculator is called only where
the GP is uncertain and to verify the band. This follows Koistinen et al. (J. Chem. Phys. 147,
152720 (2017)) and Torres et al. (Phys. Rev. Lett. 122, 156001 (2019)):

1. the endpoints are evaluated (one expensive call each);
2. the GP is fitted to every expensive call so far (energy and forces);
3. the band is relaxed on the GP's mean surface as a climbing-image NEB (ASE's ``NEB``, the
   band's tangent method and spring, :data:`SURROGATE_OPTIMIZER`), to
   :data:`SURROGATE_FMAX_FRACTION` of the band's force threshold. The optimizer is stopped,
   and its last step undone, before any image goes farther from its nearest training point
   than :data:`MAX_DISTANCE_A` (over all free coordinates) or :data:`MAX_ATOM_SHIFT_A` (any
   one atom), or before its predicted energy becomes more uncertain than
   :data:`STOP_UNCERTAINTY_EV`. An image that starts beyond a limit may come
   closer, but may not go farther. This is Koistinen et al.'s guard against a surrogate band
   running off to where the GP knows nothing; the per-atom limit catches one atom pushed into
   another, which a norm over a hundred coordinates hardly sees;
4. if the relaxation stopped short, or an image's predicted energy has a standard deviation
   above :data:`UNCERTAINTY_EV`, the most uncertain image is evaluated and the loop goes back
   to 2. Otherwise the band is verified: each interior image is evaluated with the expensive
   calculator, the climbing image first, and the band's true NEB forces are computed (ASE's
   NEB on single-point results, climbing image on). Images not evaluated yet take the GP's
   values. The band has converged when every image's largest atomic NEB force is below
   ``fmax_eV_per_A``. Verification stops at the first evaluated image whose true NEB force is
   above that threshold. Every evaluated point joins the training set either way.

Convergence is judged only on expensive forces of every interior image at one band
configuration. The energies and barriers reported are those expensive values.

**The GP.** The inputs are the Cartesian coordinates of the free atoms (``FixAtoms`` atoms
never move and are left out), taken as minimum-image displacements from the hop's midpoint
(:class:`_Coordinates`), so that no periodic wrap makes a jump. The observations are the energy
and the gradient (minus the forces) of every expensive call. The kernel is the squared
exponential ``s^2 exp(-|x - x'|^2 / 2 l^2)``, with its first and second derivatives for the
gradient observations (:class:`GradientGP`).

With a cheap ``prior_for`` calculator the GP models the difference expensive - cheap (delta
learning), so the cheap model supplies the shape of the surface. Without one, the GP models
the energy itself.

The prior mean is a constant: the largest training value plus :data:`MEAN_MARGIN` times the
values' range. Torres et al. take the largest value, so that an unexplored region looks high
and the band does not fall into it. The margin makes that region higher still. Without it, an
SE kernel on 93 Cartesian coordinates of a vacancy hop (31 free Cu atoms, no prior) kept
predicting energies 0.2-0.9 eV too low wherever the band went. It spent 40 calls without
converging on bands that converge in 24 calls with the margin.

The length scale ``l`` is the one of :data:`LENGTH_SCALES_A` that maximises the marginal
likelihood, with ``s^2`` profiled out (its optimum has a closed form). It is refitted after
every call by a hill climb on the grid (:func:`fit_gradient_gp`). A grid search is
deterministic, and it cannot wander off the way a gradient optimiser can on a handful of
points. ``s`` is at least :data:`SIGNAL_STD_MIN_EV`. The observation noise is a relative
jitter (:data:`JITTER`), raised tenfold while the Cholesky factorisation fails. A GP that
cannot be fitted ends the band as ``not_converged``.

**Cost.** The covariance matrix has ``N (1 + D)`` rows for ``N`` calls and ``D`` free
coordinates. 31 free atoms and 40 calls give 3760 rows (110 MB, and as much again for its
Cholesky factor), fitted in about a second, which is nothing against a DFT call. At 100 free
atoms and 40 calls it is 12040 rows: 1.2 GB twice over, and tens of seconds per fit.

**Measured** with EMT as the expensive calculator and
:func:`~kmcflow.workflows.reference_hops.perturbed_emt` as the prior, 4 images, fmax 0.05,
starting from IDPP bands. Plain ``relax_band`` (BFGS) takes 74 calls for Au/Al(100), 58 for the
Cu vacancy hop and 54 for the Ni one. The GP band takes 20, 24 and 25 calls without the prior
and 14, 11 and 10 with it, with the same barriers within 1 meV. Starting from a band relaxed
on the prior (a warm start), it takes 12, 9 and 9 calls with the prior.

**Checkpoint.** With a ``checkpoint`` folder, the training set (positions, expensive energies
and forces, image index) is written atomically after every expensive call. The band and the
size of the training set are written at the start of every round. A rerun in the same folder
reloads them and repeats the interrupted round exactly: the GP is fitted to the same points and
relaxes the same band. Every expensive call first looks for a training point at the same
positions (:data:`POSITION_TOLERANCE_A`). So a run that is killed, or failed by its calculator,
resumes without repeating any expensive call and reaches the same band as an uninterrupted run.
A checkpoint of another band is refused with a :class:`~kmcflow.errors.WorkflowError`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kmcflow.errors import WorkflowError
from kmcflow.workflows.neb import (
    ENDPOINT_TOLERANCE_A,
    band_identity,
    counted,
    saddle_tangent,
)
from kmcflow.workflows.results import HopNebResult
from kmcflow.workflows.settings import NebSettings

LENGTH_SCALES_A = tuple(float(x) for x in np.geomspace(0.5, 4.0, 10))
"""Length scales (Angstrom) the GP chooses from by marginal likelihood."""
JITTER = 1e-8
"""Observation noise variance relative to each observation's prior variance."""
MAX_JITTER = 1e-3
"""The largest relative jitter tried before the GP counts as unfittable."""
SIGNAL_STD_MIN_EV = 0.1
"""The GP's prior standard deviation is at least this (eV). With few points (two relaxed
endpoints: equal energies, no forces) the likelihood's own estimate is near zero and would call
every prediction certain."""
MEAN_MARGIN = 2.0
"""The GP's constant prior mean is the largest training value plus this many times the training
values' range (see the module's docstring)."""
UNCERTAINTY_EV = 0.05
"""Predicted energy standard deviation (eV) above which an image is evaluated, not verified."""
STOP_UNCERTAINTY_EV = 0.1
"""The relaxation on the surrogate stops before an image's predicted energy standard deviation
exceeds this (eV), or its own at the start, whichever is larger."""
MAX_DISTANCE_A = 1.5
"""How far (Angstrom, norm over all free coordinates) an image may go from its nearest
training point during one relaxation on the surrogate."""
MAX_ATOM_SHIFT_A = 0.5
"""How far (Angstrom) one atom may go from its position in the image's nearest training point
during one relaxation on the surrogate."""
SURROGATE_FMAX_FRACTION = 0.2
"""The band is relaxed on the surrogate to this fraction of ``fmax_eV_per_A``."""
SURROGATE_OPTIMIZER = "LBFGS"
"""ASE optimizer of the band on the surrogate, whatever ``settings.optimizer`` (which chooses
for expensive force calls): the surrogate band takes hundreds of cheap steps, and ASE's BFGS
diagonalises the band's Hessian at every one (0.4 s a step for 4 x 31 atoms when another
process holds a core and BLAS threads contend); L-BFGS took the same steps here without it."""
SURROGATE_MAXSTEP_A = 0.1
"""Largest atomic step (Angstrom) of the optimizer on the surrogate."""
POSITION_TOLERANCE_A = 1e-6
"""Positions this close (every coordinate, Angstrom) to a training point reuse its result."""
MAX_ROUNDS = 1000
"""Rounds (fit, relax, evaluate) at most: a guard; the budget of calls ends a band first."""

LOG = logging.getLogger(__name__)

_TRAINING, _STATE, _BAND = "gp_training.npz", "gp_state.json", "gp_band.npz"


class GPFitError(RuntimeError):
    """The GP's covariance matrix could not be factorised even with the largest jitter."""


class GradientGP:
    """A Gaussian process on R^D observed through values and gradients (squared exponential).

    ``x`` (N, D) inputs, ``values`` (N,), ``gradients`` (N, D); ``mean`` the constant prior
    mean; ``length_scales`` one per input coordinate (or one for all). The signal variance
    ``s^2`` takes its closed-form maximum-likelihood value (at least ``signal_std_min^2``);
    the observation noise is :data:`JITTER` relative to each observation's prior variance,
    raised tenfold while the Cholesky factorisation fails (:class:`GPFitError` past
    :data:`MAX_JITTER`). ``log_likelihood`` is the profiled log marginal likelihood of the
    observations (up to a constant), comparable between length scales.
    """

    def __init__(self, x: np.ndarray, values: np.ndarray, gradients: np.ndarray, mean: float,
                 length_scales: float | np.ndarray, signal_std_min: float = 0.0):
        from scipy.linalg import LinAlgError, cho_solve, cholesky

        x = np.asarray(x, float)
        n, d = x.shape
        self.x = x
        self.length_scales = np.broadcast_to(np.asarray(length_scales, float), (d,)).copy()
        self.mean = float(mean)
        # in scaled inputs z = x / l the kernel has unit length scales, and dE/dz = l dE/dx
        self.z = x / self.length_scales
        y = np.concatenate([np.asarray(values, float) - self.mean,
                            (np.asarray(gradients, float) * self.length_scales).ravel()])
        r = self.z[:, None, :] - self.z[None, :, :]
        k = np.exp(-0.5 * np.einsum("abi,abi->ab", r, r))
        size = n * (1 + d)

        def covariance(jitter: float) -> np.ndarray:
            """Built in one array: at 100 free atoms and 40 points it is a gigabyte."""
            cov = np.empty((size, size))
            cov[:n, :n] = k
            cov[:n, n:] = (k[:, :, None] * r).reshape(n, n * d)  # cov(E_a, g_b) = dk/dz_b
            cov[n:, :n] = cov[:n, n:].T
            grads = cov[n:, n:].reshape(n, d, n, d)  # a view: cov(g_a, g_b) = d2k/dz_a dz_b
            np.einsum("ab,abi,abj->aibj", -k, r, r, out=grads)
            diagonal = np.arange(d)
            grads[:, diagonal, :, diagonal] += k
            cov.flat[:: size + 1] += jitter
            return cov

        jitter = JITTER
        while True:
            try:
                chol = cholesky(covariance(jitter), lower=True, overwrite_a=True,
                                check_finite=False)
                break
            except LinAlgError:
                jitter *= 10
                if jitter > MAX_JITTER * (1 + 1e-9):
                    raise GPFitError(f"the covariance of {n} points is not positive definite "
                                     f"with a relative jitter up to {MAX_JITTER:g}") from None
        self.jitter = jitter
        self._chol = chol
        self._alpha = cho_solve((chol, True), y)
        s2 = max(float(y @ self._alpha) / len(y), 1e-300)
        # the density of gradients in x is that in z times prod(l) per point (the Jacobian)
        self.log_likelihood = (-0.5 * len(y) * np.log(s2) - float(np.sum(np.log(np.diag(chol))))
                               + n * float(np.sum(np.log(self.length_scales))))
        self.signal_variance = max(s2, signal_std_min**2)

    def _cross(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit-variance covariance of the value at ``x`` with the observations, and r, k."""
        r = np.asarray(x, float)[None, :] / self.length_scales - self.z  # (N, D), scaled
        k = np.exp(-0.5 * np.einsum("bi,bi->b", r, r))
        # cov(E(z), E_b) = k_b; cov(E(z), g_b) = d k / d z_b = k_b r_b
        return np.concatenate([k, (k[:, None] * r).ravel()]), r, k

    def predict(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """The mean value and its gradient at ``x``."""
        n, d = self.z.shape
        kx, r, k = self._cross(x)
        a_e, a_g = self._alpha[:n], self._alpha[n:].reshape(n, d)
        value = self.mean + float(kx @ self._alpha)
        # d k_b / dz = -k_b r_b; d (k_b r_bj) / dz_i = k_b (delta_ij - r_bi r_bj)
        grad_z = -(k * a_e) @ r + k @ a_g - (k * np.einsum("bi,bi->b", r, a_g)) @ r
        return value, grad_z / self.length_scales

    def std(self, x: np.ndarray) -> float:
        """The predictive standard deviation of the value at ``x``."""
        from scipy.linalg import solve_triangular

        kx, _, _ = self._cross(x)
        v = solve_triangular(self._chol, kx, lower=True)
        return float(np.sqrt(max(self.signal_variance * (1.0 - float(v @ v)), 0.0)))


def fit_gradient_gp(x: np.ndarray, values: np.ndarray, gradients: np.ndarray, mean: float,
                    grid: tuple[float, ...] | None = None,
                    signal_std_min: float = 0.0) -> GradientGP:
    """The :class:`GradientGP` of largest marginal likelihood over a grid of length scales.

    ``grid``: :data:`LENGTH_SCALES_A` by default. The search climbs the likelihood from the
    middle of the grid one step at a time (deterministic, a few fits instead of all); where
    no length scale near it can be fitted, the first that can is taken.
    """
    grid = tuple(sorted(grid or LENGTH_SCALES_A))
    scores: dict[int, float] = {}
    best: GradientGP | None = None  # only the best fit is kept: each holds an N(1+D)^2 factor

    def score(i: int) -> float:
        nonlocal best
        if not 0 <= i < len(grid):
            return -np.inf
        if i not in scores:
            try:
                gp = GradientGP(x, values, gradients, mean, grid[i],
                                signal_std_min=signal_std_min)
            except GPFitError:
                scores[i] = -np.inf
            else:
                scores[i] = gp.log_likelihood
                if best is None or gp.log_likelihood > best.log_likelihood:
                    best = gp
        return scores[i]

    i = len(grid) // 2  # the climb only moves up, so where it stops is the best it has seen
    while True:
        step = max((i - 1, i + 1), key=score)
        if score(step) <= score(i):
            break
        i = step
    for j in range(len(grid)):  # nothing near the middle could be fitted: the first that can
        if best is not None:
            break
        score(j)
    if best is None:
        raise GPFitError(f"the covariance of {len(values)} points could not be factorised "
                         f"with a relative jitter up to {MAX_JITTER:g} at any length scale")
    return best


def _free_atoms(atoms) -> np.ndarray:
    """Indices of the atoms no ``FixAtoms`` constraint holds."""
    from ase.constraints import FixAtoms

    fixed = {int(i) for c in atoms.constraints if isinstance(c, FixAtoms)
             for i in c.get_indices()}
    return np.array([i for i in range(len(atoms)) if i not in fixed], dtype=int)


class _Coordinates:
    """GP inputs of a structure: minimum-image displacements of the free atoms.

    Measured from the midpoint of the hop (each atom half way from ``initial`` to ``final``
    along its minimum-image displacement), not from ``initial``: an atom that hops half a cell
    (the Au adatom of :func:`~kmcflow.workflows.reference_hops.au_on_al100`) lies exactly on
    the minimum-image boundary of the initial endpoint, where rounding flips its displacement
    by a lattice vector between neighbouring images; from the midpoint every image of the band
    lies at most a quarter cell away.
    """

    def __init__(self, initial, final, free: np.ndarray):
        self.free = free
        self.cell = np.asarray(initial.cell.array, float)
        self.pbc = np.array(initial.pbc, bool) & (initial.cell.rank == 3)
        start = initial.positions[free]
        self.origin = start + 0.5 * self._wrap(final.positions[free] - start)

    def _wrap(self, d: np.ndarray) -> np.ndarray:
        if self.pbc.any():
            frac = np.linalg.solve(self.cell.T, d.T).T
            frac[:, self.pbc] -= np.round(frac[:, self.pbc])
            d = frac @ self.cell
        return d

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        return self._wrap(np.asarray(positions, float)[self.free] - self.origin).ravel()


class _Training:
    """The expensive calls: positions, energies, forces, image index (and cheap prior values)."""

    def __init__(self):
        self.positions: list[np.ndarray] = []
        self.energies: list[float] = []
        self.forces: list[np.ndarray] = []
        self.image: list[int] = []
        self.prior: list[tuple[float, np.ndarray] | None] = []

    def __len__(self) -> int:
        return len(self.energies)

    def find(self, positions: np.ndarray) -> int | None:
        """The training point at ``positions`` (within :data:`POSITION_TOLERANCE_A`)."""
        for k, pos in enumerate(self.positions):
            if float(np.max(np.abs(pos - positions), initial=0.0)) <= POSITION_TOLERANCE_A:
                return k
        return None

    def add(self, index: int, positions, energy: float, forces) -> None:
        self.positions.append(np.array(positions, float))
        self.energies.append(float(energy))
        self.forces.append(np.array(forces, float))
        self.image.append(int(index))
        self.prior.append(None)

    def save(self, folder: Path) -> None:
        from kmcflow.atomic_io import write_npz

        write_npz(folder / _TRAINING, positions=np.array(self.positions),
                  energies=np.array(self.energies), forces=np.array(self.forces),
                  image=np.array(self.image, dtype=int))

    @classmethod
    def load(cls, folder: Path, natoms: int) -> _Training:
        from kmcflow.readers import NPZ_ERRORS

        training = cls()
        path = folder / _TRAINING
        if not path.is_file():
            return training
        try:
            with np.load(path, allow_pickle=False) as data:
                pos, ene = data["positions"], data["energies"]
                frc, img = data["forces"], data["image"]
        except (*NPZ_ERRORS, RecursionError) as exc:
            raise WorkflowError(f"the GP band's training set is unreadable ({exc})",
                                file=str(path), hint="delete the checkpoint folder to start "
                                "the band afresh (its expensive calls are lost)") from exc
        if len(ene) and (pos.shape != (len(ene), natoms, 3) or frc.shape != pos.shape
                         or img.shape != ene.shape):
            raise WorkflowError("the GP band's training set holds structures of another size",
                                file=str(path), hint="give this band its own checkpoint folder")
        for k in range(len(ene)):
            training.add(int(img[k]), pos[k], float(ene[k]), frc[k])
        return training


class _Budget(Exception):
    """The expensive calls allowed are spent."""


class _CalculatorFailed(Exception):
    """A calculator (expensive or prior) raised; the original exception is its cause."""


def _endpoint_shift_A(images: list, saved: np.ndarray) -> float:
    """Largest distance (minimum image, Angstrom) of an endpoint atom from the saved band's."""
    cell = images[0].cell.array
    worst = 0.0
    for k in (0, -1):
        d = saved[k] - images[k].positions
        if images[0].cell.rank == 3:
            frac = np.linalg.solve(cell.T, d.T).T
            frac -= np.round(frac)
            d = frac @ cell
        worst = max(worst, float(np.max(np.linalg.norm(d, axis=1), initial=0.0)))
    return worst


def _load_checkpoint(folder: Path, images: list, identity: str, hop_identified: bool
                     ) -> tuple[dict[str, Any] | None, np.ndarray | None, str | None]:
    """(saved state, saved band, note) of a GP band's checkpoint; None, None: nothing to continue.

    A checkpoint of another band is refused with a :class:`WorkflowError` naming the folder.
    When the identity names the hop's own unrelaxed endpoints (``hop_identified``), endpoints
    that moved mean the same hop whose endpoint relaxation went on after a kill: the saved band
    is discarded (the note says so).
    """
    from kmcflow.readers import NPZ_ERRORS

    state_file, band_file = folder / _STATE, folder / _BAND
    if not state_file.is_file():
        return None, None, None
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError, RecursionError):
        state = None
    why, band = None, None
    if not isinstance(state, dict) or state.get("identity") is None:
        why = "its state is unreadable or records no band identity"
    elif state["identity"] != identity:
        why = "its hop, atoms, cell, image count, band settings or calculator differ"
    else:
        try:
            with np.load(band_file, allow_pickle=False) as data:
                band = data["positions"]
        except (*NPZ_ERRORS, RecursionError):
            band = None
        if band is None or band.shape != (len(images), len(images[0]), 3):
            why = "its band is unreadable or has another shape"
        else:
            shift = _endpoint_shift_A(images, band)
            if shift > ENDPOINT_TOLERANCE_A and hop_identified:
                return None, None, (f"discarded the saved GP band: this hop's relaxed endpoints "
                                    f"moved by {shift:.3g} A since it was saved (their "
                                    "relaxation continued)")
            if shift > ENDPOINT_TOLERANCE_A:
                why = f"its endpoints differ (an atom by {shift:.3g} A)"
    if why is not None:
        raise WorkflowError(f"the NEB checkpoint belongs to another band: {why}",
                            file=str(folder), hint="give this band its own checkpoint folder, "
                            "or delete this one to start the band afresh")
    return state, band, None


def _surrogate_calculator(surface: Callable[[np.ndarray], tuple[float, np.ndarray]]):
    """An ASE calculator returning ``surface(positions) -> (energy, forces)``."""
    from ase.calculators.calculator import Calculator, all_changes

    class Surrogate(Calculator):
        implemented_properties = ("energy", "forces")

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            Calculator.calculate(self, atoms, properties, system_changes)
            energy, forces = surface(self.atoms.positions)
            self.results = {"energy": energy, "forces": forces}

    return Surrogate()


def _single_points(images: list, results: list) -> list:
    """Copies of ``images`` (constraints kept) carrying ``results`` (energy, forces)."""
    from ase.calculators.singlepoint import SinglePointCalculator

    band = []
    for im, (energy, forces) in zip(images, results, strict=True):
        atoms = im.copy()
        atoms.calc = SinglePointCalculator(atoms, energy=float(energy),
                                           forces=np.array(forces, float))
        band.append(atoms)
    return band


def neb_force_norms(images: list, results: list, settings: NebSettings) -> np.ndarray:
    """Largest atomic climbing-image NEB force (eV/A) of every interior image.

    ``results``: (energy, forces) of every image, endpoints included, at the positions of
    ``images``. The band is ASE's ``NEB`` with the settings' spring and tangent method and the
    climbing image on, constraints applied: the forces its optimizer judges convergence on.
    """
    from ase.mep import NEB

    band = _single_points(images, results)
    neb = NEB(band, k=settings.spring_eV_per_A2, climb=True, method=settings.method)
    forces = neb.get_forces().reshape(len(images) - 2, len(images[0]), 3)
    return np.sqrt((forces**2).sum(axis=2)).max(axis=1)


class _SurrogateBand:
    """The state of one GP band: its images, the training set, calculators and counters."""

    def __init__(self, images: list, calculator_for: Callable[[int], Any],
                 settings: NebSettings, prior_for: Callable[[int], Any] | None,
                 folder: Path | None, identity: str):
        self.images = images
        self.calculator_for = calculator_for
        self.settings = settings
        self.prior_for = prior_for
        self.folder = folder
        self.identity = identity
        self.free = _free_atoms(images[0])
        self.coords = _Coordinates(images[0], images[-1], self.free)
        self.training = _Training()
        self.calls, self.cheap = [0], [0]
        self.calculators: dict[int, Any] = {}
        self.priors: dict[int, Any] = {}
        self.rounds = 0

    # -- calculators ---------------------------------------------------------------------
    def expensive(self, index: int, positions: np.ndarray) -> tuple[float, np.ndarray]:
        """Energy and forces at ``positions`` (image ``index``).

        A training point's if there is one there, else one expensive call, saved at once.
        """
        hit = self.training.find(positions)
        if hit is not None:
            return self.training.energies[hit], self.training.forces[hit]
        if len(self.training) >= self.settings.surrogate_max_calls:
            raise _Budget
        probe = self.images[index].copy()
        probe.positions = positions
        try:
            if index not in self.calculators:
                self.calculators[index] = counted(self.calculator_for(index), self.calls)
            probe.calc = self.calculators[index]
            energy = float(probe.get_potential_energy())
            forces = np.array(probe.get_forces(apply_constraint=False), float)
        except Exception as exc:
            self.calculators.pop(index, None)
            raise _CalculatorFailed("the calculator") from exc
        self.training.add(index, positions, energy, forces)
        if self.folder is not None:
            self.training.save(self.folder)
        return energy, forces

    def prior(self, index: int, positions: np.ndarray) -> tuple[float, np.ndarray]:
        """The cheap calculator's energy and forces at ``positions`` (image ``index``)."""
        try:
            probe = self.priors.get(index)
            if probe is None:
                probe = self.images[index].copy()
                probe.calc = counted(self.prior_for(index), self.cheap)
                self.priors[index] = probe
            probe.positions = positions
            return (float(probe.get_potential_energy()),
                    np.array(probe.get_forces(apply_constraint=False), float))
        except Exception as exc:
            self.priors.pop(index, None)
            raise _CalculatorFailed("the prior calculator") from exc

    # -- the surrogate -------------------------------------------------------------------
    def fit(self, points: int) -> GradientGP:
        """The GP of the first ``points`` training points."""
        t, free = self.training, self.free
        x = np.array([self.coords(p) for p in t.positions[:points]])
        values = np.array(t.energies[:points])
        grads = np.array([-f[free].ravel() for f in t.forces[:points]])
        if self.prior_for is not None:
            for k in range(points):
                if t.prior[k] is None:
                    t.prior[k] = self.prior(t.image[k], t.positions[k])
            values = values - np.array([p[0] for p in t.prior[:points]])
            grads = grads + np.array([p[1][free].ravel() for p in t.prior[:points]])
        mean = float(np.max(values)) + MEAN_MARGIN * float(np.ptp(values))
        return fit_gradient_gp(x, values, grads, mean, signal_std_min=SIGNAL_STD_MIN_EV)

    def surface(self, gp: GradientGP, index: int) -> Callable:
        """``positions -> (energy, forces)`` of the surrogate for image ``index``."""
        natoms = len(self.images[0])

        def at(positions: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = gp.predict(self.coords(positions))
            if self.prior_for is None:
                energy, forces = value, np.zeros((natoms, 3))
            else:
                energy, forces = self.prior(index, positions)
                energy, forces = energy + value, forces.copy()
            forces[self.free] -= grad.reshape(-1, 3)
            return energy, forces
        return at

    def relax(self, gp: GradientGP, ends: list) -> tuple[bool, int]:
        """Relax the interior images on the surrogate (in place); (converged there, steps)."""
        import ase.optimize
        from ase.calculators.singlepoint import SinglePointCalculator
        from ase.mep import NEB

        images, settings = self.images, self.settings
        work = [im.copy() for im in images]
        for k, (energy, forces) in zip((0, len(work) - 1), ends, strict=True):
            work[k].calc = SinglePointCalculator(work[k], energy=energy, forces=forces)
        for k in range(1, len(work) - 1):
            work[k].calc = _surrogate_calculator(self.surface(gp, k))
        neb = NEB(work, k=settings.spring_eV_per_A2, climb=True, method=settings.method)

        def distances() -> np.ndarray:
            """Per image: (distance, largest atom's) to its nearest training point, std."""
            out = []
            for w in work[1:-1]:
                x = self.coords(w.positions)
                d = gp.x - x
                step = d[int(np.argmin(np.einsum("ij,ij->i", d, d)))].reshape(-1, 3)
                out.append((np.linalg.norm(step),
                            np.sqrt(np.max(np.einsum("ij,ij->i", step, step), initial=0.0)),
                            gp.std(x)))
            return np.array(out)

        limit = np.maximum(distances(), [MAX_DISTANCE_A, MAX_ATOM_SHIFT_A, STOP_UNCERTAINTY_EV])
        opt = getattr(ase.optimize, SURROGATE_OPTIMIZER)(neb, logfile=None,
                                                         maxstep=SURROGATE_MAXSTEP_A)
        last, converged = neb.get_positions(), False
        for done in opt.irun(fmax=SURROGATE_FMAX_FRACTION * settings.fmax_eV_per_A,
                             steps=settings.steps):
            if np.any(distances() > limit):
                neb.set_positions(last)
                converged = False
                break
            last, converged = neb.get_positions(), bool(done)
        for im, w in zip(images[1:-1], work[1:-1], strict=True):
            im.positions = w.positions
        return converged, opt.nsteps

    # -- checkpoint ----------------------------------------------------------------------
    def save_round(self, points: int | None, finished: bool = False) -> None:
        """The band, and the training points its round starts with (None: before round 1).

        ``finished``: the band is converged (a rerun verifies it from the training set).
        """
        from kmcflow.atomic_io import write_json, write_npz

        if self.folder is None:
            return
        write_npz(self.folder / _BAND, positions=np.array([im.positions for im in self.images]))
        write_json(self.folder / _STATE, {"identity": self.identity,
                                          "n_images": len(self.images),
                                          "rounds": self.rounds, "round_start_points": points,
                                          "finished": finished,
                                          "force_calls": len(self.training)})


def relax_band_surrogate(images: list, calculator_for: Callable[[int], Any],
                         settings: NebSettings, *,
                         prior_for: Callable[[int], Any] | None = None,
                         checkpoint: str | Path | None = None,
                         identity: dict[str, Any] | None = None) -> HopNebResult:
    """Relax an interpolated band on a GP surrogate, verified with the expensive calculator.

    ``images``: ``[initial, interior images, final]`` with relaxed endpoints. The interior
    images are the start and may already be a good guess (a band relaxed on a cheap
    calculator). ``calculator_for(i)``: a fresh expensive ASE calculator for image ``i`` (one
    is made per image and reused, as by :func:`~kmcflow.workflows.neb.relax_band`; made again
    after it raised). Every energy+forces evaluation with it is one force call, endpoints
    included. At most ``settings.surrogate_max_calls`` are spent, counting the calls of
    earlier runs in the checkpoint. ``prior_for(i)``: an optional cheap calculator that the GP
    corrects; its calls are ``settings["surrogate_prior_force_calls"]`` of the result.
    ``checkpoint`` and ``identity`` (the calculator config, and the hop's digests under
    ``hop``) work as for :func:`kmcflow.workflows.neb.relax_band`. The algorithm is described
    in the module's docstring.

    A failure is the result's ``failure_reason``, not an exception: ``not_converged`` (the
    budget spent, a band that stalled, or a GP that cannot be fitted), ``calculator_error``,
    ``no_interior_maximum`` or ``unequal_endpoints``. The exception is a checkpoint of another
    band, refused with a :class:`~kmcflow.errors.WorkflowError`. A failed band that did not
    converge carries its last band without energies: only some of its images have expensive
    values.
    """
    from ase.calculators.singlepoint import SinglePointCalculator

    images = list(images)
    n_band = len(images)
    fmax = settings.fmax_eV_per_A
    folder = None if checkpoint is None else Path(checkpoint)
    band_id = band_identity(images, settings, {"surrogate": "gp", "calculator": identity or {}})
    run = _SurrogateBand(images, calculator_for, settings, prior_for, folder, band_id)
    record: dict[str, Any] = {**settings.model_dump(mode="json"), "n_images": n_band - 2,
                              "climbing_image": True, "surrogate": "gp",
                              "surrogate_optimizer": SURROGATE_OPTIMIZER,
                              "surrogate_prior": prior_for is not None,
                              "force_calls_before_resume": 0}
    tags = ["kmcflow", f"method:{settings.method}", "climbing_image", "surrogate:gp"]
    resume_points = None  # the training points of the round a rerun repeats
    finished = False  # a rerun of a converged band: verified from its training points
    if folder is not None:
        from kmcflow.outputs import MARKER, write_marker

        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / MARKER).exists():
            write_marker(folder, "neb_checkpoint")
        state, band, note = _load_checkpoint(folder, images, band_id,
                                             hop_identified=bool((identity or {}).get("hop")))
        if note:
            record["checkpoint_note"] = note
        if state is None:  # nothing of this band to continue: another run's leftovers go
            for stale in (_TRAINING, _STATE, _BAND):
                (folder / stale).unlink(missing_ok=True)
        else:
            run.training = _Training.load(folder, len(images[0]))
            for im, pos in zip(images[1:-1], band[1:-1], strict=True):
                im.positions = pos
            saved = state.get("round_start_points")
            resume_points = None if saved is None else min(int(saved), len(run.training))
            run.rounds = int(state.get("rounds", 0))
            record["force_calls_before_resume"] = len(run.training)
            record["resumed_from_round"] = run.rounds
            finished = bool(state.get("finished"))
        run.save_round(resume_points, finished=finished)
    calls_before = len(run.training)

    converged, reason, message, gp = False, None, "", None
    results: list = [None] * n_band
    try:
        results[0] = run.expensive(0, images[0].positions)
        results[-1] = run.expensive(n_band - 1, images[-1].positions)
        ends = (results[0][0], results[-1][0])
        if settings.symmetric and abs(ends[0] - ends[1]) > settings.endpoint_tolerance_eV:
            reason = "unequal_endpoints"
            message = f"endpoint energies differ by {ends[1] - ends[0]:+.4f} eV on a symmetric hop"
        interior = range(1, n_band - 1)
        known = [run.training.find(images[k].positions) for k in interior]
        if finished and None not in known:
            for k, hit in zip(interior, known, strict=True):
                results[k] = (run.training.energies[hit], run.training.forces[hit])
            converged = bool(np.max(neb_force_norms(images, results, settings)) < fmax)
        while not converged:
            if run.rounds >= MAX_ROUNDS:
                raise _Budget
            points = len(run.training) if resume_points is None else resume_points
            resume_points = None
            run.save_round(points)
            run.rounds += 1
            calls_then = len(run.training)
            band_then = np.array([im.positions for im in images])
            gp = run.fit(points)
            relaxed, steps = run.relax(gp, [results[0], results[-1]])
            predicted = {k: run.surface(gp, k)(images[k].positions) for k in interior}
            unknown = [k for k in interior if run.training.find(images[k].positions) is None]
            spread = {k: gp.std(run.coords(images[k].positions)) for k in unknown}
            LOG.debug("round %d: %d points, l %.3g A, %d steps, converged %s, std %s",
                      run.rounds, points, gp.length_scales[0] if len(gp.length_scales) else 0,
                      steps, relaxed, {k: round(v, 4) for k, v in spread.items()})
            if unknown and (not relaxed or max(spread.values()) > UNCERTAINTY_EV):
                k = max(unknown, key=lambda j: (spread[j], -j))
                results[k] = run.expensive(k, images[k].positions)
            else:  # verify: the climbing image first, then the most uncertain
                top = max(interior, key=lambda j: (predicted[j][0], -j))
                order = [top, *sorted((k for k in interior if k != top),
                                      key=lambda j: (-spread.get(j, 0.0), j))]
                done: list[int] = []
                for k in order:
                    results[k] = run.expensive(k, images[k].positions)
                    done.append(k)
                    mixed = [results[j] if j in done or j in (0, n_band - 1) else predicted[j]
                             for j in range(n_band)]
                    norms = neb_force_norms(images, mixed, settings)
                    if max(norms[j - 1] for j in done) >= fmax:
                        LOG.debug("verification stopped at image %d: NEB forces %s", k,
                                  np.round(norms, 3))
                        break
                else:
                    converged = True
            moved = np.max(np.abs(np.array([im.positions for im in images]) - band_then))
            if not converged and len(run.training) == calls_then \
                    and moved <= POSITION_TOLERANCE_A:
                reason = reason or "not_converged"
                message = message or ("the band stalled on the surrogate: it no longer moves "
                                      "and needs no new expensive call")
                break
        if converged:
            run.save_round(len(run.training), finished=True)
    except _Budget:
        reason = reason or "not_converged"
        message = message or (f"the surrogate band did not reach fmax {fmax} eV/A in "
                              f"{settings.surrogate_max_calls} expensive force calls")
    except GPFitError as exc:
        reason = reason or "not_converged"
        message = message or f"the GP surrogate could not be fitted: {exc}"
    except _CalculatorFailed as exc:
        cause = exc.__cause__
        reason, message = "calculator_error", f"{exc.args[0]}: {type(cause).__name__}: {cause}"
    record.update(surrogate_rounds=run.rounds, surrogate_prior_force_calls=run.cheap[0],
                  surrogate_training_points=len(run.training),
                  force_calls_before_resume=calls_before)
    if gp is not None:
        record["surrogate_length_scale_A"] = float(gp.length_scales[0]) \
            if len(gp.length_scales) else None
    if not converged:
        return HopNebResult.from_images(
            images, state="failed", neb_method="climbing_image", force_calls=run.calls[0],
            converged=False, failure_reason=reason or "not_converged", failure_message=message,
            settings=record, tags=tags)
    for im, (energy, forces) in zip(images, results, strict=True):
        im.calc = SinglePointCalculator(im, energy=energy, forces=forces)
    energies = [float(res[0]) for res in results]
    top = int(np.argmax(energies[1:-1])) + 1
    if energies[top] <= max(energies[0], energies[-1]) + 1e-6:
        reason = reason or "no_interior_maximum"
        message = message or "the highest image is an endpoint: no saddle between them"
    return HopNebResult.from_images(
        images, energies=energies, forward_barrier=energies[top] - energies[0],
        reverse_barrier=energies[top] - energies[-1],
        state="successful" if reason is None else "failed", neb_method="climbing_image",
        force_calls=run.calls[0], converged=True, failure_reason=reason,
        failure_message=message, saddle_index=top, settings=record, tags=tags,
        tangent=saddle_tangent(images, top))
