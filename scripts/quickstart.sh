#!/usr/bin/env bash
# Set up (the workflows extra: pymatgen, ASE, jobflow, atomate2; no torch, no DFT code), then
# run the main job on its embedded defaults: kmcflow demo, the Cu|Ni couple with ASE's EMT from
# bulk crystals to an Arrhenius law (runs/demo/report.md). Rerun to continue after a stop.
# Extra arguments go to the demo (for example --quick).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh workflows
export MPLBACKEND="${MPLBACKEND:-Agg}"
.venv/bin/kmcflow demo --out runs/demo "$@"
