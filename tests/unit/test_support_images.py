"""The test images and the local package index are what the engine and e2e tests stand on: the
index here, the images on the engine in test_support_images_engine.py."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

from images import local_pypi, numpy_wheel, write_simple_index


def test_simple_index_lists_projects_and_links_files_with_their_sha256(tmp_path):
    wheel = tmp_path / "wheels" / "Demo_Pkg-1.0-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"not really a wheel")
    simple = write_simple_index(tmp_path / "index", [wheel])
    assert '<a href="demo-pkg/">' in (simple / "index.html").read_text()
    page = (simple / "demo-pkg" / "index.html").read_text()
    assert "../../files/Demo_Pkg-1.0-py3-none-any.whl#sha256=" in page
    assert (tmp_path / "index" / "files" / wheel.name).read_bytes() == b"not really a wheel"


def test_local_pypi_serves_numpy_to_pip(tmp_path):
    # Only the local index: no pip config files, no PIP_* from the machine running the tests.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    with local_pypi(tmp_path / "index") as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/simple/")
        with urllib.request.urlopen(url + "numpy/") as page:
            assert numpy_wheel().name in page.read().decode()
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--python-version", "3.11", "--platform", "manylinux2014_x86_64",
             "--index-url", url, "-d", str(tmp_path / "got"), "numpy<2"],
            env=env, capture_output=True, text=True,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert [p.name for p in (tmp_path / "got").iterdir()] == [numpy_wheel().name]
