#!/usr/bin/env bash
# Data races in the compiled extensions under ThreadSanitizer.
#
# Builds csapp._rio_c and csapp.aio._buffer_c with -fsanitize=thread in a
# throwaway copy of the tree (the in-place build others use is not touched),
# then runs the threaded tests with the TSan runtime preloaded into the
# interpreter:
#
#   CFLAGS="-fsanitize=thread -g -fno-omit-frame-pointer" LDFLAGS=-fsanitize=thread
#                                   (setuptools appends both to every compile and
#                                   link: setup.py needs no switch for this)
#   LD_PRELOAD=$(gcc -print-file-name=libtsan.so)
#                                   (the interpreter is not instrumented; without the
#                                   preload the module cannot even be loaded)
#   PYTHONMALLOC=malloc             (TSan sees each object's malloc and free, so a
#                                   block pymalloc would reuse is not a false race)
#   TSAN_OPTIONS=log_path=...:suppressions=scripts/tsan.supp:exitcode=0:...
#
# The environment reaches the echo servers the tests start (python -m csapp
# echoserver), so their client threads run under TSan too and write their own
# report files. exitcode=0: a report must not change a process's exit status
# (tests check the servers'); scripts/tsan_filter.py judges the reports. It
# also makes a crash TSan catches exit with 0: the filter fails the run on the
# "ERROR: ThreadSanitizer: SEGV" it leaves in the report file.
#
# It fails if pytest fails or if any TSan report involves csapp's code: a report
# with a stack through _rio_c, _buffer_c or csrc/rio.c. Reports in interpreter
# or libc frames only are counted and printed as noise (the interpreter is not
# instrumented, so TSan sees only what it does through intercepted libc calls).
#
# What TSan can and cannot see here: the GIL and the Rio lock are pthread
# mutexes, condition variables and semaphores, which TSan intercepts, so it
# knows the happens-before they give; a race needs two accesses not ordered by
# them, at least one in our instrumented code or in an intercepted call
# (memcpy, read, write). The interpreter's own plain loads and stores are
# invisible to it. The Rio lock is a semaphore (PyThread lock), outside TSan's
# lock-order (deadlock) checking; the tests' join timeouts catch a deadlock.
#
# Default tests (C implementation; about a minute here):
#   tests/test_rio_threads.py tests/test_socketserver.py tests/test_echo.py
#     one Rio shared by threads; socketserver's ThreadingTCPServer over Rio;
#     the C echo loop in a thread (-m "not stress and not fallback")
#   tests/test_servers.py tests/test_reliability_servers.py -k thread
#     the thread and prethreaded echo servers, a thread per client or a pool,
#     each in the C echo loop (-m "c_extension and not stress")
#
# Usage:
#   scripts/tsan.sh                  the tests above
#   scripts/tsan.sh --self-test      prove the harness: three planted races must be
#                                    caught (see below)
#   scripts/tsan.sh -- ARGS...       extra pytest arguments, added to both runs
#                                    (-x, -k ..., -m ...); if they name tests (a
#                                    path or node id), one run of just those, with
#                                    -m "not stress and not fallback" unless -m is given
# Environment: PYTHON (default python3; it needs the project's build requirements,
# e.g. PYTHON=.venv/bin/python), KEEP=1 keeps the work directory,
# TSAN_TIMEOUT (seconds per pytest run, default 900), TSAN_HISTORY_SIZE (TSan's
# history_size, default 3: how far back it can restore the other access's stack).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
# The real interpreter, not a pyenv shim (a shell script under LD_PRELOAD would
# run bash with TSan too).
PYEXE=$("$PYTHON" -c 'import sys; print(sys.executable)')
LIBTSAN=$(gcc -print-file-name=libtsan.so)
# gcc prints the bare name back when it has no such file.
[ -e "$LIBTSAN" ] || { echo "tsan.sh: libtsan not found (gcc -print-file-name=libtsan.so)"; exit 2; }

MODE=default
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --self-test) MODE=self-test ;;
        --) shift; EXTRA=("$@"); break ;;
        *) EXTRA+=("$1") ;;
    esac
    shift
done

source "$ROOT/scripts/lib.sh"
make_workdir tsan

# build DEST: the TSan-instrumented extensions, in place inside DEST.
build() {
    # The generated C files go, so Cython regenerates both from this copy's
    # .pyx (lib.sh leaves them out too): what is compiled is the source under test.
    rm -f "$1"/src/csapp/_rio_c.c "$1"/src/csapp/aio/_buffer_c.c
    (cd "$1" && CFLAGS="-fsanitize=thread -g -fno-omit-frame-pointer" \
        LDFLAGS="-fsanitize=thread" CSAPP_REQUIRE_EXTENSIONS=1 \
        "$PYEXE" setup.py build_ext --inplace >build.log 2>&1) || {
        echo "tsan.sh: the TSan build failed:"; tail -30 "$1/build.log"; return 1; }
    local so syms
    for so in "$1"/src/csapp/_rio_c*.so "$1"/src/csapp/aio/_buffer_c*.so; do
        [ -e "$so" ] || { echo "tsan.sh: $so was not built"; return 1; }
        # Instrumented, not merely linked: the compiler's calls into the runtime.
        # (Not piped into grep -q: with pipefail, an early exit is a failure.)
        syms=$(nm -D "$so")
        grep -q "__tsan_func_entry" <<<"$syms" || {
            echo "tsan.sh: $so is not instrumented by ThreadSanitizer"; return 1; }
    done
}

# tsan_env DEST REPORTS CMD...: CMD in DEST under the TSan runtime.
tsan_env() {
    local dest=$1 reports=$2
    shift 2
    mkdir -p "$reports"
    # timeout outside env: only the interpreter gets the preload.
    (cd "$dest" && timeout "${TSAN_TIMEOUT:-900}" env \
        LD_PRELOAD="$LIBTSAN" \
        PYTHONMALLOC=malloc \
        PYTHONPATH="$dest/src" \
        PYTHONDONTWRITEBYTECODE=1 \
        CSAPP_REQUIRE_EXTENSIONS=1 \
        TSAN_OPTIONS="log_path=$reports/tsan:suppressions=$ROOT/scripts/tsan.supp:print_suppressions=1:exitcode=0:halt_on_error=0:ignore_noninstrumented_modules=0:second_deadlock_stack=1:history_size=${TSAN_HISTORY_SIZE:-3}" \
        "$@")
}

# probe DEST REPORTS: the copy's instrumented modules import under the preload
# (and so the tests exercise them, not the in-place build others use).
probe() {
    local where line
    where=$(tsan_env "$1" "$2" "$PYEXE" -c \
        'import csapp._rio_c as r, csapp.aio._buffer_c as a; print(r.__file__); print(a.__file__)') || {
        echo "tsan.sh: the instrumented modules do not import under LD_PRELOAD=$LIBTSAN"; return 1; }
    while read -r line; do
        case "$line" in
            "$1"/src/csapp/*) ;;
            *) echo "tsan.sh: a module came from elsewhere: $line"; return 1 ;;
        esac
    done <<<"$where"
}

# run_pytest DEST REPORTS ARGS...: pytest under TSan; returns pytest's status.
run_pytest() {
    local dest=$1 reports=$2
    shift 2
    tsan_env "$dest" "$reports" "$PYEXE" -m pytest -p no:cacheprovider -q -ra "$@"
}

# A small threaded program for the "counter" mutant: two threads each read their
# own socketpair with rio_readn (the GIL released around csapp_readn), two
# threads feed them. Nothing is shared but the planted counter.
RACE_PROGRAM='
import socket, threading
from csapp import _rio_c
pairs = [socket.socketpair() for _ in range(2)]
def reader(sock):
    for _ in range(2000):
        assert _rio_c.rio_readn(sock.fileno(), 1) == b"x"
def writer(sock):
    for _ in range(2000):
        sock.sendall(b"x")
threads = [threading.Thread(target=reader, args=(a,)) for a, _ in pairs]
threads += [threading.Thread(target=writer, args=(b,)) for _, b in pairs]
for t in threads:
    t.start()
for t in threads:
    t.join()
'

if [ "$MODE" = self-test ]; then
    # Each planted race must produce a TSan report in csapp's code (a failing
    # test alone is not enough: it could be the corruption, not TSan, speaking).
    #   counter   a global counter bumped in csapp_readn, GIL released, from two
    #             threads (rio_readn): in-process detection and the filter
    #   echo      the same in csapp_rio_echo: run in a thread-mode echo server's
    #             client threads, so reports from the server child are collected
    #   unlocked  Rio.readnb without the per-object lock (the .pyx): the
    #             regression the lock exists to prevent, caught by the threads tests
    status=0
    for mutant in counter echo unlocked; do
        dest="$WORK/$mutant"
        copy_tree "$dest"
        case $mutant in
            counter)
                target=csrc/rio.c planted=csapp_selftest_reads++
                # (Two sed runs: once the declaration is inserted, the line no
                # longer starts with the function, and a range would not open.)
                sed -i '/^int csapp_readn(/,/^}/ s/^\( *\)ssize_t got = read(fd, .*$/&\n\1csapp_selftest_reads++;/' \
                    "$dest/$target"
                sed -i 's/^int csapp_readn(/unsigned long csapp_selftest_reads;\n&/' "$dest/$target"
                cmd=("$PYEXE" -c "$RACE_PROGRAM") ;;
            echo)
                target=csrc/rio.c planted=csapp_selftest_echoes++
                sed -i '/^int csapp_rio_echo(/,/^}/ s/^\( *\)ssize_t got = csapp_rio_fill(rp, rp->bufsize, err);$/&\n\1csapp_selftest_echoes++;/' \
                    "$dest/$target"
                sed -i 's/^int csapp_rio_echo(/unsigned long csapp_selftest_echoes;\n&/' "$dest/$target"
                cmd=("$PYEXE" -m pytest -p no:cacheprovider -q tests/test_servers.py
                     -m "c_extension and not stress" -k "forty and thread and not prethreaded") ;;
            unlocked)
                target=src/csapp/_rio_c.pyx planted="self.check_open()"
                sed -i '/^    def readnb(self, n):$/,/^    def readinto/ {
                            s/^\( *\)self\.enter()$/\1self.check_open()/
                            s/^\( *\)self\.exit()$/\1pass/ }' "$dest/$target"
                cmd=("$PYEXE" -m pytest -p no:cacheprovider -q tests/test_rio_threads.py
                     -m "c_extension and not stress" -k "mixed") ;;
        esac
        # Both halves of a patch must have applied (the use, not only a declaration).
        if cmp -s "$ROOT/$target" "$dest/$target" || ! grep -qF "$planted" "$dest/$target" \
            || [ "$(diff "$ROOT/$target" "$dest/$target" | grep -c '^>')" -lt 2 ]; then
            echo "self-test: the $mutant patch no longer applies to $target"; status=1; continue
        fi
        build "$dest"
        probe "$dest" "$dest/reports"
        set +e
        tsan_env "$dest" "$dest/reports" "${cmd[@]}" >"$dest/run.log" 2>&1
        rc=$?
        "$PYEXE" "$ROOT/scripts/tsan_filter.py" "$dest/reports" >"$dest/filter.log" 2>&1
        frc=$?
        set -e
        if [ $frc -ne 0 ] && grep -q "in csapp's code$" "$dest/filter.log"; then
            echo "self-test: $mutant caught (run status $rc, $(tail -1 "$dest/filter.log"))"
            grep -m1 -h "^SUMMARY: ThreadSanitizer" "$dest/filter.log" | sed 's/^/    /' || true
        else
            echo "self-test: $mutant NOT caught (run status $rc, report filter status $frc)"
            tail -5 "$dest/run.log" | sed 's/^/    /'
            status=1
        fi
    done
    exit $status
fi

# The default selection, or the tests named in EXTRA.
names_tests=0
for arg in ${EXTRA[@]+"${EXTRA[@]}"}; do
    case "$arg" in tests|tests/*|*.py|*::*) names_tests=1 ;; esac
done
if [ $names_tests = 1 ]; then
    RUN1=()
    case " ${EXTRA[*]} " in *" -m "*) ;; *) RUN1=(-m "not stress and not fallback") ;; esac
    RUN1+=("${EXTRA[@]}")
    RUN2=()
else
    # Extra arguments go last, so an -m or -k of theirs wins.
    RUN1=(tests/test_rio_threads.py tests/test_socketserver.py tests/test_echo.py
          -m "not stress and not fallback" ${EXTRA[@]+"${EXTRA[@]}"})
    RUN2=(tests/test_servers.py tests/test_reliability_servers.py
          -m "c_extension and not stress" -k thread ${EXTRA[@]+"${EXTRA[@]}"})
fi

echo "tsan.sh: copying the tree to $WORK/tree and building with -fsanitize=thread"
copy_tree "$WORK/tree"
build "$WORK/tree"
probe "$WORK/tree" "$WORK/reports"
echo "  LD_PRELOAD=$LIBTSAN PYTHONMALLOC=malloc"
echo "  TSAN_OPTIONS=log_path=...:suppressions=scripts/tsan.supp:exitcode=0:halt_on_error=0:..."
started=$SECONDS
rc=0
ran=0
# run ARGS...: one pytest run; a failure is remembered in rc. Status 5 (nothing
# collected) is not one: extra -k arguments may select tests of one run only.
run() {
    echo "tsan.sh: $PYEXE -m pytest$(printf ' %q' "$@")"
    set +e
    run_pytest "$WORK/tree" "$WORK/reports" "$@"
    local r=$?
    set -e
    case $r in
        0) ran=$((ran + 1)) ;;
        5) echo "tsan.sh: (no test selected in this run)" ;;
        *) ran=$((ran + 1)); rc=$r ;;
    esac
}
run "${RUN1[@]}"
[ ${#RUN2[@]} -eq 0 ] || run "${RUN2[@]}"
[ $ran -gt 0 ] || { echo "tsan.sh: no test was selected"; rc=5; }
echo "tsan.sh: pytest exit status $rc after $((SECONDS - started)) s"
set +e
"$PYEXE" "$ROOT/scripts/tsan_filter.py" "$WORK/reports"
frc=$?
set -e
if [ $rc -ne 0 ] || [ $frc -ne 0 ]; then
    echo "tsan.sh: FAILED"
    exit 1
fi
echo "tsan.sh: OK: no ThreadSanitizer report in csapp's code"
