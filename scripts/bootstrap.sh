# Sourced by the other scripts: create or reuse .venv in the checkout and
# install medchain (with its dev extras) into it when pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
    echo "medchain: creating .venv with $($PY --version)" >&2
    "$PY" -m venv .venv
fi
STAMP=.venv/.medchain-installed
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ]; then
    echo "medchain: installing the project into .venv" >&2
    .venv/bin/python -m pip install -q --upgrade pip >&2
    .venv/bin/python -m pip install -q -e ".[dev]" >&2
    touch "$STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
