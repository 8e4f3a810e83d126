#!/bin/bash
# Checks here that a GPU machine without the development packages could rebuild bin/euar and
# the tests from the bundle (tests/gpu_bundle.sh): the bundle is unpacked from DIR.tar.gz
# into a scratch folder, and
#   1. every C source is preprocessed with -nostdinc against GCC's own headers, a copy of the
#      C library's headers (libc6-dev, linux-libc-dev) and the bundle's, so a header the
#      bundle lacks is an error although this machine has it in /usr/include;
#   2. the headers the CUDA sources include (nvcc -M, bundle first) all lie in the bundle,
#      the repository, the CUDA toolkit, the compilers or the C library;
#   3. bin/euar and a test binary are linked from the built objects with the bundle's lib
#      first, and every -l of the build other than the C, C++ and CUDA libraries must resolve
#      to a file in the bundle (ld --trace).
# usage: tests/gpu_bundle_check.sh DIR [BUILD]    (BUILD: the build folder whose objects are
# linked, default DIR's parent; make gpu-bundle-check runs it after make gpu-bundle)
set -euo pipefail

die() {
    echo "gpu-bundle-check: error: $*" >&2
    exit 1
}

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: tests/gpu_bundle_check.sh DIR [BUILD]"
[ -f "$1.tar.gz" ] || die "$1.tar.gz not found; run 'make gpu-bundle' first"
cd "$(dirname "$0")/.."
. tests/gpu_headers.sh
BUILD_DIR=${2:-$(dirname "$1")}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
tar -xzf "$1.tar.gz" -C "$scratch"
bundle="$scratch/$(basename "$1")"
[ -d "$bundle/include" ] && [ -d "$bundle/lib" ] || die "$1.tar.gz holds no include/ and lib/"
failed=0

# 1. C sources against the bundle, GCC and a copy of the C library's headers only.
libc_list="$scratch/libc-headers"
libc_headers "$libc_list"
sysinc="$scratch/sysroot"
while read -r header; do
    [ -f "$header" ] || continue
    mkdir -p "$sysinc$(dirname "$header")"
    cp -L "$header" "$sysinc$header"
done <"$libc_list"
# shellcheck disable=SC2046
if gcc -M -nostdinc -std=c11 -D_POSIX_C_SOURCE=200809L -isystem "$(gcc -print-file-name=include)" \
    -isystem "$sysinc/usr/include/x86_64-linux-gnu" -isystem "$sysinc/usr/include" -I. \
    -I"$bundle/include" $(c_sources) >"$scratch/c.deps" 2>"$scratch/c.err"; then
    echo "gpu-bundle-check: ok: C sources find every header in the bundle or the C library"
else
    grep -m 10 'fatal error' "$scratch/c.err" >&2
    echo "gpu-bundle-check: FAIL: headers missing from the bundle (above)" >&2
    failed=1
fi

# 2. CUDA sources: nvcc also searches /usr/include, so check where each header came from.
nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
if [ -n "$nvcc" ]; then
    missing=0
    for cu in core/*.cu; do
        "$nvcc" -M -std=c++17 -I. -I"$bundle/include" "$cu"
    done | tr ' \\' '\n\n' | grep '^/' | xargs -r realpath -s | sort -u >"$scratch/cu.deps"
    while read -r header; do
        case $header in
        "$PWD"/* | "$bundle"/*) continue ;;
        esac
        system_header "$header" "$libc_list" && continue
        echo "gpu-bundle-check: CUDA sources include $header, which the bundle lacks" >&2
        missing=1
    done <"$scratch/cu.deps"
    if [ "$missing" = 0 ]; then
        echo "gpu-bundle-check: ok: CUDA sources find every header in the bundle or the toolkit"
    else
        failed=1
    fi
else
    echo "gpu-bundle-check: skipped: CUDA headers (no nvcc here)"
fi

# 3. Links with the bundle's libraries. The Makefile's $(info) lines come first, the link
# flags last.
ldlibs=$(printf 'print-ldlibs:\n\t@echo $(EUAR_LDLIBS)\n' |
    make --no-print-directory -s -f Makefile -f - print-ldlibs BUILD="$BUILD_DIR" 2>/dev/null |
    tail -n 1)
objs=$(ls "$BUILD_DIR"/cli/*.o)
link_check() {
    local name=$1
    shift
    if ! gcc -o "$scratch/$name" "$@" -L"$bundle/lib" -Wl,-rpath-link,"$bundle/lib" $ldlibs \
        -Wl,--trace >"$scratch/$name.trace" 2>&1; then
        tail -n 5 "$scratch/$name.trace" >&2
        echo "gpu-bundle-check: FAIL: $name does not link against the bundle" >&2
        failed=1
        return
    fi
    local lib found bad=0
    for lib in $(echo "$ldlibs" | tr ' ' '\n' | sed -n 's/^-l//p'); do
        case $lib in
        m | stdc++ | cudart | cublas | curand) continue ;;
        esac
        # --trace prints each input file's path, libraries included.
        found=$(grep -m 1 -E "/lib$lib\.(so|a)\$" "$scratch/$name.trace" || true)
        case $found in
        "$bundle"/lib/*) ;;
        *)
            echo "gpu-bundle-check: $name: -l$lib resolves to '$found', not the bundle" >&2
            bad=1
            ;;
        esac
    done
    if [ "$bad" = 0 ]; then
        echo "gpu-bundle-check: ok: $name links with the bundle's libraries"
    else
        failed=1
    fi
}
# shellcheck disable=SC2086
link_check euar $objs "$BUILD_DIR/libeuar.a"
ldlibs="$ldlibs -lcmocka"
gcc -c -std=c11 -D_POSIX_C_SOURCE=200809L -I. -I"$bundle/include" tests/test_gpu.c \
    -o "$scratch/test_gpu.o"
link_check test_gpu "$scratch/test_gpu.o" "$BUILD_DIR/libeuar.a"

[ "$failed" = 0 ] || die "the bundle in $1.tar.gz cannot rebuild bin/euar (above)"
echo "gpu-bundle-check: the bundle has what a rebuild needs"
