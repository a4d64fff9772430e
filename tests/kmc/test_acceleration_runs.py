"""Accelerated runs as first-class runs: resume, replicas (MPI), pair models, Arrhenius,
the transport error control, tracer MSD, the convergence study and ``catalog check``."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kmcflow.cli import main
from kmcflow.kmc.acceleration import AccelerationSettings, PairScaler
from kmcflow.kmc.catalog import Catalog, load_catalog
from kmcflow.kmc.engine import Simulation
from kmcflow.kmc.parallel.comm import SerialComm, mpi_available
from kmcflow.kmc.parallel.replicas import run_replicas
from kmcflow.kmc.runner import partial_path, run_to_directory, settings_from_catalog

MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent) + os.pathsep
                       + os.environ.get("PATH", ""))
needs_mpi = pytest.mark.skipif(not (mpi_available() and MPIEXEC),
                               reason="needs the mpi extra (mpi4py and mpiexec)")


@pytest.fixture
def li_na(examples: Path) -> Path:
    return examples / "li_na_couple.json"


def _kill_midway(cat, settings, target: Path, acceleration) -> None:
    def die(frac: float, info: str) -> None:
        if frac > 0.4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_to_directory(cat, settings, target, progress=die, checkpoint_interval_s=0.0,
                         chunk_events=30_000, acceleration=acceleration)


def _killed_accelerated_run(li_na: Path, target: Path) -> Path:
    """A 500 K run of 300,000 events (window 2000) killed at 40 %, checkpoint on disk."""
    cat = load_catalog(li_na)
    settings = settings_from_catalog(cat, cells=(6, 6, 12), temperature_K=500.0,
                                     steps=300_000, samples=4)
    _kill_midway(cat, settings, target, AccelerationSettings(window_events=2000))
    return target


def test_killed_accelerated_run_resumes_bit_identically(li_na: Path, tmp_path: Path):
    args = ["kmc", "run", str(li_na), "--cells", "6", "6", "12", "-T", "500", "--steps",
            "300000", "--samples", "4", "--no-plots", "--checkpoint-interval", "0",
            "--accelerate", "--accelerate-window", "2000"]
    assert main([*args, "--out", str(tmp_path / "straight")]) == 0
    target = _killed_accelerated_run(li_na, tmp_path / "resumed")
    assert (partial_path(target) / "checkpoint.npz").exists() and not target.exists()
    assert main([*args, "--out", str(target), "--resume"]) == 0
    with np.load(tmp_path / "straight" / "observables.npz") as a, np.load(
            target / "observables.npz") as b:
        for key in ("time", "concentration", "n_events", "width_10_90"):
            assert np.array_equal(a[key], b[key], equal_nan=True), key
    one, two = (json.loads((p / "summary.json").read_text())["acceleration"]
                for p in (tmp_path / "straight", target))
    assert one["factor"] > 100  # the Li and Na in-host hops were scaled
    assert one["final_scale_factors"] == two["final_scale_factors"]
    assert one["factor"] == two["factor"] and one["windows"] == two["windows"]
    assert one["method"].startswith("pair scaling") and one["settings"]["window_events"] == 2000


def test_a_checkpoint_of_other_acceleration_settings_is_refused(li_na: Path, tmp_path: Path,
                                                                capsys):
    target = _killed_accelerated_run(li_na, tmp_path / "r")
    code = main(["kmc", "run", str(li_na), "--cells", "6", "6", "12", "-T", "500", "--steps",
                 "300000", "--samples", "4", "--no-plots", "--resume", "--out", str(target)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "different catalog or run set-up" in err


def test_tracer_msd_is_marked_unavailable_because_it_would_be_wrong(li_na: Path,
                                                                    tmp_path: Path):
    cat = load_catalog(li_na)
    # why: the scaled Li in-host hops run far less often than they would, so a Li atom's
    # displacement per simulated second is far too small
    plain, accel = (Simulation(cat, (6, 6, 12), 600.0, 0.01, seed=2) for _ in range(2))
    accel.enable_acceleration(AccelerationSettings(window_events=2000))
    plain.run(300_000)
    accel.run(300_000)
    li = cat.species.index("Li")
    rate_plain = plain.sample()["msd_A2"][li] / plain.time_s
    rate_accel = accel.sample()["msd_A2"][li] / accel.time_s
    assert rate_plain > 5 * rate_accel
    settings = settings_from_catalog(cat, cells=(6, 6, 12), temperature_K=600.0,
                                     steps=200_000, samples=3)
    summary = run_to_directory(cat, settings, tmp_path / "run",
                               acceleration=AccelerationSettings(window_events=2000))
    assert summary["acceleration"]["tracer_msd"].startswith("unavailable")
    with np.load(tmp_path / "run" / "observables.npz") as obs:
        assert np.all(np.isnan(obs["msd"]))


def test_nothing_scaled_keeps_the_msd_and_the_isotope_trajectory(examples: Path,
                                                                 tmp_path: Path):
    cat = load_catalog(examples / "isotope_couple.json")
    settings = settings_from_catalog(cat, cells=(5, 5, 12), steps=60_000, samples=3)
    a = run_to_directory(cat, settings, tmp_path / "a")
    b = run_to_directory(cat, settings, tmp_path / "b",
                         acceleration=AccelerationSettings(window_events=1000))
    assert b["acceleration"]["tracer_msd"].startswith("valid")
    assert b["acceleration"]["factor"] == 1.0 and a["interdiffusion"] == b["interdiffusion"]
    with np.load(tmp_path / "a" / "observables.npz") as x, np.load(
            tmp_path / "b" / "observables.npz") as y:
        assert np.array_equal(x["msd"], y["msd"])


def test_transport_floor_holds_the_host_crossings_per_slow_event():
    # one fast self-reverse pair (event 0) and a slow irreversible event (1): with 1e7 fast
    # executions and 1 slow one per window at factor 1, the separation rule alone scales
    # the fast pair down to 100 x 1e3 / 1e9 = 1e-4
    rate = np.array([1e9, 1e3])
    reverse = np.array([0, -1])
    free = PairScaler(reverse, rate, AccelerationSettings(equilibration=0.0),
                      hops_to_cross=1000.0)
    held = PairScaler(reverse, rate, AccelerationSettings(equilibration=30.0),
                      hops_to_cross=1000.0)
    for _ in range(400):
        free.update(np.array([1e7 * free.factor[0], 1.0]))
        held.update(np.array([1e7 * held.factor[0], 1.0]))
    assert free.factor[0] == pytest.approx(1e-4)
    # held: the fast executions at the scaled rate per slow one must allow 30 crossings of
    # 1000 hops; both counts are remembered over m windows, the slow one with a prior of 3
    m = 200 * (1 - (1 - 1 / 200) ** 400)
    assert held.factor[0] == pytest.approx(30 * 1000 * (m + 3) / (1e7 * m), rel=1e-9)
    assert held.host_crossings_per_slow_event == pytest.approx(
        held.scaled_fast / held.scaled_slow / 1000.0)
    assert held.host_crossings_per_slow_event > 29


def test_hops_to_cross_is_the_host_thickness_over_the_mean_square_hop(li_na: Path):
    sim = Simulation(load_catalog(li_na), (6, 6, 12), 600.0, 0.01, seed=1)
    # fcc a = 4.2 A, 12 cells along z split in two hosts of 6 cells = 25.2 A; 8 of the 12
    # neighbours move a/2 along z: <dz^2> = (8/12) (2.1 A)^2
    assert sim.hops_to_cross() == pytest.approx(25.2**2 / (8 / 12 * 2.1**2))


def _kra_catalog(li_na: Path, pair_eV: float) -> Catalog:
    data = json.loads(li_na.read_text())
    data["rate_model"] = "kra"
    for ev in data["events"]:
        ev["kra_eV"] = ev.pop("barrier_eV")
    data["energy_model"]["pair_interactions_eV"] = {"Li-Na": pair_eV}
    return Catalog.model_validate(data)


def test_pair_model_catalogs_are_scaled_through_the_prefactor(li_na: Path):
    table = load_catalog(li_na)
    kra = _kra_catalog(li_na, 1e-9)  # a pair model whose rates equal the table's
    runs = []
    for cat in (table, kra):
        sim = Simulation(cat, (6, 6, 12), 600.0, 0.01, seed=4)
        sim.enable_acceleration(AccelerationSettings(window_events=2000))
        sim.run(150_000)
        runs.append(sim)
    assert runs[1].rates.use_pairs and not runs[0].rates.use_pairs
    assert runs[1].acceleration_factor > 3
    # the same trajectory event for event: the prefactor scaling is the rate scaling
    assert np.array_equal(runs[0].occ, runs[1].occ)
    assert np.array_equal(runs[0].event_counts, runs[1].event_counts)
    assert runs[1].time_s == pytest.approx(runs[0].time_s, rel=1e-9)
    # a real pair interaction runs too, and detailed balance is kept type by type
    sim = Simulation(_kra_catalog(li_na, 0.05), (6, 6, 12), 600.0, 0.01, seed=4)
    sim.enable_acceleration(AccelerationSettings(window_events=2000))
    sim.run(100_000)
    f = sim.scaler.factor.reshape(sim.rates.rate_Hz.shape)
    assert np.array_equal(f, f.transpose(0, 2, 1)) and sim.acceleration_factor > 3


def test_accelerate_with_decompose_is_a_one_line_error(li_na: Path, tmp_path: Path, capsys):
    code = main(["kmc", "run", str(li_na), "--accelerate", "--decompose", "--time", "1e-7",
                 "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--replicas" in err
    assert not (tmp_path / "x").exists()
    code = main(["kmc", "run", str(li_na), "--accelerate", "--accelerate-equilibration", "-1",
                 "--out", str(tmp_path / "x")])
    assert code == 2 and "--accelerate-equilibration" in capsys.readouterr().err


def test_accelerated_replicas_record_the_acceleration_and_resume(li_na: Path,
                                                                  tmp_path: Path):
    cat = load_catalog(li_na)
    settings = settings_from_catalog(cat, cells=(6, 6, 12), temperature_K=600.0,
                                     steps=60_000, samples=4)
    acc = AccelerationSettings(window_events=2000)
    straight = run_replicas(cat, settings, tmp_path / "s", 3, SerialComm(), plots=False,
                            acceleration=acc)
    assert straight["acceleration"]["settings"]["window_events"] == 2000
    assert len(straight["acceleration"]["per_replica_factor"]) == 3
    assert min(straight["acceleration"]["per_replica_factor"]) > 1.5

    def die(frac: float, info: str) -> None:
        if info.startswith("replica 1") and frac > 0.5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_replicas(cat, settings, tmp_path / "r", 3, SerialComm(), progress=die,
                     plots=False, checkpoint_interval_s=0.0, acceleration=acc)
    resumed = run_replicas(cat, settings, tmp_path / "r", 3, SerialComm(), resume=True,
                           plots=False, acceleration=acc)
    assert resumed["interdiffusion"] == straight["interdiffusion"]
    assert resumed["acceleration"] == straight["acceleration"]


@pytest.mark.mpi
@needs_mpi
def test_accelerated_replicas_are_the_same_on_one_and_two_ranks(li_na: Path, tmp_path: Path):
    args = ["-m", "kmcflow.cli", "kmc", "run", str(li_na), "--cells", "6", "6", "12", "-T",
            "600", "--steps", "80000", "--samples", "4", "--replicas", "4", "--no-plots",
            "--accelerate", "--accelerate-window", "2000"]
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("KMCFLOW_NO_MPI", None)
    for n in (1, 2):
        proc = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, *args, "--out",
                               str(tmp_path / f"p{n}")], capture_output=True, text=True,
                              timeout=600, env=env)
        assert proc.returncode == 0, proc.stderr
    one, two = (json.loads((tmp_path / f"p{n}" / "ensemble.json").read_text()) for n in (1, 2))
    assert one["ranks"] == 1 and two["ranks"] == 2
    assert one["interdiffusion"] == two["interdiffusion"]
    assert one["acceleration"] == two["acceleration"] and one["acceleration"]["factor"] > 1.5
    a, b = np.load(tmp_path / "p1" / "ensemble.npz"), np.load(tmp_path / "p2" / "ensemble.npz")
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a.files)


def test_catalog_check_prints_the_rate_span_and_suggests_accelerate(li_na: Path,
                                                                     examples: Path, capsys):
    assert main(["catalog", "check", str(li_na), "-T", "300", "--json"]) == 0
    span = json.loads(capsys.readouterr().out)["rate_span"]
    # Li in-host 1.2e13 exp(-0.25/kT) against Na into the Li host 1e13 exp(-0.80/kT), 300 K
    kt = 8.617333262e-5 * 300
    assert span["ratio"] == pytest.approx(1.2 * math.exp(0.55 / kt), rel=1e-6)
    assert span["suggest_accelerate"] and "--accelerate" in span["advice"]
    assert main(["catalog", "check", str(examples / "isotope_couple.json"), "--json"]) == 0
    span = json.loads(capsys.readouterr().out)["rate_span"]
    assert span["ratio"] == 1.0 and not span["suggest_accelerate"]
    assert main(["catalog", "check", str(li_na), "-T", "300"]) == 0
    assert "--accelerate" in capsys.readouterr().out


def test_arrhenius_accelerated_records_the_factor(li_na: Path, tmp_path: Path, capsys):
    code = main(["kmc", "arrhenius", str(li_na), "-T", "500", "-T", "600", "--cells", "6",
                 "6", "12", "--steps", "3000000", "--samples", "5", "--accelerate",
                 "--accelerate-window", "2000", "--out", str(tmp_path / "arr")])
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "arr" / "arrhenius.json").read_text())
    assert result["acceleration"]["settings"]["window_events"] == 2000
    factors = [row["acceleration_factor"] for row in result["temperatures"]]
    assert factors[0] > factors[1] > 1  # colder: the fast hops outrun the slow ones more
    assert "acceleration factor" in capsys.readouterr().out


def test_convergence_study_reports_D_per_setting_with_errors(li_na: Path, tmp_path: Path,
                                                             capsys, monkeypatch):
    monkeypatch.setenv("KMCFLOW_NO_MPI", "1")
    out = tmp_path / "conv"
    code = main(["kmc", "converge-acceleration", str(li_na), "-T", "500", "--time", "2e-4",
                 "--cells", "6", "6", "12", "--values", "3", "--values", "30", "--replicas",
                 "2", "--samples", "6", "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    record = json.loads((out / "convergence.json").read_text())
    rows = {r["setting"]: r for r in record["rows"]}
    assert set(rows) == {"equilibration_3", "equilibration_30"}
    for r in rows.values():
        assert r["D_A2_per_s"] > 0 and r["D_stderr_A2_per_s"] > 0
    # more host crossings per slow event cost acceleration in proportion (at 3 the
    # per-event separation floor binds first, so the run achieves more than 3)
    low, high = rows["equilibration_3"], rows["equilibration_30"]
    assert high["host_crossings_per_slow_event"] > 25
    crossings = high["host_crossings_per_slow_event"] / low["host_crossings_per_slow_event"]
    factors = low["acceleration_factor"] / high["acceleration_factor"]
    assert factors == pytest.approx(crossings, rel=0.3) and factors > 2
    verdict = record["verdict"]
    assert verdict["compared"] == ["equilibration_3", "equilibration_30"]
    assert isinstance(verdict["converged"], bool) and "difference_sigma" in verdict["last_two"]
    assert (out / "convergence.png").stat().st_size > 1000
    assert "converged" in printed.out
    # the study needs a simulated time common to every setting
    code = main(["kmc", "converge-acceleration", str(li_na), "-T", "500", "--out",
                 str(tmp_path / "c2")])
    assert code == 2 and "--time" in capsys.readouterr().err


def test_a_damaged_acceleration_state_is_refused_and_left_alone(li_na: Path, tmp_path: Path,
                                                                capsys):
    target = _killed_accelerated_run(li_na, tmp_path / "r")
    ckpt = partial_path(target) / "checkpoint.npz"
    with np.load(ckpt) as data:
        content = {k: data[k] for k in data.files}
    content["acc_factor"] = np.full_like(content["acc_factor"], 2.0)  # a factor above 1
    np.savez(ckpt, **content)
    before = ckpt.read_bytes()
    code = main(["kmc", "run", str(li_na), "--cells", "6", "6", "12", "-T", "500", "--steps",
                 "300000", "--samples", "4", "--no-plots", "--resume", "--accelerate",
                 "--accelerate-window", "2000", "--out", str(target)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "acceleration state" in err
    assert ckpt.read_bytes() == before


@pytest.mark.slow
def test_accelerated_D_agrees_with_plain_bkl_on_the_li_na_couple(li_na: Path, tmp_path: Path):
    """One affordable rung of the verification ladder (benchmarks/bench_acceleration.py).

    700 K on a 6 x 6 x 12 lattice: the transport floor lets the in-host hops be scaled
    several-fold; plain BKL over the same simulated time is the reference. Agreement within
    two combined standard errors of the replica means.
    """
    cat = load_catalog(li_na)
    settings = settings_from_catalog(cat, cells=(6, 6, 12), temperature_K=700.0,
                                     time_s=2.0e-6, samples=11)
    plain = run_replicas(cat, settings, tmp_path / "plain", 8, SerialComm(), plots=False)
    accel = run_replicas(cat, settings, tmp_path / "accel", 8, SerialComm(), plots=False,
                         acceleration=AccelerationSettings())
    assert accel["acceleration"]["factor"] > 3
    assert accel["acceleration"]["host_crossings_per_slow_event"] > 25
    d_p, d_a = plain["interdiffusion"], accel["interdiffusion"]
    combined = math.hypot(d_p["D_stderr_A2_per_s"], d_a["D_stderr_A2_per_s"])
    assert combined < 0.1 * d_p["D_A2_per_s"]  # enough replicas to see a bias above 20 %
    assert abs(d_a["D_A2_per_s"] - d_p["D_A2_per_s"]) < 2 * combined, (d_p, d_a)


def test_transport_floor_reaches_its_target_exactly_over_many_factor_levels():
    # 20 scaled types at factors 1e-1 ... 1e-19: raising them by one multiplier caps most
    # at 1; the floor still reaches C = 30 exactly (an earlier fixed-point loop stopped at 8)
    n = 20
    scaler = PairScaler(np.arange(n), np.logspace(3, 12, n), AccelerationSettings(),
                        hops_to_cross=10.0)
    scaler.fast_equivalent = np.full(n, 1e4)
    scaler.slow_count = 100.0
    raised = scaler._transport_floor(np.logspace(-1, -19, n), np.ones(n, bool))
    assert np.sum(raised * 1e4) == pytest.approx(30 * 10 * (100 + 3), rel=1e-12)
    assert np.all(raised <= 1.0) and np.all(np.diff(raised) <= 0)  # the order is kept


def test_nothing_is_scaled_once_every_hop_type_is_quasi_equilibrated(examples: Path):
    # the isotope couple mixed: every hop type, cross-interface ones included, runs often and
    # in balance within a window; with no slow process left nothing may be scaled (the
    # zero-rate vacancy rows once counted as "slow" and let every factor fall without end)
    cat = load_catalog(examples / "isotope_couple.json")
    plain = Simulation(cat, (5, 5, 12), 800.0, 0.01, seed=1)
    accel = Simulation(cat, (5, 5, 12), 800.0, 0.01, seed=1)
    accel.enable_acceleration(AccelerationSettings(window_events=100_000))
    plain.run(1_500_000)
    accel.run(1_500_000)
    assert accel.scaler.windows == 15 and accel.scaler.scaled_windows == 0
    assert accel.acceleration_factor == 1.0 and plain.time_s == accel.time_s
    assert np.array_equal(plain.occ, accel.occ)


def test_convergence_verdict_needs_the_last_two_settings_and_pairs_the_replicas():
    from kmcflow.kmc.convergence import convergence_verdict

    def row(name, value, d, se, per=None):
        return {"setting": name, "equilibration": value, "D_A2_per_s": d,
                "D_stderr_A2_per_s": se, "per_replica_D_A2_per_s": per}

    plain = row("plain", None, 100.0, 2.0)
    # the second most conservative setting could not be fitted: no verdict, even though the
    # most conservative one agrees with plain BKL
    verdict = convergence_verdict([plain, row("e10", 10.0, None, None),
                                   row("e30", 30.0, 101.0, 2.0)], "equilibration")
    assert verdict["converged"] is False and verdict["text"].startswith("no verdict")
    # paired replicas whose differences scatter more than the two errors combined: the
    # larger (paired) standard error is used
    a = [100.0, 110.0, 90.0, 104.0]
    b = [110.0, 92.0, 108.0, 94.0]
    verdict = convergence_verdict([row("e10", 10.0, np.mean(a), np.std(a, ddof=1) / 2, a),
                                   row("e30", 30.0, np.mean(b), np.std(b, ddof=1) / 2, b)],
                                  "equilibration")
    diff = np.subtract(a, b)
    se = np.std(diff, ddof=1) / 2
    assert verdict["last_two"]["standard_error_from"].endswith("(paired)")
    assert verdict["last_two"]["difference_sigma"] == pytest.approx(
        (np.mean(a) - np.mean(b)) / se)


def test_convergence_study_values_are_checked_and_a_finished_study_is_not_rerun(
        li_na: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("KMCFLOW_NO_MPI", "1")
    base = ["kmc", "converge-acceleration", str(li_na), "-T", "600", "--time", "1e-6",
            "--cells", "5", "5", "10", "--replicas", "2", "--samples", "4"]
    for values, text in ((["-1", "30"], "--values"), (["nan", "30"], "--values"),
                         (["30", "30.0000001"], "two different values")):
        args = [*base, *[x for v in values for x in ("--values", v)], "--out",
                str(tmp_path / "bad")]
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and text in err, err
    assert main([*base, "--parameter", "separation", "--values", "1", "--values", "10",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "--values" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    out = tmp_path / "conv"
    args = [*base, "--values", "10", "--values", "30", "--out", str(out)]
    assert main(args) == 0
    summary = out / "equilibration_30" / "replicas" / "r0001" / "summary.json"
    before = summary.stat().st_mtime_ns
    first = json.loads((out / "convergence.json").read_text())
    assert main([*args, "--resume"]) == 0
    assert summary.stat().st_mtime_ns == before  # read back, not run again
    assert json.loads((out / "convergence.json").read_text())["rows"] == first["rows"]


def test_ensemble_marks_the_tracer_msd_unavailable_if_any_replica_was_scaled():
    from kmcflow.kmc.parallel.replicas import ensemble_acceleration

    def record(msd, factor, warning=None):
        rec = {"method": "m", "settings": {}, "factor": factor, "tracer_msd": msd,
               "host_crossings_per_slow_event": None}
        if warning:
            rec["warning"] = warning
        return {"acceleration": rec}

    merged = ensemble_acceleration([record("valid: nothing was scaled", 1.0),
                                    record("unavailable: scaled", 5.0, "few crossings")])
    assert merged["tracer_msd"].startswith("unavailable") and merged["factor"] == 3.0
    assert merged["warning"] == "replica 1: few crossings"
