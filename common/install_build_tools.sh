#!/usr/bin/env bash
# Make sure the Python env can build projects from source without build isolation: pip then
# installs nothing itself, so setuptools and its bdist_wheel command must already be there.
# setuptools has bdist_wheel itself from 70.1 on; before that it comes from the `wheel` package,
# whose releases from 0.46 on only point back to setuptools' own. A venv of Debian 12's python3
# has setuptools 66 and no wheel; a recent conda env may lack setuptools.
#
# Environment:
#   PIP_INDEX_URL   '' = pip's default index
set -euo pipefail

log() { echo "install_build_tools: $*"; }
die() { echo "error: install_build_tools: $*" >&2; exit 1; }

# shellcheck source-path=SCRIPTDIR source=net_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_env.sh"  # --ca-cert, a credentialed index; drops an empty PIP_INDEX_URL
export PIP_DISABLE_PIP_VERSION_CHECK=1
# With BuildKit pip's cache is a cache mount (PIP_CACHE_MOUNTED=1): kept between builds, in no layer.
[ -n "${PIP_CACHE_MOUNTED:-}" ] || export PIP_NO_CACHE_DIR=1
index="${PIP_INDEX_SHOWN}"

command -v python >/dev/null || die "no python on PATH; the base image puts its Python env first on PATH"

pip_install() {
    log "pip install $* from ${index}"
    python -m pip install "$@" || die "pip install $* from ${index} failed"
}

has_bdist_wheel() {
    python -c 'from setuptools.dist import Distribution
import sys
sys.exit(Distribution().get_command_class("bdist_wheel") is None)' >/dev/null 2>&1
}

python -c 'import setuptools' 2>/dev/null || pip_install setuptools
if ! has_bdist_wheel; then
    if python -c 'import setuptools, sys
v = tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit())
sys.exit(v < (70, 1))'; then
        pip_install wheel
    else
        pip_install "wheel<0.46"
    fi
    has_bdist_wheel || die "setuptools still has no bdist_wheel command after installing wheel"
fi
log "done: $(python -m pip --version | cut -d' ' -f1-2), setuptools $(python -c 'import setuptools; print(setuptools.__version__)'), bdist_wheel available"
