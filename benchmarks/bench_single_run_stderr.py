"""One trajectory's least-squares error of D is no standard error: it is about 5x too small.

Runs the isotope couple with 16 seeds and compares the spread of D between them with the mean
least-squares error of each run's sigma^2 = 2 D t + b line (``line_fit_stderr_A2_per_s``).
Measured on the 2-core VM (2026-12-07): spread 2.68e6, line error 4.88e5 Angstrom^2/s, ratio
5.5. That is why a single run reports no standard error of D, and replicas give it.

Usage: python benchmarks/bench_single_run_stderr.py [SEEDS]   (about 20 s for 16)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import kmcflow

CATALOG = Path(__file__).resolve().parents[1] / "examples" / "catalogs" / "isotope_couple.json"


def main(seeds: int = 16) -> None:
    """Print the spread of D over seeds against the mean line-fit error."""
    catalog = kmcflow.load_catalog(CATALOG)
    d, line = [], []
    for seed in range(1, seeds + 1):
        run = kmcflow.run_kmc(catalog, cells=(8, 8, 24), steps=1_000_000, seed=seed)
        d.append(run.D_A2_per_s)
        line.append(run.line_fit_stderr_A2_per_s)
    spread = float(np.std(d, ddof=1))
    print(f"{seeds} seeds: spread of D {spread:.3g}, mean line-fit error {np.mean(line):.3g} "
          f"Angstrom^2/s, ratio {spread / np.mean(line):.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 16)
