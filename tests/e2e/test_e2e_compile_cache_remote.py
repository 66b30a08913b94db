"""The compile cache shared past one engine: ccache's remote storage in Debian's redis-server on
127.0.0.1, the dev image built with it on the engine, then after a one-file change on a second,
fresh engine (no layer cache, no compile cache mount of its own), whose hits all come from the
remote; and a remote that does not answer costs a warning, not the build."""

from __future__ import annotations

import re
import uuid

import pytest

import vendor
from conftest import BUILDERS, cli, remove_images, user_env
from dockerd import free_port
from images import local_pypi
from redisserver import serve_redis

pytestmark = [pytest.mark.engine, pytest.mark.e2e]


@pytest.fixture(scope="module")
def redis():
    """Debian's redis-server on a free port of 127.0.0.1, nothing kept on disk."""
    with serve_redis() as port:
        yield f"redis://127.0.0.1:{port}"


def _label(client, ref):
    return client.images.get(ref).labels.get("musa_docker.compile_cache")


@pytest.mark.parametrize("e2e_base", ["buildkit"], indirect=True)
def test_a_fresh_engine_compiles_from_the_shared_cache(e2e_base, engine, engine2, redis, tmp_path):
    assert e2e_base["first"].returncode == 0, e2e_base["first"].stderr[-2000:]
    env = user_env(tmp_path)
    files = tmp_path / "vendor"
    files.mkdir()
    torch_musa = vendor.torch_musa_repo(tmp_path / "upstream")
    vision = vendor.vision_repo(tmp_path / "upstream")
    tag = uuid.uuid4().hex[:8]
    image = "musa-docker-test/dev-remote"
    args = ["build-dev", "-b", e2e_base["ref"], "-i", image,
            "-m", str(vendor.musa_toolkits_archive(files)), "-n", str(vendor.mudnn_archive(files)),
            "--torch-musa-repo", torch_musa.as_uri(), "--vision-repo", vision.as_uri(),
            "--vision-root", str(tmp_path / "src"), "--gpu-arch", "s4000", *BUILDERS["buildkit"]]
    # the base reaches the second engine as an image would from a registry: its layers, not a build
    engine2.client.api.load_image(engine.api.get_image(e2e_base["ref"]))
    try:
        with local_pypi(tmp_path / "index", vendor.dev_index_wheels("3.11")) as index:
            # engine A, torch_musa at its tag: what it compiles (or finds in its own cache) fills the remote
            first = cli(*args, "-t", tag, "--torch-musa-ref", "v1.0.0", "--pip-index-url", index,
                        "--compile-cache-remote", redis, env=env)
            assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-2000:]
            assert f"compile cache: remote storage {redis}" in first.stdout, first.stdout[-4000:]
            assert re.fullmatch(r"hits=\d+ remote_hits=\d+ misses=\d+", _label(engine, f"{image}:{tag}"))
            # engine B, never used for this: one torch_musa source changed, the rest from the remote
            second = cli(*args, "-t", f"{tag}-b", "--pip-index-url", index, "--docker-host", engine2.sock,
                         "--compile-cache-remote", redis, "--compile-cache-remote-only-read", env=env)
            assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-2000:]
            assert "compiled 4 C++ sources" in second.stdout
            assert f"remote storage {redis}, read only" in second.stdout
            label = _label(engine2.client, f"{image}:{tag}-b")
            hits, remote, misses = map(int, re.fullmatch(r"hits=(\d+) remote_hits=(\d+) misses=(\d+)", label).groups())
            # every unchanged unit came from the remote (the engine had no cache of its own); the
            # changed source is the one miss
            assert remote == hits and hits >= 3 and misses == 1, label
            assert f"compile cache: {label}" in second.stdout
            # a remote that does not answer: a warning, the local cache, an image
            down = f"redis://127.0.0.1:{free_port()}"
            third = cli(*args, "-t", f"{tag}-c", "--pip-index-url", index, "--docker-host", engine2.sock,
                        "--no-cache", "--force", "--compile-cache-remote", down, env=env)
            assert third.returncode == 0, third.stdout[-4000:] + third.stderr[-2000:]
            assert f"warning: compile cache: the remote storage {down} does not answer; local cache only" \
                in third.stdout + third.stderr
            assert re.fullmatch(r"hits=\d+ misses=\d+", _label(engine2.client, f"{image}:{tag}-c"))
    finally:
        remove_images(engine, f"{image}:{tag}")
        remove_images(engine2.client, f"{image}:{tag}-b", f"{image}:{tag}-c", e2e_base["ref"])
