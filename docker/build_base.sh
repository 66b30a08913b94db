#!/usr/bin/env bash
# Drop-in for the old build_base.sh: the same flags, spelled as they were, calling
# `musa-docker build-base`. Flags after `--` go to the task as they are (e.g. -- --dry-run).
# PYTORCH_REPO_ROOT_PATH and DOCKER_BUILD_DIR are read by the task itself.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/docker/shim_lib.sh"

usage() {
    cat <<'USAGE'
Usage: build_base.sh [options] [-- task flags]
  -i, --image_docker_name NAME   image name [musa-pytorch-base]
  -t, --tag TAG                  image tag [latest]
  -s, --sys OS                   ubuntu:20.04 | ubuntu:22.04 | debian:12 [ubuntu:20.04]
  -v, --python_version X.Y       Python version of the env [3.8]
  -h, --help                     this help
Everything after -- is passed to `musa-docker build-base` (see its --help).
USAGE
}

args=()
while [ $# -gt 0 ]; do
    case "$1" in
        -i|--image_docker_name) need "$@"; args+=(--image "$2"); shift 2 ;;
        -t|--tag) need "$@"; args+=(--tag "$2"); shift 2 ;;
        -s|--sys) need "$@"; args+=(--sys "$2"); shift 2 ;;
        -v|--python_version) need "$@"; args+=(--python-version "$2"); shift 2 ;;
        -h|--help)              usage; exit 0 ;;
        --)                     shift; args+=("$@"); break ;;
        *) echo "error: unknown option $1 (see build_base.sh --help)" >&2; exit 2 ;;
    esac
done
python=$(find_python "$repo")
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m musa_docker build-base "${args[@]}"
