#!/usr/bin/env bash
# Build torchvision from its source tree against the torch already installed, and install it
# with its runtime dependencies (pillow, requests…) from the index.
#
# Usage: build_torchvision.sh [SOURCE]   (default: /home/vision)
#
# Environment:
#   PIP_INDEX_URL   '' = pip's default index
#
# --no-build-isolation: the C++ extensions must build against the torch in this env, not a
# torch pip would fetch into an isolated build env; install_build_tools.sh provides setuptools
# and wheel for that.
#   COMPILE_CACHE   ccache's max size with BuildKit's cache mount, else off (compile_cache.sh)
set -euo pipefail
# shellcheck source=common/compile_cache.sh
. "$(dirname "${BASH_SOURCE[0]}")/compile_cache.sh"

log() { echo "build_torchvision: $*"; }
die() { echo "error: build_torchvision: $*" >&2; exit 1; }

source_dir="${1:-/home/vision}"
# shellcheck source-path=SCRIPTDIR source=net_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_env.sh"  # --ca-cert, a credentialed index; drops an empty PIP_INDEX_URL
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

[ -f "${source_dir}/setup.py" ] || die "${source_dir}/setup.py is missing: is ${source_dir} torchvision's source tree?"
cd "${source_dir}"

index="${PIP_INDEX_SHOWN}"
log "pip install --no-build-isolation -v ${source_dir} (dependencies from ${index})"
compile_cache_start
python -m pip install --no-build-isolation -v . || die "building torchvision in ${source_dir} failed; pip's output is above"
compile_cache_report

# From /, so the check imports the installed package and not the source tree's torchvision/.
version="$(cd / && python -c 'import torchvision; print(torchvision.__version__)')" \
    || die "torchvision was installed but does not import"
log "done: torchvision ${version}"
