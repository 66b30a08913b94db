"""End to end on another CPU: `build-base` and `release` with `--platform linux/arm64` on this x86_64 machine,
through QEMU user emulation registered with binfmt (scripts/test.sh sets it up), from an arm64 Debian 12 rootfs
made with `debootstrap --arch=arm64`, loaded as an image whose config names arm64. They run on an engine of
their own, where `debian:12` is the arm64 image, so the amd64 `debian:12` of the other tests is never touched.
The release image's vendor libraries are compiled by the arm64 base image's own gcc, its wheels are tagged
linux_aarch64."""

from __future__ import annotations

import io
import uuid

import pytest

import vendor
from conftest import cli, user_env
from dockerd import start_dockerd, stop_dockerd
from images import (NUMPY_REQUIREMENT, debian12_image_archive, download_wheel, load_image_archive,
                    local_pypi)
from musa_docker.check import verify
from musa_docker.engine.api import Engine

pytestmark = [pytest.mark.engine, pytest.mark.e2e]

IMAGE = "musa-docker-test/arm64-base"
RELEASE = "musa-docker-test/arm64-release"


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


@pytest.fixture(scope="module")
def arm64_release(arm64_base, tmp_path_factory):
    assert arm64_base["done"].returncode == 0, "the arm64 base image did not build"
    client, sock, base = arm64_base["client"], arm64_base["sock"], arm64_base["ref"]

    def cc(source, library):
        """gcc of the arm64 base image: an aarch64 shared library."""
        client.containers.run(base, ["gcc", "-shared", "-fPIC", "-O2", "-g0", f"-Wl,-soname,{library.name}",
                                     "-o", f"/w/{library.name}", f"/w/{source.name}"],
                              volumes={str(source.parent): {"bind": "/w", "mode": "rw"}}, remove=True,
                              network_mode="none")

    tmp = tmp_path_factory.mktemp("e2e-arm64-release")
    env = user_env(tmp)
    toolkit, mudnn = vendor.musa_toolkits_archive(tmp / "vendor", cc), vendor.mudnn_archive(tmp / "vendor", cc)
    torch_whl, torch_musa_whl = vendor.fixture_wheels(tmp / "wheels", "3.11", machine="aarch64")
    tag = uuid.uuid4().hex[:8]
    numpy = download_wheel(NUMPY_REQUIREMENT, python_version="3.11", platform="manylinux2014_aarch64")
    with local_pypi(tmp / "index", [numpy]) as index:
        done = cli("release", "--platform", "linux/arm64", "-b", "debian:12", "--python-env", "venv", "-v", "3.11",
                   "-i", RELEASE, "-t", tag, "-m", str(toolkit), "-n", str(mudnn), "--gpu-arch", "S80",
                   "--torch-whl-url", str(torch_whl), "--torch-musa-whl-url", str(torch_musa_whl),
                   "--pip-index-url", index, "--docker-host", sock, "--builder", "buildkit",
                   "--docker-cli", "/usr/bin/docker", "--verify", env=env)
    return {"done": done, "ref": f"{RELEASE}:{tag}", "client": client, "sock": sock}


def test_the_arm64_release_image_builds_and_passes_verify(arm64_release):
    done = arm64_release["done"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "all checks passed" in done.stdout or " fail " not in done.stdout


def test_the_release_image_runs_arm64_wheels_and_libraries(arm64_release):
    client, ref = arm64_release["client"], arm64_release["ref"]
    assert client.api.inspect_image(ref)["Architecture"] == "arm64"
    out = client.containers.run(ref, ["bash", "-c", "uname -m; cd / && for d in torch torch_musa; do "
                                      "grep '^Tag:' /opt/venv/lib/python3.11/site-packages/$d-*.dist-info/WHEEL; done; "
                                      "python -c 'import ctypes, torch_musa; "
                                      "print(ctypes.CDLL(\"libmusart.so\").musart_device_count())'"],
                                remove=True, network_mode="none").decode().split("\n")
    assert out[0] == "aarch64"
    assert out[1:3] == ["Tag: cp311-cp311-linux_aarch64", "Tag: cp311-cp311-linux_aarch64"]
    assert out[3] == "0"


def test_an_amd64_wheel_for_the_arm64_release_is_refused_before_anything_is_fetched(tmp_path):
    torch_whl, torch_musa_whl = vendor.fixture_wheels(tmp_path / "wheels", "3.11", machine="x86_64")
    done = cli("release", "--platform", "linux/arm64", "-b", "debian:12", "--python-env", "venv", "-v", "3.11",
               "-m", "m.tar.gz", "-n", "n.tar", "--torch-whl-url", str(torch_whl),
               "--torch-musa-whl-url", str(torch_musa_whl), "--docker-host", "unix:///nonexistent.sock",
               env=user_env(tmp_path))
    assert done.returncode != 0 and "linux_x86_64" in done.stderr and "linux/arm64" in done.stderr
    assert "download" not in done.stdout
