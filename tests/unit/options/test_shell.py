"""shellopts: the shell task's flags in, frozen options or one ConfigError out."""

from __future__ import annotations

import pytest

from musa_docker.options import shell as shellopts
from musa_docker.errors import MusaDockerError


@pytest.fixture
def env(tmp_path):
    return {"HOME": str(tmp_path / "home")}


def error(call, *args, **kwargs) -> str:
    with pytest.raises(MusaDockerError) as info:
        call(*args, **kwargs)
    return str(info.value)


# --- shell ---------------------------------------------------------------------------------------------

def shell(**values):
    return shellopts.resolve_shell(values, {})


def test_shell_adds_all_visible_devices():
    o = shell(image="musa-pytorch-dev:latest")
    assert o.env == ("MTHREADS_VISIBLE_DEVICES=all",)
    assert o.privileged is True
    assert o.shm_size == "80G"
    assert o.cmd is None


def test_shell_keeps_the_users_visible_devices():
    o = shell(image="musa-pytorch-dev", env=["FOO=1", "MTHREADS_VISIBLE_DEVICES=0,1"])
    assert o.env == ("FOO=1", "MTHREADS_VISIBLE_DEVICES=0,1")


def test_shell_puts_visible_devices_first_and_keeps_the_rest_in_order():
    o = shell(image="musa-pytorch-dev", env=["B=2", "A=x=y", "EMPTY="])
    assert o.env == ("MTHREADS_VISIBLE_DEVICES=all", "B=2", "A=x=y", "EMPTY=")


@pytest.mark.parametrize("item", ["NOVALUE", "=value", "1ABC=x", "A-B=x", "A B=x"])
def test_shell_refuses_a_bad_env(item):
    message = error(shell, image="musa-pytorch-dev", env=[item])
    assert "-e/--env" in message and repr(item) in message


@pytest.mark.parametrize("image, name", [
    ("musa-pytorch-dev:latest", "musa-pytorch-dev-latest"),
    ("musa-pytorch-dev", "musa-pytorch-dev"),
    ("registry.example.com:5000/team/musa-dev:v1.2", "musa-dev-v1.2"),
])
def test_shell_derives_the_container_name(image, name):
    assert shell(image=image).name == name


def test_shell_name_flag_wins():
    assert shell(image="musa-pytorch-dev:latest", name="mine").name == "mine"


def test_shell_refuses_a_bad_name():
    assert "--name" in error(shell, image="musa-pytorch-dev", name="has space")


def test_shell_needs_an_image():
    assert "-i/--image is required" in error(shell)


@pytest.mark.parametrize("image", ["Musa:latest", "musa:.bad", "musa dev"])
def test_shell_refuses_a_malformed_image(image):
    assert "-i/--image" in error(shell, image=image)


def test_shell_privileged_can_be_turned_off():
    assert shell(image="musa", privileged=False).privileged is False


@pytest.mark.parametrize("size", ["lots", "80 G", "-1G", "80G\n", "1.5G"])
def test_a_shm_size_that_is_not_a_size_is_refused(env, size):
    assert "--shm-size" in error(shellopts.resolve_shell, {"image": "x:1", "shm_size": size}, env)


@pytest.mark.parametrize("size", ["80G", "512m", "1gb", "1024"])
def test_docker_sizes_are_kept(env, size):
    assert shellopts.resolve_shell({"image": "x:1", "shm_size": size}, env).shm_size == size
