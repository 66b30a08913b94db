"""options: flag values and an explicit environment in, frozen options or one ConfigError out."""

from __future__ import annotations

from pathlib import Path

import pytest

from musa_docker.options import build as opts
from musa_docker.errors import BuildDirError, ConfigError, MusaDockerError


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def env(home):
    """A minimal, explicit environment: only HOME (the options read nothing else unless told)."""
    return {"HOME": str(home)}


def base(env, machine="x86_64", **values):
    return opts.resolve_base(values, env, machine=machine)


def error(call, *args, **kwargs) -> str:
    with pytest.raises(MusaDockerError) as info:
        call(*args, **kwargs)
    return str(info.value)


# --- defaults -------------------------------------------------------------------------------------

def test_defaults_are_the_documented_ones(env, home):
    o = base(env)
    assert str(o.image) == "musa-pytorch-base:latest"
    assert o.system.name == "ubuntu:20.04"
    assert o.python_version == "3.8"
    assert o.python_env == "conda"
    assert o.python_prefix == "/opt/conda/envs/py38"
    assert o.pytorch_tag == "v2.0.0"
    assert o.pytorch_root == home
    assert o.common.build_dir is None
    assert o.common.cache_dir == home / ".cache" / "musa_docker"
    assert o.common.network == "host"
    assert o.common.insecure is False
    assert o.conda is not None and o.conda.filename == "Miniforge3-Linux-x86_64.sh"


def test_conda_installer_follows_the_machine(env):
    assert base(env, machine="aarch64").conda.filename == "Miniforge3-Linux-aarch64.sh"


# --- -s/--sys --------------------------------------------------------------------------------------

def test_unsupported_system_lists_the_supported_ones(env):
    message = error(base, env, sys="centos:7")
    assert "'centos:7'" in message and "-s/--sys" in message
    for name in ("ubuntu:20.04", "ubuntu:22.04", "debian:12"):
        assert name in message


def test_errors_are_config_errors(env):
    with pytest.raises(ConfigError):
        base(env, sys="centos:7")


# --- image name and tag ------------------------------------------------------------------------------

@pytest.mark.parametrize("image", ["Musa-Base", "musa base", "-musa", "musa__-x", "musa/", "/musa", "a" * 256])
def test_malformed_image_name_is_refused(env, image):
    message = error(base, env, image=image)
    assert "-i/--image" in message and "not a valid image name" in message


@pytest.mark.parametrize("image", ["musa", "my.registry:5000/team/musa-base", "localhost/musa_base", "a.b-c/d__e"])
def test_well_formed_image_names_are_kept(env, image):
    assert base(env, image=image).image.name == image


def test_image_with_a_tag_points_at_the_tag_flag(env):
    message = error(base, env, image="musa-pytorch-base:v1")
    assert "without a tag" in message and "-t v1" in message


def test_image_with_registry_port_is_not_mistaken_for_a_tag(env):
    assert str(base(env, image="registry:5000/musa", tag="v2").image) == "registry:5000/musa:v2"


@pytest.mark.parametrize("tag", [".hidden", "-dash", "with space", "a:-b", "x" * 129])
def test_malformed_tag_is_refused(env, tag):
    message = error(base, env, tag=tag)
    assert "-t/--tag" in message and "not a valid tag" in message


def test_tag_is_applied_to_the_image(env):
    assert str(base(env, tag="2024.01_rc-1").image) == "musa-pytorch-base:2024.01_rc-1"


# --- -v/--python-version ----------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["3", "3.x", "python3.8", "3.8.1", "2.7", "3.08", " 3.8"])
def test_python_version_must_be_major_minor(env, version):
    message = error(base, env, python_version=version)
    assert "-v/--python-version" in message and repr(version) in message


def test_python_version_is_honoured_in_the_prefix(env):
    o = base(env, python_version="3.10")
    assert o.python_version == "3.10"
    assert o.python_prefix == "/opt/conda/envs/py310"


def test_venv_needs_the_systems_own_python(env):
    message = error(base, env, python_env="venv", sys="ubuntu:22.04", python_version="3.8")
    assert "3.10" in message and "3.8" in message and "--python-env conda" in message


def test_venv_with_the_systems_python_has_no_conda_installer(env):
    o = base(env, python_env="venv", sys="debian:12", python_version="3.11")
    assert o.python_prefix == "/opt/venv"
    assert o.conda is None


def test_unknown_python_env_is_refused(env):
    assert "--python-env 'pyenv'" in error(base, env, python_env="pyenv")


# --- the environment as fallback ----------------------------------------------------------------------

def test_environment_fallbacks(tmp_path, home):
    env = {
        "HOME": str(home),
        "DOCKER_BUILD_DIR": str(tmp_path / "bd"),
        "PYTORCH_REPO_ROOT_PATH": str(tmp_path / "src"),
        "MUSA_DOCKER_CACHE": str(tmp_path / "cache"),
    }
    o = base(env)
    assert o.common.build_dir == tmp_path / "bd"
    assert o.pytorch_root == tmp_path / "src"
    assert o.common.cache_dir == tmp_path / "cache"
    assert o.common.home == home


def test_flags_win_over_the_environment(tmp_path, home):
    env = {"HOME": str(home), "DOCKER_BUILD_DIR": str(tmp_path / "env-bd"),
           "PYTORCH_REPO_ROOT_PATH": str(tmp_path / "env-src")}
    o = base(env, build_dir=str(tmp_path / "flag-bd"), pytorch_root=str(tmp_path / "flag-src"))
    assert o.common.build_dir == tmp_path / "flag-bd"
    assert o.pytorch_root == tmp_path / "flag-src"


def test_home_comes_from_the_given_environment(tmp_path):
    other = tmp_path / "someone"
    o = base({"HOME": str(other)})
    assert o.common.home == other
    assert o.pytorch_root == other
    assert o.common.cache_dir == other / ".cache" / "musa_docker"


def test_tilde_expands_to_the_given_home(env, home):
    o = base(env, build_dir="~/bd", pytorch_root="~/src")
    assert o.common.build_dir == home / "bd"
    assert o.pytorch_root == home / "src"
    o = base({**env, "MUSA_DOCKER_CACHE": "~/c", "PYTORCH_REPO_ROOT_PATH": "~"})
    assert o.common.cache_dir == home / "c"
    assert o.pytorch_root == home


def test_tilde_of_another_user_is_not_this_home(env, home):
    root = base(env, pytorch_root="~nosuchuser-xyz/src").pytorch_root
    assert not str(root).startswith(str(home))


def test_tilde_inside_a_path_is_literal(env):
    assert base(env, pytorch_root="/data/~/src").pytorch_root == Path("/data/~/src")


# --- the build dir ------------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["/", "~", "/usr", "/tmp"])
def test_reserved_build_dirs_are_refused_before_any_work(env, home, where):
    with pytest.raises(BuildDirError) as info:
        base(env, build_dir=where)
    assert "--build-dir" in str(info.value) and "system or home directory" in str(info.value)


def test_reserved_build_dir_from_the_environment_is_refused(env, home):
    with pytest.raises(BuildDirError):
        base({**env, "DOCKER_BUILD_DIR": str(home)})


# --- URLs that end up in the image --------------------------------------------------------------------

def test_pip_index_with_credentials_is_refused_without_showing_them(env):
    message = error(base, env, pip_index_url="https://alice:s3cr3t-token@pypi.example.com/simple")
    assert "--pip-index-url" in message and "credentials" in message
    assert "s3cr3t-token" not in message


def test_pip_index_with_a_token_parameter_is_refused_without_showing_it(env):
    message = error(base, env, pip_index_url="https://pypi.example.com/simple?token=tok-123456")
    assert "tok-123456" not in message and "credentials" in message


def test_pip_index_must_be_http(env):
    message = error(base, env, pip_index_url="mirrors.example.com/simple")
    assert "--pip-index-url" in message and "http(s)" in message


def test_plain_pip_index_is_kept(env):
    url = "https://mirrors.example.com/pypi/simple"
    assert base(env, pip_index_url=url).common.pip_index_url == url


@pytest.mark.parametrize("mirror", ["ftp://mirror.example.com/ubuntu", "mirror.example.com/ubuntu", "file:///srv"])
def test_apt_mirror_must_be_http(env, mirror):
    message = error(base, env, apt_mirror=mirror)
    assert "--apt-mirror" in message and "http(s)" in message


def test_apt_mirror_with_credentials_is_refused_without_showing_them(env):
    message = error(base, env, apt_mirror="http://bob:hunter2pass@mirror.example.com/ubuntu")
    assert "--apt-mirror" in message and "hunter2pass" not in message


def test_apt_mirror_loses_its_trailing_slash(env):
    assert base(env, apt_mirror="http://mirror.example.com/ubuntu/").common.apt_mirror == \
        "http://mirror.example.com/ubuntu"


def test_conda_url_keeps_its_checksum(env):
    sha = "ab" * 32
    o = base(env, conda_url=f"https://example.com/Miniforge3.sh#sha256={sha}")
    assert o.conda.sha256 == sha
    assert o.conda.filename == "Miniforge3.sh"


def test_conda_url_with_a_bad_checksum_is_refused(env):
    assert "--conda-url" in error(base, env, conda_url="https://example.com/x.sh#sha256=abc")


# --- --connections --------------------------------------------------------------------------------

def test_connections_default_and_value(env):
    assert base(env).common.connections == 4
    assert base(env, connections="16").common.connections == 16
    assert base(env, connections=1).common.connections == 1  # a config file's int


@pytest.mark.parametrize("value", ["0", "-1", "x", "17", "2.5"])
def test_connections_out_of_range_names_the_flag(env, value):
    assert error(base, env, connections=value) == (
        f"--connections {value!r} is not a whole number from 1 to 16, e.g. --connections 4"
    )


# --- values checked strictly --------------------------------------------------------------------

@pytest.mark.parametrize("field, value", [("tag", "v1\n"), ("image", "musa/base\n")])
def test_a_trailing_newline_is_refused(env, field, value):
    assert "not a valid" in error(base, env, **{field: value})


def test_a_python_no_image_can_have_is_refused(env):
    message = error(base, env, python_version="3.99")
    assert "3.99" in message and "3.8, 3.9, 3.10, 3.11, 3.12, 3.13" in message
    assert base(env, python_version="3.13").python_version == "3.13"


def test_venv_without_v_takes_the_systems_python_and_says_so(env):
    o = base(env, python_env="venv", sys="ubuntu:22.04")
    assert o.python_version == "3.10" and o.python_prefix == "/opt/venv"
    assert any("ubuntu:22.04's own Python" in n for n in o.notes)
    r = opts.resolve_release({"python_env": "venv", "base_img": "debian:12", "musa_url": "m.tar.gz",
                              "mudnn_url": "n.tar", "torch_whl_url": "torch-2.0.0-cp311-cp311-linux_x86_64.whl",
                              "torch_musa_whl_url": "torch_musa-1.0.0-cp311-cp311-linux_x86_64.whl"}, env)
    assert r.python_version == "3.11" and r.notes


def test_a_dockerfile_that_is_missing_or_a_directory_is_refused_before_any_work(env, tmp_path):
    given = {"base_img": "b:1", "musa_url": "m.tar.gz", "mudnn_url": "n.tar"}
    assert "does not exist" in error(opts.resolve_dev, {**given, "docker_file": str(tmp_path / "nope")}, env)
    assert "is a directory" in error(opts.resolve_dev, {**given, "docker_file": str(tmp_path)}, env)


@pytest.mark.parametrize("flag, key", [("--torch-musa-repo", "torch_musa_repo"), ("--vision-repo", "vision_repo")])
def test_a_repo_url_that_does_not_parse_is_refused(env, flag, key):
    given = {"base_img": "b:1", "musa_url": "m.tar.gz", "mudnn_url": "n.tar", key: "http://[::1/repo.git"}
    assert flag in error(opts.resolve_dev, given, env)
