#!/bin/bash
# The checks that need a GPU, in one run sized to end within 8 minutes (an estimate: it has not
# run on a GPU yet, and GPU_CHECK_BUDGET bounds the bench part): the CUDA backend's
# tests (build/tests/test_gpu: every operation, every model and a 5-epoch run against the
# CPU), a short `euar train --device cuda` next to the same run on the CPU, and the GPU rows of
# the speed benchmark (bench/run.sh, PyTorch on the same GPU where torch.cuda works).
#
# The GPU machine has a CUDA driver, toolkit and PyTorch but no package registry, so bin/euar
# and the test binary bring their libraries: `make gpu-bundle` here writes build/gpu-bundle
# and build/gpu-bundle.tar.gz (docs/gpu.md). This script unpacks the bundle, points
# LD_LIBRARY_PATH at it, and runs the carried binaries. When they cannot load (another CUDA
# major version, say) it rebuilds them with the machine's nvcc against the bundle's headers
# and libraries, for sm_90 only.
#
# Writes logs and results under GPU_CHECK_OUT (default $OUT when set, else results/gpu-check),
# prints a summary, and exits 1 when a step failed.
#
# Environment: GPU_CHECK_OUT, GPU_CHECK_BUDGET (seconds for the whole script, default 480; the
# large bench setting is skipped when less than 240 s are left), PYTHON (default python3 on
# PATH), GPU_BUNDLE (default build/gpu-bundle).
set -u

cd "$(dirname "$0")/.." || exit 1
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-480}
CHECK_OUT=${GPU_CHECK_OUT:-${OUT:-results/gpu-check}}
BUNDLE=${GPU_BUNDLE:-build/gpu-bundle}
PYTHON=${PYTHON:-$(command -v python3 || echo /usr/bin/python3)}
TEST_BIN=build/tests/test_gpu
mkdir -p "$CHECK_OUT" || exit 1
SUMMARY="$CHECK_OUT/summary.txt"
: >"$SUMMARY"
FAILED=0

say() {
    echo "gpu-check: $*" | tee -a "$SUMMARY" >&2
}

elapsed() {
    echo $(($(date +%s) - START))
}

# Records a step's outcome: name, exit status, log file.
step_result() {
    if [ "$2" -eq 0 ]; then
        say "PASS $1 ($(elapsed) s so far)"
    else
        say "FAIL $1 (exit status $2; see $3)"
        tail -n 15 "$3" >&2
        FAILED=1
    fi
}

say "machine: $(uname -srm), $(nproc) CPUs, glibc $(ldd --version | head -n 1 | awk '{print $NF}')"
command -v nvidia-smi >/dev/null &&
    say "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
command -v nvcc >/dev/null && say "nvcc: $(nvcc --version | tail -n 2 | head -n 1)"
say "python: $PYTHON, $("$PYTHON" -c 'import torch; print("torch", torch.__version__,
    "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -n 1)"

# 1. The libraries that bin/euar needs.
if [ ! -d "$BUNDLE" ] && [ -f "$BUNDLE.tar.gz" ]; then
    tar -xzf "$BUNDLE.tar.gz" -C "$(dirname "$BUNDLE")" || say "cannot unpack $BUNDLE.tar.gz"
fi
if [ -d "$BUNDLE/lib" ]; then
    BUNDLE=$(cd "$BUNDLE" && pwd)
    export LD_LIBRARY_PATH="$BUNDLE/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "bundle: $BUNDLE ($(head -n 1 "$BUNDLE/BUNDLE" 2>/dev/null))"
else
    say "no bundle at $BUNDLE; run 'make gpu-bundle' on the build machine and carry it"
fi

loads() {
    [ -x "$1" ] && ! ldd "$1" 2>/dev/null | grep -q 'not found'
}

# 2. The carried binaries, or a rebuild with this machine's toolkit.
if loads bin/euar && loads "$TEST_BIN" && bin/euar --version >/dev/null 2>&1; then
    say "using the carried bin/euar and $TEST_BIN"
else
    ldd bin/euar "$TEST_BIN" 2>&1 | grep 'not found' | sort -u | head -n 5 >&2
    say "rebuilding bin/euar and the GPU test with $(command -v nvcc || echo 'no nvcc')"
    rm -f bin/euar
    make -j"$(nproc)" BUILD=build-gpu bin/euar build-gpu/tests/test_gpu \
        CFLAGS="-O2 -g -I$BUNDLE/include" \
        LDFLAGS="-L$BUNDLE/lib -Wl,-rpath,$BUNDLE/lib -Wl,-rpath-link,$BUNDLE/lib" \
        CUDA_ARCH="-gencode arch=compute_90,code=[sm_90,compute_90]" \
        >"$CHECK_OUT/rebuild.log" 2>&1
    step_result "rebuild" $? "$CHECK_OUT/rebuild.log"
    TEST_BIN=build-gpu/tests/test_gpu
fi
bin/euar bench --device cuda --device-info >"$CHECK_OUT/device.json" 2>"$CHECK_OUT/device.log"
status=$?
step_result "device found by bin/euar: $(cat "$CHECK_OUT/device.json")" "$status" \
    "$CHECK_OUT/device.log"

# 3. The GPU tests. A skip here means the device was not usable, which is a failure.
timeout 300 "$TEST_BIN" >"$CHECK_OUT/test_gpu.log" 2>&1
status=$?
if [ "$status" -eq 0 ] && grep -q 'SKIPPED' "$CHECK_OUT/test_gpu.log"; then
    status=2
fi
step_result "test_gpu (all tests run, none skipped)" "$status" "$CHECK_OUT/test_gpu.log"

# 4. euar train on both devices, 3 epochs on synth-mosi.
if [ ! -f data/synth-mosi.h5 ]; then
    mkdir -p data
    bin/euar data synth mosi --out data/synth-mosi.h5 --seed 1 >"$CHECK_OUT/data.log" 2>&1
fi
for device in cuda cpu; do
    timeout 120 bin/euar train --data data/synth-mosi.h5 --model euar --device "$device" \
        --set epochs=3 --quiet --out "$CHECK_OUT/train-$device.json" \
        >"$CHECK_OUT/train-$device.log" 2>&1
    status=$?
    step_result "euar train --device $device: $(tail -n 1 "$CHECK_OUT/train-$device.log")" \
        "$status" "$CHECK_OUT/train-$device.log"
done

# 5. Speed: the default setting on the GPU, then the large one when time allows.
left=$((BUDGET - $(elapsed)))
large=0
if [ "$left" -ge 240 ]; then
    large=1
    if [ ! -f data/synth-mosei.h5 ]; then
        bin/euar data synth mosei --out data/synth-mosei.h5 --seed 1 >>"$CHECK_OUT/data.log" 2>&1 ||
            large=0
    fi
fi
[ "$large" = 1 ] || say "large bench setting skipped ($left s left of $BUDGET)"
BENCH_DEVICES=cuda BENCH_ROUNDS=1 BENCH_EPOCHS=3 BENCH_EXPERTS=8 BENCH_LARGE=$large \
    BENCH_TIMEOUT=240 BENCH_OUT="$CHECK_OUT/bench.md" PYTHON="$PYTHON" \
    timeout $((BUDGET - $(elapsed) > 60 ? BUDGET - $(elapsed) : 60)) bench/run.sh \
    >"$CHECK_OUT/bench.log" 2>&1
step_result "bench GPU rows (table in $CHECK_OUT/bench.md)" $? "$CHECK_OUT/bench.log"
[ -f "$CHECK_OUT/bench.md" ] && grep '^|' "$CHECK_OUT/bench.md" >&2

if [ "$FAILED" = 0 ]; then
    say "finished in $(elapsed) s: all steps passed"
else
    say "finished in $(elapsed) s: some steps FAILED"
fi
exit "$FAILED"
