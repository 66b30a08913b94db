"""--platform: which CPU an image is for, where that came from, and what follows from it (the conda
installer, the wheels' platform tags, the build's platform, the label), through the options and
the CLI's dry run."""

from __future__ import annotations

import platform as host

import pytest

from conftest import assert_one_error, cli
from musa_docker.errors import ArtifactError, ConfigError
from musa_docker.options import build as opts
from musa_docker.plan import plan as plans
from musa_docker.values import platforms
from musa_docker.values.wheelname import wheel_dist

ARM_TORCH = "https://wheels.example/torch-2.11.0-cp310-cp310-linux_aarch64.whl"
ARM_TORCH_MUSA = "https://wheels.example/torch_musa-2.11.0-cp310-cp310-linux_aarch64.whl"
X86_TORCH = "https://wheels.example/torch-2.11.0-cp310-cp310-manylinux_2_28_x86_64.whl"
X86_TORCH_MUSA = "https://wheels.example/torch_musa-2.11.0-cp310-cp310-linux_x86_64.whl"


@pytest.fixture
def home_env(tmp_path):
    return {"HOME": str(tmp_path / "home")}


def release(env, machine=None, **values):
    values = {"musa_url": "m.tar.gz", "mudnn_url": "n.tar", "python_version": "3.10", **values}
    return opts.resolve_release(values, env, machine=machine)


# --- the values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("given, name", [("linux/amd64", "linux/amd64"), ("linux/arm64", "linux/arm64"),
                                         ("arm64", "linux/arm64"), ("aarch64", "linux/arm64"),
                                         ("x86_64", "linux/amd64"), ("linux/arm64/v8", "linux/arm64")])
def test_every_spelling_of_a_platform_is_one_platform(given, name):
    assert platforms.parse(given).name == name


@pytest.mark.parametrize("given", ["linux/riscv64", "windows/amd64", "", "--rm"])
def test_a_platform_no_image_is_built_for_is_refused_with_the_choices(given):
    with pytest.raises(ConfigError) as info:
        platforms.parse(given)
    assert "linux/amd64, linux/arm64" in str(info.value)


def test_wheel_tags_are_held_against_the_platform():
    arm = platforms.parse("linux/arm64")
    assert wheel_dist("w", "torch-2.11.0-cp310-cp310-linux_aarch64.whl", "x", "3.10", arm) == "torch"
    assert wheel_dist("w", "numpy-1.26.4-cp310-cp310-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
                      "x", "3.10", arm) == "numpy"
    assert wheel_dist("w", "six-1.16.0-py2.py3-none-any.whl", "x", "3.10", arm) == "six"
    with pytest.raises(ArtifactError) as info:
        wheel_dist("--wheel", "numpy-1.26.4-cp310-cp310-manylinux2014_x86_64.whl", "x", "3.10", arm)
    assert "manylinux2014_x86_64" in str(info.value) and "linux/arm64" in str(info.value)
    assert "--platform linux/amd64" in str(info.value)


# --- the options ----------------------------------------------------------------------------------

def test_without_platform_the_image_is_for_this_machine_until_the_engine_says(home_env):
    before = release(home_env, torch_whl_url=X86_TORCH, torch_musa_whl_url=X86_TORCH_MUSA).common
    assert before.platform == platforms.of_machine(host.machine())
    assert "this machine's" in before.platform_source and not before.platform_given
    engine_says = release(home_env, machine="aarch64", torch_whl_url=ARM_TORCH, torch_musa_whl_url=ARM_TORCH_MUSA)
    assert engine_says.common.platform.name == "linux/arm64"
    assert engine_says.common.platform_source == "default: the engine's (aarch64)"
    assert engine_says.conda.filename == "Miniforge3-Linux-aarch64.sh"


def test_a_given_platform_wins_over_the_engines(home_env):
    o = release(home_env, machine="x86_64", platform="linux/arm64", torch_whl_url=ARM_TORCH,
                torch_musa_whl_url=ARM_TORCH_MUSA)
    assert o.common.platform.name == "linux/arm64" and o.common.platform_given
    assert o.conda.filename == "Miniforge3-Linux-aarch64.sh"
    plan = plans.make(o, plans.Facts())
    assert ("musa_docker.platform", "linux/arm64") in plan.build.labels
    assert plan.build.settings({}, {}).platform == "linux/arm64"
    assert plan.inputs[0] == ("platform", "linux/arm64", "flag")


def test_base_conda_installer_follows_the_platform(home_env):
    o = opts.resolve_base({"platform": "linux/arm64"}, home_env, machine="x86_64")
    assert o.conda.filename == "Miniforge3-Linux-aarch64.sh"
    assert opts.resolve_base({}, home_env, machine="x86_64").conda.filename == "Miniforge3-Linux-x86_64.sh"


@pytest.mark.parametrize("target, torch, musa, bad", [
    ("linux/amd64", ARM_TORCH, X86_TORCH_MUSA, "linux_aarch64"),
    ("linux/arm64", ARM_TORCH, X86_TORCH_MUSA, "linux_x86_64"),
    ("linux/arm64", X86_TORCH, ARM_TORCH_MUSA, "manylinux_2_28_x86_64"),
])
def test_a_wheel_for_another_platform_is_refused_before_anything_is_fetched(home_env, target, torch, musa, bad):
    with pytest.raises(ArtifactError) as info:
        release(home_env, platform=target, torch_whl_url=torch, torch_musa_whl_url=musa)
    assert bad in str(info.value) and target in str(info.value)


def test_an_extra_wheel_for_another_platform_is_refused(home_env):
    with pytest.raises(ArtifactError) as info:
        release(home_env, platform="linux/arm64", torch_whl_url=ARM_TORCH, torch_musa_whl_url=ARM_TORCH_MUSA,
                wheel=["https://wheels.example/torchvision-0.26.0-cp310-cp310-linux_x86_64.whl"])
    assert "--wheel torchvision-0.26.0-cp310-cp310-linux_x86_64.whl" in str(info.value)


# --- the command line, the variables, build-all ---------------------------------------------------------

def test_dry_run_shows_the_platform_its_source_and_what_follows_from_it(env):
    done = cli("release", "--dry-run", "--platform", "linux/arm64", "-m", "https://vendor.example/m.tar.gz",
               "-n", "https://vendor.example/n.tar", "-v", "3.10", "--torch-whl-url", ARM_TORCH, "--torch-musa-whl-url", ARM_TORCH_MUSA, env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "  platform            linux/arm64  (flag)" in out
    assert "Miniforge3-Linux-aarch64.sh" in out
    assert "  platform    linux/arm64" in out
    assert "  label       musa_docker.platform=linux/arm64" in out


def test_dry_run_without_platform_says_it_is_this_machines_until_the_engine_is_asked(env):
    done = cli("build-base", "--dry-run", env=env)
    assert done.returncode == 0, done.stderr
    shown = platforms.of_machine(host.machine()).name
    assert f"  platform            {shown}  (default: this machine's ({host.machine()}); a build takes the " \
           "engine's, asked before it starts)" in done.stdout


def test_the_platform_comes_from_a_variable_too(env):
    done = cli("build-base", "--dry-run", env={**env, "MUSA_DOCKER_BUILD_BASE_PLATFORM": "linux/arm64"})
    assert done.returncode == 0, done.stderr
    assert "  platform            linux/arm64  (env $MUSA_DOCKER_BUILD_BASE_PLATFORM)" in done.stdout
    assert "Miniforge3-Linux-aarch64.sh" in done.stdout


def test_a_wrong_wheel_platform_is_one_error_line_in_a_dry_run(env):
    done = cli("release", "--dry-run", "--platform", "linux/amd64", "-m", "https://vendor.example/m.tar.gz",
               "-n", "https://vendor.example/n.tar", "-v", "3.10",
               "--torch-whl-url", ARM_TORCH, "--torch-musa-whl-url", X86_TORCH_MUSA, env=env)
    assert_one_error(done, "linux_aarch64", "linux/amd64", "--platform linux/arm64")


def test_an_unknown_platform_is_one_error_line(env):
    assert_one_error(cli("build-base", "--dry-run", "--platform", "linux/s390x", env=env),
                     "--platform 'linux/s390x'", "linux/amd64, linux/arm64")


def test_build_all_holds_an_amd64_and_an_arm64_entry_of_one_image(tmp_path, env):
    path = tmp_path / "matrix.yaml"
    path.write_text("images:\n"
                    "  - {task: build-base, tag: '2.11-amd64', platform: linux/amd64}\n"
                    "  - {task: build-base, tag: '2.11-arm64', platform: linux/arm64}\n")
    done = cli("build-all", "-c", str(path), "--dry-run", env=env)
    assert done.returncode == 0, done.stderr
    assert "musa-pytorch-base:2.11-amd64" in done.stdout and "platform: linux/arm64" in done.stdout
    path.write_text("images:\n"
                    "  - {task: build-base, platform: linux/amd64}\n"
                    "  - {task: build-base, platform: linux/arm64}\n")
    assert_one_error(cli("build-all", "-c", str(path), "--dry-run", env=env),
                     "two platforms on the same engine", "own tag")


def test_build_all_refuses_a_dev_entry_for_another_platform_than_its_base(tmp_path, env):
    path = tmp_path / "matrix.yaml"
    path.write_text("images:\n"
                    "  - {name: base, task: build-base, tag: a, platform: linux/arm64}\n"
                    "  - {name: dev, task: build-dev, base_img: 'musa-pytorch-base:a', platform: linux/amd64,\n"
                    "     musa_url: 'https://vendor.example/m.tar.gz', mudnn_url: 'https://vendor.example/n.tar'}\n")
    assert_one_error(cli("build-all", "-c", str(path), "--dry-run", env=env),
                     "dev is for linux/amd64, but its base base", "linux/arm64")


# --- the build and verify ---------------------------------------------------------------------------

def test_buildkit_is_told_the_platform_before_the_context():
    from musa_docker.engine.docker_cli import Builder, BuildSettings, command
    argv, _ = command(Builder("buildkit", "test", cli="/usr/bin/docker"), BuildSettings(platform="linux/arm64"),
                      context="/ctx", iidfile="/tmp/iid")
    assert "--platform=linux/arm64" in argv and argv.index("--platform=linux/arm64") < argv.index("--")
    argv, _ = command(Builder("buildkit", "test", cli="/usr/bin/docker"), BuildSettings(), context="/ctx",
                      iidfile="/tmp/iid")
    assert not any(a.startswith("--platform") for a in argv)


def test_verify_reports_the_platform_against_its_label():
    from musa_docker.check.verify import FAIL, PASS, SKIPPED, _platform_row
    row = _platform_row("linux/arm64", {"musa_docker.platform": "linux/arm64"}, "x86_64")
    assert row.status == PASS and "through QEMU" in row.detail
    assert _platform_row("linux/amd64", {"musa_docker.platform": "linux/amd64"}, "x86_64").detail == \
        "linux/amd64 (label musa_docker.platform)"
    row = _platform_row("linux/amd64", {"musa_docker.platform": "linux/arm64"}, "x86_64")
    assert row.status == FAIL and "linux/amd64" in row.detail and "linux/arm64" in row.detail
    assert _platform_row("linux/amd64", {}, "x86_64").status == SKIPPED
