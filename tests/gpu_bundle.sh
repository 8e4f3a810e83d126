#!/bin/bash
# Fills a folder with what bin/euar and the GPU test need on a machine that has a CUDA driver
# and toolkit but no package registry (no HDF5, cJSON, OpenBLAS, stb or cmocka): the shared
# libraries that ldd lists, apart from the C library, the compiler's runtime (libstdc++,
# libgcc_s: the target's own must serve its PyTorch too) and the CUDA libraries; their link
# names; and every header the build includes that the C library and compilers do not provide
# (gcc -M and nvcc -M list them). tests/gpu_check.sh there runs the binaries with
# LD_LIBRARY_PATH=DIR/lib, or rebuilds them against DIR/include and DIR/lib with the machine's
# own nvcc; tests/gpu_bundle_check.sh checks here that such a rebuild finds everything.
#
# Rejects binaries built without the CUDA backend (no libcudart in ldd's list).
#
# Also writes DIR.tar.gz (about a third of the size), which gpu_check.sh unpacks when DIR is
# missing: the folder itself is too large to carry to the GPU machine with the binaries.
#
# usage: tests/gpu_bundle.sh DIR BINARY...    (make gpu-bundle runs it)
set -euo pipefail

die() {
    echo "gpu-bundle: error: $*" >&2
    exit 1
}

[ $# -ge 2 ] || die "usage: tests/gpu_bundle.sh DIR BINARY..."
out=$1
shift
for bin in "$@"; do
    [ -x "$bin" ] || die "$bin not found; build it first (make bin/euar build/tests/test_gpu)"
    # The list is read in full first: grep -q would stop early, and with pipefail the
    # SIGPIPE of ldd would read as a failed match.
    libs=$(ldd "$bin")
    grep -q 'libcudart' <<<"$libs" ||
        die "$bin was built without the CUDA backend (no libcudart in 'ldd $bin');" \
            "rebuild with nvcc on PATH or at /usr/local/cuda/bin/nvcc and without GPU=0"
done
. "$(dirname "$0")/gpu_headers.sh"

rm -rf "$out"
mkdir -p "$out/lib" "$out/include"

# The C library, the loader and the compiler runtime come from the target's system; the CUDA
# libraries from its toolkit, whose version may differ (gpu_check.sh then rebuilds).
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libresolv'
skip+='|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcurand|libnvidia)'
ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
    while read -r name path; do
        if echo "$name" | grep -Eq "$skip"; then
            continue
        fi
        cp -L "$path" "$out/lib/$name"
    done

# Link names (-lstb and so on) for a rebuild, pointing at the copied sonames; HDF5's serial
# build is linked as -lhdf5.
for lib in "$out"/lib/*.so.*; do
    soname=$(basename "$lib")
    ln -sf "$soname" "$out/lib/${soname%%.so.*}.so"
done
[ -e "$out/lib/libhdf5_serial.so" ] && ln -sf libhdf5_serial.so "$out/lib/libhdf5.so"

# Headers: whole folders of the libraries whose headers include one another conditionally,
# then every other header the build includes that the target's C library and compilers lack.
cp -r /usr/include/hdf5/serial/. "$out/include/"
cp -r /usr/include/cjson /usr/include/Random123 /usr/include/stb "$out/include/"
libc_list=$(mktemp)
trap 'rm -f "$libc_list"' EXIT
libc_headers "$libc_list"
build_headers -I/usr/include/hdf5/serial | while read -r header; do
    case $header in
    "$PWD"/*) continue ;;
    esac
    system_header "$header" "$libc_list" && continue
    rel=$(include_relative "$header")
    mkdir -p "$out/include/$(dirname "$rel")"
    cp -L "$header" "$out/include/$rel"
done

{
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "glibc $(ldd --version | head -n 1 | awk '{print $NF}') (the target needs this or newer)"
    echo "binaries: $*"
} >"$out/BUNDLE"
tar -czf "$out.tar.gz.tmp" -C "$(dirname "$out")" "$(basename "$out")"
mv "$out.tar.gz.tmp" "$out.tar.gz"
echo "gpu-bundle: $(du -sh "$out" | cut -f1) in $out ($(ls "$out/lib" | wc -l) libraries)," \
    "$(find "$out/include" -type f | wc -l) headers, $(du -sh "$out.tar.gz" | cut -f1)" \
    "in $out.tar.gz"
