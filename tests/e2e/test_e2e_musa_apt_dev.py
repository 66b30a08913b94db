"""End to end: build-base -> build-dev whose MUSA SDK (with muAlg and muThrust) comes from the local
apt repository of tests/support/musa_apt.py, on the real engine."""

from __future__ import annotations

import uuid

import pytest

import musa_apt
import vendor
from conftest import cli, user_env
from images import local_pypi, run_in, serve_directory

pytestmark = [pytest.mark.engine, pytest.mark.e2e]


@pytest.fixture(scope="module")
def dev(e2e_base, tmp_path_factory, engine):
    assert e2e_base["first"].returncode == 0, e2e_base["first"].stderr[-2000:]
    tmp = tmp_path_factory.mktemp("apt-dev")
    repo = musa_apt.write_repo(tmp / "apt")
    tag = uuid.uuid4().hex[:8]
    with serve_directory(repo) as apt, local_pypi(tmp / "index", vendor.dev_index_wheels("3.11")) as index:
        done = cli("build-dev", "-b", e2e_base["ref"], "-i", "musa-docker-test/apt-dev", "-t", tag,
                   "--musa-apt-source", f"deb [trusted=yes] {apt.rstrip('/')} good main", "--musa-runtime", "5.2",
                   "--torch-musa-repo", vendor.torch_musa_repo(tmp / "upstream").as_uri(), "--torch-musa-ref", "v1.0.0",
                   "--vision-repo", vendor.vision_repo(tmp / "upstream").as_uri(), "--vision-root", str(tmp / "src"),
                   "--pip-index-url", index, env=user_env(tmp))
    yield {"done": done, "ref": f"musa-docker-test/apt-dev:{tag}"}
    try:
        engine.images.remove(f"musa-docker-test/apt-dev:{tag}", force=True)
    except Exception:
        pass


def test_dev_gets_the_sdk_with_mualg_and_muthrust_from_apt(dev, engine):
    done = dev["done"]
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    ref = dev["ref"]
    assert run_in(engine, ref, "readlink /usr/local/musa; mcc") == "musa-5.2\nmcc (MUSA 5.2.0 stand-in)"
    assert run_in(engine, ref, "ls /usr/local/musa/include/mualg /usr/local/musa/include/thrust") == \
        "/usr/local/musa/include/mualg:\nmualg.h\n\n/usr/local/musa/include/thrust:\nversion.h"
    assert run_in(engine, ref, "ls /etc/apt/sources.list.d/") == ""
    labels = engine.images.get(ref).labels
    assert labels["musa_docker.apt.musa-mualg-5-2"] == "5.2.0-1"
    assert labels["musa_docker.apt.musa-toolkit-5-2"] == "5.2.0-1"
    assert run_in(engine, ref, "cd / && python -c 'import torch_musa; print(torch_musa.__name__)'") == "torch_musa"
