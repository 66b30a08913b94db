#!/usr/bin/env bash
# Drop-in for the old build.sh: the same flags, spelled as they were, calling
# `musa-docker build-dev`, or `musa-docker release` with -r/--release.
# Flags after `--` go to the task as they are (e.g. -- --dry-run).
# TORCH_VISION_REPO_ROOT_PATH and DOCKER_BUILD_DIR are read by the task itself.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/docker/shim_lib.sh"

usage() {
    cat <<'USAGE'
Usage: build.sh [options] [-- task flags]
  -i, --image_docker_name NAME    image name [musa-pytorch-dev | musa-pytorch-release]
  -t, --tag TAG                   image tag [latest]
  -b, --base_img IMAGE            dev: the base image (required); release: the OS image [ubuntu:20.04]
  -s, --sys OS                    release: the OS image, when -b is not given
  -f, --docker_file FILE          Dockerfile [ubuntu/dockerfile.dev | ubuntu/dockerfile.release]
  -m, --musa_toolkits_url URL     MUSA toolkit archive (required)
  -n, --mudnn_url URL             muDNN archive (required)
      --mccl_url URL              MCCL archive
  -v, --python_version X.Y        release: Python version of the env [3.8]
  -r, --release                   build the release image instead of the dev image
      --torch_whl_url URL         release: torch wheel (required)
      --torch_musa_whl_url URL    release: torch_musa wheel (required)
  -h, --help                      this help
Everything after -- is passed to the task (see `musa-docker build-dev --help`, `musa-docker release --help`).
USAGE
}

args=()
task=build-dev
sys_img=""
base=""
python_version=""
release_only=()
while [ $# -gt 0 ]; do
    case "$1" in
        -i|--image_docker_name) need "$@"; args+=(--image "$2"); shift 2 ;;
        -t|--tag) need "$@"; args+=(--tag "$2"); shift 2 ;;
        -b|--base_img) need "$@"; base="$2"; shift 2 ;;
        -s|--sys) need "$@"; sys_img="$2"; shift 2 ;;
        -f|--docker_file) need "$@"; args+=(--docker-file "$2"); shift 2 ;;
        -m|--musa_toolkits_url) need "$@"; args+=(--musa-url "$2"); shift 2 ;;
        -n|--mudnn_url) need "$@"; args+=(--mudnn-url "$2"); shift 2 ;;
        --mccl_url) need "$@"; args+=(--mccl-url "$2"); shift 2 ;;
        -v|--python_version) need "$@"; python_version="$2"; shift 2 ;;
        -r|--release)           task=release; shift ;;
        --torch_whl_url) need "$@"; release_only+=(--torch-whl-url "$2"); shift 2 ;;
        --torch_musa_whl_url) need "$@"; release_only+=(--torch-musa-whl-url "$2"); shift 2 ;;
        -h|--help)              usage; exit 0 ;;
        --)                     shift; break ;;
        *) echo "error: unknown option $1 (see build.sh --help)" >&2; exit 2 ;;
    esac
done

if [ "$task" = release ]; then
    base=${base:-$sys_img}
    [ -n "$base" ] && args+=(--base-img "$base")
    [ -n "$python_version" ] && args+=(--python-version "$python_version")
    args+=("${release_only[@]}")
else
    [ -n "$base" ] && args+=(--base-img "$base")
    # A dev image inherits the base image's OS and Python: say so instead of silently dropping them.
    [ -n "$sys_img" ] && echo "note: -s/--sys is ignored for the dev image: it uses the base image's OS" >&2
    [ -n "$python_version" ] && echo "note: -v/--python_version is ignored for the dev image: it uses the base image's Python" >&2
    [ ${#release_only[@]} -gt 0 ] && { echo "error: --torch_whl_url and --torch_musa_whl_url go with -r/--release" >&2; exit 2; }
fi
python=$(find_python "$repo")
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -m musa_docker "$task" "${args[@]}" "$@"
