"""Hop results into an event catalog (``rate_model: table``), with provenance for every number.

Each successful hop gives the event of its key with barrier = forward barrier of the climbing
image and prefactor = the Vineyard prefactor; a hop between two regions also gives the reverse
event (reverse barrier, the reverse prefactor from the final-state modes) unless that key was
computed directly. E_KRA = E_saddle - (E_i + E_f)/2 and dE = E_f - E_i go into the provenance.
The first result of a key wins (the campaign orders bulk hops before interface hops); the
others are listed as duplicates. Failed hops are listed with their reason, never dropped
silently. A catalog is computed at one level of theory: results whose code, functional, U
values, spin, cutoff or model differ are refused (the error names the events) unless allowed.
"""

from __future__ import annotations

from typing import Any

from kmcflow.errors import CatalogError
from kmcflow.kmc.catalog import SCHEMA_NAME, SCHEMA_VERSION, parse_event_key, validate_catalog_data

_THEORY_FIELDS = ("name", "xc", "hubbard_U_eV", "spin_polarized", "cutoff_eV", "model",
                  "smearing_eV")


def level_of_theory(result: dict[str, Any]) -> dict[str, Any]:
    """The part of a result's calculator config that defines its level of theory."""
    config = (result.get("calculator") or {}).get("config") or {}
    theory = {k: config.get(k) for k in _THEORY_FIELDS}
    params = (result.get("calculator") or {}).get("parameters") or {}
    if "ldau_luj" in params:  # the U values actually applied (presets resolved)
        theory["U_applied"] = {el: v["U"] for el, v in params["ldau_luj"].items() if v["U"]}
    return theory


def result_provenance(result: dict[str, Any], source: str, direction: str) -> dict[str, Any]:
    """The provenance of a number taken from a hop result (``direction``: forward/reverse)."""
    calc = result.get("calculator") or {}
    config = calc.get("config") or {}
    params = calc.get("parameters") or {}
    settings = result.get("neb_settings") or {}
    prov: dict[str, Any] = {
        "source": source,
        "calculator": config.get("name"),
        "functional": config.get("xc") if config.get("name") in ("vasp", "espresso", "gpaw",
                                                                   "cp2k") else None,
        "neb_images": settings.get("n_images"),
        "converged": bool(result.get("converged")),
        "job_id": result.get("job_id"),
        "direction": direction,
        "kra_eV": result.get("kra_eV"),
        "reaction_energy_eV": result.get("reaction_energy_eV"),
        "prefactor_route": result.get("prefactor_route"),
        "force_calls": result.get("force_calls"),
        "fmax_eV_per_A": settings.get("fmax_eV_per_A"),
        "code_versions": result.get("code_versions"),
        "hop_length_A": (result.get("hop") or {}).get("length_A"),
        "calculator_config": config or None,
        "prefactor_flagged": bool((result.get("prefactor") or {}).get("flagged")) or None,
        "prefactor_states": ("final state and saddle" if direction == "reverse"
                             else "initial state and saddle"),
    }
    if isinstance(config.get("hubbard_U_eV"), dict) or "ldau_luj" in params:
        prov["U_eV"] = {el: v["U"] for el, v in params.get("ldau_luj", {}).items() if v["U"]}
        if isinstance(config.get("hubbard_U_eV"), dict) and not prov["U_eV"]:
            prov["U_eV"] = {el: u for el, u in config["hubbard_U_eV"].items() if u}
    if config.get("hubbard_U_source"):
        prov["U_source"] = config["hubbard_U_source"]
    if "kpts" in params:
        prov["kpoints"] = list(params["kpts"])
    return {k: v for k, v in prov.items() if v is not None}


def failure_list(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report entry of each hop result that did not give an event (with its exception)."""
    return [{"event_key": r.get("event_key"),
             "failure_reason": r.get("failure_reason") or "incomplete",
             "message": r.get("failure_message", ""),
             **({"exception": r["exception"]} if r.get("exception") else {})}
            for r in results]


def assemble_catalog(results: list[dict[str, Any]], sections: dict[str, Any], *, name: str,
                     description: str = "", conditions: dict[str, Any] | None = None,
                     allow_mixed_theory: bool = False,
                     missing_event_policy: dict[str, Any] | None = None
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (catalog JSON dict, report) from hop result records and the catalog sections."""
    ok = [r for r in results if not r.get("failure_reason") and r.get("forward_barrier_eV")
          is not None and r.get("prefactor_Hz") is not None and r.get("event_key")]
    failed = failure_list([r for r in results if r not in ok])
    theories: dict[str, list[str]] = {}
    for r in ok:
        key = repr(sorted(level_of_theory(r).items()))
        theories.setdefault(key, []).append(r["event_key"])
    if len(theories) > 1 and not allow_mixed_theory:
        groups = "; ".join(f"{', '.join(keys)} with {theory}" for theory, keys in
                           theories.items())
        raise CatalogError(f"the results mix levels of theory: {groups}", field="calculator",
                           hint="recompute at one level of theory, or allow mixing explicitly")
    events: list[dict[str, Any]] = []
    used: dict[str, str] = {}
    duplicates: list[str] = []
    for direction in ("forward", "reverse"):
        for r in ok:
            species, ini, fin = parse_event_key(r["event_key"])
            if direction == "reverse":
                if ini == fin:
                    continue
                ini, fin = fin, ini
                barrier = r.get("reverse_barrier_eV")
                prefactor = r.get("reverse_prefactor_Hz")
                if prefactor is None:
                    failed.append({"event_key": f"{species}/{ini}->{fin}",
                                   "failure_reason": "reverse_prefactor_failed",
                                   "message": "the final state has a soft mode: no reverse "
                                   "prefactor; compute the reverse hop directly"})
                    continue
            else:
                barrier, prefactor = r["forward_barrier_eV"], r["prefactor_Hz"]
            key = f"{species}/{ini}->{fin}"
            if key in used:
                if direction == "forward":
                    duplicates.append(key)
                continue
            used[key] = direction
            events.append({
                "id": key.replace("/", "_in_").replace("->", "_to_").replace(":", "_"),
                "mechanism": "vacancy_hop", "species": species, "initial_region": ini,
                "final_region": fin, "barrier_eV": round(max(float(barrier), 0.0), 6),
                "prefactor_Hz": float(prefactor),
                "provenance": result_provenance(r, f"kmcflow campaign {name}", direction)})
    if not events:
        raise CatalogError("no hop succeeded: nothing to assemble", field="events",
                           hint="see the failures in the campaign report")
    catalog = {"schema": SCHEMA_NAME, "schema_version": SCHEMA_VERSION, "name": name,
               "description": description or f"computed by kmcflow campaign {name}",
               "units": {"energy": "eV", "prefactor": "Hz", "length": "Angstrom",
                         "temperature": "K"},
               **sections, "rate_model": "table", "events": events}
    if conditions:
        catalog["conditions"] = conditions
    if missing_event_policy:
        catalog["missing_event_policy"] = missing_event_policy
    _, problems = validate_catalog_data(catalog)
    report = {"n_results": len(results), "n_events": len(events), "failed": failed,
              "duplicates": sorted(set(duplicates)),
              "levels_of_theory": len(theories),
              "problems": [p.model_dump() for p in problems]}
    return catalog, report
