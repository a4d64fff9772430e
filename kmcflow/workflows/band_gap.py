"""The band gap of a converged SCF, from its eigenvalues and occupations (both spins, all k).

The gap is the lowest empty state minus the highest filled one over every spin channel and
k-point, so a spin-polarized antiferromagnet's gap is read across channels, and an indirect
gap is found as well as a direct one. A state is filled when its occupation is above half of
what a band can hold (1 per spin channel with two channels, 2 without); a band that is
partly filled (between 5 % and 95 %) makes the system a metal: gap 0.

Where the code prints the edges itself (``pw.x`` with fixed occupations: "highest occupied,
lowest unoccupied level"), :func:`espresso_band_gap` reads that line. With smearing it fills
the eigenvalues of the output (``verbosity='high'``) below the Fermi energy ``pw.x`` printed.
With fixed occupations the Fermi level must not be used: ASE puts it on the highest filled
state, and a gap measured from it reads 0.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kmcflow.errors import KmcflowError


@dataclass(frozen=True)
class BandGap:
    """A band gap (eV) with its edges: their energies, spin channels and k-point indices."""

    gap_eV: float
    vbm_eV: float
    cbm_eV: float
    direct: bool | None = None
    vbm_spin: int | None = None
    cbm_spin: int | None = None
    vbm_k: int | None = None
    cbm_k: int | None = None
    metallic: bool = False
    source: str = "eigenvalues"

    def record(self) -> dict[str, Any]:
        """The gap as plain JSON-able data."""
        return asdict(self)


def band_gap(eigenvalues_eV, occupations) -> BandGap:
    """The gap of eigenvalues and occupations shaped (spin, k-point, band)."""
    eps = np.asarray(eigenvalues_eV, dtype=float)
    occ = np.asarray(occupations, dtype=float)
    if eps.ndim != 3 or eps.shape != occ.shape or eps.size == 0:
        raise KmcflowError(f"eigenvalues {eps.shape} and occupations {occ.shape} must have the "
                           "same (spin, k-point, band) shape", field="eigenvalues")
    full = 2.0 if eps.shape[0] == 1 else 1.0
    fraction = occ / full
    filled, empty = fraction > 0.5, fraction <= 0.5
    if not filled.any() or not empty.any():
        raise KmcflowError("no empty band (or no filled one): the gap needs both",
                           field="nbnd", hint="ask the code for empty bands (pw.x: nbnd)")
    partial = ((fraction > 0.05) & (fraction < 0.95)).any()
    vbm_at = np.unravel_index(np.argmax(np.where(filled, eps, -np.inf)), eps.shape)
    cbm_at = np.unravel_index(np.argmin(np.where(empty, eps, np.inf)), eps.shape)
    vbm, cbm = float(eps[vbm_at]), float(eps[cbm_at])
    metallic = bool(partial or cbm <= vbm)
    return BandGap(gap_eV=0.0 if metallic else cbm - vbm, vbm_eV=vbm, cbm_eV=cbm,
                   direct=None if metallic else bool(vbm_at[1] == cbm_at[1]),
                   vbm_spin=int(vbm_at[0]), cbm_spin=int(cbm_at[0]), vbm_k=int(vbm_at[1]),
                   cbm_k=int(cbm_at[1]), metallic=metallic)


_EDGES = re.compile(r"highest occupied, lowest unoccupied level \(ev\):\s+(\S+)\s+(\S+)")


def espresso_band_gap(output: str | Path) -> BandGap:
    """The gap of a ``pw.x`` output file: its printed edges, else its eigenvalues.

    The last SCF of the file counts (a relaxation prints one per step).
    """
    path = Path(output)
    text = path.read_text(errors="replace")
    edges = _EDGES.findall(text)
    if edges:
        vbm, cbm = (float(x) for x in edges[-1])
        return BandGap(gap_eV=max(cbm - vbm, 0.0), vbm_eV=vbm, cbm_eV=cbm,
                       metallic=cbm <= vbm, source="pw.x band edges")
    if "highest occupied level" in text:
        raise KmcflowError("pw.x computed no empty band: no gap", file=str(path), field="nbnd",
                           hint="set nbnd above the number of filled bands")
    from ase.io import read

    try:
        atoms = read(path, format="espresso-out", index=-1)
    except Exception as exc:
        raise KmcflowError(f"cannot read a pw.x result: {exc}".splitlines()[0],
                           file=str(path)) from exc
    calc = atoms.calc
    if "the Fermi energy is" not in text:
        raise KmcflowError("the pw.x output prints neither band edges nor a Fermi energy",
                           file=str(path), field="occupations",
                           hint="use fixed occupations with empty bands (nbnd), or smearing")
    n_spin = calc.get_number_of_spins()
    n_k = len(calc.get_ibz_k_points())
    try:
        eps = np.array([[calc.get_eigenvalues(k, s) for k in range(n_k)]
                        for s in range(n_spin)])
    except Exception as exc:  # ASE found no eigenvalues: pw.x did not print them
        raise KmcflowError("the pw.x output has no eigenvalues", file=str(path),
                           field="verbosity", hint="run pw.x with verbosity='high'") from exc
    full = 2.0 if n_spin == 1 else 1.0
    fermi = calc.get_fermi_level()
    gap = band_gap(eps, np.where(eps < fermi, full, 0.0))
    # filled below the Fermi energy, a metal would read as gapped on its k-mesh: it is a
    # metal if a band of either spin lies partly below and partly above that energy
    crossing = bool(((eps.min(axis=1) < fermi) & (eps.max(axis=1) > fermi)).any())
    if crossing:
        gap = BandGap(**{**gap.record(), "gap_eV": 0.0, "metallic": True, "direct": None})
    return BandGap(**{**gap.record(), "source": "pw.x eigenvalues"})
