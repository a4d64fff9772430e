"""The analysis reads the interfaces where the engine put them (issue 12, defect 6).

The engine splits the layers by the catalog's ``first_host_fraction``; the analysis assumed
one half. At 0.35 five of nine 10-90 widths were NaN, at 0.25 all were. The isotope couple
has an exact answer whatever the split: D = f0 c_v w a^2.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from kmcflow.cli import main
from kmcflow.kmc.constants import K_B_EV_PER_K
from kmcflow.kmc.observables import saved_geometry

F0_FCC = 0.78145
TEMPERATURE_K, C_V = 600.0, 0.01


def _isotope_reference_D() -> float:
    w = 1e13 * math.exp(-0.5 / (K_B_EV_PER_K * TEMPERATURE_K))
    return F0_FCC * C_V * w * 3.6**2


# each run ends while the 10-90 width is below about 40 % of the thinner slab (22 A at 0.25,
# 30 A at 0.35 of the 86 A period): beyond that its plateau drops under 90 % and the width is
# undefined by definition, whatever the analysis
@pytest.mark.parametrize(("fraction", "t_end_s"), [(0.35, 1.6e-7), (0.25, 1.0e-7)])
def test_widths_and_d_of_an_uneven_couple(examples: Path, tmp_path: Path, fraction: float,
                                          t_end_s: float, monkeypatch):
    monkeypatch.setenv("KMCFLOW_NO_MPI", "1")
    data = json.loads((examples / "isotope_couple.json").read_text())
    data["interface"]["first_host_fraction"] = fraction
    catalog = tmp_path / "uneven.json"
    catalog.write_text(json.dumps(data))
    out = tmp_path / "run"
    assert main(["kmc", "run", str(catalog), "--cells", "24", "12", "24", "--time",
                 str(t_end_s), "--samples", "9", "--temperature", str(TEMPERATURE_K),
                 "--vacancy-fraction", str(C_V), "--seed", "1", "--replicas", "4",
                 "--out", str(out), "--no-plots"]) == 0
    for replica in sorted((out / "replicas").iterdir()):
        with np.load(replica / "observables.npz") as obs:
            geometry = saved_geometry(obs)
            widths = obs["width_10_90"]
            z = obs["z"]
        n_first = round(fraction * z.size)
        assert geometry.interfaces_z_A[0] == pytest.approx(0.5 * (z[n_first - 1] + z[n_first]))
        assert np.all(np.isfinite(widths[1:])), widths  # every sample after the sharp start
    ensemble = json.loads((out / "ensemble.json").read_text())["interdiffusion"]
    assert ensemble["D_A2_per_s"] == pytest.approx(_isotope_reference_D(), rel=0.06), ensemble
    # the analysis of a finished run reads the same geometry
    first = sorted((out / "replicas").iterdir())[0]
    os.environ.pop("KMCFLOW_NO_MPI", None)
    assert main(["kmc", "analyze", str(first)]) == 0
    analysis = json.loads((first / "analysis.json").read_text())
    assert all(w is not None for w in analysis["width_10_90_A"][1:])
    assert analysis["interdiffusion_erfc"]["D_A2_per_s"] == pytest.approx(
        _isotope_reference_D(), rel=0.15)
    plane = geometry.interfaces_z_A[0]
    assert abs(analysis["boltzmann_matano"]["z_matano_A"] - plane) < 2.0  # A: Matano plane
