"""The engine against exact results (the same checks as `kmcflow kmc validate`)."""

from __future__ import annotations

import pytest

from kmcflow.kmc import validate


@pytest.mark.parametrize("lattice, reference", [("fcc", 0.78145), ("sc", 0.65311),
                                                ("square", 0.46694)])
def test_tracer_correlation_factor_within_1_percent(lattice, reference):
    result = validate.check_correlation_factor(lattice)
    assert result.reference == pytest.approx(reference, abs=1e-5)
    assert result.measured == pytest.approx(reference, rel=0.01), result


@pytest.mark.slow
@pytest.mark.parametrize("lattice", ["fcc", "square"])
def test_isotope_couple_interdiffusion_and_width(lattice):
    d_check, w_check = validate.check_isotope(lattice)
    assert d_check.measured == pytest.approx(d_check.reference, rel=0.05), d_check
    assert w_check.measured == pytest.approx(w_check.reference, rel=0.05), w_check


@pytest.mark.slow
@pytest.mark.parametrize("lattice", ["sc", "square"])
def test_collective_diffusion_equals_w_a2(lattice):
    result = validate.check_collective(lattice)
    # z w lambda^2 / (2 d) is w a^2 on both lattices
    assert result.reference == pytest.approx(validate.hop_rate_Hz(), rel=1e-12)
    assert result.measured == pytest.approx(result.reference, rel=0.03), result


@pytest.mark.parametrize("lattice", ["fcc", "square"])
def test_equilibrium_occupations_follow_fermi_dirac(lattice):
    result = validate.check_boltzmann(lattice)
    assert result.measured == pytest.approx(result.reference, rel=0.03), result


def test_dilute_limit_is_boltzmann():
    # few atoms: the Fermi-Dirac odds ratio tends to the plain Boltzmann ratio n_B / n_A
    result = validate.check_boltzmann("sc", delta_e_eV=0.03, vacancy_fraction=0.97,
                                      statistic="boltzmann", min_sites=20_000)
    assert result.measured == pytest.approx(result.reference, rel=0.03), result
