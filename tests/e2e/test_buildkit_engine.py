"""BuildKit builds through the docker CLI on the real engine: a failing step, the log and labels,
and the inline registry cache reused by a second, empty engine; the classic builder's cache-from."""

from __future__ import annotations

import io
import re
import shutil
import uuid

import pytest
from docker import errors as docker_errors

from musa_docker.pipeline import build, context
from musa_docker.engine import docker_cli as client
from musa_docker.pipeline.context import BuildDir
from musa_docker.engine.api import Engine
from musa_docker.engine.docker_cli import BuildSettings
from musa_docker.errors import BuildError
from registry import serve_registry

DEBIAN_CLI = "/usr/bin/docker"        # Debian's docker.io 20.10: BuildKit built in
BUSYBOX_FILE = "FROM scratch\nCOPY busybox /bin/busybox\n"


def _stage(tmp_path, dockerfile: str) -> BuildDir:
    src = tmp_path / "src"
    src.mkdir(parents=True)
    (src / "Dockerfile").write_text(dockerfile)
    shutil.copy(shutil.which("busybox"), src / "busybox")
    bd = BuildDir.acquire(tmp_path / "ctx", tmp_path)
    context.stage(bd, {"Dockerfile": src / "Dockerfile", "busybox": src / "busybox"}, {})
    return bd


def _build(tmp_path, dockerfile, builder, engine, labels=None):
    bd = _stage(tmp_path, dockerfile)
    echo, said = io.StringIO(), []
    log = build.BuildLog(tmp_path / "logs" / "build.log", echo=echo)
    try:
        built = build.build_context(builder, engine, bd.path, log, BuildSettings(labels=labels or {}, network="host"),
                                    say=said.append)
    finally:
        log.close()
        bd.remove()
    return built, echo.getvalue(), said


def remove(client, *refs):
    for ref in refs:
        try:
            client.images.remove(ref, force=True)
        except docker_errors.NotFound:
            pass


def _builder(env, **given):
    return client.choose("buildkit", DEBIAN_CLI, env, **given)


@pytest.mark.engine
def test_a_failing_run_step_names_the_step_exit_code_last_lines_and_log(tmp_path, env, engine):
    marker = uuid.uuid4().hex
    dockerfile = BUSYBOX_FILE + f'RUN ["/bin/busybox", "sh", "-c", "echo {marker}; echo second; exit 7"]\n'
    with pytest.raises(BuildError) as caught:
        _build(tmp_path, dockerfile, _builder(env), Engine(None, env))
    text = str(caught.value)
    assert "exit code 7" in text
    assert re.search(r"build step failed \(exit code 7\): \[2/2\] RUN", text)
    assert f"    {marker}\n    second" in text
    assert str(tmp_path / "logs" / "build.log") in text
    assert marker in (tmp_path / "logs" / "build.log").read_text()


@pytest.mark.engine
def test_buildkit_build_streams_the_log_labels_the_image_and_tags_nothing(tmp_path, env, engine):
    marker = uuid.uuid4().hex
    dockerfile = BUSYBOX_FILE + f'RUN ["/bin/busybox", "sh", "-c", "echo {marker} > /m"]\n'
    built, echo, said = _build(tmp_path, dockerfile, _builder(env), Engine(None, env), labels={"k": marker})
    try:
        image = engine.images.get(built.image_id)
        assert image.labels["k"] == marker and image.tags == []
        assert "#5 [2/2] RUN" in echo or "[2/2] RUN" in echo
        assert echo in built.log.read_text()
    finally:
        remove(engine, built.image_id)


@pytest.mark.engine
def test_a_missing_cache_from_ref_is_one_warning_and_the_build_goes_on(tmp_path, env, engine):
    with serve_registry(tmp_path / "registry") as registry:
        missing = f"{registry}/musa-docker-test/none:{uuid.uuid4().hex[:8]}"
        dockerfile = BUSYBOX_FILE + f'RUN ["/bin/busybox", "sh", "-c", "echo {uuid.uuid4().hex}"]\n'
        built, _, said = _build(tmp_path, dockerfile, _builder(env, cache_from=(missing,)), Engine(None, env))
    remove(engine, built.image_id)
    warnings = [s for s in said if s.startswith("warning:")]
    assert len(warnings) == 1 and missing in warnings[0]


@pytest.mark.engine
def test_a_second_empty_engine_reuses_every_layer_through_the_inline_cache(tmp_path, env, engine, engine2):
    salt = uuid.uuid4().hex
    dockerfile = BUSYBOX_FILE + "".join(
        f'RUN ["/bin/busybox", "sh", "-c", "echo {salt}-{n}; echo {salt}-{n} > /step{n}"]\n' for n in range(3))
    with serve_registry(tmp_path / "registry") as registry:
        ref = f"{registry}/musa-docker-test/inline-cache:{salt[:8]}"
        first, _, _ = _build(tmp_path / "one", dockerfile, _builder(env), Engine(None, env))
        try:
            engine.images.get(first.image_id).tag(ref)
            for event in engine.api.push(ref, stream=True, decode=True):
                assert "error" not in event, event
            with pytest.raises(docker_errors.NotFound):     # the second engine has never built it
                engine2.client.images.get(first.image_id)
            second, echo, said = _build(tmp_path / "two", dockerfile,
                                        _builder(env, cache_from=(ref,), docker_host=engine2.sock),
                                        Engine(engine2.sock, env))
        finally:
            remove(engine, ref, first.image_id)
    try:
        assert not [s for s in said if s.startswith("warning:")], said
        runs = re.findall(r"^#(\d+) \[\d/\d\] RUN", echo, re.M)
        assert len(runs) == 3
        for step in runs:
            assert f"#{step} CACHED" in echo, echo
        assert salt not in re.sub(r"^#\d+ \[.*$", "", echo, flags=re.M), "a step ran instead of coming from the cache"
    finally:
        remove(engine2.client, second.image_id)


@pytest.mark.engine
def test_the_classic_builder_reuses_a_cache_from_image_and_warns_of_a_missing_one(tmp_path, env, engine):
    salt = uuid.uuid4().hex
    dockerfile = BUSYBOX_FILE + f'RUN ["/bin/busybox", "sh", "-c", "echo {salt}"]\n'
    classic = client.choose("classic", "docker", env, cache_from=("musa-docker-test/none:" + salt[:8],))
    first, _, said = _build(tmp_path / "one", dockerfile, classic, Engine(None, env))
    try:
        assert len([s for s in said if s.startswith("warning:")]) == 1 and salt[:8] in said[0]
        engine.images.get(first.image_id).tag(f"musa-docker-test/cache-from:{salt[:8]}")
        again = client.choose("classic", "docker", env, cache_from=(f"musa-docker-test/cache-from:{salt[:8]}",))
        second, echo, said = _build(tmp_path / "two", dockerfile, again, Engine(None, env))
        assert said == [] and "Using cache" in echo and second.image_id == first.image_id
    finally:
        remove(engine, f"musa-docker-test/cache-from:{salt[:8]}", first.image_id)
