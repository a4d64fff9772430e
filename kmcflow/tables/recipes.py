"""Recipes: how to recompute a published barrier with a calculator kmcflow can run.

A row's ``recipe`` is either a named, built-in recipe or a pair of endpoint files::

    recipe: {name: ase_emt_au_al100}
    recipe: {initial: hop_initial.extxyz, final: hop_final.extxyz, calculator: emt,
             n_images: 4, relax: true}

Endpoint files and a calculator config file are read relative to the table's folder.

Built-in: ``ase_emt_au_al100`` (ASE's NEB tutorial: an Au adatom hopping between hollow sites
of Al(100), a 2x2x3 slab with the bottom two layers fixed, EMT; the tutorial reports 0.374
eV), and ``emt_vacancy_hop_<El>`` for El in Cu, Ni, Al, Au (a vacancy hop in the bundled fcc
crystal with EMT). A recipe relaxes both endpoints and runs the CI-NEB of
:mod:`kmcflow.workflows.hop` (no prefactor: tables quote the barrier).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kmcflow.errors import ConfigError, KmcflowError


def _endpoints(recipe: dict[str, Any], base: Path):
    name = recipe.get("name")
    if name == "ase_emt_au_al100":
        from kmcflow.workflows.reference_hops import au_on_al100

        return (*au_on_al100(), "emt")
    if isinstance(name, str) and name.startswith("emt_vacancy_hop_"):
        element = name.removeprefix("emt_vacancy_hop_")
        if element not in ("Cu", "Ni", "Al", "Au"):
            raise ConfigError(f"no EMT vacancy recipe for {element!r}", field="recipe",
                              hint="EMT covers Cu, Ni, Al, Au")
        from kmcflow.workflows.reference_hops import bulk_vacancy_hop

        return (*bulk_vacancy_hop(element), "emt")
    if name is not None:
        raise ConfigError(f"unknown recipe {name!r}", field="recipe",
                          hint="ase_emt_au_al100, emt_vacancy_hop_Cu (or Ni, Al, Au), or "
                          "initial/final files")
    if "initial" not in recipe or "final" not in recipe:
        raise ConfigError("a recipe needs a name or both 'initial' and 'final'", field="recipe")
    from kmcflow.workflows.hop import read_atoms

    calculator = recipe.get("calculator", "emt")
    if isinstance(calculator, str) and calculator.endswith((".yaml", ".yml", ".json")) and \
            not Path(calculator).is_absolute():
        calculator = str(base / calculator)  # a config file beside the table, like the endpoints
    return (read_atoms(base / recipe["initial"]), read_atoms(base / recipe["final"]),
            calculator)


def recompute_barrier(recipe: dict[str, Any], base: Path, workdir: Path) -> dict[str, Any]:
    """Run the recipe; return the forward barrier (eV) and how it was obtained.

    A band that fails (no interior maximum, not converged, unequal endpoints of a symmetric
    hop, a calculator error) gives no ``computed_barrier_eV``: the record names the failure in
    ``recompute_failure`` and says why in ``recompute_note``.
    """
    from pydantic import ValidationError

    from kmcflow.workflows.calculators import check_ready, load_calculator_config
    from kmcflow.workflows.hop import relax_endpoint, run_neb
    from kmcflow.workflows.neb import check_endpoints
    from kmcflow.workflows.settings import NebSettings, RelaxSettings, settings_error

    # a setting the recipe leaves out is the settings model's default
    n_images, relax_on = recipe.get("n_images"), recipe.get("relax")
    if n_images is not None and (isinstance(n_images, bool) or not isinstance(n_images, int)):
        raise ConfigError(f"n_images must be a whole number, got {n_images!r}",
                          field="recipe.n_images", hint="e.g. n_images: 4")
    if relax_on is not None and not isinstance(relax_on, bool):
        raise ConfigError(f"relax must be true or false, got {relax_on!r}",
                          field="recipe.relax")
    for key in ("initial", "final"):
        if key in recipe and not isinstance(recipe[key], str):
            raise ConfigError(f"{key} must be a file name, got {recipe[key]!r}",
                              field=f"recipe.{key}")
    try:
        neb = NebSettings(**({} if n_images is None else {"n_images": n_images}))
    except ValidationError as exc:
        raise settings_error(exc, model=NebSettings, prefix="recipe.") from exc
    initial, final, calc = _endpoints(recipe, base)
    config = load_calculator_config(calc)
    check_ready(config, sorted(set(initial.get_chemical_symbols())))
    relax = RelaxSettings(**({} if relax_on is None else {"enabled": relax_on}))
    check_endpoints(initial, final)
    try:
        ini = relax_endpoint(initial, config, relax, workdir / "relax_initial")
        fin = relax_endpoint(final, config, relax, workdir / "relax_final")
    except KmcflowError:
        raise
    except Exception as exc:  # the code failed on an endpoint: no barrier, say why
        return {"calculator": config.name, "n_images": neb.n_images,
                "recompute_failure": "calculator_error",
                "recompute_note": f"relaxing the endpoints failed: {type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:300]}"}
    band = run_neb(ini.atoms, fin.atoms, config, neb, workdir / "neb")
    record = {"calculator": config.name, "n_images": neb.n_images,
              "neb_converged": bool(band.converged), "force_calls": int(band.force_calls),
              "endpoints_converged": [ini.converged, fin.converged]}
    if band.failure_reason is not None or band.forward_barrier is None:
        # a band without a saddle has no barrier: its highest image is not one
        return {**record, "recompute_failure": band.failure_reason or "no_barrier",
                "recompute_note": f"the band failed ({band.failure_reason}): "
                f"{band.failure_message or 'no barrier'}"}
    return {**record, "computed_barrier_eV": float(band.forward_barrier)}
