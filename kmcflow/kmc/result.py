"""The result of one kMC trajectory, in memory; the run folder is written from it.

:class:`KmcResult` holds the sampled observables (profiles, widths, tracer displacements), the
interdiffusion fit and the facts of the run. :meth:`KmcResult.write` writes the folder
``kmcflow kmc run`` writes (``observables.npz``, ``summary.json``); nothing is read back from
files to build it, so a notebook gets the same numbers without touching the disk.
:func:`kmcflow.kmc.runner.run_kmc` returns one; the runner writes its folder from it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kmcflow import __version__
from kmcflow.atomic_io import write_json, write_npz
from kmcflow.errors import ConfigError
from kmcflow.kmc.analysis import (
    WIDTH_10_90_PER_SIGMA,
    CoupleGeometry,
    InterdiffusionFit,
    fit_interdiffusion,
)
from kmcflow.kmc.catalog import Catalog
from kmcflow.kmc.observables import first_host_fraction, geometry_arrays, width_series
from kmcflow.kmc.run_settings import RunSettings
from kmcflow.outputs import check_output_folder, write_marker

FIT_METHOD = "erfc fit of the first-host fraction, sigma^2 = 2 D t + b"


@dataclass(eq=False)
class KmcResult:
    """One finished kMC trajectory of an A|B couple.

    Arrays are per sample (``time_s``), per layer (``z_A``) and per species (``species``,
    the catalog's order). ``interdiffusion`` is the fit sigma^2 = 2 D t + b of the erfc
    variance; it is None when the run was too short or degenerate, and ``fit_error`` says why.
    """

    catalog: Catalog = field(repr=False)
    settings: RunSettings
    time_s: np.ndarray = field(repr=False)
    z_A: np.ndarray = field(repr=False)
    concentration: np.ndarray = field(repr=False)
    vacancy_concentration: np.ndarray = field(repr=False)
    msd_A2: np.ndarray = field(repr=False)
    n_events: np.ndarray = field(repr=False)
    x_first_host: np.ndarray = field(repr=False)
    width_10_90_A: np.ndarray = field(repr=False)
    width_erfc_A: np.ndarray = field(repr=False)
    geometry: CoupleGeometry = field(repr=False)
    length_z_A: float
    periodic_z: bool
    interdiffusion: InterdiffusionFit | None
    fit_error: str | None
    summary: dict[str, Any] = field(repr=False)

    @property
    def species(self) -> list[str]:
        """The catalog's species, the order of the species axes."""
        return list(self.catalog.species)

    @property
    def stalled(self) -> bool:
        """Whether no hop was possible before the run's end (no rate left)."""
        return bool(self.summary["stalled"])

    @property
    def succeeded(self) -> bool:
        """Whether the run ended normally and gave an interdiffusion coefficient."""
        return not self.stalled and self.interdiffusion is not None

    @property
    def failure(self) -> str | None:
        """Why the run gave no D (None when it did)."""
        if self.stalled:
            return "stalled: no hop was possible before the end of the run"
        return self.fit_error

    @property
    def D_A2_per_s(self) -> float | None:
        """Interdiffusion coefficient, Angstrom^2/s (None without a fit)."""
        return None if self.interdiffusion is None else self.interdiffusion.D_A2_per_s

    @property
    def line_fit_stderr_A2_per_s(self) -> float | None:
        """Least-squares error of the fitted line's slope / 2, Angstrom^2/s.

        Not a standard error of D: the samples of one trajectory are correlated and this
        understates the spread of D between independent runs about 5x. Run several seeds
        (``replica=``) and take the spread of their D for a standard error.
        """
        if self.interdiffusion is None:
            return None
        se = self.interdiffusion.D_stderr_A2_per_s
        return float(se) if np.isfinite(se) else None

    @property
    def sigma2_A2(self) -> np.ndarray:
        """The erfc-fit variance sigma^2 at every sample, Angstrom^2 (D is its slope / 2)."""
        return (np.asarray(self.width_erfc_A) / WIDTH_10_90_PER_SIGMA) ** 2

    def plot_sigma2(self, path: str | os.PathLike[str]) -> Path:
        """Save sigma^2(t) with the fitted line 2 D t + b (the line D is read from) as PNG."""
        from kmcflow.kmc.plots import plot_sigma2, sigma2_curve

        fit = self.interdiffusion
        label = f"{self.catalog.name}, {self.settings.temperature_K:g} K"
        curve = sigma2_curve([self.time_s], [self.sigma2_A2], label,
                             None if fit is None else fit.D_A2_per_s,
                             None if fit is None else fit.intercept_A2)
        return plot_sigma2([curve], path)

    def observables(self) -> dict[str, np.ndarray]:
        """The arrays of ``observables.npz`` (its keys and units)."""
        return {"time": self.time_s, "z": self.z_A, "species": np.array(self.species),
                "concentration": self.concentration,
                "vacancy_concentration": self.vacancy_concentration,
                "width_10_90": self.width_10_90_A, "width_erfc": self.width_erfc_A,
                "msd": self.msd_A2, "n_events": self.n_events, "x_first_host": self.x_first_host,
                "length_z_A": np.array(self.length_z_A), "periodic_z": np.array(self.periodic_z),
                **geometry_arrays(self.geometry)}

    def write(self, folder: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
        """Write the run folder ``kmcflow kmc run`` writes (``observables.npz``, ``summary.json``).

        The output rules of every kmcflow writer apply (:mod:`kmcflow.outputs`): an existing
        folder is replaced only if kmcflow wrote it as a run and ``overwrite`` is given, and
        the folder appears complete or not at all. ``kmcflow kmc analyze`` reads it.
        """
        from kmcflow.atomic_io import replace_directory

        check_output_folder(folder, "kmc_run", overwrite=overwrite)
        out = Path(folder)
        work = partial_path(out)
        if work.exists():
            shutil.rmtree(work)
        self.write_into(work)
        replace_directory(work, out)
        return out

    def write_into(self, folder: str | os.PathLike[str]) -> Path:
        """Write the run's files into ``folder`` (made if missing) without any check."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        write_npz(out / "observables.npz", **self.observables())
        write_json(out / "summary.json", self.summary)
        write_marker(out, "kmc_run")
        return out


def partial_path(out_dir: str | os.PathLike[str]) -> Path:
    """The folder a run is written into before it is renamed to ``out_dir``."""
    out = Path(out_dir)
    return out.with_name(f".{out.name}.partial")


def kmc_result(*, catalog: Catalog, settings: RunSettings, samples: dict[str, np.ndarray],
               layer_z_A: np.ndarray, length_z_A: float, periodic_z: bool,
               geometry: CoupleGeometry, facts: dict[str, Any], catalog_file: str | None,
               catalog_sha256: str | None, extra: dict | None = None) -> KmcResult:
    """Analyse the samples of a run (widths, the D fit) and assemble its :class:`KmcResult`.

    ``samples`` holds ``time``, ``n_events``, ``concentration``, ``vacancy_concentration`` and
    ``msd`` as the runner's recorder keeps them; ``facts`` the counts and timings the summary
    reports (``n_sites``, ``n_vacancies``, ``lattice``, ``events_executed``,
    ``simulated_time_s``, ``cpu_time_s``, ``bytes_per_site``, ``stalled``, ``event_counts``).
    """
    z = np.asarray(layer_z_A)
    x = first_host_fraction(catalog, samples["concentration"])
    w1090, werf = width_series(z, x, geometry)
    fit: InterdiffusionFit | None = None
    fit_error: str | None = None
    try:
        fit = fit_interdiffusion(samples["time"], z, x, geometry)
    except ConfigError as exc:  # a run too short to fit is still a valid run
        fit_error = exc.message
    except (np.linalg.LinAlgError, ValueError) as exc:  # a degenerate series: no fit, say why
        fit_error = f"the fit failed ({type(exc).__name__}: {exc})"
    cpu = facts["cpu_time_s"]
    summary = {
        "kmcflow_version": __version__,
        "catalog": {"name": catalog.name, "file": catalog_file, "sha256": catalog_sha256},
        "inputs": {**asdict(settings), "cells": list(settings.cells),
                   "boundary_z": "periodic" if periodic_z else "closed",
                   "lattice": facts["lattice"], "n_sites": facts["n_sites"],
                   "n_vacancies": facts["n_vacancies"]},
        "events_executed": facts["events_executed"],
        "simulated_time_s": facts["simulated_time_s"],
        "cpu_time_s": cpu,
        "events_per_second": facts["events_executed"] / cpu if cpu > 0 else None,
        "bytes_per_site": facts["bytes_per_site"],
        "stalled": facts["stalled"],
        "final_width_10_90_A": None if np.isnan(w1090[-1]) else float(w1090[-1]),
        "interdiffusion": fit.record(FIT_METHOD) if fit is not None else {"error": fit_error},
        "event_counts": facts["event_counts"],
        "units": {"time": "s", "length": "Angstrom", "D": "Angstrom^2/s (and cm^2/s)"},
        **(extra or {}),
    }
    return KmcResult(catalog=catalog, settings=settings, time_s=samples["time"], z_A=z,
                     concentration=samples["concentration"],
                     vacancy_concentration=samples["vacancy_concentration"],
                     msd_A2=samples["msd"], n_events=samples["n_events"], x_first_host=x,
                     width_10_90_A=w1090, width_erfc_A=werf, geometry=geometry,
                     length_z_A=float(length_z_A), periodic_z=bool(periodic_z),
                     interdiffusion=fit, fit_error=fit_error, summary=summary)
