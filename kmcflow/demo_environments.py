"""``kmcflow demo --environments``: the demo's couple again, with a learned environment catalog.

After the demo's own stages (region catalog, D(T), Arrhenius law), :func:`environment_stage`

1. runs :mod:`kmcflow.learn` on the campaign's catalog at the demo's hottest temperature
   (the fastest runs), with Vegard cells from the couple's bulk crystals (each species' own
   volume per atom in its bulk, the crystals the campaign's barriers were computed in), on a
   demo's budget: 8x8x24 cells, 8 replicas (up to 32 where a change must be resolved), 4
   iterations; the report says whether it converged and why not;
2. runs the same Arrhenius study with the learned catalog: the same temperatures, cells,
   replicas and run times as the region study, so the two columns of D differ only by the
   catalog;
3. returns the record that ``demo.json`` keeps under ``environments`` and ``report.md`` shows
   beside the region catalog's numbers (:func:`report_lines`).

The learned environments are those of lattice sites only, so the stage needs a couple whose
kMC lattice is the whole crystal (metals, the EMT couple); an oxide's sampled cells would lack
the anions and is refused.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kmcflow.errors import ConfigError

LEARN_CELLS = (8, 8, 24)
LEARN_STEPS = 2_000_000
"""kMC cells and events of a learn run. On the Cu|Ni couple at 1250 K with 1 % vacancies one
run's D scatters by about 16 % (6 s a run); 12x12x24 cells with 4e6 events scatter as much
at twice the cost, 6x6x24 with 1e6 by 28 %. 32 runs resolve a 5 % change of D."""


def species_lattice_constants(catalog, bulk_names: list[str]) -> dict[str, float]:
    """Each species' lattice constant in the kMC lattice's convention, from its bulk crystal.

    ``a_s = a_lattice (V_s / V_site)^(1/3)``: ``V_s`` the volume per atom of species ``s`` in
    the first bundled bulk that holds it, ``V_site`` the volume per site of the kMC lattice.
    """
    from kmcflow.kmc.environment_rates import catalog_lattice
    from kmcflow.structures.io import read_structure

    lattice = catalog_lattice(catalog)
    v_site = abs(float(np.linalg.det(lattice.vectors_A))) / lattice.n_basis
    out: dict[str, float] = {}
    for name in bulk_names:
        structure = read_structure(name).structure
        symbols = [site.specie.symbol for site in structure]
        for species in catalog.species:
            if species not in out and species in symbols:
                v = structure.volume / symbols.count(species)
                out[species] = round(float(lattice.a_A) * (v / v_site) ** (1 / 3), 6)
    missing = [s for s in catalog.species if s not in out]
    if missing:
        raise ConfigError(f"no bulk crystal holds {', '.join(missing)}", field="species")
    return out


def environment_stage(out: Path, catalog_path: Path, couple: dict[str, Any], settings,
                      base, time_s_at: Callable[[float], float],
                      progress: Callable[[float, str], None]) -> dict[str, Any]:
    """Learn the environment catalog, run the Arrhenius study with it; return the record."""
    from kmcflow.kmc.catalog import load_catalog
    from kmcflow.kmc.study import arrhenius_study
    from kmcflow.learn import LearnSettings, run_learn

    catalog = load_catalog(catalog_path)
    bulks = [couple["interface"]["film"], couple["interface"]["substrate"]]
    constants = species_lattice_constants(catalog, bulks)
    learn = LearnSettings(
        calculator=couple["calculator"], temperature_K=max(settings.temperatures_K),
        cells=LEARN_CELLS, vacancy_fraction=settings.vacancy_fraction,
        steps=LEARN_STEPS, seed=settings.seed, lattice_constants_A=constants,
        replicas=8, max_replicas=32, max_iterations=4,
        hop={"neb": {"n_images": 3, **{k: v for k, v in couple["neb"].items()
                                        if k == "fmax_eV_per_A"}},
             "relax": dict(couple["relax"]), "prefactor": dict(couple["prefactor"])},
        workers=max(1, min(settings.workers, os.cpu_count() or 1)))
    record = run_learn(catalog_path, out / "learn", learn,
                       progress=lambda message: progress(0.0, f"learn: {message}"))
    learned_path = out / "learn" / record["final_catalog"]
    study = arrhenius_study(load_catalog(learned_path), settings.temperatures_K, base,
                            out / "kmc_environments", catalog_file=str(learned_path),
                            progress=progress, replicas=settings.replicas,
                            reuse_finished=True, time_s_at=time_s_at)
    last = record["iterations"][-1]
    return {
        "catalog": str(learned_path.relative_to(out)), "lattice_constants_A": constants,
        "learn": {"converged": record["converged"], "why": record["why"],
                  "temperature_K": learn.temperature_K,
                  "iterations": [{k: it[k] for k in ("iteration", "n_hops", "D_A2_per_s",
                                                     "D_stderr_A2_per_s", "model_share")}
                                 | {"cv_rmse_eV": it["fit"]["cv_rmse_eV"]}
                                 for it in record["iterations"]]},
        "fit": last["fit"], "n_hops": last["n_hops"], "n_table": last["n_table"],
        "arrhenius": study, "arrhenius_plot": "kmc_environments/arrhenius.png"}


def check_couple(calculator: str) -> None:
    """Refuse ``--environments`` for a couple whose kMC lattice is a sublattice (oxides)."""
    if calculator != "emt":
        raise ConfigError("--environments needs a couple whose kMC lattice is the whole "
                          "crystal (the EMT Cu|Ni couple); the oxide's sampled cells would "
                          "lack the anions", field="--environments",
                          hint="use --calculator emt, or drop --environments")


def report_lines(summary: dict[str, Any]) -> list[str]:
    """The report's section comparing the region catalog with the learned one."""
    env = summary["environments"]
    region, learned = summary["arrhenius"], env["arrhenius"]
    lrn = env["learn"]
    lines = ["## Environment-resolved catalog (learned)", "",
             f"`kmcflow learn` at {lrn['temperature_K']:g} K computed {env['n_hops']} hops in "
             "their local environments (random Cu/Ni alloys first, then the environments the "
             "kMC executed most without a table entry) and fitted the barrier model "
             f"(cross-validation RMSE {env['fit']['cv_rmse_eV']:.3f} eV). "
             + ("It converged: " if lrn["converged"] else "It did NOT converge: ")
             + f"{lrn['why']}. Catalog: [`{env['catalog']}`]({env['catalog']}).", "",
             "| iteration | hops | D (Å²/s) | model share |", "|---|---|---|---|"]
    for it in lrn["iterations"]:
        lines.append(f"| {it['iteration']} | {it['n_hops']} | {it['D_A2_per_s']:.4g} ± "
                     f"{it['D_stderr_A2_per_s']:.2g} | {100 * it['model_share']:.0f} % |")
    lines += ["", "Both catalogs at the same temperatures, cells, replicas and run times:", "",
              "| T (K) | D region catalog (Å²/s) | D learned catalog (Å²/s) | ratio |",
              "|---|---|---|---|"]
    learned_rows = {r["temperature_K"]: r for r in learned["temperatures"]}
    for row in region["temperatures"]:
        other = learned_rows.get(row["temperature_K"])
        if other is None:
            continue
        lines.append(f"| {row['temperature_K']:g} | {row['D_A2_per_s']:.4g} | "
                     f"{other['D_A2_per_s']:.4g} | "
                     f"{other['D_A2_per_s'] / row['D_A2_per_s']:.3f} |")

    def ea(a: dict[str, Any]) -> str:
        err = a.get("Ea_stderr_eV")
        return f"{a['Ea_eV']:.3f}" + (f" ± {err:.3f}" if err is not None and
                                      math.isfinite(err) else "")

    lines += ["", f"E_a: region catalog **{ea(region)} eV**, learned catalog "
              f"**{ea(learned)} eV**.", "", f"![Arrhenius, learned]({env['arrhenius_plot']})",
              ""]
    return lines
