"""BuildKit builds through the docker CLI: choosing the builder, the plan, bad values (the builds
themselves, on the engine, are test_buildkit_engine.py's)."""

from __future__ import annotations

import pytest

from conftest import cli
from musa_docker.engine import docker_cli as client
from musa_docker.errors import ConfigError

DEBIAN_CLI = "/usr/bin/docker"        # Debian's docker.io 20.10: BuildKit built in
NEW_CLI = "/usr/local/bin/docker"     # 28.x without the buildx plugin


def plan_of(env, *args):
    return cli("build-base", "--dry-run", "-i", "musa-docker-test/bk", *args, env=env)


def test_dry_run_shows_the_builder_why_and_the_command_without_reaching_the_engine(env):
    done = plan_of(env, "--docker-cli", DEBIAN_CLI, "--docker-host", "unix:///nonexistent/dead.sock",
                   "--cache-from", "127.0.0.1:5000/cache/base:1")
    assert done.returncode == 0, done.stderr
    assert "builder     buildkit: /usr/bin/docker 20.10" in done.stdout
    assert "has BuildKit built in (DOCKER_BUILDKIT=1)" in done.stdout
    command = next(ln for ln in done.stdout.splitlines() if ln.startswith("  command"))
    assert command.split()[1:5] == ["DOCKER_BUILDKIT=1", DEBIAN_CLI, "--host=unix:///nonexistent/dead.sock", "build"]
    for part in ("--progress=plain", "--build-arg=BUILDKIT_INLINE_CACHE=1", "--build-arg=PYTHON_VERSION=3.8",
                 "--cache-from=127.0.0.1:5000/cache/base:1", "-- '<build dir>'"):
        assert part in command
    assert " -t" not in command and "--tag" not in command


def test_auto_with_a_new_client_without_buildx_falls_back_to_classic_saying_why(env):
    done = plan_of(env, "--docker-cli", NEW_CLI)
    assert done.returncode == 0, done.stderr
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("  builder"))
    assert "classic" in line and "no buildx plugin" in line and "command" not in done.stdout


def test_config_names_the_client_and_the_builder(env, tmp_path):
    (tmp_path / "home" / ".musa_docker.yaml").write_text(f"docker_cli: {DEBIAN_CLI}\nbuilder: buildkit\n")
    done = plan_of(env)
    assert done.returncode == 0, done.stderr
    assert "builder     buildkit" in done.stdout


@pytest.mark.parametrize("args, words", [
    (["--builder", "bogus"], ["--builder 'bogus'", "auto, buildkit, classic"]),
    (["--docker-cli", "/bin/true"], ["/bin/true is not a docker client"]),
    (["--docker-cli", "/nonexistent/docker"], ["no such program"]),
    (["--builder", "buildkit", "--docker-cli", NEW_CLI], ["no buildx plugin", "install the buildx plugin",
                                                          "--docker-cli /usr/bin/docker"]),
    (["--cache-to", "127.0.0.1:5000/c:1", "--docker-cli", DEBIAN_CLI], ["--cache-to", "inline", "--buildx-builder"]),
    (["--buildx-builder", "pool", "--docker-cli", DEBIAN_CLI], ["--buildx-builder pool", "no buildx plugin"]),
    (["--cache-from=--evil"], ["--cache-from '--evil' is not a valid image name"]),
    (["--cache-to", "x/y:1", "--builder", "classic"], ["--cache-to needs BuildKit"]),
])
def test_bad_builder_values_are_one_error_line_before_the_plan(env, args, words):
    done = plan_of(env, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0]


def test_choose_reports_unknown_builder_as_config_error():
    with pytest.raises(ConfigError):
        client.choose("fast", "docker", {})
