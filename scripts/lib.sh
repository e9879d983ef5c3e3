# Shared by the scripts that build the extensions their own way: sanitize.sh,
# valgrind.sh, tsan.sh, fuzz.sh (sourced; needs ROOT).

# copy_tree DEST: the sources and tests, without any built module, so a
# special build never disturbs the in-place one others use.
copy_tree() {
    mkdir -p "$1"
    (cd "$ROOT" && tar cf - --exclude='./.git' --exclude='*.so' \
        --exclude='./src/csapp/_rio_c.c' --exclude='./src/csapp/aio/_buffer_c.c' \
        --exclude='__pycache__' --exclude='./build' \
        --exclude='*.egg-info' --exclude='./.venv*' --exclude='./.mypy_cache' \
        --exclude='./.hypothesis' --exclude='./.benchmarks' --exclude='./.nox' \
        --exclude='./dist' --exclude='./.pytest_cache' --exclude='./.ruff_cache' .) | (cd "$1" && tar xf -)
}

# make_workdir NAME: a temporary work directory in $WORK, removed at exit
# unless KEEP=1.
make_workdir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/csapp-$1.XXXXXX")
    WORK_NAME=$1
    trap 'if [ "${KEEP:-0}" = 1 ]; then echo "$WORK_NAME.sh: kept $WORK"; else rm -rf "$WORK"; fi' EXIT
}
