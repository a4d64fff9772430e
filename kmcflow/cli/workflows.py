"""Command-line commands of the workflows stage: ``barrier`` and ``campaign run``.

Thin like the rest of the CLI: parse, call :mod:`kmcflow.workflows`, print.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kmcflow.cli.console import err, out, progress_bar
from kmcflow.errors import WorkflowError

_MODEL_DEFAULT = "from the settings model"
"""A flag left out takes the default of its settings model (kmcflow.workflows.settings, the
one place defaults live; ``kmcflow barrier --help`` would have to import pydantic to print it)."""


def _settings(model, flags: dict[str, str], **given):
    """``model`` from the flags that were given (None: left out, the model's default)."""
    from pydantic import ValidationError

    from kmcflow.workflows.settings import settings_error

    try:
        return model(**{name: value for name, value in given.items() if value is not None})
    except ValidationError as exc:
        raise settings_error(exc, model=model, flags=flags) from exc


def barrier_command(
    initial: Annotated[Path, typer.Argument(help="Initial endpoint (extxyz, POSCAR, CIF, JSON).",
                                            show_default=False)],
    final: Annotated[Path, typer.Argument(help="Final endpoint: same atoms, same order.",
                                          show_default=False)],
    write: Annotated[Path, typer.Option("--out", help="Folder for band.extxyz, profile.png "
                                        "and result.json.", show_default=False)],
    calculator: Annotated[str, typer.Option(
        "--calculator", help="A code name (emt, chgnet, ...) or a calculator config YAML.")
    ] = "emt",
    images: Annotated[int | None, typer.Option(
        "--images", help="Intermediate images (even by default: docs/user-guide/workflows.md).",
        show_default=_MODEL_DEFAULT)] = None,
    fmax: Annotated[float | None, typer.Option(
        "--fmax", help="Climbing-image force threshold, eV/Angstrom.",
        show_default=_MODEL_DEFAULT)] = None,
    steps: Annotated[int | None, typer.Option(
        "--steps", help="Optimizer steps per NEB stage.", show_default=_MODEL_DEFAULT)] = None,
    optimizer: Annotated[str | None, typer.Option(
        "--optimizer", help="auto (BFGS, or FIRE for a large band on a cheap calculator), "
        "FIRE, BFGS or MDMin.", show_default=_MODEL_DEFAULT)] = None,
    relax: Annotated[bool | None, typer.Option(
        "--relax/--no-relax", help="Relax the endpoints first (fixed cell).",
        show_default=_MODEL_DEFAULT)] = None,
    relax_fmax: Annotated[float | None, typer.Option(
        "--relax-fmax", help="Endpoint force threshold, eV/Angstrom.",
        show_default=_MODEL_DEFAULT)] = None,
    symmetric: Annotated[bool | None, typer.Option(
        "--symmetric", help="The hop is symmetric: unequal endpoint energies are a failure.",
        show_default=_MODEL_DEFAULT)] = None,
    radius: Annotated[float | None, typer.Option(
        "--radius", help="Vibrate the free atoms within this distance of the moving atom "
        "too, Angstrom.", show_default=_MODEL_DEFAULT)] = None,
    allow_fallback: Annotated[bool | None, typer.Option(
        "--allow-fallback", help="Use a flagged 1e13 Hz prefactor when the saddle is not a "
        "first-order saddle.", show_default=_MODEL_DEFAULT)] = None,
    warm_start: Annotated[str | None, typer.Option(
        "--warm-start", help="A cheap calculator (code name or config YAML) that relaxes the "
        "endpoints and the band first; --calculator refines them and judges convergence.",
        show_default=False)] = None,
    surrogate: Annotated[str | None, typer.Option(
        "--surrogate", help="Relax the band on a surrogate trained on the expensive calls: "
        "gp (a Gaussian process, on top of --warm-start when given) or none.",
        show_default=_MODEL_DEFAULT)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out.")] = False,
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", help="Save the band here after every step; a rerun with the same "
        "folder continues from it.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print result.json.")] = False,
) -> None:
    """Compute one hop: relax the endpoints, CI-NEB, Vineyard prefactor.

    Example: kmcflow barrier initial.extxyz final.extxyz --calculator emt --images 4 --out hop

    With a DFT code: --calculator qe.yaml --warm-start chgnet --surrogate gp spends the
    fewest DFT force calls (result.json: force_calls, warm_start_force_calls).
    """
    from kmcflow.cli.options import calculator_from_flag
    from kmcflow.outputs import check_output_folder
    from kmcflow.workflows.hop import compute_hop
    from kmcflow.workflows.output import write_hop_outputs
    from kmcflow.workflows.settings import NebSettings, PrefactorSettings, RelaxSettings

    neb = _settings(NebSettings, {"n_images": "--images", "fmax_eV_per_A": "--fmax",
                                  "steps": "--steps", "optimizer": "--optimizer",
                                  "surrogate": "--surrogate"},
                    n_images=images, fmax_eV_per_A=fmax, steps=steps, optimizer=optimizer,
                    symmetric=symmetric, surrogate=surrogate)
    relax_settings = _settings(RelaxSettings, {"fmax_eV_per_A": "--relax-fmax"},
                               fmax_eV_per_A=relax_fmax, enabled=relax)
    prefactor = _settings(PrefactorSettings, {"radius_A": "--radius"}, radius_A=radius,
                          allow_fallback=allow_fallback)
    check_output_folder(write, "barrier", overwrite=overwrite, inputs=[initial, final])
    if checkpoint is not None:
        check_output_folder(checkpoint, "neb_checkpoint", reuse=True, flag="--checkpoint",
                            inputs=[initial, final])
    from kmcflow.errors import ConfigError

    config = calculator_from_flag(calculator)
    if warm_start is not None:
        cheap = calculator_from_flag(warm_start, "--warm-start")
        if cheap.warm_start is not None:
            raise ConfigError("a warm-start calculator cannot have a warm start of its own",
                              file=str(warm_start), field="warm_start", hint="remove it")
        config = config.model_copy(update={"warm_start": cheap})
    from kmcflow.workflows.hop import read_atoms
    from kmcflow.workflows.neb import check_endpoints

    ini, fin = read_atoms(initial), read_atoms(final)
    check_endpoints(ini, fin, files=(str(initial), str(final)))
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kmcflow-barrier-") as work, err.status(
            f"relaxing endpoints and the band ({neb.n_images} images, {config.name}"
            + (f", warm start {config.warm_start.name}" if config.warm_start else "")
            + (f", {neb.surrogate} surrogate" if neb.surrogate != "none" else "") + ")"):
        result = compute_hop(ini, fin, config, neb=neb, relax=relax_settings,
                             prefactor=prefactor, workdir=work,
                             hop={"initial_file": str(initial), "final_file": str(final)},
                             checkpoint=checkpoint)
        record = write_hop_outputs(result, write)
    if as_json:
        print(json.dumps(record, indent=2))
        return
    _print_result(record)
    out.print(f"wrote {write}/band.extxyz, profile.png, result.json")


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _print_result(record: dict) -> None:
    table = Table("quantity", "value")
    table.add_row("forward barrier (eV)", _fmt(record["forward_barrier_eV"], ".4f"))
    table.add_row("reverse barrier (eV)", _fmt(record["reverse_barrier_eV"], ".4f"))
    table.add_row("E_KRA (eV)", _fmt(record["kra_eV"], ".4f"))
    table.add_row("prefactor (Hz)", f"{_fmt(record['prefactor_Hz'], '.3e')} "
                  f"({record['prefactor_route']})")
    table.add_row("converged", str(record["converged"]))
    table.add_row("force calls", str(record["force_calls"]))
    if record.get("warm_start") is not None:
        warm = record["warm_start"]
        table.add_row(f"warm-start force calls ({warm['calculator']})",
                      str(record["warm_start_force_calls"]))
        table.add_row(f"warm-start barrier (eV, {warm['calculator']})",
                      _fmt(warm["forward_barrier_eV"], ".4f"))
    table.add_row("failure", record["failure_reason"] or "none")
    out.print(table)


def campaign_run(
    campaign: Annotated[Path, typer.Argument(help="Campaign YAML (docs/user-guide/workflows.md).",
                                             show_default=False)],
    write: Annotated[Path | None, typer.Option(
        "--out", help="Campaign folder (default: campaigns/NAME). Rerunning into the same "
        "folder skips the hops already computed.")] = None,
    only: Annotated[str | None, typer.Option(
        "--only", help="Run only these hop indices (comma separated), e.g. to split a "
        "campaign.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    workers: Annotated[int, typer.Option(
        "--workers", help="Hops computed at a time, each in a process of its own (give each "
        "one core: OMP_NUM_THREADS=1).")] = 1,
) -> None:
    """Plan the hops of a campaign, compute each (CI-NEB + prefactor), assemble the catalog.

    Example: kmcflow campaign run examples/campaigns/cu_ni_emt.yaml --out campaigns/cu_ni
    """
    from kmcflow.workflows.campaign import load_campaign, run_campaign

    spec = load_campaign(campaign)
    target = write or Path("campaigns") / spec.name
    selected = None
    if only:
        try:
            selected = [int(x) for x in only.split(",") if x.strip()]
        except ValueError as exc:
            raise WorkflowError(f"bad --only {only!r}", field="--only",
                                hint="give hop indices such as 0,1,2") from exc

    with progress_bar() as progress:
        task = progress.add_task("hops", total=None, info="planning hops")

        def report(n: int, total: int, hop, state: str) -> None:
            progress.update(task, total=total, completed=n,
                            info=f"{hop.record['event_key']}: {state}")

        summary = run_campaign(spec, target, progress=report, only=selected, workers=workers)
    rep = summary.report
    if as_json:
        print(json.dumps(rep, indent=2))
        return
    table = Table("hop", "event key", "origin", "barrier fwd/rev (eV)", "prefactor (Hz)",
                  "status", title=f"campaign {spec.name}: {rep['computed']} computed, "
                  f"{rep['reused']} reused")
    for r in summary.results:
        status = r.failure_reason or ("ok" if r.converged else "not converged")
        table.add_row(str(r.job_index), str(r.event_key), str(r.hop.get("origin")),
                      f"{_fmt(r.forward_barrier_eV, '.3f')} / "
                      f"{_fmt(r.reverse_barrier_eV, '.3f')}",
                      _fmt(r.prefactor_Hz, ".2e"), status)
    out.print(table)
    for f in rep["failed"]:
        err.print(f"[red]failed[/red] {f['event_key']}: {f['failure_reason']} {f['message']}")
    out.print(f"wrote {target}/catalog.json ({rep['n_events']} events), report.json, "
              "results/")
