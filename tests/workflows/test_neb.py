"""CI-NEB barriers and Vineyard prefactors with EMT against published and analytic values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.io import write
from ase.optimize import BFGS
from pydantic import ValidationError

from kmcflow.cli import main
from kmcflow.errors import WorkflowError
from kmcflow.workflows.calculators import load_calculator_config
from kmcflow.workflows.hop import compute_hop
from kmcflow.workflows.neb import NebSettings, interpolate_band, relax_band
from kmcflow.workflows.prefactor import _frequencies_THz

EMT_CONFIG = load_calculator_config("emt")


def test_au_adatom_on_al100_matches_the_ase_tutorial(au_al_endpoints, tmp_path):
    result = compute_hop(*au_al_endpoints, EMT_CONFIG, workdir=tmp_path)
    assert result.forward_barrier_eV == pytest.approx(0.374, abs=0.005)
    assert result.reverse_barrier_eV == pytest.approx(0.374, abs=0.005)  # symmetric hop
    assert result.succeeded and result.converged and result.failure_reason is None
    assert result.force_calls > result.neb_force_calls > 0
    assert result.calculator["code"] == "emt"


def test_barrier_command_writes_band_profile_and_result(au_al_endpoints, tmp_path, capsys):
    ini, fin = tmp_path / "ini.extxyz", tmp_path / "fin.extxyz"
    write(ini, au_al_endpoints[0])
    write(fin, au_al_endpoints[1])
    code = main(["barrier", str(ini), str(fin), "--calculator", "emt", "--images", "4",
                 "--fmax", "0.05", "--out", str(tmp_path / "hop"), "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    result = json.loads(out.out)
    assert result == json.loads((tmp_path / "hop" / "result.json").read_text())
    for key in ("forward_barrier_eV", "reverse_barrier_eV", "prefactor_Hz", "prefactor_route",
                "converged", "force_calls", "failure_reason", "calculator"):
        assert key in result
    assert result["forward_barrier_eV"] == pytest.approx(0.374, abs=0.005)
    from ase.io import read

    band = read(tmp_path / "hop" / "band.extxyz", index=":")
    assert len(band) == 6 and (tmp_path / "hop" / "profile.png").stat().st_size > 0
    assert len(band[0].constraints) == 1  # the fixed Al layers travel with the band


def test_fcc_vacancy_hop_is_symmetric_with_one_saddle(cu_vacancy_endpoints, tmp_path):
    comp = compute_hop(*cu_vacancy_endpoints, EMT_CONFIG, neb=NebSettings(symmetric=True),
                       workdir=tmp_path)
    r = comp.model_dump(mode="json")
    assert r["failure_reason"] is None and r["converged"]
    assert r["forward_barrier_eV"] == pytest.approx(r["reverse_barrier_eV"], abs=0.005)
    e = np.array(r["energies_eV"]) - r["energies_eV"][0]
    peak = int(np.argmax(e))
    assert 0 < peak < len(e) - 1
    assert np.all(np.diff(e[: peak + 1]) > 0) and np.all(np.diff(e[peak:]) < 0)  # one maximum
    assert 1e12 <= r["prefactor_Hz"] <= 1e14
    assert r["prefactor_route"] == "vineyard" and r["prefactor"]["n_imaginary_saddle"] == 1
    # the reverse prefactor of a symmetric hop equals the forward one
    assert r["reverse_prefactor_Hz"] == pytest.approx(r["prefactor_Hz"], rel=0.02)
    # E_KRA of a symmetric hop is its barrier
    assert r["kra_eV"] == pytest.approx(r["forward_barrier_eV"], abs=1e-9)


def test_symmetric_hop_has_equal_prefactors_with_neighbours_vibrating(cu_vacancy_endpoints,
                                                                     tmp_path):
    from kmcflow.workflows.hop import PrefactorSettings

    comp = compute_hop(*cu_vacancy_endpoints, EMT_CONFIG, workdir=tmp_path,
                       prefactor=PrefactorSettings(radius_A=2.6))
    r = comp.model_dump(mode="json")
    # the vibrating set holds the neighbours of both ends, so forward = reverse by symmetry
    assert len(r["prefactor"]["indices"]) > 12
    assert r["reverse_prefactor_Hz"] == pytest.approx(r["prefactor_Hz"], rel=0.02)
    assert 1e12 <= r["prefactor_Hz"] <= 1e14


def test_frequency_units_against_a_harmonic_oscillator():
    # k = 1 eV/A^2 on 1 amu: omega = sqrt(k/m) = 9.8227e13 rad/s, nu = omega / 2 pi
    k_si = 1.602176634e-19 / 1e-20
    nu = math.sqrt(k_si / 1.66053906660e-27) / (2 * math.pi) / 1e12
    assert _frequencies_THz(np.array([1.0, -4.0])) == pytest.approx([nu, -2 * nu], rel=1e-9)


def test_failure_reasons_are_reported_not_raised(cu_vacancy_endpoints):
    ini, fin = cu_vacancy_endpoints
    # an asymmetric hop declared symmetric: a Ni next to the initial site only
    asym_ini, asym_fin = ini.copy(), fin.copy()
    moving = int(np.argmax(np.linalg.norm(fin.positions - ini.positions, axis=1)))
    d = ini.get_distances(moving, list(range(len(ini))), mic=True)
    d_fin = fin.get_distances(moving, list(range(len(fin))), mic=True)
    near = next(i for i in np.argsort(d) if i != moving and d[i] < 2.7 and d_fin[i] > 3.0)
    for atoms in (asym_ini, asym_fin):
        atoms[near].symbol = "Ni"
    out = relax_band(interpolate_band(asym_ini, asym_fin, 2), lambda i: EMT(),
                     NebSettings(n_images=2, symmetric=True, steps=30))
    assert out.failure_reason == "unequal_endpoints"
    # a band that only runs downhill (the unrelaxed vacancy cell into its relaxed self) has
    # no interior maximum
    relaxed = ini.copy()
    relaxed.calc = EMT()
    BFGS(relaxed, logfile=None).run(fmax=0.01)
    downhill = relax_band(interpolate_band(ini, relaxed, 2), lambda i: EMT(),
                          NebSettings(n_images=2, steps=50))
    assert downhill.energies[0] > downhill.energies[-1]
    assert downhill.failure_reason == "no_interior_maximum"

    class Broken(EMT):
        def calculate(self, *args, **kwargs):
            raise RuntimeError("SCF did not converge")

    broken = relax_band(interpolate_band(ini, fin, 2), lambda i: Broken(),
                        NebSettings(n_images=2))
    assert broken.failure_reason == "calculator_error" and "SCF" in broken.failure_message


def test_bad_endpoints_and_settings_are_refused(cu_vacancy_endpoints):
    ini, fin = cu_vacancy_endpoints
    with pytest.raises(WorkflowError, match="atoms"):
        interpolate_band(ini, fin[:-1], 2)
    swapped = fin.copy()
    swapped[0].symbol = "Ni"
    with pytest.raises(WorkflowError, match="different atoms"):
        interpolate_band(ini, swapped, 2)
    with pytest.raises(ValidationError, match="intermediate image"):
        NebSettings(n_images=0)


def test_a_killed_band_continues_from_its_checkpoint(au_al_endpoints, tmp_path):
    from ase.optimize import BFGS as Relax

    ini, fin = (a.copy() for a in au_al_endpoints)
    for atoms in (ini, fin):
        atoms.calc = EMT()
        Relax(atoms, logfile=None).run(fmax=0.01)
    fresh = relax_band(interpolate_band(ini, fin, 4), lambda i: EMT(), NebSettings())
    # a walltime kill after 8 climbing steps: the band and the optimizer state are on disk
    killed = relax_band(interpolate_band(ini, fin, 4), lambda i: EMT(), NebSettings(steps=8),
                        checkpoint=tmp_path / "ck")
    assert killed.failure_reason == "not_converged"
    resumed = relax_band(interpolate_band(ini, fin, 4), lambda i: EMT(), NebSettings(),
                         checkpoint=tmp_path / "ck")
    assert resumed.converged and resumed.settings["resumed_from_stage"] == "climb"
    assert resumed.force_calls < fresh.force_calls  # it did not start over
    assert resumed.forward_barrier == pytest.approx(fresh.forward_barrier, abs=1e-3)
    # a checkpoint of another band (other image count) is refused, not misread
    with pytest.raises(WorkflowError, match="another band") as refused:
        relax_band(interpolate_band(ini, fin, 2), lambda i: EMT(), NebSettings(n_images=2),
                   checkpoint=tmp_path / "ck")
    assert str(tmp_path / "ck") in refused.value.one_line()


def test_a_checkpoint_of_another_hop_is_refused(cu_vacancy_endpoints, tmp_path):
    """Hop B (hop A reversed) run in hop A's checkpoint folder used to return A's band; now
    every mismatch of endpoints, band settings or calculator is refused, naming the folder
    (issue 12, defect 3)."""
    from kmcflow.workflows.calculators import load_calculator_config
    from kmcflow.workflows.hop import run_neb

    ini, fin = cu_vacancy_endpoints
    emt = load_calculator_config("emt")
    ck = tmp_path / "hop_a"
    first = run_neb(ini, fin, emt, NebSettings(steps=3), tmp_path / "a", checkpoint=ck)
    assert first.failure_reason == "not_converged"  # stopped early: a checkpoint to continue
    refusals = {
        "reversed hop": lambda: run_neb(fin, ini, emt, NebSettings(), tmp_path / "b",
                                        checkpoint=ck),
        "other spring": lambda: run_neb(ini, fin, emt, NebSettings(spring_eV_per_A2=0.5),
                                        tmp_path / "c", checkpoint=ck),
        "other calculator": lambda: run_neb(
            ini, fin, load_calculator_config({"name": "emt", "extra": {"x": 1}}), NebSettings(),
            tmp_path / "d", checkpoint=ck),
    }
    for what, run in refusals.items():
        with pytest.raises(WorkflowError, match="belongs to another band") as refused:
            run()
        assert str(ck) in refused.value.one_line(), what
    # the same hop with a larger step budget continues it
    resumed = run_neb(ini, fin, emt, NebSettings(), tmp_path / "e", checkpoint=ck)
    assert resumed.converged and resumed.settings["resumed_from_stage"] in ("plain", "climb")
    assert resumed.forward_barrier == pytest.approx(0.76, abs=0.02)


def test_the_same_hop_with_endpoints_relaxed_further_starts_its_band_afresh(
        cu_vacancy_endpoints, tmp_path):
    """A walltime kill while an endpoint relaxation had hit its step limit: on resume the
    relaxation goes on and the endpoints move by hundredths of an Angstrom. The checkpoint
    names the hop's unrelaxed endpoints, so it is the same hop: its band is started afresh
    (and says so) rather than refused on every resume."""
    ini, fin = cu_vacancy_endpoints
    same_hop = {"hop": ["digest-of-initial", "digest-of-final"]}
    ck = tmp_path / "ck"
    first = relax_band(interpolate_band(ini, fin, 2), lambda i: EMT(),
                       NebSettings(n_images=2, steps=2), checkpoint=ck, identity=same_hop)
    assert first.failure_reason == "not_converged"
    moved_ini, moved_fin = ini.copy(), fin.copy()
    for atoms in (moved_ini, moved_fin):
        atoms.positions[3] += [0.02, 0.0, 0.0]
    again = relax_band(interpolate_band(moved_ini, moved_fin, 2), lambda i: EMT(),
                       NebSettings(n_images=2, steps=2), checkpoint=ck, identity=same_hop)
    assert again.settings["resumed_from_stage"] is None
    assert "moved by 0.02 A" in again.settings["checkpoint_note"]
    # another hop (its own unrelaxed endpoints) in this folder: refused
    with pytest.raises(WorkflowError, match="belongs to another band: its hop"):
        relax_band(interpolate_band(ini, fin, 2), lambda i: EMT(),
                   NebSettings(n_images=2, steps=2), checkpoint=ck,
                   identity={"hop": ["another", "hop"]})


def test_auto_optimizer_keeps_bfgs_where_calls_dominate_and_takes_fire_for_large_cheap_bands(
        cu_vacancy_endpoints, monkeypatch):
    """BFGS diagonalises the band Hessian every step: 2.3 s per step on a 255-atom x 4 EMT band
    against 0.11 s of forces (benchmarks/bench_neb.py --overhead); FIRE needs no Hessian."""
    from kmcflow.workflows import settings as settings_module
    from kmcflow.workflows.settings import AUTO_BFGS_MAX_DOF, band_optimizer

    assert NebSettings().optimizer == "auto"
    assert band_optimizer("auto", 3 * 255 * 4, expensive_calls=False) == "FIRE"
    assert band_optimizer("auto", 3 * 255 * 4, expensive_calls=True) == "BFGS"  # DFT
    assert band_optimizer("auto", AUTO_BFGS_MAX_DOF, expensive_calls=False) == "BFGS"
    assert band_optimizer("MDMin", 10**6, expensive_calls=False) == "MDMin"  # chosen: kept
    ini, fin = cu_vacancy_endpoints

    def band(**kwargs):
        return relax_band(interpolate_band(ini, fin, 4), lambda i: EMT(), NebSettings(),
                          expensive_calls=False, **kwargs)

    small = band()
    assert small.settings["optimizer"] == "BFGS" and small.settings["optimizer_choice"] == "auto"
    monkeypatch.setattr(settings_module, "AUTO_BFGS_MAX_DOF", 0)  # as if the band were large
    large = band()
    assert large.settings["optimizer"] == "FIRE" and large.converged
    # the same saddle, whichever optimizer found it
    assert large.forward_barrier == pytest.approx(small.forward_barrier, abs=0.02)
