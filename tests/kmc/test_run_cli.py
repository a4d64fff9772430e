"""The run/analyze/arrhenius commands end to end, on small lattices."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kmcflow.cli import main
from kmcflow.errors import ConfigError
from kmcflow.kmc.catalog import K_B_EV_PER_K, load_catalog
from kmcflow.kmc.runner import RunSettings
from kmcflow.kmc.study import arrhenius_study


def test_run_writes_summary_observables_and_plots(examples: Path, tmp_path: Path, capsys):
    out = tmp_path / "iso"
    code = main(["kmc", "run", str(examples / "isotope_couple.json"), "--cells", "6", "6", "16",
                 "--temperature", "600", "--vacancy-fraction", "0.02", "--steps", "200000",
                 "--seed", "3", "--samples", "6", "--out", str(out), "--snapshots"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["events_executed"] == 200_000
    assert summary["inputs"]["n_sites"] == 6 * 6 * 16 * 4
    assert summary["interdiffusion"]["D_A2_per_s"] > 0
    with np.load(out / "observables.npz") as obs:
        assert obs["concentration"].shape == (6, 2, 32)
        assert obs["time"][0] == 0 and np.all(np.diff(obs["time"]) > 0)
        assert list(obs["species"]) == ["A", "B"]
        # every layer is fully described: A + B + vacancies = 1
        total = obs["concentration"].sum(axis=1) + obs["vacancy_concentration"]
        assert np.allclose(total, 1.0)
        assert obs["msd"].shape == (6, 2) and obs["width_10_90"].shape == (6,)
    for name in ("width.png", "profiles.png", "analysis.json", "snapshots.extxyz"):
        assert (out / name).stat().st_size > 0
    frames = (out / "snapshots.extxyz").read_text().splitlines()
    assert frames[1].startswith('Lattice="') and int(frames[0]) == 6 * 6 * 16 * 4 - round(
        0.02 * 6 * 6 * 16 * 4)
    assert main(["kmc", "analyze", str(out)]) == 0


def _kill_midway(cat, settings, target: Path) -> None:
    """Run into ``target`` and interrupt it (as Ctrl-C would) once 40 % is done."""
    from kmcflow.kmc.runner import run_to_directory

    def die(frac: float, info: str) -> None:
        if frac > 0.4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_to_directory(cat, settings, target, progress=die, checkpoint_interval_s=0.0,
                         chunk_events=50_000)


def test_killed_run_resumes_to_the_same_result(examples: Path, tmp_path: Path):
    args = ["kmc", "run", str(examples / "isotope_couple.json"), "--cells", "5", "5", "12",
            "--steps", "300000", "--samples", "4", "--no-plots", "--checkpoint-interval", "0"]
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0
    # a run killed after its checkpoint: simulate by running a shorter command into the
    # .partial folder of the target, then resuming the full one
    from kmcflow.kmc.runner import partial_path, settings_from_catalog

    cat = load_catalog(examples / "isotope_couple.json")
    settings = settings_from_catalog(cat, cells=(5, 5, 12), steps=300_000, samples=4)
    target = tmp_path / "resumed"
    _kill_midway(cat, settings, target)
    assert (partial_path(target) / "checkpoint.npz").exists() and not target.exists()
    assert main([*args, "--out", str(target), "--resume"]) == 0
    with np.load(tmp_path / "straight" / "observables.npz") as a, np.load(
            target / "observables.npz") as b:
        for key in ("time", "concentration", "msd", "n_events"):
            assert np.array_equal(a[key], b[key]), key


@pytest.mark.slow
def test_arrhenius_recovers_the_input_barrier(examples: Path, tmp_path: Path):
    cat = load_catalog(examples / "isotope_couple.json")
    base = RunSettings(cells=(8, 8, 32), temperature_K=0.0, vacancy_fraction=0.02,
                       steps=1_500_000, time_s=None, samples=9, seed=5)
    temps = [400.0, 500.0, 650.0, 800.0]
    result = arrhenius_study(cat, temps, base, tmp_path / "arr", replicas=2)
    assert result["Ea_eV"] == pytest.approx(0.5, abs=0.01)
    # D0 = f0 c_v nu a^2 for the isotope couple on fcc
    d0 = 0.78145 * 0.02 * 1e13 * 3.6**2
    assert result["D0_A2_per_s"] == pytest.approx(d0, rel=0.15)
    row = result["temperatures"][1]
    w = 1e13 * math.exp(-0.5 / (K_B_EV_PER_K * 500.0))
    assert row["D_A2_per_s"] == pytest.approx(0.78145 * 0.02 * w * 3.6**2, rel=0.08)
    assert (tmp_path / "arr" / "arrhenius.png").stat().st_size > 0


def test_kmc_package_imports_no_heavy_dependency():
    # (scipy is not in the list: numba itself imports it whenever it is installed)
    code = ("import sys, kmcflow.kmc, kmcflow.kmc.engine, kmcflow.kmc.catalog;"
            "bad = [m for m in ('pymatgen', 'ase', 'jobflow', 'torch', 'matplotlib', 'typer')"
            " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_console_script_help_for_every_command():
    for cmd in (["--help"], ["catalog", "check", "--help"], ["kmc", "run", "--help"],
                ["kmc", "analyze", "--help"], ["kmc", "arrhenius", "--help"],
                ["kmc", "validate", "--help"]):
        proc = subprocess.run([sys.executable, "-m", "kmcflow.cli", *cmd], capture_output=True,
                              text=True)
        assert proc.returncode == 0 and "Usage" in proc.stdout, (cmd, proc.stderr)


def test_validate_json_records(capsys):
    # the cheapest check set, on the smallest lattice: --json records have the promised keys
    assert main(["kmc", "validate", "--lattice", "honeycomb", "--quick", "--json"]) in (0, 1)
    records = json.loads(capsys.readouterr().out)
    assert {r["check"] for r in records} >= {"correlation_factor", "collective_diffusion",
                                             "isotope_interdiffusion", "boltzmann_occupation"}
    for r in records:
        assert set(r) >= {"check", "lattice", "measured", "reference", "tolerance", "passed"}
        assert r["passed"], r


def test_resume_with_other_flags_is_refused(examples: Path, tmp_path: Path, capsys):
    from kmcflow.kmc.runner import partial_path, settings_from_catalog

    cat = load_catalog(examples / "isotope_couple.json")
    settings = settings_from_catalog(cat, cells=(5, 5, 12), steps=200_000, samples=4)
    target = tmp_path / "run"
    _kill_midway(cat, settings, target)
    code = main(["kmc", "run", str(examples / "isotope_couple.json"), "--cells", "5", "5", "12",
                 "--steps", "200000", "--samples", "6", "--out", str(target), "--resume"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--samples" in err[0] and "checkpoint" in err[0]
    assert (partial_path(target) / "checkpoint.npz").exists()  # kept for a proper resume


def test_a_run_that_fails_at_the_last_step_keeps_the_previous_output(examples, tmp_path,
                                                                     monkeypatch):
    """The old output folder was deleted before the new one was renamed into place; a failure
    in between (disk quota, a kill) lost both. Now it is swapped out and back."""
    import os

    out = tmp_path / "run"
    args = ["kmc", "run", str(examples / "isotope_couple.json"), "--steps", "2000",
            "--cells", "4", "4", "8", "--samples", "3", "--out", str(out), "--no-plots"]
    assert main(args) == 0
    before = (out / "summary.json").read_text()
    real_replace = os.replace

    def failing_replace(src, dst):
        if str(src).endswith(".partial"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        main([*args, "--seed", "7", "--overwrite"])
    monkeypatch.setattr(os, "replace", real_replace)
    assert (out / "summary.json").read_text() == before


def test_arrhenius_with_two_temperatures_reports_no_error_bar_instead_of_failing(examples,
                                                                                  tmp_path):
    """Two points fix the line exactly: the fit's standard error is undefined (NaN), which
    the JSON writer refused after every run had finished (a traceback, no arrhenius.json)."""
    out = tmp_path / "arr"
    assert main(["kmc", "arrhenius", str(examples / "isotope_couple.json"), "-T", "600", "-T",
                 "700", "--steps", "20000", "--cells", "4", "4", "8", "--out", str(out)]) == 0
    result = json.loads((out / "arrhenius.json").read_text())
    assert result["Ea_stderr_eV"] is None and "two temperatures" in result["Ea_stderr_source"]
    assert result["Ea_eV"] == pytest.approx(0.5, abs=0.1)  # every hop has a 0.5 eV barrier


def test_each_temperature_of_a_study_has_its_own_random_stream(examples: Path, tmp_path: Path):
    """With one stream for all, a one-barrier catalog ran the same hops at every temperature,
    only rescaled in time: D followed exp(-E/kT) exactly and the fit claimed no error."""
    from kmcflow.kmc.study import replica_stream

    cat = load_catalog(examples / "isotope_couple.json")
    base = RunSettings(cells=(6, 6, 16), temperature_K=600.0, vacancy_fraction=0.02,
                       steps=200_000, time_s=None, samples=6, seed=5)
    result = arrhenius_study(cat, [500.0, 650.0, 800.0], base, tmp_path / "arr")
    ln_d = [math.log(r["D_A2_per_s"]) + 0.5 / (K_B_EV_PER_K * r["temperature_K"])
            for r in result["temperatures"]]
    assert max(ln_d) - min(ln_d) > 1e-3  # independent noise at each temperature
    assert result["r_squared"] < 1 - 1e-9 and result["Ea_stderr_eV"] > 0
    streams = {replica_stream(t, r) for t in (500.0, 650.0, 800.0, 800.1) for r in range(3)}
    assert len(streams) == 12
    with pytest.raises(ConfigError, match="replicas"):
        arrhenius_study(cat, [500.0, 650.0], base, tmp_path / "bad", replicas=0)
    assert not (tmp_path / "bad").exists()
