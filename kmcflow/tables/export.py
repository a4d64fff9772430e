"""Export a table as an event catalog the kMC engine runs.

A table carries barriers and prefactors but no lattice, hosts or interface, so the export
starts from a catalog template (``catalog_template`` in the YAML table, or ``--template``):
every row with an ``event_key`` replaces the barrier and prefactor of the template event with
that key, and records the row in the event's provenance. Rows without a key, or whose key the
template lacks, are listed as not exported. The result is validated by the catalog loader
(detailed balance included) before it is written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kmcflow.atomic_io import write_json
from kmcflow.errors import ConfigError
from kmcflow.kmc.catalog import event_key, validate_catalog_data
from kmcflow.readers import read_json
from kmcflow.tables.table import BarrierTable


def export_catalog(table: BarrierTable, out: str | os.PathLike[str],
                   template: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Write the table as a catalog; return ``{"exported": [...], "not_exported": [...]}``."""
    source = Path(template) if template else table.catalog_template
    if source is None:
        raise ConfigError("the table names no catalog_template", file=str(table.path),
                          field="catalog_template",
                          hint="add catalog_template: CATALOG.json to the table or pass "
                          "--template CATALOG.json")
    data = read_json(source, what="catalog template")
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise ConfigError("the catalog template is not a catalog (no list of events)",
                          file=str(source), field="events")
    by_key = {event_key(e["species"], e["initial_region"], e["final_region"]): e
              for e in data.get("events", [])}
    exported, skipped = [], []
    for row in table.rows:
        event = by_key.get(row.event_key or "")
        if event is None or row.prefactor_Hz is None:
            why = ("no event_key" if not row.event_key else
                   "no prefactor" if row.prefactor_Hz is None else
                   f"the template has no event {row.event_key}")
            skipped.append({"event": row.event, "reason": why})
            continue
        event["barrier_eV"] = row.barrier_eV
        event["prefactor_Hz"] = row.prefactor_Hz
        event["provenance"] = {
            "source": table.source or str(table.path.name),
            "notes": f"table {table.path.name}, row {row.line} '{row.event}': "
                     f"{row.barrier_eV:g} eV, {row.prefactor_Hz:g} Hz"}
        exported.append({"event": row.event, "event_key": row.event_key})
    data["name"] = f"{table.name}_catalog"
    data["description"] = (f"exported by kmcflow reproduce from {table.path.name}"
                           + (f" ({table.source})" if table.source else "")
                           + f"; template {source.name}")
    catalog, problems = validate_catalog_data(data, str(out))
    errors = [pr for pr in problems if pr.severity == "error"]
    if catalog is None or errors:
        first = errors[0] if errors else problems[0]
        raise ConfigError(f"the exported catalog is not valid: {first.message}",
                          file=str(table.path), field=first.field, hint=first.hint)
    write_json(Path(out), data)
    return {"exported": exported, "not_exported": skipped, "template": str(source)}
