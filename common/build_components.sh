#!/usr/bin/env bash
# Build one of the dev image's optional source components, when its tree was staged (a component
# the user did not ask for has no tree, and this does nothing):
#   mualg, muthrust  their own `mt_build.sh -i`, which builds and installs into MUSA_HOME
#   kineto           nothing to build: torch_musa's build takes it from /home/kineto (USE_KINETO=1)
#   audio            torchaudio, built against the torch already installed (as torchvision is)
#
# Usage: build_components.sh NAME [SOURCE]   (default SOURCE: /home/NAME)
#
# Environment:
#   PIP_INDEX_URL   '' = pip's default index (audio's dependencies)
#   MUSA_HOME       the MUSA toolkit, where muAlg and muThrust install
set -euo pipefail

name="${1:?usage: build_components.sh NAME [SOURCE]}"
source_dir="${2:-/home/${name}}"
log() { echo "build_components: ${name}: $*"; }
die() { echo "error: build_components: ${name}: $*" >&2; exit 1; }

# shellcheck source-path=SCRIPTDIR source=net_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_env.sh"  # --ca-cert, a credentialed index; drops an empty PIP_INDEX_URL
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -d "${source_dir}" ]; then
    log "not given: nothing to do"
    exit 0
fi

case "${name}" in
    mualg | muthrust)
        [ -d "${MUSA_HOME:-}" ] || die "MUSA_HOME ('${MUSA_HOME:-}') is not a directory; the MUSA toolkit must be installed first"
        [ -f "${source_dir}/mt_build.sh" ] || die "${source_dir}/mt_build.sh is missing: is ${source_dir} ${name}'s source tree?"
        cd "${source_dir}"
        log "bash mt_build.sh -i (MUSA_HOME=${MUSA_HOME})"
        status=0
        bash mt_build.sh -i </dev/null || status=$?
        [ "${status}" -eq 0 ] || die "${source_dir}/mt_build.sh -i failed with exit code ${status}; its output is above"
        log "done"
        ;;
    kineto)
        log "source at ${source_dir}, for torch_musa's build (USE_KINETO=1)"
        ;;
    audio)
        [ -f "${source_dir}/setup.py" ] || die "${source_dir}/setup.py is missing: is ${source_dir} torchaudio's source tree?"
        cd "${source_dir}"
        log "pip install --no-build-isolation -v ${source_dir} (dependencies from ${PIP_INDEX_SHOWN})"
        python -m pip install --no-build-isolation -v . || die "building torchaudio in ${source_dir} failed; pip's output is above"
        # From /, so the check imports the installed package and not the source tree's.
        version="$(cd / && python -c 'import torchaudio; print(torchaudio.__version__)')" \
            || die "torchaudio was installed but does not import"
        log "done: torchaudio ${version}"
        ;;
    *)
        die "unknown component (mualg, muthrust, kineto or audio)"
        ;;
esac
