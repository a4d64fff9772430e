"""One rule for every writer: which output paths kmcflow may write, and what it may replace.

kmcflow replaces a folder only if it wrote that folder itself, as the same kind of output, and
only when asked (``--overwrite``; commands that continue their own work, such as ``demo`` and
``campaign run``, reuse it). Every output folder it writes carries a marker file
(:data:`MARKER`) naming the kind; folders written before the marker existed are recognised by
the files that kind always holds. Everything is checked before any work starts, so a refused
command leaves nothing behind:

- the path is a file, or lies under a file;
- the path is the current folder or one of its parents;
- the folder holds one of the command's own input files (replacing it would delete them);
- the folder exists, is not empty and is not a kmcflow output of this kind;
- it is one, and neither ``--overwrite`` nor continuing was asked for;
- nothing can be written there (a read-only folder; tried, not guessed from the mode bits).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from kmcflow.errors import ConfigError

MARKER = ".kmcflow-output.json"
"""The file that says which kind of kmcflow output a folder is."""

# the files each kind always holds (recognises folders written before the marker existed)
_KIND_FILES: dict[str, tuple[tuple[str, ...], ...]] = {
    "kmc_run": (("summary.json", "observables.npz"), ("ensemble.json",), ("checkpoint.npz",),
                ("checkpoints",), ("replicas",)),
    "arrhenius": (("arrhenius.json",),),
    "convergence": (("convergence.json",),),
    "hops": (("hops.json",),),
    "barrier": (("result.json", "band.extxyz"),),
    "campaign": (("report.json",), ("store",), ("results",)),
    "campaign_folder": (("plan.json",),),
    "demo": (("demo.json",), ("campaign",)),
    "neb_checkpoint": (("band_state.json",),),
}


def write_marker(folder: str | os.PathLike[str], kind: str) -> None:
    """Mark ``folder`` as a kmcflow output of ``kind``."""
    from kmcflow import __version__
    from kmcflow.atomic_io import write_text

    write_text(Path(folder) / MARKER,
               json.dumps({"kind": kind, "kmcflow_version": __version__}) + "\n")


# kinds whose folders hold one subfolder per temperature (written before the marker existed)
_KIND_SUBFOLDERS = {"arrhenius": "T*K"}


def output_kind(folder: str | os.PathLike[str]) -> str | None:
    """The kind of kmcflow output ``folder`` is, or None if it is not one (or not a folder)."""
    p = Path(folder)
    if not p.is_dir():
        return None
    try:
        data = json.loads((p / MARKER).read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("kind"), str):
            return data["kind"]
    except (OSError, ValueError, RecursionError):
        pass
    for kind, signatures in _KIND_FILES.items():
        if any(all((p / name).exists() for name in names) for names in signatures):
            return kind
    entries = list(p.iterdir())
    for kind, pattern in _KIND_SUBFOLDERS.items():
        if entries and all(e.is_dir() and e.match(pattern) for e in entries):
            return kind
    return None


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def check_writable_place(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """Refuse an output path that lies under a file or where nothing can be written.

    Returns the nearest existing folder at or above ``path``.
    """
    p = Path(path).absolute()
    existing = p
    while not existing.exists():
        existing = existing.parent
    if existing != p and not existing.is_dir():
        raise ConfigError(f"{path} lies under {existing}, which is a file", field=flag,
                          hint="choose a path in a folder")
    if not existing.is_dir():
        existing = existing.parent
    try:  # the mode bits do not say it for root or ACLs: try
        probe = tempfile.mkdtemp(prefix=".kmcflow-write-test-", dir=existing)
    except OSError as exc:
        raise ConfigError(f"cannot write in {existing} ({exc.strerror or exc})", field=flag,
                          hint="choose a folder you can write to") from exc
    os.rmdir(probe)
    return existing


def check_output_file(path: str | os.PathLike[str], *, overwrite: bool = False,
                      flag: str = "--out",
                      inputs: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """Refuse an output file that cannot or must not be written; return its path.

    A folder, a device or other non-regular file, an existing file (without ``overwrite``),
    one of the ``inputs``, or a place nothing can be written to.
    """
    p = Path(path)
    try:
        if p.is_dir():
            raise ConfigError(f"{path} is a folder, not a file", field=flag,
                              hint="give a file name")
        if p.exists() and not p.is_file():
            raise ConfigError(f"{path} is not a regular file", field=flag,
                              hint="give a file name")
        for item in inputs:
            if p.exists() and Path(item).exists() and p.resolve() == Path(item).resolve():
                raise ConfigError(f"{path} is also an input: writing it would destroy it",
                                  field=flag, hint="write to another file")
        if p.exists() and not overwrite:
            raise ConfigError(f"{path} exists", field=flag, hint="choose another name or "
                              "pass --overwrite")
        check_writable_place(p, flag)
    except OSError as exc:  # a name too long, a loop of links, ...
        raise ConfigError(f"cannot use {path} ({exc.strerror or exc})", field=flag,
                          hint="choose a shorter, plainer path") from exc
    return p


def check_output_folder(path: str | os.PathLike[str], kind: str, *, overwrite: bool = False,
                        reuse: bool = False, flag: str = "--out",
                        inputs: Iterable[str | os.PathLike[str]] = ()) -> Path:
    """Apply the module's rule to an output folder before any work starts; return the path.

    ``reuse``: the command continues its own earlier output there (``demo``, ``campaign
    run``, ``--resume``), so an existing folder of this kind is fine without ``overwrite``.
    A symbolic link is refused (replacing the folder would replace the link, not its
    target), and so are user folders under the scratch names kmcflow uses beside the output
    (``.NAME.partial``, ``.NAME.old``).
    """
    try:
        return _check_output_folder(Path(path), kind, overwrite, reuse, flag, list(inputs))
    except OSError as exc:  # a name too long, a loop of links, ...
        raise ConfigError(f"cannot use {path} ({exc.strerror or exc})", field=flag,
                          hint="choose a shorter, plainer path") from exc


def _check_output_folder(p: Path, kind: str, overwrite: bool, reuse: bool, flag: str,
                         inputs: list) -> Path:
    path = str(p)
    where = p.absolute()
    if p.is_symlink():
        raise ConfigError(f"{path} is a symbolic link", field=flag,
                          hint="give the folder it points to, or a new folder")
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{path} is a file, not a folder", field=flag,
                          hint="give a folder path (it is created)")
    cwd = Path.cwd().absolute()
    if _inside(cwd, where.resolve() if p.exists() else where):
        raise ConfigError(f"{path} is the current folder or holds it", field=flag,
                          hint="give a new folder, e.g. --out runs/NAME")
    for scratch in (where.with_name(f".{where.name}.partial"),
                    where.with_name(f".{where.name}.old")):
        if scratch.is_symlink() or (scratch.exists() and not scratch.is_dir()):
            foreign = True
        else:
            foreign = scratch.is_dir() and output_kind(scratch) is None and any(
                scratch.iterdir())
        if foreign:
            raise ConfigError(f"{scratch} exists and is not kmcflow's (kmcflow keeps its "
                              "unfinished output under that name)", field=flag,
                              hint=f"move {scratch.name} away or choose another --out")
    for item in inputs:
        item_path = Path(item)
        if item_path.exists() and p.exists() and _inside(item_path.resolve(), p.resolve()):
            raise ConfigError(f"{path} holds the input {item}: replacing the folder would "
                              "delete it", field=flag, hint="write the output elsewhere")
    if p.exists() and any(p.iterdir()):
        found = output_kind(p)
        if found != kind:
            what = "not a kmcflow output" if found is None else f"a kmcflow {found} folder"
            raise ConfigError(f"{path} exists and is {what} (kmcflow replaces only a {kind} "
                              "folder it wrote itself)", field=flag,
                              hint="choose a new folder")
        if not (overwrite or reuse):
            raise ConfigError(f"{path} exists (a kmcflow {kind} folder)", field=flag,
                              hint="pass --overwrite to replace it, or choose a new folder")
    check_writable_place(p, flag)
    return p
