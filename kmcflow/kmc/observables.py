"""Derived observables of a couple: the first-host fraction, interface widths, snapshots."""

from __future__ import annotations

import os

import numpy as np

from kmcflow.errors import ConfigError
from kmcflow.kmc.analysis import (
    WIDTH_10_90_PER_SIGMA,
    CoupleGeometry,
    fit_erfc,
    width_10_90,
)
from kmcflow.kmc.catalog import Catalog


def first_host_fraction(catalog: Catalog, concentration: np.ndarray) -> np.ndarray:
    """Fraction of the cations on each layer that are the first host's species.

    ``concentration`` has shape (samples, species, layers). With one species (both hosts
    start with it) the fraction of sites it occupies is returned instead.
    """
    a = catalog.species.index(catalog.hosts[0].initial_species)
    b = catalog.species.index(catalog.hosts[1].initial_species)
    if a == b:
        return concentration[:, a, :].copy()
    total = concentration[:, a, :] + concentration[:, b, :]
    return concentration[:, a, :] / np.where(total > 0, total, 1.0)


def saved_geometry(arrays) -> CoupleGeometry:
    """The couple geometry stored with a run's observables (``observables.npz``).

    Runs record where the engine put the interfaces (``interfaces_z_A``,
    ``first_host_below``): with a ``first_host_fraction`` other than 0.5 they are not at the
    middle. Files written before that was recorded fall back to the half-and-half split,
    which was the only geometry those versions analysed correctly.
    """
    z = np.asarray(arrays["z"], float)
    length, periodic = float(arrays["length_z_A"]), bool(arrays["periodic_z"])
    if "interfaces_z_A" in arrays and "first_host_below" in arrays:
        return CoupleGeometry(length, periodic,
                              tuple(float(v) for v in np.atleast_1d(arrays["interfaces_z_A"])),
                              tuple(bool(v) for v in np.atleast_1d(arrays["first_host_below"])))
    return CoupleGeometry.half_and_half(z, length, periodic)


def geometry_arrays(geometry: CoupleGeometry) -> dict[str, np.ndarray]:
    """What :func:`saved_geometry` reads back, as arrays for an ``.npz`` file."""
    return {"interfaces_z_A": np.array(geometry.interfaces_z_A, float),
            "first_host_below": np.array(geometry.a_below, bool)}


def width_series(z_A: np.ndarray, x: np.ndarray, geometry: CoupleGeometry):
    """10-90 width and erfc-fit width (2.5631 sigma) of every sample; NaN where undefined."""
    w1090 = np.full(x.shape[0], np.nan)
    werf = np.full(x.shape[0], np.nan)
    for i, profile in enumerate(x):
        try:
            w1090[i] = width_10_90(z_A, profile, geometry)
        except ConfigError:  # a level not crossed: undefined width, not an error
            pass
        try:
            werf[i] = WIDTH_10_90_PER_SIGMA * fit_erfc(z_A, profile, geometry).sigma_A
        except ConfigError:  # no convergent fit (e.g. the sharp step at t = 0)
            pass
    return w1090, werf


def write_extxyz(path: str | os.PathLike[str], sim, append: bool = False) -> None:
    """Write the occupied sites as one extended-XYZ frame that OVITO and ASE read.

    Vacancies are left out; each atom carries its species and the host region of its site.
    """
    pos = sim.block.site_positions_A()
    occupied = np.flatnonzero(sim.occ != 0)
    names = np.array(sim.catalog.species)[sim.occ[occupied] - 1]
    region = np.array(sim.rates.regions)[sim.region[occupied]]
    cell = sim.block.cell_matrix_A()
    lattice = " ".join(f"{v:.8f}" for v in cell.reshape(-1))
    pbc = "T T T" if sim.block.periodic_z else "T T F"
    header = (f'Lattice="{lattice}" Properties=species:S:1:pos:R:3:region:S:1 '
              f'Time={sim.time_s:.10e} pbc="{pbc}"')
    lines = [str(occupied.size), header]
    lines += [f"{n} {p[0]:.6f} {p[1]:.6f} {p[2]:.6f} {r}"
              for n, p, r in zip(names, pos[occupied], region, strict=True)]
    with open(path, "a" if append else "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
