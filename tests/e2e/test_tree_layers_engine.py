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


def _tree_files(eng: Engine, ref: str) -> dict:
    """The entries of the layers `_tree_layers` names: step -> path -> (type, mode, uid, gid, mtime,
    link, sha256), from the image's save stream."""
    import hashlib
    import io
    import tarfile
    from musa_docker.util import ChunkReader
    wanted = {diff: step for step, diff in _tree_layers(eng, ref).items()}
    out = {}
    with tarfile.open(fileobj=ChunkReader(eng.saved(eng.inspect(ref)["Id"])), mode="r|") as outer:
        for member in outer:
            if not (member.name.endswith("/layer.tar") and member.isfile()):
                continue
            data = outer.extractfile(member).read()
            step = wanted.get(f"sha256:{hashlib.sha256(data).hexdigest()}")
            if step:
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    out[step] = {e.name: (e.type, e.mode, e.uid, e.gid, e.mtime, e.linkname,
                                          hashlib.sha256(layer.extractfile(e).read()).hexdigest() if e.isfile() else "")
                                 for e in layer}
    return out


def _tree_layers(eng: Engine, ref: str) -> dict:
    """The layers the dev Dockerfile's `ADD torch_musa.tar` and `ADD vision.tar` made: step -> diff id."""
    config = json.loads(layers.stored_config(eng, eng.inspect(ref)["Id"]))
    made = [h for h in config["history"] if not h.get("empty_layer")]
    assert len(made) == len(config["rootfs"]["diff_ids"])
    steps = [(re.search(r"ADD (torch_musa|vision)\.tar ", h.get("created_by", "")), diff)
             for h, diff in zip(made, config["rootfs"]["diff_ids"])]
    return {found.group(1): diff for found, diff in steps if found}


@pytest.mark.parametrize("e2e_base", ["buildkit"], indirect=True)
def test_a_dev_built_offline_on_a_fresh_engine_has_the_tree_layers_of_the_online_build(e2e_base, tmp_path, engine,
                                                                                        engine2):
    """torch_musa and vision reach a dev image through the Dockerfile's ADD of the tool's tar: the
    tool's part, the tar, is the same bytes online and offline; the layer is the builder's, made on
    a fresh engine (no layer cache to hit). It holds the same entries with the same bytes, and every
    entry under the tree has the same header; only the /home dir the ADD changed has the builder's time
    of the change, so the diff ids are not compared."""
    import vendor
    assert e2e_base["first"].returncode == 0, e2e_base["first"].stderr[-2000:]
    engine2.client.api.load_image(engine.api.get_image(e2e_base["ref"]))
    files = tmp_path / "vendor"
    files.mkdir()
    image, online_tag, offline_tag = "musa-docker-test/dev-same-tree", uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    common = ["build-dev", "-b", e2e_base["ref"], "-i", image,
              "-m", str(vendor.musa_toolkits_archive(files)), "-n", str(vendor.mudnn_archive(files)),
              "--torch-musa-repo", vendor.torch_musa_repo(tmp_path / "upstream").as_uri(), "--torch-musa-ref", "v1.0.0",
              "--vision-repo", vendor.vision_repo(tmp_path / "upstream").as_uri(), "--gpu-arch", "s4000",
              *BUILDERS["buildkit"]]
    online, offline = _user(tmp_path / "online-user"), _user(tmp_path / "offline-user")
    lock = tmp_path / "dev.lock.json"
    try:
        with local_pypi(tmp_path / "index", vendor.dev_index_wheels("3.11")) as index:
            done = cli("lock", *common, "--vision-root", str(tmp_path / "src-online"), "--pip-index-url", index,
                       "-o", str(lock), env=online)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
            made = cli("bundle", "--lock", str(lock), "-o", str(tmp_path / "dev.tar"), env=online)
            assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-2000:]
            imported = cli("bundle", "import", str(tmp_path / "dev.tar"), env=offline)
            assert imported.returncode == 0, imported.stdout[-3000:] + imported.stderr[-2000:]
            first = cli(*common, "-t", online_tag, "--vision-root", str(tmp_path / "src-online"), "--lock", str(lock),
                        "--pip-index-url", index, env=online)
            assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
            second = cli(*common, "-t", offline_tag, "--vision-root", str(tmp_path / "src-offline"), "--lock",
                         str(lock), "--offline", "--pip-index-url", index, "--docker-host", engine2.sock, env=offline)
            assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-2000:]
        assert "from its git bundle" in second.stdout
        tars = {user: {t.name.split("-tree-")[0]: t.read_text() for t in (tmp_path / user / "cache" / "trees").glob("*.sha256")}
                for user in ("online-user", "offline-user")}
        assert tars["online-user"] == tars["offline-user"]      # the same tar in both contexts
        here = _tree_files(Engine(), f"{image}:{online_tag}")
        there = _tree_files(Engine(engine2.sock), f"{image}:{offline_tag}")
        assert sorted(here) == sorted(there) == ["torch_musa", "vision"]
        for step in here:
            ours = {path for path in here[step] if path.startswith(f"home/{step}")}
            # what the tar brought: every header field and every byte
            assert {p: here[step][p] for p in ours} == {p: there[step][p] for p in ours}
            # what the builder adds (the /home dir it changed, at the time it changed it): all but the time
            assert sorted(here[step]) == sorted(there[step])
            assert {p: here[step][p][:4] + here[step][p][5:] for p in here[step]} == \
                {p: there[step][p][:4] + there[step][p][5:] for p in there[step]}
    finally:
        remove_images(engine, f"{image}:{online_tag}")
        remove_images(engine2.client, f"{image}:{offline_tag}")
