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
