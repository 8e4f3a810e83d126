#!/bin/bash
# The checks that need a GPU, in one run sized to end within GPU_CHECK_BUDGET seconds (default
# 480; an estimate: it has not run on a GPU yet): the CUDA backend's tests
# (build/tests/test_gpu: every operation, every model and a 5-epoch run against the CPU), the
# operation tests once more with EUAR_CUDA_SYNC=1 (each kernel waited for, so a fault names
# its kernel) and, where compute-sanitizer exists, under its memory checker; a short
# `euar train --device cuda` next to the same run on the CPU; and the GPU rows of the speed
# benchmark (bench/run.sh, PyTorch on the same GPU where torch.cuda works).
#
# The GPU machine has a CUDA driver, toolkit and PyTorch but no package registry, so bin/euar
# and the test binary bring their libraries: `make gpu-bundle` here writes build/gpu-bundle
# and build/gpu-bundle.tar.gz (docs/gpu.md). This script unpacks the bundle and runs the
# carried binaries through small wrappers that set LD_LIBRARY_PATH for them alone (Python and
# the system tools keep the machine's own libraries). When the binaries cannot load (another
# CUDA major version, say) or were built without the CUDA backend, it rebuilds them with the
# machine's nvcc against the bundle's headers and libraries, for sm_90 only.
#
# Every step runs under `timeout` with what is left of the budget and gets a summary line:
# ok, FAIL or skipped, with its seconds. Writes logs and results under GPU_CHECK_OUT (default
# $OUT when set, else results/gpu-check), and exits 1 when a step failed.
#
# Environment: GPU_CHECK_OUT, GPU_CHECK_BUDGET (seconds for the whole script, default 480; the
# large bench setting is skipped when less than 240 s are left), PYTHON (default python3 on
# PATH), GPU_BUNDLE (default build/gpu-bundle).
set -u

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
START=$(date +%s)
BUDGET=${GPU_CHECK_BUDGET:-480}
CHECK_OUT=${GPU_CHECK_OUT:-${OUT:-results/gpu-check}}
BUNDLE=${GPU_BUNDLE:-build/gpu-bundle}
PYTHON=${PYTHON:-$(command -v python3 || echo /usr/bin/python3)}
EUAR=bin/euar
TEST_BIN=build/tests/test_gpu
mkdir -p "$CHECK_OUT" || exit 1
CHECK_OUT=$(cd "$CHECK_OUT" && pwd)
SUMMARY="$CHECK_OUT/summary.txt"
: >"$SUMMARY"
FAILED=0

say() {
    echo "gpu-check: $*" | tee -a "$SUMMARY" >&2
}

elapsed() {
    echo $(($(date +%s) - START))
}

# Seconds left of the budget (0 when spent).
left() {
    local n=$((BUDGET - $(elapsed)))
    echo $((n > 0 ? n : 0))
}

# Runs a step: name, log file, at most `cap` seconds (0: no cap but the budget), command...
# Prints "ok|FAIL|skipped NAME (N s)"; a step needs at least 10 s of the budget to start.
run_step() {
    local name=$1 log=$2 cap=$3
    shift 3
    local limit t0 status
    limit=$(left)
    if [ "$cap" -gt 0 ] && [ "$cap" -lt "$limit" ]; then
        limit=$cap
    fi
    if [ "$limit" -lt 10 ]; then
        say "skipped $name (0 s; under 10 s of the $BUDGET s budget left for it)"
        FAILED=1
        return 3
    fi
    t0=$(date +%s)
    timeout "$limit" "$@" >"$log" 2>&1
    status=$?
    if [ "$status" -eq 0 ]; then
        say "ok $name ($(($(date +%s) - t0)) s)"
    else
        if [ "$status" -eq 124 ]; then
            echo "gpu-check: stopped after $limit s" >>"$log"
            say "FAIL $name ($(($(date +%s) - t0)) s; timed out; see $log)"
        else
            say "FAIL $name ($(($(date +%s) - t0)) s; exit status $status; see $log)"
        fi
        tail -n 15 "$log" >&2
        FAILED=1
    fi
    return "$status"
}

# Records a step that cannot run.
skip_step() {
    say "skipped $1 (0 s; $2)"
}

say "machine: $(uname -srm), $(nproc) CPUs, glibc $(ldd --version | head -n 1 | awk '{print $NF}')"
command -v nvidia-smi >/dev/null &&
    say "GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader)"
command -v nvcc >/dev/null && say "nvcc: $(nvcc --version | tail -n 2 | head -n 1)"
say "python: $PYTHON, $("$PYTHON" -c 'import torch; print("torch", torch.__version__,
    "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -n 1)"
say "budget: $BUDGET s"

# 1. The libraries that bin/euar needs, for its processes only.
if [ ! -d "$BUNDLE" ] && [ -f "$BUNDLE.tar.gz" ]; then
    tar -xzf "$BUNDLE.tar.gz" -C "$(dirname "$BUNDLE")" || say "cannot unpack $BUNDLE.tar.gz"
fi
BUNDLE_LIB=
if [ -d "$BUNDLE/lib" ]; then
    BUNDLE=$(cd "$BUNDLE" && pwd)
    BUNDLE_LIB=$BUNDLE/lib
    say "bundle: $BUNDLE ($(head -n 1 "$BUNDLE/BUNDLE" 2>/dev/null))"
else
    say "no bundle at $BUNDLE; run 'make gpu-bundle' on the build machine and carry it"
fi

# Writes an executable wrapper $1 that runs binary $2 with the bundle's libraries.
write_wrapper() {
    {
        echo '#!/bin/sh'
        if [ -n "$BUNDLE_LIB" ]; then
            echo "LD_LIBRARY_PATH='$BUNDLE_LIB'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
            echo 'export LD_LIBRARY_PATH'
        fi
        echo "exec '$ROOT/$2' \"\$@\""
    } >"$1"
    chmod +x "$1"
}

# True when binary $1 loads with the bundle and has the CUDA backend linked.
usable() {
    local libs
    [ -x "$1" ] || return 1
    libs=$(LD_LIBRARY_PATH="$BUNDLE_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$1" 2>&1)
    if echo "$libs" | grep -q 'not found'; then
        echo "$1 cannot load: $(echo "$libs" | grep 'not found' | tr -s ' \n\t' ' ')" >&2
        return 1
    fi
    if ! echo "$libs" | grep -q 'libcudart'; then
        echo "$1 was built without the CUDA backend (no libcudart in ldd's list)" >&2
        return 1
    fi
}

# 2. The carried binaries, or a rebuild with this machine's toolkit.
if usable "$EUAR" && usable "$TEST_BIN"; then
    say "using the carried $EUAR and $TEST_BIN"
else
    if ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
        skip_step "rebuild" "no nvcc on PATH or at /usr/local/cuda/bin/nvcc"
        FAILED=1
    else
        rm -f "$EUAR"
        run_step "rebuild with $(command -v nvcc || echo /usr/local/cuda/bin/nvcc)" \
            "$CHECK_OUT/rebuild.log" 0 \
            make -j"$(nproc)" BUILD=build-gpu bin/euar build-gpu/tests/test_gpu \
            CFLAGS="-O2 -g -I$BUNDLE/include" \
            LDFLAGS="-L$BUNDLE_LIB -Wl,-rpath,$BUNDLE_LIB -Wl,-rpath-link,$BUNDLE_LIB" \
            CUDA_ARCH="-gencode arch=compute_90,code=[sm_90,compute_90]"
        TEST_BIN=build-gpu/tests/test_gpu
    fi
fi
WRAP="$CHECK_OUT/wrappers"
mkdir -p "$WRAP"
write_wrapper "$WRAP/euar" "$EUAR"
write_wrapper "$WRAP/test_gpu" "$TEST_BIN"
# test_gpu skips its GPU tests when the device is unusable; here that is a failure.
cat >"$WRAP/test_gpu_strict" <<STRICT
#!/bin/sh
out=\$("$WRAP/test_gpu" "\$@" 2>&1)
status=\$?
printf '%s\\n' "\$out"
[ "\$status" -eq 0 ] || exit "\$status"
case \$out in
*SKIPPED*)
    echo "gpu-check: tests were skipped because the device is not usable"
    exit 2
    ;;
esac
STRICT
chmod +x "$WRAP/test_gpu_strict"

run_step "device found by bin/euar" "$CHECK_OUT/device.log" 60 \
    "$WRAP/euar" bench --device cuda --device-info
[ -s "$CHECK_OUT/device.log" ] && say "device: $(head -c 400 "$CHECK_OUT/device.log")"

# 3. The GPU tests, through test_gpu_strict: a skip means the device was not usable.
run_step "test_gpu (all tests run, none skipped)" "$CHECK_OUT/test_gpu.log" 300 \
    "$WRAP/test_gpu_strict"
run_step "test_gpu operations with EUAR_CUDA_SYNC=1" "$CHECK_OUT/test_gpu_sync.log" 120 \
    env EUAR_CUDA_SYNC=1 TEST_GPU_OPS=1 "$WRAP/test_gpu_strict"
# 4. euar train on both devices, 3 epochs on synth-mosi.
if [ ! -f data/synth-mosi.h5 ]; then
    mkdir -p data
    run_step "synth-mosi data" "$CHECK_OUT/data.log" 60 \
        "$WRAP/euar" data synth mosi --out data/synth-mosi.h5 --seed 1
fi
for device in cuda cpu; do
    run_step "euar train --device $device" "$CHECK_OUT/train-$device.log" 120 \
        "$WRAP/euar" train --data data/synth-mosi.h5 --model euar --device "$device" \
        --set epochs=3 --quiet --out "$CHECK_OUT/train-$device.json" &&
        say "  $(tail -n 1 "$CHECK_OUT/train-$device.log")"
done

# 5. Speed: the default setting on the GPU, then the large one when time allows. The bench
# leaves 90 s of the budget for the sanitizer pass when there is one.
SANITIZER=$(command -v compute-sanitizer ||
    ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
reserve=0
[ -n "$SANITIZER" ] && reserve=90
large=0
if [ "$(($(left) - reserve))" -ge 240 ]; then
    large=1
    if [ ! -f data/synth-mosei.h5 ]; then
        run_step "synth-mosei data" "$CHECK_OUT/data-large.log" 60 \
            "$WRAP/euar" data synth mosei --out data/synth-mosei.h5 --seed 1 || large=0
    fi
fi
[ "$large" = 1 ] || say "large bench setting skipped ($(left) s left of $BUDGET)"
bench_cap=$(($(left) - reserve))
run_step "bench GPU rows (table in $CHECK_OUT/bench.md)" "$CHECK_OUT/bench.log" \
    "$((bench_cap > 1 ? bench_cap : 1))" \
    env BENCH_DEVICES=cuda BENCH_ROUNDS=1 BENCH_EPOCHS=3 BENCH_EXPERTS=8 BENCH_LARGE=$large \
    BENCH_TIMEOUT=240 BENCH_OUT="$CHECK_OUT/bench.md" PYTHON="$PYTHON" EUAR_BIN="$WRAP/euar" \
    bench/run.sh
[ -f "$CHECK_OUT/bench.md" ] && grep '^|' "$CHECK_OUT/bench.md" >&2

# 6. Last, as it is the slowest per test: the operation tests under compute-sanitizer's
# memory checker, in the time the bench left for it.
if [ -n "$SANITIZER" ]; then
    run_step "test_gpu operations under compute-sanitizer" "$CHECK_OUT/test_gpu_sanitizer.log" \
        150 env TEST_GPU_OPS=1 "$SANITIZER" --tool memcheck --error-exitcode 3 \
        "$WRAP/test_gpu_strict"
else
    skip_step "test_gpu under compute-sanitizer" \
        "no compute-sanitizer on PATH or in /usr/local/cuda/bin"
fi

if [ "$FAILED" = 0 ]; then
    say "finished in $(elapsed) s: all steps passed"
else
    say "finished in $(elapsed) s: some steps FAILED"
fi
exit "$FAILED"
