"""Test images and a package index made from what a test machine has, without Docker Hub or PyPI.

- `busybox_image`: a tiny image FROM scratch holding the static busybox, for tests that need a
  container but no OS.
- `debian12_image`: `debian:12` imported from a `debootstrap --variant=minbase` rootfs, cached
  as a tarball so only the first run of a machine pays for debootstrap.
- `run_in`: what a command prints in a throwaway container of an image, without a network.
- `local_pypi`: a PEP 503 index served over HTTP on 127.0.0.1, which builds reach because they
  run with host networking; it serves the wheels the base image installs (numpy).

Everything slow is cached under `$MUSA_DOCKER_TEST_CACHE` (default `~/.cache/musa_docker-tests`)
and guarded by a lock file, so parallel test processes wait for one another instead of racing.
Failures raise `AssertionError` with what failed and where its log is.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import gzip
import hashlib
import html
import http.server
import io
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import docker
import docker.errors

BUSYBOX_IMAGE = "musa-docker-test/busybox:latest"
DEBIAN12_IMAGE = "debian:12"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY_MIRROR = "http://deb.debian.org/debian-security"

# numpy<2: the base image installs numpy<2 (PyTorch v2.0.0 builds against the numpy 1 C API).
NUMPY_REQUIREMENT = "numpy<2"

BUSYBOX_APPLETS = (
    "sh", "ash", "ls", "cat", "echo", "sleep", "id", "env", "tar", "grep", "head", "tail", "sed",
    "mkdir", "rm", "rmdir", "cp", "mv", "ln", "touch", "chmod", "true", "false", "printf", "wc",
    "test", "[", "[[", "pwd", "uname", "whoami", "hostname", "stat", "find", "xargs", "sort",
    "uniq", "cut", "tr", "basename", "dirname", "readlink", "date", "ps", "kill", "which", "awk",
    "gzip", "gunzip", "sha256sum", "md5sum", "wget", "vi", "less", "more", "du", "df", "mount",
    "chown", "chgrp", "tee", "yes", "seq", "expr", "sync",
)

_BUSYBOX_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_BUSYBOX_GROUP = "root:x:0:\nnogroup:x:65534:\n"
_BASH_WRAPPER = '#!/bin/sh\n# busybox has no bash applet; its sh understands what tests send to bash.\nexec /bin/sh "$@"\n'

_DEBIAN_SOURCES = (
    f"deb {DEBIAN_MIRROR} bookworm main\n"
    f"deb {DEBIAN_MIRROR} bookworm-updates main\n"
    f"deb {DEBIAN_SECURITY_MIRROR} bookworm-security main\n"
)
# As in Docker's own debian images: services never start inside a build or container.
_POLICY_RC_D = "#!/bin/sh\nexit 101\n"
# Debian's docker images keep apt from caching .debs and translations inside layers.
_APT_DOCKER_CLEAN = (
    'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb'
    ' /var/cache/apt/*.bin || true"; };\n'
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb'
    ' /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
    'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";\n'
)
_APT_NO_LANGUAGES = 'Acquire::Languages "none";\n'


def cache_dir() -> Path:
    """The directory slow artifacts are kept in, created with a `CACHEDIR.TAG` so backups skip it."""
    root = Path(os.environ.get("MUSA_DOCKER_TEST_CACHE") or Path.home() / ".cache" / "musa_docker-tests")
    root.mkdir(parents=True, exist_ok=True)
    tag = root / "CACHEDIR.TAG"
    if not tag.exists():
        tag.write_text(
            "Signature: 8a477f597d28d172789f06886806bc55\n"
            "# musa_docker test cache (debootstrap rootfs, wheels); safe to delete.\n"
        )
    return root


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """Hold an exclusive lock on `cache_dir()/name.lock`, so one process builds what others wait for."""
    with open(cache_dir() / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _client(client: docker.DockerClient | None) -> docker.DockerClient:
    return client if client is not None else docker.from_env()


def _has_image(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, 0
    tar.addfile(info)


def _add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = tarfile.SYMTYPE, target, 0o777, 0
    tar.addfile(info)


def _busybox_rootfs(busybox: Path) -> bytes:
    """A rootfs tarball: busybox, its applet links, a bash wrapper and a root user."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "etc", "root", "home", "usr", "usr/bin", "var"):
            _add_dir(tar, d)
        _add_dir(tar, "tmp", 0o1777)
        _add_file(tar, "bin/busybox", busybox.read_bytes(), 0o755)
        for applet in sorted(set(BUSYBOX_APPLETS) - {"busybox"}):
            _add_symlink(tar, f"bin/{applet}", "busybox")
        _add_file(tar, "bin/bash", _BASH_WRAPPER.encode(), 0o755)
        _add_file(tar, "etc/passwd", _BUSYBOX_PASSWD.encode())
        _add_file(tar, "etc/group", _BUSYBOX_GROUP.encode())
    return buf.getvalue()


def busybox_image(client: docker.DockerClient | None = None) -> str:
    """Build `musa-docker-test/busybox:latest` FROM scratch (once) and return its reference.

    Needs a static busybox on the host (`/bin/busybox`, Debian's busybox-static).
    Raises AssertionError when there is none or the build fails.
    """
    client = _client(client)
    with _locked("busybox"):
        if _has_image(client, BUSYBOX_IMAGE):
            return BUSYBOX_IMAGE
        busybox = next((p for p in (Path("/bin/busybox"), Path("/usr/bin/busybox")) if p.is_file()), None)
        assert busybox is not None, "no /bin/busybox on this machine: install busybox-static"
        context = io.BytesIO()
        with tarfile.open(fileobj=context, mode="w") as tar:
            dockerfile = b'FROM scratch\nADD rootfs.tar /\nENV PATH=/bin\nCMD ["/bin/sh"]\n'
            _add_file(tar, "Dockerfile", dockerfile)
            _add_file(tar, "rootfs.tar", _busybox_rootfs(busybox))
        context.seek(0)
        try:
            client.images.build(fileobj=context, custom_context=True, tag=BUSYBOX_IMAGE, rm=True)
        except docker.errors.BuildError as err:
            log = "".join(str(chunk.get("stream", chunk)) for chunk in err.build_log)
            raise AssertionError(f"building {BUSYBOX_IMAGE} failed: {err}\n{log}") from err
    return BUSYBOX_IMAGE


def _mounts_below(root: Path) -> list[str]:
    """Mount points at or under `root` (debootstrap mounts /proc and /sys in its target)."""
    prefix = str(root.resolve())
    points = []
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            point = line.split()[1].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def _remove_rootfs(root: Path) -> None:
    """Remove a debootstrap target, unmounting what a failed run may have left mounted first."""
    for point in _mounts_below(root):
        subprocess.run(["umount", "-l", point], check=False)
    if _mounts_below(root):
        raise AssertionError(f"{root} still has mounts ({', '.join(_mounts_below(root))}); not removing it")
    shutil.rmtree(root, ignore_errors=True)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def debian12_rootfs_tarball(mirror: str = DEBIAN_MIRROR, arch: str = "") -> Path:
    """The cached tarball of a Debian 12 minbase rootfs, made with debootstrap on first use;
    `arch` (Debian's name: arm64) another CPU's, run through QEMU user emulation registered with
    binfmt (scripts/test.sh sets it up).

    Raises AssertionError when debootstrap is missing or fails (the log is kept in the cache dir).
    """
    cache = cache_dir()
    suffix = f"-{arch}" if arch else ""
    tarball = cache / f"debian12-bookworm-minbase{suffix}.tar.gz"
    with _locked(f"debian12-rootfs{suffix}"):
        if tarball.is_file():
            return tarball
        debootstrap = shutil.which("debootstrap") or next(
            (p for p in ("/usr/sbin/debootstrap", "/sbin/debootstrap") if os.path.exists(p)), None
        )
        assert debootstrap, "debootstrap is not installed: apt-get install debootstrap"
        assert os.geteuid() == 0, "debootstrap needs root to build the debian:12 test image"
        if arch:
            _assert_emulates(arch)
        root = Path(tempfile.mkdtemp(prefix=f"debian12-rootfs{suffix}.", dir=cache))
        log = cache / f"debootstrap{suffix}.log"
        try:
            started = time.monotonic()
            print(f"debootstrap bookworm {arch} from {mirror} into {root} (log: {log})", file=sys.stderr)
            with open(log, "wb") as out:
                result = subprocess.run(
                    [debootstrap, "--variant=minbase", *([f"--arch={arch}"] if arch else []),
                     "bookworm", str(root), mirror],
                    stdout=out, stderr=subprocess.STDOUT, check=False,
                )
            if result.returncode != 0:
                inner = root / "debootstrap" / "debootstrap.log"
                if inner.is_file():
                    shutil.copyfile(inner, cache / f"debootstrap{suffix}-target.log")
                raise AssertionError(
                    f"debootstrap --variant=minbase bookworm {mirror} failed with exit code "
                    f"{result.returncode}; log: {log}\n{_tail(log)}"
                )
            _configure_debian_rootfs(root)
            partial = tarball.with_name(tarball.name + ".part")
            # dev, proc and sys stay empty, as in Docker's own images: the engine mounts them.
            subprocess.run(
                ["tar", "--numeric-owner", "--one-file-system", "-C", str(root),
                 "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
                 "-czf", str(partial), "."],
                check=True,
            )
            os.replace(partial, tarball)
            print(f"debian:12 rootfs cached as {tarball} in {time.monotonic() - started:.0f}s", file=sys.stderr)
        finally:
            _remove_rootfs(root)
    return tarball


# Debian's architecture names and the binfmt entry (qemu-user-static) that runs their programs here.
_QEMU = {"arm64": "qemu-aarch64", "amd64": "qemu-x86_64"}


def _assert_emulates(arch: str) -> None:
    """This machine runs `arch`'s programs through QEMU user emulation registered with binfmt."""
    entry = Path("/proc/sys/fs/binfmt_misc") / _QEMU.get(arch, f"qemu-{arch}")
    assert entry.is_file() and entry.read_text().startswith("enabled"), (
        f"no binfmt entry {entry} runs {arch} programs: install qemu-user-static and binfmt-support, mount "
        "binfmt_misc and run `update-binfmts --enable` (scripts/test.sh does)")


def _configure_debian_rootfs(root: Path) -> None:
    """Point apt at deb.debian.org (main, updates, security) and drop caches, as Docker's image does."""
    (root / "etc/apt/sources.list").write_text(_DEBIAN_SOURCES)
    (root / "etc/apt/apt.conf.d/docker-clean").write_text(_APT_DOCKER_CLEAN)
    (root / "etc/apt/apt.conf.d/docker-no-languages").write_text(_APT_NO_LANGUAGES)
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text(_POLICY_RC_D)
    policy.chmod(0o755)
    (root / "etc/hostname").unlink(missing_ok=True)
    for pattern in ("var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb",
                    "var/log/*.log", "var/log/apt/*", "tmp/*", "var/tmp/*"):
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.name != "lock":
                path.unlink()


def debian12_image(client: docker.DockerClient | None = None) -> str:
    """Make sure the engine has `debian:12` and return that reference.

    An image already named `debian:12` is used as it is; otherwise the cached debootstrap
    rootfs is imported with `CMD ["/bin/bash"]`. Raises AssertionError on failure.
    """
    client = _client(client)
    with _locked("debian12-image"):
        if _has_image(client, DEBIAN12_IMAGE):
            return DEBIAN12_IMAGE
        tarball = debian12_rootfs_tarball()
        repository, tag = DEBIAN12_IMAGE.split(":")
        try:
            client.api.import_image(
                src=str(tarball), repository=repository, tag=tag, changes=['CMD ["/bin/bash"]']
            )
        except docker.errors.APIError as err:
            raise AssertionError(f"importing {tarball} as {DEBIAN12_IMAGE} failed: {err}") from err
        assert _has_image(client, DEBIAN12_IMAGE), f"imported {tarball} but the engine has no {DEBIAN12_IMAGE}"
    return DEBIAN12_IMAGE


def debian12_image_archive(arch: str, ref: str = DEBIAN12_IMAGE) -> Path:
    """The cached image archive (`docker save`'s format: manifest.json, the config, one layer) of
    the `arch` Debian 12 rootfs, whose config names `arch`, so that `docker load` makes an image of
    that platform: `docker import` on Engine 20.10 records the engine's own architecture whatever
    `--platform` says, and BuildKit then would not take the image for a build of `arch`.
    Raises AssertionError when the rootfs cannot be made."""
    rootfs = debian12_rootfs_tarball(arch=arch)
    archive = rootfs.with_name(rootfs.name.replace(".tar.gz", ".image.tar"))
    with _locked(f"debian12-image-archive-{arch}"):
        if archive.is_file() and archive.stat().st_mtime >= rootfs.stat().st_mtime:
            return archive
        layer = hashlib.sha256()
        with open(rootfs, "rb") as raw, gzip.GzipFile(fileobj=raw) as unpacked:
            for block in iter(functools.partial(unpacked.read, 1 << 20), b""):
                layer.update(block)
        config = {
            "architecture": arch, "os": "linux", "created": "2023-11-14T00:00:00Z",
            "config": {"Cmd": ["/bin/bash"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer.hexdigest()}"]},
            "history": [{"created": "2023-11-14T00:00:00Z", "created_by": f"debootstrap --variant=minbase --arch={arch} bookworm"}],
        }
        config_bytes = json.dumps(config, sort_keys=True).encode()
        config_name = f"{hashlib.sha256(config_bytes).hexdigest()}.json"
        manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": ["layer/layer.tar.gz"]}]
        partial = archive.with_name(archive.name + ".part")
        with tarfile.open(partial, "w") as tar:
            _add_file(tar, config_name, config_bytes)
            _add_dir(tar, "layer")
            tar.add(rootfs, arcname="layer/layer.tar.gz")
            _add_file(tar, "manifest.json", json.dumps(manifest).encode())
        os.replace(partial, archive)
    return archive


def load_image_archive(client: docker.DockerClient, archive: Path, ref: str) -> str:
    """`docker load` the image archive into the engine of `client`; return `ref`, which it names."""
    with open(archive, "rb") as data:
        client.images.load(data)
    assert _has_image(client, ref), f"loaded {archive} but the engine has no {ref}"
    return ref


def run_in(engine: docker.DockerClient, ref: str, command: str) -> str:
    """What `bash -c command` prints in a throwaway container of `ref`, without a network, stripped."""
    out = engine.containers.run(ref, ["bash", "-c", command], remove=True, network_mode="none")
    return out.decode().strip()


def _normalize(project: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", project).lower()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(functools.partial(f.read, 1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_wheel(requirement: str, python_version: str = "3.11",
                   platform: str = "manylinux2014_x86_64") -> Path:
    """One binary wheel for `requirement`, downloaded with the host's pip once and cached.

    Raises AssertionError when pip fails or yields no single wheel.
    """
    wheels = cache_dir() / "wheels" / f"cp{python_version.replace('.', '')}-{platform}"
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", requirement)
    marker = wheels / f"{key}.wheel"
    with _locked("wheels"):
        if marker.is_file() and (wheels / marker.read_text().strip()).is_file():
            return wheels / marker.read_text().strip()
        wheels.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=wheels) as tmp:
            command = [
                sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
                "--only-binary=:all:", "--python-version", python_version, "--platform", platform,
                "-d", tmp, requirement,
            ]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            got = sorted(Path(tmp).glob("*.whl"))
            assert result.returncode == 0 and len(got) == 1, (
                f"pip download {requirement!r} for CPython {python_version} {platform} failed "
                f"(exit {result.returncode}, wheels {[p.name for p in got]}):\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
            os.replace(got[0], wheels / got[0].name)
        marker.write_text(got[0].name + "\n")
        return wheels / got[0].name


def numpy_wheel() -> Path:
    """The numpy wheel the debian:12 base image (CPython 3.11, x86_64) installs."""
    return download_wheel(NUMPY_REQUIREMENT, python_version="3.11")


def write_simple_index(root: Path, wheels: Iterable[Path]) -> Path:
    """Lay out a PEP 503 index of `wheels` under `root` and return `root/simple`.

    Files go to `root/files/`; each project page links them with `#sha256=` so pip verifies them.
    Calling it again adds wheels to the same index.
    """
    files = root / "files"
    simple = root / "simple"
    files.mkdir(parents=True, exist_ok=True)
    simple.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        target = files / wheel.name
        if not target.exists():
            try:
                os.link(wheel, target)
            except OSError:
                shutil.copyfile(wheel, target)
    projects: dict[str, list[Path]] = {}
    for wheel in sorted(files.glob("*.whl")):
        projects.setdefault(_normalize(wheel.name.split("-")[0]), []).append(wheel)
    for project, project_wheels in projects.items():
        links = "".join(
            f'<a href="../../files/{html.escape(w.name)}#sha256={_sha256(w)}">{html.escape(w.name)}</a><br>\n'
            for w in project_wheels
        )
        (simple / project).mkdir(exist_ok=True)
        (simple / project / "index.html").write_text(
            f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n"
        )
    index = "".join(f'<a href="{p}/">{p}</a><br>\n' for p in sorted(projects))
    (simple / "index.html").write_text(f"<!DOCTYPE html>\n<html><body>\n{index}</body></html>\n")
    return simple


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve_directory(root: Path, handler: type = QuietHandler, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve `root` on 127.0.0.1 (a free port) in a thread with `handler` (a SimpleHTTPRequestHandler),
    over HTTPS with `tls`; yield `http://127.0.0.1:PORT/` (`https://` with `tls`)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    if tls is not None:
        # the handshake in the handler's thread, so a client that rejects the certificate stalls nothing
        server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    thread = threading.Thread(target=server.serve_forever, name="local-pypi", daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def local_pypi(root: Path | str, wheels: Iterable[Path] | None = None) -> Iterator[str]:
    """A package index on 127.0.0.1 holding `wheels` (default: the numpy wheel); yields its
    `http://127.0.0.1:PORT/simple/` URL, for `PIP_INDEX_URL`.

    `root` is a directory the index is written to (a tmp dir or a cache dir).
    Builds reach the server only with host networking (`--network host`).
    """
    root = Path(root)
    write_simple_index(root, [numpy_wheel()] if wheels is None else wheels)
    with serve_directory(root) as url:
        yield url + "simple/"


_FAKE_CONDA_INSTALLER = r'''#!/bin/sh
# A stand-in for a Miniforge/Miniconda installer, for tests without conda-forge: `-b -p PREFIX`
# lays out PREFIX/bin/conda, whose envs are venvs of the image's own python3.
set -eu
prefix=
while [ $# -gt 0 ]; do
    case "$1" in -p) prefix=$2; shift ;; -b | -u | -f) ;; *) echo "fake conda installer: unknown option $1" >&2; exit 2 ;; esac
    shift
done
[ -n "$prefix" ] || { echo "fake conda installer: -p PREFIX is required" >&2; exit 2; }
mkdir -p "$prefix/bin" "$prefix/envs" "$prefix/etc/profile.d"
cat >"$prefix/bin/conda" <<'EOF'
#!/bin/sh
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
command=$1; shift
case "$command" in
    create)
        name= python=
        while [ $# -gt 0 ]; do
            case "$1" in -n) name=$2; shift ;; python=*) python=${1#python=} ;; esac
            shift
        done
        have=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        [ "$have" = "$python" ] || { echo "fake conda: python=$python is not available (python3 is $have)" >&2; exit 1; }
        python3 -m venv "$root/envs/$name"
        ;;
    clean) ;;
    *) echo "fake conda: unsupported command $command" >&2; exit 1 ;;
esac
EOF
chmod +x "$prefix/bin/conda"
cat >"$prefix/etc/profile.d/conda.sh" <<EOF
conda() {
    if [ "\$1" = activate ]; then export CONDA_PREFIX="$prefix/envs/\$2"; . "\$CONDA_PREFIX/bin/activate"
    else "$prefix/bin/conda" "\$@"; fi
}
EOF
echo "fake conda installed at $prefix"
'''


def fake_conda_installer(path: Path | str) -> Path:
    """Write a stand-in conda installer to `path` (stage it as `artifacts/conda_installer.sh`).

    It takes the real installers' `-b -p PREFIX`; its `conda create -n NAME python=X.Y` makes a
    venv of the image's python3 (which must be X.Y) and `conda activate NAME` sources it, so the
    conda path of the base image runs without reaching conda-forge.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_FAKE_CONDA_INSTALLER)
    path.chmod(0o755)
    return path
