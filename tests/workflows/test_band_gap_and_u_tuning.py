"""Band gaps read from pw.x output, and the search that tunes U to a target gap.

The pw.x files in ``tests/data/espresso`` are real outputs of this machine's pw.x (v6.7):
AFM-II NiO, PBE+U with U_Ni = 6 eV, 25/150 Ry, 4x4x4 k-points (inputs beside them), once with
fixed occupations and once with Gaussian smearing of 0.005 Ry. The U search is tested on the
gap of that NiO cell measured by pw.x at U = 0, 2, ..., 12 eV (25/200 Ry; docs/development.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kmcflow.errors import ConfigError, KmcflowError
from kmcflow.workflows.band_gap import band_gap, espresso_band_gap
from kmcflow.workflows.u_tuning import tune_u

DATA = Path(__file__).parents[1] / "data" / "espresso"
U_EV = [0, 2, 4, 6, 8, 10, 12]
NIO_GAP_EV = [1.043, 1.706, 2.155, 2.580, 3.032, 3.173, 3.140]


def nio_gap(u: float) -> float:
    return float(np.interp(u, U_EV, NIO_GAP_EV))


def test_the_gap_of_fixed_and_smeared_occupations_agree_and_equal_the_eigenvalues():
    fixed = espresso_band_gap(DATA / "nio_afm_pbe_u6_fixed.out")
    assert fixed.source == "pw.x band edges"
    assert fixed.gap_eV == pytest.approx(13.4823 - 10.8779, abs=1e-9)
    smeared = espresso_band_gap(DATA / "nio_afm_pbe_u6_smearing.out")
    assert smeared.source == "pw.x eigenvalues"
    assert smeared.gap_eV == pytest.approx(fixed.gap_eV, abs=0.002)
    assert smeared.direct is False  # NiO's gap is indirect
    # independently: the fixed run's eigenvalues with its 16 filled bands per spin channel
    from ase.io import read

    calc = read(DATA / "nio_afm_pbe_u6_fixed.out", format="espresso-out").calc
    eps = np.array([[calc.get_eigenvalues(k, s) for k in range(len(calc.get_ibz_k_points()))]
                    for s in range(2)])
    occ = np.zeros_like(eps)
    occ[:, :, :16] = 1.0
    assert band_gap(eps, occ).gap_eV == pytest.approx(fixed.gap_eV, abs=2e-4)


def test_a_metal_from_pw_x_with_smearing_has_no_gap():
    # fcc Al through kmcflow's own espresso input (6x6x6, 0.1 eV smearing): the eigenvalues
    # nearest the Fermi energy on either side lie 1.02 eV apart on this mesh, yet a band
    # crosses it: a metal
    gap = espresso_band_gap(DATA / "al_fcc_smearing.pwo")
    assert gap.metallic and gap.gap_eV == 0.0


def test_band_gap_of_a_metal_and_of_bad_input():
    eps = np.array([[[0.0, 1.0, 2.0], [0.5, 1.5, 2.5]]])  # one spin, two k, three bands
    insulator = band_gap(eps, [[[2, 0, 0], [2, 0, 0]]])
    assert insulator.gap_eV == pytest.approx(0.5) and insulator.direct is False
    assert band_gap(eps, [[[2, 1, 0], [2, 0, 0]]]).metallic  # a half-filled band
    with pytest.raises(KmcflowError, match="no empty band"):
        band_gap(eps, np.full(eps.shape, 2.0))
    with pytest.raises(KmcflowError, match="same"):
        band_gap(eps, [[1, 1]])


def test_tuning_u_to_a_reachable_gap_hits_it_with_a_computed_point():
    calls = []

    def evaluate(u):
        calls.append(u)
        return nio_gap(u), {"code": "recorded pw.x curve"}

    result = tune_u(evaluate, 2.5, u_max_eV=10.0, tolerance=0.05, reference_error=0.1)
    assert result.success, result.why
    assert abs(nio_gap(result.tuned_U_eV) - 2.5) <= 0.05  # recomputed at the tuned U
    assert result.tuned_U_eV == pytest.approx(np.interp(2.5, NIO_GAP_EV[:5], U_EV[:5]),
                                              abs=0.05 / 0.2)
    assert len(calls) <= 4 + 3  # the grid and a few secant steps
    assert [p.stage for p in result.points][:4] == ["grid"] * 4
    assert result.points[-1].record == {"code": "recorded pw.x curve"}
    slope = result.slope_per_eV
    assert result.U_uncertainty_eV == pytest.approx(np.sqrt(0.1 ** 2 + 0.05 ** 2 / 3) / slope)
    assert not result.warnings


def test_a_target_beyond_the_saturated_gap_is_out_of_reach_not_clamped():
    # HSE06's NiO gap (about 4.2 eV) lies above what PBE+U reaches here (3.17 eV)
    result = tune_u(nio_gap, 4.2, u_max_eV=12.0, n_grid=7)
    assert not result.success and result.tuned_U_eV is None
    assert "out of reach" in result.why and "1.043-3.173" in result.why
    assert result.warnings and "not monotonic" in result.warnings[0]


def test_a_grid_point_on_target_takes_its_own_slope_and_a_flat_property_fails():
    values = {0.0: 1.0, 2.5: 3.0, 5.0: 1.5, 7.5: 2.0, 10.0: 2.5}  # non-monotonic
    result = tune_u(lambda u: values[round(u, 6)], 2.0, n_grid=5)
    assert result.success and result.tuned_U_eV == 7.5
    assert result.slope_per_eV == pytest.approx(0.2)  # (2.5 - 1.5) / 5, not the 0-2.5 pair
    assert "not monotonic" in result.warnings[0]
    flat = tune_u(lambda u: 3.0, 3.02, n_grid=2)
    assert not flat.success and "does not change with U" in flat.why
    # a property that jumps inside the bracket: refined until the bracket is too narrow
    jump = tune_u(lambda u: 1.0 if u < 3.3 else 3.0, 2.0)
    assert not jump.success and "may jump" in jump.why
    assert f"after {sum(p.stage == 'refine' for p in jump.points)} refinements" in jump.why


@pytest.mark.parametrize(("options", "field"), [
    ({"u_max_eV": 16.0}, "U range"), ({"u_min_eV": -1.0}, "U range"),
    ({"n_grid": 1}, "n_grid"), ({"tolerance": 0.0}, "tolerance"),
    ({"reference_error": -0.1}, "reference_error"),
])
def test_bad_tuning_input_is_refused(options, field):
    with pytest.raises(ConfigError) as info:
        tune_u(nio_gap, 2.5, **options)
    assert info.value.field == field
