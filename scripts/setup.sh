#!/usr/bin/env bash
# Create .venv (if missing) and install kmcflow with the extras named in $1 (default: dev).
# Idempotent. Example: bash scripts/setup.sh dev,mpi
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[${extras}]"
