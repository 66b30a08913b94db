"""Shared fixtures: real git repos, the real engine, and the CLI as a user runs it."""

from __future__ import annotations

import grp
import stat
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Local fixtures use file:// submodules, which git refuses unless told otherwise. The product
# keeps git's default; only the tests' own environment allows it.
GIT_FILE_OK = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "protocol.file.allow", "GIT_CONFIG_VALUE_0": "always"}


def git(*args, cwd=None):
    env = {**os.environ, **GIT_FILE_OK, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    out = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"git {' '.join(args)} failed: {out.stderr}"
    return out.stdout.strip()


def make_repo(path: Path, files: dict, tag: str = None) -> str:
    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", "main", str(path))
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "initial", cwd=path)
    if tag:
        git("tag", tag, cwd=path)
    return git("rev-parse", "HEAD", cwd=path)


# What a developer's shell may hold that the tool reads (its own config and flag defaults, the
# engine's address, invoke's config, proxies): the tests see none of it, so they run alike everywhere.
LEAKY_PREFIXES = ("MUSA_DOCKER_", "INVOKE_", "DOCKER_")
LEAKY_NAMES = {"MUSA_TOOLKITS_URL", "MUDNN_URL", "MCCL_URL", "TORCH_WHL_URL", "TORCH_MUSA_WHL_URL",
               "PYTORCH_REPO_ROOT_PATH", "TORCH_VISION_REPO_ROOT_PATH", "DOCKER_BUILD_DIR",
               "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY"}
# The tests' own knobs (where to keep the slow-to-make fixture images), not the tool's.
TEST_KNOBS = {"MUSA_DOCKER_TEST_CACHE"}


def leaky(name: str) -> bool:
    """Whether a variable of the outer environment must not reach a test."""
    if name in TEST_KNOBS:
        return False
    return name.startswith(LEAKY_PREFIXES) or name.upper() in LEAKY_NAMES


def sealed(environ) -> dict:
    """`environ` without what a developer's shell may hold for the tool."""
    return {k: v for k, v in environ.items() if not leaky(k)}


@pytest.fixture(scope="session", autouse=True)
def _sealed_environment():
    """Session-wide, so the session fixtures (the engine client, the e2e builds) see it too."""
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if leaky(k)]:
            mp.delenv(name)
        yield


@pytest.fixture(autouse=True)
def _git_file_protocol(monkeypatch):
    for k, v in GIT_FILE_OK.items():
        monkeypatch.setenv(k, v)


@pytest.fixture(scope="session")
def upstream(tmp_path_factory):
    """A 'pytorch' upstream: tag v2.0.0 with a submodule (third_party/fmt), then one more commit."""
    base = tmp_path_factory.mktemp("upstream")
    sub = base / "fmt"
    make_repo(sub, {"include/fmt/core.h": "// fmt core\n"})
    top = base / "pytorch"
    make_repo(top, {"README.md": "pytorch fixture\n", "torch/__init__.py": "\n", "setup.py": "\n"})
    git("submodule", "add", "-q", sub.as_uri(), "third_party/fmt", cwd=top)
    git("commit", "-q", "-m", "add fmt", cwd=top)
    git("tag", "v2.0.0", cwd=top)
    tagged = git("rev-parse", "HEAD", cwd=top)
    (top / "CHANGELOG").write_text("after the tag\n")
    git("add", "-A", cwd=top)
    git("commit", "-q", "-m", "after tag", cwd=top)
    return {"url": top.as_uri(), "path": top, "tag": "v2.0.0", "tagged": tagged,
            "head": git("rev-parse", "HEAD", cwd=top)}


def user_env(root: Path) -> dict:
    """A user's environment under `root`: its own HOME and cache, git allowed to use local fixtures."""
    home = root / "home"
    home.mkdir()
    return {**os.environ, **GIT_FILE_OK, "HOME": str(home), "MUSA_DOCKER_CACHE": str(root / "cache")}


@pytest.fixture
def env(tmp_path):
    return user_env(tmp_path)


def cli(*args, env=None, cwd=None, input=None, timeout=1800):
    """Run `musa-docker ARGS` as a user would; return the CompletedProcess (text). The package
    is this checkout's, whatever the working dir (not another copy installed in site-packages)."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-m", "musa_docker", *args], env=env, cwd=cwd or REPO,
                          capture_output=True, text=True, input=input, timeout=timeout)


def assert_one_error(result, *words):
    """Non-zero exit; stderr opens with the only `error:` line; no traceback anywhere."""
    assert result.returncode != 0, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert lines and lines[0].startswith("error: "), result.stderr
    assert sum(line.startswith("error:") for line in lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.hookimpl(tryfirst=True)      # before `-m` deselects: it reads the marks added here
def pytest_collection_modifyitems(items):
    """A test that asks for the engine, itself or through another fixture (busybox, e2e_base),
    is marked `engine`; one that neither asks for it nor is marked `engine` or `e2e` is marked
    `quick`, so `-m quick` and `-m "not engine"` both run without an engine."""
    for item in items:
        asks = "engine" in getattr(item, "fixturenames", ())
        if asks and item.get_closest_marker("engine") is None:
            item.add_marker(pytest.mark.engine)
        if not asks and item.get_closest_marker("engine") is None and item.get_closest_marker("e2e") is None:
            item.add_marker(pytest.mark.quick)


@pytest.fixture(scope="session")
def engine():
    """The real engine. Tests that need it fail, never skip, when it does not answer."""
    import docker
    try:
        client = docker.from_env()
        client.ping()
    except Exception as err:  # any failure to reach it is the same finding
        pytest.fail(f"no Docker engine answers ({err}); run the README's test command, which starts one")
    return client


@pytest.fixture(scope="session")
def busybox(engine):
    from images import busybox_image
    return busybox_image(engine)


@pytest.fixture(scope="module")
def engine2():
    """A second dockerd: unix socket, plus TCP on 127.0.0.1 with --tlsverify; it knows an
    `mthreads` runtime (runc under that name), which is not its default."""
    import shutil
    import tempfile
    from types import SimpleNamespace

    from dockerd import free_port, make_certs, start_dockerd, stop_dockerd
    from images import busybox_image
    # Short paths: a unix socket path must stay under 108 bytes, containerd's below the exec root too.
    root = Path(tempfile.mkdtemp(prefix="md2.", dir="/tmp"))
    certs = make_certs(root / "certs")
    tcp = f"tcp://127.0.0.1:{free_port()}"
    proc, client, sock = start_dockerd(
        root, "-H", tcp,
        "--tlsverify", "--tlscacert", str(certs["ca"]), "--tlscert", str(certs["cert"]), "--tlskey", str(certs["key"]),
        "--add-runtime", "mthreads=runc",
    )
    try:
        busybox_image(client)
        yield SimpleNamespace(sock=sock, tcp=tcp, certs=certs, client=client, root=root)
    finally:
        for container in client.containers.list(all=True):
            container.remove(force=True)
        client.close()
        stop_dockerd(proc, root)
        shutil.rmtree(root, ignore_errors=True)


def remove_images(client, *refs) -> None:
    """Remove what a test built, whatever state a failed test left it in."""
    for ref in refs:
        try:
            client.images.remove(ref, force=True)
        except Exception:   # already gone, or the engine went away: nothing left to clean
            pass


E2E_BASE = "musa-docker-test/base"


# The e2e builds run under both builders: BuildKit through Debian's client (BuildKit built in),
# and the classic builder through docker-py.
BUILDERS = {"classic": ("--builder", "classic"), "buildkit": ("--builder", "buildkit", "--docker-cli", "/usr/bin/docker")}


@pytest.fixture(scope="session", params=sorted(BUILDERS))
def e2e_base(request, tmp_path_factory, upstream, engine):
    """`build-base -s debian:12 --python-env venv -v 3.11` through the CLI, twice (the second must
    be skipped), from the debootstrap rootfs, the local pytorch fixture and a local index; once
    per builder."""
    import uuid

    from images import debian12_image, local_pypi
    debian12_image(engine)
    tmp = tmp_path_factory.mktemp("e2e-base")
    env = user_env(tmp)
    tag = uuid.uuid4().hex[:8]
    args = ["build-base", "-s", "debian:12", "--python-env", "venv", "-v", "3.11", "-i", E2E_BASE, "-t", tag,
            "-t", f"{tag}-also", "--pytorch-root", str(tmp / "src"), "--pytorch-repo", upstream["url"], *BUILDERS[request.param]]
    with local_pypi(tmp / "index") as index:
        first = cli(*args, "--pip-index-url", index, env=env)
        second = cli(*args, "--pip-index-url", index, "--verify", env=env)
    yield {"first": first, "second": second, "ref": f"{E2E_BASE}:{tag}", "tmp": tmp, "env": env,
           "builder": request.param}
    remove_images(engine, f"{E2E_BASE}:{tag}", f"{E2E_BASE}:{tag}-also")


def tar_context(dockerfile: str, files: dict, mode: int = 0o755) -> io.BytesIO:
    """A build context in memory: the Dockerfile and `files` (path -> text)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, text in {"Dockerfile": dockerfile, **files}.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


@pytest.fixture
def host_render_group():
    """The host's render gid; a host without one gets a `render` group for the test only."""
    try:
        yield grp.getgrnam("render").gr_gid
        return
    except KeyError:
        pass
    subprocess.run(["groupadd", "render"], check=True)
    try:
        yield grp.getgrnam("render").gr_gid
    finally:
        subprocess.run(["groupdel", "render"], check=True)


def slow_release(tmp_path: Path, env: dict, base_ref: str, token: str, seconds: int, *extra: str):
    """Start `musa-docker release` with a Dockerfile whose one RUN step sleeps `seconds` (its
    command carries `token`, to find its container); return (process, output so far) once that
    step runs. The vendor archives and wheels are the tests' own fixtures."""
    import vendor
    files = tmp_path / "vendor"
    files.mkdir(exist_ok=True)
    torch_whl, torch_musa_whl = vendor.fixture_wheels(files, "3.11")
    dockerfile = tmp_path / "Dockerfile.slow"
    dockerfile.write_text(f"FROM {base_ref}\nRUN echo {token} started && sleep {seconds} # {token}\n")
    env = dict(env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "musa_docker", "release", "-b", "debian:12", "--python-env", "venv",
         "-i", "musa-docker-test/slow", "-t", token, "-f", str(dockerfile),
         "-m", str(vendor.musa_toolkits_archive(files)), "-n", str(vendor.mudnn_archive(files)),
         "--torch-whl-url", str(torch_whl), "--torch-musa-whl-url", str(torch_musa_whl), *extra],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if f"{token} started" in line and "echo" not in line:
            return proc, "".join(seen)
    proc.wait()
    raise AssertionError(f"the build never reached its RUN step:\n{''.join(seen)}\n{proc.stderr.read()}")


def containers_running(client, token: str) -> list:
    """Containers whose command carries `token` (a build step's)."""
    found = []
    for c in client.containers.list(all=True):
        if token in " ".join(c.attrs.get("Config", {}).get("Cmd") or []):
            found.append(c.name)
    return found


def snapshot(root: Path) -> dict:
    """Everything under root: path -> (type, mode, bytes or link target)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        rel = str(p.relative_to(root))
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", None, os.readlink(p))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", stat.S_IMODE(st.st_mode), None)
        else:
            out[rel] = ("file", stat.S_IMODE(st.st_mode), p.read_bytes())
    return out


def stage_something(bd, tmp_path: Path):
    """A Dockerfile and common/a.sh staged into the build dir `bd`."""
    from musa_docker.pipeline import context
    src = tmp_path / "src-files"
    (src / "common").mkdir(parents=True, exist_ok=True)
    (src / "Dockerfile").write_text("FROM scratch\n")
    (src / "common" / "a.sh").write_text("echo a\n")
    return context.stage(bd, {"Dockerfile": src / "Dockerfile"}, {"common": src / "common"})
