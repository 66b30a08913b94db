"""docker/build_base.sh and docker/build.sh: the old scripts' flags, as they were spelled,
reach the tasks (seen through the plan each task prints with --dry-run)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import REPO


def shim(script, *args, env=None):
    return subprocess.run(["bash", str(REPO / "docker" / script), *args], capture_output=True, text=True,
                          env=env, cwd="/")


def test_build_base_long_flags(env):
    done = shim("build_base.sh", "--image_docker_name", "old/base", "--tag", "t1", "--sys", "ubuntu:22.04",
                "--python_version", "3.10", "--", "--dry-run", env=env)
    assert done.returncode == 0, done.stderr
    assert "plan: base image old/base:t1 (python 3.10)" in done.stdout
    assert "build arg   BASE_IMAGE=ubuntu:22.04" in done.stdout
    assert "build arg   PYTHON_VERSION=3.10" in done.stdout       # the old script ignored it


def test_build_base_short_flags_and_old_env_vars(env, tmp_path):
    env = {**env, "PYTORCH_REPO_ROOT_PATH": str(tmp_path / "src"), "DOCKER_BUILD_DIR": str(tmp_path / "ctx")}
    done = shim("build_base.sh", "-i", "b", "-t", "t2", "-s", "debian:12", "-v", "3.9", "--", "--dry-run", env=env)
    assert done.returncode == 0, done.stderr
    assert "plan: base image b:t2 (python 3.9)" in done.stdout
    assert f"-> {tmp_path / 'src' / 'pytorch'}" in done.stdout
    assert f"context: {tmp_path / 'ctx'}" in done.stdout
    assert not (tmp_path / "ctx").exists() and not (tmp_path / "src").exists()


def test_build_base_help_and_unknown_flag():
    assert "--python_version" in shim("build_base.sh", "-h").stdout
    bad = shim("build_base.sh", "--python-version", "3.8")
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown option --python-version")


def test_build_sh_dev(env):
    done = shim("build.sh", "-i", "d", "-t", "t3", "-b", "base:1", "-m", "https://h.example/musa.tar.gz",
                "-n", "https://h.example/mudnn.tar", "--mccl_url", "https://h.example/mccl.tar.gz",
                "--", "--dry-run", env=env)
    assert done.returncode == 0, done.stderr
    assert "plan: dev image d:t3" in done.stdout
    assert "build arg   BASE_IMAGE=base:1" in done.stdout
    for name in ("musa_toolkits", "mudnn", "mccl"):
        assert f"fetch   {name} https://h.example/" in done.stdout


def test_build_sh_release_long_flags(env):
    done = shim("build.sh", "--release", "--image_docker_name", "r", "--tag", "t4", "--base_img", "ubuntu:22.04",
                "--python_version", "3.10", "--musa_toolkits_url", "https://h.example/musa.tar.gz",
                "--mudnn_url", "https://h.example/mudnn.tar",
                "--torch_whl_url", "https://h.example/torch-2.0.0-cp310-cp310-linux_x86_64.whl",
                "--torch_musa_whl_url", "https://h.example/torch_musa-1.0-cp310-cp310-linux_x86_64.whl",
                "--", "--dry-run", env=env)
    assert done.returncode == 0, done.stderr
    assert "plan: release image r:t4 (python 3.10)" in done.stdout
    assert "build arg   BASE_IMAGE=ubuntu:22.04" in done.stdout
    assert "torch-2.0.0-cp310-cp310-linux_x86_64.whl" in done.stdout


def test_build_sh_wheels_without_release_is_an_error(env):
    done = shim("build.sh", "-b", "base:1", "-m", "m.tar.gz", "-n", "n.tar", "--torch_whl_url", "t.whl", env=env)
    assert done.returncode == 2
    assert "go with -r/--release" in done.stderr


def test_docker_dir_holds_no_python():
    # A .py there would shadow the Docker SDK when invoke puts the repo root on sys.path.
    assert not list((REPO / "docker").glob("*.py"))
    assert not (REPO / "docker" / "__init__.py").exists()


@pytest.mark.parametrize("script, args", [("build_base.sh", ["-t"]), ("build.sh", ["-i", "d", "-m"]),
                                          ("build.sh", ["--mccl_url", ""])])
def test_a_flag_missing_its_value_is_one_error_line(script, args):
    done = shim(script, *args)
    assert done.returncode == 2
    assert done.stderr == f"error: {args[-2] if args[-1] == '' else args[-1]} needs a value (see {script} --help)\n"


def _fake_python(bin_dir, name, target=None):
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\nexec {target} \"$@\"\n" if target else "#!/bin/sh\nexit 1\n")
    path.chmod(0o755)


def test_the_shims_find_a_python_that_can_run_the_tasks(env, tmp_path):
    # python3 on PATH cannot import the project (a venv not activated); the next candidate can.
    _fake_python(tmp_path / "bin", "python3")
    _fake_python(tmp_path / "bin", "python", sys.executable)
    path = f"{tmp_path / 'bin'}:/usr/bin:/bin"
    done = shim("build_base.sh", "--", "--dry-run", env={**env, "PATH": path})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("plan: base image")


def test_the_shims_say_when_no_python_can_run_the_tasks(env, tmp_path):
    for name in ("python3", "python"):
        _fake_python(tmp_path / "bin", name)
    # the shims from a checkout without a .venv (a developer's checkout may have one that works)
    shutil.copytree(REPO / "docker", tmp_path / "checkout" / "docker")
    done = subprocess.run(["bash", str(tmp_path / "checkout" / "docker" / "build.sh"), "-b", "b:1"],
                          capture_output=True, text=True, cwd="/",
                          env={**env, "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin"})
    assert done.returncode == 127
    assert done.stderr.startswith("error: no Python can run musa_docker; tried: python3 (no musa_docker dependencies)")
    assert "PYTHON=" in done.stderr and "Traceback" not in done.stderr
