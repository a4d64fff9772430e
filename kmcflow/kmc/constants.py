"""Physical constants used across kmcflow (CODATA 2018), with their units in their names."""

from __future__ import annotations

K_B_EV_PER_K = 8.617333262e-5
"""Boltzmann constant in eV/K."""
