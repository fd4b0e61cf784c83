#!/usr/bin/env bash
# Create or refresh .venv from requirements.txt. Idempotent: when nothing changed it only
# checks a stamp and exits. llama-cpp-python has no Linux wheel on PyPI and compiles for
# about 5 minutes, so it builds in the background while the other packages install.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
VENV=.venv
STAMP=$VENV/.installed
WANT=$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi

version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$version" != "3.11" ]; then
  echo "Python 3.11 is required (found $version as $PYTHON). Set PYTHON=/path/to/python3.11." >&2
  exit 1
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
mkdir -p build/wheels build/setup

llama_pin=$(grep -E '^llama-cpp-python' requirements.txt | sed 's/\[server\]//')
echo "Building $llama_pin in the background (about 5 minutes the first time; cached after)..."
( $PIP wheel --no-deps -w build/wheels "$llama_pin" > build/setup/llama-build.log 2>&1; echo $? > build/setup/llama-build.rc ) &
builder=$!

quiet() { "$@" 2> >(grep -v "is ignored" >&2); }

if [ -n "${TORCH_CPU_INDEX:-}" ]; then
  echo "Installing the CPU build of torch from $TORCH_CPU_INDEX..."
  quiet $PIP install -q "$(grep -E '^torch==' requirements.txt)" --index-url "$TORCH_CPU_INDEX"
fi
echo "Installing the pinned packages from requirements.txt..."
grep -vE '^llama-cpp-python' requirements.txt > build/setup/requirements-without-llama.txt
quiet $PIP install -q -r build/setup/requirements-without-llama.txt
quiet $PIP install -q --no-deps -e .

wait "$builder" || true
if [ "$(cat build/setup/llama-build.rc)" != "0" ]; then
  echo "Building llama-cpp-python failed; the end of build/setup/llama-build.log:" >&2
  tail -20 build/setup/llama-build.log >&2
  exit 1
fi
quiet $PIP install -q --find-links build/wheels "$(grep -E '^llama-cpp-python' requirements.txt)"
$VENV/bin/python -c "import llama_cpp, lancedb, promptflow, sentence_transformers, contoso_chat" \
  || { echo "The environment is incomplete; rerun make setup." >&2; exit 1; }

# A Jupyter kernel for this venv, named in every notebook, so VS Code, Codespaces and Jupyter pick the right one.
$VENV/bin/python -m ipykernel install --sys-prefix --name contoso-chat --display-name "Python 3.11 (contoso-chat)" >/dev/null
# prompt flow's `pf` command sends usage telemetry unless told not to; nothing here should call home.
$VENV/bin/pf config set telemetry.enabled=false >/dev/null 2>&1 || true
if git rev-parse --git-dir >/dev/null 2>&1; then
  $VENV/bin/nbstripout --install >/dev/null 2>&1 || echo "(nbstripout git filter not installed; strip notebooks before committing)"
fi
echo "$WANT" > "$STAMP"
echo "Environment ready in $VENV."
