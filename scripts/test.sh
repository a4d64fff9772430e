#!/usr/bin/env bash
# Set up (the MPI extra: the mpich wheel and mpi4py; the hpc extra, which includes the
# workflows and structures extras: pymatgen, ASE, spglib, jobflow, atomate2, emmet, qtoolkit,
# jobflow-remote; the ml extra: torch 2.13.0 CPU and CHGNet), then run ruff and the whole test
# suite (slow statistical tests, the mpiexec -n 2 tests and the CHGNet tests included).
# The SLURM, Quantum ESPRESSO and CP2K tests run when a SLURM answers and the codes are
# installed (apt-get install slurm-wlm munge quantum-espresso quantum-espresso-data cp2k
# cp2k-data, then bash scripts/start_slurm.sh; .ci/run does both) and are skipped otherwise,
# unless KMCFLOW_REQUIRE_SLURM=1 makes that a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,mpi,hpc,ml
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
