"""Shared fixtures: paths of the bundled examples."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def examples() -> Path:
    return ROOT / "examples" / "catalogs"


@pytest.fixture
def cu_ni_region_catalog():
    """A factory of a Cu|Ni fcc region catalog (schema 1, table rates) as parsed JSON.

    ``barriers_eV`` per moving species (every region pair the same), one prefactor.
    """
    def make(a_A: float, barriers_eV: dict[str, float], prefactor_Hz: float = 4e12) -> dict:
        return {
            "schema": "kmcflow.catalog", "schema_version": 1, "name": "cu_ni", "units": {},
            "lattice": {"preset": "fcc", "a_A": a_A}, "species": ["Cu", "Ni"],
            "hosts": [{"name": "Cu", "initial_species": "Cu"},
                      {"name": "Ni", "initial_species": "Ni"}],
            "rate_model": "table",
            "events": [{"id": f"{sp}_{a}_{b}", "species": sp, "initial_region": a,
                        "final_region": b, "barrier_eV": barriers_eV[sp],
                        "prefactor_Hz": prefactor_Hz, "provenance": {"source": "test"}}
                       for sp in ("Cu", "Ni") for a in ("Cu", "Ni") for b in ("Cu", "Ni")]}
    return make
