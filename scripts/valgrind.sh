#!/usr/bin/env bash
# Memcheck over the compiled RIO core: the c-implementation RIO tests under valgrind.
#
# Builds csapp._rio_c as released (-O2, plus -g for line numbers) in a throwaway
# copy of the tree, then runs a representative subset of the RIO tests, compiled
# implementation only (scripts/pytest_only_c.py deselects rio="python"), under
#
#   valgrind --tool=memcheck --error-exitcode=1 --errors-for-leak-kinds=definite
#            --leak-check=full --suppressions=scripts/valgrind-python.supp
#
# with PYTHONMALLOC=malloc (every Python object is a malloc block memcheck sees).
# The suppressions cover only CPython's own "uninitialised value" noise whose
# innermost frame is in libpython (see the file); invalid reads/writes, bad
# frees, undefined bytes passed to a system call, undefined values used in our
# code and every "definitely lost" block stay errors. It fails on any error.
#
# Subset (bounded: about 3 minutes here; valgrind runs Python ~30x slower):
#   tests/test_rio_unbuffered.py tests/test_rio_buffered.py
#   tests/test_rio_nonblocking.py tests/test_rio_threads.py (when present)
#   tests/test_reliability_core.py (CSAPP_TEST_SCALE=0.02: 4,000 readlineb calls,
#     2,000 Rio objects, ...), tests/test_fuzz_rio.py (CSAPP_FUZZ_OPS=2000),
#   tests/test_reliability_signals.py (256 KiB + 1 per transfer at that scale:
#     EINTR, raising handlers, the Rio keeping a partial result)
# Left out: tests/test_rio_property.py (hypothesis under a per-example SIGALRM
# watchdog: far too slow here, and a watchdog alarm that valgrind delivers after
# the default handler is back kills the process) and tests/test_rio_signals.py
# (asserts wall-clock bounds on interrupts). scripts/sanitize.sh runs both
# under ASan/UBSan.
#
# Usage: scripts/valgrind.sh [-- PYTEST ARGS...]   (args replace the subset)
# Environment: PYTHON (default python3), KEEP=1 keeps the work directory and logs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
PYEXE=$("$PYTHON" -c 'import sys; print(sys.executable)')
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed"; exit 2; }

if [ "${1:-}" = "--" ]; then shift; fi
if [ $# -gt 0 ]; then
    ARGS=("$@")
else
    ARGS=()
    for f in test_rio_unbuffered.py test_rio_buffered.py test_rio_nonblocking.py \
             test_rio_threads.py test_reliability_core.py test_fuzz_rio.py \
             test_reliability_signals.py; do
        [ -f "$ROOT/tests/$f" ] && ARGS+=("tests/$f")
    done
    ARGS+=(-m "not stress")
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/csapp-valgrind.XXXXXX")
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "valgrind.sh: kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

(cd "$ROOT" && tar cf - --exclude='./.git' --exclude='*.so' \
    --exclude='./src/csapp/_rio_c.c' --exclude='__pycache__' --exclude='./build' \
    --exclude='*.egg-info' --exclude='./.venv*' --exclude='./.mypy_cache' \
    --exclude='./.hypothesis' --exclude='./.benchmarks' .) | (cd "$WORK" && tar xf -)
echo "valgrind.sh: building csapp._rio_c (-O2 -g) in $WORK"
(cd "$WORK" && CFLAGS="-g" CSAPP_REQUIRE_EXTENSIONS=1 \
    "$PYEXE" setup.py build_ext --inplace >build.log 2>&1) || {
    echo "valgrind.sh: the build failed:"; tail -30 "$WORK/build.log"; exit 1; }

mkdir -p "$WORK/logs"
VG=(valgrind --tool=memcheck --error-exitcode=1 --errors-for-leak-kinds=definite
    --leak-check=full --show-leak-kinds=definite --num-callers=40
    --suppressions="$ROOT/scripts/valgrind-python.supp"
    --log-file="$WORK/logs/memcheck.%p.log")
echo "valgrind.sh: PYTHONMALLOC=malloc ${VG[*]} $PYEXE -m pytest -p pytest_only_c ${ARGS[*]}"
started=$SECONDS
set +e
(cd "$WORK" && env PYTHONMALLOC=malloc PYTHONPATH="$WORK/src:$ROOT/scripts" \
    PYTHONDONTWRITEBYTECODE=1 CSAPP_REQUIRE_EXTENSIONS=1 \
    CSAPP_TEST_SCALE="${CSAPP_TEST_SCALE:-0.02}" CSAPP_FUZZ_OPS="${CSAPP_FUZZ_OPS:-2000}" \
    timeout "${VALGRIND_TIMEOUT:-1500}" "${VG[@]}" \
    "$PYEXE" -m pytest -p pytest_only_c -p no:cacheprovider -q -ra "${ARGS[@]}")
rc=$?
set -e
echo "valgrind.sh: exit status $rc after $((SECONDS - started)) s"

# Summaries of every process memcheck followed (child processes are not traced).
errors=0
for log in "$WORK"/logs/memcheck.*.log; do
    summary=$(grep -h "ERROR SUMMARY" "$log" | tail -1)
    echo "$(basename "$log"): ${summary#*== }"
    grep -hE "definitely lost:|indirectly lost:|possibly lost:|Invalid (read|write)|Invalid free|Mismatched free|Syscall param|uninitialised" "$log" \
        | sed 's/^==[0-9]*== */    /' | sort | uniq -c | sed 's/^/  /'
    n=$(echo "$summary" | sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p')
    errors=$((errors + ${n:-1}))
    if [ "${n:-1}" != 0 ]; then
        echo "---- errors in $log"
        grep -v "^==[0-9]*== *$" "$log" | sed -n '/Invalid\|uninitialised\|Syscall param\|definitely lost in loss record\|Mismatched\|Invalid free/,/^==[0-9]*== $/p' | head -200
    fi
done
if [ $rc -ne 0 ] || [ $errors -ne 0 ]; then
    echo "valgrind.sh: FAILED (status $rc, $errors memcheck errors)"
    exit 1
fi
echo "valgrind.sh: OK: no invalid access, no uninitialised use in our code, nothing definitely lost"
