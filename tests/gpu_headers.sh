# Shell functions (sourced) shared by tests/gpu_bundle.sh and tests/gpu_bundle_check.sh: the
# headers the build includes and which of them a GPU machine's own C library and compilers
# provide, so that the bundle carries the rest.

# Prints the C sources of the build (library, command line, tests).
c_sources() {
    ls core/*.c core/models/*.c noise/*.c datasets/*.c suites/*.c report/*.c cli/*.c \
        tests/test_*.c
}

# Prints, one a line and once each, the absolute paths of the headers that the C sources and
# (when nvcc is found) the CUDA sources of the build include. Arguments: extra compiler flags,
# the include paths first.
build_headers() {
    local c_src nvcc
    c_src=$(c_sources)
    # shellcheck disable=SC2086
    {
        gcc -M -std=c11 -D_POSIX_C_SOURCE=200809L "$@" -I. $c_src || return 1
        nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
        if [ -n "$nvcc" ]; then
            for cu in core/*.cu; do
                "$nvcc" -M -std=c++17 "$@" -I. "$cu" || return 1
            done
        fi
    } | tr ' \\' '\n\n' | grep '^/' | xargs -r realpath -s | sort -u
}

# Writes to the file $1 the headers of the C library and the kernel (libc6-dev,
# linux-libc-dev), which every machine that can compile has.
libc_headers() {
    dpkg -L libc6-dev linux-libc-dev | grep '^/usr/include/' | xargs -r realpath -s |
        sort -u >"$1"
}

# True when header $1 comes with the compilers or the C library (list in file $2): GCC's own
# headers, libstdc++, the CUDA toolkit.
system_header() {
    case $1 in
    /usr/lib/gcc/* | /usr/include/c++/* | /usr/include/*/c++/* | /usr/local/cuda* | /opt/cuda* | \
        */cuda/include/*)
        return 0
        ;;
    esac
    grep -qxF "$1" "$2"
}

# Prints header $1's path relative to the include directory it is found under.
include_relative() {
    local root
    for root in /usr/include/hdf5/serial /usr/include/x86_64-linux-gnu /usr/include; do
        case $1 in
        "$root"/*)
            echo "${1#"$root"/}"
            return 0
            ;;
        esac
    done
    basename "$1"
}
