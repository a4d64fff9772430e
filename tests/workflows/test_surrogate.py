"""The GP-surrogate climbing-image NEB against plain CI-NEB bands on the same EMT surfaces.

The expensive calculator is ASE's EMT, with its calls counted independently here. The cheap
prior is :func:`~kmcflow.workflows.reference_hops.perturbed_emt`, EMT with its pair repulsion
scaled by 0.8, which moves the barriers by 0.02 eV (Au/Al(100)) and 0.14 eV (Cu). The references
are plain ``relax_band`` bands (BFGS, the same settings) computed in the tests: 0.3732 eV in 74
calls for Au/Al(100) and 0.7536 eV in 58 calls for the Cu vacancy hop.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.mep import NEB
from ase.optimize import BFGS

from kmcflow.errors import WorkflowError
from kmcflow.outputs import MARKER
from kmcflow.workflows.neb import NebSettings, interpolate_band, relax_band
from kmcflow.workflows.reference_hops import perturbed_emt
from kmcflow.workflows.surrogate import (
    GradientGP,
    fit_gradient_gp,
    neb_force_norms,
    relax_band_surrogate,
)

SETTINGS = NebSettings(optimizer="BFGS")


class Killed(BaseException):
    """A walltime kill: not an ``Exception``, so nothing reports it as a result."""


class Counting(EMT):
    """EMT that logs the positions of every evaluation and can fail after ``fail_after``."""

    def __init__(self, log: list, fail_after: int | None = None, error=RuntimeError):
        super().__init__()
        self.log, self.fail_after, self.error = log, fail_after, error

    def calculate(self, atoms=None, properties=("energy",), system_changes=None):
        if self.fail_after is not None and len(self.log) >= self.fail_after:
            raise self.error("the expensive code died")
        if system_changes is None:
            super().calculate(atoms, list(properties))
        else:
            super().calculate(atoms, list(properties), system_changes)
        self.log.append(self.atoms.positions.copy())


def _relaxed(pair):
    out = []
    for atoms in pair:
        atoms = atoms.copy()
        atoms.calc = EMT()
        BFGS(atoms, logfile=None).run(fmax=0.01)
        atoms.calc = None
        out.append(atoms)
    return out


@pytest.fixture(scope="module")
def au_al(au_al_endpoints):
    return _relaxed(au_al_endpoints)


@pytest.fixture(scope="module")
def au_al_plain(au_al):
    return relax_band(interpolate_band(*au_al, 4), lambda i: EMT(), SETTINGS)


@pytest.fixture(scope="module")
def au_al_gp(au_al):
    """The GP bands of Au/Al(100), without and with the cheap prior: (result, calls, cheap)."""
    out = {}
    for name, with_prior in (("plain_gp", False), ("prior_gp", True)):
        calls, cheap = [], []
        result = relax_band_surrogate(
            interpolate_band(*au_al, 4), lambda i, calls=calls: Counting(calls), SETTINGS,
            prior_for=(lambda i, cheap=cheap: _counting_prior(cheap)) if with_prior else None)
        out[name] = (result, len(calls), len(cheap))
    return out


def _counting_prior(log: list):
    """``perturbed_emt`` with its calls logged."""
    calc = perturbed_emt()
    calculate = calc.calculate

    def logged(*args, **kwargs):
        calculate(*args, **kwargs)
        log.append(1)

    calc.calculate = logged
    return calc


def test_gradient_gp_reproduces_a_known_surface_and_its_gradient():
    """Values and gradients of E = sin(x) cos(y) + 0.3 x^2 on a 3x3 grid of points."""
    def f(p):
        x, y = p
        return np.sin(x) * np.cos(y) + 0.3 * x**2

    def grad(p):
        x, y = p
        return np.array([np.cos(x) * np.cos(y) + 0.6 * x, -np.sin(x) * np.sin(y)])

    pts = np.array([(x, y) for x in (-1.0, 0.0, 1.0) for y in (-1.0, 0.0, 1.0)])
    gp = fit_gradient_gp(pts, [f(p) for p in pts], [grad(p) for p in pts], mean=1.0)
    for p in ([0.3, -0.4], [-0.6, 0.7]):
        value, g = gp.predict(np.array(p))
        assert value == pytest.approx(f(p), abs=0.01)
        assert g == pytest.approx(grad(p), abs=0.05)
        # the analytic gradient of the mean is the gradient of the mean
        h = 1e-5
        numeric = [(gp.predict(np.array(p) + h * e)[0] - gp.predict(np.array(p) - h * e)[0])
                   / (2 * h) for e in np.eye(2)]
        assert g == pytest.approx(numeric, abs=1e-6)
    assert gp.std(pts[4]) < 1e-3  # a training point is known
    assert gp.std(np.array([60.0, 60.0])) == pytest.approx(np.sqrt(gp.signal_variance), rel=1e-6)
    far = GradientGP(pts, [f(p) for p in pts], [grad(p) for p in pts], mean=1.0,
                     length_scales=0.5)
    assert far.predict(np.array([9.0, 9.0]))[0] == pytest.approx(1.0)  # the prior mean


def test_au_adatom_band_on_the_surrogate_matches_the_plain_band(au_al_plain, au_al_gp):
    assert au_al_plain.converged
    assert au_al_plain.forward_barrier == pytest.approx(0.374, abs=0.003)
    for name, (result, calls, cheap) in au_al_gp.items():
        assert result.succeeded and result.converged, (name, result.failure_message)
        assert result.forward_barrier == pytest.approx(au_al_plain.forward_barrier, abs=0.01)
        assert result.forward_barrier == pytest.approx(0.374, abs=0.003)
        assert result.force_calls == calls  # every expensive call is counted, endpoints too
        assert result.settings["surrogate_prior_force_calls"] == cheap
        assert result.settings["surrogate"] == "gp" and result.settings["climbing_image"]
        assert result.neb_method == "climbing_image"
        assert 0 < result.saddle_index < len(result.energies) - 1
        assert calls <= 25 and 3 * calls <= au_al_plain.force_calls, name  # measured 20, 14
    assert au_al_gp["plain_gp"][2] == 0 and au_al_gp["prior_gp"][2] > 0


def test_the_reported_band_is_verified_with_expensive_forces(au_al_gp):
    """Recomputed with a fresh EMT, every image's climbing-image NEB force is below fmax and
    the energies are the ones reported."""
    for result, _, _ in au_al_gp.values():
        band = [im.copy() for im in result.atoms()]
        for im in band:
            im.calc = EMT()
        energies = [im.get_potential_energy() for im in band]
        assert energies == pytest.approx(result.energies, abs=1e-9)
        neb = NEB(band, k=SETTINGS.spring_eV_per_A2, climb=True, method=SETTINGS.method)
        forces = neb.get_forces().reshape(len(band) - 2, len(band[0]), 3)
        assert np.sqrt((forces**2).sum(axis=2)).max() < SETTINGS.fmax_eV_per_A
        # the fixed Al layers never moved
        fixed = band[0].constraints[0].get_indices()
        for im in band:
            assert np.array_equal(im.positions[fixed], band[0].positions[fixed])
        norms = neb_force_norms(band, [(e, im.get_forces(apply_constraint=False))
                                       for e, im in zip(energies, band, strict=True)], SETTINGS)
        assert norms.max() < SETTINGS.fmax_eV_per_A


def test_cu_vacancy_band_with_a_cheap_prior(cu_vacancy_endpoints):
    """The plain band (``relax_band``, BFGS, the same settings and endpoints) gives 0.7536 eV
    in 58 calls; it is not recomputed here (its BFGS steps take seconds each when BLAS threads
    contend for a busy core)."""
    ini, fin = _relaxed(cu_vacancy_endpoints)
    calls = []
    gp = relax_band_surrogate(interpolate_band(ini, fin, 4), lambda i: Counting(calls), SETTINGS,
                              prior_for=lambda i: perturbed_emt())
    assert gp.converged and gp.succeeded
    assert gp.forward_barrier == pytest.approx(0.7536, abs=0.02)
    assert gp.reverse_barrier == pytest.approx(gp.forward_barrier, abs=1e-3)  # symmetric hop
    assert gp.force_calls == len(calls) <= 19  # measured 11 (plain: 58)


def test_a_failed_or_killed_band_resumes_without_repeating_a_call(au_al, tmp_path):
    def band():
        return interpolate_band(*au_al, 4)

    prior = {"prior_for": lambda i: perturbed_emt()}
    fresh = relax_band_surrogate(band(), lambda i: EMT(), SETTINGS, **prior)
    assert fresh.converged
    ck = tmp_path / "ck"
    first = []
    failed = relax_band_surrogate(band(), lambda i: Counting(first, fail_after=6), SETTINGS,
                                  checkpoint=ck, **prior)
    assert failed.failure_reason == "calculator_error" and failed.state == "failed"
    assert "the expensive code died" in failed.failure_message
    assert failed.force_calls == len(first) == 6
    assert (ck / MARKER).is_file()
    # a kill (not an Exception: nothing catches it) three calls later
    second = []
    with pytest.raises(Killed):
        relax_band_surrogate(band(), lambda i: Counting(second, fail_after=3, error=Killed),
                             SETTINGS, checkpoint=ck, **prior)
    assert len(second) == 3
    third = []
    resumed = relax_band_surrogate(band(), lambda i: Counting(third), SETTINGS, checkpoint=ck,
                                   **prior)
    assert resumed.converged and resumed.succeeded
    assert resumed.settings["force_calls_before_resume"] == 9
    assert resumed.forward_barrier == pytest.approx(fresh.forward_barrier, abs=1e-6)
    assert resumed.energies == pytest.approx(fresh.energies, abs=1e-6)
    # no expensive call was repeated, and together the runs made the uninterrupted run's calls
    earlier = first + second
    for pos in third:
        assert min(np.abs(pos - p).max() for p in earlier) > 1e-6
    for k, pos in enumerate(second):
        assert min(np.abs(pos - p).max() for p in first) > 1e-6, k
    assert len(first) + len(second) + resumed.force_calls == fresh.force_calls
    # a rerun of the finished band costs nothing and gives the same band
    again = relax_band_surrogate(band(), lambda i: Counting([], fail_after=0), SETTINGS,
                                 checkpoint=ck, **prior)
    assert again.converged and again.force_calls == 0
    assert again.forward_barrier == pytest.approx(fresh.forward_barrier, abs=1e-9)


def test_a_checkpoint_of_another_band_is_refused(au_al, cu_vacancy_endpoints, tmp_path):
    ck = tmp_path / "ck"
    short = NebSettings(optimizer="BFGS", surrogate_max_calls=3)
    stopped = relax_band_surrogate(interpolate_band(*au_al, 4), lambda i: EMT(), short,
                                   checkpoint=ck)
    assert stopped.failure_reason == "not_converged" and stopped.force_calls == 3
    assert "3 expensive force calls" in stopped.failure_message
    others = {
        "other hop": lambda: relax_band_surrogate(
            interpolate_band(*cu_vacancy_endpoints, 4), lambda i: EMT(), SETTINGS,
            checkpoint=ck),
        "reversed hop": lambda: relax_band_surrogate(
            interpolate_band(au_al[1], au_al[0], 4), lambda i: EMT(), SETTINGS, checkpoint=ck),
        "other image count": lambda: relax_band_surrogate(
            interpolate_band(*au_al, 3), lambda i: EMT(), NebSettings(n_images=3),
            checkpoint=ck),
        "other calculator": lambda: relax_band_surrogate(
            interpolate_band(*au_al, 4), lambda i: EMT(), SETTINGS, checkpoint=ck,
            identity={"code": "vasp"}),
    }
    for what, run in others.items():
        with pytest.raises(WorkflowError, match="belongs to another band") as refused:
            run()
        assert str(ck) in refused.value.one_line(), what
    # the same band with a larger budget continues it (the 3 calls are not repeated)
    calls = []
    resumed = relax_band_surrogate(interpolate_band(*au_al, 4), lambda i: Counting(calls),
                                   SETTINGS, checkpoint=ck)
    assert resumed.converged and resumed.settings["force_calls_before_resume"] == 3
    assert resumed.forward_barrier == pytest.approx(0.374, abs=0.003)


def test_unequal_endpoints_of_a_symmetric_hop_are_reported(au_al):
    class Shifted(EMT):
        def calculate(self, atoms=None, properties=("energy",), system_changes=None):
            super().calculate(atoms, list(properties))
            self.results["energy"] += 0.1

    result = relax_band_surrogate(
        interpolate_band(*au_al, 4), lambda i: Shifted() if i == 5 else EMT(),
        NebSettings(optimizer="BFGS", symmetric=True, surrogate_max_calls=3))
    assert result.failure_reason == "unequal_endpoints" and not result.succeeded
    assert "+0.1000 eV" in result.failure_message
