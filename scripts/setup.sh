#!/usr/bin/env bash
# Create .venv (if missing) and install kmcflow with the extras named in $1 (default: dev).
# Idempotent. Example: bash scripts/setup.sh dev,mpi
# Prints a few progress lines. pip runs with --quiet and without its version-check and
# script-location notices; its warnings and errors still print (on stderr), and a failing pip
# stops this script with pip's exit status. SETUP_VERBOSE=1 shows pip's full output.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_WARN_SCRIPT_LOCATION=1 PIP_NO_INPUT=1
quiet=(--quiet)
if [ -n "${SETUP_VERBOSE:-}" ]; then quiet=(); fi

skipped="$(mktemp)"
trap 'rm -f "$skipped"' EXIT
run_pip() {
  # A pip config whose extra index is a local folder (file://...) makes pip print one
  # "Location ... is ignored" line per package that folder lacks: those are counted into one
  # note at the end; every other line, warnings and errors included, passes through unchanged.
  .venv/bin/python -m pip "$@" ${quiet[@]+"${quiet[@]}"} 2>&1 | awk -v out="$skipped" '
    /^WARNING: Location .file:.* is ignored: it is neither a file nor a directory\.$/ { n++; next }
    { print; fflush() }
    END { if (n) print n >> out }
  ' >&2
}

if [ -x .venv/bin/python ]; then
  echo "setup: using .venv ($(.venv/bin/python -V))"
else
  echo "setup: creating .venv ($(python3 -V))"
  python3 -m venv .venv
fi
echo "setup: upgrading pip and setuptools"
run_pip install --upgrade pip setuptools
echo "setup: installing kmcflow[${extras}] (editable) ..."
run_pip install -e ".[${extras}]"
version="$(.venv/bin/python -c 'from importlib.metadata import version; print(version("kmcflow"))')"
n_skipped="$(awk '{ n += $1 } END { print n + 0 }' "$skipped")"
if [ "$n_skipped" -gt 0 ]; then
  echo "setup: note: pip skipped ${n_skipped} lookups in local file:// indexes of your pip config" \
    "that lack the package (pip config debug)"
fi
echo "setup: done: .venv ready (kmcflow ${version}, ${SECONDS} s)"
