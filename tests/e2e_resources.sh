#!/usr/bin/env bash
# End-to-end test of resource failures: a results folder the user cannot write, a full disk
# (a 512 KiB tmpfs when this runs as root and may mount one) and a file-size limit (ulimit -f,
# with SIGXFSZ ignored so that write(2) fails with EFBIG). Each must end with a clear error
# and a non-zero exit, leave the finished results of the folder byte for byte as they were
# and leave no temporary file. Needs bin/euar and data/synth-mosi.h5. Prints
# "N passed, M failed".
set -u
cd "$(dirname "$0")/.." || exit 1

# shellcheck source=tests/e2e_lib.sh
. tests/e2e_lib.sh

suite=suites/convergence.json
# Prints a checksum line per finished result of folder $1.
checksums() {
    find "$1" -maxdepth 1 -name '*.json' ! -name suite.json -exec sha256sum {} + | sort
}
# Fills folder $1 with finished results of the quick convergence suite (3 cells), then deletes
# one so that a rerun has a cell to run, and stores the checksums of the others in $1.sums.
prepare() {
    "$EUAR" suite "$suite" --quick --jobs 2 --results "$1" >"$1.log" 2>&1 || return 1
    rm -f "$(find "$1" -maxdepth 1 -name '*.json' ! -name suite.json | sort | head -n 1)"
    checksums "$1" >"$1.sums"
}
# Checks that folder $1 kept its finished results and holds no temporary file.
check_intact() {
    check "$2: finished results unchanged" sh -c "checksums() { find '$1' -maxdepth 1 \
        -name '*.json' ! -name suite.json -exec sha256sum {} + | sort; }; \
        checksums | cmp -s - '$1.sums'"
    check "$2: no temporary file left" test -z "$(find "$1" -name '*.tmp.*')"
}

# 1. A results folder the user cannot write. root writes anywhere, so as root the commands
# run as the user nobody.
chmod 755 "$work"
as_user=()
user_dir=$PWD
user_euar=$EUAR
if [ "$(id -u)" -eq 0 ]; then
    as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
    # A clone in a folder of mode 700 (mktemp -d) is closed to nobody, so nobody runs from a
    # copy in $work: the binary, the suite file and the data file (a hard link where possible).
    user_dir=$work/repo
    mkdir -p "$user_dir/bin" "$user_dir/suites" "$user_dir/data"
    cp "$EUAR" "$user_dir/bin/euar"
    cp "$suite" "$user_dir/suites/"
    ln data/synth-mosi.h5 "$user_dir/data/" 2>/dev/null || cp data/synth-mosi.h5 "$user_dir/data/"
    chmod -R a+rX "$user_dir"
    user_euar=$user_dir/bin/euar
    # The leak suppressions of a sanitizer build are read by the process, so nobody needs them
    # too.
    case "${LSAN_OPTIONS:-}" in
    *suppressions=*)
        supp=${LSAN_OPTIONS#*suppressions=}
        supp=${supp%%:*}
        cp "$supp" "$user_dir/lsan.supp" && chmod a+r "$user_dir/lsan.supp"
        LSAN_OPTIONS=${LSAN_OPTIONS/"$supp"/"$user_dir/lsan.supp"}
        export LSAN_OPTIONS
        ;;
    esac
fi
locked=$work/locked
prepare "$locked"
check "prepared 2 finished results" test "$(wc -l <"$locked.sums")" -eq 2
chmod 555 "$locked"
(cd "$user_dir" && "${as_user[@]}" "$user_euar" suite "$suite" --quick --jobs 2 \
    --results "$locked") >"$work/locked.log" 2>&1
status=$?
check "unwritable results folder exits 1 (got $status)" test "$status" -eq 1
check "unwritable results folder: message names the folder" \
    grep -q "cannot create $locked/.lock: Permission denied; check that the results folder is writable" \
    "$work/locked.log"
check_intact "$locked" "unwritable results folder"
(cd "$user_dir" && "${as_user[@]}" "$user_euar" train --data data/synth-mosi.h5 \
    --model concat --out "$locked/run.json") >/dev/null 2>"$work/locked-train.log"
check "unwritable --out folder exits 1" test $? -eq 1
check "unwritable --out folder: message" \
    grep -q "folder $locked is not writable (Permission denied)" "$work/locked-train.log"
(cd "$user_dir" && "${as_user[@]}" "$user_euar" suite "$suite" --quick \
    --results "$locked/sub") >"$work/locked-sub.log" 2>&1
check "results folder that cannot be created exits 1" test $? -eq 1
check "results folder that cannot be created: message" grep -q "$locked/sub" \
    "$work/locked-sub.log"
chmod 755 "$locked"

# 2. A file-size limit: the runner cannot write suite.json, a run cannot write its result.
limited=$work/limited
prepare "$limited"
(
    trap '' XFSZ
    ulimit -f 1
    "$EUAR" suite "$suite" --quick --jobs 2 --results "$limited" >"$work/limited.log" 2>&1
)
status=$?
check "file-size limit on the suite exits 1 (got $status)" test "$status" -eq 1
check "file-size limit on the suite: message" \
    grep -q "cannot write $limited/suite.json.tmp.[0-9]*: File too large; free some space" \
    "$work/limited.log"
check_intact "$limited" "file-size limit on the suite"
(
    trap '' XFSZ
    ulimit -f 1
    "$EUAR" train --data data/synth-mosi.h5 --model concat --set epochs=2 --set max_train=64 \
        --checkpoint "$limited/run.ckpt.h5" --checkpoint-every 0 --out "$limited/run.json" \
        >/dev/null 2>"$work/limited-train.log"
)
status=$?
check "file-size limit on a run exits 1 (got $status)" test "$status" -eq 1
check "file-size limit on a run: checkpoint warning" \
    grep -q "warning: cannot .*run.ckpt.h5.*training goes on without checkpoints" \
    "$work/limited-train.log"
check "file-size limit on a run: result message" \
    grep -q "cannot write $limited/run.json.tmp.[0-9]*: File too large" "$work/limited-train.log"
check "file-size limit on a run: no result, checkpoint or temporary file" \
    test -z "$(find "$limited" -maxdepth 1 -name 'run.*')"
check_intact "$limited" "file-size limit on a run"
# HDF5 writes the dataset file itself; libhdf5 1.10.8 crashed at exit after such a failure.
(
    trap '' XFSZ
    ulimit -f 100
    "$EUAR" data synth nyud --out "$limited/nyud.h5" >/dev/null 2>"$work/limited-data.log"
)
status=$?
check "file-size limit on a dataset exits 1, no crash (got $status)" test "$status" -eq 1
check "file-size limit on a dataset: message" \
    grep -q "cannot write $limited/nyud.h5: /modalities/rgb/data: HDF5 failed" \
    "$work/limited-data.log"
check "file-size limit on a dataset: no file left" \
    test -z "$(find "$limited" -maxdepth 1 -name 'nyud.h5*')"

# 3. A full disk: a small tmpfs, filled up after the first run.
mnt=$work/mnt
mkdir -p "$mnt"
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=512k tmpfs "$mnt" 2>/dev/null; then
    trap 'umount "$mnt" 2>/dev/null; rm -rf "$work"' EXIT
    full=$mnt/results
    prepare "$full"
    check "prepared 2 finished results on the tmpfs" test "$(wc -l <"$full.sums")" -eq 2
    dd if=/dev/zero of="$mnt/filler" bs=4k >/dev/null 2>&1
    "$EUAR" suite "$suite" --quick --jobs 2 --results "$full" >"$work/full.log" 2>&1
    status=$?
    check "full disk exits 1 (got $status)" test "$status" -eq 1
    check "full disk: message" \
        grep -q "cannot write $full/suite.json.tmp.[0-9]*: No space left on device; free some space" \
        "$work/full.log"
    check_intact "$full" "full disk"
    rm -f "$mnt/filler"
    "$EUAR" suite "$suite" --quick --jobs 2 --results "$full" >"$work/freed.log" 2>&1
    check "after freeing space the rerun exits 0" test $? -eq 0
    check "after freeing space the rerun runs the missing cell" \
        grep -q "ran 1 (1 ok, 0 diverged, 0 failed), skipped 2 finished" "$work/freed.log"
    umount "$mnt"
else
    echo "skip  full disk on a tmpfs (needs root and mount)"
fi

echo "e2e resources: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
