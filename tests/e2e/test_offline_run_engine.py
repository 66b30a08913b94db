"""Builds whose RUN steps need no network: a base -> dev -> release build-all matrix locked and built
online against the local servers, bundled, the bundle copied and the servers stopped; then, on a second engine, `bundle verify`,
`bundle import` and `build-all --offline` with the CLI in a network namespace with only a loopback that
is down, and BuildKit running every step with no network. Each image must build, with the online
build's inputs digest; the source trees, cloned online and restored from the bundle's git bundles
offline, must enter the images as the same bytes.

The OS image's own packages (install_base.sh's set) come from Debian's archive, which `lock` resolves
in a container of debian:12 and `bundle` downloads; everything else from the servers on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import platform
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import musa_apt
import trees
import vendor
from conftest import REPO, cli, make_repo, remove_images, user_env
from images import debian12_image, numpy_wheel, serve_directory, write_simple_index
from musa_docker.fetch.cache import Entry
from musa_docker.values.locations import parse_location

pytestmark = pytest.mark.engine

MUSA_TORCH = "2.0.0+musa5.2.0"
BUILDKIT = "builder: buildkit\n  docker_cli: /usr/bin/docker\n"


def _netns(*args, env):
    """`musa-docker ARGS` in a new network namespace: only a loopback interface, which is down."""
    return subprocess.run(["unshare", "-n", sys.executable, "-m", "musa_docker", *args],
                          env={**env, "PYTHONPATH": str(REPO)}, cwd=REPO, capture_output=True, text=True,
                          timeout=1800)


@contextlib.contextmanager
def _servers(tmp: Path):
    """The MUSA apt repository, the MUSA index, the public index and the file server, on 127.0.0.1."""
    (tmp / "musa-wheels").mkdir(parents=True)
    tag = f"cp311-cp311-linux_{platform.machine()}"
    musa_torch = vendor._write_wheel(tmp / "musa-wheels", "torch", MUSA_TORCH, tag,
                                     {"torch/__init__.py": vendor._TORCH_INIT}, summary="MUSA torch stand-in")
    _, torch_musa = vendor.fixture_wheels(tmp / "files", "3.11")
    write_simple_index(tmp / "musa-index", [musa_torch])
    write_simple_index(tmp / "public-index", [numpy_wheel(), *vendor.dev_index_wheels("3.11")])
    repo = musa_apt.write_repo(tmp / "apt")
    with serve_directory(repo) as apt, serve_directory(tmp / "musa-index") as musa, \
            serve_directory(tmp / "files") as files, serve_directory(tmp / "public-index") as public:
        yield {"apt": apt.rstrip("/"), "musa": musa + "simple/", "public": public + "simple/",
               "torch_musa": files + torch_musa.name}


def _upstream(up: Path) -> dict:
    """The repos and archives the matrix takes, made once."""
    pytorch = up / "pytorch"
    make_repo(pytorch, {"README": "pytorch\n", "torch/__init__.py": "\n", "setup.py": "\n"}, tag="v2.0.0")
    return {"pytorch": pytorch, "torch_musa": vendor.torch_musa_repo(up), "vision": vendor.vision_repo(up),
            "toolkit": vendor.musa_toolkits_archive(up), "mudnn": vendor.mudnn_archive(up)}


def _matrix(path: Path, servers, tag: str, up: dict, roots: Path) -> Path:
    """The build-all file; `roots` holds the checkouts the builds make (PyTorch's, vision's), so the
    offline builds clone theirs from the bundle rather than reuse the online ones."""
    pytorch, torch_musa, vision, toolkit, mudnn = (up[k] for k in ("pytorch", "torch_musa", "vision", "toolkit",
                                                                  "mudnn"))
    path.write_text(
        f"defaults:\n  tag: \"{tag}\"\n  python_env: venv\n  python_version: \"3.11\"\n  {BUILDKIT}"
        f"  pip_index_url: {servers['public']}\n"
        "images:\n"
        "  - task: build-base\n    image: musa-docker-test/offline-base\n    sys: debian:12\n"
        f"    pytorch_repo: {pytorch.as_uri()}\n    pytorch_root: {roots / 'src'}\n"
        "  - task: build-dev\n    image: musa-docker-test/offline-dev\n"
        f"    base_img: musa-docker-test/offline-base:{tag}\n    musa_url: {toolkit}\n    mudnn_url: {mudnn}\n"
        f"    torch_musa_repo: {torch_musa.as_uri()}\n    torch_musa_ref: v1.0.0\n"
        f"    vision_repo: {vision.as_uri()}\n    vision_root: {roots / 'vision-src'}\n    gpu_arch: S4000\n"
        "  - task: release\n    image: musa-docker-test/offline-release\n    base_img: debian:12\n"
        f"    musa_apt_source: deb [trusted=yes] {servers['apt']} good main\n    musa_runtime: \"5.2\"\n"
        f"    musa_pip_index_url: {servers['musa']}\n    musa_wheel: [\"torch=={MUSA_TORCH}\"]\n"
        f"    torch_musa_whl_url: {servers['torch_musa']}\n    gpu_arch: S4000\n")
    return path


def _user(root: Path) -> dict:
    root.mkdir(parents=True)
    return user_env(root)


def test_build_all_offline_on_another_engine_with_no_network_has_the_online_inputs(tmp_path, engine, engine2):
    debian12_image(engine)
    tag = uuid.uuid4().hex[:8]
    refs = [f"musa-docker-test/offline-{kind}:{tag}" for kind in ("base", "dev", "release")]
    online = _user(tmp_path / "online")
    lock, bundle = tmp_path / "matrix.lock.json", tmp_path / "matrix.tar"
    try:
        with _servers(tmp_path / "servers") as servers:
            up = _upstream(tmp_path / "up")
            matrix = _matrix(tmp_path / "matrix.yaml", servers, tag, up, tmp_path / "online-trees")
            # the same matrix where the servers are gone: its own checkouts, from the bundle
            there = _matrix(tmp_path / "there.yaml", servers, tag, up, tmp_path / "offline-trees")
            locked = cli("lock", "-c", str(matrix), "-o", str(lock), env=online)
            assert locked.returncode == 0, locked.stdout[-3000:] + locked.stderr[-2000:]
            data = json.loads(lock.read_text())
            # the OS image's own packages, per set, and what each image takes from the public index
            assert sorted((r["image"], r["set"]) for r in data["os_apt"]) == [
                ("debian:12", "build"), ("debian:12", "release"), ("debian:12", "runtime")]
            runtime = next(r for r in data["os_apt"] if r["set"] == "runtime")
            assert {"python3-venv", "libgomp1"} <= {p["package"] for p in runtime["packages"]}
            # the release's final image: the runtime set without venv and the ensurepip wheels it brings
            release = {p["package"] for p in next(r for r in data["os_apt"] if r["set"] == "release")["packages"]}
            assert "libgomp1" in release and not {"python3-venv", "python3-pip-whl"} & release
            assert all(len(p["sha256"]) == 64 and p["url"].startswith("http") for p in runtime["packages"])
            numpy = numpy_wheel()
            sets = {s["image"].split("-")[-1]: s["requirements"] for s in data["pip_sets"]}
            assert sets["base"] == sets["release"] == [f"numpy=={numpy.name.split('-')[1]}"]
            assert sorted(r.split("==")[0] for r in sets["dev"]) == ["packaging", "wheel"]
            built = cli("build-all", "-c", str(matrix), "--lock", str(lock), env=online)
            assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]
            digests = {ref: engine.images.get(ref).labels["musa_docker.inputs"] for ref in refs}
            made = cli("bundle", "--lock", str(lock), "-o", str(bundle), env=online)
            assert made.returncode == 0, made.stdout[-3000:] + made.stderr[-2000:]
        # the servers are gone; the bundle travels
        copy = tmp_path / "elsewhere" / "matrix.tar"
        copy.parent.mkdir()
        shutil.copyfile(bundle, copy)
        offline = {**_user(tmp_path / "offline"), "DOCKER_HOST": engine2.sock}
        verified = _netns("bundle", "verify", str(copy), env=offline)
        assert verified.returncode == 0, verified.stderr
        imported = _netns("bundle", "import", str(copy), env=offline)
        assert imported.returncode == 0, imported.stdout[-3000:] + imported.stderr[-2000:]
        # a .deb the import brought, gone from the cache: one error naming it, nothing built
        deb = runtime["packages"][0]
        entry = Entry.of(Path(offline["MUSA_DOCKER_CACHE"]), parse_location(deb["url"]))
        aside = entry.final.rename(entry.final.with_name("aside"))
        refused = _netns("build-all", "-c", str(there), "--lock", str(lock), "--offline", env=offline)
        # build-all names it in each entry's row: both images take that package, neither is built
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        why = f"failed: --offline: apt package {Path(deb['filename']).name} is not on this machine: bring it with"
        assert refused.stdout.count(why) == 2, refused.stdout[-3000:] + refused.stderr[-2000:]    # dev: skipped
        assert not engine2.client.images.list(name="musa-docker-test/offline-base")
        assert not engine2.client.images.list(name="musa-docker-test/offline-dev")
        assert not engine2.client.images.list(name="musa-docker-test/offline-release")
        aside.rename(entry.final)
        built = _netns("build-all", "-c", str(there), "--lock", str(lock), "--offline", env=offline)
        assert built.returncode == 0, built.stdout[-6000:] + built.stderr[-2000:]
        assert "of the lock staged under offline/, bind-mounted into the RUN steps" in built.stdout
        for ref in refs:
            assert engine2.client.images.get(ref).labels["musa_docker.inputs"] == digests[ref], ref
        assert "from its git bundle" in built.stdout
        _same_trees(engine, engine2, refs)
    finally:
        remove_images(engine, *refs)


def _same_trees(engine, engine2, refs) -> None:
    """The source trees entered both builds as the same bytes. PyTorch's layer in the base is the
    tool's own tar: the same diff id. torch_musa's and vision's reach the dev image through the
    Dockerfile's ADD of the tool's tar: that layer is the builder's, made on each engine, and holds
    the same entries with the same bytes and headers; only the /home dir the ADD changed carries the
    builder's time of the change, so all but that time is compared."""
    from musa_docker.engine.api import Engine
    here, there = Engine(), Engine(engine2.sock)
    base, dev = refs[0], refs[1]
    assert here.inspect(base)["RootFS"]["Layers"][-1] == there.inspect(base)["RootFS"]["Layers"][-1]
    mine, theirs = trees.tree_files(here, dev), trees.tree_files(there, dev)
    assert sorted(mine) == sorted(theirs) == ["torch_musa", "vision"]
    for step in mine:
        ours = {path for path in mine[step] if path.startswith(f"home/{step}")}
        assert {p: mine[step][p] for p in ours} == {p: theirs[step][p] for p in ours}
        assert {p: mine[step][p][:4] + mine[step][p][5:] for p in mine[step]} == \
            {p: theirs[step][p][:4] + theirs[step][p][5:] for p in theirs[step]}
