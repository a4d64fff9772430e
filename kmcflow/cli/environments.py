"""``kmcflow environments ...``: sample hop environments, compute them, fit the model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kmcflow.cli.console import one_thread_each, out, progress_bar
from kmcflow.errors import ConfigError

environments_app = typer.Typer(
    no_args_is_help=True,
    help="Environment-resolved barriers: sample hops, compute them, fit the catalog's model.")

CatalogArg = Annotated[Path, typer.Argument(help="Event catalog (JSON) whose lattice and "
                                            "species the hops use.", show_default=False)]


def parse_fractions(text: str, flag: str) -> dict[str, float]:
    """``"Ni=0.25"`` or ``"Cu=0.5,Ni=0.5"`` -> {species: fraction}."""
    out_map: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out_map[name.strip()] = float(value)
        except ValueError as exc:
            raise ConfigError(f"bad {flag} {text!r}", field=flag,
                              hint="give SPECIES=NUMBER pairs, e.g. Ni=0.25") from exc
    return out_map


def parse_repeats(text: str) -> tuple[int, int, int]:
    """``"3,3,3"`` -> (3, 3, 3)."""
    try:
        reps = tuple(int(x) for x in text.split(","))
    except ValueError:
        reps = ()
    if len(reps) != 3 or min(reps) < 1:
        raise ConfigError(f"bad --repeats {text!r}", field="--repeats",
                          hint="three whole numbers >= 1, e.g. 3,3,3")
    return reps  # type: ignore[return-value]


@environments_app.command("sample")
def environments_sample(
    catalog_file: CatalogArg,
    write: Annotated[Path, typer.Option("--out", help="Folder for the endpoints and "
                                        "environments.json (must not exist).")],
    composition: Annotated[list[str] | None, typer.Option(
        "--composition", help="Random alloys of this composition, e.g. Ni=0.25 (the other "
        "species share the rest); repeat for several.")] = None,
    count: Annotated[int, typer.Option("--count", help="Hops per composition.")] = 10,
    from_run: Annotated[Path | None, typer.Option(
        "--from-run", help="A kMC run folder: the environments it met without a table entry "
        "(summary.json), most executed first.")] = None,
    top: Annotated[int, typer.Option("--top", help="With --from-run: how many.")] = 10,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    repeats: Annotated[str, typer.Option("--repeats", help="Supercell of the lattice cell.")
                       ] = "3,3,3",
    lattice_constants: Annotated[str | None, typer.Option(
        "--lattice-constants", help="Each species' own lattice constant (Angstrom), e.g. "
        "Cu=3.59,Ni=3.49: cells follow Vegard's law (default: the catalog's a).")] = None,
    moving: Annotated[str | None, typer.Option(
        "--moving", help="Only hops of this species (default: whichever neighbour).")] = None,
) -> None:
    """Write NEB endpoints of vacancy hops in chosen local environments.

    Example: kmcflow environments sample cat.json --composition Ni=0.5 --count 20 --out envs
    """
    from kmcflow.kmc.catalog import load_catalog
    from kmcflow.kmc.environment_rates import catalog_lattice
    from kmcflow.outputs import check_output_folder
    from kmcflow.structures.environment_sampling import hops_for_keys, random_alloy_hops
    from kmcflow.workflows.environments import unlisted_keys, write_sample_folder

    if not composition and from_run is None:
        raise ConfigError("nothing to sample", field="--composition",
                          hint="give --composition Ni=0.5 (random alloys) or --from-run RUN")
    if count < 1 or top < 1:
        raise ConfigError("--count and --top must be >= 1", field="--count")
    check_output_folder(write, "environment_samples", inputs=[catalog_file])
    catalog = load_catalog(catalog_file)
    lattice = catalog_lattice(catalog)
    reps = parse_repeats(repeats)
    constants = parse_fractions(lattice_constants, "--lattice-constants") \
        if lattice_constants else None
    hops = []
    seen: set[str] = set()
    if from_run is not None:
        from kmcflow.kmc.environment import hop_environments

        keys = unlisted_keys(from_run, catalog.species, hop_environments(lattice), top)
        hops += hops_for_keys(keys, lattice, catalog.species, seed=seed, repeats=reps,
                              lattice_constants_A=constants)
        seen |= {h.key for h in hops}
    for i, text in enumerate(composition or []):
        batch = random_alloy_hops(lattice, catalog.species,
                                  parse_fractions(text, "--composition"), count,
                                  seed=seed + i, repeats=reps, moving=moving,
                                  lattice_constants_A=constants, skip_keys=seen)
        seen |= {h.key for h in batch}
        hops += batch
    if not hops:
        raise ConfigError("no environment to sample: every one the run met holds a second "
                          "vacancy or a site beyond a closed boundary, or is in the table",
                          file=str(from_run), field="--from-run",
                          hint="add --composition, or run kMC longer")
    settings = {"composition": composition, "count": count, "seed": seed,
                "repeats": list(reps), "lattice_constants_A": constants, "moving": moving,
                "from_run": None if from_run is None else str(from_run), "top": top}
    write_sample_folder(write, hops, catalog_name=catalog.name, species=catalog.species,
                        lattice=catalog.lattice.model_dump(mode="json", exclude_none=True),
                        settings=settings)
    out.print(f"wrote {len(hops)} hops to {write} (environments.json, endpoints/)")


@environments_app.command("compute")
def environments_compute(
    folder: Annotated[Path, typer.Argument(help="A folder from `environments sample`.",
                                           show_default=False)],
    calculator: Annotated[str, typer.Option(
        "--calculator", help="Code name (emt, chgnet, ...) or calculator config YAML.")
    ] = "emt",
    settings_file: Annotated[Path | None, typer.Option(
        "--settings", help="YAML with neb/relax/prefactor sections (the campaign's).")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Hops computed at a time.")] = 1,
) -> None:
    """CI-NEB and prefactor of every sampled hop (a rerun reuses the hops done).

    Example: kmcflow environments compute envs --calculator emt --workers 2
    """
    one_thread_each()  # workers inherit it: BLAS threads of two processes fight for 2 cores
    from kmcflow.workflows.environments import compute_sample_folder, hop_settings

    settings = hop_settings(calculator, settings_file)
    with progress_bar() as progress:
        task = progress.add_task("hops", total=None, info="reading the endpoints")

        def report(n: int, total: int, hop, state: str) -> None:
            progress.update(task, total=total, completed=n,
                            info=f"{hop.record['event_key'][:40]}: {state}")

        results = compute_sample_folder(folder, settings, workers=workers, progress=report)
    bad = [r for r in results if r.get("failure_reason")]
    out.print(f"{len(results) - len(bad)} of {len(results)} hops computed: {folder}/results/")
    for r in bad:
        out.print(f"[red]failed[/] hop {r.get('job_index')}: {r.get('failure_reason')} "
                  f"{r.get('failure_message', '')}", highlight=False)


@environments_app.command("submit")
def environments_submit(
    folder: Annotated[Path, typer.Argument(help="A folder from `environments sample`.",
                                           show_default=False)],
    profile: Annotated[Path, typer.Option("--profile", help="Cluster profile YAML "
                                          "(hpc_configs/).", show_default=False)],
    calculator: Annotated[str, typer.Option(
        "--calculator", help="Code name (emt, chgnet, ...) or calculator config YAML.")
    ] = "emt",
    settings_file: Annotated[Path | None, typer.Option(
        "--settings", help="YAML with neb/relax/prefactor sections (the campaign's).")] = None,
    only: Annotated[str | None, typer.Option(
        "--only", help="Hop indices, e.g. 0,3 (default: every hop not done nor queued).")
    ] = None,
) -> None:
    """Submit the sampled hops as a SLURM/PBS job array (task i computes hop i).

    A rerun submits what is missing, failed or was killed; `environments status` shows each
    hop. Example: kmcflow environments submit envs --profile hpc_configs/local_slurm.yaml
    """
    from kmcflow.cli.hpc import parse_only
    from kmcflow.hpc.profiles import load_profile
    from kmcflow.hpc.sample_jobs import prepare_sample_jobs, submit_sample_hops
    from kmcflow.workflows.environments import hop_settings

    indices = parse_only(only)
    settings = hop_settings(calculator, settings_file)
    prepare_sample_jobs(folder, settings, load_profile(profile))
    record = submit_sample_hops(folder, indices)
    n = len(record["tasks"])
    if not n:
        out.print(f"nothing to submit: every hop is done or queued (kmcflow environments "
                  f"status {folder})")
        return
    out.print(f"submitted {n} hop{'s' * (n != 1)} as job {', '.join(record['jobs'])} "
              f"({record['scheduler']}). Watch: kmcflow environments status {folder}")


@environments_app.command("status")
def environments_status(
    folder: Annotated[Path, typer.Argument(help="A submitted sample folder.",
                                           show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON record per hop.")] = False,
) -> None:
    """Each hop's state: done, failed, queued, running, lost (killed) or unsubmitted."""
    from kmcflow.hpc.sample_jobs import sample_hop_states

    states = sample_hop_states(folder)
    if as_json:
        print(json.dumps(states, indent=2))
        return
    table = Table("hop", "environment key", "task", "state", "why")
    for s in states:
        table.add_row(str(s["index"]), s["key"] or "", s["task"] or "", s["state"], s["why"])
    out.print(table)
    counts: dict[str, int] = {}
    for s in states:
        counts[s["state"]] = counts.get(s["state"], 0) + 1
    out.print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())))


@environments_app.command("fit")
def environments_fit(
    catalog_file: CatalogArg,
    folders: Annotated[list[Path], typer.Argument(help="Computed sample folders.",
                                                  show_default=False)],
    write: Annotated[Path, typer.Option("--out", help="The new catalog (JSON).")],
    test: Annotated[list[Path] | None, typer.Option(
        "--test", help="Computed folders held out of the fit: their error is printed.")
    ] = None,
    no_table: Annotated[bool, typer.Option(
        "--no-table", help="Write the model only (no exact table of the computed hops).")
    ] = False,
    ridge: Annotated[float, typer.Option("--ridge", help="Ridge on the orbit terms (eV^2).")
                     ] = 1e-4,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out if it exists.")
                         ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the errors as JSON.")] = False,
) -> None:
    """Fit pair bonds and the barrier expansion to computed hops; write a schema-2 catalog.

    Example: kmcflow environments fit cat.json envs --test envs_test --out cat_env.json
    """
    from kmcflow.workflows.environments import fit_folders

    report = fit_folders(catalog_file, folders, write, test=test or [], table=not no_table,
                         ridge_eV2=ridge, overwrite=overwrite)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    table = Table("set", "hops", "RMSE (eV)", "MAE (eV)", "max |error| (eV)",
                  title=f"environment model of {report['catalog']}")
    fit = report["fit"]
    table.add_row("training", str(fit["n_train"]), f"{fit['rmse_eV']:.4f}", "",
                  f"{fit['max_error_eV']:.4f}")
    if fit.get("cv_rmse_eV") is not None:
        table.add_row("cross-validation", str(fit["n_train"]), f"{fit['cv_rmse_eV']:.4f}", "",
                      "")
    if report.get("test") and report["test"]["n"]:
        t = report["test"]
        table.add_row("held out", str(t["n"]), f"{t['rmse_eV']:.4f}", f"{t['mae_eV']:.4f}",
                      f"{t['max_error_eV']:.4f}")
    out.print(table)
    for key in (report.get("test") or {}).get("not_covered", []):
        out.print(f"[yellow]not covered by the model[/] {key}", highlight=False)
    for item in report["left_out"]:
        out.print(f"[yellow]left out[/] {item['key']}: {item['why']}", highlight=False)
    out.print(f"wrote {write} ({report['n_table']} table entries, "
              f"{report['n_terms']} model terms)")
