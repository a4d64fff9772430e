"""``kmcflow learn``: kMC runs, the environments they meet are computed, the catalog refitted."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kmcflow.cli.console import err, one_thread_each, out
from kmcflow.cli.environments import parse_fractions, parse_repeats


def learn_command(
    catalog_file: Annotated[Path, typer.Argument(help="Event catalog (JSON) of the couple.",
                                                 show_default=False)],
    write: Annotated[Path, typer.Option("--out", help="Folder (rerun to continue).")],
    calculator: Annotated[str, typer.Option(
        "--calculator", help="Code name (emt, chgnet, ...) or calculator config YAML.")
    ] = "emt",
    temperature: Annotated[float, typer.Option("--temperature", "-T",
                                               help="kMC temperature (K).")] = 1250.0,
    cells: Annotated[tuple[int, int, int], typer.Option(
        "--cells", help="kMC cells along x, y, z.")] = (8, 8, 24),
    steps: Annotated[int, typer.Option("--steps", help="Events per kMC run.")] = 2_000_000,
    replicas: Annotated[int, typer.Option("--replicas", help="kMC runs per iteration.")] = 8,
    max_replicas: Annotated[int, typer.Option(
        "--max-replicas", help="More runs, up to this, where D's change is within the "
        "tolerance but its error is not.")] = 32,
    top: Annotated[int, typer.Option("--top", help="New hops per iteration.")] = 10,
    seed_count: Annotated[int, typer.Option(
        "--seed-count", help="Seed hops per composition (25, 50, 75 % of the second "
        "species).")] = 8,
    max_iterations: Annotated[int, typer.Option("--max-iterations")] = 6,
    tolerance: Annotated[float, typer.Option(
        "--tolerance", help="Converged when D changes less than this (relative)...")] = 0.05,
    model_share: Annotated[float, typer.Option(
        "--model-share", help="... and the model rates at most this share of the hops.")
    ] = 0.5,
    lattice_constants: Annotated[str | None, typer.Option(
        "--lattice-constants", help="Each species' own lattice constant (Angstrom) for "
        "Vegard cells, e.g. Cu=3.59,Ni=3.49 (default: the catalog's).")] = None,
    repeats: Annotated[str, typer.Option(
        "--repeats", help="Supercell of the lattice cell for the hops (sc: 4,4,4).")] = "3,3,3",
    seed: Annotated[int, typer.Option("--seed", help="Random seed (hops and kMC).")] = 1,
    settings_file: Annotated[Path | None, typer.Option(
        "--settings", help="YAML with the hops' neb/relax/prefactor sections.")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", help="Hops computed and kMC replicas run at a time (processes).")] = 1,
    profile: Annotated[Path | None, typer.Option(
        "--profile", help="Cluster profile (YAML): the hops run as SLURM/PBS array tasks.")
    ] = None,
    no_wait: Annotated[bool, typer.Option(
        "--no-wait", help="With --profile: submit, then exit 3 instead of waiting; rerun the "
        "same command to continue.")] = False,
    poll: Annotated[float, typer.Option("--poll", help="With --profile: seconds between "
                                        "looks at the scheduler.")] = 30.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print learn.json.")] = False,
) -> None:
    """Run kMC, compute the environments it met without a table entry, refit, repeat.

    Example: kmcflow learn demo/campaign/catalog.json --calculator emt --out learn

    Exit codes: 0 converged, 1 not converged, 2 bad input, 3 waiting for cluster jobs
    (--no-wait).
    """
    one_thread_each()  # the hop workers inherit it (BLAS threads of two processes fight)
    from kmcflow.learn import LearnSettings, LearnWaiting, run_learn
    from kmcflow.workflows.environments import hop_settings

    hop = {}
    if settings_file is not None:
        hop = hop_settings(calculator, settings_file).model_dump(
            mode="json", include={"neb", "relax", "prefactor"})
    settings = LearnSettings(
        calculator=calculator, temperature_K=temperature, cells=tuple(cells), steps=steps,
        replicas=replicas, max_replicas=max_replicas, top=top, seed_count=seed_count,
        max_iterations=max_iterations,
        d_tolerance=tolerance, model_share_max=model_share, workers=workers, hop=hop,
        repeats=parse_repeats(repeats), seed=seed,
        profile=None if profile is None else str(profile), wait=not no_wait, poll_s=poll,
        lattice_constants_A=(parse_fractions(lattice_constants, "--lattice-constants")
                             if lattice_constants else None))
    start = time.monotonic()
    try:
        record = run_learn(catalog_file, write, settings, progress=lambda message: err.print(
            f"  [{time.monotonic() - start:6.0f} s] {message}", highlight=False))
    except LearnWaiting as waiting:
        err.print(f"waiting: {waiting}", highlight=False)
        raise typer.Exit(3) from None
    if as_json:
        print(json.dumps(record, indent=2))
        if not record["converged"]:
            raise typer.Exit(1)
        return
    table = Table("iteration", "hops", "CV RMSE (eV)", "D (A^2/s)", "change", "model share",
                  title=f"learn {catalog_file.name} at {temperature:g} K")
    for it in record["iterations"]:
        change = it.get("D_change")
        table.add_row(str(it["iteration"]), str(it["n_hops"]),
                      "-" if it["fit"]["cv_rmse_eV"] is None
                      else f"{it['fit']['cv_rmse_eV']:.4f}",
                      f"{it['D_A2_per_s']:.4g} +- {it['D_stderr_A2_per_s']:.2g}",
                      "-" if change is None else
                      f"{100 * change:+.1f} +- {100 * it['D_change_stderr']:.1f} %",
                      f"{100 * it['model_share']:.0f} %")
    out.print(table)
    out.print(f"{'converged' if record['converged'] else 'NOT converged'}: {record['why']}")
    out.print(f"catalog: {write}/{record['final_catalog']}; record: {write}/learn.json")
    if not record["converged"]:
        raise typer.Exit(1)
