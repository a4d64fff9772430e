"""The public Python API: cheap to import, objects in and out, numbers against references."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kmcflow
from kmcflow.errors import ConfigError, StructureError
from kmcflow.kmc.catalog import K_B_EV_PER_K

F0_FCC = 0.78145  # tracer correlation factor of the fcc vacancy mechanism


def test_import_kmcflow_loads_no_stage_and_every_public_name_resolves():
    probe = ("import sys, kmcflow\n"
             "heavy = [m for m in sys.modules if m.split('.')[0] in "
             "('numpy', 'pymatgen', 'ase', 'numba', 'pydantic', 'jobflow', 'kmcflow.kmc')]\n"
             "print(heavy)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    for name in kmcflow.__all__:
        assert getattr(kmcflow, name) is not None, name
    assert set(kmcflow.__all__) <= set(dir(kmcflow))
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        kmcflow.nonsense  # noqa: B018


def _analytic_isotope_D(catalog) -> float:
    """D = f0 c_v w a^2 of the ideal fcc isotope couple (every hop at the same rate w)."""
    event = catalog.events[0]
    cond = catalog.conditions
    w = event.prefactor_Hz * math.exp(-event.barrier_eV / (K_B_EV_PER_K * cond.temperature_K))
    return F0_FCC * cond.vacancy_fraction * w * catalog.lattice.a_A ** 2


def test_run_kmc_in_memory_gives_the_analytic_isotope_D(examples: Path):
    catalog = kmcflow.load_catalog(examples / "isotope_couple.json")
    assert kmcflow.validate_catalog(catalog) == []
    reference = _analytic_isotope_D(catalog)
    values = []
    for seed in (1, 2):
        result = kmcflow.run_kmc(catalog, steps=4_000_000, seed=seed)
        assert result.succeeded and result.failure is None
        values.append(result.D_A2_per_s)
        assert result.summary["interdiffusion"]["D_stderr_A2_per_s"] is None  # one trajectory
        assert 0 < result.line_fit_stderr_A2_per_s < 0.05 * result.D_A2_per_s
    assert np.mean(values) == pytest.approx(reference, rel=0.06)
    # sigma^2 read from the widths grows with slope 2 D over the fitted samples
    fit = result.interdiffusion
    slope = np.polyfit(fit.times_s[fit.used], result.sigma2_A2[fit.used], 1)[0]
    assert slope / 2 == pytest.approx(result.D_A2_per_s, rel=1e-6)


def test_the_folder_is_written_from_the_in_memory_result(examples: Path, tmp_path: Path):
    catalog = kmcflow.load_catalog(examples / "isotope_couple.json")
    settings = kmcflow.RunSettings(cells=(6, 6, 12), temperature_K=700.0, vacancy_fraction=0.02,
                                   steps=300_000, time_s=None, samples=6, seed=4)
    memory = kmcflow.run_kmc(catalog, settings)
    folder = kmcflow.run_kmc_to_folder(catalog, settings, tmp_path / "run")
    with np.load(tmp_path / "run" / "observables.npz") as saved:
        for key, value in memory.observables().items():
            np.testing.assert_array_equal(saved[key], value, err_msg=key)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["interdiffusion"]["D_A2_per_s"] == memory.D_A2_per_s == folder.D_A2_per_s
    assert summary["events_executed"] == memory.summary["events_executed"] == 300_000
    with pytest.raises(ConfigError, match="either settings"):
        kmcflow.run_kmc(catalog, settings, seed=3)


def test_a_bad_condition_is_refused_like_the_flag():

    catalog = kmcflow.load_catalog(Path(__file__).parents[1] / "examples" / "catalogs"
                                   / "isotope_couple.json")
    with pytest.raises(ConfigError, match="vacancy-fraction"):
        kmcflow.run_kmc(catalog, vacancy_fraction=1.5)


def test_validate_catalog_lists_the_problems_of_a_dict(examples: Path):
    data = json.loads((examples / "isotope_couple.json").read_text())
    data["events"][0]["barrier_eV"] = -1.0
    problems = kmcflow.validate_catalog(data)
    assert problems and problems[0].severity == "error"
    assert "events[0]" in problems[0].field or "barrier" in problems[0].field


def test_structures_and_atoms_go_wherever_a_file_goes():
    pytest.importorskip("pymatgen")
    from ase.build import bulk
    from pymatgen.core import Lattice, Structure

    cu = Structure(Lattice.cubic(3.61), ["Cu"] * 4,
                   [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    ni = bulk("Ni", "fcc", a=3.52, cubic=True)
    labelled = kmcflow.read_structure(cu)
    assert labelled.name == "Cu" and labelled.hosts == ["Cu"] * 4
    assert kmcflow.read_structure(ni, name="nickel").name == "nickel"
    search = kmcflow.find_matches(cu, ni, (1, 0, 0), (1, 0, 0))
    first = search.matches[0]
    # Cu on Ni(100), 1x1: the film is squeezed by a_Ni / a_Cu - 1
    assert first.strain == pytest.approx(3.52 / 3.61 - 1, abs=1e-4)
    interface = kmcflow.build_interface(search)
    assert sorted(set(interface.hosts)) == ["Cu", "Ni"]
    hops = kmcflow.enumerate_hops(cu, "Cu")
    assert len(hops.hops) == 1 and hops.hops[0].length_A == pytest.approx(3.61 / 2 ** 0.5)
    assert hops.hops[0].multiplicity == 4 * 12  # directed hops in the cell: 12 per fcc site
    overlapping = Structure(Lattice.cubic(3.0), ["Cu", "Cu"], [[0, 0, 0], [0.01, 0, 0]])
    with pytest.raises(StructureError, match="overlapping"):
        kmcflow.read_structure(overlapping)
    with pytest.raises(StructureError, match="cannot read a structure from a list"):
        kmcflow.read_structure([1, 2, 3])


def test_a_result_written_later_reads_back_through_analyze(examples: Path, tmp_path: Path):
    from kmcflow.errors import KmcflowError
    from kmcflow.kmc.study import analyze_directory

    catalog = kmcflow.load_catalog(examples / "isotope_couple.json")
    result = kmcflow.run_kmc(catalog, cells=(6, 6, 12), steps=300_000, samples=6, seed=2)
    folder = result.write(tmp_path / "run")
    analysis = analyze_directory(folder)
    assert analysis["interdiffusion_erfc"]["D_A2_per_s"] == pytest.approx(result.D_A2_per_s,
                                                                     rel=1e-9)
    with pytest.raises(KmcflowError, match="overwrite"):
        result.write(folder)
    result.write(folder, overwrite=True)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(KmcflowError):
        result.write(tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_the_figure_of_a_result_draws_the_line_its_D_comes_from(examples: Path, tmp_path: Path):
    from kmcflow.kmc.plots import sigma2_curve, sigma2_figure

    catalog = kmcflow.load_catalog(examples / "isotope_couple.json")
    result = kmcflow.run_kmc(catalog, cells=(6, 6, 12), steps=300_000, samples=6, seed=2)
    path = result.plot_sigma2(tmp_path / "sigma2.png")
    assert path.stat().st_size > 10_000
    fit = result.interdiffusion
    curve = sigma2_curve([result.time_s], [result.sigma2_A2], "x", fit.D_A2_per_s,
                         fit.intercept_A2)
    line = curve.line(np.array([0.0, 1.0]))
    assert line[1] - line[0] == pytest.approx(2 * result.D_A2_per_s, rel=1e-12)
    np.testing.assert_allclose(curve.mean_A2, result.sigma2_A2)
    assert sigma2_figure([curve]) is not None


def test_compute_hop_checks_every_input_before_the_first_force_call(monkeypatch, tmp_path):
    pytest.importorskip("jobflow")
    from pymatgen.core import Lattice, Structure

    from kmcflow.errors import KmcflowError
    from kmcflow.workflows import hop as hop_module

    def no_force_calls(*args, **kwargs):
        raise AssertionError("a calculation started before the inputs were checked")

    monkeypatch.setattr(hop_module, "relax_endpoint", no_force_calls)
    cu = Structure(Lattice.cubic(3.61), ["Cu"] * 4,
                   [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    bulk_hop = kmcflow.enumerate_hops(cu, "Cu").hops[0]
    pair = kmcflow.hop_endpoints(kmcflow.read_structure(cu), bulk_hop, 7.0)
    initial, final = pair.ase_atoms()
    cases = [
        ({"neb": {"n_images": 0}}, "neb.n_images"),
        ({"neb": {"nimages": 3}}, "neb.nimages"),
        ({"relax": "fast"}, "relax"),
        ({"prefactor": {"radius_A": -1}}, "prefactor.radius_A"),
        ({"hop": 3}, "hop"),
    ]
    for kwargs, field in cases:
        with pytest.raises(KmcflowError) as caught:
            kmcflow.compute_hop(initial, final, "emt", **kwargs)
        assert caught.value.field == field, (kwargs, caught.value.one_line())
    with pytest.raises(KmcflowError, match="unknown calculator"):
        kmcflow.compute_hop(initial, final, "vasp-nonsense")
    with pytest.raises(KmcflowError, match="not found"):
        kmcflow.compute_hop(tmp_path / "missing.extxyz", final, "emt")
    with pytest.raises(KmcflowError) as caught:
        kmcflow.compute_hop([1, 2], final, "emt")
    assert caught.value.field == "initial"
    # a Hop, pymatgen structures and a dict of settings are all taken (then the band would run)
    with pytest.raises(AssertionError, match="before the inputs"):
        kmcflow.compute_hop(pair.initial.structure, pair.final, "emt", hop=bulk_hop,
                            neb={"n_images": 3})


def test_run_kmc_refuses_what_no_run_can_have_in_one_line(examples: Path):
    from kmcflow.errors import CatalogError, KmcflowError

    path = examples / "isotope_couple.json"
    catalog = kmcflow.load_catalog(path)
    cases = [
        ({"temperature": 900}, "temperature"),  # a typo of temperature_K
        ({"temperature_K": "900"}, "temperature"),
        ({"cells": 5}, "cells"),
        ({"cells": (4.9, 4, 8)}, "cells"),  # was truncated to 4 while the summary said 4.9
        ({"steps": 2000.7}, "steps"),
        ({"steps": True}, "steps"),
        ({"seed": 1.5}, "seed"),
        ({"replica": -1}, "replica"),
        ({"samples": 0}, "samples"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ConfigError) as caught:
            kmcflow.run_kmc(catalog, **kwargs)
        assert caught.value.field == field, (kwargs, caught.value.one_line())
    hand_made = kmcflow.RunSettings(cells=(6, 6, 12), temperature_K=-5.0, vacancy_fraction=0.01,
                                    steps=None, time_s=None, samples=5, seed=1)
    with pytest.raises(ConfigError, match="exactly one of"):
        kmcflow.run_kmc(catalog, hand_made)
    with pytest.raises(ConfigError, match="must be a RunSettings"):
        kmcflow.run_kmc(catalog, {"steps": 10})
    with pytest.raises(ConfigError, match="catalog must be a Catalog"):
        kmcflow.run_kmc(None)
    data = json.loads(path.read_text())
    data["events"][0]["prefactor_Hz"] = -1
    with pytest.raises(CatalogError):
        kmcflow.run_kmc(data)
    # a catalog file and its parsed JSON are taken as they are
    by_file = kmcflow.run_kmc(str(path), cells=(4, 4, 8), steps=2000, samples=3, seed=1)
    by_json = kmcflow.run_kmc(json.loads(path.read_text()), cells=(4, 4, 8), steps=2000,
                              samples=3, seed=1)
    np.testing.assert_array_equal(by_file.concentration, by_json.concentration)
    assert isinstance(by_file, kmcflow.KmcResult) and issubclass(CatalogError, KmcflowError)


def test_a_stage_without_its_extra_names_the_extra_to_install():
    probe = ("import sys\n"
             "for name in ('pymatgen', 'jobflow'):\n"
             "    sys.modules[name] = None  # as if the package were not installed\n"
             "import kmcflow\n"
             "for attr in ('find_matches', 'run_campaign'):\n"
             "    try:\n"
             "        getattr(kmcflow, attr)\n"
             "    except ImportError as exc:\n"
             "        print(exc)\n"
             "print(kmcflow.load_catalog.__name__)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert "kmcflow.find_matches needs the 'structures' extra" in out[0]
    assert "pip install 'kmcflow[structures]'" in out[0]
    assert "kmcflow.run_campaign needs the 'workflows' extra" in out[1]
    assert out[2] == "load_catalog"


def test_structure_functions_name_what_they_were_given_wrongly():
    pytest.importorskip("pymatgen")
    from pymatgen.core import Lattice, Structure

    from kmcflow.errors import CatalogError

    cu = Structure(Lattice.cubic(3.61), ["Cu"] * 4,
                   [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    hop = kmcflow.enumerate_hops(cu, "Cu").hops[0]
    pair = kmcflow.hop_endpoints(cu, hop, 7.0)  # a Structure where a labelled one was needed
    assert len(pair.initial.structure) == len(pair.final.structure) == 31
    cases = [(lambda: kmcflow.hop_endpoints(cu, "hop 0"), "hop"),
             (lambda: kmcflow.build_interface(cu), "search"),
             (lambda: kmcflow.enumerate_hops(cu, None), "species"),
             (lambda: kmcflow.find_matches(cu, cu, (1, 0, 0), (1, 0, 0), limits={"strain": 1}),
              "limits")]
    for call, field in cases:
        with pytest.raises(StructureError) as caught:
            call()
        assert caught.value.field == field
    search = kmcflow.find_matches(cu, cu, (1, 0, 0), (1, 0, 0), limits={"max_strain": 0.01})
    assert search.limits.max_strain == 0.01
    with pytest.raises(CatalogError, match="must be a path"):
        kmcflow.load_catalog(None)
