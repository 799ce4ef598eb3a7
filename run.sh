#!/usr/bin/env bash
# hazmon's one entry point on a fresh machine (Debian/Ubuntu with Python 3.11 and apt):
#   ./run.sh demo [--duration SECONDS]   set up everything, then run the demo on an embedded stack
#   ./run.sh test [PYTEST ARGS]          set up everything (incl. headless Chromium), run the tests
#   ./run.sh bench NAME [ARGS]           run bench/NAME.py (see bench/README.md)
# Set-up is idempotent: system packages are installed only when missing, the virtual
# environment is reused and reinstalled only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")"

find_python() {
    for py in python3.11 python3.12 python3.13 python3; do
        if command -v "$py" >/dev/null 2>&1 &&
           "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            echo "$py"; return 0
        fi
    done
    echo "run.sh: Python >= 3.11 is required" >&2; return 1
}

setup_python() {
    local py stamp want
    py=$(find_python)
    if [ ! -x .venv/bin/python ]; then
        echo "==> creating virtual environment .venv ($py)"
        "$py" -m venv .venv || { echo "run.sh: '$py -m venv' failed: install python3-venv (apt-get install python3-venv)" >&2; exit 1; }
    fi
    stamp=.venv/.hazmon-installed
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "==> installing hazmon and its dependencies into .venv"
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet -e '.[dev]'
        echo "$want" > "$stamp"
    fi
}

cmd=${1:-help}
[ $# -gt 0 ] && shift
case "$cmd" in
    demo)
        bash scripts/setup_system.sh
        setup_python
        exec .venv/bin/hazmon demo "$@"
        ;;
    test)
        bash scripts/setup_system.sh
        bash scripts/setup_browser.sh
        setup_python
        .venv/bin/ruff check hazmon ingest detectors alerting console hazwatch sim bench tests
        .venv/bin/mypy hazmon ingest detectors alerting console hazwatch sim
        .venv/bin/lint-imports  # the layering contracts in pyproject.toml ([tool.importlinter])
        set +e
        .venv/bin/python -m pytest "$@"
        rc=$?
        set -e
        if [ "$rc" -eq 5 ]; then
            # pytest's "no tests collected": not a failure of the code under test, but say so loudly
            echo "run.sh: WARNING: pytest collected no tests (exit 5); nothing was tested" >&2
            exit 0
        fi
        exit "$rc"
        ;;
    bench)
        bash scripts/setup_system.sh
        setup_python
        name=${1:?usage: ./run.sh bench NAME [ARGS]}; shift
        exec .venv/bin/python "bench/${name}.py" "$@"
        ;;
    *)
        sed -n '2,6p' "$0"
        exit 2
        ;;
esac
