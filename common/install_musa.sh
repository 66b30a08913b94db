#!/usr/bin/env bash
# Install the MUSA toolkit, muDNN and (when staged) MCCL from the vendor archives, with the
# vendors' own installer scripts, into /usr/local/musa.
#
# Usage: install_musa.sh [DIR]   (default: $MUSA_ARTIFACTS_DIR, else /tmp/musa_artifacts)
#
# DIR holds, as musa_docker stages them:
#   musa_toolkits.tar.gz  holding musa_toolkits_install/install.sh   (required)
#   mudnn.tar             holding mudnn/install_mudnn.sh             (required)
#   mccl.tar.gz           holding an install.sh somewhere inside     (optional)
# Each archive is unpacked in a temp dir and its installer runs from its own directory (the
# vendors' scripts copy with relative paths), with no stdin so a prompt cannot hang the build.
# The toolkit goes first: muDNN and MCCL install into the tree it creates. DIR and the temp
# dirs are removed afterwards. The loader learns /usr/local/musa/lib through
# /etc/ld.so.conf.d/musa.conf when no installer registered it.
set -euo pipefail

log() { echo "install_musa: $*"; }
die() { echo "error: install_musa: $*" >&2; exit 1; }

MUSA_HOME=/usr/local/musa
LD_CONF=/etc/ld.so.conf.d/musa.conf

dir="${1:-${MUSA_ARTIFACTS_DIR:-/tmp/musa_artifacts}}"
if [ "${MUSA_SDK:-archives}" != archives ]; then
    # the SDK comes from an apt repository or the base image (install_musa_apt.sh)
    log "MUSA_SDK=${MUSA_SDK}: no archives to install"
    mkdir -p /etc/ld.so.conf.d
    rm -rf "${dir}"
    exit 0
fi
[ -d "${dir}" ] || die "no artifacts directory ${dir}"
work="$(mktemp -d /tmp/install_musa.XXXXXX)"
trap 'rm -rf "${work}"' EXIT

# unpack NAME ARCHIVE: extract into ${work}/NAME; tar detects the compression itself, so a .tar
# that is really gzipped (or the reverse) still unpacks.
unpack() {
    local name="$1" archive="$2" out
    [ -f "${archive}" ] || die "${name}: ${archive} is missing from the build context (artifacts/${archive##*/})"
    log "${name}: unpack ${archive##*/} ($(du -h "${archive}" | cut -f1))"
    mkdir -p "${work}/${name}"
    if ! out="$(tar -xf "${archive}" -C "${work}/${name}" --no-same-owner 2>&1)"; then
        out="$(grep -v '^[[:space:]]*$' <<<"${out}" | paste -sd ';' - | sed 's/;/; /g')"
        die "${name}: ${archive##*/} is not a readable tar archive (corrupt or truncated download?): ${out}"
    fi
}

# installer NAME PATTERN: the one shallowest file under ${work}/NAME whose path matches PATTERN.
installer() {
    local name="$1" pattern="$2" found depth
    found="$(cd "${work}/${name}" && find . -type f -path "${pattern}" | awk -F/ '{ print NF "\t" $0 }' | sort -n)"
    if [ -z "${found}" ]; then
        die "${name}: the archive holds no ${pattern#\*/}; it has: $(cd "${work}/${name}" && find . -maxdepth 2 | sed 's#^\./##' | grep -v '^\.$' | head -n 8 | tr '\n' ' ')"
    fi
    depth="$(head -n 1 <<<"${found}" | cut -f1)"
    if [ "$(awk -F'\t' -v d="${depth}" '$1 == d' <<<"${found}" | wc -l)" -gt 1 ]; then
        die "${name}: the archive holds several installers, cannot tell which to run: $(cut -f2 <<<"${found}" | sed 's#^\./##' | tr '\n' ' ')"
    fi
    echo "${work}/${name}/$(head -n 1 <<<"${found}" | cut -f2 | sed 's#^\./##')"
}

# run NAME SCRIPT: run the vendor's installer from its own directory.
run() {
    local name="$1" script="$2" status=0
    log "${name}: run ${script#"${work}/${name}/"}"
    (cd "$(dirname "${script}")" && bash "./$(basename "${script}")" </dev/null) || status=$?
    [ "${status}" -eq 0 ] || die "${name}: ${script#"${work}/${name}/"} failed with exit code ${status}; its output is above"
    rm -rf "${work:?}/${name}"
}

# A plain assignment, so that set -e stops the script when `installer` dies.
unpack musa_toolkits "${dir}/musa_toolkits.tar.gz"
script="$(installer musa_toolkits '*/musa_toolkits_install/install.sh')"
run musa_toolkits "${script}"
[ -d "${MUSA_HOME}/lib" ] || die "the MUSA toolkit installer finished but ${MUSA_HOME}/lib does not exist"

unpack mudnn "${dir}/mudnn.tar"
script="$(installer mudnn '*/mudnn/install_mudnn.sh')"
run mudnn "${script}"

if [ -e "${dir}/mccl.tar.gz" ]; then
    unpack mccl "${dir}/mccl.tar.gz"
    script="$(installer mccl '*/install.sh')"
    run mccl "${script}"
else
    log "mccl: not staged, skipped"
fi

if ! grep -qsE "^[[:space:]]*${MUSA_HOME}(-[^/]*)?/lib/?[[:space:]]*$" /etc/ld.so.conf /etc/ld.so.conf.d/*.conf; then
    log "register ${MUSA_HOME}/lib with the dynamic loader (${LD_CONF})"
    echo "${MUSA_HOME}/lib" >"${LD_CONF}"
fi
ldconfig

rm -rf "${dir}"
log "done: ${MUSA_HOME} -> $(readlink -f "${MUSA_HOME}"); libraries: $(find "${MUSA_HOME}/lib/" -mindepth 1 -maxdepth 1 -name 'lib*' -printf '%f ' | head -c 400)"
