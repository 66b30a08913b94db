"""The engine path on a real Docker engine, with a tiny busybox image FROM scratch."""

from __future__ import annotations

import io
import uuid

import pytest

from conftest import remove_images
from musa_docker.pipeline import build, context
from musa_docker.pipeline.builddir import BuildDir
from musa_docker.engine.api import Engine
from musa_docker.engine.docker_cli import BuildSettings
from musa_docker.errors import BuildError, EngineError

pytestmark = pytest.mark.engine


def _context(tmp_path, dockerfile: str, files=None):
    bd = BuildDir.acquire(tmp_path / "ctx", tmp_path)
    (tmp_path / "src").mkdir(exist_ok=True)
    staged = {}
    for rel, text in (files or {}).items():
        src = tmp_path / "src" / rel.replace("/", "_")
        src.write_text(text)
        staged[rel] = src
    df = tmp_path / "src" / "Dockerfile"
    df.write_text(dockerfile)
    staged["Dockerfile"] = df
    context.stage(bd, staged, {})
    return context.tar_stream(context.dir_entries(bd.path))


@pytest.fixture(autouse=True)
def _remove_what_the_test_built(engine, busybox):
    """Builds here are untagged by design; remove the images a test left, so runs do not pile up."""
    # ids only, in one call: inspecting each image races with other runs removing theirs
    before = set(engine.api.images(all=True, quiet=True))
    yield
    remove_images(engine, *(set(engine.api.images(all=True, quiet=True)) - before))


def _build(tmp_path, dockerfile, files=None, labels=None, buildargs=None):
    echo = io.StringIO()
    log = build.BuildLog(tmp_path / "logs" / "build.log", echo=echo)
    try:
        built = build.run(
            Engine(), _context(tmp_path, dockerfile, files), log,
            BuildSettings(buildargs=buildargs or {}, labels=labels or {}, network="host"),
        )
    finally:
        log.close()
    return built, echo.getvalue()


def test_build_streams_the_log_to_terminal_and_file_and_sets_labels(tmp_path, busybox, engine):
    marker = uuid.uuid4().hex
    built, shown = _build(
        tmp_path,
        f"FROM {busybox}\nARG WHO\nCOPY hello.txt /hello.txt\nRUN echo \"greeting $WHO {marker}\"\n",
        files={"hello.txt": "hi\n"},
        labels={"musa_docker.kind": "base", "musa_docker.python_version": "3.8"},
        buildargs={"WHO": "musa"},
    )
    assert f"greeting musa {marker}" in shown
    assert f"greeting musa {marker}" in built.log.read_text()
    image = engine.images.get(built.image_id)
    assert image.labels["musa_docker.kind"] == "base"
    assert image.labels["musa_docker.python_version"] == "3.8"
    assert image.tags == []          # build.run never tags: the caller does after the checks


def test_failing_step_names_step_code_last_lines_and_log_and_tags_nothing(tmp_path, busybox, engine):
    tag = f"musa-docker-test/failing:{uuid.uuid4().hex[:8]}"
    before = {i.id for i in engine.images.list(all=True)}
    with pytest.raises(BuildError) as caught:
        _build(tmp_path, f"FROM {busybox}\nRUN echo preparing\nRUN echo 'line one'; echo 'why it broke' >&2; exit 7\n")
    message = str(caught.value)
    assert "RUN echo 'line one'" in message
    assert message.startswith("build step failed (exit code 7): Step 3/3 : RUN")
    assert "\x1b[" not in message and "Removing intermediate container" not in message
    assert "why it broke" in message and "line one" in message
    assert str(tmp_path / "logs" / "build.log") in message
    assert "why it broke" in (tmp_path / "logs" / "build.log").read_text()
    assert not engine.images.list(name=tag)
    # no new tagged image, and the engine removed the failed step's container (forcerm)
    after = [i for i in engine.images.list() if i.id not in before]
    assert all(not i.tags for i in after)


def test_credentials_never_reach_the_log(tmp_path, busybox):
    secret = "s3cr3t-" + uuid.uuid4().hex[:6]
    built, shown = _build(tmp_path, f"FROM {busybox}\nRUN echo fetching https://user:{secret}@example.invalid/x.tar.gz\n")
    assert secret not in shown
    assert secret not in built.log.read_text()


def test_unreachable_engine_names_the_host():
    with pytest.raises(EngineError) as caught:
        Engine("unix:///nonexistent/docker.sock", env={})
    assert "unix:///nonexistent/docker.sock" in str(caught.value)


def test_engine_negotiates_an_api_version_the_engine_speaks():
    engine = Engine(env={})
    major, minor = (int(x) for x in engine.api.api_version.split("."))
    assert (major, minor) >= (1, 41)


def test_a_tree_appended_as_a_layer_keeps_the_images_config_and_history(tmp_path, busybox, engine):
    from musa_docker.pipeline import layers
    built, _ = _build(tmp_path, f"FROM {busybox}\nWORKDIR /home\nRUN echo made > /made\n",
                      labels={"musa_docker.kind": "base"})
    tree = tmp_path / "tree"
    (tree / "third_party" / "fmt").mkdir(parents=True)
    (tree / "third_party" / "fmt" / "core.h").write_text("// fmt core\n")
    (tree / "link").symlink_to("third_party/fmt/core.h")
    tar = context.tree_tar(tree, "pytorch", tmp_path / "cache", lambda _: None, at="home/pytorch")
    eng = Engine()
    image_id = eng.load(layers.load_archive(eng.inspect(built.image_id), eng.history(built.image_id), tar,
                                            context.tar_sha256(tar), "musa-docker: the pytorch tree at /home/pytorch"))
    assert image_id != built.image_id
    out = engine.containers.run(image_id, ["sh", "-c", "pwd; cat /made /home/pytorch/link; ls -ln /home/pytorch/third_party/fmt"],
                                remove=True, network_mode="none").decode()
    assert out.splitlines()[:3] == ["/home", "made", "// fmt core"]
    assert " 0 " in out.splitlines()[-1]                     # owned by root
    loaded = engine.images.get(image_id)
    assert loaded.labels["musa_docker.kind"] == "base"
    old_history = engine.api.history(built.image_id)
    new_history = engine.api.history(image_id)
    assert len(new_history) == len(old_history) + 1
    assert new_history[0]["CreatedBy"] == "musa-docker: the pytorch tree at /home/pytorch"
    assert [h["CreatedBy"] for h in new_history[1:]] == [h["CreatedBy"] for h in old_history]
    assert [h["Size"] for h in new_history[1:]] == [h["Size"] for h in old_history]


def test_a_layer_the_engine_has_on_that_chain_is_not_sent_again(tmp_path, busybox, engine):
    from musa_docker.pipeline import layers
    built, _ = _build(tmp_path, f"FROM {busybox}\nRUN echo once > /once\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "big.bin").write_bytes(b"x" * (1 << 20))
    tar = context.tree_tar(tree, "pytorch", tmp_path / "cache", lambda _: None, at="home/pytorch")
    eng, said = Engine(), []
    first = layers.append(eng, built.image_id, tar, "the tree", said.append)
    assert said == []                                       # new: the layer was sent
    second = layers.append(eng, built.image_id, tar, "the tree", said.append)
    assert said and "nothing sent" in said[0]
    out = engine.containers.run(second, ["sh", "-c", "wc -c < /home/pytorch/big.bin"], remove=True,
                                network_mode="none").decode().strip()
    assert out == str(1 << 20)
    assert engine.images.get(first).attrs["RootFS"]["Layers"] == engine.images.get(second).attrs["RootFS"]["Layers"]


def test_a_tree_appended_to_a_buildkit_image_keeps_its_inline_cache(tmp_path, busybox, engine, env):
    """The engine's BuildKit keeps its cache in the image's config, which inspect does not show:
    the appended image's config is the built one's whole, the layer added."""
    import json
    from musa_docker.engine import docker_cli as client
    from musa_docker.pipeline import layers
    src = tmp_path / "src"
    src.mkdir()
    (src / "Dockerfile").write_text(f"FROM {busybox}\nRUN echo {uuid.uuid4().hex} > /made\n")
    bd = BuildDir.acquire(tmp_path / "ctx", tmp_path)
    context.stage(bd, {"Dockerfile": src / "Dockerfile"}, {})
    log = build.BuildLog(tmp_path / "logs" / "build.log", echo=io.StringIO())
    try:
        built = build.build_context(client.choose("buildkit", "/usr/bin/docker", env), Engine(), bd.path, log,
                                    BuildSettings(labels={"musa_docker.kind": "base"}, network="host"),
                                    say=lambda _: None)
    finally:
        log.close()
    eng, said = Engine(), []
    stored = json.loads(layers.stored_config(eng, built.image_id))
    assert stored.get("moby.buildkit.cache.v0"), sorted(stored)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "README").write_text("tree\n")
    tar = context.tree_tar(tree, "pytorch", tmp_path / "cache", lambda _: None, at="home/pytorch")
    image_id = layers.append(eng, built.image_id, tar, "the tree", said.append, keep_config=True)
    config = json.loads(layers.stored_config(eng, image_id))
    assert config["moby.buildkit.cache.v0"] == stored["moby.buildkit.cache.v0"]
    assert config["rootfs"]["diff_ids"] == stored["rootfs"]["diff_ids"] + [f"sha256:{context.tar_sha256(tar)}"]
    assert config["history"][:-1] == stored["history"] and config["history"][-1]["created_by"] == "the tree"
    assert config["config"]["Labels"]["musa_docker.kind"] == "base"
    out = engine.containers.run(image_id, ["cat", "/home/pytorch/README"], remove=True, network_mode="none")
    assert out.decode() == "tree\n"
