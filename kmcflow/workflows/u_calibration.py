"""``kmcflow calibrate-u``: tune one element's Hubbard U to a reference band gap.

The protocol of the source study (tune U on a small cell until PBE+U meets a hybrid
functional's number, then use that U for every interface calculation), on one cell:

- each point is a static DFT+U calculation of the cell (:class:`~kmcflow.workflows.reference.
  StaticMaker`; pw.x, the only code whose gap is read so far) with U of ``element`` set (the
  other elements keep theirs), in ``OUT/points/U_<value>/``; its gap is read over
  both spin channels and all k-points (:mod:`kmcflow.workflows.band_gap`). A point already
  computed with the same calculator config and the same cell (positions, moments) is read
  back, so a rerun costs nothing; an SCF that did not converge fails the calibration;
- the search is :func:`kmcflow.workflows.u_tuning.tune_u`: a grid, the bracket, regula falsi;
  a target out of reach is reported, never clamped to an end of the range;
- the result: ``OUT/calibration.json`` (the scan, one record per point with ``U_eV`` and
  ``band_gap_eV``; ``tuned_U_eV`` with its uncertainty; the reference and its source; each
  point's provenance), ``OUT/calibration.png`` and ``OUT/calculator_tuned.yaml``: the
  calculator config with the tuned U and where it came from (``hubbard_U_source``), which
  ``kmcflow barrier`` and campaigns take unchanged and which every catalog event built with it
  carries in its provenance.

Only the band gap is a target so far; a defect formation energy is refused with one line.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kmcflow.atomic_io import write_json, write_text
from kmcflow.errors import ConfigError, KmcflowError

TARGETS = ("band_gap",)


@dataclass
class UCalibrationSettings:
    """What to tune and how: energies in eV."""

    element: str
    reference_eV: float
    target: str = "band_gap"
    reference_error_eV: float = 0.0
    reference_source: str = ""
    u_min_eV: float = 0.0
    u_max_eV: float = 10.0
    n_grid: int = 4
    tolerance_eV: float = 0.05
    max_refinements: int = 8

    def check(self, structure, config) -> None:
        """Refuse what cannot run, one line each (nothing is written before)."""
        from kmcflow.workflows.calculators import check_ready, hubbard_manifold
        from kmcflow.workflows.u_tuning import check_search

        check_search(self.reference_eV, self.u_min_eV, self.u_max_eV, self.n_grid,
                     self.tolerance_eV, self.reference_error_eV)
        if self.target not in TARGETS:
            raise ConfigError(f"target {self.target!r} cannot be computed yet", field="target",
                              hint=f"use one of {', '.join(TARGETS)}")
        elements = sorted({el.symbol for el in structure.composition.elements})
        if self.element not in elements:
            raise ConfigError(f"{self.element} is not in the cell ({', '.join(elements)})",
                              field="element", hint="name an element of the structure")
        hubbard_manifold(self.element)  # a transition metal, lanthanide or actinide
        if config.name != "espresso":  # the only code whose gap kmcflow reads so far
            raise ConfigError(f"calibrate-u reads band gaps from pw.x only, not {config.name}",
                              field="calculator", hint="use espresso")
        if not (math.isfinite(self.reference_eV) and self.reference_eV > 0):
            raise ConfigError(f"reference gap {self.reference_eV!r} is not a positive number",
                              field="reference", hint="e.g. --reference 3.0")
        moments = structure.site_properties.get("magmom") or []
        if not all(math.isfinite(float(m)) for m in moments):
            raise ConfigError("the initial magnetic moments are not finite", field="moment",
                              hint="e.g. --moment 2.0")
        check_ready(config, elements)  # pw.x, its pseudopotentials


def _point_folder(out: Path, u: float) -> Path:
    return out / "points" / f"U_{u:.4f}"


def _config_with_u(config, element: str, u: float, elements: list[str]):
    """The config with U of ``element`` set; the other elements keep theirs (presets resolved)."""
    from kmcflow.workflows.calculators import hubbard_u

    current = hubbard_u(config, elements)
    return config.model_copy(update={"hubbard_U_eV": {**current, element: round(u, 6)}})


def structure_identity(structure) -> dict[str, Any]:
    """What a point's result depends on besides the config: species, positions, moments."""
    import numpy as np

    return {"species": [site.species_string for site in structure],
            "frac": np.round(structure.frac_coords, 6).tolist(),
            "lattice": np.round(structure.lattice.matrix, 6).tolist(),
            "magmom": [round(float(m), 6) for m in
                       (structure.site_properties.get("magmom") or [])]}


def compute_point(structure, config, folder: Path) -> dict[str, Any]:
    """The static calculation at one U (or its stored record); raises if it has no gap."""
    from kmcflow.readers import read_json
    from kmcflow.workflows.execution import run_flow
    from kmcflow.workflows.hop_batch import campaign_store
    from kmcflow.workflows.reference import StaticMaker

    record_path = folder / "point.json"
    wanted = config.model_dump(mode="json")
    cell = structure_identity(structure)
    if record_path.is_file():
        stored = read_json(record_path, error=KmcflowError, what="calibration point")
        if isinstance(stored, dict) and stored.get("calculator_config") == wanted \
                and stored.get("structure") == cell:
            return stored
    import warnings

    job = StaticMaker(calculator_config=wanted).make(structure, folder.name)
    store = campaign_store(folder)
    with warnings.catch_warnings():  # jobflow's own use of a deprecated helper
        warnings.filterwarnings("ignore", message="cd is deprecated", category=FutureWarning)
        failed = run_flow(job, store, folder / "jobs")
    if failed is not None:
        raise KmcflowError(f"the calculation at {folder.name} failed: {failed.summary()}",
                           file=str(folder))
    output = store.get_output(job.uuid, load=True)
    record = {k: v for k, v in output.items() if k != "code_output"}
    record.update(calculator_config=wanted, structure=cell, job_id=job.uuid)
    if not record.get("converged"):
        raise KmcflowError(f"the SCF at {folder.name} did not converge", file=str(folder),
                           hint="more electron steps, another mixing, or check the cell")
    write_json(record_path, record)
    return record


def calibrate_u(structure, config, settings: UCalibrationSettings, out_dir: str | Path,
                progress=None) -> dict[str, Any]:
    """Run (or continue) the calibration in ``out_dir``; return ``calibration.json``'s record."""
    from kmcflow.outputs import write_marker
    from kmcflow.workflows.u_tuning import tune_u

    settings.check(structure, config)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, "u_calibration")
    for name in ("calibration.json", "calibration.png", "calculator_tuned.yaml"):
        (out / name).unlink(missing_ok=True)  # a rerun's result replaces, never mixes
    report = progress or (lambda message: None)
    elements = sorted({el.symbol for el in structure.composition.elements})

    def evaluate(u: float):
        folder = _point_folder(out, u)
        report(f"U({settings.element}) = {u:.3f} eV: computing")
        point = compute_point(structure, _config_with_u(config, settings.element, u, elements),
                              folder)
        if point.get("band_gap_eV") is None:
            raise KmcflowError(f"no band gap at U = {u:g} eV: "
                               f"{point.get('band_gap_why_none', 'not read')}",
                               file=str(folder))
        report(f"U({settings.element}) = {u:.3f} eV: gap {point['band_gap_eV']:.3f} eV")
        return point["band_gap_eV"], {
            "folder": str(folder.relative_to(out)), "converged": point.get("converged"),
            "total_magnetization_muB": point.get("total_magnetization_muB"),
            "absolute_magnetization_muB": point.get("absolute_magnetization_muB"),
            "energy_eV": point.get("energy_eV"), "job_id": point.get("job_id")}

    try:
        tuning = tune_u(evaluate, settings.reference_eV, u_min_eV=settings.u_min_eV,
                        u_max_eV=settings.u_max_eV, n_grid=settings.n_grid,
                        tolerance=settings.tolerance_eV,
                        reference_error=settings.reference_error_eV,
                        max_refinements=settings.max_refinements)
    except KmcflowError as exc:  # a point failed: say so in calibration.json too
        write_json(out / "calibration.json", {
            "schema": "kmcflow.u_calibration", "schema_version": 1, "success": False,
            "why": exc.one_line(), "element": settings.element,
            "settings": asdict(settings)})
        raise
    record = {
        "schema": "kmcflow.u_calibration", "schema_version": 1,
        "element": settings.element, "target": settings.target,
        "structure": structure.composition.reduced_formula, "n_atoms": len(structure),
        "reference": {"band_gap_eV": settings.reference_eV,
                      "error_eV": settings.reference_error_eV,
                      "source": settings.reference_source or "given"},
        "settings": asdict(settings), "calculator": config.model_dump(mode="json"),
        "scan": [{"U_eV": p.U_eV, "band_gap_eV": p.value, "stage": p.stage, **p.record}
                 for p in tuning.points],
        "success": tuning.success, "why": tuning.why, "warnings": tuning.warnings,
        "tuned_U_eV": tuning.tuned_U_eV, "tuned_band_gap_eV": tuning.tuned_value,
        "U_uncertainty_eV": tuning.U_uncertainty_eV, "slope_eV_per_eV": tuning.slope_per_eV}
    write_json(out / "calibration.json", record)
    _plot(record, out / "calibration.png")
    if tuning.success:
        tuned = _config_with_u(config, settings.element, tuning.tuned_U_eV,
                               elements).model_copy(
            update={"hubbard_U_source": {
                "element": settings.element, "method": "kmcflow calibrate-u",
                "calibration": str(out / "calibration.json"), "target": settings.target,
                "reference_eV": settings.reference_eV,
                "reference_source": settings.reference_source or "given",
                "U_uncertainty_eV": tuning.U_uncertainty_eV}})
        import yaml

        write_text(out / "calculator_tuned.yaml",
                   yaml.safe_dump(tuned.model_dump(mode="json"), sort_keys=False))
        record["calculator_tuned"] = str(out / "calculator_tuned.yaml")
    return record


def _plot(record: dict[str, Any], path: Path) -> None:
    """The gap against U, the reference band and the tuned point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted(record["scan"], key=lambda p: p["U_eV"])
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot([p["U_eV"] for p in points], [p["band_gap_eV"] for p in points], "o-",
            label="computed")
    ref, err = record["reference"]["band_gap_eV"], record["reference"]["error_eV"]
    ax.axhline(ref, color="k", ls="--", lw=1, label=f"reference {ref:g} eV")
    if err:
        ax.axhspan(ref - err, ref + err, color="k", alpha=0.1)
    if record["tuned_U_eV"] is not None:
        ax.plot([record["tuned_U_eV"]], [record["tuned_band_gap_eV"]], "r*", ms=12,
                label=f"tuned U = {record['tuned_U_eV']:.2f} eV")
    ax.set_xlabel(f"U({record['element']}) (eV)")
    ax.set_ylabel("band gap (eV)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
