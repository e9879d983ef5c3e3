#!/usr/bin/env bash
# Memory safety of the compiled RIO core under AddressSanitizer + UBSan (+ LSan).
#
# Builds csapp._rio_c with CSAPP_DEBUG_BUILD=1 (-O1 -g -fsanitize=address,undefined)
# in a throwaway copy of the tree (the in-place build others use is not touched),
# then runs the tests with the ASan runtime preloaded into the interpreter:
#
#   LD_PRELOAD=$(gcc -print-file-name=libasan.so)   (libubsan comes with the module)
#   PYTHONMALLOC=malloc                             (ASan sees every Python object)
#   ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:log_path=...
#   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=...
#   LSAN_OPTIONS=exitcode=0:suppressions=scripts/lsan.supp
#
# It fails if pytest fails or if any sanitizer report appears: every ASan or
# UBSan report, and every leak whose allocation stack passes through csapp._rio_c
# (scripts/lsan_filter.py; leaks of CPython's own, never touching our code,
# are counted as noise). LeakSanitizer runs at interpreter exit.
#
# Usage:
#   scripts/sanitize.sh                 RIO tests: tests/test_rio*.py + the reliability,
#                                       fuzz and signal tests (default run, no stress)
#   scripts/sanitize.sh --all           the whole suite
#   scripts/sanitize.sh --self-test     prove the harness: plant a heap overflow and a
#                                       leak in copies of csrc/rio.c; both must be caught
#   scripts/sanitize.sh -- ARGS...      extra pytest arguments (e.g. -m stress, -k fuzz)
# Environment: PYTHON (default python3), KEEP=1 keeps the work directory,
# CSAPP_TEST_SCALE (default 0.25 here), CSAPP_FUZZ_OPS (default 20000).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
# The real interpreter, not a pyenv shim (a shell script would get ASan too).
PYEXE=$("$PYTHON" -c 'import sys; print(sys.executable)')
LIBASAN=$(gcc -print-file-name=libasan.so)
[ -e "$LIBASAN" ] || { echo "sanitize.sh: libasan not found (gcc -print-file-name=libasan.so)"; exit 2; }

MODE=rio
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --all) MODE=all ;;
        --self-test) MODE=self-test ;;
        --) shift; EXTRA=("$@"); break ;;
        *) EXTRA+=("$1") ;;
    esac
    shift
done

source "$ROOT/scripts/lib.sh"
make_workdir sanitize

# build DEST: the sanitized extension, in place inside DEST.
build() {
    (cd "$1" && CSAPP_DEBUG_BUILD=1 CSAPP_REQUIRE_EXTENSIONS=1 \
        "$PYEXE" setup.py build_ext --inplace >build.log 2>&1) || {
        echo "sanitize.sh: the debug build failed:"; tail -30 "$1/build.log"; return 1; }
    local so
    so=$(ls "$1"/src/csapp/_rio_c*.so)
    local libs
    libs=$(ldd "$so")     # (not piped into grep -q: with pipefail, an early exit is a failure)
    grep -q libasan <<<"$libs" || { echo "sanitize.sh: $so is not built with ASan"; return 1; }
}

# run_tests DEST REPORTS TESTS...: pytest under the sanitizers; returns pytest's status.
run_tests() {
    local dest=$1 reports=$2
    shift 2
    mkdir -p "$reports"
    (cd "$dest" && env \
        LD_PRELOAD="$LIBASAN" \
        PYTHONMALLOC=malloc \
        PYTHONPATH="$dest/src" \
        PYTHONDONTWRITEBYTECODE=1 \
        CSAPP_REQUIRE_EXTENSIONS=1 \
        CSAPP_TEST_SCALE="${CSAPP_TEST_SCALE:-0.25}" \
        CSAPP_FUZZ_OPS="${CSAPP_FUZZ_OPS:-20000}" \
        ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$reports/asan" \
        LSAN_OPTIONS="exitcode=0:suppressions=$ROOT/scripts/lsan.supp:print_suppressions=0" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan" \
        "$PYEXE" -m pytest -p no:cacheprovider -q -ra "$@")
}

if [ "$MODE" = self-test ]; then
    # Each mutant must be caught: a one-byte heap overflow in the line search
    # and a buffer never freed. If a patch no longer applies, say so.
    status=0
    for mutant in overflow leak; do
        dest="$WORK/$mutant"
        copy_tree "$dest"
        case $mutant in
            overflow) # compact() moves one byte too many: reads past the buffer
                sed -i 's/memmove(rp->buf, rp->buf + rp->start, avail);/memmove(rp->buf, rp->buf + rp->start, avail + rp->cap - rp->end + 1);/' "$dest/csrc/rio.c" ;;
            leak)     # release forgets the buffer
                sed -i '/^void csapp_rio_release/,/^}/ s/    free(rp->buf);/    (void)0;/' "$dest/csrc/rio.c" ;;
        esac
        if cmp -s "$ROOT/csrc/rio.c" "$dest/csrc/rio.c"; then
            echo "self-test: the $mutant patch no longer applies to csrc/rio.c"; status=1; continue
        fi
        build "$dest"
        set +e
        run_tests "$dest" "$dest/reports" tests/test_reliability_core.py -m "not stress" \
            -k "c and (readlineb or objects)" >"$dest/pytest.log" 2>&1
        rc=$?
        "$PYEXE" "$ROOT/scripts/lsan_filter.py" "$dest/reports" >"$dest/filter.log" 2>&1
        frc=$?
        set -e
        if [ $rc -ne 0 ] || [ $frc -eq 1 ]; then
            echo "self-test: $mutant caught (pytest status $rc, report filter status $frc)"
            grep -m1 -hE "ERROR: (AddressSanitizer|LeakSanitizer)[^\n]*|leak of [0-9]+ bytes in our code" \
                "$dest/filter.log" || true
        else
            echo "self-test: $mutant NOT caught"; status=1
        fi
    done
    exit $status
fi

if [ "$MODE" = all ]; then
    TESTS=(tests)
else
    TESTS=()
    for f in "$ROOT"/tests/test_rio*.py "$ROOT"/tests/test_reliability_core.py \
             "$ROOT"/tests/test_fuzz_rio.py "$ROOT"/tests/test_reliability_signals.py \
             "$ROOT"/tests/test_echo.py "$ROOT"/tests/test_makefile.py; do
        [ -f "$f" ] && TESTS+=("tests/$(basename "$f")")
    done
fi
[ ${#EXTRA[@]} -gt 0 ] || EXTRA=(-m "not stress")

echo "sanitize.sh: copying the tree to $WORK/tree and building with CSAPP_DEBUG_BUILD=1"
copy_tree "$WORK/tree"
build "$WORK/tree"
echo "sanitize.sh: $PYEXE -m pytest ${TESTS[*]} ${EXTRA[*]}"
echo "  LD_PRELOAD=$LIBASAN PYTHONMALLOC=malloc"
echo "  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:... UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:..."
# A leak check LeakSanitizer could not complete (the filter's status 3: it
# could not read a thread's registers, which a loaded machine causes) is no
# finding and no clean result: the run is made again, up to three times.
started=$SECONDS
for try in 1 2 3; do
    reports="$WORK/reports-$try"
    set +e
    run_tests "$WORK/tree" "$reports" "${TESTS[@]}" "${EXTRA[@]}"
    rc=$?
    set -e
    echo "sanitize.sh: pytest exit status $rc after $((SECONDS - started)) s (run $try)"
    set +e
    "$PYEXE" "$ROOT/scripts/lsan_filter.py" "$reports"
    frc=$?
    set -e
    [ $rc -eq 0 ] && [ $frc -eq 3 ] || break
    echo "sanitize.sh: the leak check was inconclusive; running again"
done
if [ $rc -ne 0 ] || [ $frc -eq 1 ] || [ $frc -eq 2 ]; then
    echo "sanitize.sh: FAILED"
    exit 1
fi
if [ $frc -eq 3 ]; then
    echo "sanitize.sh: FAILED: the leak check was inconclusive in three runs (see above)"
    exit 1
fi
echo "sanitize.sh: OK: no ASan/UBSan report, no leak in csapp._rio_c"
