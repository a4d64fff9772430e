"""Environment hops: a folder of sampled endpoints -> computed barriers -> a fitted catalog.

A *sample folder* (``kmcflow environments sample``) holds::

    environments.json        # kind, catalog lattice and species, settings, one record per hop
    endpoints/NNN_initial.vasp, endpoints/NNN_final.vasp   # POSCAR files, same atom order

Any tool may compute the hops (``kmcflow barrier`` on each pair, on a cluster); here
:func:`compute_sample_folder` runs them through the same hop flows and per-hop stores as a
campaign (:mod:`kmcflow.workflows.hop_batch`): results land in ``results/hop_NNN.json`` and a
rerun reuses every hop already done. :func:`samples_from_results` turns results into
:class:`~kmcflow.kmc.environment_fit.EnvironmentSample` (a failed or unconverged hop is left
out and listed with why), and :func:`environment_catalog` writes a schema-2 catalog: the base
catalog's events, the fitted pair bonds, the table of computed hops and the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kmcflow.atomic_io import write_json, write_text
from kmcflow.errors import ConfigError, KmcflowError
from kmcflow.workflows.hop_batch import PlannedHop, compute_hops
from kmcflow.workflows.settings import NebSettings, PrefactorSettings, RelaxSettings

SAMPLE_FILE = "environments.json"
HOP_SETTINGS = "hop_settings.json"  # written when a folder is submitted (kmcflow.hpc.sample_jobs)
SAMPLE_KIND = "kmcflow.environment_samples"


class EnvironmentHopSettings(BaseModel):
    """The calculator and the three calculations' settings of every environment hop."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    calculator: str | dict[str, Any] = "emt"
    neb: NebSettings = Field(default_factory=lambda: NebSettings(n_images=3))
    relax: RelaxSettings = Field(default_factory=RelaxSettings)
    prefactor: PrefactorSettings = Field(default_factory=PrefactorSettings)


def write_sample_folder(folder: str | Path, hops: list, *, catalog_name: str,
                        species: list[str], lattice: dict[str, Any],
                        settings: dict[str, Any]) -> Path:
    """Write ``hops`` (:class:`~kmcflow.structures.environment_sampling.EnvironmentHop`).

    The folder is written whole or not at all (the caller checks it is free).
    """
    from kmcflow.atomic_io import atomic_directory

    with atomic_directory(folder) as tmp:
        (tmp / "endpoints").mkdir()
        records = []
        for i, hop in enumerate(hops):
            ini, fin = f"endpoints/{i:03d}_initial.vasp", f"endpoints/{i:03d}_final.vasp"
            write_text(tmp / ini, hop.initial.to(fmt="poscar"))
            write_text(tmp / fin, hop.final.to(fmt="poscar"))
            records.append({**hop.record(), "initial": ini, "final": fin})
        write_json(tmp / SAMPLE_FILE, {"kind": SAMPLE_KIND, "catalog": catalog_name,
                                       "species": list(species), "lattice": lattice,
                                       "settings": settings, "hops": records})
    return Path(folder)


def read_sample_folder(folder: str | Path) -> tuple[dict[str, Any], list[PlannedHop]]:
    """The manifest of a sample folder and its hops (endpoints read back)."""
    from kmcflow.readers import read_json
    from kmcflow.structures.io import read_structure

    folder = Path(folder)
    path = folder / SAMPLE_FILE
    if not path.is_file():
        raise ConfigError("not a folder of environment samples (no environments.json)",
                          file=str(folder), hint="write one with `kmcflow environments sample`")
    manifest = read_json(path, error=ConfigError, what="environment samples")
    if not isinstance(manifest, dict) or manifest.get("kind") != SAMPLE_KIND:
        raise ConfigError(f"kind is not {SAMPLE_KIND!r}", file=str(path), field="kind",
                          hint="write the folder with `kmcflow environments sample`")
    planned = []
    for i, rec in enumerate(manifest.get("hops") or []):
        try:
            ini = read_structure(folder / rec["initial"]).structure
            fin = read_structure(folder / rec["final"]).structure
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"hop {i} names no endpoint files", file=str(path),
                              field=f"hops[{i}]", hint="rewrite the folder") from exc
        planned.append(PlannedHop(dict(rec), ini, fin, "environment"))
    return manifest, planned


def compute_sample_folder(folder: str | Path, settings: EnvironmentHopSettings, *,
                          workers: int = 1, progress=None) -> list[dict[str, Any]]:
    """Compute (or reuse) every hop of a sample folder; return the results in hop order."""
    from kmcflow.workflows.calculators import load_calculator_config

    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a whole number >= 1, got {workers!r}",
                          field="--workers", hint="e.g. --workers 2")
    _, planned = read_sample_folder(folder)
    if (Path(folder) / HOP_SETTINGS).is_file():
        raise ConfigError(f"this folder's hops run on a cluster ({HOP_SETTINGS}): computing "
                          "them here could overwrite their results", file=str(folder),
                          hint="follow them with `kmcflow environments status`; rerun "
                          "`kmcflow learn` with its --profile")
    config = load_calculator_config(settings.calculator)
    out = Path(folder).resolve()
    outcomes = compute_hops(settings, config, list(enumerate(planned)), out, progress, workers)
    return [result for result, _ in outcomes]


@dataclass
class SampleSet:
    """Usable samples and the hops left out, each with why."""

    samples: list = field(default_factory=list)
    left_out: list[dict[str, Any]] = field(default_factory=list)


def samples_from_results(results: list[dict[str, Any]], source: str) -> SampleSet:
    """The :class:`EnvironmentSample` of every converged hop with an environment key."""
    from kmcflow.kmc.environment_fit import EnvironmentSample
    from kmcflow.workflows.assembly import result_provenance

    out = SampleSet()
    for r in results:
        hop = r.get("hop") or {}
        key = hop.get("environment_key")
        why = None
        if not key:
            why = "no environment_key in its hop record"
        elif r.get("failure_reason"):
            why = f"failed: {r.get('failure_reason')}"
        elif not r.get("converged"):
            why = "not converged"
        elif r.get("kra_eV") is None or r.get("prefactor_Hz") is None:
            why = "no E_KRA or prefactor"
        if why:
            out.left_out.append({"key": key, "job_index": r.get("job_index"), "why": why})
            continue
        prov = result_provenance(r, source, "forward")
        prov.update(composition=hop.get("composition"), origin=hop.get("origin"))
        out.samples.append(EnvironmentSample(
            key=key, kra_eV=float(r["kra_eV"]), reaction_energy_eV=float(r["reaction_energy_eV"]),
            barrier_eV=float(r["forward_barrier_eV"]), prefactor_Hz=float(r["prefactor_Hz"]),
            reverse_prefactor_Hz=(None if r.get("reverse_prefactor_Hz") is None
                                  else float(r["reverse_prefactor_Hz"])),
            provenance={k: v for k, v in prov.items() if v is not None}))
    return out


def read_folder_results(folder: str | Path) -> list[dict[str, Any]]:
    """The computed results of a sample folder (``results/``), in hop order."""
    from kmcflow.workflows.campaign import read_results

    results_dir = Path(folder) / "results"
    if not results_dir.is_dir():
        raise KmcflowError("no computed hops in the folder (no results/)", file=str(folder),
                           hint="run `kmcflow environments compute` on it first")
    return read_results(results_dir)


def environment_catalog(base, samples: list, fit, *, name: str | None = None,
                        table: bool = True) -> dict[str, Any]:
    """A schema-2 catalog (as a dict): ``base``'s sections, the fitted pair bonds and model.

    ``base`` is a :class:`~kmcflow.kmc.catalog.Catalog`; its energy model keeps its site
    energies and gets the fitted pair bonds (replacing any it had). With ``table`` the
    computed hops are listed exactly (:func:`~kmcflow.kmc.environment_fit.table_entries`).
    """
    from kmcflow.kmc.catalog import SCHEMA_VERSION
    from kmcflow.kmc.environment_fit import table_entries

    data = base.to_json_dict()
    data["schema_version"] = SCHEMA_VERSION
    if name:
        data["name"] = name
    energy = dict(data.get("energy_model") or {})
    energy["pair_interactions_eV"] = fit.pair_interactions_eV()
    data["energy_model"] = energy
    data["environments"] = {
        "shell": "first",
        "table": table_entries(samples, fit) if table else [],
        "model": {"kind": "kra_orbit_expansion", "terms": fit.model_terms(),
                  "fit": fit.fit_record()}}
    return data


def unlisted_counts(run_folder: str | Path) -> list[tuple[str, int]]:
    """(key text, times executed) of the environments a kMC run executed without a table entry.

    Read from the run's ``summary.json`` (``environments.unlisted``, the most executed first).
    """
    from kmcflow.readers import read_json

    path = Path(run_folder) / "summary.json"
    if not path.is_file():
        raise ConfigError("no summary.json: not a finished kMC run folder", file=str(run_folder),
                          field="--from-run", hint="give the --out folder of `kmcflow kmc run`")
    summary = read_json(path, error=ConfigError, what="kMC summary")
    section = summary.get("environments") if isinstance(summary, dict) else None
    if not isinstance(section, dict):
        raise ConfigError("the run has no environment report (its catalog has no "
                          "environments section)", file=str(path), field="environments",
                          hint="run kMC with a schema-2 catalog with an environment model")
    out = []
    for i, item in enumerate(section.get("unlisted") or []):
        if not (isinstance(item, dict) and isinstance(item.get("key"), str)
                and isinstance(item.get("executed"), int)):
            raise ConfigError("an unlisted environment without a key text and a count",
                              file=str(path), field=f"environments.unlisted[{i}]",
                              hint="rerun the kMC run that wrote it")
        out.append((item["key"], int(item["executed"])))
    return out


def rank_unlisted(unlisted: list[tuple[str, int]], species: list[str], envs, top: int,
                  computed: set[tuple[int, int, int]] = frozenset()) -> list[str]:
    """The ``top`` environments to compute next, by weight in the dynamics.

    ``unlisted``: (key text, times executed). In a rejection-free run a hop's share of the
    executed events is its share of the total rate over time, so the count ranks by weight in
    the dynamics. A hop and its reverse are one computation (one NEB gives both), so their
    counts add up and one key stands for both; keys in ``computed`` (identities
    ``(species, class, canonical key)``, either direction) and keys not to compute
    (:func:`computable_key`) are skipped.
    """
    from kmcflow.kmc.environment import environment_key, parse_key_text, reverse_key

    weight: dict[tuple[int, int, int], int] = {}
    text_of: dict[tuple[int, int, int], str] = {}
    for text, count in unlisted:
        if not computable_key(text):
            continue
        s, c, codes = parse_key_text(text, species, envs)
        ident = (s, c, environment_key(codes, c, envs, len(species)))
        back = (s, *reverse_key(ident[2], c, envs, len(species)))
        if ident in computed or back in computed:
            continue
        pair = min(ident, back)
        weight[pair] = weight.get(pair, 0) + int(count)
        text_of.setdefault(pair, text)
    order = sorted(weight, key=lambda pair: (-weight[pair], text_of[pair]))
    return [text_of[pair] for pair in order[: int(top)]]


def unlisted_keys(run_folder: str | Path, species: list[str], envs, top: int) -> list[str]:
    """The ``top`` environments a run executed most without a table entry (rank_unlisted)."""
    return rank_unlisted(unlisted_counts(run_folder), species, envs, top)


def computable_key(text: str) -> bool:
    """Whether an environment is one to compute (no ``-`` site, no second vacancy).

    A site beyond a closed boundary cannot be held by a periodic cell; the model leaves
    vacancy-vacancy binding out (:mod:`kmcflow.kmc.environment_fit`).
    """
    from kmcflow.kmc.environment import NO_SITE_TEXT, VACANCY_TEXT

    sites = text.split("|")[-1].split(",")
    return NO_SITE_TEXT not in sites and VACANCY_TEXT not in sites


def hop_settings(calculator: str | dict[str, Any],
                 settings_file: str | Path | None = None) -> EnvironmentHopSettings:
    """The hop settings: ``calculator`` and the neb/relax/prefactor sections of a YAML file."""
    from pydantic import ValidationError

    from kmcflow.workflows.settings import settings_error

    sections: dict[str, Any] = {}
    if settings_file is not None:
        import yaml

        path = Path(settings_file)
        if not path.is_file():
            raise ConfigError("settings file not found", file=str(path), field="--settings",
                              hint="give a YAML with neb, relax and prefactor sections")
        try:
            sections = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"not valid YAML: {exc}".splitlines()[0], file=str(path)) from exc
        if not isinstance(sections, dict):
            raise ConfigError("expected a mapping with neb, relax, prefactor", file=str(path))
    try:
        return EnvironmentHopSettings(calculator=calculator, **sections)
    except ValidationError as exc:
        raise settings_error(exc, model=EnvironmentHopSettings,
                             file=None if settings_file is None else str(settings_file),
                             error=ConfigError) from exc


def held_out_errors(fit, samples: list) -> dict[str, Any]:
    """Errors (eV) of the model's E_a against computed forward barriers it was not fitted to."""
    import numpy as np

    pred = np.array([fit.barrier(s.key) for s in samples])
    ref = np.array([s.barrier_eV for s in samples])
    covered = np.isfinite(pred)  # a species or hop class the model has no term for
    err = (pred - ref)[covered]
    stats = ({"mae_eV": float(np.mean(np.abs(err))), "rmse_eV": float(np.sqrt(np.mean(err ** 2))),
              "max_error_eV": float(np.max(np.abs(err)))} if covered.any() else
             {"mae_eV": None, "rmse_eV": None, "max_error_eV": None})
    return {"n": int(covered.sum()), "not_covered": [s.key for s, ok in
                                                     zip(samples, covered, strict=True) if not ok],
            **stats,
            "per_hop": [{"key": s.key, "computed_eV": float(r),
                         "model_eV": float(p) if ok else None}
                        for s, r, p, ok in zip(samples, ref, pred, covered, strict=True)]}


def _check_lattice(folder: str | Path, catalog) -> None:
    """Refuse hops sampled on another lattice than the catalog's."""
    from kmcflow.readers import read_json

    path = Path(folder) / SAMPLE_FILE
    if not path.is_file():
        return  # results copied without their manifest: the keys are checked when parsed
    manifest = read_json(path, error=ConfigError, what="environment samples")
    from pydantic import ValidationError

    lattice = manifest.get("lattice") if isinstance(manifest, dict) else None
    wanted = catalog.lattice.model_dump(mode="json", exclude_none=True)
    try:
        same = type(catalog.lattice).model_validate(lattice) == catalog.lattice
    except ValidationError:
        same = False
    if not same or manifest.get("species") != list(catalog.species):
        raise ConfigError(f"sampled on lattice {lattice} with species {manifest.get('species')}"
                          f", the catalog has {wanted} and {list(catalog.species)}",
                          file=str(path), field="lattice",
                          hint="fit hops sampled from this catalog (or one with its lattice)")


def fit_folders(catalog_file: str | Path, folders: list[str | Path], write: str | Path, *,
                test: list[str | Path] = (), table: bool = True,
                ridge_eV2: float | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Fit the model to computed sample folders, write the catalog, return the errors."""
    from kmcflow.kmc.catalog import catalog_from_data, load_catalog
    from kmcflow.kmc.environment_fit import DEFAULT_RIDGE_EV2, fit_environment_model
    from kmcflow.kmc.environment_rates import catalog_lattice, environment_geometry
    from kmcflow.outputs import check_output_file

    check_output_file(write, inputs=[catalog_file], overwrite=overwrite)
    base = load_catalog(catalog_file)
    for folder in [*folders, *test]:
        _check_lattice(folder, base)
    train, held = SampleSet(), SampleSet()
    for group, where in ((train, folders), (held, test)):
        for folder in where:
            got = samples_from_results(read_folder_results(folder),
                                       f"kmcflow environments {Path(folder).name}")
            group.samples += got.samples
            group.left_out += got.left_out
    if not train.samples:
        raise KmcflowError("no converged hop to fit in the folders", field="folders",
                           hint="compute them first (`kmcflow environments compute`)")
    geometry = environment_geometry(catalog_lattice(base))
    fit = fit_environment_model(train.samples, list(base.species), geometry,
                                ridge_eV2=DEFAULT_RIDGE_EV2 if ridge_eV2 is None else ridge_eV2)
    data = environment_catalog(base, train.samples, fit, table=table)
    catalog_from_data(data, Path(write))  # validated (detailed balance, keys) before writing
    write_path = Path(write)
    write_json(write_path, data)
    report = {"catalog": str(write_path), "fit": fit.fit_record(),
              "pair_interactions_eV": fit.pair_interactions_eV(),
              "n_table": len(data["environments"]["table"]), "n_terms": len(fit.terms),
              "left_out": train.left_out + held.left_out, "test": None}
    if held.samples:
        report["test"] = held_out_errors(fit, held.samples)
    return report
