#!/usr/bin/env bash
# Install the MUSA SDK from an apt repository: the runtime line's packages at the exact versions
# musa_docker read from the repository's index on the host (musa_docker/musa/aptrepo.py), in ONE apt
# transaction. MooreThreads/vllm-musa's docker/musa.Dockerfile does the same because the vendor's
# source "now mixes 5.1.0/5.2.0 builds": per-package or unpinned installs could split the SDK
# across /usr/local/musa-5.1 and -5.2. The source file and the apt lists are removed afterwards,
# so the source does not stay in the image.
#
# Environment (build args):
#   MUSA_SDK           archives (nothing to do here) | apt | base (the base image has the SDK: keep it)
#   MUSA_RUNTIME       the line, X.Y; the packages install under /usr/local/musa-X.Y
#   MUSA_APT_SOURCE    one `deb [...] URL SUITE COMPONENT` line, checked by musa_docker
#   MUSA_APT_PACKAGES  `name=version ...`, checked by musa_docker
set -euo pipefail

log() { echo "install_musa_apt: $*"; }
die() { echo "error: install_musa_apt: $*" >&2; exit 1; }
# shellcheck source-path=SCRIPTDIR source=net_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_env.sh"  # --ca-cert, a credentialed index; drops an empty PIP_INDEX_URL

MUSA_HOME=/usr/local/musa
LIST=/etc/apt/sources.list.d/musa.list
LD_CONF=/etc/ld.so.conf.d/musa.conf

case "${MUSA_SDK:-archives}" in
    archives) log "the MUSA SDK comes from the vendor archives: nothing to install from apt"; exit 0 ;;
    base) log "keeping the MUSA SDK of the base image ($(command -v mcc || echo "${MUSA_HOME}/bin/mcc"))"; exit 0 ;;
    apt) ;;
    *) die "MUSA_SDK is '${MUSA_SDK}', expected archives, apt or base" ;;
esac
[[ "${MUSA_RUNTIME:-}" =~ ^[0-9]+\.[0-9]+$ ]] || die "MUSA_RUNTIME is '${MUSA_RUNTIME:-}', expected X.Y"
[ -n "${MUSA_APT_SOURCE:-}" ] || die "MUSA_APT_SOURCE is empty"
read -r -a specs <<<"${MUSA_APT_PACKAGES:-}"
[ "${#specs[@]}" -gt 0 ] || die "MUSA_APT_PACKAGES is empty"
for spec in "${specs[@]}"; do
    # never an option of apt-get: musa_docker checked them, and so does this
    [[ "${spec}" =~ ^[a-z0-9][a-z0-9+.-]+=[0-9][A-Za-z0-9.+~:-]*$ ]] || die "'${spec}' is not name=version"
done

trap 'rm -f "${LIST}"; rm -rf /var/lib/apt/lists/*' EXIT
apt_opts=()
if [ -s "${OFFLINE_DIR}/apt/Packages" ]; then
    # --offline: the bundle's flat repository alone (bind-mounted, see net_env.sh); no network
    printf 'deb [trusted=yes] file:%s/apt ./\n' "${OFFLINE_DIR}" >"${LIST}"
    apt_opts=(-o "Dir::Etc::SourceList=${LIST}" -o "Dir::Etc::SourceParts=-" -o "APT::Get::List-Cleanup=false")
    log "apt-get update (the bundle's repository at ${OFFLINE_DIR}/apt, offline)"
else
    printf '%s\n' "${MUSA_APT_SOURCE}" >"${LIST}"
    log "apt-get update (with the MUSA source)"
fi
apt-get ${apt_opts[@]+"${apt_opts[@]}"} update \
    || die "apt-get update failed; check that the MUSA apt source answers from the build's network"
log "apt-get install ${#specs[@]} packages in one transaction: ${specs[*]}"
DEBIAN_FRONTEND=noninteractive apt-get ${apt_opts[@]+"${apt_opts[@]}"} install -y --no-install-recommends "${specs[@]}" \
    || die "apt-get install of the MUSA ${MUSA_RUNTIME} packages failed; the apt output above names the package"
apt-get clean

prefix="/usr/local/musa-${MUSA_RUNTIME}"
[ -d "${prefix}" ] || die "the packages installed nothing under ${prefix}: is the source's line ${MUSA_RUNTIME}?"
if [ -L "${MUSA_HOME}" ] || [ ! -e "${MUSA_HOME}" ]; then
    ln -sfn "musa-${MUSA_RUNTIME}" "${MUSA_HOME}"
else
    die "${MUSA_HOME} is a directory, not the link to ${prefix}: the image has another MUSA install"
fi
if ! grep -qsE "^[[:space:]]*${MUSA_HOME}(-[^/]*)?/lib/?[[:space:]]*$" /etc/ld.so.conf /etc/ld.so.conf.d/*.conf; then
    log "register ${MUSA_HOME}/lib with the dynamic loader (${LD_CONF})"
    echo "${MUSA_HOME}/lib" >"${LD_CONF}"
fi
ldconfig
log "done: ${MUSA_HOME} -> $(readlink -f "${MUSA_HOME}")"
