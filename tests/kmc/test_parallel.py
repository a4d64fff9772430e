"""MPI replicas and domain decomposition.

Tests marked ``mpi`` launch ``mpiexec -n 2`` (the ``mpi`` extra) in a subprocess; the others run
in-process with the serial stand-in communicator.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kmcflow.cli import main
from kmcflow.errors import CheckpointError, ParallelError
from kmcflow.kmc.catalog import load_catalog
from kmcflow.kmc.constants import K_B_EV_PER_K
from kmcflow.kmc.parallel.comm import SerialComm, mpi_available
from kmcflow.kmc.parallel.domain_runner import sweep_schedule
from kmcflow.kmc.parallel.grid import choose_grid
from kmcflow.kmc.parallel.replicas import reduce_replicas, run_replicas
from kmcflow.kmc.runner import settings_from_catalog

MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent) + os.pathsep
                       + os.environ.get("PATH", ""))
needs_mpi = pytest.mark.skipif(not (mpi_available() and MPIEXEC),
                               reason="needs the mpi extra (mpi4py and mpiexec)")

F0_FCC = 0.78145


def _isotope_reference_D(temperature_K: float, vacancy_fraction: float) -> float:
    """f0 c_v w a^2 for the isotope couple (fcc a = 3.6 A, 0.5 eV, 1e13 Hz), A^2/s."""
    w = 1e13 * math.exp(-0.5 / (K_B_EV_PER_K * temperature_K))
    return F0_FCC * vacancy_fraction * w * 3.6**2


def _mpirun(n: int, args: list[str], timeout: float = 600, no_mpi: bool = False
            ) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("KMCFLOW_NO_MPI", None)
    if no_mpi:
        env["KMCFLOW_NO_MPI"] = "1"
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, "-m", "kmcflow.cli", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


# ---------------------------------------------------------------------------- no MPI needed
def test_grid_prefers_slabs_and_refuses_thin_domains():
    g = choose_grid(4, (32, 32, 8), 3, 1)
    assert (g.px, g.py) == (4, 1) and g.x_bounds == (0, 8, 16, 24, 32)
    # 16 cells over 8 ranks is too thin for slabs (4 cells per sector pair needed): 4 x 2
    g = choose_grid(8, (16, 16, 8), 3, 1)
    assert (g.px, g.py) == (4, 2)
    with pytest.raises(ParallelError, match="cannot split"):
        choose_grid(4, (8, 1, 8), 2, 2)
    with pytest.raises(ParallelError, match="2D lattice"):
        choose_grid(4, (8, 1, 8), 2, 1, grid=(2, 2))


def test_sweep_schedule_divides_the_sample_interval():
    n, window = sweep_schedule(1e-6, 11, 3e-8)
    assert n == 4 and window == pytest.approx(2.5e-8) and n * window == pytest.approx(1e-7)
    assert sweep_schedule(1e-6, 11, 1e-7) == (1, pytest.approx(1e-7))


def test_reduce_replicas_gives_mean_and_standard_error():
    rng = np.random.default_rng(0)
    results = []
    for d in (1.0, 2.0, 4.0):
        results.append({"time": np.arange(3.0), "z": np.arange(5.0),
                        "length_z_A": np.array(5.0), "periodic_z": np.array(True),
                        "x_first_host": rng.random((3, 5)), "width_10_90": rng.random(3),
                        "width_erfc": rng.random(3), "msd": rng.random((3, 2)),
                        "summary": {"interdiffusion": {"D_A2_per_s": d}}})
    arrays, record = reduce_replicas(results)
    stack = np.stack([r["width_10_90"] for r in results])
    assert np.allclose(arrays["width_10_90_mean"], stack.mean(0))
    assert np.allclose(arrays["width_10_90_stderr"], stack.std(0, ddof=1) / math.sqrt(3))
    assert record["D_A2_per_s"] == pytest.approx(7 / 3)
    se = np.std([1.0, 2.0, 4.0], ddof=1) / math.sqrt(3)
    assert record["D_stderr_A2_per_s"] == pytest.approx(se)
    # Student t(2) 97.5 % quantile = 4.3027
    assert record["D_95ci_A2_per_s"][1] - 7 / 3 == pytest.approx(4.302653 * se, rel=1e-5)


def test_decompose_without_mpi_is_a_one_line_error(examples: Path, tmp_path: Path,
                                                   monkeypatch, capsys):
    monkeypatch.setenv("KMCFLOW_NO_MPI", "1")
    code = main(["kmc", "run", str(examples / "isotope_couple.json"), "--decompose",
                 "--time", "1e-7", "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "pip install 'kmcflow[mpi]'" in err and not (tmp_path / "d").exists()


def test_replicas_without_mpi_run_serially_and_average_the_replicas(
        examples: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("KMCFLOW_NO_MPI", "1")
    out = tmp_path / "ens"
    args = ["kmc", "run", str(examples / "isotope_couple.json"), "--cells", "5", "5", "12",
            "--steps", "60000", "--samples", "4", "--replicas", "3", "--out", str(out)]
    assert main(args) == 0
    ens = np.load(out / "ensemble.npz")
    widths = []
    for r in range(3):
        with np.load(out / "replicas" / f"r{r:04d}" / "observables.npz") as obs:
            widths.append(obs["width_10_90"])
    assert np.array_equal(ens["width_10_90_mean"], np.mean(np.stack(widths), axis=0),
                          equal_nan=True)
    # replica r is the trajectory of (seed, r): the same as a plain run with replica=r
    summary = json.loads((out / "ensemble.json").read_text())
    assert summary["n_replicas"] == 3 and summary["ranks"] == 1
    assert (out / "width_band.png").stat().st_size > 1000
    assert len(set(summary["interdiffusion"]["per_replica_D_A2_per_s"])) == 3


def test_killed_replica_run_resumes_replica_by_replica(examples: Path, tmp_path: Path):
    cat = load_catalog(examples / "isotope_couple.json")
    settings = settings_from_catalog(cat, cells=(5, 5, 12), steps=60_000, samples=4)
    straight = run_replicas(cat, settings, tmp_path / "straight", 3, SerialComm(), plots=False)

    def die(frac: float, info: str) -> None:
        if info.startswith("replica 1") and frac > 0.5:
            raise KeyboardInterrupt

    target = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_replicas(cat, settings, target, 3, SerialComm(), progress=die, plots=False,
                     checkpoint_interval_s=0.0)
    partial = tmp_path / ".resumed.partial" / "replicas"
    assert (partial / "r0000" / "summary.json").exists()  # replica 0 finished
    assert (partial / ".r0001.partial" / "checkpoint.npz").exists()  # replica 1 mid-way
    before = (partial / "r0000" / "summary.json").stat().st_mtime_ns
    resumed = run_replicas(cat, settings, target, 3, SerialComm(), resume=True, plots=False)
    assert (target / "replicas" / "r0000" / "summary.json").stat().st_mtime_ns == before
    assert resumed["interdiffusion"] == straight["interdiffusion"]
    a, b = np.load(tmp_path / "straight" / "ensemble.npz"), np.load(target / "ensemble.npz")
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a.files)


def test_resuming_replicas_with_other_flags_is_refused(examples: Path, tmp_path: Path):
    cat = load_catalog(examples / "isotope_couple.json")
    settings = settings_from_catalog(cat, cells=(5, 5, 12), steps=20_000, samples=4)

    def die(frac: float, info: str) -> None:
        if info.startswith("replica 1"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_replicas(cat, settings, tmp_path / "r", 2, SerialComm(), progress=die, plots=False)
    hotter = settings_from_catalog(cat, cells=(5, 5, 12), steps=20_000, samples=4,
                                   temperature_K=900.0)
    with pytest.raises(CheckpointError, match="temperature_K"):
        run_replicas(cat, hotter, tmp_path / "r", 2, SerialComm(), resume=True, plots=False)


# ---------------------------------------------------------------------------- under mpiexec
@pytest.mark.mpi
@needs_mpi
def test_mpiexec_without_working_mpi4py_is_refused(examples: Path, tmp_path: Path):
    base = ["kmc", "run", str(examples / "isotope_couple.json"), "--cells", "5", "5", "12",
            "--steps", "1000", "--no-plots"]
    for extra in (["--replicas", "2"], []):
        proc = _mpirun(2, [*base, *extra, "--out", str(tmp_path / "x")], timeout=120,
                       no_mpi=True)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert not (tmp_path / "x").exists()


@pytest.mark.mpi
@needs_mpi
def test_replica_ensemble_is_bit_identical_on_one_and_two_ranks(examples: Path,
                                                                 tmp_path: Path):
    args = ["kmc", "run", str(examples / "isotope_couple.json"), "--cells", "6", "6", "12",
            "--steps", "80000", "--samples", "5", "--replicas", "4", "--no-plots"]
    for n in (1, 2):
        proc = _mpirun(n, [*args, "--out", str(tmp_path / f"p{n}")])
        assert proc.returncode == 0, proc.stderr
    one, two = (json.loads((tmp_path / f"p{n}" / "ensemble.json").read_text()) for n in (1, 2))
    assert one["ranks"] == 1 and two["ranks"] == 2
    assert one["interdiffusion"] == two["interdiffusion"]
    assert one["interdiffusion_of_mean_profile"] == two["interdiffusion_of_mean_profile"]
    a, b = np.load(tmp_path / "p1" / "ensemble.npz"), np.load(tmp_path / "p2" / "ensemble.npz")
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a.files)


def _species_counts(run: Path) -> np.ndarray:
    """Atoms per species at every sample, from the per-layer concentrations."""
    summary = json.loads((run / "summary.json").read_text())
    with np.load(run / "observables.npz") as obs:
        conc = obs["concentration"]
    sites_per_layer = summary["inputs"]["n_sites"] / conc.shape[2]
    return np.rint(conc.sum(axis=2) * sites_per_layer).astype(np.int64)


@pytest.mark.mpi
@pytest.mark.slow
@needs_mpi
def test_decomposed_interdiffusion_matches_serial_and_the_analytic_value(
        examples: Path, tmp_path: Path):
    temperature, c_v, t_end = 600.0, 0.01, 4.0e-7
    common = ["--cells", "24", "12", "24", "--time", str(t_end), "--samples", "11",
              "--temperature", str(temperature), "--vacancy-fraction", str(c_v), "--no-plots"]
    cat = str(examples / "isotope_couple.json")
    d_dec = []
    for seed in (1, 2, 3, 4):
        run = tmp_path / f"dec{seed}"
        proc = _mpirun(2, ["kmc", "run", cat, *common, "--seed", str(seed), "--decompose",
                           "--debug-checks", "--out", str(run)])
        assert proc.returncode == 0, proc.stderr
        summary = json.loads((run / "summary.json").read_text())
        assert summary["parallel"]["grid"] == [2, 1]
        counts = _species_counts(run)
        assert np.all(counts == counts[0])  # exact conservation at every sample
        d_dec.append(summary["interdiffusion"]["D_A2_per_s"])
    serial = tmp_path / "serial"
    os.environ["KMCFLOW_NO_MPI"] = "1"
    try:
        assert main(["kmc", "run", cat, *common, "--seed", "1", "--replicas", "4",
                     "--out", str(serial)]) == 0
    finally:
        del os.environ["KMCFLOW_NO_MPI"]
    ser = json.loads((serial / "ensemble.json").read_text())["interdiffusion"]
    mean_dec = float(np.mean(d_dec))
    se_dec = float(np.std(d_dec, ddof=1) / math.sqrt(len(d_dec)))
    combined = math.hypot(se_dec, ser["D_stderr_A2_per_s"])
    # agreement within two combined standard errors (a 95 % test: one would fail by chance
    # one time in three)
    assert abs(mean_dec - ser["D_A2_per_s"]) < 2 * combined, (d_dec, ser)
    reference = _isotope_reference_D(temperature, c_v)
    assert mean_dec == pytest.approx(reference, rel=0.05)


@pytest.mark.mpi
@pytest.mark.slow
@needs_mpi
def test_killed_decomposed_run_restarts_from_its_checkpoint(examples: Path, tmp_path: Path):
    args = ["kmc", "run", str(examples / "isotope_couple.json"), "--cells", "12", "6", "16",
            "--time", "1.2e-7", "--samples", "25", "--seed", "4", "--decompose",
            "--debug-checks", "--no-plots", "--checkpoint-interval", "0"]
    straight = tmp_path / "straight"
    proc = _mpirun(2, [*args, "--out", str(straight)])
    assert proc.returncode == 0, proc.stderr
    target = tmp_path / "killed"
    latest = tmp_path / ".killed.partial" / "checkpoints" / "latest.json"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("KMCFLOW_NO_MPI", None)
    proc = subprocess.Popen([MPIEXEC, "-n", "2", sys.executable, "-m", "kmcflow.cli", *args,
                             "--out", str(target)], start_new_session=True, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if latest.exists():
                try:
                    done = json.loads(latest.read_text())["samples_done"]
                except (ValueError, KeyError):
                    done = 0
                if done >= 4:
                    break
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not target.exists(), "the run ended before it could be killed; make it longer"
    done = json.loads(latest.read_text())["samples_done"]
    assert 4 <= done < 25, done
    # a checkpoint missing one rank's file: every rank stops with one message, none hangs
    broken = tmp_path / ".broken.partial"
    shutil.copytree(tmp_path / ".killed.partial", broken)
    for f in broken.glob("checkpoints/gen-*/rank-00001.npz"):
        f.unlink()
    proc = _mpirun(2, [*args, "--out", str(tmp_path / "broken"), "--resume"], timeout=120)
    assert proc.returncode != 0 and "cannot read checkpoint" in proc.stderr, proc.stderr
    proc = _mpirun(2, [*args, "--out", str(target), "--resume"])
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((target / "summary.json").read_text())
    assert summary["parallel"]["resumed"] is True
    counts = _species_counts(target)
    assert np.all(counts == counts[0])
    with np.load(straight / "observables.npz") as a, np.load(target / "observables.npz") as b:
        for key in ("time", "concentration", "msd", "n_events", "width_10_90"):
            assert np.array_equal(a[key], b[key], equal_nan=True), key
