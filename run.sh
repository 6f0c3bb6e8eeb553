#!/usr/bin/env bash
# The one entry point.
#   ./run.sh local    run the embedded server (SQLite store, ./data) on 127.0.0.1:8080
#   ./run.sh test     install the dev tools and the toolkits, run the checks, the full tests
#                     and the quick benchmark, printing how long each phase took
#   ./run.sh bench    benchmark against the issue's limits, one Markdown table (--quick: < 1 min)
#   ./run.sh deploy   build the images and deploy to the Docker Swarm this node manages
#                     (swarm/deploy.sh; ./run.sh deploy --help, docs/deploy.md)
#   ./run.sh remove   remove the deployed stack (its volumes and secrets only if asked)
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

# Create .venv if missing and install the project with the given extras, and the client
# (./client, its own distribution), pinned by constraints.txt. Skipped when nothing changed
# since the last install.
# The stamp is "<extras> <hash of the dependency files>"; an install that has every extra
# asked for (./run.sh test's are a superset of ./run.sh local's) is kept.
ensure_venv() {
    local extras=$1 hash installed
    hash=$(cat pyproject.toml client/pyproject.toml constraints.txt | sha256sum | cut -c1-16)
    if [ ! -x "$VENV/bin/python" ]; then
        "$(python_311)" -m venv "$VENV"
    fi
    installed=$(cat "$VENV/.lo-installed" 2>/dev/null || true)
    if ! has_extras "$installed" "$extras" "$hash"; then
        if [ -e "$VENV/.lo-installed" ]; then
            echo "updating .venv: the dependencies or extras changed since the last install" \
                "(now: ${extras:-core})..." >&2
        else
            echo "first run: installing Learning Orchestra and its toolkits (${extras:-core})" \
                "into .venv, a few minutes..." >&2
        fi
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        # One command, so the project's dependency on learning-orchestra-client resolves to
        # ./client (alone, pip would take PyPI's package of that name: the original LO's).
        "$VENV/bin/python" -m pip install --quiet -c constraints.txt \
            -e ./client -e ".${extras:+[$extras]}"
        echo "$extras $hash" >"$VENV/.lo-installed"
    fi
}

# Whether the stamp `$1` is for the dependency files of hash `$3` and has every extra of
# the comma-separated `$2`.
has_extras() {
    local stamp=$1 wanted=$2 hash=$3 extra
    [ "${stamp##* }" = "$hash" ] || return 1
    for extra in ${wanted//,/ }; do
        case ",${stamp% *}," in
        *",$extra,"*) ;;
        *) return 1 ;;
        esac
    done
}

# docker-compose 1.29.2 (tests/deploy checks the stacks with `docker-compose config`) in a venv
# of its own, .venv/compose: its pins clash with the project's. Its PyYAML 5.4.1 builds only
# with Cython < 3 and without build isolation, hence three installs.
ensure_compose() {
    local venv=$VENV/compose pins=swarm/compose-requirements.txt hash
    hash=$(sha256sum "$pins" | cut -c1-16)
    [ "$(cat "$venv/.lo-installed" 2>/dev/null)" = "$hash" ] && return
    rm -rf "$venv"
    "$(python_311)" -m venv "$venv"
    "$venv/bin/pip" install --quiet -c "$pins" Cython wheel
    "$venv/bin/pip" install --quiet -c "$pins" --no-build-isolation PyYAML
    "$venv/bin/pip" install --quiet -c "$pins" docker-compose
    echo "$hash" >"$venv/.lo-installed"
}

# Spark (builder/sparkml) runs on a Java 17 (or 11, 21) runtime, which pip cannot install.
require_java() {
    local java=java
    [ -n "${JAVA_HOME:-}" ] && java=$JAVA_HOME/bin/java
    if ! command -v "$java" >/dev/null 2>&1; then
        echo "Spark needs a Java runtime (17 recommended): on Debian/Ubuntu" \
            "\`apt-get install openjdk-17-jre-headless\`, or set JAVA_HOME" >&2
        return 1
    fi
    "$java" -version 2>&1 | head -1 >&2
}

# `test` runs phases; each prints its duration, and the first that fails ends the script
# with its exit status (pytest's 5, "no tests collected", included).
PHASES=()

elapsed_since() {
    awk -v start="$1" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.1f", now - start }'
}

phase() {
    local name=$1 started status=0 seconds
    shift
    echo "==> $name" >&2
    started=$EPOCHREALTIME
    # A subshell with errexit, not `"$@" || ...`: under `||` bash ignores errexit inside
    # functions, and ensure_venv would carry on (and write its stamp) after a failed install.
    set +e
    (set -e; "$@")
    status=$?
    set -e
    seconds=$(elapsed_since "$started")
    PHASES+=("$(printf '%-14s %7s s' "$name" "$seconds")")
    if [ "$status" -ne 0 ]; then
        PHASES+=("$name failed (exit status $status)")
        phase_summary
        exit "$status"
    fi
}

phase_summary() {
    echo "==> phases" >&2
    printf '    %s\n' "${PHASES[@]}" >&2
}

command=${1:-help}
[ $# -gt 0 ] && shift
case "$command" in
local)
    ensure_venv sklearn,tensorflow,pycaret,autokeras,spark
    exec "$VENV/bin/learning-orchestra" serve --host 127.0.0.1 --port "${LO_PORT:-8080}" \
        --data-dir ./data "$@"
    ;;
test)
    phase install ensure_venv dev,sklearn,tensorflow,pycaret,autokeras,spark
    phase java require_java
    phase "install compose" ensure_compose
    phase "ruff check" "$VENV/bin/ruff" check services client tests bench examples
    phase "ruff format" "$VENV/bin/ruff" format --check services client tests bench examples
    phase mypy "$VENV/bin/mypy" services client
    phase pytest "$VENV/bin/pytest" -rs "$@" # --durations=15: pyproject.toml's addopts
    if [ $# -eq 0 ]; then
        phase "bench --quick" "$VENV/bin/python" -m bench.run --quick
    else
        PHASES+=("bench --quick  skipped: pytest was given arguments (./run.sh bench --quick)")
    fi
    phase_summary
    ;;
bench)
    ensure_venv dev,sklearn,tensorflow,pycaret,autokeras,spark
    exec "$VENV/bin/python" -m bench.run "$@"
    ;;
deploy | remove)
    exec bash swarm/deploy.sh "$command" "$@"
    ;;
*)
    echo "usage: ./run.sh local|test|bench|deploy|remove" >&2
    exit 2
    ;;
esac
