# Shared setup of the end-to-end scripts, sourced after `cd` to the repository root: the
# binary, a temporary folder removed on exit, and check(), which runs a command and counts
# it as passed or failed under a name.
EUAR=${EUAR:-bin/euar}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

check() {
    local name=$1
    shift
    if "$@"; then
        passed=$((passed + 1))
        echo "ok    $name"
    else
        failed=$((failed + 1))
        echo "FAIL  $name"
    fi
}

# Checks the files a script needs (bin/euar, data/*.h5) before its first check. Missing ones
# are built with make; when that fails, the script stops with one line saying what to run.
e2e_require() {
    local missing=() f
    for f in "$@"; do
        [ -e "$f" ] || missing+=("$f")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    echo "note  $(basename "$0") needs ${missing[*]}: running make ${missing[*]}"
    if ! make -j2 "${missing[@]}" >"$work/prerequisites.log" 2>&1; then
        echo "error: make ${missing[*]} failed; run 'make deps' (as root), then" \
             "'make ${missing[*]}' in $(pwd) to see why, and run this test again"
        exit 2
    fi
}
