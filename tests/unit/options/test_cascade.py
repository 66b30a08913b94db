"""One cascade for every value: command line > MUSA_DOCKER_<TASK>_<FLAG> > MUSA_DOCKER_<FLAG> >
config file (the task's section, then the top) > the pins file > the default, each value with
its source, the way the plan prints it."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import cli
from musa_docker.errors import ConfigError
from musa_docker.options import cascade

DEV = ("build-dev", "-b", "b:1", "-m", "https://v.example/m.tar.gz", "-n", "https://v.example/n.tar", "--dry-run")


def inputs_of(done) -> dict:
    """The plan's `inputs:` rows: name -> (value, source)."""
    assert done.returncode == 0, done.stderr
    rows, section = {}, None
    for line in done.stdout.splitlines():
        if not line.startswith(" "):
            section = line.rstrip(":")
        elif section == "inputs":
            name, rest = line[2:21].strip(), line[22:]
            value, _, source = rest.rpartition("  (")
            rows[name] = (value, source[:-1])
    return rows


def one_error(done, *words):
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def pins(tmp_path) -> Path:
    path = tmp_path / "pins.yaml"
    path.write_text("repos:\n  vision: {url: https://github.com/pytorch/vision.git, tag: v0.17.0}\n")
    return path


def test_a_flag_equal_to_its_default_still_beats_the_pins_file(env, tmp_path, pins):
    rows = inputs_of(cli(*DEV, "--pins", str(pins), "--vision-tag", "v0.16.0", env=env, cwd=tmp_path))
    assert rows["vision_tag"] == ("v0.16.0", "flag")
    rows = inputs_of(cli(*DEV, "--pins", str(pins), env=env, cwd=tmp_path))
    assert rows["vision_tag"] == ("v0.17.0", f"pins {pins}:2")


def test_each_value_names_its_source(env, tmp_path, pins):
    (tmp_path / "musa_docker.yaml").write_text(
        f"pins: {pins}\nbuild_dev:\n  vision_tag: v0.16.0\n  torch_musa_ref: main\n")
    env = {**env, "MUSA_DOCKER_BUILD_DEV_VISION_REPO": "https://example.com/vision.git"}
    rows = inputs_of(cli(*DEV, env=env, cwd=tmp_path))
    config = tmp_path / "musa_docker.yaml"
    assert rows["vision_tag"] == ("v0.16.0", f"{config}:3")
    assert rows["torch_musa_ref"] == ("main", f"{config}:4")
    assert rows["vision_repo"] == ("https://example.com/vision.git", "env $MUSA_DOCKER_BUILD_DEV_VISION_REPO")
    assert rows["musa_url"] == ("https://v.example/m.tar.gz", "flag")
    assert rows["torch_musa_repo"][1] == "default"


def test_pins_verify_and_any_flag_at_the_top_of_the_config(env, tmp_path, pins):
    (tmp_path / "musa_docker.yaml").write_text(f"pins: {pins}\nverify: true\ngpu_arch: S4000\n")
    rows = inputs_of(cli(*DEV, env=env, cwd=tmp_path))
    assert rows["vision_tag"] == ("v0.17.0", f"pins {pins}:2")
    assert rows["gpu_arch"] == ("mp_22", f"{tmp_path / 'musa_docker.yaml'}:3")


def test_every_flag_from_its_variable(env, tmp_path, pins):
    env = {**env, "MUSA_DOCKER_PINS": str(pins), "MUSA_DOCKER_GPU_ARCH": "S4000"}
    rows = inputs_of(cli(*DEV, env=env, cwd=tmp_path))
    assert rows["vision_tag"] == ("v0.17.0", f"pins {pins}:2")
    assert rows["gpu_arch"] == ("mp_22", "env $MUSA_DOCKER_GPU_ARCH")


@pytest.mark.parametrize("text, words", [
    ("tagg: x\n", [":1:", "unknown key 'tagg'", "did you mean tag?"]),
    ("build_base:\n  image: a\n  pyhton_version: '3.10'\n", [":3:", "'pyhton_version' in build_base",
                                                             "did you mean python_version?"]),
])
def test_an_unknown_key_names_its_line_and_the_closest_real_one(env, tmp_path, text, words):
    (tmp_path / "musa_docker.yaml").write_text(text)
    one_error(cli("build-base", "--dry-run", env=env, cwd=tmp_path), "musa_docker.yaml", *words)


def _file(tmp_path: Path, text: str) -> cascade.ConfigFile:
    path = tmp_path / "musa_docker.yaml"
    path.write_text(text)
    return cascade.load(path)


def test_the_order_of_the_layers(tmp_path):
    files = [_file(tmp_path, "tag: top\nimage: top/img\nbuild_base:\n  tag: section\n")]
    env = {"MUSA_DOCKER_TAG": "env", "MUSA_DOCKER_BUILD_BASE_PYTORCH_TAG": "task-env",
           "MUSA_DOCKER_PYTORCH_TAG": "env", "PYTORCH_REPO_ROOT_PATH": "/old"}
    got = cascade.collect("build-base", {"sys": "debian:12", "tag": None}, env, files)
    assert got.values["sys"] == "debian:12" and got.source("sys") == "flag"
    assert (got.values["tag"], got.source("tag")) == (["env"], "env $MUSA_DOCKER_TAG")
    assert (got.values["pytorch_tag"], got.source("pytorch_tag")) == ("task-env",
                                                                      "env $MUSA_DOCKER_BUILD_BASE_PYTORCH_TAG")
    assert (got.values["image"], got.source("image")) == ("top/img", f"{tmp_path / 'musa_docker.yaml'}:2")
    assert "pytorch_root" not in got.values and got.source("pytorch_root") == "env $PYTORCH_REPO_ROOT_PATH"
    assert got.source("python_version") == "default" and not got.given("python_version")
    without_env = cascade.collect("build-base", {}, {}, files)
    assert (without_env.values["tag"], without_env.source("tag")) == (["section"], f"{tmp_path / 'musa_docker.yaml'}:4")


def test_a_value_of_the_wrong_type_names_its_line(tmp_path):
    files = [_file(tmp_path, "build_base:\n  python_version: 3.10\n")]
    with pytest.raises(ConfigError) as err:
        cascade.collect("build-base", {}, {}, files)
    assert 'python_version: "3.10"' in str(err.value) and f"{tmp_path / 'musa_docker.yaml'}:2" in str(err.value)
