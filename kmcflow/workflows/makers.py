"""jobflow makers of one hop, following atomate2: one dataclass ``Maker`` per calculation.

Each maker's settings are one typed field, the model the plain functions take
(:mod:`kmcflow.workflows.settings`), and each returns the result model of its calculation
(:mod:`kmcflow.workflows.results`):

- :class:`RelaxMaker` (``settings: RelaxSettings``) subclasses atomate2's ``AseRelaxMaker``
  (fixed cell, fixed atoms kept as ``FixAtoms`` from pymatgen ``selective_dynamics``); its
  output is atomate2's ``AseStructureTaskDoc``, read by ``RelaxResult.from_task_doc``. The
  calculator comes from a kmcflow calculator config per structure. With ``checkpoint_dir``
  the last evaluated positions are saved, and a rerun of the same input continues from them
  (:mod:`kmcflow.workflows.resume`).
- :class:`NebMaker` (``settings: NebSettings``) subclasses atomate2's
  ``AseNebFromImagesMaker`` and keeps its job, its ``NebResult`` schema and its data
  handling, but runs kmcflow's two-stage band (:func:`kmcflow.workflows.neb.relax_band`: plain
  NEB then climbing image, an explicit tangent method, one calculator folder per image, force
  calls counted, failure reasons), because atomate2 0.1.5 runs a single stage without
  climbing image by default, shares one calculator folder between images (file-based DFT
  codes overwrite each other) and counts no force calls. Its output is
  :class:`~kmcflow.workflows.results.HopNebResult`, emmet's ``NebResult`` extended.
- :class:`PrefactorMaker` (``settings: PrefactorSettings``): the Vineyard prefactor (atomate2
  has none), a :class:`~kmcflow.workflows.results.PrefactorResult`.
- :func:`interpolate_job` and :func:`hop_result_job`: the IDPP band and the
  :class:`~kmcflow.workflows.results.HopResult`.

The makers serialise as every jobflow maker does (``as_dict``/``from_dict`` through monty,
which writes a pydantic settings field with its ``@module`` and ``@class`` and validates it
back), so a flow can be stored and run elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from atomate2.ase.jobs import _ASE_DATA_OBJECTS, AseRelaxMaker
from atomate2.ase.neb import AseNebFromImagesMaker
from jobflow import Maker, job
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from kmcflow.errors import ConfigError
from kmcflow.workflows.calculators import (
    load_calculator_config,
    make_calculator,
)
from kmcflow.workflows.hop import hop_result, relax_band_with, run_prefactor
from kmcflow.workflows.neb import counted, interpolate_band
from kmcflow.workflows.results import HopNebResult, HopResult, PrefactorResult, RelaxResult
from kmcflow.workflows.resume import checkpoint_path, resume_positions, saving_positions
from kmcflow.workflows.settings import (
    NebSettings,
    PrefactorSettings,
    RelaxSettings,
    as_settings,
)
from kmcflow.workflows.warm_start import carry_band, warm_start_record


def _note_given(maker, name: str, value) -> None:
    """Remember a value given for an atomate2 field that ``settings`` holds.

    The dataclass default (atomate2's, or the property object itself) means nothing was given.
    """
    import dataclasses

    defaults = {f.name: f.default for f in dataclasses.fields(type(maker))}
    if isinstance(value, property) or (name in defaults and value == defaults[name]):
        return
    maker.__dict__.setdefault("_given", {})[name] = value


def _refuse_shadowed(maker, name: str, effective, fix: str) -> None:
    given = maker.__dict__.get("_given", {})
    if name in given and given[name] != effective:
        raise ConfigError(f"{type(maker).__name__}.{name} = {given[name]!r} would be ignored: "
                          f"the maker's settings give {effective!r}", field=name,
                          hint=f"set it through settings={fix}")


def _atoms(structure):
    return AseAtomsAdaptor.get_atoms(structure) if isinstance(structure, Structure) else structure


@dataclass
class RelaxMaker(AseRelaxMaker):
    """Fixed-cell relaxation of an endpoint with a kmcflow calculator config."""

    name: str = "kmcflow relax"
    calculator_config: dict = field(default_factory=lambda: {"name": "emt"})
    relax_cell: bool = False
    optimizer_kwargs: dict = field(default_factory=lambda: {"optimizer": "BFGS"})
    checkpoint_dir: str | None = None
    settings: RelaxSettings = field(default_factory=RelaxSettings)

    def __post_init__(self) -> None:
        """Take the settings as the model (a mapping from a flow file is validated).

        atomate2's ``steps`` and ``relax_kwargs["fmax"]`` are read from ``settings``, the one
        place they are set: a different value given for either is refused, not ignored.
        """
        super().__post_init__()
        self.settings = as_settings(RelaxSettings, self.settings, "settings")
        _refuse_shadowed(self, "steps", self.steps, "RelaxSettings(steps=...)")
        _refuse_shadowed(self, "fmax", self.settings.fmax_eV_per_A,
                         "RelaxSettings(fmax_eV_per_A=...)")

    @property
    def steps(self) -> int:
        """Optimizer steps: ``settings.steps``, or 0 (a single point) when not enabled."""
        return self.settings.steps if self.settings.enabled else 0

    @steps.setter
    def steps(self, value) -> None:
        _note_given(self, "steps", value)

    @property
    def relax_kwargs(self) -> dict:
        """atomate2's relaxer keywords, ``fmax`` from ``settings``."""
        return {**getattr(self, "_relax_extra", {}), "fmax": self.settings.fmax_eV_per_A}

    @relax_kwargs.setter
    def relax_kwargs(self, value: dict) -> None:
        value = value if isinstance(value, dict) else {}
        if "fmax" in value:
            _note_given(self, "fmax", value["fmax"])
        self._relax_extra = {k: v for k, v in value.items() if k != "fmax"}

    def _get_calculator(self):
        """A stand-in naming the code; :meth:`run_ase` builds the real one per structure."""
        from types import SimpleNamespace

        return SimpleNamespace(name=load_calculator_config(self.calculator_config).name)

    def run_ase(self, mol_or_struct, prev_dir=None):
        """Build the calculator for this structure, then relax as atomate2 does."""
        config = load_calculator_config(self.calculator_config)
        atoms = _atoms(mol_or_struct)
        calculator = make_calculator(config, atoms, Path.cwd() / "relax")
        before = 0
        if self.checkpoint_dir is not None and isinstance(mol_or_struct, Structure):
            path = checkpoint_path(self.checkpoint_dir, atoms)
            resumed = resume_positions(path, atoms)
            if resumed is not None:  # a killed run of this input got this far
                before = resumed
                mol_or_struct = Structure(mol_or_struct.lattice, mol_or_struct.species,
                                          atoms.positions, coords_are_cartesian=True,
                                          site_properties=mol_or_struct.site_properties)
            calculator = saving_positions(calculator, path, calls_before=before)
        counter = [0]
        self._calculator = counted(calculator, counter)
        self._force_calls = (counter, before)
        return super().run_ase(mol_or_struct, prev_dir=prev_dir)

    @job(data=_ASE_DATA_OBJECTS)
    def make(self, mol_or_struct, prev_dir=None):
        """Relax as atomate2's maker does; the document's tags carry the force calls.

        ``force_calls=N`` (this run) and ``force_calls_before_resume=M`` (the runs a kill
        interrupted), read back by :meth:`RelaxResult.from_task_doc`.
        """
        doc = AseRelaxMaker.make.original(self, mol_or_struct, prev_dir)
        counter, before = self._force_calls
        doc.tags = [*(doc.tags or []), f"force_calls={counter[0]}",
                    f"force_calls_before_resume={before}"]
        return doc


@dataclass
class NebMaker(AseNebFromImagesMaker):
    """Two-stage CI-NEB of an interpolated band (see the module docstring).

    With ``checkpoint_dir`` the band is saved after every step and a rerun continues from it
    (:func:`kmcflow.workflows.neb.relax_band`); ``checkpoint_identity`` (``{"hop": [digests of
    the unrelaxed endpoints]}``) tells the checkpoint which hop it belongs to.
    """

    name: str = "kmcflow CI-NEB"
    calculator_config: dict = field(default_factory=lambda: {"name": "emt"})
    settings: NebSettings = field(default_factory=NebSettings)
    checkpoint_dir: str | None = None
    checkpoint_identity: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Take the settings as the model (a mapping from a flow file is validated).

        atomate2's own band fields (``neb_kwargs``, ``relax_kwargs``, ``optimizer_kwargs``,
        ...) are not used: the band runs with ``settings``. ``steps`` is read from them; a
        different value given for it is refused, not ignored.
        """
        super().__post_init__()
        self.settings = as_settings(NebSettings, self.settings, "settings")
        _refuse_shadowed(self, "steps", self.steps, "NebSettings(steps=...)")

    @property
    def steps(self) -> int:
        """Optimizer steps per stage: ``settings.steps``."""
        return self.settings.steps

    @steps.setter
    def steps(self, value) -> None:
        _note_given(self, "steps", value)

    def run_ase(self, images, prev_dir=None) -> HopNebResult:
        """Relax the band with kmcflow's engine and return the extended emmet document.

        The band's image count is the one given (``settings.n_images`` is what
        :func:`interpolate_job` makes in a hop flow).
        """
        config = load_calculator_config(self.calculator_config)
        atoms = [_atoms(im) for im in images]
        return relax_band_with(config, atoms, self.settings, Path.cwd(),
                               checkpoint=self.checkpoint_dir,
                               identity=self.checkpoint_identity)


@dataclass
class PrefactorMaker(Maker):
    """Vineyard prefactor at the band's initial image and its climbing image."""

    name: str = "kmcflow prefactor"
    calculator_config: dict = field(default_factory=lambda: {"name": "emt"})
    settings: PrefactorSettings = field(default_factory=PrefactorSettings)

    def __post_init__(self) -> None:
        """Take the settings as the model (a mapping from a flow file is validated)."""
        self.settings = as_settings(PrefactorSettings, self.settings, "settings")

    @job(output_schema=PrefactorResult)
    def make(self, neb: HopNebResult) -> PrefactorResult:
        """Finite-difference Hessians and the Vineyard ratio (or a recorded failure)."""
        config = load_calculator_config(self.calculator_config)
        return run_prefactor(None, neb, config, self.settings, Path.cwd())


@job
def interpolate_job(initial, final, n_images: int, method: str) -> list[Structure]:
    """The interpolated band between two relaxed endpoints (fixed atoms kept)."""
    images = interpolate_band(_atoms(initial), _atoms(final), n_images, method)
    return [AseAtomsAdaptor.get_structure(a) for a in images]


@job
def carry_band_job(cheap_band: HopNebResult, initial, final) -> list[Structure]:
    """A warm start's cheap band carried onto the relaxed endpoints (:func:`carry_band`)."""
    images = carry_band(cheap_band.atoms(), _atoms(initial), _atoms(final))
    return [AseAtomsAdaptor.get_structure(a) for a in images]


@job(output_schema=HopResult)
def hop_result_job(hop: dict, relax_initial, relax_final, neb: HopNebResult,
                   prefactor: PrefactorResult, calculator: dict,
                   warm_start: list | None = None) -> HopResult:
    """The result of one hop (the same :class:`HopResult` ``kmcflow barrier`` writes).

    ``warm_start``: the warm start's relaxed endpoints and band, ``[initial, final, band]``.
    """
    config = load_calculator_config(calculator)
    images = neb.atoms()
    warm = None
    if warm_start is not None and config.warm_start is not None:
        ini, fin, band = warm_start
        warm = warm_start_record(config.warm_start.name, RelaxResult.from_task_doc(ini),
                                 RelaxResult.from_task_doc(fin), HopNebResult.model_validate(
                                     band) if isinstance(band, dict) else band)
    return hop_result(hop, RelaxResult.from_task_doc(relax_initial),
                      RelaxResult.from_task_doc(relax_final), neb, prefactor, config,
                      images[0] if images else None, warm_start=warm)
