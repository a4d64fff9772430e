"""ASE calculators from one small, validated configuration.

A :class:`CalculatorConfig` names the code and the physics; :func:`make_calculator` turns it
into an ASE calculator for a given structure (DFT+U values, magnetic moments and k-points
depend on the atoms), and :func:`resolved_parameters` returns exactly what was passed, for the
provenance of every result. :func:`check_ready` finds a missing executable, pseudopotential
folder or a U value for an absent element before any job starts.

Codes: ``emt`` (ASE, metals); ``chgnet`` and ``sevenn`` (the ``ml`` extra; weights ship in
their wheels and are never downloaded); ``vasp``, ``espresso`` (Quantum ESPRESSO), ``gpaw`` and
``cp2k`` through ASE. DFT+U is always explicit per element (Dudarev, U_eff = U - J): give
``hubbard_U_eV`` as a mapping or the preset ``"materials_project"`` (Co 3.32, Cr 3.7, Fe 5.3,
Mn 3.9, Mo 4.38, Ni 6.2, V 3.25, W 6.2 eV; only the elements present get a U). Quantum
ESPRESSO gets the syntax its ``pw.x`` reads: ``lda_plus_u``/``Hubbard_U(i)`` up to QE 7.1
(Debian ships 6.7), the ``HUBBARD`` card from QE 7.2 on (the version from the config's
``espresso_version`` or from what ``pw.x`` prints; :func:`espresso_hubbard_card`). CP2K runs
through ASE in its shell mode (``cp2k.psmp -s`` by default); its ``CUTOFF`` is the density-grid
cutoff, ``cp2k_density_cutoff_Ry`` (400 Ry, CP2K's default), and the SCF threshold and the
smearing go into the input (:func:`cp2k_template`). A ``command`` may carry launchers and
arguments (``mpirun -np 24 pw.x -nk 2``): :func:`command_executable` finds the code in it.

Presets: ``slab`` follows the reference slab protocol (energy convergence 1e-5 eV, k-points
6x6x1 on the slab's 1x1 in-plane cell, scaled down for a supercell; the protocol's force
threshold of 0.02 eV/A is the relaxation's, ``relax: {fmax_eV_per_A: 0.02}``, the default);
``bulk`` uses a k-point density of 25 Angstrom (n_i = ceil(25 / |a_i|)).
"""

from __future__ import annotations

import math
import os
import shutil
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
)
from pydantic_core import PydanticCustomError

from kmcflow.errors import ConfigError

MATERIALS_PROJECT_U_EV = {"Co": 3.32, "Cr": 3.7, "Fe": 5.3, "Mn": 3.9, "Mo": 4.38, "Ni": 6.2,
                          "V": 3.25, "W": 6.2}
RY_EV = 13.605693122994
HARTREE_EV = 27.211386245988
K_B_EV_PER_K = 8.617333262e-5
CODES = ("emt", "chgnet", "sevenn", "vasp", "espresso", "gpaw", "cp2k")
DFT_CODES = ("vasp", "espresso", "gpaw", "cp2k")
_COMMAND_ENV = {"vasp": ("ASE_VASP_COMMAND", "VASP_COMMAND"), "espresso": ("ASE_ESPRESSO_COMMAND",),
                "cp2k": ("ASE_CP2K_COMMAND",), "gpaw": ()}
_PSEUDO_ENV = {"vasp": "VASP_PP_PATH", "espresso": "ESPRESSO_PSEUDO", "cp2k": "CP2K_DATA_DIR"}
# ASE drives CP2K through its shell mode (-s): the executable alone cannot run
_DEFAULT_COMMAND = {"vasp": "vasp_std", "espresso": "pw.x", "cp2k": "cp2k.psmp -s"}
_DEFAULT_PSEUDO_DIR = {"espresso": "/usr/share/espresso/pseudo", "cp2k": "/usr/share/cp2k"}
# programs that start the code (and their options) in a command such as
# "env OMP_NUM_THREADS=2 mpirun -np 4 pw.x -nk 2": skipped when looking for the executable
LAUNCHERS = ("mpirun", "mpiexec", "mpiexec.hydra", "orterun", "srun", "aprun", "ibrun", "jsrun",
             "prun", "env", "time", "nice", "numactl", "taskset", "stdbuf", "nohup", "timeout",
             "chrt", "hwloc-bind")
# how each code's executable is named (matched on the basename)
_EXECUTABLE_PREFIX = {"vasp": ("vasp",), "espresso": ("pw.x", "pw"), "cp2k": ("cp2k",)}
_L_OF = {"d": 2, "f": 3, "p": 1}
_F_ELEMENTS = {"Ce", "Pr", "Nd", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "U", "Np",
               "Pu"}


class CalculatorConfig(BaseModel):
    """The calculator a campaign uses (see the module docstring). Energies eV, lengths A."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["emt", "chgnet", "sevenn", "vasp", "espresso", "gpaw", "cp2k"]
    preset: Literal["bulk", "slab"] | None = None
    xc: str = "PBE"
    hubbard_U_eV: dict[str, float] | Literal["materials_project"] | None = None
    hubbard_U_source: dict[str, Any] | None = Field(None, description=(
        "Where the U values came from (``kmcflow calibrate-u`` writes the calibration, its "
        "target and reference): carried into every result's provenance."))
    spin_polarized: bool = False
    magnetic_moments: dict[str, float] = {}
    smearing_eV: Annotated[float, Field(ge=0)] = 0.05
    cutoff_eV: Annotated[float, Field(gt=0)] = 520.0
    kpoints: list[Annotated[int, Field(ge=1)]] | None = None
    kpoint_density_A: Annotated[float, Field(gt=0)] = 25.0
    energy_convergence_eV: Annotated[float, Field(gt=0)] = 1e-5
    command: str | None = None
    pseudo_dir: str | None = None
    pseudopotentials: dict[str, str] = {}
    model: str | None = None
    cp2k_density_cutoff_Ry: Annotated[float, Field(gt=0)] = 400.0
    espresso_version: Annotated[str, Field(pattern=r"^\d+\.\d+")] | None = None
    extra: dict[str, Any] = {}
    warm_start: CalculatorConfig | None = Field(None, description=(
        "A cheap calculator (a code name or a config of its own) that relaxes the endpoints "
        "and the band first; this calculator then refines them, and judges convergence."))

    @field_validator("warm_start", mode="before")
    @classmethod
    def _cheap_config(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        nested = (value.get("warm_start") if isinstance(value, dict)
                  else getattr(value, "warm_start", None))
        if nested is not None:
            raise PydanticCustomError("nested_warm_start", "a warm-start calculator cannot "
                                      "have a warm start of its own")
        return value

    @model_serializer(mode="wrap")
    def _without_unset_optionals(self, handler):
        # a config without these dumps exactly as before the fields existed, so the
        # cache keys and checkpoint identities of stored campaigns stay valid
        data = handler(self)
        if isinstance(data, dict):
            for name in ("warm_start", "hubbard_U_source"):  # unset: dumped as before them
                if data.get(name) is None:
                    data.pop(name, None)
        return data

    @property
    def is_dft(self) -> bool:
        """Whether this is a DFT code (files, executables, pseudopotentials)."""
        return self.name in DFT_CODES

    def identity(self) -> dict[str, Any]:
        """The dump that fixes results (cache keys, checkpoints): without provenance notes.

        ``hubbard_U_source`` says where U came from, not what was computed: the same U from
        another calibration folder reuses every stored result.
        """
        return self.model_dump(mode="json", exclude={"hubbard_U_source"})

    def without_warm_start(self) -> CalculatorConfig:
        """The calculator alone (a warm start plans a hop, not one calculation)."""
        return self.model_copy(update={"warm_start": None})


def load_calculator_config(data: Any, file: str | None = None) -> CalculatorConfig:
    """Validate a config given as a dict, a YAML/JSON file path or a bare code name."""
    if isinstance(data, CalculatorConfig):
        return data
    if isinstance(data, str | Path) and Path(data).suffix.lower() in (".yaml", ".yml", ".json"):
        from kmcflow.readers import read_yaml

        file = str(data)
        data = read_yaml(data, what="calculator config")  # JSON is YAML too
    elif isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, dict):
        raise ConfigError("a calculator config must be a mapping", file=file,
                          hint="e.g. {name: emt}")
    if data.get("name") not in CODES:
        raise ConfigError(f"unknown calculator {data.get('name')!r}", file=file, field="name",
                          hint=f"use one of {', '.join(CODES)}")
    if "force_convergence_eV_per_A" in data:
        raise ConfigError("force_convergence_eV_per_A is not a calculator setting (it was "
                          "never read)", file=file, field="force_convergence_eV_per_A",
                          hint="remove it; the relaxation threshold is relax: {fmax_eV_per_A} "
                          "in the campaign, or kmcflow barrier --relax-fmax")
    cheap = data.get("warm_start")
    if isinstance(cheap, str | Path) and Path(cheap).suffix.lower() in (".yaml", ".yml",
                                                                         ".json"):
        path = Path(cheap)
        if not path.is_absolute() and file is not None:  # relative to the file naming it
            path = Path(file).parent / path
        cheap = load_calculator_config(path)
        data = {**data, "warm_start": cheap}
    elif isinstance(cheap, dict):
        try:
            data = {**data, "warm_start": load_calculator_config(cheap)}
        except ConfigError as exc:
            raise ConfigError(exc.message, file=file, field=f"warm_start.{exc.field}"
                              if exc.field else "warm_start", hint=exc.hint) from exc
    preset = data.get("preset")
    if preset == "slab":
        data = {"energy_convergence_eV": 1e-5, **data}
    try:
        return CalculatorConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise ConfigError(first["msg"], file=file, field=where or None) from exc


def hubbard_u(config: CalculatorConfig, elements: list[str]) -> dict[str, float]:
    """U (eV) per element present; raise on a U given for an element that is absent."""
    if config.hubbard_U_eV is None:
        return {}
    if config.hubbard_U_eV == "materials_project":
        return {el: MATERIALS_PROJECT_U_EV[el] for el in elements if el in MATERIALS_PROJECT_U_EV}
    absent = sorted(set(config.hubbard_U_eV) - set(elements))
    if absent:
        raise ConfigError(f"U given for {', '.join(absent)}, which the structure does not have",
                          field="hubbard_U_eV", hint=f"the structure has {', '.join(elements)}")
    return {el: float(u) for el, u in config.hubbard_U_eV.items() if u != 0}


def u_shell(element: str) -> int:
    """Angular momentum of the +U shell: f for lanthanides/actinides, else d."""
    return 3 if element in _F_ELEMENTS else 2


def kpoints(config: CalculatorConfig, cell_lengths_A: list[float],
            supercell: tuple[int, int, int] = (1, 1, 1)) -> list[int]:
    """k-point mesh: explicit, the slab preset (6x6x1 per 1x1 cell), or the density rule."""
    if config.kpoints is not None:
        return list(config.kpoints)
    if config.preset == "slab":
        return [max(1, round(6 / supercell[0])), max(1, round(6 / supercell[1])), 1]
    return [max(1, math.ceil(config.kpoint_density_A / max(L, 1e-9))) for L in cell_lengths_A]


def _elements_in_order(atoms) -> list[str]:
    seen: list[str] = []
    for sym in atoms.get_chemical_symbols():
        if sym not in seen:
            seen.append(sym)
    return seen


def _command(config: CalculatorConfig) -> str:
    if config.command:
        return config.command
    for var in _COMMAND_ENV.get(config.name, ()):
        if os.environ.get(var):
            return os.environ[var]
    return _DEFAULT_COMMAND.get(config.name, "")


def _pseudo_dir(config: CalculatorConfig) -> str | None:
    """The config's ``pseudo_dir``, else the code's variable, else the Debian package's folder."""
    if config.pseudo_dir:
        return config.pseudo_dir
    var = _PSEUDO_ENV.get(config.name)
    if var and os.environ.get(var):
        return os.environ[var]
    default = _DEFAULT_PSEUDO_DIR.get(config.name)
    return default if default and Path(default).is_dir() else None


def command_executable(command: str, code: str) -> str | None:
    """The code's executable in a launch command, found the way a shell would run it.

    Leading ``VAR=value`` assignments, launchers (:data:`LAUNCHERS`: ``mpirun -np 4``, ``srun
    --mpi=pmi2``, ``env OMP_NUM_THREADS=2``, ...) with their options and numbers are skipped.
    A word whose name starts like the code's executable (``pw.x``, ``vasp_std``,
    ``cp2k.psmp``) is taken first; otherwise the first word that is not an option, a number
    or an assignment. ``mpirun -np 4 pw.x -nk 2`` gives ``pw.x``.
    """
    import shlex

    try:
        words = shlex.split(command)
    except ValueError:
        return None
    candidates = [w for w in words if not (w.startswith("-") or w.isdigit() or _assignment(w)
                                           or Path(w).name in LAUNCHERS)]
    prefixes = _EXECUTABLE_PREFIX.get(code, ())
    named = [w for w in candidates if Path(w).name.startswith(prefixes)]
    # an option's value can look like the code too (--wdir /scratch/vasp_runs): a word that
    # runs wins over one that only looks right
    for word in named:
        if shutil.which(word) is not None:
            return word
    if named:
        return named[0]
    return candidates[0] if candidates else None


def _assignment(word: str) -> bool:
    """Whether a command word is a ``VAR=value`` environment assignment."""
    name = word.split("=", 1)[0]
    return "=" in word and name.replace("_", "a").isalnum() and not name[:1].isdigit()


def espresso_pseudopotentials(config: CalculatorConfig, elements: list[str]) -> dict[str, str]:
    """Return the pseudopotential file of each element.

    From the config, else the first ``El.*`` / ``El_*`` UPF file in the pseudopotential folder.
    """
    found = dict(config.pseudopotentials)
    folder = _pseudo_dir(config)
    for el in elements:
        if el in found:
            continue
        if folder and Path(folder).is_dir():
            candidates = sorted(p.name for p in Path(folder).iterdir()
                                if p.suffix.lower() == ".upf"
                                and p.name.split(".")[0].split("_")[0].lower() == el.lower())
            if candidates:
                found[el] = candidates[0]
    return found


def check_ready(config: CalculatorConfig, elements: list[str]) -> None:
    """Raise :class:`ConfigError` now if the calculator (or its warm start) cannot run here."""
    if config.warm_start is not None:
        try:
            check_ready(config.warm_start, elements)
        except ConfigError as exc:
            raise ConfigError(f"the warm-start calculator: {exc.message}", file=exc.file,
                              field=f"warm_start.{exc.field}" if exc.field else "warm_start",
                              hint=exc.hint) from exc
    hubbard_u(config, elements)
    if config.name in ("chgnet", "sevenn"):
        module = "chgnet" if config.name == "chgnet" else "sevenn"
        import importlib.util

        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"calculator {config.name!r} needs the {module} package",
                              field="name", hint="pip install 'kmcflow[ml]'")
        return
    if config.name == "gpaw":
        import importlib.util

        if importlib.util.find_spec("gpaw") is None:
            raise ConfigError("calculator 'gpaw' needs GPAW", field="name",
                              hint="pip install gpaw gpaw-data (Debian: libxc-dev libopenblas-dev)")
        return
    if not config.is_dft:
        return
    command = _command(config)
    exe = command_executable(command, config.name)
    where = f"set command: in the config or {' / '.join(_COMMAND_ENV.get(config.name, ()))}"
    if exe is None:
        raise ConfigError(f"no {config.name} executable in the command {command!r}",
                          field="command", hint=where)
    for program in {shlex_first(command), exe}:
        if shutil.which(program) is None:
            raise ConfigError(f"{config.name} executable {program!r} (of the command "
                              f"{command!r}) not found on PATH", field="command", hint=where)
    if config.name == "espresso" and _assignment(command.split()[0]):
        # ASE runs pw.x's command as an argument list, not through a shell
        raise ConfigError(f"the command {command!r} starts with a variable assignment, which "
                          "only a shell understands, and ASE runs pw.x without one",
                          field="command", hint=f"prefix it with env: 'env {command}'")
    if config.name == "cp2k" and not _cp2k_shell_mode(command, exe):
        raise ConfigError(f"ASE runs CP2K in its shell mode, which {command!r} does not "
                          "start", field="command", hint=f"add -s: '{command} -s'")
    folder = _pseudo_dir(config)
    if config.name in ("vasp", "espresso", "cp2k") and (not folder or not Path(folder).is_dir()):
        raise ConfigError(f"pseudopotential folder {folder!r} not found", field="pseudo_dir",
                          hint=f"set pseudo_dir: or {_PSEUDO_ENV[config.name]}")
    if config.name == "espresso":
        missing = [el for el in elements if el not in espresso_pseudopotentials(config, elements)]
        if missing:
            raise ConfigError(f"no pseudopotential for {', '.join(missing)} in {folder}",
                              field="pseudopotentials", hint="name the UPF files in the config")
        if hubbard_u(config, elements):
            espresso_hubbard_card(config)  # the DFT+U syntax of this pw.x, or a clear refusal
    if config.name == "cp2k":
        missing = [name for name in ("BASIS_MOLOPT", "GTH_POTENTIALS")
                   if not (Path(folder) / name).is_file()]
        if missing:
            raise ConfigError(f"no {', '.join(missing)} in {folder}", field="pseudo_dir",
                              hint="point pseudo_dir (or CP2K_DATA_DIR) at CP2K's data folder")
    if config.name == "vasp":
        missing = [el for el in elements
                   if not (Path(folder) / f"potpaw_{_vasp_pp(config)}" / el / "POTCAR").is_file()]
        if missing:
            raise ConfigError(f"no POTCAR for {', '.join(missing)} under {folder}",
                              field="pseudo_dir", hint="point pseudo_dir at the folder holding "
                              f"potpaw_{_vasp_pp(config)}/")


def shlex_first(command: str) -> str:
    """The first word of a command that is not a ``VAR=value`` assignment."""
    import shlex

    words = [w for w in shlex.split(command) if not _assignment(w)]
    return words[0] if words else ""


def _cp2k_shell_mode(command: str, exe: str) -> bool:
    """Whether a CP2K command starts the shell ASE talks to (``-s``/``--shell``, cp2k_shell)."""
    import shlex

    words = shlex.split(command)
    after = words[words.index(exe) + 1:] if exe in words else []
    return Path(exe).name.startswith("cp2k_shell") or "-s" in after or "--shell" in after


def _vasp_pp(config: CalculatorConfig) -> str:
    return "PBE" if config.xc.upper() in ("PBE", "PBESOL", "SCAN", "R2SCAN") else "LDA"


def _magmoms(config: CalculatorConfig, atoms) -> list[float]:
    """Initial moments (Bohr magnetons) per atom.

    The structure's own moments (an antiferromagnet's up and down sites) when it has any,
    else the config's per-element values.
    """
    own = np.asarray(atoms.get_initial_magnetic_moments(), float)
    if own.ndim == 1 and np.any(own != 0):
        return [float(m) for m in own]
    return [float(config.magnetic_moments.get(sym, 0.0)) for sym in atoms.get_chemical_symbols()]


def _upf_valence(path: Path) -> float | None:
    """``z_valence`` from a UPF file's header (None if it cannot be read)."""
    import re

    try:
        head = path.read_text(errors="replace")[:20000]
    except OSError:
        return None
    m = re.search(r'z_valence\s*=\s*"?\s*([-+0-9.EeDd]+)', head) or re.search(
        r"([-+0-9.EeDd]+)\s+Z valence", head)
    return float(m.group(1).replace("D", "E").replace("d", "e")) if m else None


def espresso_species(config: CalculatorConfig, atoms) -> list[tuple[str, float]]:
    """The species ASE writes for pw.x, in order.

    One per (element, initial moment) pair when spin-polarised (an antiferromagnet's up and
    down Ni are two species), else one per element. ``Hubbard_U(i)`` and
    ``starting_magnetization(i)`` are indexed by this list.
    """
    if not config.spin_polarized:
        return [(el, 0.0) for el in _elements_in_order(atoms)]
    seen: list[tuple[str, float]] = []
    for sym, m in zip(atoms.get_chemical_symbols(), _magmoms(config, atoms), strict=True):
        if (sym, m) not in seen:
            seen.append((sym, m))
    return seen


def espresso_species_labels(species: list[tuple[str, float]]) -> list[str]:
    """The labels ASE gives the species in ``ATOMIC_SPECIES``: Ni, Ni1, Ni2, ... per element."""
    seen: dict[str, int] = {}
    labels = []
    for el, _ in species:
        n = seen.get(el, 0)
        labels.append(el if n == 0 else f"{el}{n}")
        seen[el] = n + 1
    return labels


def hubbard_manifold(element: str) -> str:
    """The +U manifold in QE's HUBBARD-card notation: 3d, 4d, 5d, 4f or 5f."""
    from ase.data import atomic_numbers

    z = atomic_numbers[element]
    if element in _F_ELEMENTS:
        return "4f" if z < 89 else "5f"
    if 21 <= z <= 30:
        return "3d"
    if 39 <= z <= 48:
        return "4d"
    if z == 57 or 72 <= z <= 80:
        return "5d"
    raise ConfigError(f"{element} has no d or f valence shell to put U on",
                      field="hubbard_U_eV", hint="give U to transition metals, lanthanides or "
                      "actinides only")


def espresso_hubbard_card(config: CalculatorConfig) -> bool:
    """Whether pw.x wants the ``HUBBARD`` card (QE 7.2 and later) rather than ``Hubbard_U(i)``.

    The version is the config's ``espresso_version``, else the one the installed ``pw.x``
    prints (run once per executable, in an empty folder, with no input). A version that
    cannot be found is refused: the two syntaxes are not interchangeable (QE 7.2 stops on
    ``lda_plus_u``, QE 7.1 and older cannot read the card).
    """
    if config.espresso_version is not None:
        text = config.espresso_version
    else:
        exe = command_executable(_command(config), "espresso")
        found = shutil.which(exe) if exe else None
        text = _pw_version(found) if found else None
        if text is None:
            raise ConfigError(f"cannot tell which Quantum ESPRESSO {exe or 'pw.x'} is (it "
                              "printed no version), so not how to write DFT+U",
                              field="espresso_version", hint="set espresso_version: in the "
                              "calculator config, e.g. '7.2' or '6.7'")
    major, minor = (int(x) for x in text.split(".")[:2])
    return (major, minor) >= (7, 2)


@cache
def _pw_version(executable: str) -> str | None:
    """``MAJOR.MINOR`` as ``pw.x`` prints it when started with no input (None if it does not)."""
    import re
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kmcflow-pw-version-") as work:
        try:
            proc = subprocess.run([executable], input="", capture_output=True, text=True,
                                  timeout=120, cwd=work, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
    m = re.search(r"Program PWSCF v\.?\s*(\d+)\.(\d+)", proc.stdout + proc.stderr)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def espresso_moment_fractions(config: CalculatorConfig, atoms) -> list[float]:
    """Initial moments in pw.x's unit: fractions of the valence charge, in [-1, 1].

    ASE passes the number through unchanged, so Bohr magnetons are divided by the
    pseudopotential's ``z_valence`` here. Without ``spin_polarized`` every moment is 0, even
    where the structure carries some: ASE would otherwise switch pw.x to ``nspin = 2`` and
    split the species, which the DFT+U input (one species per element) would not follow.
    """
    if not config.spin_polarized:  # a moment written would switch pw.x to nspin = 2
        return [0.0] * len(atoms)
    folder = _pseudo_dir(config)
    files = espresso_pseudopotentials(config, _elements_in_order(atoms))
    out = []
    for sym, m in zip(atoms.get_chemical_symbols(), _magmoms(config, atoms), strict=True):
        z = _upf_valence(Path(folder) / files[sym]) if folder and sym in files else None
        out.append(float(np.clip(m / z if z else m, -1.0, 1.0)))
    return out


def resolved_parameters(config: CalculatorConfig, atoms, supercell=(1, 1, 1)) -> dict[str, Any]:
    """The parameters the calculator receives for these atoms (JSON-safe, for provenance)."""
    elements = _elements_in_order(atoms)
    u = hubbard_u(config, elements)
    base: dict[str, Any] = {"code": config.name, "config": config.model_dump(mode="json")}
    if not config.is_dft:
        return base
    kpts = kpoints(config, atoms.cell.lengths().tolist(), supercell)
    if config.name == "vasp":
        params: dict[str, Any] = {
            "xc": config.xc, "encut": config.cutoff_eV, "ediff": config.energy_convergence_eV,
            "ismear": 0, "sigma": config.smearing_eV, "kpts": kpts, "prec": "Accurate",
            "lreal": "Auto" if len(atoms) > 40 else False, "lwave": False, "lcharg": False,
            "ispin": 2 if config.spin_polarized else 1}
        if u:
            params.update(ldau=True, ldautype=2, lmaxmix=4 if max(
                u_shell(e) for e in u) == 2 else 6,
                ldau_luj={el: {"L": u_shell(el) if el in u else -1, "U": u.get(el, 0.0),
                               "J": 0.0} for el in elements})
    elif config.name == "espresso":
        species = espresso_species(config, atoms)  # ATOMIC_SPECIES as ASE writes them
        system: dict[str, Any] = {
            "ecutwfc": config.cutoff_eV / RY_EV, "occupations": "smearing",
            "smearing": "gaussian", "degauss": config.smearing_eV / RY_EV,
            "nspin": 2 if config.spin_polarized else 1}
        card: list[str] = []
        if u and espresso_hubbard_card(config):  # QE 7.2 and later: the HUBBARD card
            card = ["HUBBARD (atomic)"] + [
                f"U {label}-{hubbard_manifold(el)} {u[el]}"
                for (el, _), label in zip(species, espresso_species_labels(species),
                                          strict=True) if el in u]
        elif u:  # up to QE 7.1: lda_plus_u and Hubbard_U(i) in &SYSTEM
            system.update(lda_plus_u=True, lda_plus_u_kind=0, U_projection_type="atomic")
            for k, (el, _) in enumerate(species, start=1):
                if el in u:
                    system[f"Hubbard_U({k})"] = u[el]
        params = {"input_data": {"control": {"tprnfor": True, "tstress": True},
                                 "system": system,
                                 "electrons": {"conv_thr": config.energy_convergence_eV / RY_EV}},
                  "kpts": kpts,
                  "pseudopotentials": espresso_pseudopotentials(config, elements)}
        if card:
            params["additional_cards"] = card
    elif config.name == "gpaw":
        params = {"mode": {"name": "pw", "ecut": config.cutoff_eV}, "xc": config.xc,
                  "kpts": kpts, "occupations": {"name": "fermi-dirac",
                                                "width": config.smearing_eV},
                  "convergence": {"energy": config.energy_convergence_eV},
                  "spinpol": config.spin_polarized,
                  "setups": {el: f":{'spdf'[u_shell(el)]},{u[el]}" for el in u}}
    else:  # cp2k
        # CP2K's CUTOFF is the density grid cutoff (its own default 400 Ry), not the
        # plane-wave energy cutoff of the other codes
        params = {"xc": config.xc, "cutoff_Ry": config.cp2k_density_cutoff_Ry,
                  "uks": config.spin_polarized, "kpts": kpts,
                  "eps_scf_Ha": config.energy_convergence_eV / HARTREE_EV,
                  "smearing_K": config.smearing_eV / K_B_EV_PER_K,
                  "basis_set_file": str(Path(_pseudo_dir(config) or ".") / "BASIS_MOLOPT"),
                  "potential_file": str(Path(_pseudo_dir(config) or ".") / "GTH_POTENTIALS"),
                  "plus_u": {el: {"L": u_shell(el), "U_minus_J_eV": u[el]} for el in u}}
    params.update(config.extra)
    if config.spin_polarized:
        params["initial_magnetic_moments"] = _magmoms(config, atoms)
    return {**base, "parameters": params}


def make_calculator(config: CalculatorConfig, atoms, directory: str | Path = ".",
                    supercell=(1, 1, 1)):
    """Return an ASE calculator for ``atoms`` (sets initial magnetic moments when spin-polarised).

    File-based codes run in ``directory`` (one folder per calculator: never share it between
    NEB images).
    """
    check_ready(config, _elements_in_order(atoms))
    if config.name == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if config.name == "chgnet":
        from chgnet.model.dynamics import CHGNetCalculator

        return CHGNetCalculator(model=_chgnet_model(), use_device="cpu", **config.extra)
    if config.name == "sevenn":
        from sevenn.calculator import SevenNetCalculator

        return SevenNetCalculator(model=config.model or "7net-0", device="cpu", **config.extra)
    res = resolved_parameters(config, atoms, supercell)["parameters"]
    if config.spin_polarized:
        atoms.set_initial_magnetic_moments(res.pop("initial_magnetic_moments"))
    Path(directory).mkdir(parents=True, exist_ok=True)
    if config.name == "vasp":
        from ase.calculators.vasp import Vasp

        # the folder check_ready checked, whatever VASP_PP_PATH said before: ASE joins an
        # absolute pp onto nothing, and checks that VASP_PP_PATH exists
        folder = str(Path(_pseudo_dir(config) or ".").resolve())
        os.environ["VASP_PP_PATH"] = folder
        return Vasp(directory=str(directory), command=_command(config),
                    pp=str(Path(folder) / f"potpaw_{_vasp_pp(config)}"), **res)
    if config.name == "espresso":
        from ase.calculators.espresso import Espresso, EspressoProfile

        class _Espresso(Espresso):
            """pw.x wants moments as fractions of the valence charge: convert on a copy."""

            def write_inputfiles(self, atoms, properties):
                written = atoms.copy()
                written.set_initial_magnetic_moments(espresso_moment_fractions(config, atoms))
                super().write_inputfiles(written, properties)

        profile = EspressoProfile(command=_command(config), pseudo_dir=_pseudo_dir(config))
        return _Espresso(profile=profile, directory=str(directory), **res)
    if config.name == "gpaw":
        from gpaw import GPAW, PW, FermiDirac

        mode = res.pop("mode")
        occ = res.pop("occupations")
        return GPAW(mode=PW(mode["ecut"]), occupations=FermiDirac(occ["width"]),
                    txt=str(Path(directory) / "gpaw.txt"), **res)
    from ase.calculators.cp2k import CP2K  # ASE writes cell, coordinates, basis, potentials

    return CP2K(command=_command(config), label=str(Path(directory) / "cp2k"), xc=res["xc"],
                cutoff=res["cutoff_Ry"] * RY_EV, uks=res["uks"],
                basis_set_file=res["basis_set_file"], potential_file=res["potential_file"],
                inp=cp2k_template(config, atoms))


def band_calculators(config: CalculatorConfig, images: list, workdir: str | Path):
    """``calculator_for(i)``: the calculator of band image ``i``.

    File-based codes get one folder per image (images must never share one). CP2K runs as a
    shell process that keeps its state: one shell serves every image in turn (a shell per
    image would keep that many CP2K processes alive, and idle MPI ranks spin at full load).
    """
    work = Path(workdir)
    if config.name == "cp2k":
        shared: list = []

        def one_shell(i: int):
            if not shared:
                shared.append(make_calculator(config, images[i], work / "cp2k"))
            return shared[0]

        return one_shell
    return lambda i: make_calculator(config, images[i], work / f"image_{i:02d}")


@cache
def _chgnet_model():
    """The pretrained CHGNet model from the wheel, loaded once per process."""
    from chgnet.model import CHGNet

    return CHGNet.load(verbose=False)


def batch_evaluator(config: CalculatorConfig):
    """A function evaluating several structures in one call, or None if the code has none.

    CHGNet predicts a list of structures in one batched forward pass; the others are
    evaluated one by one by their calculators.
    """
    if config.name != "chgnet":
        return None
    from pymatgen.io.ase import AseAtomsAdaptor

    model = _chgnet_model()

    def evaluate_many(atoms_list: list) -> list[tuple[float, Any]]:
        structures = [AseAtomsAdaptor.get_structure(a) for a in atoms_list]
        preds = model.predict_structure(structures, task="ef", batch_size=len(structures))
        preds = preds if isinstance(preds, list) else [preds]
        return [(float(p["e"]) * len(a), np.asarray(p["f"], dtype=float))
                for p, a in zip(preds, atoms_list, strict=True)]

    return evaluate_many


def cp2k_template(config: CalculatorConfig, atoms) -> str:
    """The input sections ASE's CP2K calculator does not write itself.

    SCF threshold (``EPS_SCF``, Hartree, from ``energy_convergence_eV``), Fermi-Dirac
    smearing (``smearing_eV`` as an electronic temperature) with added orbitals, k-points
    (none at the Gamma point), DFT+U (Mulliken projection) and initial moments per element.
    ASE adds the cell, coordinates, basis sets, potentials, cutoff, functional and spin.
    One ``KIND`` per element: site moments of both signs on one element (an antiferromagnet)
    cannot be written and are refused.
    """
    res = resolved_parameters(config, atoms)["parameters"]
    moments: dict[str, float] = {}
    if res["uks"]:
        for sym, m in zip(atoms.get_chemical_symbols(), _magmoms(config, atoms), strict=True):
            if sym in moments and moments[sym] != m:
                raise ConfigError(f"CP2K gets one initial moment per element, but the {sym} "
                                  "sites carry different moments (an antiferromagnet)",
                                  field="name", hint="use espresso or vasp for "
                                  "antiferromagnetic cells")
            moments[sym] = m
    scf = ["    &SCF", f"      EPS_SCF {res['eps_scf_Ha']:.3E}", "      ADDED_MOS 20",
           "      &SMEAR ON", "        METHOD FERMI_DIRAC",
           f"        ELECTRONIC_TEMPERATURE [K] {res['smearing_K']:.1f}", "      &END SMEAR",
           "    &END SCF"]
    lines = ["&FORCE_EVAL", "  &DFT", *scf]
    if res["plus_u"]:
        lines.append("    PLUS_U_METHOD MULLIKEN")
    if list(res["kpts"]) != [1, 1, 1]:
        lines += ["    &KPOINTS",
                  f"      SCHEME MONKHORST-PACK {' '.join(map(str, res['kpts']))}",
                  "    &END KPOINTS"]
    lines += ["  &END DFT", "  &SUBSYS"]
    for el in _elements_in_order(atoms):
        block = []
        if moments.get(el):
            block.append(f"      MAGNETIZATION {moments[el]}")
        if el in res["plus_u"]:
            pu = res["plus_u"][el]
            block += ["      &DFT_PLUS_U", f"        L {pu['L']}",
                      f"        U_MINUS_J [eV] {pu['U_minus_J_eV']}", "      &END DFT_PLUS_U"]
        if block:
            lines += [f"    &KIND {el}", *block, "    &END KIND"]
    lines += ["  &END SUBSYS", "&END FORCE_EVAL"]
    return "\n".join(lines)
