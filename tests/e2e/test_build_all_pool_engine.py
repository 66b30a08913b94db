"""build-all over a pool of two engines (and one that is gone): base -> dev -> release placed by
label, the base handed to the other engine through Debian's docker-registry on 127.0.0.1, and
the summary saying where each entry was built."""

from __future__ import annotations

import json
import re
import uuid

import pytest

import vendor
from conftest import cli, remove_images, user_env
from images import debian12_image, local_pypi
from registry import serve_registry

pytestmark = [pytest.mark.engine, pytest.mark.e2e]


def test_a_matrix_over_a_pool_of_engines(tmp_path, upstream, engine, engine2):
    debian12_image(engine)
    tag = uuid.uuid4().hex[:8]
    env = user_env(tmp_path)
    files = tmp_path / "vendor"
    files.mkdir()
    musa, mudnn = vendor.musa_toolkits_archive(files), vendor.mudnn_archive(files)
    torch_whl, torch_musa_whl = vendor.fixture_wheels(files, "3.11")
    torch_musa, vision = vendor.torch_musa_repo(tmp_path / "upstream"), vendor.vision_repo(tmp_path / "upstream")
    gone = f"unix://{tmp_path}/gone/d.sock"
    wheels = vendor.dev_index_wheels("3.11") + vendor.release_index_wheels("3.11")
    with serve_registry(tmp_path / "registry") as registry, local_pypi(tmp_path / "index", wheels) as index:
        path = tmp_path / "pool.yaml"
        path.write_text(f"""\
registry: {registry}
defaults:
  tag: "{tag}"
  pip_index_url: {index}
  builder: buildkit
  docker_cli: /usr/bin/docker
engines:
  - {{name: gone, docker_host: "{gone}", labels: {{role: base}}}}
  - {{name: a, docker_host: "unix:///var/run/docker.sock", jobs: 2, labels: {{role: base}}}}
  - {{name: b, docker_host: "{engine2.sock}", labels: {{gpu: true}}}}
images:
  - name: base
    task: build-base
    image: musa-docker-test/pool-base
    sys: debian:12
    python_env: venv
    python_version: "3.11"
    pytorch_repo: {upstream['url']}
    pytorch_root: {tmp_path / 'src'}
    labels: {{role: base}}
  - name: dev
    task: build-dev
    image: musa-docker-test/pool-dev
    base_img: musa-docker-test/pool-base:{tag}
    musa_url: {musa}
    mudnn_url: {mudnn}
    torch_musa_repo: {torch_musa.as_uri()}
    vision_repo: {vision.as_uri()}
    vision_root: {tmp_path / 'src'}
    gpu_arch: s4000
    labels: {{gpu: true}}
  - name: rel
    task: release
    image: musa-docker-test/pool-release
    base_img: debian:12
    python_env: venv
    python_version: "3.11"
    musa_url: {musa}
    mudnn_url: {mudnn}
    torch_whl_url: {torch_whl}
    torch_musa_whl_url: {torch_musa_whl}
    gpu_arch: S80
    labels: {{role: base}}
""")
        dry = cli("build-all", "-c", str(path), "--dry-run", "--jobs", "2", env=env)
        metadata = tmp_path / "out" / "build-all.json"
        done = cli("build-all", "-c", str(path), "--jobs", "2", "--metadata-file", str(metadata), env=env)
    try:
        assert dry.returncode == 0, dry.stderr
        assert f"musa-docker-test/pool-dev:{tag} on b (wants gpu=true)  (after base; its base through {registry})" \
            in dry.stdout
        assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
        assert f"engine gone ({gone}) does not answer: marked down, its entries go to the other engines" in done.stdout
        assert f"pushed {registry}/musa-docker-test/pool-base:{tag} digest sha256:" in done.stdout
        lines = done.stdout.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("image ") and line.endswith("status"))
        assert re.split(r"\s{2,}", lines[start]) == ["image", "tag", "id", "size", "time", "engine", "compile cache",
                                                      "status"]
        rows = {row[0]: row for row in (re.split(r"\s{2,}", line) for line in lines[start + 1:])}
        assert rows["musa-docker-test/pool-base"][5] == "a" and rows["musa-docker-test/pool-release"][5] == "a"
        assert rows["musa-docker-test/pool-dev"][5] == "b" and rows["musa-docker-test/pool-dev"][6].startswith("hits=")
        assert all(row[-1] == "built" for row in rows.values()), rows
        # --metadata-file: the same, as JSON
        images = {i["name"]: i for i in json.loads(metadata.read_text())["images"]}
        assert {n: (i["engine"], i["result"]) for n, i in images.items()} == {
            "base": ("a", "built"), "dev": ("b", "built"), "rel": ("a", "built")}
        assert images["dev"]["compile_cache"].startswith("hits=") and images["dev"]["image_id"].startswith("sha256:")
        # the dev image was built on b, from the base pulled there by digest
        labels = engine2.client.images.get(f"musa-docker-test/pool-dev:{tag}").labels
        assert labels["musa_docker.base_image"].startswith(f"{registry}/musa-docker-test/pool-base@sha256:")
        assert engine.images.get(f"musa-docker-test/pool-release:{tag}").labels["musa_docker.kind"] == "release"
    finally:
        remove_images(engine, f"musa-docker-test/pool-base:{tag}", f"{registry}/musa-docker-test/pool-base:{tag}",
                      f"musa-docker-test/pool-release:{tag}")
        remove_images(engine2.client, f"musa-docker-test/pool-dev:{tag}")
