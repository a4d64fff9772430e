"""kmcflow: from two bulk crystals to a kinetic Monte Carlo prediction of interface inter-diffusion.

The package has four stages, each usable on its own:

- :mod:`kmcflow.structures` builds interface slabs and enumerates vacancy hops (pymatgen);
- :mod:`kmcflow.workflows` computes barriers and prefactors (jobflow + ASE);
- :mod:`kmcflow.kmc.catalog` holds the event catalog, the contract between DFT and kMC;
- :mod:`kmcflow.kmc` runs rejection-free lattice kinetic Monte Carlo (numpy + numba).

The names a notebook needs are attributes of this package (``kmcflow.run_kmc``,
``kmcflow.find_matches``, ...; the list is :data:`__all__`). Each is imported on first use, so
``import kmcflow`` stays cheap and needs none of the stages' dependencies; a name whose stage
needs an extra that is not installed raises a ModuleNotFoundError that names the extra
(``structures``: pymatgen, ASE, spglib; ``workflows``: jobflow, atomate2, emmet).

Example::

    import kmcflow

    catalog = kmcflow.load_catalog("examples/catalogs/isotope_couple.json")
    result = kmcflow.run_kmc(catalog, steps=2_000_000, seed=1)
    print(result.D_A2_per_s, "Angstrom^2/s")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_HOMES: dict[str, str] = {
    # stage 3: the event catalog
    "Catalog": "kmcflow.kmc.catalog",
    "load_catalog": "kmcflow.kmc.catalog",
    "validate_catalog": "kmcflow.kmc.catalog",
    "write_catalog": "kmcflow.kmc.catalog",
    # stage 4: kinetic Monte Carlo
    "RunSettings": "kmcflow.kmc.run_settings",
    "run_kmc": "kmcflow.kmc.runner",
    "run_kmc_to_folder": "kmcflow.kmc.runner",
    "KmcResult": "kmcflow.kmc.result",
    "arrhenius_study": "kmcflow.kmc.study",
    # stage 1: structures
    "read_structure": "kmcflow.structures.io",
    "MatchLimits": "kmcflow.structures.interface",
    "find_matches": "kmcflow.structures.interface",
    "build_interface": "kmcflow.structures.interface",
    "enumerate_hops": "kmcflow.structures.hops",
    "hop_endpoints": "kmcflow.structures.endpoints",
    # stage 2: barriers, prefactors, campaigns
    "CalculatorConfig": "kmcflow.workflows.calculators",
    "load_calculator_config": "kmcflow.workflows.calculators",
    "RelaxSettings": "kmcflow.workflows.settings",
    "NebSettings": "kmcflow.workflows.settings",
    "PrefactorSettings": "kmcflow.workflows.settings",
    "compute_hop": "kmcflow.workflows.hop",
    "HopResult": "kmcflow.workflows.results",
    "CampaignSpec": "kmcflow.workflows.campaign",
    "CampaignResult": "kmcflow.workflows.campaign",
    "load_campaign": "kmcflow.workflows.campaign",
    "run_campaign": "kmcflow.workflows.campaign",
    # environment-resolved barriers and the learning loop
    "random_alloy_hops": "kmcflow.structures.environment_sampling",
    "hops_for_keys": "kmcflow.structures.environment_sampling",
    "fit_environment_model": "kmcflow.kmc.environment_fit",
    "fit_folders": "kmcflow.workflows.environments",
    "LearnSettings": "kmcflow.learn",
    "run_learn": "kmcflow.learn",
    # published tables
    "read_table": "kmcflow.tables.table",
    "reproduce_table": "kmcflow.tables.reproduce",
}

__all__ = ["__version__", *_HOMES]


def __getattr__(name: str) -> Any:
    """Import a public name from its home module on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kmcflow' has no attribute {name!r}")
    extra = _extra_of(home)
    missing = _missing_package(extra) if extra else None
    if missing is not None:
        raise ModuleNotFoundError(
            f"kmcflow.{name} needs the {extra!r} extra ({missing} is not installed): "
            f"pip install 'kmcflow[{extra}]'", name=missing)
    module = importlib.import_module(home)
    value = getattr(module, name)
    globals()[name] = value  # later lookups skip this function
    return value


_EXTRA_PACKAGES = {"structures": ("pymatgen", "ase", "spglib"),
                   "workflows": ("pymatgen", "ase", "spglib", "jobflow", "atomate2", "emmet")}


def _missing_package(extra: str) -> str | None:
    """The first package of ``extra`` that cannot be imported (found without importing it)."""
    import importlib.util

    for package in _EXTRA_PACKAGES[extra]:
        try:
            found = importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):  # ValueError: a module set to None in sys.modules
            found = False
        if not found:
            return package
    return None


def _extra_of(home: str) -> str | None:
    """The optional extra a stage's module needs (None: the base install has it all)."""
    if home.startswith("kmcflow.structures"):
        return "structures"
    if home.startswith(("kmcflow.workflows", "kmcflow.learn")):
        return "workflows"
    return None


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
