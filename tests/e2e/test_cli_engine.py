"""The command line as a user runs it, where the run reaches the engine: a cache dir that cannot be
made or written is one `error:` line."""

from __future__ import annotations

import subprocess

import pytest

from conftest import assert_one_error, cli


@pytest.mark.engine
def test_a_cache_dir_that_cannot_be_made(env, tmp_path, engine):
    (tmp_path / "file").write_text("")
    done = cli("build-base", "--pytorch-root", str(tmp_path / "src"), "--python-env", "venv",
               env={**env, "MUSA_DOCKER_CACHE": str(tmp_path / "file" / "cache")})
    assert_one_error(done, "the cache dir", str(tmp_path / "file" / "cache"), "MUSA_DOCKER_CACHE")


@pytest.fixture
def read_only_dir(tmp_path):
    """A read-only file system (tmpfs mounted ro): root can write anywhere else."""
    point = tmp_path / "ro"
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(point)], capture_output=True, text=True)
    assert done.returncode == 0, f"mounting a read-only tmpfs needs root: {done.stderr}"
    yield point
    subprocess.run(["umount", str(point)], check=True)


@pytest.mark.engine
def test_a_read_only_cache_is_one_error_line(env, tmp_path, read_only_dir, engine):
    done = cli("build-base", "--pytorch-root", str(tmp_path / "src"), "--python-env", "venv",
               env={**env, "MUSA_DOCKER_CACHE": str(read_only_dir / "cache")})
    assert_one_error(done, "the cache dir", "read-only", "MUSA_DOCKER_CACHE")


def test_a_cache_dir_whose_parent_cannot_hold_one(env, tmp_path, engine):
    env = {**env, "MUSA_DOCKER_CACHE": "/proc/musa-docker-cache"}
    r = cli("build-base", "-s", "debian:12", "--python-env", "venv", "--pytorch-root", str(tmp_path / "src"), env=env)
    assert_one_error(r, "/proc/musa-docker-cache", "cannot be made", "MUSA_DOCKER_CACHE")
    assert not (tmp_path / "src").exists()


def test_doctor_on_a_machine_that_builds(env, tmp_path, engine):
    done = cli("doctor", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Docker engine" in done.stdout and " pass " in done.stdout.split("Docker engine", 1)[1].splitlines()[0]
    # BuildKit through the client named, or the exact --docker-cli that has it
    client = done.stdout.split("docker client", 1)[1].splitlines()[0]
    assert " pass " in client or "--docker-cli /usr/bin/docker" in client
    assert done.stdout.rstrip().endswith("a build has what it needs")
