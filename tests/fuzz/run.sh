#!/usr/bin/env bash
# Runs each libFuzzer target of build-fuzz/ for SECONDS (first argument, default 60) from its
# seeds: the suite files of suites/ and tests/bad/suites/, the noise specs of
# tests/fuzz/noise_seeds.txt, and the HDF5 files that tests/bad/make_h5.py writes. The corpus
# grows in build-fuzz/corpus/TARGET across runs; a crash, leak, timeout or sanitizer report
# stops its target and leaves the input in build-fuzz/crashes/. Prints one line per target
# with its executions, and exits non-zero when any target found a problem.
set -u
cd "$(dirname "$0")/../.." || exit 1
seconds=${1:-60}
build=build-fuzz
rm -rf "$build/crashes"
mkdir -p "$build/seeds/suite" "$build/seeds/noise" "$build/crashes"
cp suites/*.json tests/bad/suites/*.json "$build/seeds/suite/"
i=0
while IFS= read -r spec; do
    i=$((i + 1))
    printf '%s' "$spec" >"$build/seeds/noise/spec$i"
done <tests/fuzz/noise_seeds.txt
/usr/bin/python3 tests/bad/make_h5.py "$build/seeds/h5" || exit 1
rm -f "$build"/seeds/h5/ckpt-*.h5

# malloc returns NULL for a request beyond the sanitizer's limit, as it does in a plain build:
# libhdf5 asks for sizes read from damaged metadata and handles NULL as an error.
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1:detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp}
# An input on which libhdf5 loops costs 2 s per read, not the default 20.
export EUAR_H5_PROBE_SECONDS=2
failed=0
for target in suite noise h5; do
    corpus=$build/corpus/$target
    mkdir -p "$corpus"
    log=$build/fuzz_$target.log
    # Inputs up to 64 KiB: the HDF5 seeds are about 10 KiB, suite files under 8 KiB.
    "$build/fuzz_$target" "$corpus" "$build/seeds/$target" -max_total_time="$seconds" \
        -max_len=65536 -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/crashes/$target-" >"$log" 2>&1
    status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    units=$(find "$corpus" -type f | wc -l)
    # The probe child of the HDF5 reader inherits libFuzzer's handlers, so an input that crashes
    # or exhausts memory in libhdf5 inside the child leaves a file here although the reader
    # reported it as damaged and the target went on.
    caught=$(find "$build/crashes" -name "$target-*" | wc -l)
    if [ "$status" -eq 0 ]; then
        echo "fuzz $target: ok, ${runs:-?} executions in $seconds s, corpus $units inputs" \
            "($caught inputs crashed or exhausted libhdf5 in a probe child)"
    else
        failed=$((failed + 1))
        echo "fuzz $target: FAILED (exit $status) after ${runs:-?} executions; see $log"
        grep -m 3 -E 'ERROR|SUMMARY|Test unit written' "$log" | sed 's/^/    /'
    fi
done
[ "$failed" -eq 0 ]
