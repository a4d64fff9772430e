#!/usr/bin/env bash
# Set up (the MPI extra: the mpich wheel and mpi4py; the workflows extra, which includes the
# structures extra: pymatgen, ASE, spglib, jobflow, atomate2, emmet; the ml extra: torch
# 2.13.0 CPU and CHGNet), then run ruff and the whole test suite (slow statistical tests, the
# mpiexec -n 2 tests and the CHGNet tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,mpi,workflows,ml
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
