"""Barrier campaigns: a YAML file -> hops -> jobflow hop flows -> one event catalog.

A campaign file (validated; errors name the file and the key)::

    name: cu_ni
    calculator: emt                 # a code name, a config mapping, or a config YAML path
    interface: {film: Cu, substrate: Ni, film_miller: [1, 0, 0], substrate_miller: [1, 0, 0],
                vacuum_A: 0, film_thickness: 4layers, substrate_thickness: 4layers}
    species: [Cu, Ni]
    band_thickness_A: 0.0
    min_image_distance_A: 8.0
    neb: {n_images: 4, fmax_eV_per_A: 0.05}   # NebSettings
    relax: {fmax_eV_per_A: 0.02}              # RelaxSettings
    prefactor: {radius_A: 0.0}                # PrefactorSettings
    references:                     # optional static bulk calculations (campaign folders)
      - {name: NiO_afm, structure: NiO, magnetic_order: rocksalt_afm_111, moment_muB: 2.0}

The ``neb``, ``relax`` and ``prefactor`` sections are the settings models of
:mod:`kmcflow.workflows.settings` themselves (the ones ``kmcflow barrier`` and the makers use):
every field of them may be set, a section or field left out takes the model's default, and an
unknown field is an error that names the known ones.

A campaign may also hold only ``references`` (no interface, no species): static calculations
of bulk cells with the campaign's calculator, to check a DFT+U setup (the U values, the
magnetic order) before the barriers. References run as tasks of a campaign folder
(``kmcflow campaign prepare/submit``), not in ``campaign run``.

The hops of a couple A|B (host names = the bulk names) are planned so that the catalog covers
every key the engine needs: each species' own hop in its own bulk (``A/A->A``), the hop of each
species as a dilute solute in the other bulk (``A/B->B``), and the hops across the interface
taken from the built interface (``A/A->B``; its reverse barrier gives ``A/B->A``); with an
interface band also the distinct hops touching the band. Bulk hops come first, so they win a
key that an interface hop also has.

:func:`run_campaign` runs each hop as a jobflow flow with ``run_locally`` and a file-backed
store (maggma ``JSONStore`` under ``OUT/store``, no database server); a hop whose result is in
the store (same endpoints, calculator and settings: the ``cache_key``) is not run again; a hop
whose stored result has a failure reason is retried. Each hop has its own store folder
(``OUT/store/hop_NNN``), so a kill during a store write costs at most that hop. Then
the assembly job writes ``OUT/catalog.json`` and ``OUT/report.json``; ``OUT/results/`` holds
every hop result as plain JSON (:func:`export_results` / :func:`read_results`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from kmcflow.atomic_io import write_json
from kmcflow.errors import ConfigError, KmcflowError
from kmcflow.kmc.catalog import Conditions
from kmcflow.outputs import check_output_folder, write_marker
from kmcflow.workflows.hop_batch import (  # noqa: F401  (campaign_store, find_done,
    PlannedHop,  # export_result, hop_flow_maker: the campaign's API, used by the HPC tasks)
    campaign_store,
    compute_hops,
    export_result,
    find_done,
    hop_flow_maker,
)
from kmcflow.workflows.settings import (
    NebSettings,
    PrefactorSettings,
    RelaxSettings,
    settings_error,
)

if TYPE_CHECKING:  # annotations only: both import pydantic and emmet models on use
    from kmcflow.kmc.catalog import Catalog
    from kmcflow.workflows.results import HopResult


class _Spec(BaseModel):
    # YAML writes .inf and .nan: no number of a campaign may be either
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class InterfaceSpec(_Spec):
    """How the campaign's interface is built (see ``kmcflow interface build``)."""

    film: str
    substrate: str
    film_miller: Annotated[list[int], Field(min_length=3, max_length=3)]
    substrate_miller: Annotated[list[int], Field(min_length=3, max_length=3)]
    film_thickness: str = "4layers"
    substrate_thickness: str = "4layers"
    vacuum_A: Annotated[float, Field(ge=0)] = 0.0
    gap_A: float | None = None
    match: Annotated[int, Field(ge=0)] = 0
    termination: Annotated[int, Field(ge=0)] = 0
    max_strain: float = 0.05


class ReferenceSpec(_Spec):
    """A static calculation of a bulk cell with the campaign's calculator."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.+-]+$")]
    structure: str  # a bundled name (kmcflow bulk list) or a structure file
    magnetic_order: Literal["none", "rocksalt_afm_111"] = "none"
    moment_muB: float = 2.0


class CampaignSpec(_Spec):
    """A whole campaign file (see the module docstring)."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.+-]+$")]
    calculator: str | dict[str, Any] = "emt"
    interface: InterfaceSpec | None = None
    species: list[str] = []
    references: list[ReferenceSpec] = []
    band_thickness_A: Annotated[float, Field(ge=0)] = 0.0
    min_image_distance_A: Annotated[float, Field(gt=0)] = 8.0
    # the calculations' own settings models; a section left out is their defaults
    neb: NebSettings = Field(default_factory=NebSettings)
    relax: RelaxSettings = Field(default_factory=RelaxSettings)
    prefactor: PrefactorSettings = Field(default_factory=PrefactorSettings)
    conditions: Conditions | None = None  # the catalog's run conditions, checked on load
    allow_mixed_theory: bool = False
    _source: str | None = PrivateAttr(default=None)  # the campaign file it was read from

    def conditions_record(self) -> dict[str, Any] | None:
        """The conditions as the catalog file holds them (only those the campaign sets)."""
        if self.conditions is None:
            return None
        return self.conditions.model_dump(mode="json", exclude_unset=True)

    @model_validator(mode="after")
    def _something_to_do(self):
        if self.interface is None and not self.references:
            raise ValueError("a campaign needs an interface (with species) or references")
        if self.interface is not None and not self.species:
            raise ValueError("species: list the diffusing species of the interface")
        return self


def load_campaign(path: str | os.PathLike[str]) -> CampaignSpec:
    """Read and validate a campaign YAML file."""
    from kmcflow.readers import read_yaml

    p = Path(path)
    data = read_yaml(p, what="campaign file")
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        raise settings_error(exc, model=CampaignSpec, file=str(p)) from exc
    if isinstance(spec.calculator, str) and spec.calculator.endswith((".yaml", ".yml")):
        calc = Path(spec.calculator)
        if not calc.is_absolute():
            spec = spec.model_copy(update={"calculator": str(p.parent / calc)})
    refs = [r.model_copy(update={"structure": str(p.parent / r.structure)})
            if (p.parent / r.structure).is_file() and not Path(r.structure).is_absolute()
            else r for r in spec.references]
    spec = spec.model_copy(update={"references": refs})
    if spec.interface is not None:  # structure files beside the campaign, like references
        it = spec.interface
        update = {name: str(p.parent / value) for name, value in
                  (("film", it.film), ("substrate", it.substrate))
                  if not Path(value).is_absolute() and (p.parent / value).is_file()}
        spec = spec.model_copy(update={"interface": it.model_copy(update=update)})
    _check_names(spec, p)
    spec._source = str(p)
    return spec


def check_campaign_ready(spec: CampaignSpec, config, elements: list[str]) -> None:
    """:func:`~kmcflow.workflows.calculators.check_ready`, naming the file the setting is in.

    A U for an element the campaign lacks, a missing executable or pseudopotential: the
    error names the calculator config file, or the campaign file and its ``calculator`` key.
    """
    from kmcflow.workflows.calculators import check_ready

    try:
        check_ready(config, elements)
    except ConfigError as exc:
        if exc.file is not None:
            raise
        own_file = isinstance(spec.calculator, str) and spec.calculator.endswith(
            (".yaml", ".yml", ".json"))
        raise ConfigError(exc.message, file=spec.calculator if own_file else spec._source,
                          field=exc.field if own_file else
                          (f"calculator.{exc.field}" if exc.field else "calculator"),
                          hint=exc.hint) from exc


def _check_names(spec: CampaignSpec, path: Path) -> None:
    """Refuse, naming the campaign file and key, what would only fail later in planning."""
    from ase.data import chemical_symbols

    from kmcflow.structures.bulk import bundled_names
    from kmcflow.workflows.calculators import load_calculator_config

    try:
        load_calculator_config(spec.calculator)
    except ConfigError as exc:
        if exc.file is not None:  # a calculator config file: it names itself
            raise
        raise ConfigError(exc.message, file=str(path), field=f"calculator.{exc.field}"
                          if exc.field else "calculator", hint=exc.hint) from exc
    names = bundled_names()
    structures = [(f"interface.{k}", v) for k, v in
                  (("film", spec.interface.film), ("substrate", spec.interface.substrate))
                  ] if spec.interface else []
    structures += [(f"references[{i}].structure", r.structure)
                   for i, r in enumerate(spec.references)]
    for field, value in structures:
        if value not in names and not Path(value).is_file():
            raise ConfigError(f"{value!r} is neither a structure file nor a bundled crystal",
                              file=str(path), field=field,
                              hint=f"give a file path (relative to the campaign file) or one "
                              f"of {', '.join(names)}")
    for species in spec.species:
        if species not in chemical_symbols[1:]:
            raise ConfigError(f"{species!r} is not an element symbol", file=str(path),
                              field="species", hint="e.g. species: [Cu, Ni]")


def plan_references(spec: CampaignSpec) -> list[tuple[dict[str, Any], Any]]:
    """The reference calculations: (record, pymatgen structure) pairs."""
    from kmcflow.structures.io import read_structure
    from kmcflow.structures.magnetic import rocksalt_afm_111

    planned = []
    for ref in spec.references:
        structure = read_structure(ref.structure).structure
        if ref.magnetic_order == "rocksalt_afm_111":
            structure = rocksalt_afm_111(structure, ref.moment_muB)
        planned.append(({"name": ref.name, "structure": ref.structure,
                         "magnetic_order": ref.magnetic_order,
                         "formula": structure.composition.reduced_formula,
                         "n_atoms": len(structure)}, structure))
    return planned


def plan_hops(spec: CampaignSpec) -> tuple[list[PlannedHop], dict[str, Any]]:
    """The hops of the campaign (see the module docstring) and the catalog sections.

    A campaign without an interface (references only) has no hops and no sections.
    """
    if spec.interface is None:
        return [], {}
    from kmcflow.structures.endpoints import hop_endpoints, impurity_endpoints
    from kmcflow.structures.hops import enumerate_hops
    from kmcflow.structures.interface import MatchLimits, build_interface, find_matches
    from kmcflow.structures.io import read_structure
    from kmcflow.structures.sublattice import catalog_sections

    it = spec.interface
    film, sub = read_structure(it.film), read_structure(it.substrate)
    search = find_matches(film, sub, it.film_miller, it.substrate_miller,
                          limits=MatchLimits(max_strain=it.max_strain),
                          film_thickness=it.film_thickness,
                          substrate_thickness=it.substrate_thickness)
    iface = build_interface(search, match_index=it.match, termination_index=it.termination,
                            gap_A=it.gap_A, vacuum_A=it.vacuum_A)
    sections = catalog_sections(iface, spec.species, band_thickness_A=spec.band_thickness_A)
    planned: list[PlannedHop] = []
    seen: set[str] = set()

    def add(pair, origin: str) -> None:
        record = pair.hop.record()
        if record["event_key"] in seen:
            return
        seen.add(record["event_key"])
        record.update(origin=origin, supercell=list(pair.supercell),
                      n_atoms=len(pair.initial.structure))
        planned.append(PlannedHop(record, pair.initial.structure, pair.final.structure, origin))

    hosts = {h["name"]: h["initial_species"] for h in sections["hosts"]}
    bulks = {iface.interface.substrate_name: sub, iface.interface.film_name: film}
    for host, native in hosts.items():
        bulk = bulks[host]
        native_hops = enumerate_hops(bulk, native).hops
        for hop in native_hops:
            add(hop_endpoints(bulk, hop, spec.min_image_distance_A), "bulk")
        for species in spec.species:
            if species != native:
                pair = hop_endpoints(bulk, native_hops[0], spec.min_image_distance_A)
                add(impurity_endpoints(pair, species), "solute")
    for hop in enumerate_hops(iface, spec.species,
                              band_thickness_A=spec.band_thickness_A).hops:
        if hop.initial_region != hop.final_region or ":interface" in hop.event_key:
            add(hop_endpoints(iface, hop, spec.min_image_distance_A), "interface")
    return planned, sections


@dataclass
class CampaignResult:
    """A finished local campaign: the assembled catalog, the report and every hop's result.

    ``folder`` holds the same on disk (``catalog.json``, ``report.json``, ``results/``, the
    jobflow store a rerun resumes from).
    """

    folder: Path
    catalog: Catalog
    report: dict[str, Any]
    results: list[HopResult]

    @property
    def failed(self) -> list[HopResult]:
        """The hops without a usable result (each says why in ``failure_reason``)."""
        return [r for r in self.results if not r.succeeded]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the catalog file's content, the report and the hop results."""
        return {"folder": str(self.folder), "catalog": self.catalog.to_json_dict(),
                "report": self.report,
                "results": [r.model_dump(mode="json") for r in self.results]}


def run_campaign(spec: CampaignSpec | str | os.PathLike[str], out_dir: str | Path, *,
                 progress: Callable[[int, int, PlannedHop, str], None] | None = None,
                 only: list[int] | None = None, workers: int = 1) -> CampaignResult:
    """Run (or resume) a campaign locally in ``out_dir`` (see the module docstring).

    ``spec`` is a :class:`CampaignSpec` or a campaign YAML file. ``only`` restricts the run to
    these hop indices (the rest are neither run nor assembled); used to split a campaign, and
    by the tests to interrupt one. ``workers`` > 1 computes that many hops at a time, each in
    a process of its own (a hop's result does not depend on it: each hop has its own store and
    job folders); give each process one core (one BLAS/torch thread), as the demo does. The
    process's warning filters are left as they were.
    """
    import warnings

    if not isinstance(spec, CampaignSpec):
        spec = load_campaign(spec)
    with warnings.catch_warnings():
        # monty (via jobflow) warns that its cd() is deprecated on every job
        warnings.filterwarnings("ignore", message="cd is deprecated", category=FutureWarning)
        raw = _run_campaign(spec, out_dir, progress, only, workers)
    from kmcflow.kmc.catalog import catalog_from_data
    from kmcflow.workflows.results import HopResult

    folder = Path(out_dir).resolve()
    catalog = catalog_from_data(raw["catalog"], folder / "catalog.json")
    return CampaignResult(folder, catalog, raw["report"],
                          [HopResult.model_validate(r) for r in raw["results"]])


def _run_campaign(spec: CampaignSpec, out_dir: str | Path,
                  progress: Callable[[int, int, PlannedHop, str], None] | None,
                  only: list[int] | None, workers: int = 1) -> dict[str, Any]:
    from jobflow import run_locally

    from kmcflow.workflows.calculators import load_calculator_config
    from kmcflow.workflows.flows import assemble_job

    check_output_folder(out_dir, "campaign", reuse=True)  # a campaign folder continues
    out = Path(out_dir).resolve()
    if spec.interface is None or spec.references:
        raise ConfigError("`campaign run` computes the hops of an interface; references run as "
                          "tasks of a campaign folder", field="references",
                          hint="use `kmcflow campaign prepare` or `campaign submit`")
    config = load_calculator_config(spec.calculator)
    check_campaign_ready(spec, config, sorted(set(spec.species)))
    planned, sections = plan_hops(spec)
    bad = sorted(i for i in (only or []) if not 0 <= i < len(planned))
    if bad:
        raise ConfigError(f"no hops {bad} in this campaign (it has {len(planned)})",
                          field="--only", hint=f"choose among 0-{len(planned) - 1}")
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a whole number >= 1, got {workers!r}",
                          field="--workers", hint="e.g. --workers 2")
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, "campaign")
    chosen = [(k, p) for k, p in enumerate(planned) if only is None or k in only]
    outcomes = compute_hops(spec, config, chosen, out, progress, workers)
    results = [result for result, _ in outcomes]
    computed = sum(1 for _, was_computed in outcomes if was_computed)
    reused = len(outcomes) - computed
    options = {"conditions": spec.conditions_record(),
               "allow_mixed_theory": spec.allow_mixed_theory}
    assemble = assemble_job(results, sections, spec.name, options)
    store = campaign_store(out / "store" / "assembly")
    try:
        run_locally(assemble, store=store, create_folders=True, root_dir=str(out / "jobs"),
                    log=False, ensure_success=True)
        assembled = store.get_output(assemble.uuid, load=True)
    except RuntimeError:  # the assembly raised a KmcflowError: say it plainly
        from kmcflow.workflows.assembly import assemble_catalog, failure_list

        try:
            catalog, report = assemble_catalog(results, sections, name=spec.name, **options)
        except KmcflowError:  # nothing to assemble: still leave the report of the failures
            write_json(out / "report.json", {
                "computed": computed, "reused": reused, "n_planned": len(planned),
                "failed": failure_list(results)})
            raise
        assembled = {"catalog": catalog, "report": report}
    catalog, report = assembled["catalog"], assembled["report"]
    report.update(computed=computed, reused=reused, n_planned=len(planned))
    write_json(out / "catalog.json", catalog)
    write_json(out / "report.json", report)
    return {"catalog": catalog, "report": report, "results": results}


def read_results(folder: str | Path) -> list[dict[str, Any]]:
    """Read exported hop results back, in hop order.

    Each is checked against the :class:`~kmcflow.workflows.results.HopResult` schema (a file
    that does not fit is named) and returned as its JSON dict.
    """
    from pydantic import ValidationError

    from kmcflow.workflows.results import HopResult

    files = sorted(Path(folder).glob("hop_*.json"))
    if not files:
        raise KmcflowError("no hop results in the folder", file=str(folder),
                           hint="run the campaign first")
    from kmcflow.readers import read_json

    results = []
    for f in files:
        data = read_json(f, error=KmcflowError, what="hop result")
        try:
            HopResult.model_validate(data)
        except ValidationError as exc:
            raise settings_error(exc, model=HopResult, file=str(f),
                                 error=KmcflowError) from exc
        results.append(data)
    return results
