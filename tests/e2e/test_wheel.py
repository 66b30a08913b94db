"""The wheel carries its own files: built from a clean copy of this checkout and installed into a
fresh venv outside the repo, it plans every task and builds a base image, with no repo in reach."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import BUILDERS, GIT_FILE_OK, REPO, remove_images, user_env

pytestmark = [pytest.mark.engine, pytest.mark.e2e]


def _run(argv, cwd, env=None, timeout=1800):
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _checkout(dest: Path) -> Path:
    """The files git would check out of this tree (tracked, and new ones not ignored): no build
    dirs, caches or egg-info of a developer's."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin dir, a working dir outside the repo, the user's environment)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = _checkout(tmp / "src")
    built = _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(src)],
                 cwd=tmp)
    assert built.returncode == 0, built.stderr[-3000:]
    wheels = list((tmp / "dist").glob("musa_docker-*.whl"))
    assert len(wheels) == 1, wheels
    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp)
    assert made.returncode == 0, made.stderr
    bin_dir = venv / "bin"
    pip = _run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheels[0])], cwd=tmp, timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    shutil.rmtree(src)                                   # nothing of a checkout left to fall back on
    work = tmp / "work"
    work.mkdir()
    env = {k: v for k, v in user_env(tmp).items() if k != "PYTHONPATH"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return bin_dir, work, env


def test_the_installed_package_is_the_wheels_and_holds_common_and_ubuntu(installed):
    bin_dir, work, env = installed
    where = _run([str(bin_dir / "python"), "-c",
                  "import musa_docker.resources as r; print(r.ASSETS); print(r.COMMON / 'install_base.sh')"],
                 cwd=work, env=env)
    assert where.returncode == 0, where.stderr
    assets, script = where.stdout.split()
    assert Path(assets).is_relative_to(bin_dir.parent) and Path(assets).name == "_data"
    assert Path(script).is_file()
    assert not Path(assets).is_relative_to(REPO)


def _fixture_files(work: Path) -> dict:
    """Small local inputs the dry runs may name (a dry run reads no archive)."""
    files = {}
    for name in ("musa_toolkits.tar.gz", "mudnn.tar", "torch-2.0.0-cp38-cp38-linux_x86_64.whl",
                 "torch_musa-1.0.0-cp38-cp38-linux_x86_64.whl"):
        (work / name).write_bytes(b"placeholder\n")
        files[name] = str(work / name)
    return files


def test_every_task_plans_from_anywhere(installed, upstream):
    bin_dir, work, env = installed
    tool = str(bin_dir / "musa-docker")
    f = _fixture_files(work)
    (work / "images.yaml").write_text(
        "images:\n"
        "  - {name: base, task: build-base, image: wheel-base, tag: t1, sys: \"debian:12\"}\n"
        "  - {name: dev, task: build-dev, image: wheel-dev, tag: t1, base_img: \"wheel-base:t1\",\n"
        f"     musa_url: {f['musa_toolkits.tar.gz']}, mudnn_url: {f['mudnn.tar']}}}\n"
    )
    shutil.copy(REPO / "examples" / "pins.yaml", work / "pins.yaml")
    runs = {
        "build-base": [tool, "build-base", "--dry-run", "-s", "debian:12", "--pytorch-repo", upstream["url"]],
        "build-dev": [tool, "build-dev", "--dry-run", "-b", "musa-pytorch-base:latest",
                      "-m", f["musa_toolkits.tar.gz"], "-n", f["mudnn.tar"]],
        "release": [tool, "release", "--dry-run", "-m", f["musa_toolkits.tar.gz"], "-n", f["mudnn.tar"],
                    "--torch-whl-url", f["torch-2.0.0-cp38-cp38-linux_x86_64.whl"],
                    "--torch-musa-whl-url", f["torch_musa-1.0.0-cp38-cp38-linux_x86_64.whl"]],
        "build-all": [tool, "build-all", "--dry-run", "-c", "images.yaml"],
        "pins": [tool, "pins", "--pins", "pins.yaml"],
        "config": [tool, "config", "--task", "build-dev"],
        "doctor": [tool, "doctor"],
        "shell": [tool, "shell", "-i", "musa-pytorch-dev", "--dry-run"],
        "push": [tool, "push", "-i", "app:1", "--registry", "127.0.0.1:5000", "--dry-run"],
    }
    for task, argv in runs.items():
        r = _run(argv, cwd=work, env=env)
        assert r.returncode == 0, f"{task}: {r.stdout[-2000:]}{r.stderr[-2000:]}"
        assert "Traceback" not in r.stdout + r.stderr, task
    for task in ("build-base", "build-dev", "release"):
        assert f"dockerfile.{task.split('-')[-1] if task != 'build-base' else 'base'}" in \
            _run(runs[task], cwd=work, env=env).stdout
    for task in ("shell", "push", "verify"):
        r = _run([tool, task, "--help"], cwd=work, env=env)
        assert r.returncode == 0 and r.stdout.startswith(f"usage: musa-docker {task}"), (task, r.stderr)


def test_a_real_base_build_from_the_wheel(installed, upstream, engine, tmp_path):
    """One real BuildKit build from the installed wheel, as CI would run it: quiet (only the image id on
    stdout), pushed to a registry after the check, with its result written for the next job."""
    from images import debian12_image, local_pypi
    from registry import serve_registry
    bin_dir, work, env = installed
    debian12_image(engine)
    tag = uuid.uuid4().hex[:8]
    with serve_registry(tmp_path / "registry") as registry:
        name = f"{registry}/musa-docker-test/wheel-base"
        ref = f"{name}:{tag}"
        argv = [str(bin_dir / "musa-docker"), "build-base", "-s", "debian:12", "--python-env", "venv", "-v", "3.11",
                "-i", name, "-t", tag, "--pytorch-root", str(work / "src"),
                "--pytorch-repo", upstream["url"], *BUILDERS["buildkit"],
                "--build-arg", "TEAM_NOTE=1", "--label", "team=ml", "--metadata-file", str(work / "out" / "meta.json"),
                "-q", "--push", "--attest"]
        index_server = contextlib.ExitStack()    # one index for both runs: its URL is an input of the image
        try:
            index = index_server.enter_context(local_pypi(work / "index"))
            r = _run(argv + ["--pip-index-url", index], cwd=work, env={**env, **GIT_FILE_OK})
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
            image = engine.images.get(ref)
            assert r.stdout == image.id + "\n", r.stdout[-2000:]      # -q: the image id, nothing else
            labels = image.labels
            assert labels["musa_docker.kind"] == "base"
            assert labels["team"] == "ml"
            meta = json.loads((work / "out" / "meta.json").read_text())
            assert meta["image_id"] == image.id and meta["tags"] == [ref] and meta["builder"] == "buildkit"
            assert meta["inputs_digest"] == labels["musa_docker.inputs"] and meta["up_to_date"] is False
            assert labels["musa_docker.pytorch.commit"] == upstream["tagged"]
            # the SBOM and sizes of the build, for CI; the SBOM names the pytorch tree appended as a layer
            import hashlib
            cdx = Path(meta["sbom"]["cyclonedx"])
            assert hashlib.sha256(cdx.read_bytes()).hexdigest() == labels["musa_docker.sbom.cyclonedx"]
            assert any(c["bom-ref"] == "source:pytorch" and c["version"] == upstream["tagged"]
                       for c in json.loads(cdx.read_text())["components"])
            assert meta["largest_layers"] and meta["largest_layers"][0]["size"] > 0
            # --push --attest: the tag names an index of the image and its SBOM attestation (the SPDX
            # document the build wrote, as an in-toto statement about the pushed manifest); the digest
            # the metadata names is that index, and pulling the tag gives the image back
            digest = meta["digests"][ref]
            from registry import attached
            pushed, found = attached(registry, "musa-docker-test/wheel-base", tag, digest)
            spdx = Path(meta["sbom"]["spdx"])
            assert found["https://spdx.dev/Document"]["predicate"] == json.loads(spdx.read_text())
            assert found["https://spdx.dev/Document"]["subject"][0]["digest"]["sha256"] == pushed.split(":")[1]
            assert found["https://cyclonedx.org/bom"]["predicate"] == json.loads(cdx.read_text())
            # the same command again: an up-to-date skip, whose push would leave the tag without its
            # attestation; the image's SBOM is made again from the image and attached again
            again = _run(argv + ["--pip-index-url", index], cwd=work, env={**env, **GIT_FILE_OK})
            assert again.returncode == 0 and again.stdout == image.id + "\n", again.stderr[-3000:]
            meta = json.loads((work / "out" / "meta.json").read_text())
            assert meta["up_to_date"] is True
            digest = meta["digests"][ref]
            _, found = attached(registry, "musa-docker-test/wheel-base", tag, digest)
            components = found["https://cyclonedx.org/bom"]["predicate"]["components"]
            assert any(c["bom-ref"] == "source:pytorch" and c["version"] == upstream["tagged"] for c in components)
            engine.images.remove(ref, force=True)
            pulled = engine.images.pull(ref)
            assert pulled.id == image.id and f"{name}@{digest}" in pulled.attrs["RepoDigests"]
        finally:
            index_server.close()
            remove_images(engine, ref)
