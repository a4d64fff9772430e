"""The five-frequency model of solute diffusion in fcc, run through an environment catalog.

Le Claire's five frequencies for one solute B and one vacancy in an fcc host A:
``w0`` a host jump far from the solute, ``w1`` a host jump that keeps the vacancy a nearest
neighbour of B (rotation), ``w2`` the B-vacancy exchange, ``w3`` a host jump that takes the
vacancy from a neighbour of B to a non-neighbour (dissociation), ``w4`` its reverse
(association). Manning's analytic solute correlation factor (Manning, Phys. Rev. 136, A1758
(1964)) is

    f_B = (2 w1 + 7 F w3) / (2 w1 + 2 w2 + 7 F w3),
    7 F = 7 - (10 a^4 + 180.5 a^3 + 927 a^2 + 1341 a) / (2 a^4 + 40.2 a^3 + 254 a^2 + 597 a + 435),
    a = w4 / w0.

:func:`five_frequency_catalog` writes the model as a schema-2 catalog whose environment table
lists every environment one solute and one vacancy can form (the frequency of a host hop
follows from where B sits in the hop's environment: a neighbour of both sites (w1), of the
vacancy's site only (w3), of the atom's site only (w4), or absent (w0)). Detailed balance
(w4 / w3 = exp(-E_bind / kT)) is the energy model's A-B pair energy E3 - E4, so the catalog
passes the same checks as any other. :func:`check_five_frequency` runs the real engine on it
and measures f_B from the B jumps: after each B jump the vacancy sits where B came from, so the
jump directions form a Markov chain and f_B = (1 + <cos theta>) / (1 - <cos theta>) exactly,
with theta the angle between consecutive B jumps (Compaan and Haven). The error bar is that of
<cos theta> from batches of consecutive jumps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kmcflow.errors import ConfigError
from kmcflow.kmc.catalog import K_B_EV_PER_K, Catalog
from kmcflow.kmc.engine import Simulation
from kmcflow.kmc.environment import environment_key, key_text
from kmcflow.kmc.environment_rates import environment_geometry
from kmcflow.kmc.lattice import build_block, preset
from kmcflow.kmc.validate import CheckResult

PREFACTOR_HZ = 1.0e13
TEMPERATURE_K = 1000.0
TOLERANCE = 0.02
"""The issue's acceptance: within 2 % of Manning's formula."""
EQUAL_RATES_F0 = 0.78145
"""The fcc tracer correlation factor: the five-frequency f_B when all five are equal."""


def manning_solute_correlation(w0: float, w1: float, w2: float, w3: float, w4: float) -> float:
    """Manning's solute correlation factor f_B of the fcc five-frequency model."""
    if min(w0, w1, w2, w3, w4) <= 0 or not all(map(math.isfinite, (w0, w1, w2, w3, w4))):
        raise ConfigError("the five frequencies must be positive numbers", field="--rates",
                          hint="e.g. --rates 1,1,1,1,1")
    a = w4 / w0
    seven_f = 7.0 - (10 * a**4 + 180.5 * a**3 + 927 * a**2 + 1341 * a) / (
        2 * a**4 + 40.2 * a**3 + 254 * a**2 + 597 * a + 435)
    return (2 * w1 + seven_f * w3) / (2 * w1 + 2 * w2 + seven_f * w3)


def parse_rates(text: str | None) -> tuple[float, float, float, float, float]:
    """The five frequencies of ``--rates W0,W1,W2,W3,W4`` (Hz), checked."""
    if text is None:
        raise ConfigError("the five-frequency check needs --rates", field="--rates",
                          hint="e.g. --rates 1e6,1e6,1e6,1e6,1e6 (W0,W1,W2,W3,W4 in Hz)")
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 5 or not all(math.isfinite(w) and 0 < w < PREFACTOR_HZ for w in values):
        raise ConfigError(f"--rates {text!r} is not five positive frequencies below "
                          f"{PREFACTOR_HZ:.0e} Hz", field="--rates",
                          hint="e.g. --rates 1e6,1e6,1e7,1e6,1e6 (W0,W1,W2,W3,W4 in Hz)")
    return values  # type: ignore[return-value]


def _barrier_eV(rate_Hz: float, temperature_K: float) -> float:
    return K_B_EV_PER_K * temperature_K * math.log(PREFACTOR_HZ / rate_Hz)


def five_frequency_catalog(rates_Hz: tuple[float, float, float, float, float],
                           temperature_K: float = TEMPERATURE_K) -> Catalog:
    """A schema-2 fcc catalog (host A, solute B) whose hops run at the five frequencies at T.

    Each frequency w becomes a barrier kT ln(nu / w) with nu = 1e13 Hz, so at
    ``temperature_K`` the rates are exactly ``rates_Hz``.
    """
    w0, w1, w2, w3, w4 = (float(w) for w in rates_Hz)
    manning_solute_correlation(w0, w1, w2, w3, w4)  # refuses bad rates
    if max(rates_Hz) >= PREFACTOR_HZ:
        raise ConfigError(f"every frequency must stay below {PREFACTOR_HZ:.0e} Hz",
                          field="--rates")
    lattice = preset("fcc", 3.6)
    geometry = environment_geometry(lattice)
    n = int(geometry.envs.n_env_of_class[0])
    barrier = {name: _barrier_eV(w, temperature_K)
               for name, w in zip(("w0", "w1", "w2", "w3", "w4"), rates_Hz, strict=True)}

    none_code = 3  # codes: 1 host A, 2 solute B, 3 no site (padding)
    table, keys = [], set()

    def add(moving: int, solute_at: int | None, frequency: str) -> None:
        """One entry per symmetry-distinct environment (equivalent ones are skipped)."""
        codes = [2 if e == solute_at else 1 for e in range(n)]
        codes += [none_code] * (geometry.envs.n_env - n)
        key = (moving, environment_key(codes, 0, geometry.envs, 2))
        if key in keys:
            return
        keys.add(key)
        table.append({"key": key_text(["A", "B"], moving, 0, codes),
                      "barrier_eV": barrier[frequency], "prefactor_Hz": PREFACTOR_HZ,
                      "provenance": {"source": "five-frequency model", "notes": frequency}})

    add(1, None, "w0")
    add(2, None, "w2")
    for e in range(n):  # one solute at each environment site: w1, w3 or w4 by where it sits
        near_v, near_j = bool(geometry.near_v[0, e]), bool(geometry.near_j[0, e])
        add(1, e, "w1" if near_v and near_j else ("w3" if near_v else "w4"))
    events = [{"id": f"{sp}_{ri}_{rf}", "species": sp, "initial_region": ri,
               "final_region": rf, "barrier_eV": barrier["w0"], "prefactor_Hz": PREFACTOR_HZ,
               "provenance": {"source": "five-frequency model (never used: the table covers "
                              "every environment)"}}
              for sp in ("A", "B") for ri in ("host", "other") for rf in ("host", "other")]
    data = {
        "schema": "kmcflow.catalog", "schema_version": 2, "name": "five_frequency_fcc",
        "units": {}, "lattice": {"preset": "fcc", "a_A": 3.6}, "species": ["A", "B"],
        "hosts": [{"name": "host", "initial_species": "A"},
                  {"name": "other", "initial_species": "A"}],
        "rate_model": "table", "events": events,
        "energy_model": {"pair_interactions_eV": {"A-B": barrier["w3"] - barrier["w4"]}},
        "environments": {"table": table},
    }
    return Catalog.model_validate(data)


@dataclass(frozen=True)
class FiveFrequencyResult:
    """The measured solute correlation factor against Manning's, with what it rests on."""

    rates_Hz: tuple[float, float, float, float, float]
    measured: float
    measured_stderr: float
    reference: float
    solute_jumps: int
    events: int
    cells: tuple[int, int, int]
    mean_cos_theta: float
    events_by_source: dict[str, int]

    def as_check_result(self, tolerance: float = TOLERANCE):
        """The record ``kmcflow kmc validate`` prints (passes within ``tolerance``)."""
        w = ",".join(f"{x:g}" for x in self.rates_Hz)
        return CheckResult(
            "five_frequency", "fcc", self.measured, self.reference, tolerance,
            abs(self.relative_error) <= tolerance,
            f"solute correlation factor f_B, rates W0..W4 = {w} Hz; measured "
            f"{self.measured:.4f} +- {self.measured_stderr:.4f} from {self.solute_jumps} solute "
            f"jumps ({self.events} events, {'x'.join(map(str, self.cells))} cells, one solute, "
            "one vacancy); reference: Manning's formula")

    @property
    def relative_error(self) -> float:
        """The relative error, measured / reference - 1."""
        return self.measured / self.reference - 1.0


def check_five_frequency(rates_Hz: tuple[float, float, float, float, float],
                         solute_jumps: int = 40_000, cells: tuple[int, int, int] = (8, 8, 8),
                         seed: int = 1, batches: int = 40) -> FiveFrequencyResult:
    """Run one solute and one vacancy until B has jumped ``solute_jumps`` times; measure f_B."""
    if solute_jumps < 2 * batches:
        raise ConfigError(f"need at least {2 * batches} solute jumps, got {solute_jumps}",
                          field="solute_jumps")
    catalog = five_frequency_catalog(rates_Hz)
    n_sites = math.prod(cells) * 4
    occ = np.ones(n_sites, np.int8)
    occ[0] = 2  # the solute; its first neighbour is the vacancy
    block = build_block(preset("fcc", 3.6), cells)
    occ[int(block.offsets[block.site_class[0], 0])] = 0
    sim = Simulation(catalog, cells, TEMPERATURE_K, 1.0 / n_sites, seed=seed,
                     initial_occupation=occ)
    sim.log_species_jumps("B")
    shell = sim.block.shell
    chunk = max(100_000, 20 * n_sites)
    while sum(len(r) for r in sim.species_jumps) < solute_jumps + 1:
        sim.run(chunk)
    records = np.concatenate(sim.species_jumps)[: solute_jumps + 1]
    jumps = -shell.vector_A[records[:, 4], records[:, 5]]
    unit = jumps / np.linalg.norm(jumps, axis=1, keepdims=True)
    cos = np.einsum("ij,ij->i", unit[1:], unit[:-1])
    batch_means = np.array([b.mean() for b in np.array_split(cos, batches)])
    c = float(cos.mean())
    c_err = float(batch_means.std(ddof=1) / math.sqrt(batches))
    f = (1 + c) / (1 - c)
    f_err = 2 / (1 - c) ** 2 * c_err
    report = sim.environment_report() or {}
    return FiveFrequencyResult(tuple(float(w) for w in rates_Hz), f, f_err,
                               manning_solute_correlation(*rates_Hz), solute_jumps,
                               sim.n_events, tuple(cells), c,
                               report.get("events_by_source", {}))
