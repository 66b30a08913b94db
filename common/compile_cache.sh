# shellcheck shell=bash
# The compile cache of the dev image's source builds, sourced by build_torch_musa.sh and
# build_torchvision.sh. With BuildKit (dockerfile.dev's BuildKit rendering) /root/.ccache is a
# cache mount kept between builds and COMPILE_CACHE is ccache's max size (e.g. 20G); with the
# classic builder, or COMPILE_CACHE=off (--no-compile-cache), nothing here does anything.
#
# Every compiler runs under ccache, however a build system finds it:
#   - CMake: CMAKE_C_COMPILER_LAUNCHER / CMAKE_CXX_COMPILER_LAUNCHER=ccache, with the real compilers
#     as CMAKE_C_COMPILER / CMAKE_CXX_COMPILER (PyTorch's setup passes CMAKE_* variables on), so
#     ccache runs once per compile and not again through the links below;
#   - everything else (setuptools, torch's cpp_extension, plain make): ccache's compiler links
#     (cc, c++, gcc, g++, clang, clang++) first on PATH;
#   - MUSA sources: an `mcc` ahead of the toolkit's that runs `ccache <the real mcc>`.
# The cache is one dir per Python and GPU arch list under the mount, each bounded by the max size,
# so builds for different targets do not evict each other. compile_cache_report prints the hits
# and misses of this build in one line that musa_docker reads from the log:
#   compile cache: hits=N misses=M

compile_cache_start() {
    case "${COMPILE_CACHE:-off}" in off | '') return 0 ;; esac
    if ! command -v ccache >/dev/null; then
        echo "compile cache: ccache is not installed in the image; compiling without it"
        COMPILE_CACHE=off
        return 0
    fi
    local py key links tool real
    py="$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    key="py${py}-$(printf '%s' "${TORCH_MUSA_ARCH_LIST:-all}" | tr -c 'A-Za-z0-9_.-' '_')"
    export CCACHE_DIR="/root/.ccache/${key}" CCACHE_MAXSIZE="${COMPILE_CACHE}"
    # the same sources at another path still hit: paths under /home are hashed relative
    export CCACHE_BASEDIR=/home CCACHE_NOHASHDIR=1
    export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
    for tool in cc:CMAKE_C_COMPILER c++:CMAKE_CXX_COMPILER; do
        if real="$(command -v "${tool%%:*}")"; then export "${tool##*:}=${real}"; fi
    done
    links="$(mktemp -d /tmp/compile_cache.XXXXXX)"
    for tool in cc c++ gcc g++ clang clang++; do
        if command -v "${tool}" >/dev/null; then ln -s "$(command -v ccache)" "${links}/${tool}"; fi
    done
    if real="$(command -v mcc)"; then
        printf '#!/bin/sh\nexec ccache %q "$@"\n' "${real}" >"${links}/mcc"
        chmod +x "${links}/mcc"
    fi
    export PATH="${links}:${PATH}"
    COMPILE_CACHE_LINKS="${links}"
    ccache -z >/dev/null
    echo "compile cache: ccache in ${CCACHE_DIR}, max ${CCACHE_MAXSIZE}"
}

compile_cache_report() {
    case "${COMPILE_CACHE:-off}" in off | '') return 0 ;; esac
    local stats hits misses
    # ccache 4 --print-stats: one `key<TAB>value` a line; the hits of either mode count
    stats="$(ccache --print-stats 2>/dev/null)" || stats=""
    if [ -n "${stats}" ]; then
        hits="$(awk -F'\t' '$1 == "direct_cache_hit" || $1 == "preprocessed_cache_hit" {n += $2} END {print n + 0}' <<<"${stats}")"
        misses="$(awk -F'\t' '$1 == "cache_miss" {n += $2} END {print n + 0}' <<<"${stats}")"
    else
        # ccache 3: `cache hit (direct)  N` lines
        stats="$(ccache -s)"
        hits="$(awk '/^cache hit \(/ {n += $NF} END {print n + 0}' <<<"${stats}")"
        misses="$(awk '/^cache miss/ {n += $NF} END {print n + 0}' <<<"${stats}")"
    fi
    echo "compile cache: hits=${hits} misses=${misses}"
    rm -rf "${COMPILE_CACHE_LINKS:?}"    # the links leave no trace in the image
}
