"""The host meets the image, on a real engine: an image whose labels say its SDK line needs driver 3.0.0,
and this host's driver as a real `mthreads-gmi` program on PATH reports it (a stand-in printing what the
vendor's tool prints: this machine has no MUSA driver). `verify -i` gives a failing row, `shell` one
`error:` line before any container starts, `doctor --pins` a warning, each naming both versions."""

from __future__ import annotations

import os
import uuid

import docker.errors
import pytest

from conftest import assert_one_error, cli, remove_images, tar_context, user_env

pytestmark = pytest.mark.engine

GMI_Q = "Driver Version                  : {driver}\nAttached GPUs                   : 1\n" \
        "GPU 00000000:3B:00.0\n    Product Name                : MTT S4000\n"


@pytest.fixture(scope="module")
def image(engine, busybox):
    ref = f"musa-docker-test/host-fit:{uuid.uuid4().hex[:8]}"
    dockerfile = (f"FROM {busybox}\nLABEL musa_docker.kind=unknown-kind musa_docker.sdk_line=5.2 "
                  "musa_docker.needs.driver=3.0.0\n")
    engine.images.build(fileobj=tar_context(dockerfile, {}), custom_context=True, tag=ref, rm=True)
    yield ref
    remove_images(engine, ref)


def host_env(tmp_path, driver: str) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gmi = bin_dir / "mthreads-gmi"
    gmi.write_text(f"#!/bin/sh\ncat <<'EOF'\n{GMI_Q.format(driver=driver)}EOF\n")
    gmi.chmod(0o755)
    env = user_env(tmp_path)
    env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    return env


def rows_of(stdout: str) -> dict:
    return {line.split("  ")[0]: line for line in stdout.splitlines() if line.startswith("host ")}


def test_verify_says_the_hosts_driver_is_too_old_for_the_image(image, tmp_path):
    done = cli("verify", "-i", image, env=host_env(tmp_path, "2.7.0"))
    assert done.returncode == 1, done.stdout + done.stderr
    row = rows_of(done.stdout)["host MUSA driver"]
    assert " fail " in row
    assert "this host's MUSA driver 2.7.0 is older than the 3.0.0 the image's SDK 5.2 needs" in row
    assert "upgrade the MUSA driver" in row


def test_verify_passes_a_new_enough_driver_and_takes_the_pins_files_minimum(image, tmp_path):
    env = host_env(tmp_path, "3.1.0")
    done = cli("verify", "-i", image, env=env)
    assert " pass " in rows_of(done.stdout)["host MUSA driver"], done.stdout
    pins = tmp_path / "pins.yaml"
    pins.write_text("compatibility:\n  '5.2': {driver: '3.5.0'}\n")
    done = cli("verify", "-i", image, "--pins", str(pins), env=env)
    row = rows_of(done.stdout)["host MUSA driver"]
    assert " fail " in row and f"3.5.0 the image's SDK 5.2 needs (pins {pins}:2)" in row


def test_shell_refuses_a_host_too_old_before_any_container_starts(image, tmp_path, engine):
    name = f"musa-docker-test-{uuid.uuid4().hex[:8]}"
    done = cli("shell", "-i", image, "--name", name, "--no-privileged", "--cmd", "true",
               env=host_env(tmp_path, "2.7.0"))
    assert_one_error(done, "MUSA driver 2.7.0 is older than the 3.0.0", "SDK 5.2", "upgrade the MUSA driver")
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(name)


def test_doctor_names_the_sdk_lines_this_host_cannot_run(tmp_path):
    pins = tmp_path / "pins.yaml"
    pins.write_text("compatibility:\n  '5.1': {driver: '2.5.0'}\n  '5.2': {driver: '3.0.0'}\n")
    done = cli("doctor", "--pins", str(pins), env=host_env(tmp_path, "2.7.0"))
    lines = {line.split("  ")[0]: line for line in done.stdout.splitlines()}
    assert "MUSA driver 2.7.0" in lines["MUSA versions (shell)"]
    assert " pass " in lines["SDK 5.1 on this host (shell)"]
    assert " warn " in lines["SDK 5.2 on this host (shell)"]
    assert "older than the 3.0.0" in lines["SDK 5.2 on this host (shell)"]
