#!/usr/bin/env bash
# Make sure a Docker engine answers: install Debian's docker.io when there is no dockerd, and start
# dockerd when no engine answers. Changes nothing on a machine whose engine answers. Runs as root, or
# through sudo for the steps that need it.
set -euo pipefail

log=${MUSA_DOCKER_DOCKERD_LOG:-/var/log/musa-docker-dockerd.log}
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

if answers; then
    echo "engine: $(docker version --format 'Docker Engine {{.Server.Version}} (API {{.Server.APIVersion}})')"
    exit 0
fi
if [ -n "${DOCKER_HOST:-}" ]; then
    echo "error: DOCKER_HOST=$DOCKER_HOST does not answer; start that engine or unset DOCKER_HOST" >&2
    exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
    echo "install docker.io"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if [ -S /var/run/docker.sock ] && as_root docker version >/dev/null 2>&1; then
    echo "error: the engine runs, but $(id -un) may not use it: add yourself to the docker group" \
         "(sudo usermod -aG docker $(id -un); then log in again)" >&2
    exit 1
fi
echo "start dockerd (log: $log)"
# --iptables=false --bridge=none: works on hosts without netfilter; builds and containers use
# the host network, as musa-docker does by default.
as_root sh -c "nohup dockerd --iptables=false --bridge=none >'$log' 2>&1 &"
for _ in $(seq 60); do
    answers && { echo "engine: $(docker version --format 'Docker Engine {{.Server.Version}}')"; exit 0; }
    as_root docker version >/dev/null 2>&1 && { echo "error: dockerd runs, but $(id -un) may not use it: add yourself to the docker group (sudo usermod -aG docker $(id -un); then log in again)" >&2; exit 1; }
    sleep 1
done
echo "error: dockerd did not answer within 60 s; see $log" >&2
as_root tail -n 20 "$log" >&2
exit 1
