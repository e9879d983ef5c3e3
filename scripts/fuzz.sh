#!/usr/bin/env bash
# Coverage-guided fuzzing of the RIO layer, for a bounded time.
#
# libFuzzer (fuzz/rio_fuzz.c) over the C core: csrc/rio.c is compiled into an
# object of its own with its read, write, writev and realloc renamed to the
# harness's fakes (-Dread=csapp_fake_read -Dwrite=csapp_fake_write
# -Dwritev=csapp_fake_writev -Drealloc=csapp_fake_realloc; nm proves none of
# the real ones is left),
# under ASan + UBSan (every report fatal) + LeakSanitizer, and runs for
# FUZZ_SECONDS on a copy of fuzz/corpus/rio in the work directory: the
# repository's corpus is only read, unless --merge. Then, if llvm-cov is
# installed, the line and branch coverage of csrc/rio.c and rio.h over the
# corpus it ended with.
#
# atheris (fuzz/atheris_rio.py) over the Python API: a venv of its own in the
# work directory gets `pip install TREE[fuzz]` (atheris from pyproject's fuzz
# extra; TREE is a copy of the repository, so the build never touches the
# in-place one others use) with CSAPP_REQUIRE_EXTENSIONS=1, then the harness
# runs for ATHERIS_SECONDS, comparing csapp._rio_c with csapp._rio_py, and the
# two StreamBuffers, call for call.
#
# It fails (status 1) on any crash, mismatch, leak, hang or sanitizer report;
# it prints the executions, executions per second and coverage of each.
#
# Usage:
#   scripts/fuzz.sh                  both fuzzers (FUZZ_SECONDS, then ATHERIS_SECONDS)
#   scripts/fuzz.sh --libfuzzer-only
#   scripts/fuzz.sh --atheris-only
#   scripts/fuzz.sh --merge          also merge the inputs that reach new edges into
#                                    fuzz/corpus/rio (with the libFuzzer run)
#   scripts/fuzz.sh --self-test      prove the harnesses: plant bugs in copies of
#                                    csrc/rio.c, rio.h and the Python twins; every one
#                                    must be caught within SELFTEST_SECONDS
#   scripts/fuzz.sh --replay FILE... run saved inputs through the libFuzzer harness
# Environment: FUZZ_SECONDS (default 60), ATHERIS_SECONDS (60), SELFTEST_SECONDS (60),
# PYTHON (default python3: the interpreter of the atheris venv), CC (default clang),
# FUZZ_CFLAGS (added to the harness's flags),
# KEEP=1 keeps the work directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
CC=${CC:-clang}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
ATHERIS_SECONDS=${ATHERIS_SECONDS:-60}
SELFTEST_SECONDS=${SELFTEST_SECONDS:-60}
FUZZ_CFLAGS=${FUZZ_CFLAGS:-}
CORPUS="$ROOT/fuzz/corpus/rio"

MODE=run
DO_LIBFUZZER=1
DO_ATHERIS=1
MERGE=0
REPLAY=()
while [ $# -gt 0 ]; do
    case "$1" in
        --self-test) MODE=self-test ;;
        --libfuzzer-only) DO_ATHERIS=0 ;;
        --atheris-only) DO_LIBFUZZER=0 ;;
        --merge) MERGE=1 ;;
        --replay) MODE=replay; shift; REPLAY=("$@"); break ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "fuzz.sh: unknown argument $1 (see --help)"; exit 2 ;;
    esac
    shift
done
if [ $MERGE = 1 ] && [ $DO_LIBFUZZER = 0 ]; then
    echo "fuzz.sh: --merge needs the libFuzzer run"; exit 2
fi

command -v "$CC" >/dev/null || { echo "fuzz.sh: $CC not found (libFuzzer needs clang)"; exit 2; }

source "$ROOT/scripts/lib.sh"
make_workdir fuzz

SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
CFLAGS_COMMON="-g -O1 -fno-omit-frame-pointer -Wall -Wextra"
FAKES="-Dread=csapp_fake_read -Dwrite=csapp_fake_write -Dwritev=csapp_fake_writev -Drealloc=csapp_fake_realloc -U_FORTIFY_SOURCE"
# No abort_on_error: libFuzzer saves the input and exits 1 after any report.
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

# The functions below also run under `||` or `if`, where errexit is off: each
# step that can fail returns by hand.

# build_libfuzzer SRCDIR OUT [EXTRA FLAGS...]: the harness over SRCDIR/rio.c and
# SRCDIR/rio.h (the repository's csrc, or a planted copy).
build_libfuzzer() {
    local src=$1 out=$2
    shift 2
    local log="$out.build.log"
    # shellcheck disable=SC2086  # the flag lists split on purpose
    { "$CC" $CFLAGS_COMMON $SAN -fsanitize=fuzzer-no-link $FAKES "$@" -I"$src" \
          -c "$src/rio.c" -o "$out.rio.o" &&
      "$CC" $CFLAGS_COMMON $SAN -fsanitize=fuzzer $FUZZ_CFLAGS "$@" -I"$src" \
          "$ROOT/fuzz/rio_fuzz.c" "$out.rio.o" -o "$out"; } >"$log" 2>&1 || {
        echo "fuzz.sh: building the libFuzzer harness failed:"; tail -30 "$log"; return 1; }
    # Every read, write, writev and realloc of rio.c must go to the fakes.
    local undef
    undef=$(nm -u "$out.rio.o" | awk '{print $NF}')
    if grep -qxE 'read|write|writev|realloc' <<<"$undef"; then
        echo "fuzz.sh: rio.o still calls the real read/write/writev/realloc:"
        grep -xE 'read|write|writev|realloc' <<<"$undef"
        return 1
    fi
}

# run_libfuzzer BIN CORPUS LOG SECONDS: returns 0 for a clean run, 1 for a finding.
run_libfuzzer() {
    local bin=$1 corpus=$2 log=$3 seconds=$4
    local art="$log.artifacts/"
    mkdir -p "$art"
    set +e
    timeout -k 10 $((seconds + 120)) "$bin" -max_total_time="$seconds" -timeout=10 \
        -max_len=4096 -print_final_stats=1 -artifact_prefix="$art" "$corpus" >"$log" 2>&1
    local rc=$?
    set -e
    if [ $rc -ne 0 ] || [ -n "$(ls -A "$art")" ] ||
        grep -qE 'MISMATCH|runtime error|ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)' "$log"; then
        return 1
    fi
}

# finding LOG: the first line saying what went wrong, and the saved input.
finding() {
    grep -m1 -hE 'MISMATCH|runtime error|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|Mismatch|Uncaught Python exception' "$1" || tail -5 "$1"
    ls "$1".artifacts/ 2>/dev/null | sed "s|^|  saved: $1.artifacts/|" || true
}

stat() { # stat LOG NAME: a libFuzzer final statistic
    sed -n "s/^stat::$2: *//p" "$1" | tail -1
}

cov() { # cov LOG: "cov N ft M" of the last status line
    grep -oE 'cov: [0-9]+ ft: [0-9]+' "$1" | tail -1 | sed 's/: / /g' || true
}

# libfuzzer_coverage CORPUS: line and branch coverage of rio.c and rio.h.
libfuzzer_coverage() {
    local major prof cov_tool
    major=$("$CC" -dumpversion | cut -d. -f1)
    prof=$(command -v "llvm-profdata-$major" || command -v llvm-profdata || true)
    cov_tool=$(command -v "llvm-cov-$major" || command -v llvm-cov || true)
    if [ -z "$prof" ] || [ -z "$cov_tool" ]; then
        echo "fuzz.sh: (no llvm-cov: source coverage skipped)"; return 0
    fi
    local out="$WORK/cov/rio_cov"
    mkdir -p "$WORK/cov"
    local pflags="-fprofile-instr-generate -fcoverage-mapping"
    # shellcheck disable=SC2086
    { "$CC" -g -O1 $pflags -fsanitize=fuzzer-no-link $FAKES -I"$ROOT/csrc" \
          -c "$ROOT/csrc/rio.c" -o "$out.rio.o" &&
      "$CC" -g -O1 $pflags -fsanitize=fuzzer -I"$ROOT/csrc" "$ROOT/fuzz/rio_fuzz.c" \
          "$out.rio.o" -o "$out"; } >"$WORK/cov/build.log" 2>&1 || {
        echo "fuzz.sh: (the coverage build failed: skipped)"; return 0; }
    (cd "$WORK/cov" && LLVM_PROFILE_FILE="$WORK/cov/rio.profraw" "$out" -runs=0 "$1" \
        >"$WORK/cov/run.log" 2>&1) || { echo "fuzz.sh: the coverage replay failed"; return 1; }
    "$prof" merge -sparse "$WORK/cov/rio.profraw" -o "$WORK/cov/rio.profdata" || return 1
    "$cov_tool" report "$out" -instr-profile="$WORK/cov/rio.profdata" \
        "$ROOT/csrc/rio.c" "$ROOT/csrc/rio.h" 2>/dev/null |
        awk '$1 == "rio.c" || $1 == "rio.h" || $1 == "TOTAL" {
                 printf "fuzz.sh: coverage of %s: lines %s (%d of %d), branches %s (%d of %d)\n",
                        ($1 == "TOTAL" ? "rio.c + rio.h" : "csrc/" $1), $10, $8 - $9, $8, $13, $11 - $12, $11 }'
}

libfuzzer_main() {
    echo "fuzz.sh: libFuzzer: building fuzz/rio_fuzz.c over csrc/rio.c ($CC, ASan + UBSan + LSan)"
    build_libfuzzer "$ROOT/csrc" "$WORK/rio_fuzz" || return 1
    mkdir -p "$WORK/corpus"
    cp "$CORPUS"/* "$WORK/corpus/"
    local seeds
    seeds=$(ls "$WORK/corpus" | wc -l)
    echo "fuzz.sh: libFuzzer: $FUZZ_SECONDS s on a copy of fuzz/corpus/rio ($seeds inputs)"
    local started=$SECONDS
    if ! run_libfuzzer "$WORK/rio_fuzz" "$WORK/corpus" "$WORK/libfuzzer.log" "$FUZZ_SECONDS"; then
        echo "fuzz.sh: libFuzzer FOUND A PROBLEM (log: $WORK/libfuzzer.log; KEEP=1 keeps it):"
        finding "$WORK/libfuzzer.log"
        KEEP=1
        return 1
    fi
    echo "fuzz.sh: libFuzzer: $(stat "$WORK/libfuzzer.log" number_of_executed_units) executions" \
         "in $((SECONDS - started)) s ($(stat "$WORK/libfuzzer.log" average_exec_per_sec)/s)," \
         "$(cov "$WORK/libfuzzer.log") (edges and features, harness included)," \
         "corpus $seeds -> $(ls "$WORK/corpus" | wc -l) inputs, peak RSS" \
         "$(stat "$WORK/libfuzzer.log" peak_rss_mb) MB"
    libfuzzer_coverage "$WORK/corpus" || return 1
    if [ $MERGE = 1 ]; then
        local before
        before=$(ls "$CORPUS" | wc -l)
        # Edges only (no hit counters): a small corpus that keeps all of them.
        "$WORK/rio_fuzz" -merge=1 -use_counters=0 "$CORPUS" "$WORK/corpus" >"$WORK/merge.log" 2>&1 || {
            echo "fuzz.sh: the merge failed:"; tail -5 "$WORK/merge.log"; return 1; }
        local files bytes
        files=$(ls "$CORPUS" | wc -l)
        bytes=$(du -sb "$CORPUS" | cut -f1)
        echo "fuzz.sh: merged into fuzz/corpus/rio: $before -> $files inputs, $bytes bytes"
        if [ "$files" -gt 200 ] || [ "$bytes" -gt 204800 ]; then
            echo "fuzz.sh: the corpus is over 200 inputs or 200 KB: minimize it before committing"
        fi
    fi
}

# make_venv: the atheris venv, csapp from a copy of the tree with its extensions.
make_venv() {
    VENV="$WORK/venv"
    echo "fuzz.sh: atheris: a venv with $("$PYTHON" -c 'import sys; print(sys.executable)'), pip install .[fuzz]"
    "$PYTHON" -m venv "$VENV" || return 1
    copy_tree "$WORK/tree" || return 1
    (cd "$WORK/tree" && CSAPP_REQUIRE_EXTENSIONS=1 "$VENV/bin/python" -m pip install -q \
        ".[fuzz]" >"$WORK/pip.log" 2>&1) || {
        echo "fuzz.sh: pip install .[fuzz] failed:"; tail -20 "$WORK/pip.log"; return 1; }
    "$VENV/bin/python" -c 'import atheris, csapp._rio_c, csapp.aio._buffer_c' || {
        echo "fuzz.sh: the venv lacks atheris or the compiled twins"; return 1; }
}

# run_atheris DIR SECONDS [ENV=VALUE...]: returns 0 for a clean run, 1 for a finding.
run_atheris() {
    local dir=$1 seconds=$2
    shift 2
    mkdir -p "$dir/corpus" "$dir/log.artifacts"
    set +e
    # From DIR, so only the venv's csapp can be imported.
    (cd "$dir" && env "$@" timeout -k 10 $((seconds + 120)) "$VENV/bin/python" \
        "$ROOT/fuzz/atheris_rio.py" -max_total_time="$seconds" -timeout=20 -max_len=4096 \
        -print_final_stats=1 -artifact_prefix="$dir/log.artifacts/" corpus >"$dir/log" 2>&1)
    local rc=$?
    set -e
    if [ $rc -ne 0 ] || [ -n "$(ls -A "$dir/log.artifacts")" ] ||
        grep -qE 'Mismatch|Uncaught Python exception|ERROR: libFuzzer' "$dir/log"; then
        return 1
    fi
}

atheris_main() {
    make_venv || return 1
    echo "fuzz.sh: atheris: $ATHERIS_SECONDS s, csapp._rio_c against csapp._rio_py (and the StreamBuffers)"
    local started=$SECONDS
    if ! run_atheris "$WORK/atheris" "$ATHERIS_SECONDS"; then
        echo "fuzz.sh: atheris FOUND A PROBLEM (log: $WORK/atheris/log; KEEP=1 keeps it):"
        grep -m1 -A12 -E '^Mismatch|Uncaught Python exception' "$WORK/atheris/log" || tail -20 "$WORK/atheris/log"
        ls "$WORK/atheris/log.artifacts/" | sed "s|^|  saved: $WORK/atheris/log.artifacts/|"
        KEEP=1
        return 1
    fi
    echo "fuzz.sh: atheris: $(stat "$WORK/atheris/log" number_of_executed_units) executions" \
         "in $((SECONDS - started)) s ($(stat "$WORK/atheris/log" average_exec_per_sec)/s)," \
         "$(cov "$WORK/atheris/log") (Python edges of csapp._rio_py, csapp.aio._buffer_py, _shared)," \
         "$(ls "$WORK/atheris/corpus" | wc -l) inputs"
}

# --------------------------------------------------------------- self-test

# plant NAME DIR: apply mutant NAME to the copy in DIR; fails if it no longer applies.
plant() {
    local name=$1 dir=$2 file
    case $name in
        readn-lost-byte)  # a short read counts one byte less than it delivered
            file=rio.c
            sed -i 's/^        \*done += (size_t)got;/        *done += (size_t)got - (got > 1 \&\& *done + (size_t)got < n);/' "$dir/$file" ;;
        consume-off-by-one)  # consuming all but one byte drops that one too
            file=rio.h
            sed -i 's/^    if (rp->start == rp->end)$/    if (rp->start + 1 >= rp->end)/' "$dir/$file" ;;
        echo-short-write)  # a short write of some bytes is not reported
            file=rio.c
            sed -i 's/^            if ((size_t)put < n) {/            if ((size_t)put < n \&\& put == 0) {/' "$dir/$file" ;;
        compact-overflow)  # compact() moves one byte too many: reads past the buffer
            file=rio.c
            sed -i 's/memmove(rp->buf, rp->buf + rp->start, avail);/memmove(rp->buf, rp->buf + rp->start, avail + 1);/' "$dir/$file" ;;
        release-leak)  # release forgets the buffer
            file=rio.c
            sed -i '/^void csapp_rio_release/,/^}/ s/    free(rp->buf);/    (void)0;/' "$dir/$file" ;;
        py-line-limit)  # _rio_py: exactly `limit` bytes buffered, no newline: reads on
            file=_rio_py.py
            sed -i 's/^            if not cut and 0 <= limit <= len(data):/            if not cut and 0 <= limit < len(data):/' "$dir/$file" ;;
        aiobuf-py-lineb)  # aio/_buffer_py: take_lineb waits for one byte more than maxlen - 1
            file=_buffer_py.py
            sed -i 's/^        if len(self) >= span or at_eof:/        if len(self) > span or at_eof:/' "$dir/$file" ;;
    esac
    local orig
    case $file in
        rio.c|rio.h) orig="$ROOT/csrc/$file" ;;
        _buffer_py.py) orig="$ROOT/src/csapp/aio/$file" ;;
        *) orig="$ROOT/src/csapp/$file" ;;
    esac
    if cmp -s "$orig" "$dir/$file"; then
        echo "self-test: the $name patch no longer applies to $file"; return 1
    fi
}

self_test() {
    local status=0 name dir started
    if [ $DO_LIBFUZZER = 1 ]; then
        for name in readn-lost-byte consume-off-by-one echo-short-write compact-overflow release-leak; do
            dir="$WORK/$name"
            mkdir -p "$dir/src" "$dir/corpus"
            cp "$ROOT/csrc/rio.c" "$ROOT/csrc/rio.h" "$dir/src/"
            plant "$name" "$dir/src" || { status=1; continue; }
            build_libfuzzer "$dir/src" "$dir/rio_fuzz" || { status=1; continue; }
            cp "$CORPUS"/* "$dir/corpus/"
            started=$SECONDS
            if run_libfuzzer "$dir/rio_fuzz" "$dir/corpus" "$dir/log" "$SELFTEST_SECONDS"; then
                echo "self-test: libFuzzer: $name NOT caught in $SELFTEST_SECONDS s"; status=1
            else
                echo "self-test: libFuzzer: $name caught in $((SECONDS - started)) s:" \
                     "$(grep -m1 -hoE 'MISMATCH: .*|runtime error: .*|ERROR: (AddressSanitizer|LeakSanitizer): [a-z-]+( [a-z-]+)*' "$dir/log" || echo '?')"
            fi
        done
    fi
    if [ $DO_ATHERIS = 1 ]; then
        make_venv
        for name in py-line-limit aiobuf-py-lineb; do
            dir="$WORK/$name"
            mkdir -p "$dir"
            local file=_rio_py.py var=CSAPP_FUZZ_PY_TWIN package="$ROOT/src/csapp"
            if [ $name = aiobuf-py-lineb ]; then
                file=_buffer_py.py var=CSAPP_FUZZ_AIOBUF_PY_TWIN package="$ROOT/src/csapp/aio"
            fi
            cp "$package/$file" "$dir/"
            plant "$name" "$dir" || { status=1; continue; }
            started=$SECONDS
            if run_atheris "$dir" "$SELFTEST_SECONDS" "$var=$dir/$file"; then
                echo "self-test: atheris: $name NOT caught in $SELFTEST_SECONDS s"; status=1
            else
                echo "self-test: atheris: $name caught in $((SECONDS - started)) s:" \
                     "$(grep -m1 -hE '^Mismatch' "$dir/log" || echo '?')"
            fi
        done
    fi
    if [ $status = 0 ]; then
        echo "self-test: OK: every planted bug was caught"
    else
        echo "self-test: FAILED"
    fi
    return $status
}

# ------------------------------------------------------------------ main

case $MODE in
    self-test)
        self_test ;;
    replay)
        [ ${#REPLAY[@]} -gt 0 ] || { echo "fuzz.sh: --replay needs input files"; exit 2; }
        build_libfuzzer "$ROOT/csrc" "$WORK/rio_fuzz"
        "$WORK/rio_fuzz" "${REPLAY[@]}" ;;
    run)
        status=0
        if [ $DO_LIBFUZZER = 1 ]; then libfuzzer_main || status=1; fi
        if [ $DO_ATHERIS = 1 ]; then atheris_main || status=1; fi
        if [ $status = 0 ]; then echo "fuzz.sh: OK: no crash, mismatch, leak or sanitizer report"; else echo "fuzz.sh: FAILED"; fi
        exit $status ;;
esac
