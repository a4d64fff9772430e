"""Check a published table against itself: rates from barriers, and detailed balance.

For every row the rate is recomputed as k = nu exp(-E_a / k_B T) at the row's temperature and
compared with the published rate. A row is consistent when the two agree within a factor
(``tolerance_factor``, default 1.5: published rates are rounded to two digits and tables use
slightly different k_B T, which moves a 0.8 eV rate at 300 K by about 6 %; unit slips and
wrong temperatures move it by orders of magnitude). A published ``~0`` is consistent when the
recomputed rate is below ``zero_rate_per_s`` (default 1e-10 s^-1: less than one event in 300
years). For an inconsistent row the report gives the factor and what would explain the
published number: the temperature T* = E_a / (k_B ln(nu / k_pub)), or, at the stated
temperature, the barrier E* = k_B T ln(nu / k_pub).

Rows that name a reverse (``reverse_of``) are checked for detailed balance: the barrier
difference E_f - E_r must equal the reaction energy when the table gives one, and the
published rate ratio k_f / k_r must equal (nu_f / nu_r) exp(-(E_f - E_r) / k_B T).
"""

from __future__ import annotations

import math
from typing import Any

from kmcflow.kmc.constants import K_B_EV_PER_K
from kmcflow.tables.table import BarrierTable, TableRow

DEFAULT_TOLERANCE_FACTOR = 1.5
DEFAULT_ZERO_RATE_PER_S = 1e-10


def arrhenius_rate(barrier_eV: float, prefactor_Hz: float, temperature_K: float) -> float:
    """The Arrhenius rate nu exp(-E_a / k_B T) in s^-1."""
    return prefactor_Hz * math.exp(-barrier_eV / (K_B_EV_PER_K * temperature_K))


def explaining_temperature_K(barrier_eV: float, prefactor_Hz: float, rate: float) -> float | None:
    """The temperature at which nu exp(-E_a / k_B T) equals ``rate`` (None if none does)."""
    if not (0 < rate < prefactor_Hz) or barrier_eV <= 0:
        return None
    return barrier_eV / (K_B_EV_PER_K * math.log(prefactor_Hz / rate))


def check_row(row: TableRow, tolerance_factor: float = DEFAULT_TOLERANCE_FACTOR,
              zero_rate_per_s: float = DEFAULT_ZERO_RATE_PER_S) -> dict[str, Any]:
    """The record of one row (see the module docstring); JSON-ready."""
    rec: dict[str, Any] = {
        "event": row.event, "event_key": row.event_key, "published_barrier_eV": row.barrier_eV,
        "prefactor_Hz": row.prefactor_Hz, "temperature_K": row.temperature_K,
        "published_rate": row.rate_per_s, "published_rate_is_zero": row.rate_is_zero,
        "computed_rate": None, "ratio": None, "factor": None, "consistent": None,
        "explaining_temperature_K": None, "explaining_barrier_eV": None, "note": ""}
    if row.prefactor_Hz is None or row.temperature_K is None or row.rate_per_s is None:
        rec["note"] = "no rate check: the table gives no prefactor, rate or temperature"
        return rec
    computed = arrhenius_rate(row.barrier_eV, row.prefactor_Hz, row.temperature_K)
    rec["computed_rate"] = computed
    if row.rate_is_zero or row.rate_per_s == 0:
        rec["consistent"] = computed < zero_rate_per_s
        rec["note"] = (f"published ~0; recomputed {computed:.3g} s^-1 is "
                       f"{'below' if rec['consistent'] else 'above'} {zero_rate_per_s:g} s^-1")
        return rec
    ratio = row.rate_per_s / computed if computed > 0 else math.inf
    rec["ratio"] = ratio
    rec["factor"] = max(ratio, 1.0 / ratio) if ratio > 0 else math.inf
    rec["consistent"] = bool(rec["factor"] <= tolerance_factor)
    rec["explaining_temperature_K"] = explaining_temperature_K(
        row.barrier_eV, row.prefactor_Hz, row.rate_per_s)
    if row.rate_per_s < row.prefactor_Hz:
        rec["explaining_barrier_eV"] = K_B_EV_PER_K * row.temperature_K * math.log(
            row.prefactor_Hz / row.rate_per_s)
    if not rec["consistent"]:
        t_star = rec["explaining_temperature_K"]
        rec["note"] = (f"published rate is {ratio:.3g} x nu exp(-E_a/k_B T) at "
                       f"{row.temperature_K:g} K"
                       + (f"; it matches at T = {t_star:.1f} K" if t_star else "")
                       + (f" or with E_a = {rec['explaining_barrier_eV']:.3f} eV"
                          if rec["explaining_barrier_eV"] is not None else ""))
    return rec


def check_pairs(table: BarrierTable, tolerance_factor: float = DEFAULT_TOLERANCE_FACTOR,
                energy_tolerance_eV: float = 0.01) -> list[dict[str, Any]]:
    """Detailed balance of every forward/reverse pair the table declares."""
    by_name = {r.event: r for r in table.rows}
    pairs = []
    for rev in table.rows:
        if not rev.reverse_of:
            continue
        fwd = by_name[rev.reverse_of]
        rec: dict[str, Any] = {"forward": fwd.event, "reverse": rev.event,
                               "barrier_difference_eV": fwd.barrier_eV - rev.barrier_eV,
                               "reaction_energy_eV": fwd.reaction_energy_eV,
                               "consistent": True, "problems": []}
        if fwd.reaction_energy_eV is not None and abs(
                rec["barrier_difference_eV"] - fwd.reaction_energy_eV) > energy_tolerance_eV:
            rec["consistent"] = False
            rec["problems"].append(
                f"E_f - E_r = {rec['barrier_difference_eV']:+.3f} eV but the reaction energy "
                f"is {fwd.reaction_energy_eV:+.3f} eV")
        if (fwd.rate_per_s and rev.rate_per_s and fwd.prefactor_Hz and rev.prefactor_Hz
                and fwd.temperature_K and fwd.temperature_K == rev.temperature_K):
            published = fwd.rate_per_s / rev.rate_per_s
            expected = (fwd.prefactor_Hz / rev.prefactor_Hz) * math.exp(
                -(fwd.barrier_eV - rev.barrier_eV) / (K_B_EV_PER_K * fwd.temperature_K))
            rec["rate_ratio_published"], rec["rate_ratio_arrhenius"] = published, expected
            if max(published / expected, expected / published) > tolerance_factor:
                rec["consistent"] = False
                rec["problems"].append(f"k_f/k_r = {published:.3g} published, {expected:.3g} "
                                       "from the barriers and prefactors")
        pairs.append(rec)
    return pairs
