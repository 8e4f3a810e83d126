#!/bin/bash
# Fills a folder with what bin/euar and the GPU test need on a machine that has a CUDA driver
# and toolkit but no package registry (no HDF5, cJSON, OpenBLAS or cmocka): the shared
# libraries that ldd lists, apart from glibc and the CUDA libraries, and the headers, so that
# tests/gpu_check.sh there can run the binaries with LD_LIBRARY_PATH=DIR/lib or rebuild them
# against DIR/include and DIR/lib with the machine's own nvcc.
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
done

rm -rf "$out"
mkdir -p "$out/lib" "$out/include"

# glibc and the loader come from the target's system; the CUDA libraries from its toolkit,
# whose version may differ (gpu_check.sh then rebuilds against it).
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread|libdl\.so|librt\.so|libresolv'
skip+='|libcuda|libcudart|libcublas|libcurand|libnvidia)'
ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | sort -u |
    while read -r name path; do
        if echo "$name" | grep -Eq "$skip"; then
            continue
        fi
        cp -L "$path" "$out/lib/$name"
    done

# Link names (-lhdf5 and so on) for a rebuild, pointing at the copied sonames.
link() {
    local soname=$1 name=$2
    [ -e "$out/lib/$soname" ] && ln -sf "$soname" "$out/lib/$name"
    return 0
}
link libhdf5_serial.so.103 libhdf5.so
link libcjson.so.1 libcjson.so
link libopenblas.so.0 libopenblas.so
link libz.so.1 libz.so
link libcmocka.so.0 libcmocka.so

# Headers of the dependencies, for the rebuild.
cp -r /usr/include/hdf5/serial/. "$out/include/"
cp -r /usr/include/cjson /usr/include/Random123 "$out/include/"
cp -L /usr/include/x86_64-linux-gnu/cblas.h /usr/include/x86_64-linux-gnu/openblas_config.h \
    /usr/include/zlib.h /usr/include/zconf.h /usr/include/cmocka.h "$out/include/"
for h in cblas_mangling.h; do
    src=/usr/include/x86_64-linux-gnu/$h
    if [ -e "$src" ]; then
        cp -L "$src" "$out/include/"
    fi
done

{
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "glibc $(ldd --version | head -n 1 | awk '{print $NF}') (the target needs this or newer)"
    echo "binaries: $*"
} >"$out/BUNDLE"
tar -czf "$out.tar.gz.tmp" -C "$(dirname "$out")" "$(basename "$out")"
mv "$out.tar.gz.tmp" "$out.tar.gz"
echo "gpu-bundle: $(du -sh "$out" | cut -f1) in $out ($(ls "$out/lib" | wc -l) libraries)," \
    "$(du -sh "$out.tar.gz" | cut -f1) in $out.tar.gz"
