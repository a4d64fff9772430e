"""Bad and hostile input over every command (issue 13): exit 2, no traceback, one line that
names the file or the flag, nothing created, nothing changed or deleted.

Each case builds its inputs in a fresh folder, which is also the working folder (so a default
output path such as ``runs/kmc`` would show up), snapshots the folder, runs the command in
process, and compares. Kinds: missing, empty, binary, truncated, deeply nested, alias bomb,
huge numbers, wrong types, out-of-range values, hostile names, output-path problems, damaged
checkpoints and observables, late-validated flags.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from kmcflow.cli import main

pytest.importorskip("jobflow", reason="needs the workflows extra")
pytest.importorskip("qtoolkit", reason="needs the hpc extra")

ROOT = Path(__file__).resolve().parents[1]
ISOTOPE = ROOT / "examples" / "catalogs" / "isotope_couple.json"
CAMPAIGN = ROOT / "examples" / "campaigns" / "cu_ni_emt.yaml"
PROFILE = ROOT / "hpc_configs" / "local_slurm.yaml"
TABLE = ROOT / "examples" / "tables" / "ase_emt_au_al100.yaml"
SMALL = ["--steps", "2000", "--cells", "4", "4", "8", "--samples", "3", "--no-plots"]
CU_POSCAR = """Cu
1.0
3.61 0.0 0.0
0.0 3.61 0.0
0.0 0.0 3.61
Cu
4
direct
0.0 0.0 0.0
0.5 0.5 0.0
0.5 0.0 0.5
0.0 0.5 0.5
"""

DEEP_JSON = "[" * 100_000 + "]" * 100_000
DEEP_YAML = "a: " + "[" * 100_000 + "]" * 100_000 + "\n"
HUGE_JSON = '{"schema": ' + "9" * 5000 + "}"
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe\x80garbage"
ALIAS_BOMB = "\n".join(
    ["rows: [1]", "name: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"x{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 9)}]" for k in range(1, 10)]) + "\n"

Make = Callable[[Path], tuple[list[str], str]]
CASES: dict[str, Make] = {}


def case(name: str):
    def register(make: Make) -> Make:
        assert name not in CASES, name
        CASES[name] = make
        return make
    return register


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _catalog(**changes) -> str:
    data = json.loads(ISOTOPE.read_text())
    for dotted, value in changes.items():
        target = data
        *head, last = dotted.split("__")
        for key in head:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return json.dumps(data)


# ------------------------------------------------------------------- catalogs (kmc run, ...)
CATALOG_CONTENT = {
    "missing": None, "empty": "", "binary": BINARY, "truncated": ISOTOPE.read_text()[:400],
    "deep": DEEP_JSON, "huge number": HUGE_JSON, "a list": "[1, 2, 3]",
    "events not a list": _catalog(events={"a": 1}),
    "barrier a string": _catalog(events__0__barrier_eV="high"),
    "negative barrier": _catalog(events__0__barrier_eV=-0.5),
    "prefactor 1e308": _catalog(events__0__prefactor_Hz=1e308),
    "NaN barrier": _catalog(events__0__barrier_eV=0.5).replace('"barrier_eV": 0.5',
                                                              '"barrier_eV": NaN', 1),
    "vacancy fraction 2": _catalog(conditions__vacancy_fraction=2.0),
    "unknown schema": _catalog(schema_version=99),
    "hostile species name": _catalog(species=["$(touch pwned)", "B"]),
}
for _kind, _content in CATALOG_CONTENT.items():
    def _make_catalog_case(tmp: Path, content=_content, command="run"):
        path = tmp / "catalog.json"
        if content is not None:
            _write(path, content)
        args = {"run": ["kmc", "run", str(path), "--out", str(tmp / "run"), *SMALL],
                "arrhenius": ["kmc", "arrhenius", str(path), "-T", "600", "-T", "700",
                              "--out", str(tmp / "arr"), "--steps", "2000", "--cells", "4",
                              "4", "8"]}[command]
        return args, str(path)
    CASES[f"kmc run: catalog {_kind}"] = _make_catalog_case
    CASES[f"kmc arrhenius: catalog {_kind}"] = (
        lambda tmp, content=_content: _make_catalog_case(tmp, content, "arrhenius"))
for _kind in ("missing", "empty", "binary", "truncated", "deep", "huge number"):
    CASES[f"catalog check: {_kind}"] = (
        lambda tmp, content=CATALOG_CONTENT[_kind]: (
            ["catalog", "check", str(_write(tmp / "c.json", content) if content is not None
                                     else tmp / "c.json")], "c.json"))


# ------------------------------------------------------------------- kmc run flags
KMC_FLAGS = {
    "--checkpoint-interval nan": (["--checkpoint-interval", "nan"], "--checkpoint-interval"),
    "--temperature -1": (["--temperature", "-1"], "temperature"),
    "--temperature nan": (["--temperature", "nan"], "temperature"),
    "--vacancy-fraction 2": (["--vacancy-fraction", "2"], "vacancy-fraction"),
    "--samples 1": (["--samples", "1"], "samples"),
    "--steps 0": (["--steps", "0"], "steps"),
    "--time nan": (["--time", "nan"], "time"),
    "--seed -1": (["--seed", "-1"], "seed"),
    "--replicas 0": (["--replicas", "0"], "--replicas"),
    "--cells 0 4 8": (["--cells", "0", "4", "8"], "cells"),
    "--cells 800 800 800": (["--cells", "800", "800", "800"], "cells"),
    "--grid 2y2": (["--decompose", "--time", "1e-9", "--grid", "2y2"], "--grid"),
    "--accelerate-separation 0": (["--accelerate", "--accelerate-separation", "0"],
                                  "separation"),
    "--replicas with --decompose": (["--replicas", "2", "--decompose"], "--replicas"),
}
def _kmc_args(out: Path, flags: list[str]) -> list[str]:
    """A small run with ``flags`` replacing the defaults they name."""
    base = {"--steps": ["2000"], "--cells": ["4", "4", "8"], "--samples": ["3"]}
    if "--time" in flags:
        base.pop("--steps")
    for flag in flags:
        base.pop(flag, None)
    return ["kmc", "run", str(ISOTOPE), "--out", str(out), "--no-plots",
            *[w for k, v in base.items() for w in (k, *v)], *flags]


for _name, (_flags, _token) in KMC_FLAGS.items():
    CASES[f"kmc run: {_name}"] = (
        lambda tmp, flags=_flags, token=_token: (_kmc_args(tmp / "run", flags), token))


# ------------------------------------------------------------------- output paths
def _outputs(tmp: Path, kind: str) -> Path:
    if kind == "a file":
        return _write(tmp / "notes.txt", "keep")
    if kind == "under a file":
        return _write(tmp / "notes.txt", "keep") / "out"
    if kind == "the current folder":
        _write(tmp / "notes.txt", "keep")
        return Path(".")
    folder = tmp / "thesis"
    _write(folder / "manuscript.tex", "months of work")
    return folder


WRITERS: dict[str, Callable[[Path, Path], list[str]]] = {
    "kmc run": lambda tmp, out: ["kmc", "run", str(ISOTOPE), "--out", str(out), *SMALL],
    "kmc run --overwrite": lambda tmp, out: ["kmc", "run", str(ISOTOPE), "--out", str(out),
                                             "--overwrite", *SMALL],
    "kmc arrhenius": lambda tmp, out: ["kmc", "arrhenius", str(ISOTOPE), "-T", "600", "-T",
                                       "700", "--out", str(out), "--steps", "2000",
                                       "--cells", "4", "4", "8"],
    "hops": lambda tmp, out: ["hops", "Cu", "--species", "Cu", "--out", str(out)],
    "hops --overwrite": lambda tmp, out: ["hops", "Cu", "--species", "Cu", "--out", str(out),
                                          "--overwrite"],
    "barrier": lambda tmp, out: ["barrier", str(_write(tmp / "a.vasp", CU_POSCAR)),
                                 str(_write(tmp / "b.vasp", CU_POSCAR.replace(
                                     "0.0 0.0 0.0\n0.5", "0.1 0.0 0.0\n0.5"))),
                                 "--out", str(out)],
    "campaign run": lambda tmp, out: ["campaign", "run", str(CAMPAIGN), "--out", str(out)],
    "campaign prepare": lambda tmp, out: ["campaign", "prepare", str(CAMPAIGN), "--profile",
                                          str(PROFILE), "--out", str(out)],
    "demo": lambda tmp, out: ["demo", "--quick", "--out", str(out)],
}
for _writer, _build in WRITERS.items():
    for _kind in ("a file", "under a file", "the current folder", "a folder it did not write"):
        CASES[f"{_writer}: --out {_kind}"] = (
            lambda tmp, build=_build, kind=_kind: (build(tmp, _outputs(tmp, kind)), "--out"))
FILE_WRITERS: dict[str, Callable[[Path, Path], tuple[list[str], str]]] = {
    "bulk show": lambda tmp, out: (["bulk", "show", "Cu", "--out", str(out)], "--out"),
    "interface build": lambda tmp, out: (["interface", "build", "Cu", "Ni", "--film-miller",
                                          "1", "0", "0", "--substrate-miller", "1", "0", "0",
                                          "--out", str(out)], "--out"),
    "reproduce --export": lambda tmp, out: (["reproduce", str(TABLE), "--no-recompute",
                                             "--export", str(out), "--template",
                                             str(ISOTOPE)], "--export"),
}
for _writer, _build in FILE_WRITERS.items():
    CASES[f"{_writer}: an existing file"] = (
        lambda tmp, build=_build: build(tmp, _write(tmp / "x.json", "{}")))
    CASES[f"{_writer}: under a file"] = (
        lambda tmp, build=_build: build(tmp, _write(tmp / "notes.txt", "k") / "x.json"))
    CASES[f"{_writer}: a folder"] = (
        lambda tmp, build=_build: build(tmp, (tmp / "folder.json").mkdir() or
                                        tmp / "folder.json"))


# ------------------------------------------------------------------- tables (reproduce)
TABLE_CONTENT = {
    "missing": None, "empty": "", "binary": BINARY, "deep": DEEP_YAML, "alias bomb": ALIAS_BOMB,
    "truncated": TABLE.read_text()[:300], "a list": "[1, 2]\n", "rows a mapping": "rows: {a: 1}\n",
    "row a number": "rows: [3]\n",
    "negative barrier": "rows: [{event: x, barrier_eV: -1, prefactor_Hz: 1e13, rate_per_s: 1, "
                        "temperature_K: 300}]\n",
    "temperature below 0 K": "rows: [{event: x, barrier_eV: 1, prefactor_Hz: 1e13, "
                             "rate_per_s: 1, temperature_K: -5}]\n",
    "barrier a word": "rows: [{event: x, barrier_eV: high, prefactor_Hz: 1e13, rate_per_s: 1, "
                      "temperature_K: 300}]\n",
    "unknown unit": "rows: [{event: x, barrier_eVs: 1}]\n",
    "tagged value": "rows: [{event: x, barrier_eV: !!float ''}]\n",
    "python tag": "rows: !!python/object/apply:os.system ['touch pwned']\n",
}
for _kind, _content in TABLE_CONTENT.items():
    CASES[f"reproduce: table {_kind}"] = (
        lambda tmp, content=_content: (
            ["reproduce", str(_write(tmp / "t.yaml", content) if content is not None
                              else tmp / "t.yaml")], "t.yaml"))
for _flags, _token in ((["--tolerance", "0.5"], "--tolerance"),
                       (["--tolerance", "nan"], "--tolerance"),
                       (["--zero-rate", "-1"], "--zero-rate"),
                       (["--barrier-tolerance", "-1"], "--barrier-tolerance"),
                       (["--barrier-tolerance", "nan"], "--barrier-tolerance")):
    CASES[f"reproduce: {' '.join(_flags)}"] = (
        lambda tmp, flags=_flags, token=_token: (["reproduce", str(TABLE), *flags], token))
CASES["reproduce: csv with a binary row"] = lambda tmp: (
    ["reproduce", str(_write(tmp / "t.csv", b"event,barrier_eV\n\xff\xfe,1\n"))], "t.csv")


# ------------------------------------------------------------------- campaigns and profiles
def _campaign_text(**changes) -> str:
    import yaml

    data = yaml.safe_load(CAMPAIGN.read_text())
    for key, value in changes.items():
        if "__" in key:
            outer, inner = key.split("__")
            data[outer][inner] = value
        else:
            data[key] = value
    return yaml.safe_dump(data)


CAMPAIGN_CONTENT = {
    "missing": None, "empty": "", "binary": BINARY, "deep": DEEP_YAML,
    "alias bomb": ALIAS_BOMB.replace("rows: [1]", "name: x"), "a list": "[1]\n",
    "unknown key": _campaign_text(colour="blue"),
    "unknown film": _campaign_text(interface__film="Unobtainium"),
    "hostile name": _campaign_text(name="../../$(touch pwned)"),
    "bad species": _campaign_text(species=["Cu", "Xx"]),
    "negative fmax": _campaign_text(neb={"fmax_eV_per_A": -1}),
    "unknown calculator": _campaign_text(calculator="castep"),
    "U for an absent element": _campaign_text(calculator={"name": "emt",
                                                          "hubbard_U_eV": {"Fe": 5.3}}),
    "tagged value": "name: x\nmin_image_distance_A: !!int ''\n",
}
for _kind, _content in CAMPAIGN_CONTENT.items():
    for _command in ("run", "prepare"):
        def _make_campaign_case(tmp, content=_content, command=_command):
            path = tmp / "campaign.yaml"
            if content is not None:
                _write(path, content)
            args = ["campaign", command, str(path), "--out", str(tmp / "camp")]
            if command == "prepare":
                args += ["--profile", str(PROFILE)]
            return args, str(path)
        CASES[f"campaign {_command}: {_kind}"] = _make_campaign_case


def _profile_text(**changes) -> str:
    import yaml

    return yaml.safe_dump({**yaml.safe_load(PROFILE.read_text()), **changes})


PROFILE_CONTENT = {
    "missing": None, "empty": "", "binary": BINARY, "deep": DEEP_YAML, "alias bomb":
    ALIAS_BOMB.replace("rows: [1]", "name: x"), "a list": "[1]\n",
    "walltime nonsense": _profile_text(walltime="soon"),
    "hostile partition": _profile_text(partition="debug; touch pwned"),
    "unknown key": _profile_text(colour="blue"),
    "gpaw launcher": _profile_text(launchers={"gpaw": "gpaw -P 24 python"}),
    "scheduler a tagged bool": "name: x\nscheduler: !!bool maybe\n",
}
for _kind, _content in PROFILE_CONTENT.items():
    CASES[f"campaign prepare: profile {_kind}"] = (
        lambda tmp, content=_content: (
            ["campaign", "prepare", str(CAMPAIGN), "--profile",
             str(_write(tmp / "p.yaml", content) if content is not None else tmp / "p.yaml"),
             "--out", str(tmp / "camp")], "p.yaml"))
for _flags, _token in ((["--only", "x"], "--only"), (["--only", "-1"], "--only"),
                       (["--walltime", "soon"], "--walltime"),
                       (["--backend", "carrier-pigeon"], "--backend")):
    CASES[f"campaign submit: {' '.join(_flags)}"] = (
        lambda tmp, flags=_flags, token=_token: (
            ["campaign", "submit", str(CAMPAIGN), "--profile", str(PROFILE), "--out",
             str(tmp / "camp"), *flags], token))


# ------------------------------------------------------------------- campaign folders
FOLDER_PLAN = {
    "no plan": None, "empty plan": "", "binary plan": BINARY, "deep plan": DEEP_JSON,
    "plan a list": "[1]", "plan without hops": '{"name": "x"}',
    "hops of the wrong type": '{"hops": [{"index": "zero", "folder": 3}]}',
}
for _kind, _content in FOLDER_PLAN.items():
    for _command in ("status", "collect", "resume"):
        def _make_folder_case(tmp, content=_content, command=_command):
            folder = tmp / "camp"
            folder.mkdir()
            if content is not None:
                _write(folder / "plan.json", content)
            return ["campaign", command, str(folder)], "plan.json"
        CASES[f"campaign {_command}: {_kind}"] = _make_folder_case
CASES["campaign status: damaged submissions"] = lambda tmp: (
    ["campaign", "status", str(_prepared(tmp, submissions=BINARY))], "submissions.json")
CASES["campaign status: submissions of the wrong type"] = lambda tmp: (
    ["campaign", "status", str(_prepared(tmp, submissions='[{"tasks": 3}]'))],
    "submissions.json")
CASES["campaign resume: damaged profile"] = lambda tmp: (
    ["campaign", "resume", str(_prepared(tmp, submissions="[]", profile=DEEP_YAML))],
    "profile.yaml")


def _prepared(tmp: Path, submissions: str | bytes, profile: str | None = None) -> Path:
    folder = tmp / "camp"
    shutil.copytree(PREPARED, folder)
    _write(folder / "submissions.json", submissions)
    if profile is not None:
        _write(folder / "profile.yaml", profile)
    return folder


# ------------------------------------------------------------------- structures
STRUCTURES = {
    "missing": ("missing.cif", None), "empty cif": ("s.cif", ""), "binary cif": ("s.cif", BINARY),
    "truncated poscar": ("s.vasp", CU_POSCAR[:40]),
    "zero-volume poscar": ("s.vasp", CU_POSCAR.replace("0.0 0.0 3.61", "0.0 0.0 0.0")),
    "json not a structure": ("s.json", '{"@module": "pymatgen.core.structure", '
                                       '"@class": "Structure"}'),
    "json of another class": ("s.json", '{"@module": "os", "@class": "system"}'),
    "deep json": ("s.json", DEEP_JSON), "empty extxyz": ("s.extxyz", ""),
    "unknown suffix": ("s.txt", "Cu"),
    "partially occupied cif": ("s.cif", """data_x
_cell_length_a 3.61
_cell_length_b 3.61
_cell_length_c 3.61
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Cu1 Cu 0 0 0 0.5
Ni1 Ni 0 0 0 0.5
"""),
}
for _kind, (_name, _content) in STRUCTURES.items():
    def _make_structure(tmp, name=_name, content=_content):
        path = tmp / name
        if content is not None:
            _write(path, content)
        return path
    CASES[f"bulk show: {_kind}"] = (
        lambda tmp, make=_make_structure: (["bulk", "show", str(make(tmp))], str(make(tmp))))
    CASES[f"hops: {_kind}"] = (
        lambda tmp, make=_make_structure: (["hops", str(make(tmp)), "--species", "Cu"],
                                           str(make(tmp))))
CASES["bulk show: a folder"] = lambda tmp: (["bulk", "show", str(tmp)], str(tmp))
CASES["hops: huge --min-image-distance"] = lambda tmp: (
    ["hops", "Cu", "--species", "Cu", "--out", str(tmp / "h"), "--min-image-distance", "1e6"],
    "max_atoms")
CASES["hops: --band-thickness -1"] = lambda tmp: (
    ["hops", "Cu", "--species", "Cu", "--band-thickness", "-1"], "band_thickness")
CASES["hops: --species Xx"] = lambda tmp: (["hops", "Cu", "--species", "Xx"], "species")
CASES["interface lattice: --band-thickness nan"] = lambda tmp: (
    ["interface", "lattice", "Cu", "--species", "Cu", "--band-thickness", "nan"],
    "band_thickness")


# ------------------------------------------------------------------- barrier
def _pair(tmp: Path, final: str | None = None) -> tuple[str, str]:
    a = _write(tmp / "a.vasp", CU_POSCAR)
    b = _write(tmp / "b.vasp", final if final is not None else CU_POSCAR.replace(
        "0.0 0.0 0.0\n0.5", "0.1 0.0 0.0\n0.5"))
    return str(a), str(b)


BARRIER = {
    "identical endpoints": (lambda tmp: _pair(tmp, CU_POSCAR), [], "endpoints"),
    "other atoms": (lambda tmp: _pair(tmp, CU_POSCAR.replace("Cu\n4", "Ni\n4")), [],
                    "endpoints"),
    "other cell": (lambda tmp: _pair(tmp, CU_POSCAR.replace("3.61 0.0 0.0", "3.7 0.0 0.0")),
                   [], "endpoints"),
    "--images 0": (_pair, ["--images", "0"], "images"),
    "--fmax -1": (_pair, ["--fmax", "-1"], "fmax"),
    "--optimizer LBFGSX": (_pair, ["--optimizer", "LBFGSX"], "optimizer"),
    "unknown calculator": (_pair, ["--calculator", "castep"], "--calculator"),
    "calculator file missing": (_pair, ["--calculator", "nowhere.yaml"], "nowhere.yaml"),
    "calculator never-read key": (
        _pair, ["--calculator", "CALC"], "force_convergence_eV_per_A"),
}
for _kind, (_endpoints, _flags, _token) in BARRIER.items():
    def _make_barrier(tmp, endpoints=_endpoints, flags=_flags, token=_token):
        a, b = endpoints(tmp)
        calc = _write(tmp / "calc.yaml", "name: vasp\nforce_convergence_eV_per_A: 0.02\n")
        flags = [str(calc) if f == "CALC" else f for f in flags]
        return ["barrier", a, b, "--out", str(tmp / "hop"), *flags], token
    CASES[f"barrier: {_kind}"] = _make_barrier


# ------------------------------------------------------------------- demo
for _flags, _token in ((["-T", "-5", "-T", "900"], "--temperature"),
                       (["-T", "900", "-T", "900"], "--temperature"),
                       (["-T", "nan", "-T", "900"], "--temperature"),
                       (["--width-fraction", "2"], "--width-fraction"),
                       (["--calculator", "vasp"], "--calculator")):
    CASES[f"demo: {' '.join(_flags)}"] = (
        lambda tmp, flags=_flags, token=_token: (["demo", "--out", str(tmp / "d"), *flags],
                                                 token))


# ------------------------------------------------------------------- finished runs, checkpoints
def _run_copy(tmp: Path) -> Path:
    run = tmp / "run"
    shutil.copytree(FINISHED, run)
    return run


def _damage_npz(path: Path, **changes) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value(arrays[key]) if callable(value) else value
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


ANALYZE = {
    "missing folder": lambda tmp: (tmp / "nowhere", "nowhere"),
    "empty folder": lambda tmp: ((tmp / "empty").mkdir() or tmp / "empty", "summary.json"),
    "binary summary": lambda tmp: (_run_with(tmp, "summary.json", BINARY), "summary.json"),
    "deep summary": lambda tmp: (_run_with(tmp, "summary.json", DEEP_JSON), "summary.json"),
    "summary a list": lambda tmp: (_run_with(tmp, "summary.json", "[]"), "summary.json"),
    "summary without inputs": lambda tmp: (_run_with(tmp, "summary.json", '{"catalog": {}}'),
                                           "summary.json"),
    "empty observables": lambda tmp: (_run_with(tmp, "observables.npz", b""),
                                      "observables.npz"),
    "truncated observables": lambda tmp: (_run_with(tmp, "observables.npz", None, cut=200),
                                          "observables.npz"),
    "observables without z": lambda tmp: (_run_npz(tmp, z=None), "observables.npz"),
    "observables of other shapes": lambda tmp: (_run_npz(tmp, x_first_host=np.zeros((2, 3))),
                                                "observables.npz"),
}


def _run_with(tmp: Path, name: str, content, cut: int | None = None) -> Path:
    run = _run_copy(tmp)
    if cut is not None:
        content = (run / name).read_bytes()[:cut]
    _write(run / name, content)
    return run


def _run_npz(tmp: Path, **changes) -> Path:
    run = _run_copy(tmp)
    _damage_npz(run / "observables.npz", **changes)
    return run


for _kind, _make in ANALYZE.items():
    CASES[f"kmc analyze: {_kind}"] = (
        lambda tmp, make=_make: (lambda folder, token: (["kmc", "analyze", str(folder)],
                                                        token))(*make(tmp)))

CHECKPOINTS = {
    "empty": lambda path: path.write_bytes(b""),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[:300]),
    "without the lattice": lambda path: _damage_npz(path, occ=None),
    "unknown species code": lambda path: _damage_npz(path, occ=lambda a: np.where(
        np.arange(a.size) == 5, 9, a).astype(a.dtype)),
    "vacancy index out of range": lambda path: _damage_npz(path, vac_site=lambda a: a + 10**6),
    "other atom counts": lambda path: _damage_npz(path, occ=lambda a: np.where(
        a == 2, 1, a).astype(a.dtype)),
    "negative clock": lambda path: _damage_npz(path, clock=lambda a: -np.abs(a) - 1.0),
    "damaged samples": lambda path: _damage_npz(path, extra_time=np.zeros((2, 2))),
}
for _kind, _damage in CHECKPOINTS.items():
    def _make_checkpoint(tmp, damage=_damage):
        partial = tmp / ".run.partial"
        partial.mkdir()
        shutil.copy(FINISHED / "checkpoint.npz", partial / "checkpoint.npz")
        damage(partial / "checkpoint.npz")
        return (["kmc", "run", str(ISOTOPE), "--out", str(tmp / "run"), "--resume", *SMALL],
                "checkpoint.npz")
    CASES[f"kmc run --resume: checkpoint {_kind}"] = _make_checkpoint


# ------------------------------------------------------------------- found by a review
def _symlink(tmp: Path, target: Path, name: str = "link") -> Path:
    link = tmp / name
    link.symlink_to(target)
    return link


def _extxyz_claiming(tmp: Path, n: int) -> Path:
    return _write(tmp / "big.extxyz", f"{n}\nPBC=\"T T T\" Lattice=\"3 0 0 0 3 0 0 0 3\"\n"
                                      "Cu 0 0 0\n")


def _fifo(tmp: Path) -> Path:
    import os

    os.mkfifo(tmp / "pipe.cif")
    return tmp / "pipe.cif"


REVIEW: dict[str, Make] = {
    # YAML that contains itself looped forever while its memory grew
    "reproduce: a table that contains itself": lambda tmp: (
        ["reproduce", str(_write(tmp / "t.yaml", "rows: &x [*x]\n"))], "contains itself"),
    "campaign run: a campaign that contains itself": lambda tmp: (
        ["campaign", "run", str(_write(tmp / "c.yaml", "name: &x {a: *x}\n")), "--out",
         str(tmp / "c")], "contains itself"),
    # NaN coordinates reached spglib, which crashed the interpreter (exit 139)
    "bulk show: NaN coordinates": lambda tmp: (
        ["bulk", "show", str(_write(tmp / "n.vasp", CU_POSCAR.replace("0.5 0.5 0.0",
                                                                      "nan 0.5 0.0")))], "NaN"),
    "hops: NaN coordinates": lambda tmp: (
        ["hops", str(_write(tmp / "n.vasp", CU_POSCAR.replace("0.5 0.5 0.0", "nan 0.5 0.0"))),
         "--species", "Cu"], "NaN"),
    "barrier: NaN coordinates": lambda tmp: (
        ["barrier", *_pair(tmp, CU_POSCAR.replace("0.5 0.5 0.0", "nan 0.5 0.0")), "--out",
         str(tmp / "hop")], "NaN"),
    "bulk show: overlapping atoms": lambda tmp: (
        ["bulk", "show", str(_write(tmp / "o.vasp", CU_POSCAR.replace("0.5 0.5 0.0",
                                                                      "0.01 0.0 0.0")))],
        "closer than"),
    "bulk show: a file that is /dev/zero": lambda tmp: (
        ["bulk", "show", str(_symlink(tmp, Path("/dev/zero"), "z.cif"))], "regular file"),
    "bulk show: a FIFO": lambda tmp: (["bulk", "show", str(_fifo(tmp))], "regular file"),
    "bulk show: an extxyz claiming 1e11 atoms": lambda tmp: (
        ["bulk", "show", str(_extxyz_claiming(tmp, 10**11))], "big.extxyz"),
    # symbolic links as --out were replaced by real folders after the work, with a traceback
    "kmc run: --out a link to a user folder": lambda tmp: (
        ["kmc", "run", str(ISOTOPE), "--out",
         str(_symlink(tmp, (tmp / "user").mkdir() or tmp / "user")), *SMALL], "symbolic link"),
    "kmc run: --out a dangling link": lambda tmp: (
        ["kmc", "run", str(ISOTOPE), "--out", str(_symlink(tmp, tmp / "nowhere")), *SMALL],
        "symbolic link"),
    "hops: --out a link": lambda tmp: (
        ["hops", "Cu", "--species", "Cu", "--out",
         str(_symlink(tmp, (tmp / "user").mkdir() or tmp / "user"))], "symbolic link"),
    "kmc run: --out a name too long": lambda tmp: (
        ["kmc", "run", str(ISOTOPE), "--out", str(tmp / ("x" * 300)), *SMALL], "--out"),
    "bulk show: --out a name too long": lambda tmp: (
        ["bulk", "show", "Cu", "--out", str(tmp / ("x" * 300 + ".cif"))], "--out"),
    "kmc run: a user folder under the scratch name": lambda tmp: (
        ["kmc", "run", str(ISOTOPE), "--out", str(tmp / "run"), *SMALL]
        if _write(tmp / ".run.partial" / "notes.txt", "mine") else [], ".run.partial"),
    "kmc run --overwrite: a user folder under the old name": lambda tmp: (
        ["kmc", "run", str(ISOTOPE), "--out", str(_run_copy(tmp)), "--overwrite", *SMALL]
        if _write(tmp / ".run.old" / "notes.txt", "mine") else [], ".run.old"),
    "hops --overwrite: the input inside --out": lambda tmp: (
        ["hops", str(_write(tmp / "h" / "s.vasp", CU_POSCAR)), "--species", "Cu", "--out",
         str(_hops_folder(tmp / "h")), "--overwrite"], "holds the input"),
    # a plan whose hop folder points outside the campaign let tasks write there
    "campaign status: a hop folder outside the campaign": lambda tmp: (
        ["campaign", "status", str(_plan_with(tmp, folder="../victim"))], "plan.json"),
    "campaign collect: an absolute hop folder": lambda tmp: (
        ["campaign", "collect", str(_plan_with(tmp, folder="/etc"))], "plan.json"),
    "campaign status: a hop without origin": lambda tmp: (
        ["campaign", "status", str(_plan_with(tmp, drop="origin"))], "plan.json"),
    "campaign collect: a plan without spec": lambda tmp: (
        ["campaign", "collect", str(_plan_with(tmp, drop_plan="spec"))], "plan.json"),
    # searches without a bound
    "interface matches: --max-area 1e6": lambda tmp: (
        ["interface", "matches", "Cu", "Ni", "--film-miller", "1", "0", "0",
         "--substrate-miller", "1", "0", "0", "--max-area", "1e6"], "max_area"),
    "interface matches: --max-area inf": lambda tmp: (
        ["interface", "matches", "Cu", "Ni", "--film-miller", "1", "0", "0",
         "--substrate-miller", "1", "0", "0", "--max-area", "inf"], "max_area"),
    "interface matches: a billion layers": lambda tmp: (
        ["interface", "matches", "Cu", "Ni", "--film-miller", "1", "0", "0",
         "--substrate-miller", "1", "0", "0", "--film-thickness", "1000000000layers"],
        "film_thickness"),
    "interface matches: Miller 100000 0 1": lambda tmp: (
        ["interface", "matches", "Cu", "Ni", "--film-miller", "100000", "0", "1",
         "--substrate-miller", "1", "0", "0"], "film_miller"),
    "interface matches: --limit -5": lambda tmp: (
        ["interface", "matches", "Cu", "Ni", "--film-miller", "1", "0", "0",
         "--substrate-miller", "1", "0", "0", "--limit", "-5"], "--limit"),
    "interface build: --vacuum nan": lambda tmp: (
        ["interface", "build", "Cu", "Ni", "--film-miller", "1", "0", "0", "--substrate-miller",
         "1", "0", "0", "--out", str(tmp / "i"), "--vacuum", "nan"], "--vacuum"),
    "hops: --max-length 1e6": lambda tmp: (
        ["hops", "Cu", "--species", "Cu", "--max-length", "1e6"], "max_length"),
    "hops: --max-atoms 1e9": lambda tmp: (
        ["hops", "Cu", "--species", "Cu", "--out", str(tmp / "h"), "--max-atoms", "1000000000",
         "--min-image-distance", "300"], "max_atoms"),
    "hops: --min-image-distance inf": lambda tmp: (
        ["hops", "Cu", "--species", "Cu", "--out", str(tmp / "h"), "--min-image-distance",
         "inf"], "min_image_distance"),
    "kmc run: --samples 1e8": lambda tmp: (_kmc_args(tmp / "run", ["--samples", "100000000"]),
                                           "samples"),
    "kmc run: --accelerate-separation inf": lambda tmp: (
        _kmc_args(tmp / "run", ["--accelerate", "--accelerate-separation", "inf"]),
        "acceleration"),
    "kmc arrhenius: one temperature twice": lambda tmp: (
        ["kmc", "arrhenius", str(ISOTOPE), "-T", "600", "-T", "600", "--out", str(tmp / "a"),
         "--steps", "2000", "--cells", "4", "4", "8"], "temperatures"),
    "barrier: --images 100000": lambda tmp: (
        ["barrier", *_pair(tmp), "--out", str(tmp / "hop"), "--images", "100000"], "images"),
    "barrier: --fmax inf": lambda tmp: (
        ["barrier", *_pair(tmp), "--out", str(tmp / "hop"), "--fmax", "inf"], "fmax"),
    "barrier: --steps -1": lambda tmp: (
        ["barrier", *_pair(tmp), "--out", str(tmp / "hop"), "--steps", "-1"], "steps"),
    "barrier: --relax-fmax nan": lambda tmp: (
        ["barrier", *_pair(tmp), "--out", str(tmp / "hop"), "--relax-fmax", "nan"],
        "--relax-fmax"),
    "barrier: --radius -1": lambda tmp: (
        ["barrier", *_pair(tmp), "--out", str(tmp / "hop"), "--radius", "-1"], "--radius"),
    "campaign prepare: .inf in the campaign": lambda tmp: (
        ["campaign", "prepare", str(_write(tmp / "c.yaml", _campaign_text(
            min_image_distance_A=float("inf")))), "--profile", str(PROFILE), "--out",
         str(tmp / "camp")], "c.yaml"),
    "campaign run: --only 99": lambda tmp: (
        ["campaign", "run", str(CAMPAIGN), "--out", str(tmp / "camp"), "--only", "99"],
        "--only"),
    "campaign prepare: a folder path no directive can hold": lambda tmp: (
        ["campaign", "prepare", str(CAMPAIGN), "--profile", str(PROFILE), "--out",
         str(tmp / "new parent" / "camp")], "--out"),
    "campaign submit: --walltime of a century": lambda tmp: (
        ["campaign", "submit", str(CAMPAIGN), "--profile", str(PROFILE), "--out",
         str(tmp / "camp"), "--walltime", "99999999999999999999"], "--walltime"),
    "campaign submit: another campaign into a prepared folder": lambda tmp: (
        ["campaign", "submit", str(_write(tmp / "other.yaml", _campaign_text(
            min_image_distance_A=9.0))), "--profile", str(PROFILE), "--out",
         str(_prepared(tmp, submissions="[]"))], "--out"),
    "catalog check: -T nan": lambda tmp: (["catalog", "check", str(ISOTOPE), "-T", "nan"],
                                          "--temperature"),
    # catalogs and run files with wrong types deep inside
    "kmc run: ragged lattice vectors": lambda tmp: (
        ["kmc", "run", str(_write(tmp / "c.json", _catalog(lattice={
            "vectors_A": [[3, 0], [0, 3, 0], [0, 0, 3]], "basis_frac": [[0, 0, 0]],
            "dimension": 3}))), "--out", str(tmp / "run"), *SMALL], "c.json"),
    "kmc run: lattice constant 1e-300": lambda tmp: (
        ["kmc", "run", str(_write(tmp / "c.json", _catalog(lattice={"preset": "fcc",
                                                                      "a_A": 1e-300}))),
         "--out", str(tmp / "run"), *SMALL], "c.json"),
    "kmc run: one basis site twice": lambda tmp: (
        ["kmc", "run", str(_write(tmp / "c.json", _catalog(lattice={
            "vectors_A": [[3, 0, 0], [0, 3, 0], [0, 0, 3]],
            "basis_frac": [[0, 0, 0], [0, 0, 0]], "dimension": 3}))), "--out",
         str(tmp / "run"), *SMALL], "c.json"),
    "kmc analyze: a summary without the catalog's name": lambda tmp: (
        ["kmc", "analyze", str(_run_summary(tmp, lambda d: d["catalog"].pop("name")))],
        "summary.json"),
    "kmc analyze: NaN times": lambda tmp: (
        ["kmc", "analyze", str(_run_npz(tmp, time=lambda a: a * np.nan))], "observables.npz"),
    "kmc analyze: text where numbers go": lambda tmp: (
        ["kmc", "analyze", str(_run_npz(tmp, x_first_host=lambda a: a.astype(str)))],
        "observables.npz"),
    "kmc run --resume: sample times that go back": lambda tmp: (
        _checkpoint_args(tmp, lambda path: _damage_npz(
            path, extra_time=lambda a: np.where(np.isnan(a), a, a[::-1]))),
        "checkpoint.npz"),
}
CASES.update(REVIEW)


def _hops_folder(folder: Path) -> Path:
    """``folder`` with the marker of a hops output, as an earlier run would leave it."""
    from kmcflow.outputs import write_marker

    write_marker(folder, "hops")
    return folder


def _plan_with(tmp: Path, folder: str | None = None, drop: str | None = None,
               drop_plan: str | None = None) -> Path:
    camp = _prepared(tmp, submissions="[]")
    plan = json.loads((camp / "plan.json").read_text())
    if folder is not None:
        plan["hops"][0]["folder"] = folder
    if drop is not None:
        del plan["hops"][0][drop]
    if drop_plan is not None:
        del plan[drop_plan]
    (camp / "plan.json").write_text(json.dumps(plan))
    return camp


def _run_summary(tmp: Path, change) -> Path:
    run = _run_copy(tmp)
    data = json.loads((run / "summary.json").read_text())
    change(data)
    (run / "summary.json").write_text(json.dumps(data))
    return run


def _checkpoint_args(tmp: Path, damage) -> list[str]:
    partial = tmp / ".run.partial"
    partial.mkdir()
    shutil.copy(FINISHED / "checkpoint.npz", partial / "checkpoint.npz")
    damage(partial / "checkpoint.npz")
    return ["kmc", "run", str(ISOTOPE), "--out", str(tmp / "run"), "--resume", *SMALL]


# ------------------------------------------------------------------- the harness
FINISHED: Path
PREPARED: Path


@pytest.fixture(scope="module", autouse=True)
def _artifacts(tmp_path_factory):
    """A finished small run (for analyze and checkpoints) and a prepared campaign folder."""
    global FINISHED, PREPARED
    base = tmp_path_factory.mktemp("artifacts")
    FINISHED = base / "run"
    assert main(["kmc", "run", str(ISOTOPE), "--out", str(FINISHED), *SMALL]) == 0
    PREPARED = base / "camp"
    assert main(["campaign", "prepare", str(CAMPAIGN), "--profile", str(PROFILE), "--out",
                 str(PREPARED)]) == 0


def _snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder``: links by target, regular files by content, the rest
    (FIFOs) by kind; never follows a link or reads a device."""
    import os
    import stat as st

    state = {}
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = Path(root) / name
            rel = str(path.relative_to(folder))
            info = path.lstat()
            if st.S_ISLNK(info.st_mode):
                state[rel] = ("link", os.readlink(path))
            elif st.S_ISDIR(info.st_mode):
                state[rel] = ("dir", info.st_mode)
            elif st.S_ISREG(info.st_mode):
                state[rel] = ("file", info.st_size, info.st_mtime_ns,
                              hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                state[rel] = ("special", st.S_IFMT(info.st_mode))
    return state


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 120, len(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    args, token = CASES[name](work)
    before = _snapshot(work)
    capsys.readouterr()
    code = main(args)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2, (code, err, captured.out[-2000:])
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert token in err, (token, err)
    assert _snapshot(work) == before, "the command created, changed or deleted files"
    assert not (work / "pwned").exists()


@pytest.mark.parametrize("name", ["reproduce: table alias bomb", "kmc run: --cells 800 800 800",
                                  "hops: huge --min-image-distance"])
def test_memory_and_time_guards_refuse_within_seconds(name, tmp_path, monkeypatch, capsys):
    """The alias bomb was expanded until 4 GB after 100 s, --cells 800 800 800 allocated
    gigabytes before failing, a huge --min-image-distance looped without end."""
    import time

    monkeypatch.chdir(tmp_path)
    args, _ = CASES[name](tmp_path)
    start = time.process_time()  # CPU seconds: a loaded machine does not make it flaky
    assert main(args) == 2
    assert time.process_time() - start < 10.0
