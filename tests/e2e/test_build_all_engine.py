"""build-all on the real engine: a base neither listed nor present, and a failure that skips only
its dependents."""

from __future__ import annotations

import uuid

import pytest

from conftest import cli, remove_images, user_env
from images import debian12_image, local_pypi


def write(tmp_path, text):
    path = tmp_path / "matrix.yaml"
    path.write_text(text)
    return path


@pytest.mark.engine
def test_a_dev_entry_whose_base_is_neither_listed_nor_present(tmp_path, env, engine):
    path = write(tmp_path, "images:\n  - name: lonely\n    task: build-dev\n    base_img: musa-docker-test/absent:x\n"
                           "    musa_url: m.tar.gz\n    mudnn_url: n.tar\n")
    done = cli("build-all", "-c", str(path), env=env)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: {path}:2: lonely needs base musa-docker-test/absent:x, which is neither listed")


@pytest.mark.engine
@pytest.mark.e2e
def test_one_failure_skips_only_its_dependents(tmp_path, upstream, engine):
    debian12_image(engine)
    tag = uuid.uuid4().hex[:8]
    env = user_env(tmp_path)
    with local_pypi(tmp_path / "index") as index:
        path = write(tmp_path, f"""\
defaults:
  tag: "{tag}"
  pip_index_url: {index}
images:
  - name: good-base
    task: build-base
    image: musa-docker-test/all-base
    sys: debian:12
    python_env: venv
    python_version: "3.11"
    pytorch_repo: {upstream['url']}
    pytorch_root: {tmp_path / 'src'}
  - name: bad-base
    task: build-base
    image: musa-docker-test/all-bad
    sys: debian:12
    python_env: venv
    python_version: "3.8"
  - name: dev-on-bad
    task: build-dev
    image: musa-docker-test/all-dev
    base_img: musa-docker-test/all-bad:{tag}
    musa_url: m.tar.gz
    mudnn_url: n.tar
""")
        done = cli("build-all", "-c", str(path), "--jobs", "2", env=env)
    try:
        assert done.returncode == 1, done.stdout[-3000:] + done.stderr
        lines = done.stdout.splitlines()
        start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["image"] and line.endswith("status"))
        table = lines[start:]
        assert table[0].split() == ["image", "tag", "id", "size", "time", "status"]
        rows = {line.split()[0]: line for line in table[1:]}
        assert rows["musa-docker-test/all-base"].split()[-1] == "built"
        assert " failed: --python-env venv uses debian:12's own Python 3.11" in rows["musa-docker-test/all-bad"]
        # the invalid entry is named with its line on stderr, before anything was built
        assert f"error: {path}:13: bad-base (build-base): --python-env venv uses" in done.stderr
        assert "skipped: bad-base did not build" in rows["musa-docker-test/all-dev"]
        assert engine.images.get(f"musa-docker-test/all-base:{tag}").labels["musa_docker.kind"] == "base"
        assert "[good-base] " in done.stdout               # each entry's lines carry its name
    finally:
        remove_images(engine, f"musa-docker-test/all-base:{tag}")
