"""Read the JSON and YAML files a user hands kmcflow, turning every parser failure into one line.

A file can defeat a parser in more ways than a syntax error: bytes that are not UTF-8, an
integer of more digits than Python converts, nesting deep enough to exhaust the recursion
limit, or YAML aliases that expand to more nodes than memory holds (a "billion laughs").
:func:`read_json` and :func:`read_yaml` (and :func:`parse_json` / :func:`parse_yaml` on text
already read) raise the caller's :class:`~kmcflow.errors.KmcflowError` subclass naming the
file for each of them, so the command line prints one line and exits with code 2. YAML is
always read with ``yaml.safe_load`` semantics (no tags that construct objects).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

from kmcflow.errors import ConfigError, KmcflowError

NPZ_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, EOFError, KeyError,
                                                zipfile.BadZipFile)
"""What ``numpy.load`` raises for an empty, truncated or foreign ``.npz`` file."""

MAX_YAML_NODES = 1_000_000
"""The most nodes a YAML document may expand to, aliases counted as often as they are used."""


def read_text(path: str | os.PathLike[str], *, error: type[KmcflowError] = ConfigError,
              what: str = "file", hint: str | None = None) -> str:
    """The file as UTF-8 text; a missing, unreadable or non-UTF-8 file raises ``error``."""
    p = Path(path)
    if not p.is_file():
        raise error(f"{what} not found" if not p.exists() else f"{what} is not a file",
                    file=str(p), hint=hint or "check the path")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text (byte {exc.start}): is this the right file?",
                    file=str(p), hint=hint) from exc
    except OSError as exc:
        raise error(f"cannot read the {what}: {exc.strerror or exc}", file=str(p),
                    hint=hint) from exc


def parse_json(text: str, *, file: str | None = None,
               error: type[KmcflowError] = ConfigError, hint: str | None = None) -> Any:
    """Parse JSON text; a syntax error, a too-large number or too-deep nesting raises ``error``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                    file=file, hint=hint or "fix the JSON syntax (`python -m json.tool FILE` "
                    "shows where)") from exc
    except RecursionError as exc:
        raise error("the JSON is nested too deeply to read", file=file, hint=hint) from exc
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise error(f"unreadable JSON value: {str(exc).splitlines()[0]}", file=file,
                    hint=hint) from exc


def read_json(path: str | os.PathLike[str], *, error: type[KmcflowError] = ConfigError,
              what: str = "file", hint: str | None = None) -> Any:
    """Read and parse a JSON file (see :func:`parse_json`)."""
    return parse_json(read_text(path, error=error, what=what, hint=hint), file=str(path),
                      error=error, hint=hint)


def _bounded_loader(max_nodes: int):
    """A ``yaml.SafeLoader`` that refuses documents expanding to more than ``max_nodes``."""
    import yaml

    class BoundedSafeLoader(yaml.SafeLoader):
        def construct_document(self, node):
            _check_expansion(node, max_nodes)
            return super().construct_document(node)

    return BoundedSafeLoader


class _TooLarge(Exception):
    """A YAML document that expands to more nodes than allowed."""


def _check_expansion(root, max_nodes: int) -> None:
    """Raise :class:`_TooLarge` if ``root`` expands to more than ``max_nodes`` nodes.

    Each node's expanded size is computed once (aliases share node objects), so a
    billion-laughs document is measured in microseconds, never expanded.
    """
    import yaml

    size: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path: meeting one again is a cycle
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            size[id(node)] = 1
            continue
        if children_done:
            open_nodes.discard(id(node))
            total = 1 + sum(size[id(c)] for c in children)
            if total > max_nodes:
                raise _TooLarge(f"the YAML expands to more than {max_nodes:,} nodes "
                                "(aliases repeating aliases)")
            size[id(node)] = total
            continue
        if id(node) in size:
            continue
        if id(node) in open_nodes:
            raise _TooLarge("the YAML contains itself (an alias inside its own anchor)")
        open_nodes.add(id(node))
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise _TooLarge("the YAML contains itself (an alias inside its own anchor)")
            if id(child) not in size:
                stack.append((child, False))


def parse_yaml(text: str, *, file: str | None = None,
               error: type[KmcflowError] = ConfigError, hint: str | None = None,
               max_nodes: int = MAX_YAML_NODES) -> Any:
    """Parse YAML safely (no object tags, bounded expansion, bounded depth)."""
    import yaml

    try:
        return yaml.load(text, Loader=_bounded_loader(max_nodes))  # a SafeLoader subclass
    except _TooLarge as exc:
        raise error(str(exc), file=file, hint=hint or "write the values out instead of "
                    "nesting aliases") from exc
    except RecursionError as exc:
        raise error("the YAML is nested too deeply to read", file=file, hint=hint) from exc
    except (yaml.YAMLError, ValueError, KeyError, IndexError, AttributeError, TypeError,
            OverflowError) as exc:  # the safe constructors raise these for bad tagged values
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        what = first if isinstance(exc, yaml.YAMLError) else (
            f"a value cannot be read ({type(exc).__name__}: {first})")
        raise error(f"malformed YAML: {what}", file=file, hint=hint) from exc


def read_yaml(path: str | os.PathLike[str], *, error: type[KmcflowError] = ConfigError,
              what: str = "file", hint: str | None = None) -> Any:
    """Read and parse a YAML file (see :func:`parse_yaml`)."""
    return parse_yaml(read_text(path, error=error, what=what, hint=hint), file=str(path),
                      error=error, hint=hint)
