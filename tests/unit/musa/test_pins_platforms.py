"""The pins file per platform (`mp_22/linux/arm64` entries over `mp_22`'s) and its compatibility
section (what a host needs for each SDK line), read from files and through the CLI's dry run, with
examples/pins-musa-5.2.yaml as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import assert_one_error, cli
from musa_docker.errors import ConfigError
from musa_docker.musa import pins as pins_mod

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "pins-musa-5.2.yaml"
SOURCE = "deb [trusted=yes] https://repo.example.com/musa/ubuntu2204/ jammy main"
INDEX = "https://musa-pypi.example.com/simple"

PER_PLATFORM = """\
artifacts:
  S4000:
    musa_toolkits: {url: https://v.example/x86/musa_toolkits_rc5.2.0.tar.gz}
    mudnn: {url: https://v.example/mudnn.tar}
  M1000/linux/arm64:
    musa_toolkits: {url: https://v.example/arm/musa_toolkits_rc5.2.0.tar.gz}
wheels:
  mp_22:
    "3.10":
      torch: https://v.example/torch-2.11.0+musa5.2.0-cp310-cp310-linux_x86_64.whl
  mp_22/linux/arm64:
    "3.10":
      torch: https://v.example/torch-2.11.0+musa5.2.0-cp310-cp310-linux_aarch64.whl
"""


def write(tmp_path, text) -> Path:
    path = tmp_path / "pins.yaml"
    path.write_text(text)
    return path


def test_a_platforms_entries_go_over_the_archs_own_name_by_name(tmp_path):
    pins = pins_mod.load(write(tmp_path, PER_PLATFORM))
    assert set(pins.artifacts) == {"mp_22", "mp_22/linux/arm64"}
    arm = pins.for_platform("linux/arm64")
    assert set(arm.artifacts) == {"mp_22"}
    assert arm.artifacts["mp_22"]["musa_toolkits"].url.value.startswith("https://v.example/arm/")
    assert arm.artifacts["mp_22"]["mudnn"].url.value == "https://v.example/mudnn.tar"     # the arch's own
    assert arm.wheels["mp_22"]["3.10"]["torch"].value.value.endswith("linux_aarch64.whl")
    amd = pins.for_platform("linux/amd64")
    assert amd.artifacts["mp_22"]["musa_toolkits"].url.value.startswith("https://v.example/x86/")
    assert amd.wheels["mp_22"]["3.10"]["torch"].value.value.endswith("linux_x86_64.whl")


@pytest.mark.parametrize("text, line, words", [
    ("wheels:\n  mp_22/linux/riscv64:\n    '3.10': {torch: 'torch==1'}\n", 2, ("linux/riscv64", "linux/arm64")),
    ("artifacts:\n  mp_22/linux/arm64: {}\n  S4000/arm64: {}\n", 3, ("same arch",)),
    ("compatibility:\n  5.10: {driver: '3.0.0'}\n", 2, ("quoted", "5.10")),
    ("compatibility:\n  '5.2': {driver: 'new'}\n", 2, ("not a version",)),
    ("compatibility:\n  '5.2': {kernel: '6.1'}\n", 2, ("unknown key 'kernel'", "driver, container_toolkit")),
])
def test_bad_platform_keys_and_compatibility_name_their_line(tmp_path, text, line, words):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        pins_mod.load(path)
    assert f"{path}:{line}:" in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_the_compatibility_section_names_what_each_line_needs(tmp_path):
    pins = pins_mod.load(write(tmp_path, "compatibility:\n  '5.2': {driver: '3.0.0', container_toolkit: '2.0.0'}\n"))
    assert {k: p.value for k, p in pins.needs("5.2").items()} == {"driver": "3.0.0", "container_toolkit": "2.0.0"}
    assert pins.needs("5.1") == {}


def plan(env, *args):
    done = cli("release", "--dry-run", "-b", "ubuntu:22.04", "-v", "3.10", "--pins", str(EXAMPLE),
               "--musa-apt-source", SOURCE, "--musa-pip-index-url", INDEX, *args, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_example_for_sdk_5_2_plans_for_each_platform(env):
    arm = plan(env, "--platform", "linux/arm64", "--gpu-arch", "M1000")
    assert "MUSA_WHEELS=torch==2.11.0.post2+musa5.2.0 torch_musa==2.11.0+musa5.2.1mp22" in arm
    assert "musa-musart-5-2=<resolved at prepare>" in arm and "mccl-s4000=<resolved at prepare>" in arm
    assert "mtcc-5-2" not in arm                        # a release has no compiler
    assert "Miniforge3-Linux-aarch64.sh" in arm
    amd = plan(env, "--platform", "linux/amd64", "--gpu-arch", "S4000")
    assert "MUSA_WHEELS=torch==2.11.0.post2+musa5.2.0 torch_musa==2.11.0+musa5.2.0" in amd
    for text in (arm, amd):
        assert "  label       musa_docker.sdk_line=5.2" in text
        assert "  label       musa_docker.needs.driver=3.0.0" in text
        assert "  label       musa_docker.needs.container_toolkit=2.0.0" in text


def test_the_example_refuses_a_wheel_of_another_line(env):
    done = cli("release", "--dry-run", "-b", "ubuntu:22.04", "-v", "3.10", "--pins", str(EXAMPLE), "--gpu-arch",
               "S5000", "--musa-apt-source", SOURCE, "--musa-pip-index-url", INDEX,
               "--musa-wheel", "torch_musa==2.9.1+musa5.1.0", env=env)
    assert_one_error(done, "--musa-wheel torch_musa==2.9.1+musa5.1.0", "versions.musa 5.2.0")


def test_the_pins_task_shows_a_platforms_entries_and_the_file_as_that_platform_reads_it(env):
    every = cli("pins", "--pins", str(EXAMPLE), env=env)
    assert every.returncode == 0, every.stderr
    assert "wheels: mp_22 (qy2: S4000/M1000) on linux/arm64, Python 3.10" in every.stdout
    arm = cli("pins", "--pins", str(EXAMPLE), "--gpu-arch", "mp_22", "--platform", "linux/arm64", env=env)
    assert arm.returncode == 0, arm.stderr
    assert "on linux/arm64" not in arm.stdout
    assert "torch_musa==2.11.0+musa5.2.1mp22" in arm.stdout and "torch==2.11.0.post2+musa5.2.0" in arm.stdout
