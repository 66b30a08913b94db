"""Source trees as image layers, end to end through the CLI: a base built by the engine's BuildKit
keeps its inline cache with the PyTorch tree appended, so a fresh engine given the pushed image as
`--cache-from` takes every RUN step from it. (That a tree cloned online and one restored from a
bundle offline enter the images as the same bytes is tested with the offline matrix, in
test_offline_run_engine.py.)"""

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
