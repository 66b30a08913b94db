"""The tool against an engine that is not the default one: a second dockerd on its own socket,
data root and exec root, also listening on TCP with TLS (client certificates required). What is
built or run through --docker-host / DOCKER_HOST lands there and nowhere else."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path

import docker
import docker.errors
import pytest

from conftest import cli, tar_context
from dockerd import make_certs, start_dockerd, stop_dockerd
from images import busybox_image
from musa_docker.pipeline import build
from musa_docker.check import verify
from musa_docker.engine.api import Engine
from musa_docker.engine.docker_cli import BuildSettings
from musa_docker.errors import EngineError

pytestmark = pytest.mark.engine


@pytest.fixture
def name(engine, engine2):
    value = f"musa-docker-test-{uuid.uuid4().hex[:8]}"
    yield value
    for client in (engine, engine2.client):
        try:
            client.containers.get(value).remove(force=True)
        except docker.errors.NotFound:
            pass


def _has_container(client, name) -> bool:
    try:
        client.containers.get(name)
    except docker.errors.NotFound:
        return False
    return True


def test_a_build_lands_on_the_engine_named_and_nowhere_else(engine2, engine, busybox, tmp_path):
    marker = uuid.uuid4().hex
    remote = Engine(engine2.sock, {})
    log = build.BuildLog(tmp_path / "build.log")
    try:
        built = build.run(
            remote, tar_context(f"FROM {busybox}\nCOPY marker /marker\nRUN cat /marker\n", {"marker": marker}), log,
            BuildSettings(labels={"musa_docker.kind": "base"}, network="host"),
        )
    finally:
        log.close()
    assert marker in built.log.read_text()
    assert remote.image(built.image_id).labels["musa_docker.kind"] == "base"
    assert Engine(None, {"DOCKER_HOST": engine2.sock}).image(built.image_id) is not None
    assert Engine().image(built.image_id) is None


def test_shell_with_the_docker_host_flag_runs_on_that_engine_only(engine2, engine, busybox, name):
    done = cli("shell", "-i", busybox, "--name", name, "--docker-host", engine2.sock, "--no-privileged",
               "--cmd", "echo on-the-second-engine")
    assert done.returncode == 0, done.stderr
    assert "on-the-second-engine" in done.stdout
    assert _has_container(engine2.client, name)
    assert not _has_container(engine, name)


def test_docker_host_in_the_environment_works_as_the_flag_does(engine2, engine, busybox, name):
    env = {**os.environ, "DOCKER_HOST": engine2.sock}
    done = cli("shell", "-i", busybox, "--name", name, "--no-privileged", "--cmd", "echo via-env", env=env)
    assert done.returncode == 0, done.stderr
    assert "via-env" in done.stdout
    assert _has_container(engine2.client, name)
    assert not _has_container(engine, name)


def test_the_flag_wins_over_docker_host(engine2, engine, busybox, name):
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    done = cli("shell", "-i", busybox, "--name", name, "--docker-host", engine2.sock, "--no-privileged",
               "--cmd", "true", env=env)
    assert done.returncode == 0, done.stderr
    assert _has_container(engine2.client, name)


# requests lets these replace the CA a session was given; the tests of TLS itself run without them.
CA_BUNDLE_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture
def no_ca_bundle(monkeypatch):
    for var in CA_BUNDLE_VARS:
        monkeypatch.delenv(var, raising=False)


def test_a_tls_engine_connects_with_docker_tls_verify_and_the_cert_path(engine2, busybox, no_ca_bundle):
    env = {"DOCKER_HOST": engine2.tcp, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(engine2.certs["client"])}
    remote = Engine(env=env)
    assert remote.host.endswith(engine2.tcp.split("://")[1])
    assert remote.image(busybox) is not None
    # the flag names the host; the TLS variables still apply, as with the docker CLI
    assert Engine(engine2.tcp, {k: v for k, v in env.items() if k != "DOCKER_HOST"}).image(busybox) is not None


def test_a_ca_bundle_for_downloads_does_not_replace_the_engines_ca(engine2, busybox, tmp_path, monkeypatch):
    """REQUESTS_CA_BUNDLE (honoured for downloads) names another CA; the engine's TLS CA from
    DOCKER_CERT_PATH must still be the one its certificate is checked against, as with the docker CLI."""
    other = make_certs(tmp_path / "other", "other-ca")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other["ca"]))
    env = {"DOCKER_HOST": engine2.tcp, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(engine2.certs["client"])}
    assert Engine(env=env).image(busybox) is not None


def test_shell_reaches_a_tls_engine_through_the_flag_and_the_tls_variables(engine2, engine, busybox, name):
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", *CA_BUNDLE_VARS)}
    env.update({"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(engine2.certs["client"])})
    done = cli("shell", "-i", busybox, "--name", name, "--docker-host", engine2.tcp, "--no-privileged",
               "--cmd", "echo over-tls", env=env)
    assert done.returncode == 0, done.stderr
    assert "over-tls" in done.stdout
    assert _has_container(engine2.client, name)
    assert not _has_container(engine, name)


def test_a_tls_engine_without_the_certificates_is_one_clear_error_naming_it(engine2, busybox):
    port = engine2.tcp.rsplit(":", 1)[1]
    with pytest.raises(EngineError) as caught:
        Engine(env={"DOCKER_HOST": engine2.tcp})
    assert f"127.0.0.1:{port}" in str(caught.value)

    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    done = cli("shell", "-i", busybox, "--docker-host", engine2.tcp, "--no-privileged", "--cmd", "true", env=env)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert f"127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in done.stderr


def test_a_tls_engine_refuses_a_client_of_another_ca(engine2, tmp_path, no_ca_bundle):
    other = make_certs(tmp_path / "other", "other-ca")
    with pytest.raises(EngineError) as caught:
        Engine(env={"DOCKER_HOST": engine2.tcp, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(other["client"])})
    message = str(caught.value)
    assert engine2.tcp.split("://")[1] in message
    assert "certificate verify failed" in message


def test_verify_host_of_an_engine_whose_mthreads_runtime_is_not_the_default(engine2):
    rows = {c.name: c for c in verify.verify_host(Engine(engine2.sock, {}), io.StringIO(), {"PATH": ""})}
    runtime = rows["MUSA container runtime"]
    assert runtime.status == "fail"
    assert "mthreads is known but the default runtime is runc" in runtime.detail
    assert "mt-container-toolkit" in runtime.detail


def test_verify_image_runs_its_container_with_the_mthreads_runtime_of_that_engine(engine2, busybox):
    out = io.StringIO()
    rows = {c.name: c for c in verify.verify_image(Engine(engine2.sock, {}), busybox, out)}
    assert "runtime mthreads" in out.getvalue()
    assert engine2.sock in out.getvalue()
    assert rows["python runs"].status == "fail"            # the container ran: busybox has no python
    assert not engine2.client.containers.list(all=True)   # and is gone


def test_verify_through_the_cli_with_the_docker_host_flag(engine2, busybox):
    done = cli("verify", "-i", busybox, "--docker-host", engine2.sock)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "python runs" in done.stdout and "`python` does not run" in done.stdout
    assert engine2.sock in done.stdout


@pytest.mark.parametrize("how", ["current context", "DOCKER_CONTEXT"])
def test_a_docker_context_is_honoured_as_the_cli_honours_it(engine2, engine, busybox, name, tmp_path, how):
    config = tmp_path / "docker-config"
    made = subprocess.run(["docker", "--config", str(config), "context", "create", "second",
                           "--docker", f"host={engine2.sock}"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
    env["DOCKER_CONFIG"] = str(config)
    if how == "current context":
        used = subprocess.run(["docker", "--config", str(config), "context", "use", "second"], capture_output=True, text=True)
        assert used.returncode == 0, used.stderr
    else:
        env["DOCKER_CONTEXT"] = "second"
    done = cli("shell", "-i", busybox, "--name", name, "--no-privileged", "--cmd", "echo via-context", env=env)
    assert done.returncode == 0, done.stderr
    assert "via-context" in done.stdout
    assert _has_container(engine2.client, name)
    assert not _has_container(engine, name)


def test_an_unknown_docker_context_is_one_clear_error(busybox, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    env.update(DOCKER_CONFIG=str(tmp_path), DOCKER_CONTEXT="nowhere")
    done = cli("shell", "-i", busybox, "--cmd", "true", env=env)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("error: docker context")
    assert "nowhere" in done.stderr and "Traceback" not in done.stderr


def test_a_build_all_entry_asks_its_own_engine(engine2, engine, busybox, tmp_path):
    """A base present on the default engine but not on the entry's engine is missing for that entry."""
    ref = f"musa-docker-test/only-on-one:{uuid.uuid4().hex[:8]}"
    engine.images.get(busybox).tag(ref)
    try:
        matrix = tmp_path / "matrix.yaml"
        line = f"    base_img: {ref}\n    musa_url: m.tar.gz\n    mudnn_url: n.tar\n"
        matrix.write_text(f"images:\n  - name: remote-dev\n    task: build-dev\n    docker_host: {engine2.sock}\n{line}")
        done = cli("build-all", "-c", str(matrix))
        assert done.returncode == 2
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: {matrix}:2: remote-dev needs base {ref}")
        assert f"nor present on {engine2.sock}" in last
    finally:
        engine.images.remove(ref)


def test_an_engine_killed_mid_build_is_one_error_and_a_rerun_works(tmp_path):
    """The engine dies while a RUN step runs: one error line naming it, nothing tagged, the build
    dir gone; once the engine is back, the same build goes through."""
    from conftest import slow_release, user_env
    root = Path(tempfile.mkdtemp(prefix="md3.", dir="/tmp"))
    proc, client, sock = start_dockerd(root)
    try:
        base = busybox_image(client)
        client.close()
        env = user_env(tmp_path)
        token = uuid.uuid4().hex[:12]
        run, _ = slow_release(tmp_path, env, base, token, 8, "--docker-host", sock)
        os.killpg(proc.pid, signal.SIGKILL)           # the engine and its containerd, at once
        proc.wait()
        stop_dockerd(proc, root)
        out, err = run.communicate(timeout=120)
        assert run.returncode not in (0, None), out
        lines = err.strip().splitlines()
        assert sum(line.startswith("error:") for line in lines) == 1 and "Traceback" not in err, err
        assert lines[-1].startswith(f"error: the Docker engine at {sock}"), err
        builds = tmp_path / "cache" / "builds"
        assert not builds.exists() or list(builds.iterdir()) == []

        proc, client, sock = start_dockerd(root)        # the engine is back, with its data
        assert not client.images.list(name=f"musa-docker-test/slow:{token}")      # nothing tagged
        client.close()
        run, _ = slow_release(tmp_path, env, base, token, 1, "--docker-host", sock)
        out, err = run.communicate(timeout=300)
        # The build goes through on the engine that came back; the stand-in busybox image then
        # fails only the release checks (it has no Python), which a real base passes.
        assert "Successfully built" in out, out + err
        assert "Traceback" not in err and "the Docker engine at" not in err, err
    finally:
        stop_dockerd(proc, root)
        shutil.rmtree(root, ignore_errors=True)
