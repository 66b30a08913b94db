#!/usr/bin/env bash
# Make sure a Docker engine answers, and that the tools the tests use are installed.
# Installs Debian's docker.io (and debootstrap, busybox-static for the test images, docker-registry
# for the push tests, dpkg-dev for the local apt repository, shellcheck for common/*.sh) when missing,
# and starts dockerd when no engine answers. Changes nothing on a machine that has them.
set -euo pipefail

log=${MUSA_DOCKER_DOCKERD_LOG:-/var/log/musa-docker-dockerd.log}
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx sh || missing+=(busybox-static)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)   # the registry `push` is tested against
command -v dpkg-scanpackages >/dev/null 2>&1 || missing+=(dpkg-dev)   # the local MUSA apt repository of the tests
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)             # tests/unit/plan/test_dockerfile.py lints common/*.sh
if [ ${#missing[@]} -gt 0 ]; then
    echo "install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
if answers; then
    echo "engine: $(docker version --format 'Docker Engine {{.Server.Version}} (API {{.Server.APIVersion}})')"
    exit 0
fi
if [ -n "${DOCKER_HOST:-}" ]; then
    echo "error: DOCKER_HOST=$DOCKER_HOST does not answer; start that engine or unset DOCKER_HOST" >&2
    exit 1
fi
echo "start dockerd (log: $log)"
# --iptables=false --bridge=none: works on hosts without netfilter; builds and containers use
# the host network, as musa-docker does by default.
nohup dockerd --iptables=false --bridge=none >"$log" 2>&1 &
for _ in $(seq 60); do
    answers && { echo "engine: $(docker version --format 'Docker Engine {{.Server.Version}}')"; exit 0; }
    sleep 1
done
echo "error: dockerd did not answer within 60 s; see $log" >&2
tail -n 20 "$log" >&2
exit 1
