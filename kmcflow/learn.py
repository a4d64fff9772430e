"""``kmcflow learn``: the kMC completes its own environment-resolved catalog.

The loop, from a catalog of region events (schema 1 or 2):

0. **Seed**: hops in random alloys of the couple's species (``seed_fractions`` of the second
   species, ``seed_count`` each) are computed and the environment model is fitted to them
   (:mod:`kmcflow.kmc.environment_fit`): catalog version 0.
1. **Run**: the couple is run by kMC at ``temperature_K`` (``replicas`` trajectories); D is
   the mean of the replicas' erfc-fit interdiffusion coefficients, with their standard error.
2. **Collect**: the environments the runs executed without a table entry, ranked by how often
   they were executed: in a rejection-free run a hop's share of the executed events is its
   share of the total rate over time, i.e. its weight in the dynamics. The ``top`` most
   executed that no computed hop covers (itself or its reverse) are the next hops.
3. **Compute** them (:mod:`kmcflow.workflows.environments`: CI-NEB and Vineyard prefactor in
   a cell whose environment sites hold the key; the rest a random alloy of the environment's
   composition), **refit** on every hop so far, write the next catalog version, go to 1.

The loop stops as **converged** when D changed by less than ``d_tolerance`` (relative)
between the last two iterations, that change is measured to better than ``d_tolerance`` (one
standard error of the ratio of the two iterations' mean D; the replicas are doubled up to
``max_replicas`` until it is), and the share of executed hops rated by the model alone is
at most ``model_share_max``; or, not converged, after ``max_iterations``. Every step is kept
in ``OUT`` and a rerun continues: sample folders reuse their computed hops, kMC runs with the
same settings and catalog file are read back, and ``learn.json`` records every iteration
(catalog version, hops, fit errors, D, sources of the executed hops, the new keys).

Layout: ``OUT/learn.json``, ``OUT/catalogs/catalog_vNNN.json``, ``OUT/hops/iter_NNN/``
(sample folders), ``OUT/kmc/iter_NNN/replica_R/`` (runs).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from kmcflow.atomic_io import write_json
from kmcflow.errors import ConfigError
from kmcflow.outputs import check_output_folder, write_marker

Progress = Callable[[str], None]


@dataclass
class LearnSettings:
    """What ``learn`` runs. Units in the names; ``hop`` overrides the hop calculations' settings.

    ``seed_fractions``: fractions of the catalog's second species in the seed alloys;
    ``top``: new hops per iteration; ``lattice_constants_A``: each species' own lattice
    constant for Vegard cells (:mod:`kmcflow.structures.environment_sampling`).

    ``workers``: hops computed and kMC replicas run at a time, each in a process of its own.
    ``profile``: a cluster profile (YAML): the hops run as SLURM/PBS array tasks
    (:mod:`kmcflow.hpc.sample_jobs`) instead of local processes (the kMC stays here). Then ``wait``
    polls the scheduler every ``poll_s`` seconds until they end; without it the loop stops
    with :class:`LearnWaiting` and a rerun continues. A hop killed by the scheduler is
    submitted again, up to ``max_submissions`` times in all, then left out of the fit.
    """

    calculator: str | dict[str, Any] = "emt"
    temperature_K: float = 1250.0
    cells: tuple[int, int, int] = (8, 8, 24)
    vacancy_fraction: float = 0.01
    steps: int = 2_000_000
    samples: int = 11
    replicas: int = 8
    seed: int = 1
    seed_fractions: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75])
    seed_count: int = 8
    top: int = 10
    max_iterations: int = 6
    d_tolerance: float = 0.05
    model_share_max: float = 0.5
    max_replicas: int = 32
    lattice_constants_A: dict[str, float] | None = None
    repeats: tuple[int, int, int] = (3, 3, 3)
    hop: dict[str, Any] = field(default_factory=dict)
    workers: int = 1
    profile: str | None = None
    wait: bool = True
    poll_s: float = 30.0
    max_submissions: int = 2

    def check(self) -> None:
        """Refuse settings that cannot run (one line each, naming the field)."""
        checks = [
            (self.temperature_K > 0 and math.isfinite(self.temperature_K), "temperature_K",
             "a positive number of K"),
            (self.replicas >= 2, "replicas", "at least 2 (D's error comes from replicas)"),
            (self.max_replicas >= self.replicas, "max_replicas", "at least --replicas"),
            (self.seed_count >= 1, "seed_count", "a whole number >= 1"),
            (self.top >= 1, "top", "a whole number >= 1"),
            (self.max_iterations >= 2, "max_iterations", "at least 2 (D must be compared)"),
            (0 < self.d_tolerance < 1, "d_tolerance", "a fraction between 0 and 1"),
            (0 <= self.model_share_max <= 1, "model_share_max", "a fraction 0-1"),
            (all(0 <= x <= 1 for x in self.seed_fractions) and self.seed_fractions,
             "seed_fractions", "fractions 0-1"),
            (self.workers >= 1, "workers", "a whole number >= 1"),
            (0 < self.poll_s <= 3600, "poll_s", "seconds between 0 and 3600"),
            (self.profile is not None or (self.wait and self.poll_s == 30.0), "profile",
             "a cluster profile with --no-wait or --poll (without one the hops run here)"),
            (self.max_submissions >= 1, "max_submissions", "a whole number >= 1"),
        ]
        for ok, name, fix in checks:
            if not ok:
                raise ConfigError(f"bad {name}: {getattr(self, name)!r}", field=name,
                                  hint=f"give {fix}")
        from kmcflow.kmc.run_settings import check_run_settings

        check_run_settings(self.run_settings(0))  # cells, steps, vacancy fraction, samples

    def run_settings(self, replica: int):
        """The run settings of one replica.

        The same every iteration: D's change is then the catalog's more than the noise's.
        """
        from kmcflow.kmc.runner import RunSettings

        return RunSettings(cells=tuple(self.cells), temperature_K=self.temperature_K,
                           vacancy_fraction=self.vacancy_fraction, steps=self.steps,
                           time_s=None, samples=self.samples, seed=self.seed, replica=replica)

    def shaping(self) -> dict[str, Any]:
        """The settings the results in a learn folder depend on.

        Not where the hops run (workers, cluster profile) nor when to stop: a rerun may ask
        for more iterations or another tolerance.
        """
        record = asdict(self)
        for name in ("workers", "max_iterations", "d_tolerance", "model_share_max",
                     "max_replicas", "profile", "wait", "poll_s", "max_submissions"):
            record.pop(name)
        record["cells"], record["repeats"] = list(self.cells), list(self.repeats)
        return record


class LearnWaiting(Exception):
    """The loop stopped to wait for hops on the cluster (``wait=False``): rerun to continue."""

    def __init__(self, iteration: int, busy: int, total: int, folder: Path):
        self.iteration, self.busy, self.total, self.folder = iteration, busy, total, folder
        super().__init__(f"iteration {iteration}: {busy} of {total} hops queued or running on "
                         f"the cluster ({folder}); rerun the same command when they have ended")


def json_safe(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` as it reads back from JSON (tuples become lists)."""
    import json

    return json.loads(json.dumps(record))


def _run_D(run: Path) -> float:
    """The erfc-fit interdiffusion coefficient (Angstrom^2/s) of a finished run."""
    from kmcflow.kmc.analysis import fit_interdiffusion
    from kmcflow.kmc.observables import saved_geometry

    with np.load(run / "observables.npz", allow_pickle=False) as obs:
        data = {k: obs[k] for k in obs.files}
    fit = fit_interdiffusion(data["time"], data["z"], data["x_first_host"],
                             saved_geometry(data))
    return float(fit.D_A2_per_s)


def _computed_identities(samples: list, species: list[str], envs) -> set[tuple[int, int, int]]:
    """(species, class, key) of every computed hop and of its reverse."""
    from kmcflow.kmc.environment import environment_key, parse_key_text, reverse_key

    out = set()
    for sample in samples:
        s, c, codes = parse_key_text(sample.key, species, envs)
        key = environment_key(codes, c, envs, len(species))
        out.add((s, c, key))
        out.add((s, *reverse_key(key, c, envs, len(species))))
    return out


class LearnLoop:
    """One ``learn`` folder: its settings, catalogs, hops, runs and record."""

    def __init__(self, catalog_file: str | Path, out_dir: str | Path, settings: LearnSettings,
                 progress: Progress | None = None):
        from kmcflow.kmc.catalog import load_catalog
        from kmcflow.kmc.environment_rates import catalog_lattice, environment_geometry
        from kmcflow.workflows.environments import EnvironmentHopSettings

        settings.check()
        self.settings = settings
        self.catalog_file = Path(catalog_file)
        self.base = load_catalog(catalog_file)
        if len(self.base.species) < 2:
            raise ConfigError("learn needs a couple of at least two species",
                              file=str(catalog_file), field="species")
        self.lattice = catalog_lattice(self.base)
        self.geometry = environment_geometry(self.lattice)
        try:
            self.hop_settings = EnvironmentHopSettings(calculator=settings.calculator,
                                                       **settings.hop)
        except Exception as exc:  # pydantic: name the field
            raise ConfigError(f"bad hop settings: {exc}".splitlines()[0], field="hop") from exc
        if self.lattice.dimension != 3:
            raise ConfigError(f"the {self.lattice.name} lattice is two-dimensional: its hops "
                              "cannot be computed in periodic 3D cells", file=str(catalog_file),
                              field="lattice", hint="learn needs a 3D lattice")
        em = self.base.energy_model
        for name, per_region in (em.site_energies_eV.items() if em else []):
            if len(set(per_region.values())) > 1:
                raise ConfigError("site energies that differ between regions cannot be "
                                  "combined with environments (a key does not know the region)",
                                  file=str(catalog_file),
                                  field=f"energy_model.site_energies_eV.{name}",
                                  hint="give one site energy per species")
        self.profile = None
        if settings.profile:
            from kmcflow.hpc.profiles import load_profile

            self.profile = load_profile(settings.profile)
        check_output_folder(out_dir, "learn", reuse=True, inputs=[catalog_file])
        self.out = Path(out_dir).resolve()
        self.progress = progress or (lambda message: None)
        self._check_same_settings()

    def _check_same_settings(self) -> None:
        """A folder continues only with the settings and catalog it was started with."""
        from kmcflow.kmc.runner import file_sha256
        from kmcflow.readers import read_json

        path = self.out / "learn.json"
        self.catalog_sha256 = file_sha256(str(self.catalog_file))
        if not path.is_file():
            return
        old = read_json(path, error=ConfigError, what="learn record")
        if not isinstance(old, dict):
            raise ConfigError("not a learn record", file=str(path),
                              hint="use a new --out folder")
        if old.get("catalog_sha256") != self.catalog_sha256:
            raise ConfigError("this folder was learned from another catalog file (its "
                              "content differs)", file=str(path), field="catalog",
                              hint="use a new --out folder, or the same catalog")
        wanted = json_safe(self.settings.shaping())
        before = old.get("settings") or {}
        for name, value in wanted.items():
            if before.get(name) != value:
                raise ConfigError(f"this folder was learned with {name} = "
                                  f"{before.get(name)!r}, now {value!r}", file=str(path),
                                  field=name, hint="use a new --out folder, or the same "
                                  "settings (only --workers, --max-iterations, --tolerance, "
                                  "--model-share, --max-replicas, --profile, --no-wait and "
                                  "--poll may change)")

    # --- steps --------------------------------------------------------------------------

    def _hops(self, iteration: int, keys: list[str] | None):
        """Sample folder of an iteration: written once, then its computed hops reused."""
        from kmcflow.structures.environment_sampling import hops_for_keys, random_alloy_hops
        from kmcflow.workflows.environments import (
            SAMPLE_FILE,
            compute_sample_folder,
            write_sample_folder,
        )

        folder = self.out / "hops" / f"iter_{iteration:03d}"
        s = self.settings
        names = list(self.base.species)
        if not (folder / SAMPLE_FILE).is_file():
            if keys is None:
                hops, seen = [], set()
                for i, x in enumerate(s.seed_fractions):
                    batch = random_alloy_hops(
                        self.lattice, names, {names[1]: x}, s.seed_count, seed=s.seed + i,
                        repeats=s.repeats, lattice_constants_A=s.lattice_constants_A,
                        skip_keys=seen)
                    seen |= {h.key for h in batch}
                    hops += batch
            else:
                hops = hops_for_keys(keys, self.lattice, names, seed=s.seed + 1000 * iteration,
                                     repeats=s.repeats,
                                     lattice_constants_A=s.lattice_constants_A)
            write_sample_folder(folder, hops, catalog_name=self.base.name, species=names,
                                lattice=self.base.lattice.model_dump(mode="json",
                                                                     exclude_none=True),
                                settings={"iteration": iteration, "keys": keys})

        if s.profile:
            self._compute_on_cluster(iteration, folder)
            return folder

        def report(n: int, total: int, hop, state: str) -> None:
            self.progress(f"iteration {iteration}: hop {n}/{total} {state}")

        compute_sample_folder(folder, self.hop_settings, workers=s.workers, progress=report)
        return folder

    def _compute_on_cluster(self, iteration: int, folder: Path) -> None:
        """Submit the folder's hops not done, then wait for them (or raise LearnWaiting)."""
        from kmcflow.hpc.sample_jobs import BUSY, run_folder_on_cluster

        s = self.settings
        states = run_folder_on_cluster(
            folder, self.hop_settings, self.profile, wait=s.wait, poll_s=s.poll_s,
            max_submissions=s.max_submissions,
            progress=lambda message: self.progress(f"iteration {iteration}: {message}"))
        busy = [st for st in states if st["state"] in BUSY]
        if busy:
            raise LearnWaiting(iteration, len(busy), len(states), folder)

    def _fit(self, iteration: int, folders: list[Path]) -> tuple[Path, dict, list]:
        """Fit every computed hop so far; write catalog version ``iteration``."""
        from kmcflow.atomic_io import write_json as write
        from kmcflow.kmc.catalog import catalog_from_data
        from kmcflow.kmc.environment_fit import fit_environment_model
        from kmcflow.workflows.environments import (
            SampleSet,
            environment_catalog,
            read_folder_results,
            samples_from_results,
        )

        every = SampleSet()
        for folder in folders:
            got = samples_from_results(read_folder_results(folder),
                                       f"kmcflow learn {folder.name}")
            every.samples += got.samples
            every.left_out += got.left_out
        fit = fit_environment_model(every.samples, list(self.base.species), self.geometry)
        data = environment_catalog(self.base, every.samples, fit,
                                   name=f"{self.base.name}_learned_v{iteration:03d}")
        path = self.out / "catalogs" / f"catalog_v{iteration:03d}.json"
        catalog_from_data(data, path)
        write(path, data)
        record = {"fit": fit.fit_record(), "pair_interactions_eV": fit.pair_interactions_eV(),
                  "n_hops": len(every.samples), "left_out": every.left_out,
                  "n_table": len(data["environments"]["table"])}
        return path, record, every.samples

    def _run(self, iteration: int, catalog_path: Path, replicas: int) -> dict[str, Any]:
        """The replicas at the temperature: D, its error, sources, the unlisted keys.

        Runs already finished (same settings and catalog file) are read back; the others run
        ``workers`` at a time (:func:`kmcflow.kmc.replica_pool.run_replicas`).
        """
        from kmcflow.kmc.replica_pool import run_replicas

        s = self.settings
        folder = self.out / "kmc" / f"iter_{iteration:03d}"
        summaries = run_replicas(
            catalog_path, [(folder / f"replica_{r}", s.run_settings(r)) for r in range(replicas)],
            workers=s.workers,
            progress=lambda n, total: self.progress(f"iteration {iteration}: kMC replica "
                                                    f"{n}/{total} done"))
        d_values, sources, unlisted = [], {}, {}
        for r in range(replicas):
            run = folder / f"replica_{r}"
            try:
                d_values.append(_run_D(run))
            except ConfigError as exc:  # no measurable widening: say which run, and the fix
                raise ConfigError(f"iteration {iteration}, replica {r}: {exc.message}",
                                  file=str(run), field="steps",
                                  hint="more events per run (--steps) or a higher "
                                  "temperature") from exc
            env = summaries[r].get("environments") or {}
            for name, n in (env.get("events_by_source") or {}).items():
                sources[name] = sources.get(name, 0) + int(n)
            for item in env.get("unlisted") or []:
                unlisted[item["key"]] = unlisted.get(item["key"], 0) + int(item["executed"])
        total = max(sum(sources.values()), 1)
        d = np.array(d_values)
        return {"D_A2_per_s": float(d.mean()), "replicas": len(d),
                "D_stderr_A2_per_s": float(d.std(ddof=1) / math.sqrt(len(d))),
                "D_replicas_A2_per_s": d.tolist(), "events_by_source": sources,
                "fraction_by_source": {k: v / total for k, v in sources.items()},
                "unlisted": sorted(unlisted.items(), key=lambda kv: (-kv[1], kv[0]))}

    def _next_keys(self, unlisted: list[tuple[str, int]], samples: list) -> list[str]:
        from kmcflow.workflows.environments import rank_unlisted

        names = list(self.base.species)
        envs = self.geometry.envs
        return rank_unlisted(unlisted, names, envs, self.settings.top,
                             _computed_identities(samples, names, envs))

    def _compare(self, before: dict[str, Any], after: dict[str, Any]) -> tuple[float, float]:
        """Relative change of D between two iterations and its standard error.

        The change is ``mean(D_after) / mean(D_before) - 1``, its error that of a ratio of
        two independent means (the replicas of two catalogs part ways within a few events,
        so pairing them by random stream gains nothing: measured). Unless the change is
        beyond the tolerance by more than one standard error (going on costs one iteration,
        never a false claim), while its error exceeds the tolerance (the runs cannot tell a
        5 % change from none), the iteration with fewer replicas is brought up to the other,
        then both get twice the replicas, up to ``max_replicas``: convergence is never
        declared on a change lost in the noise. The records are updated with the replicas
        they end with.
        """
        s = self.settings
        while True:
            d0 = np.array(before["D_replicas_A2_per_s"])
            d1 = np.array(after["D_replicas_A2_per_s"])
            m0, m1 = d0.mean(), d1.mean()
            change = float(m1 / m0 - 1)
            noise = float(m1 / m0 * math.sqrt(d0.var(ddof=1) / (len(d0) * m0 ** 2)
                                              + d1.var(ddof=1) / (len(d1) * m1 ** 2)))
            clearly_beyond = abs(change) > s.d_tolerance + noise
            n = min(len(d0), len(d1))
            if clearly_beyond or noise <= s.d_tolerance or n >= s.max_replicas:
                return change, noise
            more = min(2 * n if len(d0) == len(d1) else max(len(d0), len(d1)),
                       s.max_replicas)
            for record in (before, after):
                if record["replicas"] >= more:
                    continue
                path = self.out / record["catalog"]
                run = self._run(int(record["iteration"]), path, more)
                record.update({k: v for k, v in run.items()
                               if k in ("D_A2_per_s", "D_stderr_A2_per_s",
                                        "D_replicas_A2_per_s", "replicas", "events_by_source",
                                        "fraction_by_source")})
                record["model_share"] = run["fraction_by_source"].get("model", 0.0)

    # --- the loop -----------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Run (or continue) the loop; return the record written to ``learn.json``."""
        s = self.settings
        self.out.mkdir(parents=True, exist_ok=True)
        write_marker(self.out, "learn")
        record: dict[str, Any] = {
            "catalog": str(self.catalog_file), "catalog_sha256": self.catalog_sha256,
            "settings": json_safe(s.shaping()),
            "stopping": {"max_iterations": s.max_iterations, "d_tolerance": s.d_tolerance,
                         "model_share_max": s.model_share_max,
                         "max_replicas": s.max_replicas},
            "iterations": [], "converged": False, "why": ""}
        write_json(self.out / "learn.json", record)  # the settings, before any result
        folders: list[Path] = []
        keys: list[str] | None = None
        for it in range(s.max_iterations):
            folders.append(self._hops(it, keys))
            catalog_path, fit, samples = self._fit(it, folders)
            run = self._run(it, catalog_path, s.replicas)
            model_share = run["fraction_by_source"].get("model", 0.0)
            entry = {"iteration": it, "catalog": str(catalog_path.relative_to(self.out)),
                     "new_keys": keys or [], **fit,
                     **{k: v for k, v in run.items() if k != "unlisted"},
                     "model_share": model_share,
                     "unlisted_top": [{"key": k, "executed": n} for k, n in run["unlisted"][:20]]}
            record["iterations"].append(entry)
            self.progress(f"iteration {it}: D {run['D_A2_per_s']:.4g} A^2/s, model share "
                          f"{model_share:.2f}, {fit['n_hops']} hops")
            if it >= 1:
                change, noise = self._compare(record["iterations"][-2], entry)
                entry.update(D_change=change, D_change_stderr=noise)
                model_share = entry["model_share"]
                if (abs(change) <= s.d_tolerance and noise <= s.d_tolerance
                        and model_share <= s.model_share_max):
                    record.update(converged=True, why=(
                        f"D changed by {100 * change:+.1f} % +- {100 * noise:.1f} % (tolerance "
                        f"{100 * s.d_tolerance:g} %, {entry['replicas']} replicas) and the "
                        f"model rated {100 * model_share:.0f} % of the executed hops (at most "
                        f"{100 * s.model_share_max:g} %)"))
                    break
            keys = self._next_keys(run["unlisted"], samples)
            if not keys:
                record["why"] = "every environment the runs met is computed, D not converged"
                break
            write_json(self.out / "learn.json", record)
        if not record["converged"] and not record["why"]:
            record["why"] = f"not converged after {s.max_iterations} iterations"
        record["final_catalog"] = record["iterations"][-1]["catalog"]
        write_json(self.out / "learn.json", record)
        return record


def run_learn(catalog_file: str | os.PathLike[str], out_dir: str | os.PathLike[str],
              settings: LearnSettings | None = None, progress: Progress | None = None
              ) -> dict[str, Any]:
    """Run (or continue) ``learn`` on ``catalog_file`` in ``out_dir`` (see the module)."""
    return LearnLoop(catalog_file, out_dir, replace(settings or LearnSettings()),
                     progress).run()
