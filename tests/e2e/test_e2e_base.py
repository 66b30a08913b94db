"""End to end: `build-base -s debian:12 --python-env venv` on a real engine, from a Debian 12
rootfs made with debootstrap, with a local pytorch repo (tag + submodule) and a local index."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest

from conftest import cli
from images import run_in
from musa_docker.check import image as checks
from musa_docker.engine.api import Engine
from musa_docker.errors import ImageMismatchError

pytestmark = [pytest.mark.engine, pytest.mark.e2e]

@pytest.fixture(scope="module")
def built(e2e_base):
    return e2e_base


def test_build_succeeds_and_reports_clone_log_and_image(built, upstream):
    first = built["first"]
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert f"clone pytorch {upstream['url']} @ v2.0.0" in first.stdout
    assert "check " in first.stdout
    log = re.search(r"build log: (\S+)", first.stdout).group(1)
    text = Path(log).read_text()
    assert "install_base.sh" in text
    # the log is the builder's own: BuildKit's plain progress, or the classic builder's steps
    assert ("#1 [internal] load build definition" in text) == (built["builder"] == "buildkit")
    builds = built["tmp"] / "cache" / "builds"                      # fresh build dirs live in the cache
    assert builds.is_dir() and not list(builds.iterdir())           # and the one made was removed


def test_image_holds_pytorch_with_submodules_python_numpy_and_render(built, engine, upstream):
    ref = built["ref"]
    assert run_in(engine, ref, "cat /home/pytorch/third_party/fmt/include/fmt/core.h") == "// fmt core"
    assert run_in(engine, ref, "cat /home/pytorch/README.md") == "pytorch fixture"
    assert run_in(engine, ref, "python --version").startswith("Python 3.11.")
    assert run_in(engine, ref, "python -c 'import numpy; print(numpy.__name__)'") == "numpy"
    assert run_in(engine, ref, "getent group render").split(":")[2] == "109"
    assert run_in(engine, ref, "bash -ic 'command -v python' 2>/dev/null").endswith("/opt/venv/bin/python")


def test_every_tag_names_the_same_image(built, engine):
    assert engine.images.get(built["ref"] + "-also").id == engine.images.get(built["ref"]).id


def test_labels_carry_provenance(built, engine, upstream):
    labels = engine.images.get(built["ref"]).labels
    assert labels["musa_docker.kind"] == "base"
    assert labels["musa_docker.python_version"] == "3.11"
    assert labels["musa_docker.pytorch.commit"] == upstream["tagged"]
    assert re.fullmatch(r"[0-9a-f]{64}", labels["musa_docker.inputs"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["org.opencontainers.image.created"])


def test_unchanged_rebuild_is_skipped_and_verify_checks_the_image(built, engine):
    second = built["second"]
    assert second.returncode == 0, second.stderr
    assert f"up to date {built['ref']}" in second.stdout
    assert "build log" not in second.stdout
    lines = second.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.split()[:3] == ["check", "status", "detail"]):]
    status = {line[:line.index("  ")]: line[line.index("  "):].split()[0] for line in table[1:] if "  " in line}
    assert status["import numpy"] == "pass"
    assert status["python version"] == "pass"
    assert "fail" not in status.values(), "\n".join(table)


def test_shell_cmd_runs_in_the_base_image(built):
    name = f"musa-docker-test-{uuid.uuid4().hex[:8]}"
    try:
        done = cli("shell", "-i", built["ref"], "--name", name, "--no-privileged",
                   "--cmd", "python -c 'import numpy, sys; print(sys.version_info[:2])'")
        assert done.returncode == 0, done.stderr
        assert "(3, 11)" in done.stdout
    finally:
        cli("shell", "-i", built["ref"], "--name", name, "--no-privileged", "--cmd", "true")
        os.system(f"docker rm -f {name} >/dev/null 2>&1")


def test_check_fails_loudly_when_the_image_differs_from_the_request(built, engine, upstream):
    image = Engine().image(built["ref"])
    with pytest.raises(ImageMismatchError) as caught:
        checks.check_image(Engine(), image.id, checks.Expect(
            python_version="3.8",
            labels={"musa_docker.kind": "dev"},
            trees={"pytorch": ("/home/pytorch", upstream["head"])},
            installed=("torch_musa",),
        ))
    message = str(caught.value)
    assert "python is 3.11" in message and "expected 3.8" in message
    assert "musa_docker.kind is 'base', expected 'dev'" in message
    assert f"expected {upstream['head']}" in message
    assert "torch_musa is not installed" in message


def test_no_installer_or_index_in_any_layer_or_history(built, engine):
    history = str(engine.api.history(built["ref"]))
    assert "PIP_INDEX_URL=http" not in history
    assert run_in(engine, built["ref"], "ls -A /tmp") == ""
