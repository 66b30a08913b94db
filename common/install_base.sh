#!/usr/bin/env bash
# Install the OS packages of an image.
#
# Usage: install_base.sh [build|runtime|release]   (default: build)
#   build    the base image's: compilers and build tools, debuggers, the libraries PyTorch and
#            torch_musa link against, and the distribution's python3 (used by PYTHON_ENV=venv).
#   runtime  the release image's: no compilers; the shared libraries the MUSA stack and the
#            wheels load, a few tools, and python3 with venv (PYTHON_ENV=venv uses them; with
#            conda they cost ~30 MB but keep this layer the same for both envs).
#   release  the release image's own: the runtime set without python3-venv, which only makes a
#            venv (the env is made in a stage of its own and copied in) and brings the pip and
#            setuptools wheels of ensurepip, archives the lean-release rules forbid.
#
# Environment:
#   APT_MIRROR  '' keeps the image's own apt sources; else a mirror base URL such as
#               http://mirror.example/ubuntu that replaces the archive host in every apt source
#               (classic sources.list and deb822 *.sources). Debian's security archive
#               (.../debian-security) maps to "${APT_MIRROR}-security", as mirrors lay it out.
#   APT_CACHE_MOUNTED  1 = /var/cache/apt and /var/lib/apt/lists are BuildKit cache mounts: apt
#               keeps its downloads there (the image's docker-clean hook is set aside for this
#               step only) and they are not cleaned, since they are in no layer.
#   OS_APT_PACKAGES  under --lock: `name=version ...`, the whole transaction the lock records for
#               this set; installed instead of the set's names, so every package is the locked one.
#   OS_APT_RESOLVE   1 = install nothing: print each package of the transaction (`@@uri URL`, then
#               its stanza from apt-cache), for `musa-docker lock`, which runs this in a container.
# Under --offline (BuildKit) the imported bundle's flat apt repository is bind-mounted at
# ${OFFLINE_DIR}/apt: apt then reads it alone (no mirror, no network) and installs the locked set.
set -euo pipefail

log() { echo "install_base: $*"; }
die() { echo "error: install_base: $*" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=net_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_env.sh"  # --ca-cert, a credentialed index; drops an empty PIP_INDEX_URL

SUPPORTED="ubuntu 20.04, ubuntu 22.04, debian 12"
OFFLINE_DIR=/tmp/musa-docker-offline

# The same names exist in every supported release; clang, llvm, libclang-dev and libomp-dev
# are the release's default LLVM (10 on ubuntu 20.04, 14 on ubuntu 22.04 and debian 12).
PACKAGES=(
    build-essential gcc g++ make cmake ninja-build ccache pkg-config
    autoconf automake libtool patch gawk bison expect
    clang llvm libclang-dev libomp-dev gdb
    git curl wget ca-certificates openssh-client sudo vim less unzip zip bzip2 xz-utils file procps
    libnuma-dev libelf-dev libgoogle-glog-dev libgflags-dev libncurses-dev
    libjpeg-dev libpng-dev zlib1g-dev libssl-dev
    python3 python3-dev python3-venv
)

# Each entry is one package; "a|b" takes the first name the release has (library packages are
# renamed with their soname: libgoogle-glog0v5 on ubuntu 20.04 and 22.04, 0v6 on debian 12).
RUNTIME_PACKAGES=(
    ca-certificates curl procps less sudo xz-utils bzip2
    libnuma1 libelf1 libgomp1 zlib1g libgflags2.2 "libgoogle-glog0v6|libgoogle-glog0v5"
    python3 python3-venv
)

set_name="${1:-build}"
case "${set_name}" in
    build | runtime | release) ;;
    *) die "unknown package set '${set_name}'; use build, runtime or release" ;;
esac

[ -r /etc/os-release ] || die "/etc/os-release is missing, cannot tell the OS; supported: ${SUPPORTED}"
# shellcheck source=/dev/null
. /etc/os-release
os="${ID:-unknown} ${VERSION_ID:-unknown}"
case "${os}" in
    "ubuntu 20.04" | "ubuntu 22.04" | "debian 12") ;;
    *) die "unsupported OS '${os}' (from /etc/os-release); supported: ${SUPPORTED}" ;;
esac
log "OS is ${os}"

rewrite_apt_sources() {
    local mirror="${APT_MIRROR%/}" files=() file escaped
    case "${mirror}" in
        http://*) ;;
        https://*)
            # Ubuntu and Debian images ship without CA certificates, so apt cannot check the
            # mirror's TLS certificate before ca-certificates is installed from it.
            [ -s /etc/ssl/certs/ca-certificates.crt ] \
                || die "APT_MIRROR ${mirror} is https, but this image has no CA certificates yet; use an http:// mirror"
            ;;
        *) die "APT_MIRROR must be an http:// or https:// URL, got '${APT_MIRROR}'" ;;
    esac
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "${file}" ] && grep -Eq '[a-z]+://[^ ]*/(ubuntu|debian)(-security)?/?([[:space:]]|$)' "${file}" \
            && files+=("${file}")
    done
    [ "${#files[@]}" -gt 0 ] \
        || die "APT_MIRROR is set but no apt source of this image names an ubuntu or debian archive to replace"
    escaped="$(printf '%s' "${mirror}" | sed -e 's/[\\&#]/\\&/g')"
    for file in "${files[@]}"; do
        log "apt sources: ${file} -> ${mirror}"
        sed -Ei "s#[a-z]+://[^ ]*/(ubuntu|debian)(-security)?/?([[:space:]]|\$)#${escaped}\\2\\3#g" "${file}"
    done
}

apt_opts=()
if [ -s "${OFFLINE_DIR}/apt/Packages" ]; then
    # the bundle's repo alone: the image's own sources name servers a build with no network cannot reach
    printf 'deb [trusted=yes] file:%s/apt ./\n' "${OFFLINE_DIR}" >/tmp/musa-docker-offline.list
    apt_opts=(-o "Dir::Etc::SourceList=/tmp/musa-docker-offline.list" -o "Dir::Etc::SourceParts=-"
              -o "APT::Get::List-Cleanup=false")
    [ -n "${OS_APT_PACKAGES:-}" ] || die "offline: the bundle's apt repository is mounted but OS_APT_PACKAGES is empty"
    log "apt sources: the bundle's repository at ${OFFLINE_DIR}/apt (offline)"
elif [ -n "${APT_MIRROR:-}" ]; then
    rewrite_apt_sources
else
    log "apt sources: kept as the image has them"
fi

if [ -n "${APT_CACHE_MOUNTED:-}" ] && [ -e /etc/apt/apt.conf.d/docker-clean ]; then
    # docker-clean deletes every downloaded .deb after each install: the cache would keep nothing
    mv /etc/apt/apt.conf.d/docker-clean /etc/apt/docker-clean.set-aside
    trap 'mv /etc/apt/docker-clean.set-aside /etc/apt/apt.conf.d/docker-clean' EXIT
fi
log "apt-get update"
apt-get ${apt_opts[@]+"${apt_opts[@]}"} update \
    || die "apt-get update failed; check the network or APT_MIRROR ('${APT_MIRROR:-}')"
# pick "a|b": the first alternative apt knows, after apt-get update.
pick() {
    local alternative
    for alternative in ${1//|/ }; do
        if apt-cache show "${alternative}" >/dev/null 2>&1; then
            echo "${alternative}"
            return 0
        fi
    done
    die "none of the packages ${1//|/, } exists on ${os}"
}

shown="${set_name}"
if [ -n "${OS_APT_PACKAGES:-}" ]; then
    read -r -a PACKAGES <<<"${OS_APT_PACKAGES}"
    for spec in "${PACKAGES[@]}"; do
        # never an option of apt-get: musa_docker checked them, and so does this
        [[ "${spec}" =~ ^[a-z0-9][a-z0-9+.-]+=[0-9][A-Za-z0-9.+~:-]*$ ]] || die "'${spec}' is not name=version"
    done
    shown="${set_name} (locked)"
elif [ "${set_name}" != build ]; then
    PACKAGES=()
    for entry in "${RUNTIME_PACKAGES[@]}"; do
        [ "${set_name}" = release ] && [ "${entry}" = python3-venv ] && continue
        PACKAGES+=("$(pick "${entry}")") || exit 1
    done
fi
if [ -n "${OS_APT_RESOLVE:-}" ]; then
    # apt prints no hash with --print-uris: the stanzas of the packages (SHA256 among their fields)
    # follow the URIs, in one apt-cache call
    apt-get install -y --no-install-recommends --print-uris -qq "${PACKAGES[@]}" </dev/null >/tmp/uris \
        || die "apt-get cannot resolve the ${shown} packages on ${os}; the apt output above names the package"
    specs=()
    while read -r uri file _; do
        base="${file%.deb}"
        version="${base#*_}"
        version="${version%_*}"
        echo "@@uri ${uri//\'/}"
        specs+=("${base%%_*}=${version//%3a/:}")
    done </tmp/uris
    echo "@@stanzas"
    [ "${#specs[@]}" -eq 0 ] || apt-cache show --no-all-versions "${specs[@]}" || die "apt-cache show failed"
    exit 0
fi
if [ "${set_name}" = release ]; then
    # a package's C headers (sudo's sudo_plugin.h) are for building with it: dpkg leaves them out
    log "dpkg leaves /usr/include and /usr/local/include out (/etc/dpkg/dpkg.cfg.d/musa-docker-lean)"
    printf '%s\n' "# The release image is lean: no headers (musa_docker)" \
        "path-exclude=/usr/include/*" "path-exclude=/usr/local/include/*" >/etc/dpkg/dpkg.cfg.d/musa-docker-lean
fi
log "apt-get install ${#PACKAGES[@]} ${shown} packages: ${PACKAGES[*]}"
apt-get ${apt_opts[@]+"${apt_opts[@]}"} install -y --no-install-recommends "${PACKAGES[@]}" \
    || die "apt-get install failed on ${os}; the apt output above names the package"

if [ -z "${APT_CACHE_MOUNTED:-}" ]; then
    apt-get clean
    rm -rf /var/lib/apt/lists/*
fi
rm -rf /var/tmp/*
# /tmp, but not the bundle's read-only mount (--offline) there
find /tmp -mindepth 1 -maxdepth 1 ! -path "${OFFLINE_DIR}" -exec rm -rf {} +
log "done"
