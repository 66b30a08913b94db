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
#   compile cache: hits=N remote_hits=R misses=M     (with a remote storage; R of the N hits came from it)
#
# A shared second level (--compile-cache-remote): the secret /run/secrets/musa_docker_compile_cache_remote
# holds ccache's remote_storage setting (a redis:// or http:// URL, maybe with credentials, maybe
# `|read-only=true`) on its first line, and on its second what the log may name (scheme://host:port). The local cache stays the first level; a miss there asks the remote, and what
# is compiled (and, unless read only, what the local cache already had: reshare) is written to both.
# One probe compile decides first: a ccache without remote storage (before 4.4, or without that kind),
# a URL it does not know (ccache 4.7 has no rediss:// nor https://), or a remote that does not answer
# costs a `compile cache: warning:` line and the build goes on with the local cache only. The URL is
# never printed: scheme, host and port at most.

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
    compile_cache_remote
}

COMPILE_CACHE_SECRET=/run/secrets/musa_docker_compile_cache_remote

# CCACHE_REMOTE_STORAGE from the secret, when this ccache can use it and the remote answers.
compile_cache_remote() {
    unset CCACHE_REMOTE_STORAGE CCACHE_RESHARE
    COMPILE_CACHE_REMOTE=""
    [ -s "${COMPILE_CACHE_SECRET}" ] || return 0
    local spec where probe stats failed
    # line 1: ccache's setting; line 2: scheme://host:port, what the log may name
    spec="$(sed -n 1p "${COMPILE_CACHE_SECRET}")"
    where="$(sed -n 2p "${COMPILE_CACHE_SECRET}")"
    if ! ccache --version | grep -q '^Features:.*-storage'; then
        echo "compile cache: warning: $(ccache --version | head -n 1) has no remote storage (ccache 4.4 and later have): ${where} not used; local cache only"
        return 0
    fi
    probe="$(mktemp -d /tmp/compile_cache_probe.XXXXXX)"
    printf 'int compile_cache_probe(void) { return %s; }\n' "$$" >"${probe}/probe.c"
    if ! (cd "${probe}" && CCACHE_DIR="${probe}/cache" CCACHE_REMOTE_STORAGE="${spec}" CCACHE_CONFIGPATH=/dev/null \
          ccache "${CMAKE_C_COMPILER:-cc}" -c probe.c -o probe.o) >"${probe}/out" 2>&1; then
        echo "compile cache: warning: this ccache cannot use the remote storage ${where} ($(head -c 200 "${probe}/out" | tr '\n' ' ' | sed 's|[a-z]*://[^ ]*|<url>|g')); local cache only"
        rm -rf "${probe}"
        return 0
    fi
    stats="$(CCACHE_DIR="${probe}/cache" ccache --print-stats 2>/dev/null)" || stats=""
    rm -rf "${probe}"
    failed="$(awk -F'\t' '$1 == "remote_storage_error" || $1 == "remote_storage_timeout" {n += $2} END {print n + 0}' <<<"${stats}")"
    if [ "${failed}" != 0 ]; then
        echo "compile cache: warning: the remote storage ${where} does not answer; local cache only"
        return 0
    fi
    export CCACHE_REMOTE_STORAGE="${spec}" CCACHE_RESHARE=true
    COMPILE_CACHE_REMOTE="${where}"
    case "${spec}" in *'|read-only=true'*) where="${where}, read only" ;; esac
    echo "compile cache: remote storage ${where}"
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
    local stats hits misses remote="" failed=0
    # ccache 4 --print-stats: one `key<TAB>value` a line; the hits of either mode count, wherever
    # they came from (remote_storage_hit: those the remote storage served)
    stats="$(ccache --print-stats 2>/dev/null)" || stats=""
    if [ -n "${stats}" ]; then
        hits="$(awk -F'\t' '$1 == "direct_cache_hit" || $1 == "preprocessed_cache_hit" {n += $2} END {print n + 0}' <<<"${stats}")"
        misses="$(awk -F'\t' '$1 == "cache_miss" {n += $2} END {print n + 0}' <<<"${stats}")"
        if [ -n "${COMPILE_CACHE_REMOTE:-}" ]; then
            remote=" remote_hits=$(awk -F'\t' '$1 == "remote_storage_hit" {n += $2} END {print n + 0}' <<<"${stats}")"
            failed="$(awk -F'\t' '$1 == "remote_storage_error" || $1 == "remote_storage_timeout" {n += $2} END {print n + 0}' <<<"${stats}")"
        fi
    else
        # ccache 3: `cache hit (direct)  N` lines
        stats="$(ccache -s)"
        hits="$(awk '/^cache hit \(/ {n += $NF} END {print n + 0}' <<<"${stats}")"
        misses="$(awk '/^cache miss/ {n += $NF} END {print n + 0}' <<<"${stats}")"
    fi
    if [ "${failed}" != 0 ]; then
        echo "compile cache: warning: the remote storage ${COMPILE_CACHE_REMOTE} failed ${failed} times (errors or timeouts); those compiles used the local cache only"
    fi
    echo "compile cache: hits=${hits}${remote} misses=${misses}"
    # the links leave no trace in the image, nor in PATH (nor bash's memory of where mcc was)
    rm -rf "${COMPILE_CACHE_LINKS:?}"
    export PATH="${COMPILE_CACHE_PATH}"
    hash -r
}
