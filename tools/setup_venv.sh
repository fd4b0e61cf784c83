#!/usr/bin/env bash
# Create or refresh .venv (make setup): find Python 3.11, then run the timed steps of tools/setup_venv.py.
# A second run only compares a stamp and exits; logs and timings go to build/setup/.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo "none")
if [ "$version" != "3.11" ]; then
  echo "Python 3.11 is required (found ${version} as ${PYTHON}). Install it, or set PYTHON=/path/to/python3.11, and run make setup again." >&2
  exit 1
fi
exec "$PYTHON" tools/setup_venv.py
