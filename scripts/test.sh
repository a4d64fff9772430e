#!/usr/bin/env bash
# Set up, then run ruff and the whole test suite (slow statistical tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
