"""Published barrier tables: read and validate a CSV or YAML table of hops.

A table lists, per row, an event, its published barrier, prefactor and rate, and the
temperature the rate is quoted at. Units are part of the column names, so a file says what it
holds: ``barrier_eV`` | ``barrier_meV`` | ``barrier_kJ_per_mol`` | ``barrier_kcal_per_mol``,
``prefactor_Hz`` | ``prefactor_THz``, ``rate_per_s`` | ``rate_Hz``, ``temperature_K`` |
``temperature_C``. A rate may be written ``~0`` (negligible). Optional columns: ``event_key``
(the catalog key the row stands for, ``species/initial_region->final_region``, used by the
export), ``reverse_of`` (the event this row is the reverse of, for the detailed-balance check),
``reaction_energy_eV`` (E_final - E_initial of the row's hop) and, in YAML, ``recipe`` (how to
recompute the barrier, see :mod:`kmcflow.tables.recipes`).

CSV: one header line with those columns, ``#`` lines are comments. YAML: a mapping with
``rows:`` (a list of mappings with the same keys) and optionally ``name``, ``source``,
``description``, ``tolerance_factor`` and ``catalog_template`` (a catalog file, relative to
the table, whose events the rows replace when the table is exported).

Every problem (a missing column, an unknown unit, a negative barrier, a non-number) raises a
:class:`~kmcflow.errors.ConfigError` naming the file, the row and the column.
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kmcflow.errors import ConfigError

EV_PER_KJ_PER_MOL = 1.0 / 96.48533212
EV_PER_KCAL_PER_MOL = 4.184 / 96.48533212
UNITS = {
    "barrier": {"eV": 1.0, "meV": 1e-3, "kJ_per_mol": EV_PER_KJ_PER_MOL,
                "kcal_per_mol": EV_PER_KCAL_PER_MOL},
    "prefactor": {"Hz": 1.0, "THz": 1e12},
    "rate": {"per_s": 1.0, "Hz": 1.0},
    "temperature": {"K": None, "C": None},
}
REQUIRED = ("event", "barrier", "prefactor", "rate", "temperature")
OPTIONAL = ("event_key", "reverse_of", "reaction_energy_eV", "recipe", "notes")
ZERO = re.compile(r"^\s*~\s*0(\.0*)?\s*$")


@dataclass
class TableRow:
    """One row in kmcflow's units (eV, Hz, s^-1, K); ``None`` where the table is blank."""

    line: int
    event: str
    barrier_eV: float
    prefactor_Hz: float | None
    rate_per_s: float | None
    rate_is_zero: bool
    temperature_K: float | None
    event_key: str | None = None
    reverse_of: str | None = None
    reaction_energy_eV: float | None = None
    recipe: dict[str, Any] | None = None
    notes: str = ""


@dataclass
class BarrierTable:
    """A validated table."""

    path: Path
    rows: list[TableRow]
    name: str = ""
    source: str = ""
    description: str = ""
    tolerance_factor: float | None = None
    catalog_template: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _columns(keys, file: str, where: str) -> dict[str, tuple[str, str | None]]:
    """Map each quantity to its column name and unit; refuse unknown units and gaps."""
    found: dict[str, tuple[str, str | None]] = {}
    for key in keys:
        if key in ("event", *OPTIONAL):
            found[key] = (key, None)
            continue
        quantity, _, unit = str(key).partition("_")
        if quantity in UNITS:
            if unit not in UNITS[quantity]:
                allowed = ", ".join(f"{quantity}_{u}" for u in UNITS[quantity])
                raise ConfigError(f"column {key!r}: unknown unit {unit or '(none)'!r}",
                                  file=file, field=key, hint=f"use {allowed}")
            if quantity in found:
                raise ConfigError(f"two {quantity} columns ({found[quantity][0]}, {key})",
                                  file=file, field=key, hint="keep one")
            found[quantity] = (key, unit)
        else:
            raise ConfigError(f"unknown column {key!r} {where}", file=file, field=str(key),
                              hint=f"columns: {', '.join(REQUIRED)} (with a unit), "
                              f"{', '.join(OPTIONAL)}")
    missing = [q for q in REQUIRED if q not in found]
    if missing:
        raise ConfigError(f"missing column {missing[0]!r} {where}", file=file, field=missing[0],
                          hint="e.g. event, barrier_eV, prefactor_Hz, rate_per_s, temperature_K")
    return found


def _number(value, file: str, line: int, column: str, *, blank_ok: bool) -> float | None:
    if value is None or (isinstance(value, str) and value.strip() in ("", "-", "—")):
        if blank_ok:
            return None
        raise ConfigError(f"row {line}: {column} is empty", file=file, field=column)
    if isinstance(value, bool):
        raise ConfigError(f"row {line}: {column} is not a number", file=file, field=column)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"row {line}: {column} = {value!r} is not a number", file=file,
                          field=column) from exc
    if not math.isfinite(number):
        raise ConfigError(f"row {line}: {column} = {value!r} is not finite", file=file,
                          field=column)
    return number


def _row(raw: dict[str, Any], cols, file: str, line: int) -> TableRow:
    event = str(raw.get("event") or "").strip()
    if not event:
        raise ConfigError(f"row {line}: the event has no name", file=file, field="event")
    bcol, bunit = cols["barrier"]
    barrier = _number(raw.get(bcol), file, line, bcol, blank_ok=False) * UNITS["barrier"][bunit]
    if barrier < 0:
        raise ConfigError(f"row {line}: negative barrier {raw.get(bcol)} ({event})", file=file,
                          field=bcol, hint="a barrier is the saddle energy above the initial "
                          "state: >= 0")
    pcol, punit = cols["prefactor"]
    prefactor = _number(raw.get(pcol), file, line, pcol, blank_ok=True)
    if prefactor is not None:
        if prefactor <= 0:
            raise ConfigError(f"row {line}: prefactor must be positive", file=file, field=pcol)
        prefactor *= UNITS["prefactor"][punit]
    rcol, _ = cols["rate"]
    rate_raw = raw.get(rcol)
    zero = isinstance(rate_raw, str) and bool(ZERO.match(rate_raw))
    rate = 0.0 if zero else _number(rate_raw, file, line, rcol, blank_ok=True)
    if rate is not None and rate < 0:
        raise ConfigError(f"row {line}: negative rate", file=file, field=rcol)
    tcol, tunit = cols["temperature"]
    temp = _number(raw.get(tcol), file, line, tcol, blank_ok=True)
    if temp is not None:
        temp = temp + 273.15 if tunit == "C" else temp
        if temp <= 0:
            raise ConfigError(f"row {line}: temperature must be above 0 K", file=file,
                              field=tcol)
    if rate is not None and temp is None:
        raise ConfigError(f"row {line}: a rate needs the temperature it is quoted at",
                          file=file, field=tcol)
    energy = raw.get("reaction_energy_eV")
    recipe = raw.get("recipe")
    if recipe is not None and not isinstance(recipe, dict):
        recipe = {"name": str(recipe)}
    return TableRow(line, event, float(barrier), prefactor, rate, zero, temp,
                    str(raw["event_key"]).strip() if raw.get("event_key") else None,
                    str(raw["reverse_of"]).strip() if raw.get("reverse_of") else None,
                    _number(energy, file, line, "reaction_energy_eV", blank_ok=True),
                    recipe, str(raw.get("notes") or ""))


def read_table(path: str | os.PathLike[str]) -> BarrierTable:
    """Read and validate a table (``.csv``, ``.yaml``/``.yml``)."""
    from kmcflow.readers import read_text

    p = Path(path)
    file = str(p)
    text = read_text(p, what="table file", hint="see examples/tables/ for the format")
    meta: dict[str, Any] = {}
    if p.suffix.lower() == ".csv":
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        reader = csv.DictReader(lines)
        if not reader.fieldnames:
            raise ConfigError("empty table", file=file)
        header = [h.strip() for h in reader.fieldnames]
        cols = _columns(header, file, "in the header")
        records = [{k.strip(): v for k, v in r.items() if k is not None} for r in reader]
        for r in records:
            if None in r.values() and len(r) > len(header):
                raise ConfigError("a row has more fields than the header", file=file)
        rows = [_row(r, cols, file, n + 2) for n, r in enumerate(records)]
    elif p.suffix.lower() in (".yaml", ".yml"):
        from kmcflow.readers import parse_yaml

        data = parse_yaml(text, file=file)
        if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
            raise ConfigError("a YAML table is a mapping with a list under 'rows'", file=file,
                              field="rows")
        meta = {k: v for k, v in data.items() if k != "rows"}
        rows = []
        for n, r in enumerate(data["rows"], start=1):
            if not isinstance(r, dict):
                raise ConfigError(f"row {n} is not a mapping", file=file, field="rows")
            rows.append(_row(r, _columns(r.keys(), file, f"in row {n}"), file, n))
    else:
        raise ConfigError(f"unknown table format {p.suffix!r}", file=file,
                          hint="use .csv or .yaml")
    if not rows:
        raise ConfigError("the table has no rows", file=file)
    names = [r.event for r in rows]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ConfigError(f"event {dup!r} appears twice", file=file, field="event")
    for r in rows:
        if r.reverse_of and r.reverse_of not in names:
            raise ConfigError(f"row {r.line}: reverse_of {r.reverse_of!r} is not an event of "
                              "the table", file=file, field="reverse_of")
    tol = meta.get("tolerance_factor")
    template = meta.get("catalog_template")
    return BarrierTable(p, rows, str(meta.get("name") or p.stem), str(meta.get("source") or ""),
                        str(meta.get("description") or ""),
                        float(tol) if tol is not None else None,
                        (p.parent / template).resolve() if template else None, meta)
