"""One MUSA SDK line per image: the SDK line the image installs (--musa-runtime, the pins file's
versions.musa, the toolkit archive's name) against the line and arch the wheels' local versions name
(`+musa5.2.0`, `+musa5.2.1mp22`), refused in a dry run with one `error:` line naming both sides."""

from __future__ import annotations

import pytest

from conftest import assert_one_error, cli
from musa_docker.errors import ConfigError
from musa_docker.musa import lines

SOURCE = "deb [trusted=yes] http://127.0.0.1:9/musa bookworm main"
WHL = "https://wheels.example/{}-cp310-cp310-linux_x86_64.whl"


@pytest.mark.parametrize("version, line, written, arch", [
    ("2.11.0.post2+musa5.2.0", "5.2", "5.2.0", None),
    ("2.11.0+musa5.2.1mp22", "5.2", "5.2.1", "mp_22"),
    ("2.7.1+musa4.3.4.mp31", "4.3", "4.3.4", "mp_31"),
    ("2.9.1+musa5.1", "5.1", "5.1", None),
    ("2.9.1+mp22", None, None, "mp_22"),
    ("2.0.0", None, None, None),
    ("2.0.0+cpu", None, None, None),
])
def test_a_wheels_local_version_names_its_sdk_line_and_arch(version, line, written, arch):
    assert lines.of_local_version(version) == (line, written, arch)


@pytest.mark.parametrize("name, version", [
    ("https://vendor.example/musa_toolkits_rc5.2.0.tar.gz", "5.2.0"),
    ("https://vendor.example/release_musa_4.0.0/musa_toolkits_install_full.tar.gz", "4.0.0"),
    ("musa_toolkits_install_5.1.0.tar.gz", "5.1.0"),
    ("musa_toolkits.tar.gz", None),
    ("https://musa.example/vendor/musa5.tar.gz", None),
])
def test_a_toolkit_archive_names_its_version(name, version):
    assert lines.of_archive(name) == version


def test_the_check_names_both_sides():
    sdk = [lines.sdk_claim("5.2", "--musa-runtime 5.2")]
    ok = lines.wheel_claim("2.11.0+musa5.2.1mp22", "--musa-wheel torch_musa==2.11.0+musa5.2.1mp22")
    lines.check(sdk, [ok], ("mp_22",))
    with pytest.raises(ConfigError) as info:
        lines.check(sdk, [lines.wheel_claim("2.9.1+musa5.1.0", "--torch-whl-url t.whl")], ("mp_22",))
    assert "--torch-whl-url t.whl is built for MUSA SDK 5.1.0" in str(info.value)
    assert "installs SDK 5.2 (--musa-runtime 5.2)" in str(info.value)
    with pytest.raises(ConfigError) as info:
        lines.check(sdk, [ok], ("mp_31",))
    assert "built for mp_22 (qy2: S4000/M1000), but --gpu-arch is mp_31" in str(info.value)
    with pytest.raises(ConfigError) as info:
        lines.check([], [lines.wheel_claim("1+musa5.1.0", "a"), lines.wheel_claim("1+musa5.2.0", "b")], ())
    assert "a is built for MUSA SDK 5.1.0 and b for 5.2.0" in str(info.value)


def release(env, *args):
    return cli("release", "--dry-run", "-v", "3.10", *args, env=env)


def test_a_wheel_of_another_line_than_the_apt_runtime_is_refused_in_a_dry_run(env):
    done = release(env, "--musa-apt-source", SOURCE, "--musa-runtime", "5.2", "--gpu-arch", "S4000",
                   "--torch-whl-url", WHL.format("torch-2.9.1+musa5.1.0"),
                   "--torch-musa-whl-url", WHL.format("torch_musa-2.9.1+musa5.1.0"))
    assert_one_error(done, "--torch-whl-url torch-2.9.1+musa5.1.0-cp310-cp310-linux_x86_64.whl",
                     "MUSA SDK 5.1.0", "SDK 5.2 (--musa-runtime 5.2)")


def test_wheels_of_the_apt_runtimes_line_pass(env):
    done = release(env, "--musa-apt-source", SOURCE, "--musa-runtime", "5.2", "--gpu-arch", "S4000",
                   "--torch-whl-url", WHL.format("torch-2.11.0.post2+musa5.2.0"),
                   "--torch-musa-whl-url", WHL.format("torch_musa-2.11.0+musa5.2.1mp22"))
    assert done.returncode == 0, done.stderr


def test_a_wheel_of_another_line_than_the_toolkit_archive_is_refused(env):
    done = release(env, "-m", "https://vendor.example/musa_toolkits_rc4.3.4.tar.gz",
                   "-n", "https://vendor.example/mudnn.tar",
                   "--torch-whl-url", WHL.format("torch-2.11.0+musa5.2.0"),
                   "--torch-musa-whl-url", WHL.format("torch_musa-2.11.0+musa5.2.0"))
    assert_one_error(done, "MUSA SDK 5.2.0", "SDK 4.3 (-m https://vendor.example/musa_toolkits_rc4.3.4.tar.gz)")


def test_a_wheel_for_an_arch_not_built_for_is_refused(env):
    done = release(env, "-m", "https://vendor.example/m.tar.gz", "-n", "https://vendor.example/n.tar", "--gpu-arch", "S5000",
                   "--torch-whl-url", WHL.format("torch-2.11.0+musa5.2.0"),
                   "--torch-musa-whl-url", WHL.format("torch_musa-2.11.0+musa5.2.1mp22"))
    assert_one_error(done, "torch_musa-2.11.0+musa5.2.1mp22", "mp_22", "--gpu-arch is mp_31")


def test_wheels_of_two_lines_are_refused_when_the_sdk_names_none(env):
    done = release(env, "-m", "https://vendor.example/m.tar.gz", "-n", "https://vendor.example/n.tar",
                   "--torch-whl-url", WHL.format("torch-2.9.1+musa5.1.0"),
                   "--torch-musa-whl-url", WHL.format("torch_musa-2.11.0+musa5.2.0"))
    assert_one_error(done, "SDK 5.1.0", "5.2.0", "one SDK line")


def test_a_musa_index_requirement_of_another_line_than_the_pins_is_refused(tmp_path, env):
    pins = tmp_path / "pins.yaml"
    pins.write_text('versions:\n  musa: "5.1.0"\n')
    done = cli("build-dev", "--dry-run", "-b", "musa-pytorch-base:latest", "--musa-apt-source", SOURCE, "--pins",
               str(pins), "--musa-pip-index-url", "http://127.0.0.1:9/simple/",
               "--musa-wheel", "torch==2.11.0+musa5.2.0", env=env)
    assert_one_error(done, "--musa-wheel torch==2.11.0+musa5.2.0", f"pins {pins}:2 (versions.musa 5.1.0)")


def test_the_archive_and_the_pins_file_must_name_one_line(tmp_path, env):
    pins = tmp_path / "pins.yaml"
    pins.write_text('versions:\n  musa: "5.2.0"\n')
    done = cli("build-dev", "--dry-run", "-b", "musa-pytorch-base:latest", "--pins", str(pins),
               "-m", "https://vendor.example/musa_toolkits_rc5.1.0.tar.gz", "-n", "https://vendor.example/mudnn.tar",
               env=env)
    assert_one_error(done, "two MUSA SDK lines (5.2 and 5.1)", "-m https://vendor.example/musa_toolkits_rc5.1.0.tar.gz")
