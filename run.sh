#!/usr/bin/env bash
# The one entry point.
#   ./run.sh local    run the embedded server (SQLite store, ./data) on 127.0.0.1:8080
#   ./run.sh test     install the dev tools and the toolkits, run the checks and the full tests
#   ./run.sh deploy   deploy to Docker Swarm (not available yet)
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv

python_311() {
    for candidate in "${PYTHON:-}" python3.11 python3; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            echo "$candidate"
            return
        fi
    done
    echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
    exit 1
}

# Create .venv if missing and install the project with the given extras, pinned by
# constraints.txt. Skipped when nothing changed since the last install.
ensure_venv() {
    local extras=$1 stamp
    stamp="$extras $(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
    if [ ! -x "$VENV/bin/python" ]; then
        "$(python_311)" -m venv "$VENV"
    fi
    if [ "$(cat "$VENV/.lo-installed" 2>/dev/null)" != "$stamp" ]; then
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".${extras:+[$extras]}"
        echo "$stamp" >"$VENV/.lo-installed"
    fi
}

command=${1:-help}
[ $# -gt 0 ] && shift
case "$command" in
local)
    ensure_venv sklearn,tensorflow
    exec "$VENV/bin/learning-orchestra" serve --host 127.0.0.1 --port "${LO_PORT:-8080}" \
        --data-dir ./data "$@"
    ;;
test)
    ensure_venv dev,sklearn,tensorflow
    "$VENV/bin/ruff" check services client tests bench
    "$VENV/bin/ruff" format --check services client tests bench
    "$VENV/bin/mypy" services client
    exec "$VENV/bin/pytest" -rs "$@"
    ;;
deploy)
    echo "./run.sh deploy: Docker Swarm deployment is not available yet (see the issues)." >&2
    echo "Use ./run.sh local for the embedded server." >&2
    exit 2
    ;;
*)
    echo "usage: ./run.sh local|test|deploy" >&2
    exit 2
    ;;
esac
