#!/usr/bin/env bash
# Install the staged wheels (torch, torch_musa) into the image's Python env, then remove them.
# Their dependencies come from the index; a dependency on one of the staged wheels (torch_musa
# requires torch) is met by the staged file.
#
# Usage: install_wheels.sh [DIR]   (default: /tmp/wheels)
#
# Environment:
#   PYTHON_PREFIX   the env, as install_python_env.sh made it
#   PIP_INDEX_URL   '' = pip's default index
#   WHEELS_OPTIONAL 1: no staged wheel is no error (the extra wheels, which may be none)
set -euo pipefail

log() { echo "install_wheels: $*"; }
die() { echo "error: install_wheels: $*" >&2; exit 1; }

dir="${1:-/tmp/wheels}"
: "${PYTHON_PREFIX:?PYTHON_PREFIX is not set}"
# shellcheck source-path=SCRIPTDIR source=net_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_env.sh"  # --ca-cert, a credentialed index; drops an empty PIP_INDEX_URL
export PIP_DISABLE_PIP_VERSION_CHECK=1
# With BuildKit pip's cache is a cache mount (PIP_CACHE_MOUNTED=1): kept between builds, in no layer.
[ -n "${PIP_CACHE_MOUNTED:-}" ] || export PIP_NO_CACHE_DIR=1
python="${PYTHON_PREFIX}/bin/python"
[ -x "${python}" ] || die "no Python env at ${PYTHON_PREFIX}; install_python_env.sh makes it first"

shopt -s nullglob
wheels=("${dir}"/*.whl)
if [ "${#wheels[@]}" -eq 0 ] && [ "${WHEELS_OPTIONAL:-0}" = 1 ]; then
    log "no wheel files staged, none asked for"
    rm -rf "${dir}"
    exit 0
fi
if [ "${#wheels[@]}" -eq 0 ] && [ -n "${MUSA_WHEELS:-}" ]; then
    log "no wheel files staged: the MUSA wheels came from the MUSA index (install_musa_wheels.sh)"
    rm -rf "${dir}" 2>/dev/null || true    # a bind mount (BuildKit) stays, and is in no layer
    exit 0
fi
[ "${#wheels[@]}" -gt 0 ] || die "no wheels in ${dir}; the build context must hold artifacts/wheels/*.whl"

index="${PIP_INDEX_SHOWN}"
log "pip install ${wheels[*]##*/} (dependencies from ${index})"
# --offline: the bundle's wheelhouse too (net_env.sh), said on the command line beside the staged dir
"${python}" -m pip install --find-links "${dir}" ${PIP_FIND_LINKS:+--find-links "${PIP_FIND_LINKS}"} "${wheels[@]}" \
    || die "pip install of ${wheels[*]##*/} into ${PYTHON_PREFIX} failed (dependencies from ${index}); pip's output is above"
rm -rf "${dir}" 2>/dev/null || true    # a bind mount (BuildKit) stays, and is in no layer

installed="$("${python}" - "${wheels[@]##*/}" <<'PY'
import sys
from importlib import metadata
names = [w.split("-")[0] for w in sys.argv[1:]]
print(", ".join(f"{n} {metadata.version(n)}" for n in names))
PY
)" || die "the wheels were installed but pip's metadata does not list them"
log "done: ${installed}"
