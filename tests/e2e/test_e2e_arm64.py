"""End to end on another CPU: `build-base --platform linux/arm64` on this x86_64 machine, through QEMU user
emulation registered with binfmt (scripts/test.sh sets it up), from an arm64 Debian 12 rootfs made with
`debootstrap --arch=arm64`, loaded as an image whose config names arm64. It runs on an engine of its own,
where `debian:12` is the arm64 image, so the amd64 `debian:12` of the other tests is never touched."""

from __future__ import annotations

import io
import uuid

import pytest

from conftest import cli, user_env
from dockerd import start_dockerd, stop_dockerd
from images import (NUMPY_REQUIREMENT, debian12_image_archive, download_wheel, load_image_archive,
                    local_pypi)
from musa_docker.check import verify
from musa_docker.engine.api import Engine

pytestmark = [pytest.mark.engine, pytest.mark.e2e]

IMAGE = "musa-docker-test/arm64-base"


@pytest.fixture(scope="module")
def arm64_engine(tmp_path_factory, engine):
    """An engine of its own whose `debian:12` is arm64."""
    root = tmp_path_factory.mktemp("arm64-engine", numbered=True)
    proc, client, sock = start_dockerd(root)
    try:
        load_image_archive(client, debian12_image_archive("arm64"), "debian:12")
        yield client, sock
    finally:
        client.close()
        stop_dockerd(proc, root)


@pytest.fixture(scope="module")
def arm64_base(arm64_engine, tmp_path_factory, upstream):
    client, sock = arm64_engine
    tmp = tmp_path_factory.mktemp("e2e-arm64")
    env = user_env(tmp)
    tag = uuid.uuid4().hex[:8]
    numpy = download_wheel(NUMPY_REQUIREMENT, python_version="3.11", platform="manylinux2014_aarch64")
    with local_pypi(tmp / "index", [numpy]) as index:
        done = cli("build-base", "--platform", "linux/arm64", "-s", "debian:12", "--python-env", "venv", "-v", "3.11",
                   "-i", IMAGE, "-t", tag, "--pytorch-root", str(tmp / "src"), "--pytorch-repo", upstream["url"],
                   "--pip-index-url", index, "--docker-host", sock, "--builder", "buildkit",
                   "--docker-cli", "/usr/bin/docker", "--verify", env=env)
    return {"done": done, "ref": f"{IMAGE}:{tag}", "sock": sock, "client": client}


def test_the_arm64_base_image_builds_and_passes_verify(arm64_base):
    done = arm64_base["done"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "platform    linux/arm64" in done.stdout or "linux/arm64" in done.stdout
    lines = done.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.split()[:3] == ["check", "status", "detail"]):]
    assert any(line.startswith("platform") and "pass" in line and "through QEMU" in line for line in table), table


def test_the_image_is_arm64_inside_and_out(arm64_base):
    client, ref = arm64_base["client"], arm64_base["ref"]
    inspected = client.api.inspect_image(ref)
    assert inspected["Architecture"] == "arm64"
    assert inspected["Config"]["Labels"]["musa_docker.platform"] == "linux/arm64"
    out = client.containers.run(ref, ["bash", "-c", "uname -m; python -c 'import numpy, sysconfig; "
                                      "print(sysconfig.get_platform()); print(numpy.__file__)'"],
                                remove=True, network_mode="none").decode().split()
    assert out[0] == "aarch64"
    assert out[1] == "linux-aarch64"
    assert "numpy" in out[2]


def test_verify_names_the_platform_of_the_image(arm64_base):
    rows = {c.name: c for c in verify.verify_image(Engine(arm64_base["sock"], {}), arm64_base["ref"], io.StringIO())}
    assert rows["platform"].status == verify.PASS
    assert rows["platform"].detail.startswith("linux/arm64 (label musa_docker.platform)")
