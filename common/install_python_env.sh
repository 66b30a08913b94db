#!/usr/bin/env bash
# Create the image's Python env with numpy, and activate it in interactive shells.
#
# Environment:
#   PYTHON_ENV      conda | venv
#   PYTHON_VERSION  X.Y, honoured exactly
#   PYTHON_PREFIX   where the env lives: /opt/conda/envs/pyXY (conda), e.g. /opt/venv (venv)
#   PIP_INDEX_URL   '' = pip's default index
#   ARTIFACTS_DIR   holds conda_installer.sh when PYTHON_ENV=conda (default /tmp/artifacts)
#   PYTHON_ENV_LEAN 1 (the release image): the env's headers and static libraries (numpy's C API,
#                   conda's include/) are removed in this step; nothing in the image builds with them
#
# conda: runs the staged installer (Miniforge or Miniconda) in batch mode into /opt/conda and
#        creates the env pyXY with python=X.Y.
# venv:  uses the distribution's python3, which must be X.Y; pip stays the one venv bundles.
set -euo pipefail

log() { echo "install_python_env: $*"; }
die() { echo "error: install_python_env: $*" >&2; exit 1; }

CONDA_ROOT=/opt/conda
ACTIVATE_SNIPPET=/etc/profile.d/python_env.sh
# PyTorch v2.0.0 builds against the numpy 1 C API.
NUMPY_REQUIREMENT="numpy<2"

: "${PYTHON_ENV:?PYTHON_ENV is not set (conda or venv)}"
: "${PYTHON_VERSION:?PYTHON_VERSION is not set (e.g. 3.8)}"
: "${PYTHON_PREFIX:?PYTHON_PREFIX is not set}"
ARTIFACTS_DIR="${ARTIFACTS_DIR:-/tmp/artifacts}"
[[ "${PYTHON_VERSION}" =~ ^3\.[0-9]+$ ]] || die "PYTHON_VERSION must look like 3.8, got '${PYTHON_VERSION}'"
# shellcheck source-path=SCRIPTDIR source=net_env.sh
. "$(dirname "${BASH_SOURCE[0]}")/net_env.sh"  # --ca-cert, a credentialed index; drops an empty PIP_INDEX_URL
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# With BuildKit pip's cache is a cache mount (PIP_CACHE_MOUNTED=1): kept between builds, in no layer.
[ -n "${PIP_CACHE_MOUNTED:-}" ] || export PIP_NO_CACHE_DIR=1
env_name="py${PYTHON_VERSION/./}"

install_conda_env() {
    local installer="${ARTIFACTS_DIR}/conda_installer.sh" expected="${CONDA_ROOT}/envs/${env_name}"
    [ "${PYTHON_PREFIX}" = "${expected}" ] \
        || die "with PYTHON_ENV=conda the env is ${env_name}, so PYTHON_PREFIX must be ${expected}, got ${PYTHON_PREFIX}"
    [ -f "${installer}" ] || die "PYTHON_ENV=conda needs artifacts/conda_installer.sh in the build context; ${installer} is missing"
    log "install conda into ${CONDA_ROOT} with ${installer##*/}"
    bash "${installer}" -b -p "${CONDA_ROOT}" || die "the conda installer failed (exit $?)"
    [ -x "${CONDA_ROOT}/bin/conda" ] || die "the conda installer ran but ${CONDA_ROOT}/bin/conda is missing"
    log "conda create -n ${env_name} python=${PYTHON_VERSION}"
    "${CONDA_ROOT}/bin/conda" create -y -n "${env_name}" "python=${PYTHON_VERSION}" \
        || die "conda create -n ${env_name} python=${PYTHON_VERSION} failed"
    pip_install
    log "conda clean -afy"
    "${CONDA_ROOT}/bin/conda" clean -afy
    write_activation ". ${CONDA_ROOT}/etc/profile.d/conda.sh && conda activate ${env_name}"
}

install_venv() {
    local have os
    command -v python3 >/dev/null || die "python3 not found; install_base.sh installs the distribution's python3"
    have="$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    # shellcheck source=/dev/null
    os="$(. /etc/os-release && echo "${ID} ${VERSION_ID}")"
    [ "${have}" = "${PYTHON_VERSION}" ] \
        || die "${os}'s python3 is ${have} but PYTHON_VERSION is ${PYTHON_VERSION}; use --python-env conda or -v ${have}"
    log "python3 -m venv ${PYTHON_PREFIX} (python ${have})"
    python3 -m venv "${PYTHON_PREFIX}" || die "python3 -m venv ${PYTHON_PREFIX} failed (is python3-venv installed?)"
    pip_install
    write_activation ". ${PYTHON_PREFIX}/bin/activate"
}

# PyTorch v2.0.0 needs CMake 3.18; ubuntu:20.04 ships 3.16. Where the distribution's cmake is
# older, a newer one goes into the env, whose bin/ comes first on PATH. Images without cmake
# (release) build nothing and get none.
CMAKE_MIN="3.18"

cmake_too_old() {
    local have
    have="$(cmake --version 2>/dev/null | awk 'NR == 1 { print $3 }')"
    [ -n "${have}" ] && [ "$(printf '%s\n%s\n' "${CMAKE_MIN}" "${have}" | sort -V | head -n 1)" != "${CMAKE_MIN}" ]
}

pip_install() {
    local index="${PIP_INDEX_SHOWN}"
    local wanted=("${NUMPY_REQUIREMENT}")
    if cmake_too_old; then
        log "the distribution's cmake is older than ${CMAKE_MIN}: add cmake>=${CMAKE_MIN} to the env"
        wanted+=("cmake>=${CMAKE_MIN}")
    fi
    log "pip install ${wanted[*]} from ${index}"
    "${PYTHON_PREFIX}/bin/python" -m pip install "${wanted[@]}" \
        || die "pip install ${wanted[*]} into ${PYTHON_PREFIX} from ${index} failed"
}

# Interactive bash reads /etc/bash.bashrc (login shells too, through /etc/profile); login shells
# of any sh read /etc/profile.d. Non-interactive processes get the env from the image's PATH.
write_activation() {
    log "activate the env in interactive shells: $1"
    printf '# The Python env of this image (%s %s at %s).\n%s\n' \
        "${PYTHON_ENV}" "${PYTHON_VERSION}" "${PYTHON_PREFIX}" "$1" >"${ACTIVATE_SNIPPET}"
    grep -qxF ". ${ACTIVATE_SNIPPET}" /etc/bash.bashrc 2>/dev/null \
        || printf '\n. %s\n' "${ACTIVATE_SNIPPET}" >>/etc/bash.bashrc
}

case "${PYTHON_ENV}" in
    conda) install_conda_env ;;
    venv) install_venv ;;
    *) die "PYTHON_ENV must be conda or venv, got '${PYTHON_ENV}'" ;;
esac

if [ "${PYTHON_ENV_LEAN:-0}" = 1 ]; then
    root="${PYTHON_PREFIX}"
    [ "${PYTHON_ENV}" = conda ] && root="${CONDA_ROOT}"
    removed="$(find "${root}" \( -type f -o -type l \) \( -name '*.h' -o -name '*.hpp' -o -name '*.cuh' -o -name '*.muh' \
        -o -name '*.a' \) -print -delete | wc -l)"
    find "${root}" -depth -type d \( -name include -o -path '*/include/*' \) -empty -delete
    log "lean: removed ${removed} headers and static libraries from ${root}"
fi

version="$("${PYTHON_PREFIX}/bin/python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
[ "${version%.*}" = "${PYTHON_VERSION}" ] || die "the env's python is ${version}, not ${PYTHON_VERSION}"
numpy="$("${PYTHON_PREFIX}/bin/python" -c 'import numpy; print(numpy.__version__)')" || die "numpy does not import in ${PYTHON_PREFIX}"
log "done: python ${version}, numpy ${numpy} at ${PYTHON_PREFIX}"
