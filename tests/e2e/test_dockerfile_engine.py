"""The Dockerfile templates on the real engine: under either builder, a new MCCL archive leaves the
toolkit and muDNN layers cached."""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
import uuid

import pytest

import vendor
from images import debian12_image, run_in as run
from musa_docker.plan import dockerfile
from musa_docker.musa import kinds
from musa_docker.resources import ASSETS
from templates import rendered


def musa_part(builder: str) -> str:
    """The dev Dockerfile's `builder` rendering up to its MUSA env block: the vendor steps and the
    layers they give."""
    text = rendered("dockerfile.dev", builder)
    return text[:text.index(kinds.ENV_END) + len(kinds.ENV_END)] + "\n"


def context(dockerfile: str, artifacts: dict) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        tar.add(ASSETS / "common", "common")
        for name, path in artifacts.items():
            tar.add(path, f"artifacts/{name}")
    buf.seek(0)
    return buf


def build(engine, builder: str, ref: str, dockerfile: str, artifacts: dict) -> tuple:
    """(the image, the build's output) of an engine build with `builder`: classic through docker-py,
    BuildKit through Debian's docker client (BuildKit built in)."""
    if builder == "buildkit":
        with tarfile.open(fileobj=context(dockerfile, artifacts)) as tar, \
                __import__("tempfile").TemporaryDirectory() as tmp:
            tar.extractall(tmp)
            done = subprocess.run(["/usr/bin/docker", "build", "--progress=plain", "--network=none", "-t", ref,
                                   "--build-arg", f"BASE_IMAGE={debian12_image(engine)}", tmp],
                                  env={"DOCKER_BUILDKIT": "1", "PATH": "/usr/bin:/bin"},
                                  capture_output=True, text=True)
        assert done.returncode == 0, f"building {ref} failed:\n{done.stdout}{done.stderr}"
        return engine.images.get(ref), done.stdout + done.stderr
    import docker.errors
    try:
        image, log = engine.images.build(fileobj=context(dockerfile, artifacts), custom_context=True, tag=ref,
                                         rm=True, forcerm=True, network_mode="none",
                                         buildargs={"BASE_IMAGE": debian12_image(engine)})
    except docker.errors.BuildError as err:
        raise AssertionError(f"building {ref} failed: {err}\n"
                             + "".join(str(c.get("stream", c)) for c in err.build_log)) from err
    return image, "".join(str(chunk.get("stream", "")) for chunk in log)


def cached_steps(builder: str, log: str) -> dict:
    """component -> whether its installer step came from the cache, read from the build's log."""
    found = {}
    if builder == "buildkit":
        names = dict(re.findall(r"(?m)^#(\d+) \[.*install_musa\.sh (\w+) ", log))
        for num, component in names.items():
            found[component] = bool(re.search(rf"(?m)^#{num} CACHED$", log))
    else:
        for step in re.split(r"(?m)^Step \d+/\d+ : ", log):
            m = re.match(r"RUN .*install_musa\.sh (\w+) ", step, re.S)
            if m:
                found[m.group(1)] = "Using cache" in step
    return found


@pytest.mark.engine
@pytest.mark.e2e
@pytest.mark.parametrize("builder", dockerfile.KINDS)
def test_a_new_mccl_archive_reuses_the_toolkit_and_mudnn_layers(engine, tmp_path, builder):
    debian12_image(engine)
    base_layers = engine.images.get(debian12_image(engine)).attrs["RootFS"]["Layers"]
    text = musa_part(builder)
    given = {"musa_toolkits.tar.gz": vendor.musa_toolkits_archive(tmp_path / "v"),
             "mudnn.tar": vendor.mudnn_archive(tmp_path / "v")}
    tag = uuid.uuid4().hex[:8]
    refs = [f"musa-docker-test/mccl-cache:{tag}-1", f"musa-docker-test/mccl-cache:{tag}-2"]
    try:
        first, _ = build(engine, builder, refs[0], text,
                         {**given, "mccl.tar.gz": vendor.mccl_archive(tmp_path / "v1", "1.0.0")})
        # a version no earlier run built, so the engine's cache cannot hold its step
        new = f"1.1.{uuid.uuid4().int % 10**9}"
        second, log = build(engine, builder, refs[1], text,
                            {**given, "mccl.tar.gz": vendor.mccl_archive(tmp_path / "v2", new)})
        one, two = first.attrs["RootFS"]["Layers"], second.attrs["RootFS"]["Layers"]
        n = len(base_layers)
        assert one[:n] == two[:n] == base_layers
        # the MCCL layer is the first that differs: the toolkit's and muDNN's come before it
        differ = next(i for i, (a, b) in enumerate(zip(one, two)) if a != b)
        mccl = n + 2 if builder == "classic" else n + 3     # BuildKit: the installer script's COPY first
        assert differ == mccl, f"layer {differ} differs, the MCCL layer is {mccl}"
        assert cached_steps(builder, log) == {"musa_toolkits": True, "mudnn": True, "mccl": False}
        assert run(engine, refs[1], "mccl_version; musa_toolkits_version; mudnn_version") == \
            f"mccl {new}\nmusa_toolkits 1.0.0\nmudnn 1.0.0"
        assert run(engine, refs[1], "echo $MUSA_HOME; ldconfig -p | grep -c 'libm\\(usart\\|udnn\\|ccl\\)'") == \
            "/usr/local/musa\n3"
        # no archive in the image, nor in any layer of it
        assert run(engine, refs[1], "find / -xdev \\( -name '*.tar.gz' -o -name '*.tar' \\) -print | head -3") == ""
        history = " ".join(str(h.get("CreatedBy")) for h in engine.api.history(refs[1]))
        assert not re.search(r"(COPY|ADD) \S*artifacts", history), history    # no step of the image copied one
    finally:
        for ref in refs:
            try:
                engine.images.remove(ref, force=True)
            except Exception:
                pass
