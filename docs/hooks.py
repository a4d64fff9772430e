"""MkDocs hooks: the reference pages that are generated from the code at build time.

Nothing written here is committed, so no page can go stale:

- ``reference/cli.md``: every command of the Typer app :data:`kmcflow.cli.app`, walked
  recursively through its click group (usage, help text, each argument and option with its
  type, default and help);
- ``reference/catalog-schema.md``: the committed prose of that page, then a table of fields
  per model of the event catalog and the raw JSON Schema, from
  :func:`kmcflow.kmc.catalog.catalog_json_schema` (replacing ``<!-- catalog-schema -->``);
- ``reference/python.md``: one mkdocstrings entry per public name in :data:`kmcflow.__all__`,
  and the table of those names on ``api.md`` (replacing ``<!-- public-names -->``).

A name in ``kmcflow.__all__`` that does not resolve stops the build.
"""

from __future__ import annotations

import html
import inspect
import json
import re
import types
from typing import Any

from mkdocs.structure.files import File, Files

CLI_PAGE = "reference/cli.md"
SCHEMA_PAGE = "reference/catalog-schema.md"
PYTHON_PAGE = "reference/python.md"
API_PAGE = "api.md"
SCHEMA_MARKER = "<!-- catalog-schema -->"
NAMES_MARKER = "<!-- public-names -->"

GENERATED_NOTE = ("<!-- generated at build time by docs/hooks.py; edit the code it is "
                  "generated from, not this page -->\n")


# ----------------------------------------------------------------------------- helpers


def _cell(text: Any) -> str:
    """Return *text* made safe for one cell of a Markdown table."""
    text = " ".join(str(text).split())
    return html.escape(text, quote=False).replace("|", "\\|")


def _code(text: Any) -> str:
    """Return *text* as an inline code span that survives a table cell."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _prose(text: str) -> str:
    """Return a help text as Markdown paragraphs (HTML-escaped; from click's form feed on, cut)."""
    text = inspect.cleandoc(text.split("\f", 1)[0]).replace("\b\n", "")
    return html.escape(text, quote=False)


# ----------------------------------------------------------------------------- CLI page


def _cli_commands() -> list[tuple[int, Any, Any]]:
    """Return (depth, command, context) for the root group and every sub-command, in order."""
    import typer.main

    from kmcflow.cli import app

    root = typer.main.get_command(app)
    found: list[tuple[int, Any, Any]] = []

    def walk(command: Any, ctx: Any, depth: int) -> None:
        found.append((depth, command, ctx))
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is None or getattr(sub, "hidden", False):
                    continue
                walk(sub, type(ctx)(sub, info_name=name, parent=ctx), depth + 1)

    walk(root, root.context_class(root, info_name="kmcflow"), 0)
    return found


def top_level_commands() -> list[str]:
    """Return the names of the app's top-level commands (used by the tests)."""
    return [ctx.info_name for depth, _, ctx in _cli_commands() if depth == 1]


def _param_rows(command: Any, ctx: Any) -> tuple[list[str], list[str]]:
    """Return the Markdown table rows of a command's arguments and options."""
    arguments: list[str] = []
    options: list[str] = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        kind = param.param_type_name
        display = param.display_type(ctx) if hasattr(param, "display_type") else ""
        ptype = _code(display.strip("<>")) if display else ""
        if getattr(param, "multiple", False):
            ptype += " (repeatable)"
        default = param.get_default(ctx)
        if param.required:
            shown = "required"
        elif getattr(param, "is_flag", False) and param.secondary_opts:
            shown = _code(param.opts[0] if default else param.secondary_opts[0])
        elif getattr(param, "is_flag", False):
            shown = "off" if not default else "on"
        elif default is None or default == () or default == []:
            shown = "–"
        elif isinstance(default, (list, tuple)):
            shown = _code(" ".join(str(v) for v in default))
        else:
            shown = _code(default)
        helptext = _cell(getattr(param, "help", None) or "")
        if kind == "argument":
            arguments.append(f"| {_code(param.name)} | {ptype} | {shown} | {helptext} |")
        else:
            names = ", ".join(_code(o) for o in param.opts)
            if param.secondary_opts:
                names += " / " + ", ".join(_code(o) for o in param.secondary_opts)
            options.append(f"| {names} | {ptype} | {shown} | {helptext} |")
    return arguments, options


def cli_markdown() -> str:
    """Return the command-line reference page, generated from the Typer app."""
    commands = _cli_commands()
    out = [GENERATED_NOTE, "# Command line reference\n",
           "Every `kmcflow` command with its arguments and options, generated from the code "
           "when these pages are built (`kmcflow COMMAND --help` prints the same). Errors a "
           "user can fix print one line and exit with code 2.\n"]
    for depth, command, ctx in commands:
        anchor = ctx.command_path.replace(" ", "-")
        level = "#" * min(depth + 2, 6)
        title = ctx.command_path if depth else "kmcflow (the top-level group)"
        out.append(f"{level} {title} {{#{anchor}}}\n")
        usage = command.get_usage(ctx).strip()
        out.append(f"```text\n{usage}\n```\n")
        if command.help:
            out.append(_prose(command.help) + "\n")
        if getattr(command, "epilog", None):
            out.append(_prose(command.epilog) + "\n")
        if hasattr(command, "list_commands"):
            subs = [(n, command.get_command(ctx, n)) for n in command.list_commands(ctx)]
            out.append("| command | what it does |\n|---|---|")
            for name, sub in subs:
                path = f"{ctx.command_path} {name}"
                out.append(f"| [{_code(name)}](#{path.replace(' ', '-')}) | "
                           f"{_cell(sub.get_short_help_str(limit=200))} |")
            out.append("")
        arguments, options = _param_rows(command, ctx)
        header = "| {} | type | default | help |\n|---|---|---|---|"
        if arguments:
            out.append("**Arguments**\n\n" + header.format("argument"))
            out.extend(arguments)
            out.append("")
        if options:
            out.append("**Options**\n\n" + header.format("option"))
            out.extend(options)
            out.append("")
    return "\n".join(out)


# ----------------------------------------------------------------------------- schema page

_UNIT_SUFFIXES = {"_eV": "eV", "_Hz": "Hz", "_A": "Å", "_K": "K", "_s": "s",
                  "_frac": "fractional coordinates"}


def _unit(field: str) -> str:
    """Return the unit a field's name carries (kmcflow puts units in names), or ''."""
    for suffix, unit in _UNIT_SUFFIXES.items():
        if field.endswith(suffix):
            return unit
    return ""


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type(schema: dict[str, Any]) -> str:
    """Return a short readable type of a JSON Schema node (models link to their table)."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}](#{name.lower()})"
    if "const" in schema:
        return _code(json.dumps(schema["const"]))
    if "enum" in schema:
        return " \\| ".join(_code(json.dumps(v)) for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    kind = schema.get("type")
    if kind == "array":
        if "prefixItems" in schema:
            return "array [" + ", ".join(_type(s) for s in schema["prefixItems"]) + "]"
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            return f"object of {_type(extra)}"
        return "object"
    if kind == "null":
        return "null"
    return kind or "any"


_CONSTRAINTS = (("exclusiveMinimum", "> {}"), ("minimum", ">= {}"),
                ("exclusiveMaximum", "< {}"), ("maximum", "<= {}"),
                ("minLength", "at least {} characters"), ("maxLength", "at most {} characters"),
                ("minItems", "at least {} items"), ("maxItems", "at most {} items"),
                ("pattern", "matches {}"))


def _constraints(schema: dict[str, Any]) -> list[str]:
    """Return the value constraints of a node and of its alternatives and items."""
    schema = dict(schema)
    if schema.get("minLength") == 1 and "maxLength" not in schema:
        del schema["minLength"]
        found = ["non-empty"]
    elif schema.get("minItems") is not None and schema.get("minItems") == schema.get("maxItems"):
        found = [f"exactly {schema.pop('minItems')} items"]
        del schema["maxItems"]
    else:
        found = []
    for key, text in _CONSTRAINTS:
        if key in schema:
            value = schema[key]
            found.append(text.format(_code(value) if key == "pattern" else value))
    for sub in schema.get("anyOf", []):
        found += _constraints(sub)
    if isinstance(schema.get("items"), dict):
        found += [f"each {c}" for c in _constraints(schema["items"])]
    return found


def _model_table(name: str, model: dict[str, Any]) -> str:
    """Return the heading, description and field table of one model of the schema."""
    lines = [f"### {name} {{#{name.lower()}}}\n"]
    if model.get("description"):
        lines.append(html.escape(inspect.cleandoc(model["description"]), quote=False) + "\n")
    required = set(model.get("required", []))
    props = model.get("properties", {})
    if not props:
        lines.append("No fields.\n")
        return "\n".join(lines)
    lines.append("| field | type | unit / description | default |\n|---|---|---|---|")
    for field, node in props.items():
        notes = [n for n in (_unit(field), _cell(node.get("description", ""))) if n]
        notes += _constraints(node)
        if field in required:
            default = "required"
        elif isinstance(node.get("default"), dict) and "$ref" in node:
            default = "the defaults of its fields"
        else:
            default = _code(json.dumps(node["default"])) if "default" in node else "–"
        lines.append(f"| {_code(field)} | {_type(node)} | {'; '.join(notes) or '–'} | "
                     f"{default} |")
    if model.get("additionalProperties") is True:
        lines.append("\nOther keys are allowed and kept.")
    lines.append("")
    return "\n".join(lines)


def _referenced(node: Any) -> list[str]:
    """Return the model names a schema node refers to, in order of appearance."""
    if isinstance(node, dict):
        names = [_ref_name(node["$ref"])] if "$ref" in node else []
        for value in node.values():
            names += _referenced(value)
        return names
    if isinstance(node, list):
        return [n for item in node for n in _referenced(item)]
    return []


def catalog_top_level_fields() -> list[str]:
    """Return the JSON keys of the top-level Catalog model (used by the tests)."""
    from kmcflow.kmc.catalog import catalog_json_schema

    return list(catalog_json_schema()["properties"])


def schema_markdown() -> str:
    """Return the generated part of the catalog schema page."""
    from kmcflow.kmc.catalog import SCHEMA_NAME, SCHEMA_VERSION, catalog_json_schema

    schema = catalog_json_schema()
    defs = schema.get("$defs", {})
    order: list[str] = []
    queue = _referenced(schema.get("properties", {}))
    while queue:  # breadth first from the top-level model, so tables follow the document
        name = queue.pop(0)
        if name not in order and name in defs:
            order.append(name)
            queue += _referenced(defs[name])
    order += [n for n in defs if n not in order]
    out = [f"## Fields (`{SCHEMA_NAME}`, `schema_version` {SCHEMA_VERSION})\n",
           "Generated from the pydantic models in `kmcflow/kmc/catalog.py` when these pages "
           "are built. Units are part of the field names (`_eV`, `_Hz`, `_A` for Angstrom, "
           "`_K`, `_s`); a field marked required must be present, every other one takes its "
           "default when absent. Unknown keys are errors except inside `provenance`.\n",
           _model_table("Catalog", {**schema, "description": "The whole document."})]
    out += [_model_table(name, defs[name]) for name in order]
    out.append("## JSON Schema\n")
    out.append("The same, as the JSON Schema `kmcflow catalog schema` prints (for editors and "
               "other tools):\n")
    out.append("```json\n" + json.dumps(schema, indent=2) + "\n```\n")
    return "\n".join(out)


# ----------------------------------------------------------------------------- Python names


def public_names() -> list[tuple[str, str | None, str, str]]:
    """Return (name, mkdocstrings identifier or None, kind, one-line summary) per public name.

    Every name in :data:`kmcflow.__all__` is resolved (lazy attributes included); a name
    that does not resolve raises, which stops the build.
    """
    import kmcflow

    rows = []
    for name in kmcflow.__all__:
        try:
            obj = getattr(kmcflow, name)
        except AttributeError as exc:
            raise RuntimeError(f"kmcflow.__all__ names {name!r}, which kmcflow does not "
                               f"provide") from exc
        if isinstance(obj, types.ModuleType):
            ident, kind = obj.__name__, "module"
        elif inspect.isclass(obj) or callable(obj):
            module = getattr(obj, "__module__", None)
            qualname = getattr(obj, "__qualname__", None)
            if not module or not qualname or "<" in qualname:
                raise RuntimeError(f"kmcflow.{name} has no importable definition to document")
            ident = f"{module}.{qualname}"
            kind = "class" if inspect.isclass(obj) else "function"
        else:
            rows.append((name, None, "constant", f"`{obj!r}`"))
            continue
        doc = inspect.getdoc(obj) or ""
        rows.append((name, ident, kind, doc.strip().split("\n\n", 1)[0].replace("\n", " ")))
    return rows


def names_markdown() -> str:
    """Return the table of public names for ``api.md``."""
    lines = ["| name | kind | what it is |", "|---|---|---|"]
    for name, ident, kind, summary in public_names():
        link = f"[{_code('kmcflow.' + name)}][{ident}]" if ident else _code("kmcflow." + name)
        lines.append(f"| {link} | {kind} | {_cell(summary)} |")
    return "\n".join(lines) + "\n"


def python_markdown() -> str:
    """Return the generated page with one mkdocstrings entry per public name."""
    out = [GENERATED_NOTE, "# Python names\n",
           "Everything `kmcflow.__all__` holds, importable as `from kmcflow import NAME` "
           "(imported on first use, so `import kmcflow` stays cheap), documented from the "
           "docstrings where each is defined. Generated when these pages are built; the "
           "[Python API](../api.md) page walks through them.\n"]
    constants = []
    for name, ident, _kind, summary in public_names():
        if ident is None:
            constants.append(f"- `kmcflow.{name}` = {summary}")
            continue
        out.append(f"## `kmcflow.{name}`\n\n::: {ident}\n    options:\n"
                   f"      show_root_heading: false\n      heading_level: 3\n")
    if constants:
        out.append("## Constants\n\n" + "\n".join(constants) + "\n")
    return "\n".join(out)


# ----------------------------------------------------------------------------- hooks


def on_files(files: Files, config: Any) -> Files:
    """Add the generated reference pages to the site."""
    for path, content in ((CLI_PAGE, cli_markdown()), (PYTHON_PAGE, python_markdown())):
        existing = files.get_file_from_path(path)
        if existing is not None:  # a stale copy on disk never wins
            files.remove(existing)
        files.append(File.generated(config, path, content=content))
    return files


_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):"
                   r"<code>(~?)([^<]*)</code>")


def on_page_content(html_text: str, page: Any, config: Any, files: Files) -> str:
    """Turn the Sphinx roles of the docstrings (``:class:`~a.B` ``) into plain code."""
    return _ROLE.sub(lambda m: "<code>" + (m.group(2).rsplit(".", 1)[-1] if m.group(1)
                                           else m.group(2)) + "</code>", html_text)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Fill the generated parts of the hand-written pages in."""
    src = page.file.src_uri
    if src == SCHEMA_PAGE:
        markdown = _replace_marker(markdown, SCHEMA_MARKER, schema_markdown(), src)
    elif src == API_PAGE:
        markdown = _replace_marker(markdown, NAMES_MARKER, names_markdown(), src)
    return markdown


def _replace_marker(markdown: str, marker: str, content: str, src: str) -> str:
    """Replace *marker* (which must be there once) by *content*."""
    if markdown.count(marker) != 1:
        raise RuntimeError(f"docs/{src} must hold {marker} exactly once")
    return markdown.replace(marker, content)


__all__ = ["catalog_top_level_fields", "cli_markdown", "names_markdown", "public_names",
           "python_markdown", "schema_markdown", "top_level_commands"]
