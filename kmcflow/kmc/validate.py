"""Reference checks of the engine against exact results (``kmcflow kmc validate``).

Each check runs the real engine on a small catalog built in memory and compares one measured
number with an independent reference:

``correlation_factor``
    One vacancy on >= 1e4 sites: f = sum_i |R_i|^2 / (n_hops * lambda^2) from the tracer
    displacements, against the known f0 of the lattice (square 1/(pi - 1), sc 0.65311,
    fcc 0.78145, ...).
``collective_diffusion``
    One species plus vacancies without interactions, a step in the vacancy content: the erfc
    fit gives D = z w lambda^2 / (2 d) (= w a^2 on square, sc, bcc, fcc) whatever the
    concentration.
``isotope_interdiffusion`` and ``isotope_width``
    Two labels of one species with equal rates: D_interdiffusion = f0 c_v z w lambda^2 / (2 d)
    (= f0 c_v w a^2 on the cubic lattices) and the 10-90 width = 3.6248 sqrt(D t).
``boltzmann_occupation``
    One species in two hosts whose site energies differ by dE, KRA rates: the equilibrium
    occupations obey Fermi-Dirac statistics, n_B (1 - n_A) / (n_A (1 - n_B)) = exp(-dE / kT).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from kmcflow.kmc.analysis import (
    fit_interdiffusion,
    width_10_90,
)
from kmcflow.kmc.catalog import K_B_EV_PER_K, Catalog
from kmcflow.kmc.engine import Simulation, couple_geometry
from kmcflow.kmc.lattice import PRESET_NAMES, build_block, preset

BARRIER_EV = 0.5
PREFACTOR_HZ = 1.0e13
TEMPERATURE_K = 600.0


@dataclass(frozen=True)
class CheckResult:
    """One reference check: what was measured, against what, and whether it passed."""

    check: str
    lattice: str
    measured: float
    reference: float
    tolerance: float
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict:
        """Return a JSON-ready record."""
        return asdict(self)


def uniform_catalog(
    lattice: str,
    species: tuple[str, ...] = ("A", "B"),
    initial: tuple[str, str] = ("A", "B"),
    barrier_eV: float = BARRIER_EV,
    prefactor_Hz: float = PREFACTOR_HZ,
    boundary_z: str = "periodic",
    site_energies_eV: dict[str, dict[str, float]] | None = None,
    a_A: float = 1.0,
) -> Catalog:
    """A catalog in which every hop of every species has the same barrier (or E_KRA).

    With ``site_energies_eV`` the catalog uses the ``kra`` model so that the site energies
    enter the rates; otherwise the ``table`` model.
    """
    kra = site_energies_eV is not None
    hosts = ("A_host", "B_host")
    events = []
    for sp in species:
        for ri in hosts:
            for rf in hosts:
                ev = {"id": f"{sp}_{ri}_{rf}", "species": sp, "initial_region": ri,
                      "final_region": rf, "prefactor_Hz": prefactor_Hz,
                      "provenance": {"source": "kmcflow reference check"}}
                ev["kra_eV" if kra else "barrier_eV"] = barrier_eV
                events.append(ev)
    data = {
        "schema": "kmcflow.catalog", "schema_version": 1, "name": f"reference_{lattice}",
        "units": {}, "lattice": {"preset": lattice, "a_A": a_A}, "species": list(species),
        "hosts": [{"name": h, "initial_species": s} for h, s in zip(hosts, initial, strict=True)],
        "interface": {"boundary_z": boundary_z},
        "rate_model": "kra" if kra else "table", "events": events,
    }
    if kra:
        data["energy_model"] = {"site_energies_eV": site_energies_eV}
    return Catalog.model_validate(data)


def hop_rate_Hz(temperature_K: float = TEMPERATURE_K) -> float:
    """The rate w of every hop in :func:`uniform_catalog`."""
    return PREFACTOR_HZ * math.exp(-BARRIER_EV / (K_B_EV_PER_K * temperature_K))


def _long_cells(lattice: str, min_sites: int) -> tuple[int, int, int]:
    """Cells with at least ``min_sites`` sites in-plane-square and four times longer along z."""
    lat = preset(lattice)
    if lat.dimension == 2:
        return (math.ceil(min_sites / lat.n_basis / 100), 1, 100)
    n = math.ceil((min_sites / lat.n_basis / 4) ** (1 / 3))
    return (n, n, 4 * n)


def cells_for(lattice: str, min_sites: int) -> tuple[int, int, int]:
    """Cubic-ish (or square, for 2D) cells giving at least ``min_sites`` sites."""
    lat = preset(lattice)
    if lat.dimension == 2:
        n = math.ceil(math.sqrt(min_sites / lat.n_basis))
        return (n, 1, n + (n % 2))
    n = math.ceil((min_sites / lat.n_basis) ** (1 / 3))
    return (n, n, n + (n % 2))


def _lambda2_and_z(lattice: str) -> tuple[float, int, int]:
    lat = preset(lattice)
    from kmcflow.kmc.lattice import nearest_neighbours

    shell = nearest_neighbours(lat)
    return shell.distance_A**2, int(shell.coordination[0]), lat.dimension


def check_correlation_factor(lattice: str, replicas: int = 32, hops_per_site: float = 10.0,
                             seed: int = 1, min_sites: int = 10_000,
                             tolerance: float = 0.01) -> CheckResult:
    """Tracer correlation factor of a single vacancy from the tracer displacements.

    The sum of squared tracer displacements of one replica fluctuates by about
    sqrt(2 / (d N)) whatever its length (each atom's R^2 is a chi-square variable), so the
    check pools ``replicas`` independent replicas of ``hops_per_site * N`` hops each.
    """
    cat = uniform_catalog(lattice)
    cells = cells_for(lattice, min_sites)
    n_sites = math.prod(cells) * preset(lattice).n_basis
    lam2, _, _ = _lambda2_and_z(lattice)
    total_sq, total_hops = 0.0, 0
    for r in range(replicas):
        sim = Simulation(cat, cells, TEMPERATURE_K, 1.0 / n_sites, seed=seed, replica=r)
        sim.run(int(hops_per_site * n_sites))
        obs = sim.sample()
        total_sq += float(np.sum(obs["msd_A2"] * obs["n_atoms"]))
        total_hops += sim.n_events
    f = total_sq / (total_hops * lam2)
    ref = preset(lattice).f0
    return CheckResult("correlation_factor", lattice, f, ref, tolerance,
                       abs(f / ref - 1) <= tolerance,
                       f"{n_sites} sites, 1 vacancy, {replicas} replicas, {total_hops} hops")


def _couple_run(sim: Simulation, n_samples: int, t_end: float):
    times = np.linspace(0.0, t_end, n_samples)
    x = []
    for t in times:
        sim.run(t_stop=t)
        c = sim.sample()["concentration"]
        tot = c.sum(axis=0)
        x.append(c[0] / np.where(tot > 0, tot, 1.0) if c.shape[0] > 1 else c[0])
    return times, np.array(x), sim.couple.geometry(sim.block)


def check_isotope(lattice: str, seed: int = 1, tolerance: float = 0.05,
                  min_sites: int = 20_000, vacancy_fraction: float = 0.02,
                  replicas: int = 2) -> list[CheckResult]:
    """Isotope couple: interdiffusion coefficient and the 10-90 width."""
    cat = uniform_catalog(lattice)
    lam2, z, d = _lambda2_and_z(lattice)
    w = hop_rate_Hz()
    d_ref = preset(lattice).f0 * vacancy_fraction * z * w * lam2 / (2 * d)
    cells = _long_cells(lattice, min_sites)
    block = build_block(preset(lattice), cells)
    t_end = (0.1 * block.length_z_A / 2) ** 2 / d_ref
    d_fit, widths, refs = [], [], []
    for r in range(replicas):
        sim = Simulation(cat, cells, TEMPERATURE_K, vacancy_fraction, seed=seed, replica=r)
        times, x, geom = _couple_run(sim, 9, t_end)
        fit = fit_interdiffusion(times, sim.block.layer_z_A, x, geom)
        d_fit.append(fit.D_A2_per_s)
        widths.append(width_10_90(sim.block.layer_z_A, x[-1], geom))
        refs.append(3.6248 * math.sqrt(d_ref * times[-1]))
    d_mean = float(np.mean(d_fit))
    w_mean, w_ref = float(np.mean(widths)), float(np.mean(refs))
    detail = f"{block.n_sites} sites, c_v = {vacancy_fraction}, {replicas} replicas"
    return [
        CheckResult("isotope_interdiffusion", lattice, d_mean, d_ref, tolerance,
                    abs(d_mean / d_ref - 1) <= tolerance, detail + " (Angstrom^2/s)"),
        CheckResult("isotope_width", lattice, w_mean, w_ref, tolerance,
                    abs(w_mean / w_ref - 1) <= tolerance,
                    "10-90 width at the end vs 3.6248 sqrt(D t) with the reference D (Angstrom)"),
    ]


def check_collective(lattice: str, seed: int = 2, tolerance: float = 0.03,
                     min_sites: int = 60_000, replicas: int = 12) -> CheckResult:
    """Single species with vacancies: collective D = z w lambda^2 / (2 d) from a decaying mode.

    The layers start with exactly 80 % (first host) and 40 % (second host) of their sites
    occupied. For the symmetric exclusion process the mean profile obeys the diffusion
    equation exactly, so the amplitude of the longest periodic mode, k = 2 pi / L, decays as
    exp(-Gamma t) with Gamma = w sum_nb (1 - cos(k dz_nb)) over the neighbour slots (which
    tends to D k^2 as k -> 0). The measured decay rate, averaged over replicas, is reported as
    D = D_ref * Gamma_measured / Gamma_exact so that short boxes (wide in x-y to beat the
    noise) carry no discretisation error.
    """
    cat = uniform_catalog(lattice, species=("A",), initial=("A", "A"))
    lam2, z, d = _lambda2_and_z(lattice)
    d_ref = z * hop_rate_Hz() * lam2 / (2 * d)
    lat = preset(lattice)
    if lat.dimension == 3:
        n = math.ceil(math.sqrt(min_sites / lat.n_basis / 12))
        cells = (n, n, 12)
    else:
        cells = (math.ceil(min_sites / lat.n_basis / 24), 1, 24)
    block = build_block(lat, cells)
    layers = block.site_layers()
    host_of_layer = couple_geometry(block, 0.5).host_of_layer
    amplitudes = []
    for r in range(replicas):
        rng = np.random.default_rng([seed, r])
        occ = np.ones(layers.size, np.int8)
        for layer in range(block.n_layers):
            sites = np.flatnonzero(layers == layer)
            n_vac = round(sites.size * (0.2 if host_of_layer[layer] == 0 else 0.6))
            occ[rng.choice(sites, size=n_vac, replace=False)] = 0
        sim = Simulation(cat, cells, TEMPERATURE_K, 0.5, seed=seed, replica=r,
                         initial_occupation=occ)
        z_layer = sim.block.layer_z_A
        k = 2 * math.pi / sim.block.length_z_A
        mode = np.exp(1j * k * z_layer)
        c0 = sim.sample()["concentration"][0]
        a0 = np.sum((c0 - c0.mean()) * mode)
        dz = sim.block.shell.vector_A[0, : sim.block.shell.coordination[0], 2]
        gamma = hop_rate_Hz() * float(np.sum(1 - np.cos(k * dz)))
        t_end = 0.7 / gamma
        sim.run(t_stop=t_end)
        c1 = sim.sample()["concentration"][0]
        amplitudes.append(float(np.real(np.sum((c1 - c1.mean()) * mode) / a0)))
    d_meas = d_ref * (-math.log(float(np.mean(amplitudes))) / t_end) / gamma
    return CheckResult("collective_diffusion", lattice, d_meas, d_ref, tolerance,
                       abs(d_meas / d_ref - 1) <= tolerance,
                       f"{sim.block.n_sites} sites, occupations 0.8 | 0.4, {replicas} replicas, "
                       "mode decay (Angstrom^2/s)")


def check_boltzmann(lattice: str, delta_e_eV: float = 0.05, seed: int = 3,
                    tolerance: float = 0.03, min_sites: int = 4_000,
                    n_samples: int = 400, vacancy_fraction: float = 0.5,
                    statistic: str = "fermi_dirac") -> CheckResult:
    """Equilibrium occupations of two hosts with site energies 0 and dE.

    ``statistic="fermi_dirac"`` compares the odds ratio n_B (1 - n_A) / (n_A (1 - n_B)) with
    exp(-dE / kT) (exact with site exclusion); ``"boltzmann"`` compares the plain ratio
    n_B / n_A, which tends to the same value only in the dilute limit.
    """
    cat = uniform_catalog(lattice, species=("A",), initial=("A", "A"),
                          site_energies_eV={"A": {"A_host": 0.0, "B_host": delta_e_eV}})
    lat = preset(lattice)
    n = math.ceil(math.sqrt(min_sites / lat.n_basis / 4)) if lat.dimension == 3 else 0
    cells = (n, n, 4) if lat.dimension == 3 else (math.ceil(min_sites / lat.n_basis / 4), 1, 4)
    sim = Simulation(cat, cells, TEMPERATURE_K, vacancy_fraction, seed=seed)
    host = sim.couple.host_of_layer
    n_sites = sim.block.n_sites
    sim.run(40 * n_sites)  # equilibrate: many hops per atom
    n_a, n_b = [], []
    for _ in range(n_samples):
        sim.run(n_sites // 4)
        c = sim.sample()["concentration"][0]
        n_a.append(c[host == 0].mean())
        n_b.append(c[host == 1].mean())
    occ_a, occ_b = float(np.mean(n_a)), float(np.mean(n_b))
    if statistic == "fermi_dirac":
        measured, label = occ_b * (1 - occ_a) / (occ_a * (1 - occ_b)), "Fermi-Dirac odds ratio"
    else:
        measured, label = occ_b / occ_a, "Boltzmann ratio n_B/n_A"
    ref = math.exp(-delta_e_eV / (K_B_EV_PER_K * TEMPERATURE_K))
    return CheckResult("boltzmann_occupation", lattice, measured, ref, tolerance,
                       abs(measured / ref - 1) <= tolerance,
                       f"{label}, dE = {delta_e_eV} eV, n_A = {occ_a:.4f}, n_B = {occ_b:.4f}")


def run_checks(lattice: str | None = None, quick: bool = False) -> list[CheckResult]:
    """Run the reference checks on one lattice (default: every preset)."""
    names = PRESET_NAMES if lattice is None else (lattice,)
    results: list[CheckResult] = []
    for name in names:
        results.append(check_correlation_factor(name, replicas=12 if quick else 32))
        results.append(check_collective(name))
        results.extend(check_isotope(name, replicas=1 if quick else 2))
        results.append(check_boltzmann(name, n_samples=100 if quick else 400))
    return results
