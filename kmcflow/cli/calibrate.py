"""``kmcflow calibrate-u``: tune a Hubbard U to a reference band gap (thin: parse, call, print)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from kmcflow.cli.console import err, out
from kmcflow.cli.options import calculator_from_flag
from kmcflow.errors import ConfigError


def parse_range(text: str) -> tuple[float, float]:
    """``"0,10"`` -> (0.0, 10.0)."""
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError as exc:
        raise ConfigError(f"bad --u-range {text!r}", field="--u-range",
                          hint="two numbers of eV, e.g. 0,10") from exc
    if not 0.0 <= low < high <= 15.0:
        raise ConfigError(f"--u-range {text} is outside 0-15 eV (or empty)", field="--u-range",
                          hint="e.g. 0,10")
    return low, high


def calibrate_u_command(
    structure: Annotated[str, typer.Argument(help="A bundled bulk (e.g. NiO) or a structure "
                                             "file (POSCAR, CIF, ...).", show_default=False)],
    element: Annotated[str, typer.Option("--element", help="The element whose U is tuned.",
                                         show_default=False)],
    reference: Annotated[float, typer.Option(
        "--reference", help="The target band gap (eV), e.g. a hybrid functional's.",
        show_default=False)],
    write: Annotated[Path, typer.Option("--out", help="Folder (a rerun reads points back).",
                                        show_default=False)],
    target: Annotated[str, typer.Option("--target", help="The property tuned: band_gap.")
                      ] = "band_gap",
    reference_error: Annotated[float, typer.Option(
        "--reference-error", help="The reference's standard error (eV).")] = 0.0,
    reference_source: Annotated[str, typer.Option(
        "--reference-source", help="Where the reference comes from (kept in provenance).")
    ] = "",
    calculator: Annotated[str, typer.Option(
        "--calculator", "--code", help="espresso (or vasp, gpaw), or a calculator config YAML "
        "with its cutoff, k-points, pseudopotentials, spin.")] = "espresso",
    magnetic_order: Annotated[str, typer.Option(
        "--magnetic-order", help="none, or rocksalt_afm_111 (AFM-II of NiO, MnO, ...).")
    ] = "none",
    moment: Annotated[float, typer.Option("--moment", help="Initial moment (muB).")] = 2.0,
    u_range: Annotated[str, typer.Option("--u-range", help="U range searched (eV).")] = "0,10",
    points: Annotated[int, typer.Option("--points", help="Grid points before refining.")] = 4,
    tolerance: Annotated[float, typer.Option(
        "--tolerance", help="A computed gap this close to the reference ends the search (eV).")
    ] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Print calibration.json.")] = False,
) -> None:
    """Scan U, bracket the reference gap, refine; write the tuned calculator config.

    Example: kmcflow calibrate-u NiO --element Ni --reference 2.5 --magnetic-order
    rocksalt_afm_111 --calculator nio_espresso.yaml --out nio_u
    """
    from kmcflow.outputs import check_output_folder
    from kmcflow.structures.io import read_structure
    from kmcflow.structures.magnetic import rocksalt_afm_111
    from kmcflow.workflows.u_calibration import UCalibrationSettings, calibrate_u

    low, high = parse_range(u_range)
    if magnetic_order not in ("none", "rocksalt_afm_111"):
        raise ConfigError(f"unknown magnetic order {magnetic_order!r}",
                          field="--magnetic-order", hint="none or rocksalt_afm_111")
    config = calculator_from_flag(calculator)
    if magnetic_order != "none" and not config.spin_polarized:
        config = config.model_copy(update={"spin_polarized": True})
    cell = read_structure(structure).structure
    if magnetic_order == "rocksalt_afm_111":
        cell = rocksalt_afm_111(cell, moment)
    settings = UCalibrationSettings(
        element=element, reference_eV=reference, target=target,
        reference_error_eV=reference_error, reference_source=reference_source,
        u_min_eV=low, u_max_eV=high, n_grid=points, tolerance_eV=tolerance)
    settings.check(cell, config)
    check_output_folder(write, "u_calibration", reuse=True)
    start = time.monotonic()
    record = calibrate_u(cell, config, settings, write, progress=lambda message: err.print(
        f"  [{time.monotonic() - start:6.0f} s] {message}", highlight=False))
    if as_json:
        print(json.dumps(record, indent=2))
    else:
        for p in sorted(record["scan"], key=lambda p: p["U_eV"]):
            out.print(f"U = {p['U_eV']:6.3f} eV   gap {p['band_gap_eV']:.3f} eV   ({p['stage']})")
        for w in record["warnings"]:
            out.print(f"[yellow]warning[/] {w}", highlight=False)
        out.print(("tuned: " if record["success"] else "NOT tuned: ") + record["why"])
        if record["success"]:
            sigma = record["U_uncertainty_eV"]
            out.print(f"U({element}) = {record['tuned_U_eV']:.3f}"
                      + ("" if sigma is None else f" +- {sigma:.2f}")
                      + f" eV; config: {record['calculator_tuned']}")
    if not record["success"]:
        raise typer.Exit(1)
