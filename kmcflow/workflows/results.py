"""The result of each calculation of a hop: one pydantic model each, with a JSON schema.

- :class:`RelaxResult`: a relaxed endpoint (the plain function's; the jobflow
  :class:`~kmcflow.workflows.makers.RelaxMaker` keeps atomate2's ``AseStructureTaskDoc`` as its
  document and :meth:`RelaxResult.from_task_doc` reads it);
- :class:`HopNebResult`: a relaxed band, emmet's ``NebResult`` extended with what a catalog
  needs; returned by :func:`kmcflow.workflows.neb.relax_band` and by ``NebMaker`` alike;
- :class:`PrefactorResult`: a Vineyard prefactor and how it was obtained; returned by
  :func:`kmcflow.workflows.prefactor.vineyard_prefactor` and by ``PrefactorMaker`` alike;
- :class:`HopResult`: the result of one hop (``result.json`` of ``kmcflow barrier``, a
  campaign's ``results/hop_NNN.json``, the output of the hop flow's last job). Its JSON form
  (``model_dump(mode="json")``) has exactly the keys these files have always had, so
  ``HopResult.model_validate`` reads files written before it existed.

A model computed in this process keeps its ASE structures (``atoms()``, the ``band`` of a
:class:`HopResult`) outside the serialised fields; read back from JSON it has none.
"""

from __future__ import annotations

from typing import Any, Literal

from emmet.core.neb import NebResult
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

FAILURE_REASONS = ("not_converged", "no_interior_maximum", "unequal_endpoints",
                   "calculator_error")
"""Why a band gives no barrier (reported, never raised)."""
PREFACTOR_ROUTES = ("vineyard", "vineyard_tangent_projected", "fallback", "failed")
"""How a prefactor was obtained (see :mod:`kmcflow.workflows.prefactor`)."""


class RelaxResult(BaseModel):
    """A relaxed endpoint (energy in eV)."""

    energy_eV: float
    converged: bool
    steps: int = 0
    force_calls: int = 0
    force_calls_before_resume: int = Field(0, description=(
        "Force calls of the killed runs this one continued."))
    _atoms: Any = PrivateAttr(None)

    @classmethod
    def with_atoms(cls, atoms, **fields: Any) -> RelaxResult:
        """A result that keeps its relaxed ASE structure (:attr:`atoms`)."""
        result = cls(**fields)
        result._atoms = atoms
        return result

    @property
    def atoms(self):
        """The relaxed ASE structure (None when the result was read back, not computed)."""
        return self._atoms

    @classmethod
    def from_task_doc(cls, doc) -> RelaxResult:
        """From atomate2's relaxation document (the output of ``RelaxMaker``).

        The force calls are read from its ``force_calls=`` and ``force_calls_before_resume=``
        tags (see ``RelaxMaker.make``).
        """
        tags = dict(t.split("=", 1) for t in (getattr(doc, "tags", None) or []) if "=" in t)
        energy = getattr(getattr(doc, "output", None), "energy", None)
        converged = getattr(doc, "is_force_converged", None)
        return cls(energy_eV=float(energy) if energy is not None else float("nan"),
                   converged=bool(converged) if converged is not None else True,
                   force_calls=int(tags.get("force_calls", 0)),
                   force_calls_before_resume=int(tags.get("force_calls_before_resume", 0)))


class HopNebResult(NebResult):
    """A relaxed band: emmet's ``NebResult`` plus what a catalog needs from a band.

    From emmet: ``images``, ``energies`` (eV), ``forward_barrier`` and ``reverse_barrier`` (eV,
    read from the climbing image), ``state``, ``tags``.
    """

    force_calls: int = 0
    converged: bool = False
    failure_reason: Literal[FAILURE_REASONS] | None = None  # type: ignore[valid-type]
    failure_message: str = ""
    saddle_index: int | None = None
    tangent: list[list[float]] | None = Field(None, description=(
        "Unit tangent of the band at the climbing image, (n_atoms, 3)."))
    settings: dict[str, Any] = Field(default_factory=dict, description=(
        "The band's settings as run, and its resume notes (resumed_from_stage, "
        "force_calls_before_resume, checkpoint_note)."))
    calculator: dict[str, Any] = Field(default_factory=dict)
    _atoms: list | None = PrivateAttr(None)

    @classmethod
    def from_images(cls, images: list, **fields: Any) -> HopNebResult:
        """A result of the ASE ``images`` (stored as pymatgen structures, kept as given)."""
        from pymatgen.io.ase import AseAtomsAdaptor

        tangent = fields.pop("tangent", None)
        result = cls(images=[AseAtomsAdaptor.get_structure(im) for im in images],
                     tangent=None if tangent is None else [list(map(float, row))
                                                           for row in tangent],
                     **fields)
        result._atoms = list(images)
        return result

    def atoms(self) -> list:
        """The band as ASE Atoms (the computed ones, or converted from ``images``)."""
        if self._atoms is None:
            from pymatgen.io.ase import AseAtomsAdaptor

            self._atoms = [AseAtomsAdaptor.get_atoms(s) for s in (self.images or [])]
        return self._atoms

    @property
    def succeeded(self) -> bool:
        """The band gave a barrier (no failure reason)."""
        return self.failure_reason is None


class _Document(BaseModel):
    """A result that refuses unknown fields but reads monty's ``@module``/``@class`` markers.

    A jobflow store keeps them on every model it stored.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _without_monty_markers(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(str(k).startswith("@") for k in data):
            return {k: v for k, v in data.items() if not str(k).startswith("@")}
        return data


class PrefactorResult(_Document):
    """A Vineyard prefactor and how it was obtained.

    Frequencies in THz (negative = imaginary), rounded to 5 decimals.
    """

    prefactor_Hz: float | None = None
    prefactor_route: Literal[PREFACTOR_ROUTES] = "failed"  # type: ignore[valid-type]
    indices: list[int] = Field(default_factory=list, description="The atoms that vibrate.")
    n_imaginary_saddle: int = 0
    initial_frequencies_THz: list[float] = Field(default_factory=list)
    saddle_frequencies_THz: list[float] = Field(default_factory=list)
    final_frequencies_THz: list[float] = Field(default_factory=list)
    reverse_prefactor_Hz: float | None = None
    flagged: bool = Field(False, description="The 1e13 Hz fallback was used.")
    failure: str | None = None
    force_calls: int = 0

    @field_validator("initial_frequencies_THz", "saddle_frequencies_THz",
                     "final_frequencies_THz")
    @classmethod
    def _rounded(cls, value: list[float]) -> list[float]:
        return [round(float(f), 5) for f in value]

    @property
    def succeeded(self) -> bool:
        """A prefactor was obtained (the flagged fallback counts)."""
        return self.prefactor_Hz is not None


_BOOKKEEPING = ("job_id", "job_index", "attempt", "exception", "warm_start",
                "warm_start_force_calls")


class HopResult(_Document):
    """The result of one hop: energies in eV, prefactors in Hz, force calls counted.

    Every field has a default so that the short record of a hop whose job raised
    (``event_key``, ``hop``, ``failure_reason``, ``failure_message``, ``exception``) is one too.
    ``job_id``, ``job_index``, ``attempt`` and ``exception`` are written only when set.
    """

    hop: dict[str, Any] = Field(default_factory=dict, description=(
        "The hop's record (event key, sites, length_A, origin, files, ...)."))
    event_key: str | None = None
    forward_barrier_eV: float | None = None
    reverse_barrier_eV: float | None = None
    kra_eV: float | None = Field(None, description="E_saddle - (E_initial + E_final) / 2.")
    reaction_energy_eV: float | None = Field(None, description="E_final - E_initial.")
    energies_eV: list[float | None] = Field(default_factory=list, description=(
        "Energy of every image of the band, endpoints included."))
    saddle_index: int | None = None
    spline: dict[str, float | None] | None = Field(None, description=(
        "emmet's spline barriers, for comparison."))
    prefactor_Hz: float | None = None
    reverse_prefactor_Hz: float | None = None
    prefactor_route: str | None = None
    prefactor: PrefactorResult | None = None
    converged: bool = False
    neb_converged: bool = False
    endpoints_converged: list[bool] = Field(default_factory=list)
    force_calls: int = Field(0, description="This run's force calls (all steps of the hop).")
    force_calls_before_resume: int = Field(0, description=(
        "Force calls of the killed runs this one continued."))
    force_calls_all_runs: int = 0
    neb_force_calls: int = 0
    failure_reason: str | None = None
    failure_message: str = ""
    neb_settings: dict[str, Any] = Field(default_factory=dict)
    calculator: dict[str, Any] = Field(default_factory=dict)
    code_versions: dict[str, str] = Field(default_factory=dict)
    job_id: str | None = Field(None, description="The jobflow job of the stored result.")
    job_index: int | None = Field(None, description="The hop's index in its campaign.")
    attempt: str | None = Field(None, description="The HPC task attempt that computed it.")
    exception: dict[str, Any] | None = Field(None, description="The exception of a job "
                                             "that raised (type, message, traceback).")
    warm_start_force_calls: int | None = Field(None, description=(
        "Force calls of the warm-start calculator (endpoints and band); force_calls counts "
        "only the calculator's own. Written when the hop had a warm start."))
    warm_start: dict[str, Any] | None = Field(None, description=(
        "The warm start: its calculator, its barrier and whether its band converged."))
    _band: HopNebResult | None = PrivateAttr(None)

    @model_serializer(mode="wrap")
    def _without_unset_bookkeeping(self, handler: SerializerFunctionWrapHandler):
        data = handler(self)
        for key in _BOOKKEEPING:
            if data.get(key) is None:
                data.pop(key, None)
        return data

    @property
    def succeeded(self) -> bool:
        """The hop gave a barrier and a prefactor (no failure reason)."""
        return (self.failure_reason is None and self.forward_barrier_eV is not None
                and self.prefactor_Hz is not None)

    @property
    def band(self) -> HopNebResult | None:
        """The band this result was computed from (None when it was read back from JSON)."""
        return self._band

    def with_band(self, band: HopNebResult) -> HopResult:
        """Keep ``band`` with this result (for the band file and the profile plot)."""
        self._band = band
        return self
