#!/usr/bin/env bash
# End-to-end test of the bundle for a GPU machine without a package registry. gpu_bundle.sh
# rejects a binary without the CUDA backend. With a CUDA build the bundle carries no
# libstdc++, libgcc_s or C library, has the stb headers and link name, and passes
# gpu_bundle_check.sh (a rebuild with the system's development headers hidden). The same
# bundle without stb must fail that check and name the header and library. Needs bin/euar and
# $BUILD/tests/test_gpu (BUILD default build); the CUDA part is skipped when bin/euar was
# built without nvcc. Prints "N passed, M failed".
set -u
cd "$(dirname "$0")/.." || exit 1

# shellcheck source=tests/e2e_lib.sh
. tests/e2e_lib.sh
BUILD=${BUILD:-build}

# /bin/true is a binary without libcudart.
tests/gpu_bundle.sh "$work/stub-bundle" /bin/true >"$work/stub.log" 2>&1
check "bundle of a binary without CUDA exits 1" test $? -eq 1
check "bundle of a binary without CUDA says why" grep -q "without the CUDA backend" \
    "$work/stub.log"
check "bundle of a binary without CUDA writes nothing" test ! -e "$work/stub-bundle.tar.gz"

if ldd "$EUAR" | grep -q libcudart && [ -x "$BUILD"/tests/test_gpu ]; then
    bundle="$work/gpu-bundle"
    tests/gpu_bundle.sh "$bundle" "$EUAR" "$BUILD"/tests/test_gpu >"$work/bundle.log" 2>&1
    check "bundle of the CUDA build exits 0" test $? -eq 0
    check "bundle carries no libstdc++" test -z "$(ls "$bundle/lib" | grep 'libstdc++')"
    check "bundle carries no libgcc_s" test -z "$(ls "$bundle/lib" | grep 'libgcc_s')"
    check "bundle carries no C library" test ! -e "$bundle/lib/libc.so.6"
    check "bundle has the stb headers" test -f "$bundle/include/stb/stb_image.h"
    check "bundle has the libstb.so link name" test -e "$bundle/lib/libstb.so"
    tests/gpu_bundle_check.sh "$bundle" "$BUILD" >"$work/check.log" 2>&1
    check "a rebuild from the bundle finds everything" test $? -eq 0

    rm -rf "$bundle/include/stb" "$bundle/lib/libstb.so"
    tar -czf "$bundle.tar.gz" -C "$work" gpu-bundle
    tests/gpu_bundle_check.sh "$bundle" "$BUILD" >"$work/nostb.log" 2>&1
    check "a bundle without stb fails the check" test $? -eq 1
    check "the failed check names the missing header" grep -q "stb/stb_image.h" \
        "$work/nostb.log"
    check "the failed check names the missing library" grep -q -- "-lstb resolves to" \
        "$work/nostb.log"
else
    echo "skip  CUDA bundle checks: $EUAR was built without the CUDA backend"
fi

echo "e2e gpu bundle: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
