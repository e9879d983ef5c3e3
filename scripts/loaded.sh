#!/usr/bin/env bash
# The suite on a loaded machine: two busy loops (one per core) run beside it
# for the whole script, as on a busy CI host. Load must not break a test.
#
#   the default suite on every supported CPython once (nox, tests-3.10 ... 3.13),
#   the default suite on the main interpreter (.venv) MAIN_RUNS times (default 3),
#   -m stress once on the main interpreter.
#
# Usage: bash scripts/loaded.sh [--no-nox] [--no-stress]
# Needs .venv (the README's test command makes it) and nox (the [dev] extra).
# Prints one line per run (its pytest summary and seconds) and a last line
# "loaded: N runs, N failed"; exits 1 if any run failed.
set -uo pipefail
cd "$(dirname "$0")/.."

NOX=1
STRESS=1
for arg in "$@"; do
    case "$arg" in
        --no-nox) NOX=0 ;;
        --no-stress) STRESS=0 ;;
        *) echo "usage: $0 [--no-nox] [--no-stress]"; exit 2 ;;
    esac
done
MAIN_RUNS=${MAIN_RUNS:-3}
PY=.venv/bin/python
[ -x "$PY" ] || { echo "loaded.sh: no .venv (run the README's test command first)"; exit 2; }
export PATH="$(ls -d "$HOME"/.pyenv/versions/3.1[0-3]*/bin 2>/dev/null | tr '\n' ':')$PATH"
export CSAPP_REQUIRE_EXTENSIONS=1

logs=$(mktemp -d)
busy=()
for _ in $(seq "$(nproc)"); do
    sh -c 'while :; do :; done' &
    busy+=($!)
done
trap 'kill "${busy[@]}" 2>/dev/null' EXIT
echo "loaded.sh: ${#busy[@]} busy loops (pids ${busy[*]}); logs in $logs"

runs=0
failed=0
# run NAME COMMAND...: one run, its pytest summary line and time.
run() {
    local name=$1 start=$SECONDS status=0
    shift
    "$@" >"$logs/$name.log" 2>&1 || status=$?
    runs=$((runs + 1))
    [ $status = 0 ] || failed=$((failed + 1))
    local summary
    summary=$(grep -E '[0-9]+ (passed|failed)' "$logs/$name.log" | tail -n 1)
    printf '%-16s exit %s  %5s s  %s\n' "$name" "$status" "$((SECONDS - start))" "$summary"
    [ $status = 0 ] || grep -E '^(FAILED|ERROR) ' "$logs/$name.log" | head -20
}

for i in $(seq "$MAIN_RUNS"); do
    run "main-$i" "$PY" -m pytest -q -p no:cacheprovider
done
if [ $NOX = 1 ]; then
    for version in 3.10 3.11 3.12 3.13; do
        run "nox-$version" "$PY" -m nox --no-color --error-on-missing-interpreters -s "tests-$version"
    done
fi
if [ $STRESS = 1 ]; then
    run stress "$PY" -m pytest -q -p no:cacheprovider -m stress
fi
echo "loaded: $runs runs, $failed failed"
[ $failed = 0 ]
