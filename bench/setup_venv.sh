#!/usr/bin/env bash
# Creates bench/.venv with the Python peers of the benchmark: MPIRE 2.10 and numpy
# (numpy builds the expensive-init table at C speed, as MPIRE's own benchmarks do).
# Idempotent: a venv that already imports both is left alone. Exits non-zero with a
# message that says what to fix when python3, venv or pip fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${POOL_BENCH_VENV:-$here/.venv}"
py="${PYTHON:-python3}"
requirements=("mpire==2.10.*" "numpy>=1.24")

if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import mpire, numpy' 2>/dev/null; then
    echo "setup_venv: $venv is ready ($("$venv/bin/python" -c 'from importlib.metadata import version as v; print("mpire", v("mpire"), "numpy", v("numpy"))'))" >&2
    exit 0
fi

if ! command -v "$py" >/dev/null 2>&1; then
    echo "setup_venv: error: '$py' not found; install Python 3.8+ or set PYTHON=/path/to/python3" >&2
    exit 1
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "setup_venv: creating $venv with $("$py" --version 2>&1)" >&2
    if ! "$py" -m venv "$venv"; then
        echo "setup_venv: error: '$py -m venv' failed; on Debian/Ubuntu install python3-venv" >&2
        rm -rf "$venv"
        exit 1
    fi
fi

echo "setup_venv: pip install ${requirements[*]}" >&2
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"; then
    echo "setup_venv: error: pip could not install ${requirements[*]} into $venv;" \
         "check network access to the package index (or set PIP_INDEX_URL), then rerun" >&2
    exit 1
fi
"$venv/bin/python" -c 'import mpire, numpy; from importlib.metadata import version as v; print("setup_venv: ready: mpire", v("mpire"), "numpy", v("numpy"))' >&2
