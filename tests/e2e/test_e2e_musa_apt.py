"""End to end, on the real engine: a release image from debian:12 whose MUSA SDK comes from a local
apt repository (tests/support/musa_apt.py) and whose torch comes from a MUSA pip index kept apart from the
public stand-in, which holds a higher torch that pulls a CUDA distribution."""

from __future__ import annotations

import platform
import socket
import uuid

import pytest

import musa_apt
import vendor
from conftest import cli, user_env
from images import debian12_image, run_in, serve_directory, write_simple_index

pytestmark = [pytest.mark.engine, pytest.mark.e2e]

MUSA_TORCH = "2.0.0+musa5.2.0"
MUSA_TORCH_MUSA = "1.0.0+musa5.2.0"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """The apt repository, the MUSA index and the public index, each on 127.0.0.1."""
    tmp = tmp_path_factory.mktemp("musa-apt")
    tag = f"cp311-cp311-linux_{platform.machine()}"
    for name in ("musa-wheels", "public-wheels", "greedy"):
        (tmp / name).mkdir()
    torch_file, torch_musa = vendor.fixture_wheels(tmp / "wheels", "3.11")
    musa_torch = vendor._write_wheel(tmp / "musa-wheels", "torch", MUSA_TORCH, tag,
                                     {"torch/__init__.py": vendor._TORCH_INIT}, summary="MUSA torch stand-in")
    public = tmp / "public-wheels"
    # the public stand-in: a higher torch that, like a CUDA build, pulls nvidia-* distributions
    public_torch = vendor._write_wheel(public, "torch", "2.1.0", tag, {"torch/__init__.py": vendor._TORCH_INIT},
                                       requires=("nvidia-cublas-cu12",), summary="public torch stand-in")
    cublas = vendor._write_wheel(public, "nvidia_cublas_cu12", "12.1.0", "py3-none-any",
                                 {"nvidia_cublas_cu12/__init__.py": ""}, summary="CUDA stand-in")
    # a torch_musa that asks for torch>=2.1: the public index then replaces the MUSA torch
    greedy = vendor._write_wheel(tmp / "greedy", "torch_musa", "1.0.0", tag, {"torch_musa/__init__.py": ""},
                                 requires=("torch>=2.1",), summary="torch_musa asking for a newer torch")
    musa_torch_musa = vendor._write_wheel(tmp / "musa-wheels", "torch_musa", MUSA_TORCH_MUSA, tag,
                                          {"torch_musa/__init__.py": vendor._TORCH_MUSA_WHEEL_INIT},
                                          requires=("torch==2.0.0",), summary="MUSA torch_musa stand-in")
    write_simple_index(tmp / "musa-index", [musa_torch, musa_torch_musa])
    write_simple_index(tmp / "public-index", [public_torch, cublas, *vendor.release_index_wheels("3.11")])
    repo = musa_apt.write_repo(tmp / "apt")
    with serve_directory(repo) as apt, serve_directory(tmp / "musa-index") as musa, \
            serve_directory(tmp / "public-index") as pub:
        yield {"apt": apt.rstrip("/"), "musa": musa + "simple/", "public": pub + "simple/",
               "torch_musa": torch_musa, "greedy": greedy, "tmp": tmp, "torch_file": torch_file}


def release_args(servers, tag, *, suite="good", torch=MUSA_TORCH, torch_musa=None):
    return ["release", "-b", "debian:12", "--python-env", "venv", "-v", "3.11", "-i", "musa-docker-test/apt-release",
            "-t", tag, "--musa-apt-source", f"deb [trusted=yes] {servers['apt']} {suite} main", "--musa-runtime", "5.2",
            "--musa-pip-index-url", servers["musa"], "--musa-wheel", f"torch=={torch}",
            "--torch-musa-whl-url", str(torch_musa or servers["torch_musa"]), "--pip-index-url", servers["public"]]


def remove(engine, ref):
    try:
        engine.images.remove(ref, force=True)
    except Exception:
        pass


@pytest.fixture(scope="module")
def release(servers, engine, tmp_path_factory):
    debian12_image(engine)
    tag = uuid.uuid4().hex[:8]
    done = cli(*release_args(servers, tag), env=user_env(tmp_path_factory.mktemp("user")))
    yield {"done": done, "ref": f"musa-docker-test/apt-release:{tag}"}
    remove(engine, f"musa-docker-test/apt-release:{tag}")


def test_release_gets_the_sdk_from_apt_and_torch_from_the_musa_index(release, engine):
    done = release["done"]
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    ref = release["ref"]
    assert "apt pins: musa-toolkit-5-2=5.2.0-1 mtcc-5-2=5.2.0-1" in done.stdout
    assert run_in(engine, ref, "readlink /usr/local/musa; mcc; dpkg-query -W -f='${Version}\\n' musa-toolkit-5-2") == \
        "musa-5.2\nmcc (MUSA 5.2.0 stand-in)\n5.2.0-1"
    assert "libmusart.so" in run_in(engine, ref, "ldconfig -p")
    # the MUSA build, not the public index's higher version, and nothing of CUDA
    assert run_in(engine, ref, "cd / && python -c 'import torch; print(torch.__version__)'") == "2.0.0"
    # torch from the MUSA index; torch_musa is the wheel file --torch-musa-whl-url names
    assert run_in(engine, ref, "python -c 'from importlib.metadata import version as v; print(v(\"torch\"), v(\"torch_musa\"))'") \
        == f"{MUSA_TORCH} 1.0.0"
    assert "nvidia" not in run_in(engine, ref, "python -m pip list 2>/dev/null")


def test_the_apt_source_does_not_stay_in_the_image(release, engine):
    ref = release["ref"]
    assert run_in(engine, ref, "ls /etc/apt/sources.list.d/ /var/lib/apt/lists | grep -v -e '^lock$' -e '^partial$' -e ':$' -e '^$' || true") == ""
    labels = engine.images.get(ref).labels
    assert labels["musa_docker.apt.musa-toolkit-5-2"] == "5.2.0-1"
    assert labels["musa_docker.apt.libmudnn3-musa-5-2"] == "3.0.0+musa5.2.0"
    assert labels["musa_docker.apt.mccl-s5000"] == "2.4.0-1"


def _no_image(engine, tag):
    assert not engine.images.list(name=f"musa-docker-test/apt-release:{tag}")


@pytest.mark.parametrize("suite, says", [
    ("mixed", "mixes runtime lines: mtcc-5-2 is 5.1.0-1"),
    ("notoolkit", "suite notoolkit (main) of"),
])
def test_a_bad_suite_is_refused_before_any_build_step(servers, engine, tmp_path, suite, says):
    tag = uuid.uuid4().hex[:8]
    done = cli(*release_args(servers, tag, suite=suite), env=user_env(tmp_path))
    assert done.returncode != 0
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and says in err[0], done.stderr
    assert "Traceback" not in done.stderr and "build musa-docker-test" not in done.stdout
    _no_image(engine, tag)


def test_an_apt_source_that_does_not_answer(servers, engine, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tag = uuid.uuid4().hex[:8]
    args = release_args(servers, tag)
    args[args.index("--musa-apt-source") + 1] = f"deb [trusted=yes] http://127.0.0.1:{port}/musa good main"
    done = cli(*args, env=user_env(tmp_path))
    assert done.returncode != 0 and done.stderr.startswith("error: ") and "does not answer" in done.stderr
    _no_image(engine, tag)


def test_tarball_flags_with_an_apt_source_are_refused(servers, tmp_path):
    done = cli(*release_args(servers, "x"), "-n", "/tmp/mudnn.tar", env=user_env(tmp_path))
    assert done.returncode != 0
    assert done.stderr.strip() == ("error: --musa-apt-source and -n/--mudnn-url both install the MUSA SDK: give the "
                                   "apt source or the archives, not both (unset the variables when they come from "
                                   "the environment)")


def test_a_requirement_the_musa_index_cannot_satisfy(release, servers, engine, tmp_path):
    assert release["done"].returncode == 0     # the layers before the failing step are cached
    tag = uuid.uuid4().hex[:8]
    done = cli(*release_args(servers, tag, torch="9.9.9+musa5.2.0"), env=user_env(tmp_path))
    assert done.returncode != 0
    # asked of the index from the host before the build: one line naming it, no build step ran
    assert done.stderr.startswith("error: --musa-wheel torch==9.9.9+musa5.2.0: the MUSA index has no torch "
                                  "9.9.9+musa5.2.0 (it lists 2.0.0+musa5.2.0)"), done.stderr
    assert len(done.stderr.splitlines()) == 1 and "install_musa_wheels" not in done.stdout + done.stderr
    _no_image(engine, tag)


def test_an_installed_version_that_differs_from_its_requirement(release, servers, engine, tmp_path):
    assert release["done"].returncode == 0
    tag = uuid.uuid4().hex[:8]
    done = cli(*release_args(servers, tag, torch_musa=servers["greedy"]), env=user_env(tmp_path))
    assert done.returncode != 0
    err = done.stderr.strip().splitlines()[-1]
    assert err.startswith("error: the new image") and "was not tagged" in err, done.stderr
    # Under the classic builder each wheel is its own captured layer, which cannot delete the MUSA
    # torch's dist-info: the replaced torch may still read as the pinned version, so the CUDA build
    # the public index brought along is what names the replacement for certain.
    assert "CUDA distributions are installed (nvidia-cublas-cu12)" in err or \
           "CUDA distributions are installed (nvidia_cublas_cu12)" in err
    _no_image(engine, tag)


def test_a_base_image_with_the_sdk_is_recognised(release, busybox):
    """build-dev's observation (vllm-musa's INSTALL_MUSA_STACK=auto): mcc in the image keeps its SDK."""
    from musa_docker.engine.api import Engine
    from musa_docker.musa.sdk import base_has_sdk
    assert release["done"].returncode == 0
    said = []
    assert base_has_sdk(Engine(), release["ref"], said.append)
    assert said == [f"keep the MUSA SDK of {release['ref']}: mcc is there, so nothing is installed from the apt source"]
    assert not base_has_sdk(Engine(), busybox, said.append)


def test_every_arch_gets_each_mccl_package(release, engine):
    """No --gpu-arch: the archs that have MCCL get theirs, each pinned and labelled."""
    labels = engine.images.get(release["ref"]).labels
    assert labels["musa_docker.apt.mccl-s4000"] == "2.4.0-1"
    assert "ii  mccl-s4000" in run_in(engine, release["ref"], "dpkg -l mccl-s4000 mccl-s5000")


@pytest.fixture(scope="module")
def pins_release(servers, engine, tmp_path_factory):
    """The runtime line, torch and torch_musa from a pins file, for qy1 (no MCCL): no wheel URL."""
    debian12_image(engine)
    tmp = tmp_path_factory.mktemp("pins-release")
    pins = tmp / "pins.yaml"
    pins.write_text(f'versions:\n  musa: "5.2.0"\nwheels:\n  S80:\n    "3.11":\n      torch: "torch=={MUSA_TORCH}"\n'
                    f'      torch_musa: "torch_musa=={MUSA_TORCH_MUSA}"\n')
    tag = uuid.uuid4().hex[:8]
    args = release_args(servers, tag)
    for flag in ("--musa-runtime", "--musa-wheel", "--torch-musa-whl-url"):
        del args[args.index(flag):args.index(flag) + 2]
    args += ["--pins", str(pins), "--gpu-arch", "qy1"]
    env = user_env(tmp_path_factory.mktemp("pins-user"))
    done = cli(*args, env=env)
    yield {"done": done, "ref": f"musa-docker-test/apt-release:{tag}", "pins": pins,
           "plan": cli(*args, "--dry-run", env=env)}
    remove(engine, f"musa-docker-test/apt-release:{tag}")


def test_a_release_from_a_pins_file_for_an_arch_without_mccl(pins_release, engine):
    done, ref, pins = pins_release["done"], pins_release["ref"], pins_release["pins"]
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    plan = pins_release["plan"].stdout
    assert f"musa_runtime        5.2  (pins {pins}:2 (versions.musa 5.2.0))" in plan
    assert f"torch_whl_url       torch=={MUSA_TORCH} from the MUSA index  (pins {pins}:6)" in plan
    assert "build arg   USE_MCCL=0" in plan and "fetch   torch" not in plan
    labels = engine.images.get(ref).labels
    assert labels["musa_docker.gpu_arch"] == "mp_21"
    assert labels["musa_docker.apt.musa-toolkit-5-2"] == "5.2.0-1"
    assert not [k for k in labels if k.startswith("musa_docker.apt.mccl")]
    assert run_in(engine, ref, "dpkg -l 'mccl*' >/dev/null 2>&1 && echo mccl || echo none") == "none"
    assert run_in(engine, ref, "python -c 'from importlib.metadata import version as v; print(v(\"torch\"), v(\"torch_musa\"))'") \
        == f"{MUSA_TORCH} {MUSA_TORCH_MUSA}"
