#!/usr/bin/env bash
# Set up, then run the main job on its bundled defaults: the Li|Na couple of the reference
# hop table (examples/catalogs/li_na_couple.json), with fits and plots in runs/quickstart.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/kmcflow catalog check examples/catalogs/li_na_couple.json
.venv/bin/kmcflow kmc run examples/catalogs/li_na_couple.json --out runs/quickstart "$@"
