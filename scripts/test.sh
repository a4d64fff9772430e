#!/usr/bin/env bash
# Set up (with the MPI extra: the mpich wheel and mpi4py), then run ruff and the whole test
# suite (slow statistical tests and the mpiexec -n 2 tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,mpi
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
