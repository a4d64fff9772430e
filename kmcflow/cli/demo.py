"""``kmcflow demo``: the whole pipeline on embedded defaults (see :mod:`kmcflow.demo`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from kmcflow.cli.console import err, one_thread_each, out

STAGES = ("structures", "barriers", "kmc", "report")


def demo_command(
    write: Annotated[Path, typer.Option("--out", help="Output folder (rerun to continue).")
                     ] = Path("demo"),
    quick: Annotated[bool, typer.Option("--quick", help="Fewer minutes: 4 temperatures, a "
                                        "small box, fewer events (EMT about 3 minutes, "
                                        "CHGNet about 13, two hops at a time).")] = False,
    calculator: Annotated[str, typer.Option(
        "--calculator", help="emt (Cu|Ni, no extra) or chgnet (MgO|NiO, the ml extra).")
    ] = "emt",
    temperature: Annotated[list[float] | None, typer.Option(
        "--temperature", "-T", help="kMC temperature in K (repeat; EMT: 950-1250 K, quick "
        "950/1050/1150/1250 K; CHGNet: 1600-1900 K, quick 1700-2000 K).",
        show_default=False)] = None,
    environments: Annotated[bool, typer.Option(
        "--environments", help="Also learn an environment-resolved catalog (kmcflow learn, "
        "EMT couple) and report D(T) and E_a of both catalogs side by side (--quick: about "
        "15 more minutes on 2 cores).")] = False,
    width_fraction: Annotated[float | None, typer.Option(
        "--width-fraction", help="Run length: the 10-90 % width each run aims at, as a "
        "fraction of half the couple (default 0.35).", show_default=False)] = None,
) -> None:
    """Two bulk crystals to an Arrhenius law: interface, hops, CI-NEB, catalog, kMC, report.

    Example: kmcflow demo --out demo   (about 6 minutes on 2 cores; --quick: about 3;
    --calculator chgnet --quick: about 13)
    """
    if calculator == "chgnet":
        one_thread_each()  # before kmcflow.demo imports numpy
    from kmcflow.demo import DemoSettings, run_demo

    settings = DemoSettings.quick(calculator) if quick else DemoSettings.full(calculator)
    if temperature:
        settings.temperatures_K = list(temperature)
    settings.environments = environments
    if width_fraction is not None:
        if not 0 < width_fraction < 1:
            from kmcflow.errors import ConfigError

            raise ConfigError("--width-fraction must lie between 0 and 1",
                              field="--width-fraction")
        settings.width_fraction = width_fraction
    start = time.monotonic()
    current = {"stage": None, "printed": 0.0, "head": ""}

    def progress(stage: str, fraction: float, message: str) -> None:
        if stage != current["stage"]:
            current["stage"] = stage
            n = STAGES.index(stage) + 1
            err.print(f"[bold]stage {n}/{len(STAGES)}: {stage}[/bold]")
        head = message.split(":")[0]
        now = time.monotonic()
        if head == current["head"] and now - current["printed"] < 5.0 and fraction < 1.0:
            return  # kMC reports often: one line per run start and every 5 s
        current.update(printed=now, head=head)
        err.print(f"  [{now - start:6.0f} s] {100 * fraction:3.0f} %  {message}",
                  highlight=False)

    summary = run_demo(settings, write, progress)
    a = summary["arrhenius"]
    out.print(f"catalog: {write}/{summary['catalog']} ({len(summary['events'])} events)")
    for key, barrier in summary["bulk_barriers_eV"].items():
        out.print(f"  bulk hop {key}: {barrier:.3f} eV")
    for row in a["temperatures"]:
        out.print(f"  D({row['temperature_K']:g} K) = {row['D_A2_per_s'] * 1e-16:.3g} cm^2/s")
    r2 = a.get("r_squared")
    out.print(f"Arrhenius: E_a = {a['Ea_eV']:.3f} eV, D0 = {a['D0_cm2_per_s']:.3g} cm^2/s"
              + (f", R^2 = {r2:.4f}" if r2 is not None else ""))
    out.print(f"report: {write}/report.md ({time.monotonic() - start:.0f} s)")
