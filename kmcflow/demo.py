"""``kmcflow demo``: two bulk crystals to an Arrhenius law of interdiffusion, on a laptop.

The pipeline, on embedded defaults (no cluster, no DFT code, no torch for the default):

1. structures: the coherent Cu(100)|Ni(100) interface, the symmetry-distinct Cu and Ni vacancy
   hops in each bulk, as dilute solutes in the other bulk, and across the interface;
2. barriers: every hop by CI-NEB and every prefactor by the Vineyard formula with ASE's EMT
   (a campaign run locally: :func:`kmcflow.workflows.campaign.run_campaign`);
3. catalog: the assembled, validated event catalog;
4. kMC: the couple at several temperatures, the interdiffusion coefficient D(T) from the
   growth of the interface, and the Arrhenius fit D = D0 exp(-E_a / k_B T);
5. report: ``report.md`` with the event table, w(t) curves, D(T), the Arrhenius plot and the
   fit, and ``demo.json`` with every number.

Every stage resumes: hops already in the campaign store and kMC runs already finished with the
same settings and catalog are reused, so a killed demo continues where it stopped.
``--calculator chgnet`` (the ``ml`` extra) runs the oxide couple MgO(100)|NiO(100) instead.

The demo is an orchestrator, like the CLI: it is the one module besides ``cli.py`` that
imports all three stages.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kmcflow.atomic_io import write_json, write_text
from kmcflow.errors import ConfigError
from kmcflow.outputs import check_output_folder, write_marker

Progress = Callable[[str, float, str], None]  # (stage, fraction of the stage, message)

COUPLES: dict[str, dict[str, Any]] = {
    "emt": {
        "name": "demo_cu_ni_emt", "calculator": "emt",
        "interface": {"film": "Cu", "substrate": "Ni", "film_miller": [1, 0, 0],
                      "substrate_miller": [1, 0, 0], "vacuum_A": 0,
                      "film_thickness": "4layers", "substrate_thickness": "4layers"},
        "species": ["Cu", "Ni"], "band_thickness_A": 0.0, "min_image_distance_A": 7.0,
        "neb": {"n_images": 4, "fmax_eV_per_A": 0.05}, "relax": {"fmax_eV_per_A": 0.02},
        "prefactor": {"radius_A": 0.0},
    },
    "chgnet": {
        "name": "demo_mgo_nio_chgnet", "calculator": "chgnet",
        "interface": {"film": "MgO", "substrate": "NiO", "film_miller": [1, 0, 0],
                      "substrate_miller": [1, 0, 0], "vacuum_A": 0,
                      "film_thickness": "4layers", "substrate_thickness": "4layers"},
        "species": ["Mg", "Ni"], "band_thickness_A": 0.0, "min_image_distance_A": 7.0,
        # one CHGNet call per image: a batch of the four 143-atom interface images cost
        # 20 s of CPU against 10 s for four single calls (CHGNet 0.4.2, one torch thread);
        # the same for the 63-atom bulk images. Barriers unchanged (1.5928 vs 1.5929 eV)
        "neb": {"n_images": 4, "fmax_eV_per_A": 0.05, "batched": False},
        "relax": {"fmax_eV_per_A": 0.05},
        # CHGNet's Mg-in-NiO saddle has two imaginary modes: a flagged 1e13 Hz fallback
        # (recorded in the provenance) rather than a hole in the catalog
        "prefactor": {"radius_A": 0.0, "allow_fallback": True},
    },
}


DEMO_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "emt": {"full": {},
            "quick": {"temperatures_K": [950.0, 1050.0, 1150.0, 1250.0], "cells": (12, 12, 24),
                      "samples": 11}},
    # MgO|NiO under CHGNet: cation barriers 0.9-2.0 eV and a cation vacancy about 0.6 eV
    # cheaper in NiO than in MgO, so the MgO side mixes only above about 1500 K (the range of
    # MgO-NiO interdiffusion experiments); at 1250 K a 12x12x24 couple had widened by 2 A
    # after 2e8 events. Runs aim at the width of the erfc fit: the raw 10-90 % width follows
    # the dilute Mg tail that runs ahead into NiO and is noise on a small box.
    "chgnet": {"full": {"temperatures_K": [1600.0, 1700.0, 1800.0, 1900.0], "workers": 2,
                        "cells": (12, 12, 24), "width_measure": "erfc"},
               # two images instead of four halve the band's calls (bulk Ni: 46 calls
               # instead of 106, 0.9203 vs 0.9196 eV; interface Mg: 80 instead of 138,
               # 1.580 eV as four images with BFGS, 1.593 with FIRE)
               # quick: 1700-2000 K, the coldest run is the longest (at 1600 K it was 60 %
               # of the kMC stage; E_a 2.38 +- 0.15 eV from 1600-1900 K)
               "quick": {"temperatures_K": [1700.0, 1800.0, 1900.0, 2000.0],
                         "cells": (8, 8, 16), "samples": 11, "width_measure": "erfc",
                         "replicas": 1, "campaign": {"neb": {"n_images": 2}},
                         # two hops at a time, one core each: the 143-atom interface hops
                         # take 3 s a CHGNet call, six minutes each on one core
                         "workers": 2}},
}
"""Settings of each couple, full and ``--quick``; what is not named is DemoSettings'."""

WIDTH_COLUMNS = {"10_90": "width_10_90", "erfc": "width_erfc"}
"""The pilot's width measures and their columns in ``observables.npz``."""


@dataclass
class DemoSettings:
    """What the demo runs (temperatures K, cells of the kMC box, kMC steps per temperature).

    ``workers``: hops computed at a time, each in a process of its own (at most the CPUs).
    ``environments``: also learn an environment-resolved catalog and run the study with it
    (:mod:`kmcflow.demo_environments`).
    ``campaign`` overrides sections of the couple's campaign (:data:`COUPLES`), e.g.
    ``{"neb": {"n_images": 2}}``. ``width_measure`` is the width the pilot runs aim at:
    ``10_90`` (the profile's own 10-90 % width) or ``erfc`` (the 10-90 % width of the erfc
    fit, 2.563 sigma, the fit D comes from).
    """

    calculator: str = "emt"
    campaign: dict[str, dict[str, Any]] = field(default_factory=dict)
    temperatures_K: list[float] = field(default_factory=lambda: [950.0, 1025.0, 1100.0,
                                                                 1175.0, 1250.0])
    cells: tuple[int, int, int] = (16, 16, 32)
    vacancy_fraction: float = 0.01
    width_fraction: float = 0.35
    width_measure: str = "10_90"
    samples: int = 21
    seed: int = 1
    replicas: int = 2
    workers: int = 1
    environments: bool = False

    @classmethod
    def full(cls, calculator: str = "emt") -> DemoSettings:
        """The couple's own defaults (see :data:`DEMO_DEFAULTS`)."""
        chosen = DEMO_DEFAULTS.get(calculator, {}).get("full", {})
        return cls(calculator=calculator, **copy.deepcopy(chosen))

    @classmethod
    def quick(cls, calculator: str = "emt") -> DemoSettings:
        """Minutes on two cores: fewer temperatures, a smaller box, shorter runs."""
        chosen = DEMO_DEFAULTS.get(calculator, DEMO_DEFAULTS["emt"])["quick"]
        return cls(calculator=calculator, **copy.deepcopy(chosen))


def campaign_for(settings: DemoSettings) -> dict[str, Any]:
    """The couple's campaign (:data:`COUPLES`) with the sections ``settings.campaign`` sets."""
    spec = {k: dict(v) if isinstance(v, dict) else v
            for k, v in COUPLES[settings.calculator].items()}
    for section, fields in settings.campaign.items():
        spec[section] = {**spec.get(section, {}), **fields}
    return spec


def _stage(progress: Progress | None, stage: str, fraction: float, message: str) -> None:
    if progress is not None:
        progress(stage, fraction, message)


def run_demo(settings: DemoSettings, out_dir: str | os.PathLike[str],
             progress: Progress | None = None) -> dict[str, Any]:
    """Run (or continue) the demo in ``out_dir``; return the summary written to demo.json."""
    from kmcflow.kmc.catalog import load_catalog
    from kmcflow.kmc.runner import RunSettings
    from kmcflow.kmc.study import arrhenius_study
    from kmcflow.workflows.campaign import CampaignSpec, run_campaign

    if settings.calculator not in COUPLES:
        raise ConfigError(f"no demo couple for calculator {settings.calculator!r}",
                          field="--calculator", hint=f"use {' or '.join(COUPLES)}")
    temps = settings.temperatures_K
    if any(not (t > 0 and math.isfinite(t)) for t in temps):
        raise ConfigError(f"temperatures must be positive numbers of K, got {temps}",
                          field="--temperature", hint="e.g. -T 950 -T 1100 -T 1250")
    if len(set(temps)) < 2:
        raise ConfigError("the Arrhenius fit needs at least two different temperatures",
                          field="--temperature", hint="e.g. -T 950 -T 1100 -T 1250")
    if settings.environments:
        from kmcflow.demo_environments import check_couple

        check_couple(settings.calculator)
    check_output_folder(out_dir, "demo", reuse=True)  # a demo folder continues; nothing else
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, "demo")
    spec = CampaignSpec.model_validate(campaign_for(settings))

    def hop_progress(k: int, n: int, hop, state: str) -> None:
        number = k + 1 if state == "running" else k  # "running" reports the index, then done
        _stage(progress, "barriers", k / max(n, 1),
               f"hop {number}/{n} {hop.record['event_key']} ({hop.origin}): {state}")

    clock = {"start": time.monotonic()}

    def lap(name: str) -> None:  # this run's wall time per stage (a rerun reuses, so less)
        now = time.monotonic()
        clock[name] = now - clock.get("last", clock["start"])
        clock["last"] = now

    _stage(progress, "structures", 0.0, "building the interface and enumerating hops")
    workers = max(1, min(settings.workers, os.cpu_count() or 1))
    campaign = run_campaign(spec, out / "campaign", progress=hop_progress, workers=workers)
    lap("structures_and_barriers")
    _stage(progress, "barriers", 1.0, f"{campaign.report['n_results']} hops computed or "
           "reused")
    catalog_path = out / "campaign" / "catalog.json"
    catalog = load_catalog(catalog_path)

    base = RunSettings(cells=tuple(settings.cells), temperature_K=settings.temperatures_K[0],
                       vacancy_fraction=settings.vacancy_fraction, steps=None,
                       time_s=1.0, samples=settings.samples, seed=settings.seed)
    _stage(progress, "kmc", 0.0, "pilot runs: sizing the run time at each temperature")
    time_s_at, sizing = run_time(catalog, base, settings.temperatures_K, out / "kmc_pilot",
                                 str(catalog_path), settings.width_fraction,
                                 lambda message: _stage(progress, "kmc", 0.0, message),
                                 settings.width_measure)
    lap("kmc_pilot")

    def kmc_progress(fraction: float, info: str) -> None:
        _stage(progress, "kmc", fraction, info)

    study = arrhenius_study(catalog, settings.temperatures_K, base, out / "kmc",
                            catalog_file=str(catalog_path), progress=kmc_progress,
                            replicas=settings.replicas, reuse_finished=True,
                            time_s_at=time_s_at)
    lap("kmc_runs")
    learned = None
    if settings.environments:
        from kmcflow.demo_environments import environment_stage

        learned = environment_stage(out, catalog_path, campaign_for(settings), settings, base,
                                    time_s_at, kmc_progress)
        lap("environments")
    _stage(progress, "report", 0.0, "writing report.md and figures")
    summary = _summarize(settings, spec, campaign, catalog, study, out)
    summary["run_sizing"] = sizing
    if learned is not None:
        summary["environments"] = learned
    lap("report")
    summary["wall_time_s"] = {k: round(v, 1) for k, v in clock.items()
                              if k not in ("start", "last")}
    summary["wall_time_s"]["total"] = round(time.monotonic() - clock["start"], 1)
    write_json(out / "demo.json", summary)
    write_text(out / "report.md", _report(summary))
    _stage(progress, "report", 1.0, f"wrote {out / 'report.md'}")
    return summary


def _pilot_time(catalog, base, temperature_K: float, time_s: float, target_width_A: float,
                folder: Path, catalog_file: str, report: Callable[[str], None] | None = None,
                width_measure: str = "10_90") -> float:
    """The simulated time (s) after which the width first exceeds the target at T.

    Runs of doubling length until one reaches the target; the time is read off its samples.
    ``width_measure``: the profile's 10-90 % width (``10_90``) or the erfc fit's (``erfc``).
    """
    from dataclasses import replace

    from kmcflow.kmc.runner import run_to_directory
    from kmcflow.kmc.study import finished_run

    for attempt in range(16):
        settings = replace(base, temperature_K=temperature_K, steps=None,
                           time_s=time_s * 2.0**attempt, samples=21)
        run = folder / f"T{temperature_K:g}K_{attempt}"
        if report is not None:
            report(f"pilot at {temperature_K:g} K: {settings.time_s:.3g} s of simulated time")
        if finished_run(run, settings, catalog_file) is None:
            run_to_directory(catalog, settings, run, catalog_file, overwrite=True)
        with np.load(run / "observables.npz", allow_pickle=False) as obs:
            t, width = obs["time"], obs[WIDTH_COLUMNS[width_measure]]
        reached = np.flatnonzero(np.isfinite(width) & (width >= target_width_A))
        if reached.size:
            return float(t[reached[0]])
    raise ConfigError(f"the interface does not widen at {temperature_K:g} K",
                      field="--temperature", hint="choose higher temperatures")


def slope_bound_eV(catalog) -> float:
    """Largest barrier plus the largest energy gain of a cross-interface hop pair (eV).

    A generous estimate of the apparent activation energy, used only to size the runs: with
    it, colder runs come out long enough rather than too short.
    """
    by_key = {e.key: e for e in catalog.events}
    top = 0.0
    for e in catalog.events:
        back = by_key.get(f"{e.species}/{e.final_region}->{e.initial_region}")
        if e.initial_region != e.final_region and back is not None:
            top = max(top, e.barrier_eV - back.barrier_eV)
    return max(e.barrier_eV for e in catalog.events) + top


def run_time(catalog, base, temperatures_K: list[float], folder: Path, catalog_file: str,
             width_fraction: float = 0.35, report: Callable[[str], None] | None = None,
             width_measure: str = "10_90"
             ) -> tuple[Callable[[float], float], dict[str, Any]]:
    """Simulated time (s) per temperature for the interface to reach a target width.

    A run must be long enough for the interface to widen well beyond a lattice spacing and
    short enough that the two halves are not yet mixed (a saturated profile gives no D).
    Pilot runs at the highest temperature find the time t_max at which the 10-90 % width
    (``width_measure``: the profile's, or the erfc fit's 2.563 sigma)
    reaches ``width_fraction`` of a half couple; colder runs last t_max exp(E (1/T -
    1/T_max) / k_B) with E the upper bound of the activation energy (:func:`slope_bound_eV`),
    so that they are, if anything, long enough. (A pilot at the lowest temperature would be
    slow and unreliable: the width first jumps by a lattice spacing as the interface layers
    exchange, then creeps.) The pilots only size the runs; D and E_a come from the runs.
    """
    from kmcflow.kmc.constants import K_B_EV_PER_K
    from kmcflow.kmc.runner import make_simulation

    hi = max(temperatures_K)
    block = make_simulation(catalog, base, catalog_file).block
    length = float(block.length_z_A)
    target = width_fraction * length / 2.0
    guess = 1e-10 * 12 / base.vacancy_fraction  # s; doubled until the target is reached
    if width_measure not in WIDTH_COLUMNS:
        raise ConfigError(f"unknown width measure {width_measure!r}", field="width_measure",
                          hint=f"use {' or '.join(WIDTH_COLUMNS)}")
    t_hi = _pilot_time(catalog, base, hi, guess, target, folder, catalog_file, report,
                       width_measure)
    slope_eV = slope_bound_eV(catalog)

    def time_s_at(temperature_K: float) -> float:
        return t_hi * math.exp(slope_eV / K_B_EV_PER_K * (1.0 / temperature_K - 1.0 / hi))

    return time_s_at, {"pilot_time_s": {f"{hi:g}": t_hi}, "sizing_slope_eV": slope_eV,
                       "couple_length_A": length, "target_width_10_90_A": target,
                       "width_measure": width_measure}


def _runs(out: Path, temps: list[float], replicas: int):
    for temp in sorted(temps):
        for r in range(replicas):
            yield temp, out / "kmc" / f"T{temp:g}K" / f"replica{r}"


def _summarize(settings, spec, campaign, catalog, study, out: Path) -> dict[str, Any]:
    results = {r.event_key: r.model_dump(mode="json") for r in campaign.results if r.succeeded}
    events = []
    for e in catalog.events:
        r = results.get(e.key, {})
        events.append({"id": e.id, "event_key": e.key, "species": e.species,
                       "initial_region": e.initial_region, "final_region": e.final_region,
                       "barrier_eV": e.barrier_eV, "prefactor_Hz": e.prefactor_Hz,
                       "origin": r.get("hop", {}).get("origin", "reverse of a computed hop"),
                       "executed": 0})
    by_id = {e["id"]: e for e in events}
    widths = []
    for temp, run in _runs(out, settings.temperatures_K, settings.replicas):
        summary = json.loads((run / "summary.json").read_text())
        for key, n in summary["event_counts"].items():
            if key in by_id:
                by_id[key]["executed"] += int(n)
        with np.load(run / "observables.npz", allow_pickle=False) as obs:
            widths.append({"temperature_K": temp, "run": str(run.relative_to(out)),
                           "time_s": obs["time"].tolist(),
                           "width_10_90_A": [float(w) if math.isfinite(w) else None
                                             for w in obs["width_10_90"]],
                           "width_erfc_A": [float(w) if math.isfinite(w) else None
                                            for w in obs["width_erfc"]]})
    _plot_widths(out / "kmc", settings.temperatures_K, settings.replicas,
                 out / "width_vs_time.png")
    executed = [e["barrier_eV"] for e in events if e["executed"] > 0]
    bulk = {e["event_key"]: e["barrier_eV"] for e in events if e["origin"] == "bulk"}
    by_key = {e["event_key"]: e for e in events}
    transfer = {}  # energy change of moving species X from region A to region B
    for e in events:
        if e["initial_region"] != e["final_region"]:
            back = by_key.get(f"{e['species']}/{e['final_region']}->{e['initial_region']}")
            if back is not None:
                transfer[e["event_key"]] = e["barrier_eV"] - back["barrier_eV"]
    return {
        "schema": "kmcflow.demo", "calculator": settings.calculator, "couple": spec.name,
        "interface": spec.interface.model_dump(),
        "barrier_settings": {"neb": spec.neb.model_dump(mode="json"),
                             "relax": spec.relax.model_dump(mode="json"),
                             "prefactor": spec.prefactor.model_dump(mode="json")},
        "settings": {
            "temperatures_K": sorted(settings.temperatures_K), "cells": list(settings.cells),
            "vacancy_fraction": settings.vacancy_fraction,
            "width_fraction": settings.width_fraction,
            "width_measure": settings.width_measure,
            "samples": settings.samples, "seed": settings.seed,
            "replicas": settings.replicas},
        "hops": [_hop_line(r) for r in campaign.results],
        "catalog": "campaign/catalog.json", "events": events,
        "boundary_z": catalog.interface.boundary_z,
        "bulk_barriers_eV": bulk,
        "executed_barrier_range_eV": [min(executed), max(executed)] if executed else None,
        "transfer_energies_eV": transfer,
        "arrhenius": study, "arrhenius_plot": "kmc/arrhenius.png",
        "width_plot": "width_vs_time.png", "widths": widths,
    }


def _hop_line(result) -> dict[str, Any]:
    """One computed hop as the report lists it: what it gave, what it cost, whether it failed."""
    r = result.model_dump(mode="json")
    hop = r.get("hop") or {}
    return {"event_key": r.get("event_key"), "origin": hop.get("origin"),
            "n_atoms": hop.get("n_atoms"), "succeeded": bool(result.succeeded),
            "failure_reason": r.get("failure_reason"),
            "failure_message": r.get("failure_message") or None,
            "forward_barrier_eV": r.get("forward_barrier_eV"),
            "reverse_barrier_eV": r.get("reverse_barrier_eV"),
            "prefactor_route": r.get("prefactor_route"), "converged": r.get("converged"),
            "force_calls": r.get("force_calls"),
            "optimizer": (r.get("neb_settings") or {}).get("optimizer")}


def _plot_widths(study: Path, temperatures_K: list[float], replicas: int, path: Path) -> None:
    """sigma^2(t) per temperature: replica mean ± 1 s.e. and the line of the reported D."""
    from kmcflow.kmc.plots import plot_sigma2
    from kmcflow.kmc.study import study_sigma2_curves

    plot_sigma2(study_sigma2_curves(study, temperatures_K, replicas), path)


def _hop_lines(hops: list[dict[str, Any]]) -> list[str]:
    """The report's hop table: every computed hop, a failed one with its reason."""
    if not hops:
        return []
    failed = [h for h in hops if not h["succeeded"]]
    lines = ["## Hops", "",
             (f"{len(hops) - len(failed)} of {len(hops)} hops succeeded"
              + (f"; **failed**: {', '.join(h['event_key'] for h in failed)}" if failed else "")
              + "."), "",
             "| hop | origin | atoms | barrier fwd/rev (eV) | prefactor | force calls | "
             "optimizer | status |", "|---|---|---|---|---|---|---|---|"]

    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    for h in hops:
        status = "ok" if h["succeeded"] else (f"failed: {h['failure_reason']}"
                                              + (f" ({h['failure_message']})"
                                                 if h.get("failure_message") else ""))
        lines.append(f"| {h['event_key']} | {h['origin']} | {h['n_atoms']} | "
                     f"{num(h['forward_barrier_eV'])} / {num(h['reverse_barrier_eV'])} | "
                     f"{h['prefactor_route'] or '-'} | {h['force_calls']} | "
                     f"{h['optimizer'] or '-'} | {status} |")
    return [*lines, ""]


def _report(s: dict[str, Any]) -> str:
    a = s["arrhenius"]
    lines = [f"# kmcflow demo: {s['couple']}", "",
             f"Calculator: **{s['calculator']}**. Interface: {s['interface']['film']}"
             f"({''.join(map(str, s['interface']['film_miller']))}) | "
             f"{s['interface']['substrate']}"
             f"({''.join(map(str, s['interface']['substrate_miller']))}). "
             f"kMC: {'x'.join(map(str, s['settings']['cells']))} cells, vacancy fraction "
             f"{s['settings']['vacancy_fraction']:g}; each run lasts until the 10-90 % width"
             + (" of the erfc fit" if s["run_sizing"].get("width_measure") == "erfc" else "")
             + f" reaches about {s['run_sizing']['target_width_10_90_A']:.0f} Å (sized by a "
             f"pilot run); {s['settings']['replicas']} replica(s) per temperature.", "",
             *_hop_lines(s.get("hops", [])),
             "## Event catalog", "",
             "| event | species | from | to | E_a (eV) | prefactor (Hz) | origin | executed |",
             "|---|---|---|---|---|---|---|---|"]
    for e in s["events"]:
        lines.append(f"| {e['event_key']} | {e['species']} | {e['initial_region']} | "
                     f"{e['final_region']} | {e['barrier_eV']:.3f} | {e['prefactor_Hz']:.3g} | "
                     f"{e['origin']} | {e['executed']:,} |")
    lines += ["", f"Catalog: [`{s['catalog']}`]({s['catalog']}).", "",
              "## Interface width versus time", "",
              "D is read from the width σ of the erfc fit of each profile, σ² = 2 D t + b: "
              "each panel shows the replica mean of σ² against time, its standard error as "
              "a band (from two replicas on), and the line 2 D t + b whose D is the one in "
              "the table below.",
              "",
              f"![w(t)]({s['width_plot']})", "",
              "## Interdiffusion coefficient and Arrhenius law", "",
              "| T (K) | D (Å²/s) | D (cm²/s) |", "|---|---|---|"]
    for row in a["temperatures"]:
        lines.append(f"| {row['temperature_K']:g} | {row['D_A2_per_s']:.4g} | "
                     f"{row['D_A2_per_s'] * 1e-16:.4g} |")
    err = a["Ea_stderr_eV"]
    r2 = a.get("r_squared")
    source = a.get("Ea_stderr_source")
    lines += ["", f"E_a = **{a['Ea_eV']:.3f}"
              + (f" ± {err:.3f}" if err is not None and math.isfinite(err) else "")
              + f" eV**, D0 = **{a['D0_cm2_per_s']:.3g} cm²/s**"
              + (f", R² = {r2:.4f}" if r2 is not None else "") + "."
              + (f" The ± is one standard error from {source}."
                 if source and err is not None and math.isfinite(err) else ""),
              "", f"![Arrhenius]({s['arrhenius_plot']})", ""]
    if s.get("environments"):
        from kmcflow.demo_environments import report_lines

        lines += report_lines(s)
    if s.get("wall_time_s"):
        lines += ["Wall time of this run (s; stages reused from an earlier run cost nothing): "
                  + ", ".join(f"{k.replace('_', ' ')} {v:.0f}"
                              for k, v in s["wall_time_s"].items()) + ".", ""]
    if s["executed_barrier_range_eV"]:
        lo, hi = s["executed_barrier_range_eV"]
        lines += [
            "## Reading E_a", "",
            f"The executed hops have barriers from {lo:.3f} to {hi:.3f} eV. The box "
            + ("is periodic along z (two interfaces)" if s.get("boundary_z") == "periodic"
               else "is closed along z (one interface)")
            + " and holds a fixed number of vacancies, so no vacancy is formed during the run "
            "and E_a is a migration energy. Interdiffusion with a fixed number of vacancies "
            "follows the couple's slow mode, carried by the slower host, so E_a lies near the "
            "top of the range. Where the hosts "
            "differ in vacancy and solute energies the cross-interface hop pairs are "
            "asymmetric, and the vacancies gather in the host where they cost less. Energy "
            "change of each cross-interface hop, E(A->B) - E(B->A) (eV):", ""]
        lines += [f"- {k}: {v:+.3f}" for k, v in s["transfer_energies_eV"].items()]
        top = max(s["transfer_energies_eV"].values(), default=0.0)
        above = a["Ea_eV"] - hi
        if above > 0 and top > 0:
            lines += ["", f"Here E_a lies {above:.3f} eV above the highest executed barrier, "
                      + ("within" if above <= top else "more than")
                      + f" the largest energy change of a cross-interface hop ({top:.3f} eV): "
                      "the hops of the host where vacancies cost more need vacancies that "
                      "first move in from the other host."]
        lines.append("")
    return "\n".join(lines)
