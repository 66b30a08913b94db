"""`shell` on a real engine: container lifecycle, --cmd output and exit codes, env, render gid."""

from __future__ import annotations

import subprocess
import uuid

import docker.errors
import pytest

from conftest import cli as _cli

pytestmark = pytest.mark.engine


def cli(*args, **kwargs):
    """`musa-docker shell` unprivileged: this test host's runtime refuses privileged containers;
    the privileged default is checked on its own below."""
    if args[0] == "shell" and "--no-privileged" not in args:
        args = (*args, "--no-privileged")
    return _cli(*args, **kwargs)


@pytest.fixture
def name(engine):
    value = f"musa-docker-test-{uuid.uuid4().hex[:8]}"
    yield value
    try:
        engine.containers.get(value).remove(force=True)
    except docker.errors.NotFound:
        pass


def test_cmd_streams_output_and_exits_with_the_commands_code(busybox, name):
    done = cli("shell", "-i", busybox, "--name", name, "--cmd", "echo out-line; echo err-line >&2; exit 3")
    assert done.returncode == 3, done.stderr
    assert "out-line" in done.stdout
    assert "err-line" in done.stdout + done.stderr
    assert f"create container {name}" in done.stderr

    ok = cli("shell", "-i", busybox, "--name", name, "--cmd", "true")
    assert ok.returncode == 0, ok.stderr
    assert f"reuse running container {name}" in ok.stderr


def test_stopped_container_is_started_and_reused(busybox, name, engine):
    assert cli("shell", "-i", busybox, "--name", name, "--cmd", "touch /kept").returncode == 0
    engine.containers.get(name).stop(timeout=1)
    done = cli("shell", "-i", busybox, "--name", name, "--cmd", "ls /kept")
    assert done.returncode == 0, done.stderr
    assert f"start stopped container {name}" in done.stderr
    assert "/kept" in done.stdout            # the same container, not a new one


def test_default_env_and_overrides(busybox, name):
    done = cli("shell", "-i", busybox, "--name", name, "-e", "FOO=bar", "--cmd", "env")
    assert done.returncode == 0, done.stderr
    assert "MTHREADS_VISIBLE_DEVICES=all" in done.stdout
    assert "FOO=bar" in done.stdout
    other = f"{name}-b"
    try:
        done = cli("shell", "-i", busybox, "--name", other, "-e", "MTHREADS_VISIBLE_DEVICES=0", "--cmd", "env")
        assert "MTHREADS_VISIBLE_DEVICES=0" in done.stdout
        assert "MTHREADS_VISIBLE_DEVICES=all" not in done.stdout
    finally:
        subprocess.run(["docker", "rm", "-f", other], capture_output=True)


def test_container_has_shm_host_network_and_the_hosts_render_gid(busybox, name, engine, host_render_group):
    assert cli("shell", "-i", busybox, "--name", name, "--shm-size", "1G", "--cmd", "true").returncode == 0
    config = engine.api.inspect_container(name)["HostConfig"]
    assert config["Privileged"] is False
    assert config["ShmSize"] == 1 << 30
    assert str(host_render_group) in (config["GroupAdd"] or [])
    assert config["NetworkMode"] == "host"


def test_privileged_by_default(busybox, name, engine, monkeypatch):
    """Privileged is the default. Where the runtime refuses privileged containers (as on some CI
    hosts), the refusal is one error line and no broken container is left behind."""
    done = _cli("shell", "-i", busybox, "--name", name, "--cmd", "true")
    if done.returncode == 0:
        assert engine.api.inspect_container(name)["HostConfig"]["Privileged"] is True
    else:
        assert done.stderr.splitlines()[-1].startswith("error: starting container ")
        assert "Traceback" not in done.stderr
        with pytest.raises(docker.errors.NotFound):
            engine.containers.get(name)
        made = engine.api.containers(all=True, filters={"name": name})
        assert made == []


def test_name_taken_by_a_container_of_another_image_is_a_clear_error(busybox, name, engine):
    engine.images.get(busybox).tag("musa-docker-test/other", "v1")
    try:
        # same content, different image id: a container of another image
        other = engine.api.build(
            fileobj=__import__("io").BytesIO(b"FROM musa-docker-test/other:v1\nLABEL other=1\n"),
            tag="musa-docker-test/other:v2", rm=True, decode=True,
        )
        list(other)
        engine.containers.create("musa-docker-test/other:v2", command=["sh"], name=name)
        done = cli("shell", "-i", busybox, "--name", name, "--cmd", "true")
        assert done.returncode != 0
        assert done.stderr.strip().splitlines()[-1].startswith("error: container ")
        assert "musa-docker-test/other:v2" in done.stderr and "docker rm -f" in done.stderr
        assert "Traceback" not in done.stderr
        assert engine.containers.get(name).image.tags == ["musa-docker-test/other:v2"]   # left alone
    finally:
        try:
            engine.containers.get(name).remove(force=True)
        except docker.errors.NotFound:
            pass
        for ref in ("musa-docker-test/other:v2", "musa-docker-test/other:v1"):
            engine.images.remove(ref, force=True)


def test_host_checks_run_first_and_print_hints(busybox, name):
    """On a host without the MUSA driver (as this one), shell says what is missing before it starts."""
    done = cli("shell", "-i", busybox, "--name", name, "--cmd", "true")
    assert done.returncode == 0
    hints = [line for line in done.stderr.splitlines() if line.startswith("hint: ")]
    assert any("MUSA driver" in h for h in hints)
    assert done.stderr.index("hint: ") < done.stderr.index(f"create container {name}")


def test_missing_image_is_a_clear_error(name):
    done = cli("shell", "-i", "musa-docker-test/absent:nope", "--name", name, "--cmd", "true")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("error: image musa-docker-test/absent:nope does not exist")
    assert "Traceback" not in done.stderr


def test_interactive_shell_goes_through_the_docker_cli_and_keeps_the_exit_code(busybox, name):
    """Without --cmd, shell opens bash through `docker exec`; with stdin not a terminal (as here),
    bash reads its commands from it."""
    done = cli("shell", "-i", busybox, "--name", name, input="echo from-stdin $MTHREADS_VISIBLE_DEVICES\nexit 4\n")
    assert done.returncode == 4, done.stderr
    assert "from-stdin all" in done.stdout


def test_interactive_shell_without_the_docker_cli_is_a_clear_error(busybox, name, env):
    # the interpreter is started by its absolute path; only `docker` is missing from PATH
    done = cli("shell", "-i", busybox, "--name", name, env={**env, "PATH": "/nonexistent"}, input="")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("error: the interactive shell needs the docker CLI")
