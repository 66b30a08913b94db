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
#   - MUSA sources: an `mcc` ahead of the toolkit's that runs it under ccache, `.mu` sources
#     presented to ccache as CUDA (compile_cache_mcc).
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
    if real="$(command -v mcc)"; then compile_cache_mcc "${real}" "${links}"; fi
    COMPILE_CACHE_PATH="${PATH}" COMPILE_CACHE_LINKS="${links}"
    export PATH="${links}:${PATH}"
    ccache -z >/dev/null
    echo "compile cache: ccache in ${CCACHE_DIR}, max ${CCACHE_MAXSIZE}"
}

# The `mcc` ahead of the toolkit's. ccache caches only languages it knows, by extension or `-x`, and
# `.mu` is none of them: it would count a MUSA source as unsupported and just run mcc. So a compile
# (-c) of one `.mu` source is handed to ccache as CUDA, `-x cu` (a language it caches, in direct
# and preprocessed mode); ccache passes that `-x cu` on to its compiler, `mcc-ccache`, which drops
# it, so mcc sees exactly the arguments it was given and picks MUSA by the `.mu` extension. The
# source keeps its own path (its quoted includes, __FILE__ and debug info stay as they are).
# ccache identifies a compiler by its mtime and size, which for mcc-ccache (written anew each
# build) would change every build: the real mcc's sha256 is the identity (compiler_check=string:).
# Everything else (linking, --version, several sources, an explicit -x, .cu and .cpp sources)
# goes to `ccache <real mcc>` with its arguments as they are; ccache runs mcc unchanged for what
# it does not cache.
compile_cache_mcc() {
    local real="$1" links="$2" id
    id="$(sha256sum <"$(readlink -f "${real}")" | cut -d' ' -f1)"
    {
        printf '#!/bin/bash\n'
        printf 'real=%q\n' "${real}"
        printf 'check=%q\n' "string:mcc-${id}"
        printf 'shim=%q\n' "${links}/mcc-ccache"
        cat <<'WRAPPER'
compile=0 sources=0 mu=0
for arg in "$@"; do
    case "${arg}" in
        -x | -x?*) exec ccache "${real}" "$@" ;;
        -c) compile=1 ;;
        -*) ;;
        *.mu) mu=$((mu + 1)); sources=$((sources + 1)) ;;
        *.cu | *.c | *.cc | *.cp | *.cpp | *.cxx | *.c++ | *.C | *.S | *.s) sources=$((sources + 1)) ;;
    esac
done
if [ "${compile}" = 1 ] && [ "${sources}" = 1 ] && [ "${mu}" = 1 ]; then
    CCACHE_COMPILERCHECK="${check}" exec ccache "${shim}" -x cu "$@"
fi
exec ccache "${real}" "$@"
WRAPPER
    } >"${links}/mcc"
    {
        printf '#!/bin/bash\n'
        printf 'real=%q\n' "${real}"
        cat <<'SHIM'
# ccache's compiler for one `.mu` source: the `-x cu` that the mcc wrapper gave ccache, and ccache
# passed on, is dropped; everything else reaches mcc as it is
args=()
while [ $# -gt 0 ]; do
    if [ "$1" = -x ] && [ "${2:-}" = cu ]; then shift 2; continue; fi
    args+=("$1")
    shift
done
exec "${real}" "${args[@]}"
SHIM
    } >"${links}/mcc-ccache"
    chmod +x "${links}/mcc" "${links}/mcc-ccache"
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
    # the links leave no trace in the image, nor in PATH (nor bash's memory of where mcc was)
    rm -rf "${COMPILE_CACHE_LINKS:?}"
    export PATH="${COMPILE_CACHE_PATH}"
    hash -r
}
