#!/usr/bin/env bash
# Memcheck over the compiled RIO core: the c-implementation RIO tests under valgrind.
#
# Builds csapp._rio_c as released (-O2, plus -g for line numbers) in a throwaway
# copy of the tree (the in-place build others use is not touched), then runs a
# representative subset of the RIO tests, compiled implementation only (the
# marker expression "not fallback" drops the pure-Python twin's cases; tests
# without a twin parameter stay; "-m c_extension" keeps only the twin's), under
#
#   valgrind --tool=memcheck --error-exitcode=1 --errors-for-leak-kinds=definite
#            --leak-check=full --suppressions=scripts/valgrind-python.supp
#
# with PYTHONMALLOC=malloc (every Python object is a malloc block memcheck sees).
# The suppressions cover only CPython's own noise (see the file); invalid reads
# and writes, bad frees, undefined bytes passed to a system call, undefined
# values used in our code and every "definitely lost" block stay errors. It
# fails on any memcheck error or any test failure.
#
# Subset (bounded: about 2 minutes here; valgrind runs Python ~30x slower):
#   tests/test_rio_unbuffered.py tests/test_rio_buffered.py
#   tests/test_rio_nonblocking.py tests/test_rio_threads.py (when present), tests/test_makefile.py
#   tests/test_reliability_core.py (CSAPP_TEST_SCALE=0.02: 4,000 readlineb calls,
#     2,000 Rio objects, ...), tests/test_fuzz_rio.py (CSAPP_FUZZ_OPS=2000),
#   tests/test_reliability_signals.py (256 KiB + 1 per transfer at that scale:
#     EINTR, raising handlers, the Rio keeping a partial result)
#   the byte-exact cases of tests/test_echo.py (the C echo loop)
# Left out: tests/test_rio_property.py (hypothesis under a per-example SIGALRM
# watchdog: far too slow here, and a watchdog alarm that valgrind delivers after
# the default handler is back kills the process) and tests/test_rio_signals.py
# (asserts wall-clock bounds on interrupts). scripts/sanitize.sh runs both
# under ASan/UBSan.
#
# Usage:
#   scripts/valgrind.sh                  the subset above
#   scripts/valgrind.sh -- PYTEST ARGS   other tests (they replace the subset;
#                                        without -m, -m "not stress and not fallback")
#   scripts/valgrind.sh --self-test      prove the harness: a heap overflow and a
#                                        leak planted in copies of csrc/rio.c must fail
# Environment: PYTHON (default python3), KEEP=1 keeps the work directory and logs,
# VALGRIND_TIMEOUT (seconds, default 1500).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
PYEXE=$("$PYTHON" -c 'import sys; print(sys.executable)')
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed"; exit 2; }

MODE=subset
if [ "${1:-}" = "--self-test" ]; then MODE=self-test; shift; fi
if [ "${1:-}" = "--" ]; then shift; fi
if [ $# -gt 0 ]; then
    ARGS=("$@")
    case " $* " in *" -m "*) ;; *) ARGS+=(-m "not stress and not fallback") ;; esac
else
    ARGS=()
    for f in test_rio_unbuffered.py test_rio_buffered.py test_rio_nonblocking.py \
             test_rio_threads.py test_reliability_core.py test_fuzz_rio.py \
             test_reliability_signals.py test_makefile.py; do
        [ -f "$ROOT/tests/$f" ] && ARGS+=("tests/$f")
    done
    # The C echo loop (csapp_rio_echo): the byte-exact cases, not the ones
    # that time socket timeouts, run a signal storm or count the process's
    # write(2) calls (valgrind makes its own).
    for t in test_echo_is_byte_exact test_echo_handles_lines_split_across_sends \
             test_echo_raises_on_a_reset \
             test_the_compiled_echo_loop_checks_its_arguments; do
        ARGS+=("tests/test_echo.py::$t")
    done
    ARGS+=(-m "not stress and not fallback")
fi

source "$ROOT/scripts/lib.sh"
make_workdir valgrind

build() {
    (cd "$1" && CFLAGS="-g" CSAPP_REQUIRE_EXTENSIONS=1 \
        "$PYEXE" setup.py build_ext --inplace >build.log 2>&1) || {
        echo "valgrind.sh: the build failed:"; tail -30 "$1/build.log"; return 1; }
}

# run_vg DEST ARGS...: pytest under memcheck, logs in DEST/logs; pytest's status.
# SIGALRM starts ignored (the disposition survives exec): the tests' SIGALRM
# watchdogs install their handlers and then restore "ignored", so an alarm that
# valgrind delivers late, after a watchdog was cancelled, cannot kill the run.
run_vg() {
    local dest=$1
    shift
    mkdir -p "$dest/logs"
    (cd "$dest" && env PYTHONMALLOC=malloc PYTHONPATH="$dest/src" \
        PYTHONDONTWRITEBYTECODE=1 CSAPP_REQUIRE_EXTENSIONS=1 \
        CSAPP_TEST_SCALE="${CSAPP_TEST_SCALE:-0.02}" CSAPP_FUZZ_OPS="${CSAPP_FUZZ_OPS:-2000}" \
        timeout "${VALGRIND_TIMEOUT:-1500}" \
        bash -c 'trap "" ALRM; exec "$@"' ignore-late-sigalrm \
        valgrind --tool=memcheck --error-exitcode=1 --errors-for-leak-kinds=definite \
            --leak-check=full --show-leak-kinds=definite --num-callers=40 \
            --suppressions="$ROOT/scripts/valgrind-python.supp" \
            --log-file="$dest/logs/memcheck.%p.log" \
            "$PYEXE" -m pytest -p no:cacheprovider -q -ra "$@")
}

# summarize LOGDIR: one line per process memcheck followed; prints the errors;
# sets ERRORS to their total.
summarize() {
    ERRORS=0
    local log summary n
    for log in "$1"/memcheck.*.log; do
        [ -e "$log" ] || continue
        summary=$(grep -h "ERROR SUMMARY" "$log" | tail -1 || true)
        if [ -z "$summary" ] && ! grep -q "Invalid\|uninitialised\|Process terminating" "$log"; then
            # A child forked for subprocess: it exec'd another program, which
            # memcheck does not follow (no --trace-children).
            echo "$(basename "$log"): a child that exec'd another program (not followed)"
            continue
        fi
        echo "$(basename "$log"): ${summary#*== }"
        grep -hE "definitely lost:|indirectly lost:|possibly lost:" "$log" \
            | sed 's/^==[0-9]*== */    /' || true
        n=$(echo "$summary" | sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p')
        ERRORS=$((ERRORS + ${n:-1}))
        if [ "${n:-1}" != 0 ]; then
            echo "---- errors in $log"
            sed -n '/Invalid\|uninitialised\|Syscall param\|are definitely lost\|Mismatched\|Source and destination overlap/,/^==[0-9]*== $/p' \
                "$log" | head -120 || true
        fi
    done
}

if [ "$MODE" = self-test ]; then
    status=0
    for mutant in overflow leak; do
        dest="$WORK/$mutant"
        copy_tree "$dest"
        case $mutant in
            overflow) # compact() moves bytes past the end of the buffer
                sed -i 's/memmove(rp->buf, rp->buf + rp->start, avail);/memmove(rp->buf, rp->buf + rp->start, avail + rp->cap - rp->end + 1);/' "$dest/csrc/rio.c" ;;
            leak)     # release forgets the buffer
                sed -i '/^void csapp_rio_release/,/^}/ s/    free(rp->buf);/    (void)0;/' "$dest/csrc/rio.c" ;;
        esac
        if cmp -s "$ROOT/csrc/rio.c" "$dest/csrc/rio.c"; then
            echo "self-test: the $mutant patch no longer applies to csrc/rio.c"; status=1; continue
        fi
        build "$dest"
        set +e
        CSAPP_TEST_SCALE=0.01 run_vg "$dest" tests/test_reliability_core.py -m "not stress and not fallback" \
            -k "readlineb_no_growth and 61" >"$dest/pytest.log" 2>&1
        rc=$?
        set -e
        summarize "$dest/logs" >"$dest/summary.log"
        if [ $rc -ne 0 ] && [ "$ERRORS" -ne 0 ]; then
            echo "self-test: $mutant caught (status $rc, $ERRORS memcheck errors)"
            grep -m2 -hE "Invalid (read|write) of size|are definitely lost" "$dest/summary.log" \
                | sed 's/^==[0-9]*== */    /' || true
        else
            echo "self-test: $mutant NOT caught (status $rc, $ERRORS memcheck errors)"; status=1
        fi
    done
    exit $status
fi

copy_tree "$WORK/tree"
echo "valgrind.sh: building csapp._rio_c (-O2 -g) in $WORK/tree"
build "$WORK/tree"
echo "valgrind.sh: PYTHONMALLOC=malloc valgrind --tool=memcheck --error-exitcode=1" \
     "--errors-for-leak-kinds=definite --leak-check=full" \
     "--suppressions=scripts/valgrind-python.supp $PYEXE -m pytest ${ARGS[*]}"
started=$SECONDS
set +e
run_vg "$WORK/tree" "${ARGS[@]}"
rc=$?
set -e
echo "valgrind.sh: exit status $rc after $((SECONDS - started)) s"
summarize "$WORK/tree/logs"
if [ $rc -ne 0 ] || [ "$ERRORS" -ne 0 ]; then
    echo "valgrind.sh: FAILED (status $rc, $ERRORS memcheck errors)"
    exit 1
fi
echo "valgrind.sh: OK: no invalid access, no undefined value in our code, nothing definitely lost"
