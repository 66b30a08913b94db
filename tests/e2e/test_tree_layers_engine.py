"""Source trees as image layers, end to end through the CLI: a base built by the engine's BuildKit
keeps its inline cache with the PyTorch tree appended, so a fresh engine given the pushed image as
`--cache-from` takes every RUN step from it; and a base built offline from an imported bundle has
the very PyTorch tree layer (same diff id) the online build from the same lock has."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from conftest import BUILDERS, cli, remove_images, user_env
from images import debian12_image, local_pypi
from musa_docker.engine.api import Engine
from musa_docker.pipeline import layers
from registry import serve_registry

pytestmark = [pytest.mark.engine, pytest.mark.e2e]

TREE = "musa-docker: the pytorch tree at /home/pytorch"


def _base_args(image: str, tag: str, root: Path, repo: str, index: str) -> list:
    return ["build-base", "-s", "debian:12", "--python-env", "venv", "-v", "3.11", "-i", image, "-t", tag,
            "--pytorch-root", str(root), "--pytorch-repo", repo, "--pip-index-url", index]


def _run_steps(log: str) -> dict:
    """BuildKit's plain log: step number -> the RUN step it names."""
    return {n: step for n, step in re.findall(r"^#(\d+) (\[[^\]]*\] RUN .*)$", log, re.M)}


def test_a_base_keeps_its_inline_cache_and_a_fresh_engine_takes_every_run_step_from_it(
        tmp_path, upstream, engine, engine2):
    debian = debian12_image(engine)
    # the fresh engine gets the OS image as a registry would give it: the same id, so the same cache keys
    engine2.client.api.load_image(engine.api.get_image(debian))
    (tmp_path / "user").mkdir()
    env = user_env(tmp_path / "user")
    image, tag = "musa-docker-test/base-inline", uuid.uuid4().hex[:8]
    with serve_registry(tmp_path / "registry") as registry, local_pypi(tmp_path / "index") as index:
        args = _base_args(image, tag, tmp_path / "src", upstream["url"], index)
        ref = f"{registry}/{image}:{tag}"
        try:
            first = cli(*args, *BUILDERS["buildkit"], env=env)
            assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
            built = json.loads(layers.stored_config(Engine(), engine.images.get(f"{image}:{tag}").id))
            assert built.get("moby.buildkit.cache.v0"), sorted(built)
            assert built["history"][-1]["created_by"] == TREE
            pushed = cli("push", "-i", f"{image}:{tag}", "--registry", registry, env=env)
            assert pushed.returncode == 0, pushed.stdout[-2000:] + pushed.stderr[-2000:]
            second = cli(*args, *BUILDERS["buildkit"], "--docker-host", engine2.sock, "--cache-from", ref, env=env)
            assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-2000:]
            assert "warning: --cache-from" not in second.stdout
            log = Path(re.search(r"build log: (\S+)", second.stdout).group(1)).read_text()
            runs = _run_steps(log)
            assert runs, log[-3000:]
            ran = [step for n, step in runs.items() if f"#{n} CACHED" not in log]
            assert not ran, f"these RUN steps ran on the fresh engine instead of coming from the cache: {ran}"
            again = engine2.client.api.inspect_image(f"{image}:{tag}")
            # the same layers, the tree appended on top as on the first engine
            assert again["RootFS"]["Layers"] == built["rootfs"]["diff_ids"]
            assert engine2.client.api.history(f"{image}:{tag}")[0]["CreatedBy"] == TREE
            assert json.loads(layers.stored_config(Engine(engine2.sock), again["Id"])).get("moby.buildkit.cache.v0")
        finally:
            remove_images(engine, f"{image}:{tag}", ref)
            remove_images(engine2.client, f"{image}:{tag}")


def _user(root: Path) -> dict:
    root.mkdir()
    return user_env(root)


def test_a_base_built_offline_from_a_bundle_has_the_tree_layer_of_the_online_build(tmp_path, upstream, engine):
    """The same diff id, not only the same files: the layer is the tool's own tar, so its bytes are
    the tool's to fix (file times, owners, modes, order and a .git made from the commits alone),
    and the engine takes its sha256 as the diff id. The RUN steps' layers are not compared: they come
    from apt and pip, which the lock does not make reproducible."""
    image = "musa-docker-test/base-same-tree"
    online_tag, offline_tag = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    common = ["build-base", "-s", "debian:12", "--python-env", "venv", "-v", "3.11", "-i", image,
              "--pytorch-repo", upstream["url"], *BUILDERS["buildkit"]]
    debian12_image(engine)
    online, offline = _user(tmp_path / "online-user"), _user(tmp_path / "offline-user")
    lock = tmp_path / "base.lock.json"
    done = cli("lock", *common, "--pytorch-root", str(tmp_path / "src-online"), "-o", str(lock), env=online)
    assert done.returncode == 0, done.stderr
    made = cli("bundle", "--lock", str(lock), "-o", str(tmp_path / "base.tar"), env=online)
    assert made.returncode == 0, made.stderr
    imported = cli("bundle", "import", str(tmp_path / "base.tar"), env=offline)
    assert imported.returncode == 0, imported.stderr
    try:
        with local_pypi(tmp_path / "index") as index:
            first = cli(*common, "-t", online_tag, "--pytorch-root", str(tmp_path / "src-online"), "--lock", str(lock),
                        "--pip-index-url", index, env=online)
            assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
            second = cli(*common, "-t", offline_tag, "--pytorch-root", str(tmp_path / "src-offline"), "--lock",
                         str(lock), "--offline", "--pip-index-url", index, env=offline)
            assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-2000:]
        assert "from its git bundle" in second.stdout
        got = {tag: engine.api.inspect_image(f"{image}:{tag}") for tag in (online_tag, offline_tag)}
        trees = {tag: got[tag]["RootFS"]["Layers"][-1] for tag in got}
        assert trees[online_tag] == trees[offline_tag]
        assert engine.api.history(f"{image}:{offline_tag}")[0]["CreatedBy"] == TREE
        labels = [got[tag]["Config"]["Labels"]["musa_docker.inputs"] for tag in got]
        assert labels[0] == labels[1]
        # the tree in the image is a checkout at the locked commit, its submodule too
        data = json.loads(lock.read_text())
        files = engine.containers.run(f"{image}:{offline_tag}", ["sh", "-c",
                                      "cat /home/pytorch/.git/HEAD /home/pytorch/third_party/fmt/.git/HEAD; "
                                      "cat /home/pytorch/.git/config"], remove=True, network_mode="none").decode()
        assert files.splitlines()[:2] == [data["repos"][0]["commit"], data["repos"][0]["submodules"][0]["commit"]]
        assert f"url = {upstream['url']}" in files
    finally:
        remove_images(engine, f"{image}:{online_tag}", f"{image}:{offline_tag}")
