"""``kmcflow calibrate-u`` with real pw.x (AFM-II NiO), its bad input, and U in provenance."""

from __future__ import annotations

import itertools
import json
import shutil

import pytest
import yaml

pytest.importorskip("jobflow", reason="needs the workflows extra")

from kmcflow.cli import main
from kmcflow.errors import CatalogError
from kmcflow.workflows.assembly import assemble_catalog
from kmcflow.workflows.calculators import load_calculator_config

NIO = {"name": "espresso", "spin_polarized": True, "cutoff_eV": 340.0, "kpoints": [4, 4, 4],
       "smearing_eV": 0.068, "energy_convergence_eV": 1e-4,
       "pseudopotentials": {"Ni": "Ni.pbe-nd-rrkjus.UPF", "O": "O.pbe-rrkjus.UPF"}}


@pytest.fixture
def nio_config(tmp_path):
    path = tmp_path / "nio.yaml"
    path.write_text(yaml.safe_dump(NIO))
    return path


@pytest.mark.parametrize(("args", "words"), [
    (["--u-range", "0,16"], "outside 0-15 eV"),
    (["--element", "Fe"], "Fe is not in the cell"),
    (["--element", "O"], "hubbard_U_eV"),
    (["--target", "defect_formation_energy"], "cannot be computed yet"),
    (["--calculator", "emt"], "pw.x only"),
    (["--reference", "-1"], "not a positive number"),
    (["--points", "1"], "--points"), (["--tolerance", "0"], "tolerance"),
    (["--reference-error", "-1"], "reference_error"), (["--moment", "nan"], "not finite"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, nio_config, capsys, args, words):
    base = {"--element": "Ni", "--reference": "2.3", "--calculator": str(nio_config),
            "--out": str(tmp_path / "out")}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["calibrate-u", "NiO", "--magnetic-order", "rocksalt_afm_111"]
    for flag, value in base.items():
        argv += [flag, value]
    code = main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and words in lines[0], err
    assert not (tmp_path / "out").exists()


def test_where_u_came_from_changes_no_cache_key():
    from kmcflow.workflows.hop_batch import hop_flow_maker
    from kmcflow.workflows.settings import NebSettings, PrefactorSettings, RelaxSettings

    class Settings:
        neb, relax, prefactor = NebSettings(), RelaxSettings(), PrefactorSettings()

    plain = load_calculator_config({**NIO, "hubbard_U_eV": {"Ni": 3.2}})
    tuned = plain.model_copy(update={"hubbard_U_source": {"calibration": "/x/calibration.json"}})
    assert tuned.model_dump(mode="json")["hubbard_U_source"]  # provenance keeps it
    assert "hubbard_U_source" not in plain.model_dump(mode="json")  # old dumps unchanged
    assert tuned.identity() == plain.identity()
    assert hop_flow_maker(Settings, tuned).settings() == hop_flow_maker(Settings, plain).settings()


def _result(key: str, u_ni: float, source: dict | None = None) -> dict:
    config = {**NIO, "hubbard_U_eV": {"Ni": u_ni}}
    if source:
        config["hubbard_U_source"] = source
    return {"event_key": key, "forward_barrier_eV": 0.8, "prefactor_Hz": 1e13,
            "reverse_barrier_eV": 0.8, "reverse_prefactor_Hz": 1e13, "converged": True,
            "calculator": {"code": "espresso",
                           "config": load_calculator_config(config).model_dump(mode="json")}}


def test_hops_with_two_u_values_are_refused_and_a_tuned_u_is_in_every_event(
        cu_ni_region_catalog):
    sections = {k: v for k, v in cu_ni_region_catalog(3.55, {"Cu": 0.7, "Ni": 1.0}).items()
                if k in ("lattice", "species", "hosts")}
    with pytest.raises(CatalogError, match="levels of theory") as info:
        assemble_catalog([_result("Cu/Cu->Cu", 3.2), _result("Ni/Ni->Ni", 6.0)], sections,
                         name="x")
    assert "Cu/Cu->Cu" in str(info.value) and "Ni/Ni->Ni" in str(info.value)
    source = {"method": "kmcflow calibrate-u", "reference_eV": 2.3}
    catalog, _ = assemble_catalog([_result("Cu/Cu->Cu", 3.2, source),
                                   _result("Ni/Ni->Ni", 3.2, source)], sections, name="x")
    for event in catalog["events"]:
        assert event["provenance"]["U_eV"] == {"Ni": 3.2}
        assert event["provenance"]["U_source"] == source


@pytest.mark.dft
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("pw.x") is None, reason="Quantum ESPRESSO (pw.x) is not "
                    "installed")
def test_calibrating_nio_against_a_given_gap(tmp_path, nio_config, capsys):
    out = tmp_path / "nio_u"
    argv = ["calibrate-u", "NiO", "--element", "Ni", "--reference", "2.3",
            "--reference-source", "a given target", "--magnetic-order", "rocksalt_afm_111",
            "--calculator", str(nio_config), "--u-range", "0,8", "--out", str(out), "--json"]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    with capsys.disabled():
        print("".join(f"\nU {p['U_eV']:.3f} eV: gap {p['band_gap_eV']:.3f} eV ({p['stage']})"
                      for p in sorted(record["scan"], key=lambda p: p["U_eV"])))
    grid = [p for p in record["scan"] if p["stage"] == "grid"]
    assert [p["U_eV"] for p in grid] == pytest.approx([0, 8 / 3, 16 / 3, 8])
    gaps = [p["band_gap_eV"] for p in grid]
    assert all(b > a + 0.2 for a, b in itertools.pairwise(gaps))  # rises with U
    assert all(p["converged"] and abs(p["total_magnetization_muB"]) < 0.05
               for p in record["scan"])  # every point an antiferromagnet
    assert record["success"] and abs(record["tuned_band_gap_eV"] - 2.3) <= 0.05
    assert 0 < record["U_uncertainty_eV"] < 1
    assert (out / "calibration.png").stat().st_size > 0
    # the tuned config: U and where it came from, and pw.x applies that U
    tuned = load_calculator_config(out / "calculator_tuned.yaml")
    assert tuned.hubbard_U_eV == {"Ni": record["tuned_U_eV"]}
    assert tuned.hubbard_U_source["reference_source"] == "a given target"
    from kmcflow.structures.io import read_structure
    from kmcflow.structures.magnetic import rocksalt_afm_111
    from kmcflow.workflows.u_calibration import compute_point

    cell = rocksalt_afm_111(read_structure("NiO").structure, 2.0)
    check = compute_point(cell, tuned, tmp_path / "check")
    assert check["hubbard_U_eV"] == {"Ni": record["tuned_U_eV"]}
    assert abs(check["band_gap_eV"] - 2.3) <= 0.1  # recomputed with the written config
    # a rerun reads every point back: nothing is computed again
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("points/*/point.json")}
    assert main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("points/*/point.json")} == stamps
    # ... but a point of another cell (other initial moments) is computed anew
    stamp = (tmp_path / "check" / "point.json").stat().st_mtime_ns
    other = compute_point(rocksalt_afm_111(read_structure("NiO").structure, 1.5), tuned,
                          tmp_path / "check")
    assert (tmp_path / "check" / "point.json").stat().st_mtime_ns != stamp
    assert other["structure"]["magmom"][:2] == [1.5, -1.5]
