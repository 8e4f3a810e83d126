#!/usr/bin/env bash
# End-to-end test of --device: invalid names and a missing GPU are one clear error with no
# output written; the cpu-guarded test backend (device memory unreadable from the host) gives
# the CPU backend's result to the bit through the whole command line, test-time noise and
# joint representations included; results record the device. When a CUDA device is present
# a short GPU run must finish too. Needs bin/euar and data/synth-mosi.h5 and
# data/synth-nyud.h5 (make data). Prints "N passed, M failed" and exits non-zero on any failure.
set -u
cd "$(dirname "$0")/.." || exit 1

# shellcheck source=tests/e2e_lib.sh
. tests/e2e_lib.sh

"$EUAR" train --data data/synth-mosi.h5 --model euar --device gpu --out "$work/bad.json" \
    >"$work/bad.log" 2>&1
check "--device gpu exits 1" test $? -eq 1
check "--device gpu names the valid devices" grep -q "invalid device 'gpu': expected one of" \
    "$work/bad.log"
check "--device gpu writes no result" test ! -e "$work/bad.json"

if "$EUAR" bench --device cuda --device-info >"$work/gpu.json" 2>"$work/nogpu.log"; then
    "$EUAR" train --data data/synth-mosi.h5 --model euar --device cuda --set epochs=2 --quiet \
        --out "$work/cuda.json" >"$work/cuda.log" 2>&1
    check "GPU run exits 0" test $? -eq 0
    check "GPU result records the device" grep -q '"type":[[:space:]]*"cuda"' "$work/cuda.json"
else
    check "without a GPU, --device-info says why" grep -q "^euar: error: --device cuda: " \
        "$work/nogpu.log"
    "$EUAR" train --data data/synth-mosi.h5 --model euar --device cuda --out "$work/cuda.json" \
        >"$work/cuda.log" 2>&1
    check "--device cuda without a GPU exits 1" test $? -eq 1
    check "--device cuda without a GPU writes no result" test ! -e "$work/cuda.json"
    "$EUAR" suite suites/missing.json --quick --device cuda --results "$work/suite" \
        >"$work/suite.log" 2>&1
    check "suite --device cuda without a GPU exits 1" test $? -eq 1
    check "suite --device cuda without a GPU starts no cell" test ! -e "$work/suite"
    "$EUAR" train --data data/synth-nyud.h5 --model tmc --device auto --set epochs=1 --quiet \
        --out "$work/auto.json" >"$work/auto.log" 2>&1
    check "--device auto falls back to the CPU" grep -q '"backend":[[:space:]]*"cpu"' \
        "$work/auto.json"
fi

# euar suite passes --device to each cell.
"$EUAR" suite suites/missing.json --quick --device cpu-guarded --only 'synth-mosi/T/euar/*' \
    --jobs 1 --results "$work/guarded-suite" >"$work/guarded-suite.log" 2>&1
check "suite --device cpu-guarded exits 0" test $? -eq 0
check "suite cell ran on cpu-guarded" \
    grep -lq '"backend":[[:space:]]*"cpu-guarded"' "$work"/guarded-suite/*.json

# The same runs on cpu and cpu-guarded must give identical results apart from times.
run_both() {
    local tag=$1
    shift
    for device in cpu cpu-guarded; do
        "$EUAR" train "$@" --device "$device" --quiet --out "$work/$tag-$device.json" \
            >"$work/$tag-$device.log" 2>&1
        check "$tag on $device exits 0" test $? -eq 0
    done
    same=$(python3 - "$work/$tag-cpu.json" "$work/$tag-cpu-guarded.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for r in (a, b):
    for e in r["curve"]:
        e.pop("ms")
keys = ["status", "selected_epoch", "metrics", "curve", "routing", "conditions"]
diff = [k for k in keys if a[k] != b[k]]
if b["device"]["type"] != "cpu-guarded" or b["backend"] != "cpu-guarded":
    diff.append("device")
print("same" if not diff else "differ in " + ",".join(diff))
PY
)
    check "$tag: cpu-guarded equals cpu ($same)" test "$same" = same
}
run_both euar-sparse --data data/synth-mosi.h5 --model euar --set epochs=2 \
    --set max_train=300 --set moe_compute=sparse --noise missing:keep=text,audio
run_both qmf --data data/synth-nyud.h5 --model qmf --set epochs=2 \
    --test-noise sp5=saltpepper:eps=5@rgb --joint-out "$work/qmf.joint.h5"

echo "e2e device: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
