#!/usr/bin/env bash
# Install one vendor component into /usr/local/musa with the vendor's own installer script: the
# MUSA toolkit, muDNN or MCCL. The Dockerfiles run it once per component, toolkit first (muDNN
# and MCCL install into the tree it creates), each in a step of its own so the layer cache keeps
# the others when one archive changes.
#
# Usage: install_musa.sh COMPONENT ARCHIVE
#
#   musa_toolkits  ARCHIVE holds musa_toolkits_install/install.sh   (required)
#   mudnn          ARCHIVE holds mudnn/install_mudnn.sh             (required)
#   mccl           ARCHIVE holds an install.sh somewhere inside     (optional: a missing ARCHIVE
#                  is skipped)
# With MUSA_SDK other than `archives` (the SDK from an apt repository, or the base image's own)
# there is nothing to install.
# MUSA_LEAN=1 (the release image): what is for building with the SDK (compilers, headers, static
# libraries) is removed from the MUSA tree in the same step, so no layer holds it.
# The archive is unpacked in a temp dir and its installer runs from its own directory (the
# vendors' scripts copy with relative paths), with no stdin so a prompt cannot hang the build.
# The archive and the temp dir are removed afterwards. After the toolkit, the loader learns
# /usr/local/musa/lib through /etc/ld.so.conf.d/musa.conf when the installer did not register it.
set -euo pipefail

log() { echo "install_musa: $*"; }
die() { echo "error: install_musa: $*" >&2; exit 1; }

MUSA_HOME=/usr/local/musa
LD_CONF=/etc/ld.so.conf.d/musa.conf

[ $# -eq 2 ] || die "usage: install_musa.sh musa_toolkits|mudnn|mccl ARCHIVE"
component="$1" archive="$2"
if [ "${MUSA_SDK:-archives}" != archives ]; then
    # the SDK comes from an apt repository or the base image (install_musa_apt.sh)
    log "MUSA_SDK=${MUSA_SDK}: no ${component} archive to install"
    rm -f "${archive}" 2>/dev/null || true
    exit 0
fi
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

# lean_tree DIR: remove what is for building from the installed tree: compilers (the names the
# lean-release rules look for, musa_docker/check/lean.py), header files and include dirs, static
# libraries. Shared libraries and the other tools stay.
lean_tree() {
    local tree="$1" count
    count="$(find "${tree}" \( -type f -o -type l \) \( -name '*.h' -o -name '*.hpp' -o -name '*.cuh' -o -name '*.muh' \
        -o -name '*.a' -o -path "${tree}/bin/mcc*" -o -path "${tree}/bin/clang*" -o -path "${tree}/bin/gcc*" \
        -o -path "${tree}/bin/g++*" -o -path "${tree}/bin/cc" -o -path "${tree}/bin/c++" \) -print -delete | wc -l)"
    find "${tree}" -depth -type d \( -name include -o -path '*/include/*' \) -empty -delete
    log "${component}: lean: removed ${count} compilers, headers and static libraries from ${tree}"
}

# A plain assignment, so that set -e stops the script when `installer` dies.
case "${component}" in
    musa_toolkits)
        unpack musa_toolkits "${archive}"
        script="$(installer musa_toolkits '*/musa_toolkits_install/install.sh')"
        run musa_toolkits "${script}"
        [ -d "${MUSA_HOME}/lib" ] || die "the MUSA toolkit installer finished but ${MUSA_HOME}/lib does not exist"
        if ! grep -qsE "^[[:space:]]*${MUSA_HOME}(-[^/]*)?/lib/?[[:space:]]*$" /etc/ld.so.conf /etc/ld.so.conf.d/*.conf; then
            log "register ${MUSA_HOME}/lib with the dynamic loader (${LD_CONF})"
            echo "${MUSA_HOME}/lib" >"${LD_CONF}"
        fi ;;
    mudnn)
        unpack mudnn "${archive}"
        script="$(installer mudnn '*/mudnn/install_mudnn.sh')"
        run mudnn "${script}" ;;
    mccl)
        if [ ! -e "${archive}" ]; then
            log "mccl: not staged, skipped"
            exit 0
        fi
        unpack mccl "${archive}"
        script="$(installer mccl '*/install.sh')"
        run mccl "${script}" ;;
    *)
        die "unknown component '${component}': expected musa_toolkits, mudnn or mccl" ;;
esac
if [ "${MUSA_LEAN:-0}" = 1 ]; then
    lean_tree "$(readlink -f "${MUSA_HOME}")"
fi
ldconfig
# a bind-mounted archive (BuildKit) cannot be removed, and is in no layer anyway
rm -f "${archive}" 2>/dev/null || true
log "${component} done: ${MUSA_HOME} -> $(readlink -f "${MUSA_HOME}"); libraries: $(find "${MUSA_HOME}/lib/" -mindepth 1 -maxdepth 1 -name 'lib*' -printf '%f ' | head -c 400)"
