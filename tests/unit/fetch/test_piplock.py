"""What an image takes from the public index, as `lock` asks the host's pip for it: the env's
requirements read from the script that installs them, the platform tags of the OS image, and a real
resolve against a PEP 503 index on 127.0.0.1 (no engine)."""

from __future__ import annotations

import hashlib

import pytest

from images import serve_directory, write_simple_index
from musa_docker.errors import LockError
from musa_docker.fetch import piplock
from vendor import _write_wheel


def test_the_env_requirements_are_the_scripts_and_cmake_only_where_it_is_old():
    assert piplock.env_requirements("debian:12") == ["numpy<2"]
    assert piplock.env_requirements("ubuntu:20.04") == ["numpy<2", "cmake>=3.18"]


def test_the_platform_tags_reach_down_from_the_images_glibc():
    tags = piplock.platforms("ubuntu:22.04", "x86_64")
    assert tags[0] == "manylinux_2_35_x86_64" and "manylinux_2_17_x86_64" in tags
    assert "manylinux_2_36_x86_64" not in tags and "manylinux2014_x86_64" in tags and tags[-1] == "linux_x86_64"


def test_pip_resolves_the_index_files_with_their_sha256_and_leaves_local_files_out(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    dep = _write_wheel(wheels, "depone", "1.2.0", "py3-none-any", {"depone/__init__.py": ""}, summary="dep")
    _write_wheel(wheels, "depone", "1.3.0", "cp38-cp38-manylinux_2_36_x86_64", {"depone/__init__.py": ""},
                 summary="newer, for another glibc")
    local = tmp_path / "local"
    local.mkdir()
    top = _write_wheel(local, "topwheel", "1.0", "py3-none-any", {"topwheel/__init__.py": ""}, summary="top",
                       requires=("depone",))
    write_simple_index(tmp_path / "index", sorted(wheels.iterdir()))
    with serve_directory(tmp_path / "index") as url:
        found = piplock.resolve(url + "simple/", [str(top)], python="3.8",
                                platform_tags=piplock.platforms("ubuntu:20.04", "x86_64"), local=[top])
        with pytest.raises(LockError, match="pip cannot resolve nothere"):
            piplock.resolve(url + "simple/", ["nothere"], python="3.8", platform_tags=["linux_x86_64"])
    assert found == [{"name": "depone", "version": "1.2.0", "filename": dep.name,
                      "url": f"{url}files/{dep.name}", "sha256": hashlib.sha256(dep.read_bytes()).hexdigest()}]


def test_a_dev_image_asks_for_wheel_and_torch_musas_requirements(tmp_path):
    from musa_docker.plan.plan import RepoAction, RepoStep
    (tmp_path / "requirements.txt").write_text("# what torch_musa needs\npackaging>=20\n\n-r other.txt\nPyYAML  # yaml\n")
    step = RepoStep("torch_musa", "https://example.com/torch_musa.git", "v1.0.0", tmp_path, RepoAction.FETCH)

    class Plan:
        repos = (step,)
    assert piplock.dev_requirements(Plan) == ["wheel<0.46", "packaging>=20", "PyYAML"]
