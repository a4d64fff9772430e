#!/usr/bin/env bash
# Set up (with the MPI extra: the mpich wheel and mpi4py; the structures extra: pymatgen, ASE,
# spglib), then run ruff and the whole test suite (slow statistical tests, the mpiexec -n 2
# tests and the structure tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,mpi,structures
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
