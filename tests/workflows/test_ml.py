"""CHGNet (weights from its wheel) on a small real Li conductor: a Li vacancy hop in Li2O."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("chgnet", reason="needs the ml extra")

from kmcflow.workflows.calculators import (
    batch_evaluator,
    load_calculator_config,
    make_calculator,
)
from kmcflow.workflows.hop import compute_hop
from kmcflow.workflows.neb import NebSettings, interpolate_band
from kmcflow.workflows.reference_hops import bulk_vacancy_hop

pytestmark = pytest.mark.ml


@pytest.fixture(scope="module")
def li2o_hop():
    return bulk_vacancy_hop("Li2O", "Li", 4.5)


def test_chgnet_neb_on_li2o_has_a_positive_barrier_with_one_maximum(li2o_hop, tmp_path):
    import torch

    torch.set_num_threads(1)
    comp = compute_hop(*li2o_hop, load_calculator_config("chgnet"),
                       neb=NebSettings(n_images=4, symmetric=True), workdir=tmp_path)
    r = comp.model_dump(mode="json")
    assert r["failure_reason"] is None, r["failure_message"]
    assert r["forward_barrier_eV"] > 0.05
    e = np.array(r["energies_eV"])
    peak = int(np.argmax(e))
    assert 0 < peak < len(e) - 1 and np.all(np.diff(e[: peak + 1]) > 0)
    assert np.all(np.diff(e[peak:]) < 0)
    assert r["neb_settings"]["batched"] is True
    assert 1e11 < r["prefactor_Hz"] < 1e14


def test_batched_band_evaluation_equals_one_by_one(li2o_hop):
    config = load_calculator_config("chgnet")
    band = interpolate_band(*li2o_hop, 4)[1:-1]
    batched = batch_evaluator(config)(band)
    for atoms, (energy, forces) in zip(band, batched, strict=True):
        atoms.calc = make_calculator(config, atoms)
        assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-4)
        assert np.allclose(atoms.get_forces(), forces, atol=1e-4)
