"""Warm starts: a cheap calculator relaxes the hop first, the expensive one refines and judges.

The reference is the plain band of the expensive calculator (EMT) on the same endpoints; the
cheap model is EMT with its pair repulsion scaled by 0.8 (barriers 0.02-0.2 eV off), or CHGNet.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.io import write
from ase.optimize import BFGS

from kmcflow.cli import main
from kmcflow.errors import ConfigError
from kmcflow.workflows.calculators import load_calculator_config
from kmcflow.workflows.hop import compute_hop
from kmcflow.workflows.neb import NebSettings, interpolate_band, relax_band
from kmcflow.workflows.reference_hops import perturbed_emt
from kmcflow.workflows.warm_start import carry_band

BFGS_BAND = NebSettings(optimizer="BFGS")


def _relaxed(atoms, calc):
    atoms = atoms.copy()
    atoms.calc = calc
    BFGS(atoms, logfile=None).run(fmax=0.01)
    atoms.calc = None
    return atoms


def test_carry_band_moves_each_image_by_the_weighted_endpoint_shifts(cu_vacancy_endpoints):
    ini, fin = cu_vacancy_endpoints
    band = interpolate_band(ini, fin, 4)
    shift_i = np.zeros((len(ini), 3))
    shift_i[3] = [0.05, 0.0, 0.0]
    shift_f = np.zeros((len(ini), 3))
    shift_f[3] = [0.0, -0.10, 0.0]
    new_i, new_f = ini.copy(), fin.copy()
    new_i.positions += shift_i
    new_f.positions += shift_f
    carried = carry_band(band, new_i, new_f)
    assert len(carried) == 6
    assert np.allclose(carried[0].positions, new_i.positions)
    assert np.allclose(carried[-1].positions, new_f.positions)
    for k in range(1, 5):
        s = k / 5
        expected = band[k].positions + (1 - s) * shift_i + s * shift_f
        assert np.allclose(carried[k].positions, expected)
    # unchanged endpoints carry the band unchanged
    same = carry_band(band, ini, fin)
    assert all(np.allclose(a.positions, b.positions) for a, b in zip(same, band, strict=True))


@pytest.mark.parametrize("hop", ["au_al_endpoints", "cu_vacancy_endpoints"])
def test_warm_started_band_gives_the_plain_barrier_for_a_fraction_of_the_calls(hop, request):
    initial, final = request.getfixturevalue(hop)
    cheap_i, cheap_f = _relaxed(initial, perturbed_emt()), _relaxed(final, perturbed_emt())
    cheap = relax_band(interpolate_band(cheap_i, cheap_f, 4), lambda i: perturbed_emt(),
                       BFGS_BAND)
    ini, fin = _relaxed(cheap_i, EMT()), _relaxed(cheap_f, EMT())
    plain = relax_band(interpolate_band(ini, fin, 4), lambda i: EMT(), BFGS_BAND)
    warm = relax_band(carry_band(cheap.atoms(), ini, fin), lambda i: EMT(), BFGS_BAND)
    # the cheap model is wrong by 0.02 (Au/Al) and 0.14 eV (Cu); the warm start is not
    assert abs(cheap.forward_barrier - plain.forward_barrier) > 0.015
    assert warm.converged and plain.converged
    assert warm.forward_barrier == pytest.approx(plain.forward_barrier, abs=0.005)
    reference = {"au_al_endpoints": 0.374, "cu_vacancy_endpoints": 0.753}[hop]
    assert warm.forward_barrier == pytest.approx(reference, abs=0.01)
    # counted: 74 and 58 expensive calls for the plain bands, 14 each warm-started
    assert warm.force_calls * 3 <= plain.force_calls


def test_compute_hop_with_a_warm_start_counts_both_calculators(au_al_endpoints, tmp_path):
    from kmcflow.workflows.output import write_hop_outputs

    plain = compute_hop(*au_al_endpoints, "emt", neb=BFGS_BAND)
    warm = compute_hop(*au_al_endpoints, {"name": "emt", "warm_start": "emt"}, neb=BFGS_BAND)
    assert warm.succeeded and warm.converged
    assert warm.forward_barrier_eV == pytest.approx(plain.forward_barrier_eV, abs=1e-3)
    # the band was relaxed by the warm start: the expensive band only verifies it
    assert warm.neb_force_calls <= 12 < plain.neb_force_calls == 74
    assert warm.warm_start_force_calls == warm.warm_start["force_calls"] > 74
    assert warm.warm_start["forward_barrier_eV"] == pytest.approx(0.374, abs=0.005)
    assert warm.calculator["config"]["warm_start"]["name"] == "emt"
    assert plain.warm_start is None and plain.warm_start_force_calls is None
    record = write_hop_outputs(warm, tmp_path / "hop")
    saved = json.loads((tmp_path / "hop" / "result.json").read_text())
    assert saved["warm_start_force_calls"] == record["warm_start_force_calls"] > 0
    assert saved["force_calls"] == warm.force_calls
    assert "warm_start" not in plain.model_dump(mode="json")


def test_flow_and_compute_hop_give_the_same_warm_started_numbers(cu_vacancy_endpoints,
                                                                 tmp_path):
    from pymatgen.io.ase import AseAtomsAdaptor

    from kmcflow.workflows.campaign import campaign_store
    from kmcflow.workflows.execution import run_flow
    from kmcflow.workflows.flows import HopFlowMaker
    from kmcflow.workflows.results import HopResult

    calc = {"name": "emt", "warm_start": "emt"}
    direct = compute_hop(*cu_vacancy_endpoints, calc)
    ini, fin = (AseAtomsAdaptor.get_structure(a) for a in cu_vacancy_endpoints)
    store = campaign_store(tmp_path)
    maker = HopFlowMaker(calculator=load_calculator_config(calc).model_dump(mode="json"))
    flow = maker.make(ini, fin, {"event_key": "Cu/Cu->Cu"})
    assert len(flow.jobs) == 10  # 4 warm-start jobs before the 6 of a hop
    assert run_flow(flow, store, tmp_path / "jobs") is None
    store.connect()
    doc = store.query_one({"name": "hop result Cu/Cu->Cu"}, load=True)
    result = HopResult.model_validate(doc["output"])
    assert result.forward_barrier_eV == pytest.approx(direct.forward_barrier_eV, abs=1e-6)
    assert result.warm_start_force_calls == direct.warm_start_force_calls
    assert result.force_calls == direct.force_calls


def test_config_without_a_warm_start_dumps_as_before():
    # cache keys and checkpoint identities of stored campaigns hash this dump
    assert "warm_start" not in load_calculator_config("emt").model_dump(mode="json")
    with_cheap = load_calculator_config({"name": "emt", "warm_start": "emt"})
    assert with_cheap.model_dump(mode="json")["warm_start"]["name"] == "emt"
    assert with_cheap.without_warm_start() == load_calculator_config("emt")


def test_warm_start_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="warm start of its own") as exc:
        load_calculator_config({"name": "emt", "warm_start": {"name": "emt",
                                                              "warm_start": "emt"}})
    assert exc.value.field.startswith("warm_start")
    with pytest.raises(ConfigError) as exc:
        load_calculator_config({"name": "emt", "warm_start": {"name": "nope"}})
    assert exc.value.field == "warm_start.name"
    cheap = tmp_path / "cheap.yaml"
    cheap.write_text("name: emt\n")
    main_file = tmp_path / "dft.yaml"
    main_file.write_text("name: emt\nwarm_start: cheap.yaml\n")  # relative to dft.yaml
    assert load_calculator_config(main_file).warm_start.name == "emt"


def test_barrier_command_warm_start_flags(au_al_endpoints, tmp_path, capsys):
    ini, fin = tmp_path / "ini.extxyz", tmp_path / "fin.extxyz"
    write(ini, au_al_endpoints[0])
    write(fin, au_al_endpoints[1])
    assert main(["barrier", str(ini), str(fin), "--out", str(tmp_path / "bad"),
                 "--warm-start", "nope"]) == 2
    assert "--warm-start" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    assert main(["barrier", str(ini), str(fin), "--out", str(tmp_path / "bad"),
                 "--surrogate", "kriging"]) == 2
    assert "--surrogate" in capsys.readouterr().err
    assert main(["barrier", str(ini), str(fin), "--out", str(tmp_path / "hop"),
                 "--warm-start", "emt", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["warm_start"]["calculator"] == "emt"
    assert record["warm_start_force_calls"] > record["neb_force_calls"]
    assert record["forward_barrier_eV"] == pytest.approx(0.374, abs=0.005)


@pytest.mark.ml
@pytest.mark.slow
def test_chgnet_warm_start_of_an_emt_hop_keeps_the_emt_barrier(au_al_endpoints):
    pytest.importorskip("chgnet", reason="needs the ml extra")
    import torch

    torch.set_num_threads(1)
    plain = compute_hop(*au_al_endpoints, "emt", neb=BFGS_BAND)
    warm = compute_hop(*au_al_endpoints, {"name": "emt", "warm_start": "chgnet"},
                       neb=BFGS_BAND)
    # CHGNet's own barrier of this hop is far off (about 1 eV): only the shape helps
    assert abs(warm.warm_start["forward_barrier_eV"] - 0.374) > 0.1
    assert warm.forward_barrier_eV == pytest.approx(0.374, abs=0.01)
    assert warm.converged and warm.neb_force_calls < plain.neb_force_calls
