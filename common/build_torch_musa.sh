#!/usr/bin/env bash
# Build torch_musa from its source tree with its own build script, which patches and builds
# PyTorch from PYTORCH_REPO_PATH and then builds torch_musa against the MUSA toolkit.
#
# Usage: build_torch_musa.sh [SOURCE [PYTORCH]]   (default: /home/torch_musa /home/pytorch)
#
# Environment:
#   PIP_INDEX_URL   '' = pip's default index; used for SOURCE/requirements.txt
#   MUSA_HOME       the MUSA toolkit (/usr/local/musa in the dev image)
#   TORCH_MUSA_ARCH_LIST, MTGPU_TARGET, USE_MCCL, USE_KINETO   passed on to build.sh (an empty one is unset)
#   (USE_KINETO=1: kineto's source is at /home/kineto, as KINETO_SOURCE_DIR)
#   COMPILE_CACHE   ccache's max size with BuildKit's cache mount, else off (compile_cache.sh)
set -euo pipefail
# shellcheck source=common/compile_cache.sh
. "$(dirname "${BASH_SOURCE[0]}")/compile_cache.sh"

log() { echo "build_torch_musa: $*"; }
die() { echo "error: build_torch_musa: $*" >&2; exit 1; }

source_dir="${1:-/home/torch_musa}"
export PYTORCH_REPO_PATH="${2:-/home/pytorch}"
# shellcheck source-path=SCRIPTDIR source=net_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_env.sh"  # --ca-cert, a credentialed index; drops an empty PIP_INDEX_URL
for var in TORCH_MUSA_ARCH_LIST MTGPU_TARGET USE_MCCL USE_KINETO; do
    if [ -n "${!var:-}" ]; then export "${var?}"; else unset "${var}"; fi
done
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

[ -f "${source_dir}/build.sh" ] || die "${source_dir}/build.sh is missing: is ${source_dir} torch_musa's source tree?"
[ -d "${PYTORCH_REPO_PATH}" ] || die "no PyTorch source at ${PYTORCH_REPO_PATH}; the base image (build-base) puts it there"
if [ "${USE_KINETO:-0}" = 1 ]; then
    [ -d /home/kineto ] || die "USE_KINETO=1 but no kineto source at /home/kineto"
    export KINETO_SOURCE_DIR=/home/kineto
fi
[ -d "${MUSA_HOME:-}" ] || die "MUSA_HOME ('${MUSA_HOME:-}') is not a directory; the MUSA toolkit must be installed first"
cd "${source_dir}"

if [ -f requirements.txt ]; then
    index="${PIP_INDEX_SHOWN}"
    log "pip install -r requirements.txt from ${index}"
    python -m pip install -r requirements.txt || die "pip install -r ${source_dir}/requirements.txt from ${index} failed"
else
    log "no requirements.txt in ${source_dir}"
fi

log "bash build.sh (PYTORCH_REPO_PATH=${PYTORCH_REPO_PATH}, MUSA_HOME=${MUSA_HOME}, TORCH_MUSA_ARCH_LIST=${TORCH_MUSA_ARCH_LIST:-}, MTGPU_TARGET=${MTGPU_TARGET:-}, USE_MCCL=${USE_MCCL:-}, USE_KINETO=${USE_KINETO:-})"
compile_cache_start
status=0
bash build.sh </dev/null || status=$?
compile_cache_report
[ "${status}" -eq 0 ] || die "${source_dir}/build.sh failed with exit code ${status}; its output is above"

# The MUSA driver's libraries come from the host at run time, so an import that fails here
# does not prove a broken build: say so, without failing.
if out="$(cd / && python -c 'import torch_musa; print(getattr(torch_musa, "__version__", "?"))' 2>&1)"; then
    log "done: torch_musa ${out} imports"
else
    log "done; note: torch_musa does not import in the build container (it may need the host's MUSA driver): $(tail -n 1 <<<"${out}")"
fi
