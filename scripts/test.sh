#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the tools the tests use (Debian's debootstrap,
# busybox-static for the test images, docker-registry for the push tests, redis-server for the shared
# compile cache, dpkg-dev for the local apt repository, shellcheck for common/*.sh, qemu-user-static and
# binfmt-support so that arm64 images build here through QEMU), brings up the engine (scripts/engine.sh), installs the
# project with its test extra, runs pytest. Extra arguments go to pytest: `-m quick` runs the tests
# that need no engine (and then no engine is started).
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx sh || missing+=(busybox-static)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v dpkg-scanpackages >/dev/null 2>&1 || missing+=(dpkg-dev)
command -v shellcheck >/dev/null 2>&1 || missing+=(shellcheck)
command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-user-static)
command -v update-binfmts >/dev/null 2>&1 || [ -x /usr/sbin/update-binfmts ] || missing+=(binfmt-support)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
    echo "install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
case " $* " in
    *" -m quick "*|*" -m=quick "*) ;;
    *) bash scripts/engine.sh
       # arm64 programs (an arm64 image's RUN steps) run through QEMU, registered with the kernel's binfmt_misc
       if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
           as_root mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
       fi
       as_root update-binfmts --enable qemu-aarch64 ;;
esac
python3 -m pip install -q -e '.[test]'
exec python3 -m pytest "$@"
