"""``kmcflow kmc ...``: run, analyse, fit and validate lattice kMC from a catalog.

Thin like the rest of the CLI: parse, call :mod:`kmcflow.kmc`, print.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kmcflow.cli.console import err, out, progress_bar, root_progress
from kmcflow.errors import ConfigError

kmc_app = typer.Typer(no_args_is_help=True, help="Run, analyse and validate lattice kMC.")

CatalogArg = Annotated[Path, typer.Argument(help="Event catalog (JSON).", show_default=False)]
AccelerateOpt = Annotated[bool, typer.Option(
    "--accelerate", help="Temporal acceleration: scale down fast quasi-equilibrated hop "
    "pairs, with error control (off by default; not with --decompose).")]
AccelerateWindowOpt = Annotated[int, typer.Option(
    "--accelerate-window", help="Events per acceleration window.")]
AccelerateSeparationOpt = Annotated[float, typer.Option(
    "--accelerate-separation", help="Scaled pairs stay this many times faster per event than "
    "the slow ones (error control).")]
AccelerateEquilibrationOpt = Annotated[float, typer.Option(
    "--accelerate-equilibration", help="Host crossings the scaled hops must allow a vacancy "
    "per slow event (transport error control; 0: off).")]


def acceleration_settings(accelerate: bool, window: int, separation: float,
                          equilibration: float):
    """The checked acceleration settings of the flags, or None without --accelerate."""
    if not accelerate:
        return None
    from kmcflow.kmc.acceleration import AccelerationSettings

    settings = AccelerationSettings(window_events=window, separation=separation,
                                    equilibration=equilibration)
    settings.check()
    return settings




@kmc_app.command("run")
def kmc_run(
    catalog_file: CatalogArg,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
        "runs/kmc"),
    cells: Annotated[tuple[int, int, int] | None, typer.Option(
        help="Cells NX NY NZ (z is the interface normal).", show_default=False)] = None,
    temperature: Annotated[float | None, typer.Option("--temperature", "-T",
                                                      help="Temperature, K.")] = None,
    vacancy_fraction: Annotated[float | None, typer.Option(help="Vacant site fraction.")] = None,
    steps: Annotated[int | None, typer.Option(help="Number of kMC events.")] = None,
    time_s: Annotated[float | None, typer.Option("--time", help="Simulated time, s.")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    samples: Annotated[int | None, typer.Option(help="Number of samples (t = 0 included).")
                       ] = None,
    resume: Annotated[bool, typer.Option(help="Continue a killed run from its checkpoint.")
                      ] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace --out if it is an earlier kmcflow run (a folder kmcflow "
        "did not write is never replaced).")] = False,
    checkpoint_interval: Annotated[float, typer.Option(
        help="Seconds of wall time between checkpoints.")] = 300.0,
    snapshots: Annotated[bool, typer.Option(help="Write snapshots.extxyz (OVITO) per sample.")
                         ] = False,
    plots: Annotated[bool, typer.Option(help="Fit and plot at the end (kmc analyze).")] = True,
    replicas: Annotated[int | None, typer.Option(
        help="Run R independent replicas (spread over the MPI ranks; serially without MPI) "
             "and report means with standard errors.", show_default=False)] = None,
    decompose: Annotated[bool, typer.Option(
        "--decompose", help="Split one lattice over the MPI ranks (needs the mpi extra and "
        "--time).")] = False,
    grid: Annotated[str | None, typer.Option(
        help="Process grid PXxPY for --decompose (default: chosen).", show_default=False)
                    ] = None,
    window: Annotated[float | None, typer.Option(
        "--window", help="Longest sector window for --decompose, s (default 1/(z w_max)).",
        show_default=False)] = None,
    debug_checks: Annotated[bool, typer.Option(
        "--debug-checks", help="With --decompose: check conservation and conflicts after "
        "every window.")] = False,
    accelerate: AccelerateOpt = False,
    accelerate_window: AccelerateWindowOpt = 10_000,
    accelerate_separation: AccelerateSeparationOpt = 100.0,
    accelerate_equilibration: AccelerateEquilibrationOpt = 30.0,
) -> None:
    """Run kMC on a catalog's couple; flags override the catalog's conditions.

    Example: kmcflow kmc run examples/catalogs/isotope_couple.json --cells 10 10 24
    --temperature 600 --vacancy-fraction 0.01 --steps 2000000 --seed 1 --samples 21 --out runs/iso

    In parallel: mpiexec -n 4 kmcflow kmc run CATALOG --replicas 8 (independent trajectories),
    or mpiexec -n 4 kmcflow kmc run CATALOG --decompose --time 1e-6 (one large lattice).

    Rates spanning many decades (see `kmcflow catalog check FILE -T T`): kmcflow kmc run
    examples/catalogs/li_na_couple.json -T 300 --time 100 --accelerate --replicas 4
    """
    from kmcflow.kmc.catalog import load_catalog
    from kmcflow.kmc.runner import make_simulation, run_to_directory, settings_from_catalog

    if not (checkpoint_interval >= 0 and math.isfinite(checkpoint_interval)):
        raise ConfigError(f"--checkpoint-interval must be a non-negative number of seconds, "
                          f"got {checkpoint_interval}", field="--checkpoint-interval",
                          hint="e.g. --checkpoint-interval 300 (0: after every chunk)")
    if replicas is not None and replicas < 1:
        raise ConfigError(f"--replicas must be at least 1, got {replicas}", field="--replicas")
    catalog = load_catalog(catalog_file)
    settings = settings_from_catalog(
        catalog, cells=tuple(cells) if cells else None, temperature_K=temperature,
        vacancy_fraction=vacancy_fraction, steps=steps, time_s=time_s, seed=seed,
        samples=samples)
    if decompose and replicas is not None:
        raise ConfigError("--replicas and --decompose cannot be combined", field="--replicas",
                          hint="run the replicas of a decomposed lattice one after another")
    if decompose and snapshots:
        raise ConfigError("--snapshots is not available with --decompose (each rank holds a "
                          "part of the lattice)", field="--snapshots",
                          hint="take snapshots from a serial or --replicas run")
    if accelerate and decompose:
        raise ConfigError("--accelerate cannot be combined with --decompose (the scale factors "
                          "are judged on the whole lattice's window of events)",
                          field="--accelerate", hint="use --accelerate --replicas R for "
                          "parallel accelerated runs")
    acceleration = acceleration_settings(accelerate, accelerate_window, accelerate_separation,
                                         accelerate_equilibration)
    if decompose:
        _run_decomposed(catalog, catalog_file, settings, out_dir, grid, window, debug_checks,
                        resume, checkpoint_interval, plots, overwrite)
        return
    if replicas is not None:
        _run_replicas(catalog, catalog_file, settings, out_dir, replicas, resume,
                      checkpoint_interval, plots, snapshots, overwrite, acceleration)
        return
    if _mpi_world_size() > 1:
        raise ConfigError("under mpiexec a run needs --replicas R or --decompose",
                          field="mpiexec", hint="add --replicas R (independent trajectories) "
                          "or --decompose (one lattice split over the ranks)")
    sim = make_simulation(catalog, settings, str(catalog_file))
    with progress_bar() as bar:
        task = bar.add_task("kmc run", total=1.0, info="")
        summary = run_to_directory(
            catalog, settings, out_dir, str(catalog_file),
            progress=lambda f, info: bar.update(task, completed=f, info=info), resume=resume,
            checkpoint_interval_s=checkpoint_interval, snapshots=snapshots, sim=sim,
            acceleration=acceleration, overwrite=overwrite)
    out.print(f"{summary['events_executed']:,} events, t = {summary['simulated_time_s']:.4e} s, "
              f"{summary['events_per_second']:.3e} events/s (CPU)")
    if "acceleration" in summary:
        _print_acceleration(summary["acceleration"])
    _finish_run_output(summary, out_dir, plots)


def _print_acceleration(acc: dict) -> None:
    crossings = acc.get("host_crossings_per_slow_event")
    text = "" if crossings is None else f", {crossings:.3g} host crossings per slow event"
    windows = (f"{acc['scaled_windows']} of {acc['windows']} windows scaled" if "windows" in acc
               else f"mean over {len(acc.get('per_replica_factor', []))} replicas")
    out.print(f"acceleration factor {acc['factor']:.3g} ({windows}{text})")
    if acc.get("warning"):
        err.print(f"warning: {acc['warning']}")


def _mpi_world_size() -> int:
    """Ranks of the MPI job this process belongs to (1 outside mpiexec), from the launcher."""
    import os

    for var in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 1


def _parse_grid(grid: str | None) -> tuple[int, int] | None:
    if grid is None:
        return None
    parts = grid.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ConfigError(f"--grid must look like 4x2, got {grid!r}", field="--grid")
    return int(parts[0]), int(parts[1])


def _run_decomposed(catalog, catalog_file, settings, out_dir, grid, window, debug_checks,
                    resume, checkpoint_interval, plots, overwrite) -> None:
    from kmcflow.kmc.parallel.comm import world
    from kmcflow.kmc.parallel.domain_runner import (
        make_domain_simulation,
        run_decomposed_to_directory,
    )

    grid_pair = _parse_grid(grid)
    if window is not None and not (window > 0 and math.isfinite(window)):
        raise ConfigError(f"--window must be a positive number of seconds, got {window}",
                          field="--window")
    comm = world(require=True)
    root = comm.Get_rank() == 0
    sim = make_domain_simulation(catalog, settings, comm, grid_pair, debug_checks,
                                 str(catalog_file))
    if root:
        out.print(f"decomposed over {comm.Get_size()} rank(s), grid {sim.grid.px}x{sim.grid.py}, "
                  f"{sim.n_sectors} sectors per rank, {sim.reach_cells} ghost cell(s)")
    with root_progress(root, "kmc run --decompose") as progress:
        summary = run_decomposed_to_directory(
            sim, settings, out_dir, str(catalog_file), window_s=window, resume=resume,
            checkpoint_interval_s=checkpoint_interval, overwrite=overwrite, progress=progress)
    if not root:
        return
    par = summary["parallel"]
    out.print(f"{summary['events_executed']:,} events, t = {summary['simulated_time_s']:.4e} s, "
              f"{par['sweeps']} sweeps of window {par['window_s']:.3e} s, communication "
              f"{par['comm_time_s_max_rank']:.2f} s (slowest rank)")
    _finish_run_output(summary, out_dir, plots)


def _run_replicas(catalog, catalog_file, settings, out_dir, replicas, resume,
                  checkpoint_interval, plots, snapshots, overwrite, acceleration=None) -> None:
    from kmcflow.errors import ParallelError
    from kmcflow.kmc.parallel.comm import INSTALL_HINT, world
    from kmcflow.kmc.parallel.replicas import run_replicas
    from kmcflow.kmc.runner import make_simulation

    comm = world()
    if not getattr(comm, "is_mpi", True) and _mpi_world_size() > 1:
        raise ParallelError("launched by mpiexec, but mpi4py is missing or cannot load MPI, so "
                            "every process would run every replica", field="--replicas",
                            hint=INSTALL_HINT)
    root = comm.Get_rank() == 0
    make_simulation(catalog, settings, str(catalog_file))  # validate before any output
    if root and not getattr(comm, "is_mpi", True):
        out.print(f"mpi4py is not installed: running {replicas} replicas one after another")
    with root_progress(root, "kmc run --replicas") as progress:
        summary = run_replicas(
            catalog, settings, out_dir, replicas, comm, str(catalog_file), resume=resume,
            checkpoint_interval_s=checkpoint_interval, plots=plots, snapshots=snapshots,
            overwrite=overwrite, acceleration=acceleration, progress=progress)
    if not root:
        return
    d = summary["interdiffusion"]
    out.print(f"{replicas} replicas on {summary['ranks']} rank(s), "
              f"{summary['events_executed']:,} events in all")
    if "D_A2_per_s" in d:
        ci = d.get("D_95ci_A2_per_s")
        out.print(f"interdiffusion coefficient D = {d['D_A2_per_s']:.4e} "
                  f"± {_se(d.get('D_stderr_A2_per_s'))} Angstrom^2/s (s.e.)"
                  + (f", 95 % interval [{ci[0]:.4e}, {ci[1]:.4e}]" if ci else ""))
    else:
        out.print(f"no interdiffusion fit: {d['error']}")
    if "acceleration" in summary:
        _print_acceleration(summary["acceleration"])
    out.print(f"wrote {out_dir}/ensemble.json, ensemble.npz, replicas/"
              + (", sigma2_vs_time.png, width_band.png, profile_band.png" if plots else ""))


def _se(x: float | None) -> str:
    """A standard error for printing ("n/a" when it could not be estimated)."""
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.1e}"


def _finish_run_output(summary: dict, out_dir: Path, plots: bool) -> None:
    """Print the fit of a serial or decomposed run, analyse and plot it, list its files."""
    _print_fit(summary["interdiffusion"])
    written: list[str] = []
    if plots:
        from kmcflow.kmc.study import analyze_directory

        written = ["analysis.json", *analyze_directory(out_dir)["plots"]]
    out.print(f"wrote {out_dir}/summary.json, observables.npz"
              + "".join(f", {name}" for name in written))


def _plus_minus(fit: dict) -> str:
    """`` ± s.e.`` of a fit record, or why one trajectory has none."""
    se = fit.get("D_stderr_A2_per_s")
    if se is None and fit.get("D_stderr_note"):
        return " (one trajectory: no standard error; --replicas R gives one)"
    return f" ± {_se(se)}"


def _print_fit(fit: dict) -> None:
    if "D_A2_per_s" in fit:
        out.print(f"interdiffusion coefficient D = {fit['D_A2_per_s']:.4e} Angstrom^2/s = "
                  f"{fit['D_cm2_per_s']:.4e} cm^2/s{_plus_minus(fit)}")
    else:
        out.print(f"no interdiffusion fit: {fit['error']}")


@kmc_app.command("analyze")
def kmc_analyze(run_dir: Annotated[Path, typer.Argument(help="Folder of a finished run.")]
                ) -> None:
    """Fit (erfc, Boltzmann-Matano) and plot (w(t), profiles) a finished run.

    Example: kmcflow kmc analyze runs/iso
    """
    from kmcflow.kmc.study import analyze_directory

    result = analyze_directory(run_dir)
    fit = result["interdiffusion_erfc"]
    if "D_A2_per_s" in fit:
        out.print(f"erfc fit: D = {fit['D_A2_per_s']:.4e} Angstrom^2/s{_plus_minus(fit)}")
    else:
        out.print(f"erfc fit: {fit['error']}")
    bm = result["boltzmann_matano"]
    if "D_A2_per_s" in bm:
        pairs = ", ".join(f"c={c:.2f}: {d:.3e}" for c, d in zip(bm["c_levels"], bm["D_A2_per_s"],
                                                                  strict=True) if d is not None)
        out.print(f"Boltzmann-Matano D(c) (Angstrom^2/s): {pairs}")
    out.print(f"wrote {run_dir}/analysis.json, " + ", ".join(result["plots"]))


@kmc_app.command("arrhenius")
def kmc_arrhenius(
    catalog_file: CatalogArg,
    temperatures: Annotated[list[float], typer.Option(
        "--temperatures", "-T", help="Temperatures in K (repeat the flag or list them).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o")] = Path("runs/arrhenius"),
    cells: Annotated[tuple[int, int, int] | None, typer.Option(show_default=False)] = None,
    vacancy_fraction: Annotated[float | None, typer.Option()] = None,
    steps: Annotated[int | None, typer.Option(help="Events per run.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    samples: Annotated[int | None, typer.Option()] = None,
    replicas: Annotated[int, typer.Option(min=1, help="Runs per temperature.")] = 1,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace --out if it is an earlier kmcflow Arrhenius study.")
    ] = False,
    accelerate: AccelerateOpt = False,
    accelerate_window: AccelerateWindowOpt = 10_000,
    accelerate_separation: AccelerateSeparationOpt = 100.0,
    accelerate_equilibration: AccelerateEquilibrationOpt = 30.0,
) -> None:
    """Run the couple at several temperatures and fit D = D0 exp(-E_a / k_B T).

    Example: kmcflow kmc arrhenius examples/catalogs/isotope_couple.json -T 500 -T 600 -T 700
    -T 800 --steps 1000000

    At the operating temperature: kmcflow kmc arrhenius examples/catalogs/li_na_couple.json
    -T 300 -T 350 -T 400 -T 450 -T 500 --accelerate --steps 150000000 --replicas 4
    """
    from kmcflow.kmc.catalog import load_catalog
    from kmcflow.kmc.runner import settings_from_catalog
    from kmcflow.kmc.study import arrhenius_study

    acceleration = acceleration_settings(accelerate, accelerate_window, accelerate_separation,
                                         accelerate_equilibration)
    catalog = load_catalog(catalog_file)
    base = settings_from_catalog(
        catalog, cells=tuple(cells) if cells else None, vacancy_fraction=vacancy_fraction,
        steps=steps if steps is not None else (catalog.conditions.steps or 1_000_000),
        seed=seed, samples=samples)
    with progress_bar() as bar:
        task = bar.add_task("arrhenius", total=1.0, info="")
        result = arrhenius_study(catalog, temperatures, base, out_dir, str(catalog_file),
                                 progress=lambda f, i: bar.update(task, completed=f, info=i),
                                 replicas=replicas, overwrite=overwrite,
                                 acceleration=acceleration)
    for row in result["temperatures"]:
        se = row.get("D_stderr_A2_per_s")
        acc = row.get("acceleration_factor")
        out.print(f"T = {row['temperature_K']:g} K: D = {row['D_A2_per_s']:.4e}"
                  + ("" if se is None else f" ± {se:.2e}") + " Angstrom^2/s"
                  + ("" if acc is None else f" (acceleration factor {acc:.3g})"))
        for warning in row.get("acceleration_warnings", []):
            err.print(f"warning: T = {row['temperature_K']:g} K, {warning}")
    err_txt = "" if result["Ea_stderr_eV"] is None else f" ± {result['Ea_stderr_eV']:.4f}"
    out.print(f"E_a = {result['Ea_eV']:.4f}{err_txt} eV, D0 = {result['D0_A2_per_s']:.4e} "
              f"Angstrom^2/s ({result['D0_cm2_per_s']:.4e} cm^2/s)")
    out.print(f"wrote {out_dir}/arrhenius.json, arrhenius.png, {result['sigma2_plot']}")


@kmc_app.command("converge-acceleration")
def kmc_converge_acceleration(
    catalog_file: CatalogArg,
    temperature: Annotated[float | None, typer.Option("--temperature", "-T",
                                                      help="Temperature, K.")] = None,
    time_s: Annotated[float | None, typer.Option(
        "--time", help="Simulated time of every run, s (the same for every setting).")] = None,
    values: Annotated[list[float] | None, typer.Option(
        "--values", help="Values of the parameter to compare (repeat the flag; default "
        "10, 30, 100 for equilibration, 1e2, 1e3, 1e4 for separation).",
        show_default=False)] = None,
    parameter: Annotated[str, typer.Option(
        help="The error-control parameter to vary: equilibration or separation.")
    ] = "equilibration",
    replicas: Annotated[int, typer.Option(help="Replicas per setting.")] = 4,
    plain: Annotated[bool, typer.Option(
        "--plain", help="Also run plain BKL as the reference (only where it is affordable).")
    ] = False,
    out_dir: Annotated[Path, typer.Option("--out", "-o")] = Path("runs/convergence"),
    cells: Annotated[tuple[int, int, int] | None, typer.Option(show_default=False)] = None,
    vacancy_fraction: Annotated[float | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    samples: Annotated[int | None, typer.Option()] = None,
    resume: Annotated[bool, typer.Option(help="Continue a killed study.")] = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace --out if it is an earlier kmcflow convergence study.")
    ] = False,
    accelerate_window: AccelerateWindowOpt = 10_000,
    accelerate_separation: AccelerateSeparationOpt = 100.0,
    accelerate_equilibration: AccelerateEquilibrationOpt = 30.0,
) -> None:
    """Run the same case at increasing error control and show whether D still moves.

    Example: kmcflow kmc converge-acceleration examples/catalogs/li_na_couple.json -T 400
    --time 0.045 --values 10 --values 30 --values 100 --replicas 4 --out runs/conv400

    Under mpiexec the replicas of each setting are spread over the ranks.
    """
    from kmcflow.kmc.catalog import load_catalog
    from kmcflow.kmc.convergence import converge_acceleration
    from kmcflow.kmc.parallel.comm import world
    from kmcflow.kmc.runner import settings_from_catalog

    base = acceleration_settings(True, accelerate_window, accelerate_separation,
                                 accelerate_equilibration)
    catalog = load_catalog(catalog_file)
    settings = settings_from_catalog(
        catalog, cells=tuple(cells) if cells else None, temperature_K=temperature,
        vacancy_fraction=vacancy_fraction, time_s=time_s, seed=seed, samples=samples)
    if time_s is None:
        raise ConfigError("give --time: every setting runs the same simulated time",
                          field="--time", hint="e.g. --time 2e-2 at 400 K on the Li|Na couple")
    comm = world()
    root = comm.Get_rank() == 0
    with root_progress(root, "converge-acceleration") as progress:
        record = converge_acceleration(
            catalog, settings, out_dir,
            values or ([10.0, 30.0, 100.0] if parameter == "equilibration" else [1e2, 1e3, 1e4]),
            parameter, replicas, base,
            plain, comm, str(catalog_file), resume=resume, overwrite=overwrite,
            progress=progress)
    if not root:
        return
    table = Table(title=f"D against {parameter} at {settings.temperature_K:g} K, "
                        f"{settings.time_s:g} s, {replicas} replicas each")
    for col in ("setting", "D (A^2/s)", "s.e.", "factor", "crossings/slow", "CPU (s)"):
        table.add_column(col, justify="left" if col == "setting" else "right", no_wrap=True)
    for r in record["rows"]:
        crossings = r["host_crossings_per_slow_event"]
        table.add_row(r["setting"], _fmt(r["D_A2_per_s"], ".4e"),
                      _fmt(r["D_stderr_A2_per_s"], ".2e"), f"{r['acceleration_factor']:.3g}",
                      _fmt(crossings, ".3g"), f"{r['cpu_time_s']:.1f}")
    out.print(table)
    verdict = record["verdict"]
    for key, name in (("last_two", " vs ".join(verdict["compared"])),
                      ("most_conservative_vs_plain", "most conservative vs plain")):
        c = verdict.get(key)
        if c is not None:
            out.print(f"{name}: {c['difference_percent']:+.2f} % "
                      f"({c['difference_sigma']:+.2f} combined s.e.)")
    out.print(("converged: " if verdict["converged"] else "NOT converged: ") + verdict["text"])
    out.print(f"wrote {out_dir}/convergence.json, convergence.png")


def _fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


@kmc_app.command("validate")
def kmc_validate(
    lattice: Annotated[str | None, typer.Option(help="One preset lattice (default: all).")
                       ] = None,
    quick: Annotated[bool, typer.Option(help="Fewer replicas (looser statistics).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
    check: Annotated[str, typer.Option(
        "--check", help="'engine' (the lattice checks) or 'five-frequency' (one solute and "
        "one vacancy in fcc against Manning's correlation factor).")] = "engine",
    rates: Annotated[str | None, typer.Option(
        "--rates", help="five-frequency: W0,W1,W2,W3,W4 in Hz (host far, rotation, exchange, "
        "dissociation, association), e.g. 1e6,1e6,1e6,1e6,1e6.", show_default=False)] = None,
    solute_jumps: Annotated[int, typer.Option(
        "--solute-jumps", help="five-frequency: solute jumps to average over.")] = 40_000,
) -> None:
    """Run the engine's reference checks: measured vs reference, tolerance, pass/fail.

    Example: kmcflow kmc validate --lattice fcc
    Example: kmcflow kmc validate --check five-frequency --rates 1e6,1e6,1e7,1e6,1e6 --json
    """
    from kmcflow.kmc.lattice import PRESET_NAMES

    if check not in ("engine", "five-frequency"):
        raise ConfigError(f"unknown check {check!r}", field="--check",
                          hint="use engine or five-frequency")
    if check == "five-frequency":
        from kmcflow.kmc.five_frequency import check_five_frequency, parse_rates

        if lattice not in (None, "fcc"):
            raise ConfigError("the five-frequency model is an fcc model", field="--lattice",
                              hint="drop --lattice or use --lattice fcc")
        if solute_jumps < 1000:
            raise ConfigError(f"--solute-jumps {solute_jumps} is too few for a correlation "
                              "factor", field="--solute-jumps", hint="use at least 1000")
        results = [check_five_frequency(parse_rates(rates), solute_jumps=solute_jumps
                                        ).as_check_result()]
    else:
        from kmcflow.kmc.validate import run_checks

        if lattice is not None and lattice not in PRESET_NAMES:
            raise ConfigError(f"unknown lattice {lattice!r}", field="--lattice",
                              hint=f"use one of {', '.join(PRESET_NAMES)}")
        if rates is not None:
            raise ConfigError("--rates belongs to --check five-frequency", field="--rates")
        results = run_checks(lattice, quick=quick)
    if as_json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        table = Table(title="kmcflow reference checks")
        for col in ("check", "lattice", "measured", "reference", "tolerance", "result", "detail"):
            table.add_column(col)
        for r in results:
            table.add_row(r.check, r.lattice, f"{r.measured:.6g}", f"{r.reference:.6g}",
                          f"{100 * r.tolerance:.0f} %", "[green]pass[/]" if r.passed else
                          "[red]FAIL[/]", r.detail)
        out.print(table)
    if not all(r.passed for r in results):
        raise typer.Exit(1)
