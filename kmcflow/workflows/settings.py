"""The settings of each calculation of a hop: one pydantic model each, the only home of defaults.

:class:`RelaxSettings` (an endpoint relaxation), :class:`NebSettings` (the band) and
:class:`PrefactorSettings` (the Vineyard prefactor) are used unchanged by the plain functions
(:func:`kmcflow.workflows.hop.compute_hop`, :func:`kmcflow.workflows.neb.relax_band`), as typed
fields of the jobflow makers (``NebMaker(settings=NebSettings(...))``, as atomate2 types its
makers' fields), as the ``relax``, ``neb`` and ``prefactor`` sections of a campaign file, and for
the defaults of the ``kmcflow barrier`` flags: a default changed here changes it everywhere.

Every model is frozen, refuses unknown fields (a misspelt YAML key is an error, not ignored) and
NaN or infinite numbers (YAML writes ``.nan`` and ``.inf``). Units are in the field names. A bad
value raises pydantic's ``ValidationError``; :func:`settings_error` turns it into the one-line
:class:`~kmcflow.errors.ConfigError` that names the field (or the command-line flag) and a fix.

Every field may be set from a campaign file, ``batched`` included: it only chooses whether the
interior images are evaluated in one batch when the calculator can, and turning it off is the
way round a batch that does not fit in (GPU) memory.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from kmcflow.errors import ConfigError, KmcflowError

MAX_IMAGES = 64
"""More intermediate images than this resolve no barrier better and cost a force call each."""
OPTIMIZERS = ("auto", "FIRE", "BFGS", "MDMin")
"""Band optimizers: ASE's, or ``auto`` (:func:`band_optimizer`)."""
AUTO_BFGS_MAX_DOF = 1500
"""``auto`` takes BFGS up to this many free coordinates of the band (3 x free atoms x interior
images) with a cheap calculator, FIRE above: ASE's BFGS diagonalises the band's Hessian at
every step, 2.3 s of optimizer time per step for 255 atoms x 4 images (3060 coordinates)
against 0.1 ms for FIRE, while EMT's forces for that band take 0.11 s
(``python benchmarks/bench_neb.py --overhead``)."""
SURROGATES = ("none", "gp")
"""Surrogates of the band's energy surface (:mod:`kmcflow.workflows.surrogate`)."""
NEB_METHODS = ("improvedtangent", "aseneb", "eb", "spline", "string")
"""ASE NEB tangent methods."""


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class RelaxSettings(_Settings):
    """Fixed-cell relaxation of an endpoint (fixed atoms stay fixed), BFGS."""

    fmax_eV_per_A: float = Field(0.02, gt=0, examples=[0.02],
                                 description="Force threshold, eV/Angstrom.")
    steps: int = Field(300, ge=1, examples=[300], description="Optimizer steps at most.")
    enabled: bool = Field(True, description="Relax at all (false: a single point each).")


class NebSettings(_Settings):
    """How a band is relaxed: a plain NEB to a loose threshold, then the climbing image."""

    n_images: int = Field(4, ge=1, le=MAX_IMAGES, examples=[4], description=(
        "Intermediate images (endpoints excluded). Even by default: with an odd number on a "
        "symmetric hop the climbing image starts exactly at the midpoint, which can be a "
        "shallow local minimum of a machine-learned potential."))
    fmax_eV_per_A: float = Field(0.05, gt=0, examples=[0.05], description=(
        "Force threshold of the climbing-image stage, eV/Angstrom."))
    plain_fmax_eV_per_A: float = Field(0.3, gt=0, examples=[0.3], description=(
        "Force threshold of the plain stage that comes first, eV/Angstrom."))
    steps: int = Field(400, ge=1, examples=[400], description="Optimizer steps per stage.")
    spring_eV_per_A2: float = Field(0.1, gt=0, examples=[0.1], description=(
        "Spring constant between images, eV/Angstrom^2."))
    method: Literal[NEB_METHODS] = Field(  # type: ignore[valid-type]
        "improvedtangent", description="ASE NEB tangent method (always passed explicitly).")
    optimizer: Literal[OPTIMIZERS] = Field(  # type: ignore[valid-type]
        "auto", description=(
            "ASE optimizer of the band, or auto: BFGS (fewest force calls) with a DFT code or "
            "a band of at most AUTO_BFGS_MAX_DOF free coordinates, FIRE (no Hessian: "
            "milliseconds per step) for a larger band on a cheap calculator."))
    interpolation: Literal["idpp", "linear"] = Field(
        "idpp", description="Initial band: IDPP or linear (minimum image either way).")
    symmetric: bool = Field(False, description=(
        "The hop is symmetric (initial and final equivalent): endpoints whose energies differ "
        "by more than endpoint_tolerance_eV fail with unequal_endpoints."))
    endpoint_tolerance_eV: float = Field(0.01, ge=0, examples=[0.01], description=(
        "Largest endpoint energy difference of a symmetric hop, eV."))
    batched: bool = Field(True, description=(
        "Evaluate the interior images in one batch when the calculator can (CHGNet)."))
    surrogate: Literal[SURROGATES] = Field(  # type: ignore[valid-type]
        "none", description=(
            "Relax the band on a surrogate of the energy surface trained on the expensive "
            "calls made so far, calling the expensive calculator only where the surrogate is "
            "uncertain and to verify convergence: none, or gp (a Gaussian process with "
            "derivative observations; on top of the warm-start calculator when there is one)."))
    surrogate_max_calls: int = Field(200, ge=3, examples=[200], description=(
        "Expensive force calls the surrogate band may spend (endpoints included) before it "
        "fails as not_converged."))

    @field_validator("n_images", mode="wrap")
    @classmethod
    def _image_count(cls, value: Any, handler):
        try:
            return handler(value)
        except ValidationError as exc:
            if exc.errors()[0]["type"] not in ("greater_than_equal", "less_than_equal"):
                raise
            raise PydanticCustomError(
                "image_count", "a band needs 1 to {most} intermediate images, got {got}",
                {"most": MAX_IMAGES, "got": value}) from exc


def band_optimizer(choice: str, free_coordinates: int, expensive_calls: bool) -> str:
    """The ASE optimizer a band runs with: ``choice``, or what ``auto`` picks.

    ``auto`` keeps BFGS wherever force calls dominate (a DFT code, or a band small enough that
    its Hessian costs little) and takes FIRE for a large band on a cheap calculator, whose
    BFGS steps would cost seconds of linear algebra each (see :data:`AUTO_BFGS_MAX_DOF`).
    """
    if choice != "auto":
        return choice
    if expensive_calls or free_coordinates <= AUTO_BFGS_MAX_DOF:
        return "BFGS"
    return "FIRE"


class PrefactorSettings(_Settings):
    """Which atoms vibrate, the finite-difference step and whether a fallback is allowed."""

    radius_A: float = Field(0.0, ge=0, examples=[0.0], description=(
        "Vibrate the free atoms within this distance of the moving atom too, Angstrom."))
    allow_fallback: bool = Field(False, description=(
        "Use a flagged 1e13 Hz prefactor when the saddle is not a first-order saddle."))
    delta_A: float = Field(0.01, gt=0, examples=[0.01], description=(
        "Finite-difference displacement of the Hessians, Angstrom."))


SettingsT = TypeVar("SettingsT", bound=BaseModel)


def _is_model(annotation: Any) -> bool:
    try:
        return isinstance(annotation, type) and issubclass(annotation, BaseModel)
    except TypeError:  # a generic alias such as list[Model]
        return False


def _field_at(model: Any, loc: list[str]) -> Any:
    """The pydantic ``FieldInfo`` at ``loc`` (nested models followed), or None."""
    info = None
    for part in loc:
        if not _is_model(model):
            return None
        info = model.model_fields.get(part)
        if info is None:
            return None
        model = info.annotation
    return info


def settings_error(exc: ValidationError, *, model: type[BaseModel] | None = None,
                   file: str | None = None, prefix: str = "",
                   flags: dict[str, str] | None = None,
                   error: type[KmcflowError] = ConfigError) -> KmcflowError:
    """The first error of a ``ValidationError`` of ``model`` as one kmcflow error.

    The field is ``prefix`` + the dotted location (``neb.fmax_eV_per_A`` in a campaign file)
    or, when ``flags`` maps the field's name to a command-line flag, the flag. The fix is the
    field's example value (``e.g. --images 4``), its default for a choice, or the known fields
    for a misspelt one.
    """
    import typing

    first = exc.errors()[0]
    loc = [str(x) for x in first["loc"]]
    name = loc[-1] if loc else ""
    flag = (flags or {}).get(name)
    info = _field_at(model, loc) if loc else None
    example = None
    if info is not None:
        example = (info.examples or [None])[0]
        if example is None and typing.get_origin(info.annotation) is Literal:
            example = info.default
    hint = None if example is None else (f"e.g. {flag} {example}" if flag
                                         else f"e.g. {name}: {example}")
    above = _field_at(model, loc[:-1]) if len(loc) > 1 else None
    parent = model if len(loc) <= 1 else (above.annotation if above is not None else None)
    if first["type"] == "extra_forbidden" and _is_model(parent):
        hint = f"known fields: {', '.join(parent.model_fields)}"
    return error(first["msg"], file=file, field=flag or (prefix + ".".join(loc)) or None,
                 hint=hint)


def as_settings(model: type[SettingsT], value: Any, name: str) -> SettingsT:
    """``value`` as a ``model``: None gives the defaults, a mapping is validated, a model kept.

    A mapping that does not fit, or anything else, raises one :class:`ConfigError` naming
    ``name`` (the argument) and the field.
    """
    if value is None:
        return model()
    if isinstance(value, model):
        return value
    if isinstance(value, dict):
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            raise settings_error(exc, model=model, prefix=f"{name}.") from exc
    raise ConfigError(f"{name} must be a {model.__name__} or a mapping of its fields, got a "
                      f"{type(value).__name__}", field=name,
                      hint=f"e.g. {name}={model.__name__}() or {name}={{...}}")
