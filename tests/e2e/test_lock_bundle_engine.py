"""`musa-docker lock`, `--lock FILE` and `bundle` (write, verify, import) on the real engines,
against the local servers: the apt repository made with dpkg tools, a MUSA pip index, an HTTP
artifact server and git repos in tmp dirs.

Every refusal here happens before any build step; one release is built from its lock (pip taking
only the locked files), one offline with the same inputs digest as online from the same lock. A base
is built from an imported bundle with its upstream repos gone; a bundle's images are imported into
a second engine. A build-all matrix built offline with BuildKit and no network at all, on a second
engine, is test_offline_run_engine.py's."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import uuid
from pathlib import Path

import pytest

import musa_apt
import vendor
from conftest import assert_one_error, cli, git, make_repo, remove_images, user_env
from images import debian12_image, serve_directory, write_simple_index
from musa_docker.fetch.cache import Entry
from musa_docker.values.locations import parse_location

pytestmark = pytest.mark.engine

MUSA_TORCH = "2.0.0+musa5.2.0"
IMAGE = "musa-docker-test/locked-release"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def servers(tmp_path_factory, engine):
    """The apt repository, the MUSA index and an artifact server, each on 127.0.0.1."""
    debian12_image(engine)
    tmp = tmp_path_factory.mktemp("lock-servers")
    tag = f"cp311-cp311-linux_{platform.machine()}"
    (tmp / "musa-wheels").mkdir()
    musa_torch = vendor._write_wheel(tmp / "musa-wheels", "torch", MUSA_TORCH, tag,
                                     {"torch/__init__.py": vendor._TORCH_INIT}, summary="MUSA torch stand-in")
    _, torch_musa = vendor.fixture_wheels(tmp / "files", "3.11")
    write_simple_index(tmp / "musa-index", [musa_torch])
    write_simple_index(tmp / "public-index", vendor.release_index_wheels("3.11"))
    repo = musa_apt.write_repo(tmp / "apt")
    with serve_directory(repo) as apt, serve_directory(tmp / "musa-index") as musa, \
            serve_directory(tmp / "files") as files, serve_directory(tmp / "public-index") as public:
        yield {"apt": apt.rstrip("/"), "musa": musa + "simple/", "files": files, "tmp": tmp,
               "public": public + "simple/",
               "torch_musa": torch_musa, "musa_torch": musa_torch, "repo": repo}


def release_args(servers, tag):
    # the wheel's URL carries credentials the server ignores: they must never reach the lock
    return ["release", "-b", "debian:12", "--python-env", "venv", "-v", "3.11", "-i", IMAGE, "-t", tag,
            "--musa-apt-source", f"deb [trusted=yes] {servers['apt']} good main", "--musa-runtime", "5.2",
            "--musa-pip-index-url", servers["musa"], "--musa-wheel", f"torch=={MUSA_TORCH}",
            "--torch-musa-whl-url",
            servers["files"].replace("http://", "http://user:s3cr3t-tok@") + servers["torch_musa"].name,
            "--gpu-arch", "S4000", "--pip-index-url", servers["public"]]


@pytest.fixture(scope="module")
def locked(servers, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("locked")
    env = user_env(tmp)
    lock = tmp / "release.lock.json"
    args = release_args(servers, "unused")
    first = cli("lock", *args, "-o", str(lock), env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    text = lock.read_text()
    again = cli("lock", *args, "-o", str(lock), env=env)
    assert again.returncode == 0, again.stderr
    return {"lock": lock, "text": text, "again": lock.read_text(), "env": env, "out": first.stdout}


def test_the_lock_records_every_input_of_a_release(locked, servers, engine):
    data = json.loads(locked["text"])
    # apt: every package of the transaction, exactly as the repository's index has it
    apt, = data["apt"]
    assert apt["runtime"] == "5.2" and apt["arch"] == "amd64"
    packages = {p["package"]: p for p in apt["packages"]}
    # a release installs the line's runtime packages only: no toolkit, compiler or headers (lean)
    assert set(packages) == {"musa-musart-5-2", "libmudnn3-musa-5-2", "mccl-s4000"}
    runtime = packages["musa-musart-5-2"]
    assert runtime["version"] == "5.2.0-1"
    deb = servers["repo"] / runtime["filename"]
    assert runtime["sha256"] == _sha(deb) and runtime["size"] == deb.stat().st_size
    # pip: the MUSA index's file of the pinned version, with its sha256
    pip, = [r for r in data["pip"] if r["index"] == servers["musa"]]
    assert pip["requirement"] == f"torch=={MUSA_TORCH}" and pip["index"] == servers["musa"]
    assert pip["files"] == [{"filename": servers["musa_torch"].name, "sha256": _sha(servers["musa_torch"]),
                             "url": servers["musa"].replace("simple/", "files/") + servers["musa_torch"].name}]
    # the wheel file: size and sha256, its URL without the credentials it was given with
    artifact, = data["artifacts"]
    assert artifact["sha256"] == _sha(servers["torch_musa"]) and artifact["size"] == servers["torch_musa"].stat().st_size
    assert artifact["url"] == servers["files"] + servers["torch_musa"].name
    assert "s3cr3t-tok" not in locked["text"] and "s3cr3t-tok" not in locked["out"]
    # the OS image by the id the engine has for it
    assert data["images"] == [{"digests": [], "id": engine.images.get("debian:12").id, "ref": "debian:12"}]


def test_locking_again_what_did_not_move_writes_the_same_bytes(locked):
    assert locked["again"] == locked["text"]
    assert locked["text"].endswith("\n") and list(json.loads(locked["text"])) == sorted(json.loads(locked["text"]))


def test_the_plan_shows_the_lock_as_the_source_of_each_locked_value(locked, servers):
    lock = locked["lock"]
    done = cli(*release_args(servers, "x"), "--lock", str(lock), "--dry-run", env=locked["env"])
    assert done.returncode == 0, done.stderr
    plan = done.stdout
    assert f"apt musa-musart-5-2 5.2.0-1  (lock {lock})" in plan
    assert f"pip torch           {MUSA_TORCH} (1 files, sha256 each)  (lock {lock})" in plan
    assert f"torch_musa_wheel sha256 {_sha(servers['torch_musa'])}  (lock {lock})" in plan
    assert "image debian:12" in plan and "<resolved at prepare>" not in plan
    pins, = [line.split("=", 1)[1].split() for line in plan.splitlines()
             if line.startswith("  build arg   MUSA_APT_PACKAGES=")]
    assert [pin.split("=")[0] for pin in pins] == ["musa-musart-5-2", "libmudnn3-musa-5-2", "mccl-s4000"], pins
    assert f"build arg   MUSA_WHEEL_HASHES=torch=={MUSA_TORCH}@{_sha(servers['musa_torch'])}" in plan


def _tampered(locked, tmp_path, change) -> Path:
    data = json.loads(locked["text"])
    change(data)
    path = tmp_path / "tampered.lock.json"
    path.write_text(json.dumps(data))
    return path


def _refused(servers, locked, lock: Path, *words):
    """One `error:` line, the last (downloads say what they do on stderr before it), naming `words`;
    nothing built."""
    tag = uuid.uuid4().hex[:8]
    done = cli(*release_args(servers, tag), "--lock", str(lock), env=locked["env"])
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and done.stderr.splitlines()[-1] == errors[0], done.stderr
    assert all(word in errors[0] for word in words), errors[0]
    assert "Traceback" not in done.stderr and "build musa-docker-test" not in done.stdout
    return errors[0], tag


def test_a_package_version_the_repository_no_longer_has(locked, servers, tmp_path, engine):
    def change(data):
        data["apt"][0]["packages"][0]["version"] = "5.2.0-9"
    line, tag = _refused(servers, locked, _tampered(locked, tmp_path, change), "5.2.0-9", "is no longer in")
    assert not engine.images.list(name=f"{IMAGE}:{tag}")


def test_an_apt_package_whose_sha256_differs(locked, servers, tmp_path):
    def change(data):
        data["apt"][0]["packages"][1]["sha256"] = "0" * 64
    _refused(servers, locked, _tampered(locked, tmp_path, change), "apt package", "lists sha256")


def test_an_artifact_whose_sha256_differs(locked, servers, tmp_path):
    def change(data):
        data["artifacts"][0]["sha256"] = "1" * 64
    _refused(servers, locked, _tampered(locked, tmp_path, change), servers["torch_musa"].name, "sha256 mismatch",
             "the lock")


def test_a_musa_wheel_whose_sha256_differs(locked, servers, tmp_path):
    def change(data):
        next(r for r in data["pip"] if r["name"] == "torch")["files"][0]["sha256"] = "2" * 64
    _refused(servers, locked, _tampered(locked, tmp_path, change), f"pip torch=={MUSA_TORCH}", "the index's file changed")


def test_a_base_image_whose_id_differs(locked, servers, tmp_path):
    def change(data):
        data["images"][0]["id"] = "sha256:" + "3" * 64
    _refused(servers, locked, _tampered(locked, tmp_path, change), "image debian:12", "lock --update debian:12")


def test_a_flag_that_disagrees_with_the_lock(locked, servers):
    args = release_args(servers, "x")
    args[args.index("--musa-wheel") + 1] = "torch==9.9.9+musa5.2.0"
    done = cli(*args, "--lock", str(locked["lock"]), "--dry-run", env=locked["env"])
    assert_one_error(done, "has no pip distribution torch==9.9.9+musa5.2.0")


def test_a_release_builds_from_its_lock_and_pip_takes_only_the_locked_files(locked, servers, engine, tmp_path):
    tag = uuid.uuid4().hex[:8]
    try:
        built = cli(*release_args(servers, tag), "--lock", str(locked["lock"]), "--metadata-file",
                    str(tmp_path / "first.json"), env=locked["env"])
        assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]
        assert "apt pins (lock): musa-musart-5-2=5.2.0-1" in built.stdout
        assert f"the files of torch=={MUSA_TORCH} must have the sha256 the lock records (--require-hashes)" \
            in built.stdout
        again = cli(*release_args(servers, tag), "--lock", str(locked["lock"]), "--metadata-file",
                    str(tmp_path / "again.json"), env=locked["env"])
        assert again.returncode == 0, again.stderr
        first, second = (json.loads((tmp_path / n).read_text()) for n in ("first.json", "again.json"))
        assert first["inputs_digest"] == second["inputs_digest"]
    finally:
        remove_images(engine, f"{IMAGE}:{tag}")


# --- repos ------------------------------------------------------------------------------------------

@pytest.fixture
def upstream_repo(tmp_path):
    """pytorch tagged v2.0.0 with a submodule that has a submodule of its own."""
    inner = tmp_path / "up" / "inner"
    make_repo(inner, {"inner.h": "// inner\n"})
    fmt = tmp_path / "up" / "fmt"
    make_repo(fmt, {"core.h": "// fmt\n"})
    git("submodule", "add", "-q", inner.as_uri(), "deps/inner", cwd=fmt)
    git("commit", "-q", "-m", "inner", cwd=fmt)
    top = tmp_path / "up" / "pytorch"
    make_repo(top, {"README": "pytorch\n"})
    git("submodule", "add", "-q", fmt.as_uri(), "third_party/fmt", cwd=top)
    git("commit", "-q", "-m", "fmt", cwd=top)
    git("tag", "v2.0.0", cwd=top)
    return {"top": top, "fmt": fmt, "inner": inner}


def base_args(repo: Path, root: Path, index: str):
    # the public index too: a lock records what the image takes from it
    return ["build-base", "-s", "debian:12", "--python-env", "venv", "-v", "3.11", "-i", "musa-docker-test/locked-base",
            "--pytorch-repo", repo.as_uri(), "--pytorch-root", str(root), "--pip-index-url", index]


def test_a_repo_is_locked_with_its_submodules_recursively_and_a_moved_tag_is_refused(upstream_repo, servers, tmp_path,
                                                                                     env):
    top = upstream_repo["top"]
    lock = tmp_path / "base.lock.json"
    done = cli("lock", *base_args(top, tmp_path / "src", servers["public"]), "-o", str(lock), env=env)
    assert done.returncode == 0, done.stderr
    repo, = json.loads(lock.read_text())["repos"]
    assert (repo["name"], repo["url"], repo["ref"]) == ("pytorch", top.as_uri(), "v2.0.0")
    assert repo["commit"] == git("rev-parse", "v2.0.0^{commit}", cwd=top)
    assert repo["submodules"] == [
        {"path": "third_party/fmt", "url": upstream_repo["fmt"].as_uri(), "commit": git("rev-parse", "HEAD", cwd=upstream_repo["fmt"])},
        {"path": "third_party/fmt/deps/inner", "url": upstream_repo["inner"].as_uri(),
         "commit": git("rev-parse", "HEAD", cwd=upstream_repo["inner"])}]
    plan = cli(*base_args(top, tmp_path / "fresh", servers["public"]), "--lock", str(lock), "--dry-run", env=env).stdout
    assert f"@ v2.0.0 = {repo['commit'][:12]} (lock {lock})" in plan
    # the tag moves upstream: the build is refused before anything is cloned
    (top / "README").write_text("moved\n")
    git("commit", "-q", "-am", "moved", cwd=top)
    git("tag", "-f", "v2.0.0", cwd=top)
    refused = cli(*base_args(top, tmp_path / "fresh", servers["public"]), "--lock", str(lock), env=env)
    assert_one_error(refused, "pytorch v2.0.0", repo["commit"][:12], "the ref moved", "lock --update pytorch")
    assert not (tmp_path / "fresh").exists()
    # --update re-resolves that input alone, and keeps the others as they were
    updated = cli("lock", *base_args(top, tmp_path / "src2", servers["public"]), "-o", str(lock), "--update", "pytorch", env=env)
    assert updated.returncode == 0, updated.stderr
    data = json.loads(lock.read_text())
    assert data["repos"][0]["commit"] == git("rev-parse", "HEAD", cwd=top)
    unknown = cli("lock", *base_args(top, tmp_path / "src2", servers["public"]), "-o", str(lock), "--update", "pytorh", env=env)
    assert_one_error(unknown, "--update pytorh: no input of that name", "pytorch")


def test_a_dev_image_is_locked_with_its_repos_and_archives(tmp_path, env):
    files = tmp_path / "vendor"
    files.mkdir()
    torch_musa = vendor.torch_musa_repo(files)
    vision = vendor.vision_repo(files)
    toolkit, mudnn = vendor.musa_toolkits_archive(files), vendor.mudnn_archive(files)
    lock = tmp_path / "dev.lock.json"
    done = cli("lock", "build-dev", "-b", "musa-docker-test/no-such-base:1", "-m", str(toolkit), "-n", str(mudnn),
               "--torch-musa-repo", torch_musa.as_uri(), "--torch-musa-ref", "v1.0.0", "--vision-repo",
               vision.as_uri(), "--vision-root", str(tmp_path / "src"), "--gpu-arch", "S4000", "-o", str(lock),
               env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not locked: musa-docker-test/no-such-base:1, which the engine" in done.stdout
    data = json.loads(lock.read_text())
    repos = {r["name"]: r for r in data["repos"]}
    assert repos["torch_musa"]["commit"] == git("rev-parse", "v1.0.0^{commit}", cwd=torch_musa)
    assert repos["vision"]["commit"] == git("rev-parse", "v0.16.0^{commit}", cwd=vision)
    assert {a["name"]: a["sha256"] for a in data["artifacts"]} == {"musa_toolkits": _sha(toolkit), "mudnn": _sha(mudnn)}
    assert data["images"] == []


# --- bundles ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundled(locked, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundles")
    done = cli("bundle", "--lock", str(locked["lock"]), "-o", str(out / "release"), env=locked["env"])
    assert done.returncode == 0, done.stdout + done.stderr
    tarred = cli("bundle", "--lock", str(locked["lock"]), "-o", str(out / "release.tar"), env=locked["env"])
    assert tarred.returncode == 0, tarred.stderr
    return {"dir": out / "release", "tar": out / "release.tar", "out": done.stdout, "tmp": out}


def test_a_bundle_holds_every_input_once_with_a_manifest(bundled, locked, servers):
    root = bundled["dir"]
    manifest = json.loads((root / "manifest.json").read_text())
    lock = json.loads(locked["text"])
    assert (root / "lock.json").read_text() == locked["text"]
    # every file but the manifest is listed with its size and sha256, and nothing else is there
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert sorted([*manifest["files"], "manifest.json"]) == on_disk
    for rel, entry in manifest["files"].items():
        assert entry == {"sha256": _sha(root / rel), "size": (root / rel).stat().st_size}
    # a flat apt repository: its own Packages with each .deb's SHA256, the .debs hard links to their blobs
    apt, = manifest["inputs"]["apt"]
    packages = (root / apt["dir"] / "Packages").read_text()
    for pin in lock["apt"][0]["packages"]:
        deb = root / apt["dir"] / Path(pin["filename"]).name
        assert _sha(deb) == pin["sha256"] and f"SHA256: {pin['sha256']}" in packages
        assert deb.stat().st_ino == (root / "blobs" / "sha256" / pin["sha256"]).stat().st_ino
    # a wheelhouse for the MUSA index, its page linking the file with its sha256
    pip, = [p for p in manifest["inputs"]["pip"] if p["index"] == servers["musa"]]
    page = (root / pip["dir"] / "simple" / "torch" / "index.html").read_text()
    assert f'href="../../files/{servers["musa_torch"].name}#sha256={_sha(servers["musa_torch"])}"' in page
    assert (root / pip["dir"] / "files" / servers["musa_torch"].name).read_bytes() == servers["musa_torch"].read_bytes()
    # the wheel file, and debian:12 as `docker save` wrote it
    assert (root / "blobs" / "sha256" / _sha(servers["torch_musa"])).is_file()
    image, = manifest["inputs"]["images"]
    assert image["ref"] == "debian:12" and (root / image["blob"]).stat().st_size > 1_000_000
    # blobs are named by their bytes, each once
    blobs = [p.name for p in (root / "blobs" / "sha256").iterdir()]
    # the MUSA debs, debian:12's runtime and release sets (the one a subset of the other: each .deb
    # once), numpy from the public index, the two wheels and the image
    os_debs = {p["sha256"] for record in lock["os_apt"] for p in record["packages"]}
    assert sorted(r["set"] for r in lock["os_apt"]) == ["release", "runtime"]
    assert len(blobs) == len(set(blobs)) == len(lock["apt"][0]["packages"]) + len(os_debs) + 4


def test_the_tar_holds_the_same_files_and_verifies(bundled):
    done = cli("bundle", "verify", str(bundled["tar"]))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"verified {bundled['tar']}: ")
    # hard links are stored once: the tar is not much bigger than the directory's distinct bytes
    distinct = sum(p.stat().st_size for p in (bundled["dir"] / "blobs" / "sha256").iterdir())
    assert bundled["tar"].stat().st_size < distinct * 1.05 + 200_000


def _copy(bundled, name):
    target = bundled["tmp"] / name
    shutil.copytree(bundled["dir"], target)
    return target


def test_one_flipped_byte_in_any_blob_is_found_and_named(bundled):
    copy = _copy(bundled, f"flipped-{uuid.uuid4().hex[:6]}")
    blob = sorted((copy / "blobs" / "sha256").iterdir())[1]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    done = cli("bundle", "verify", str(copy))
    assert_one_error(done, f"blobs/sha256/{blob.name} differs from the manifest", "damaged")


def test_a_missing_file_and_a_file_added_are_refused(bundled):
    copy = _copy(bundled, f"changed-{uuid.uuid4().hex[:6]}")
    (copy / "extra.txt").write_text("not in the manifest\n")
    assert_one_error(cli("bundle", "verify", str(copy)), "extra.txt is not in the manifest")
    (copy / "extra.txt").unlink()
    (copy / "lock.json").unlink()
    assert_one_error(cli("bundle", "verify", str(copy)), "lock.json is missing")


def test_a_damaged_bundle_is_not_imported(bundled, tmp_path):
    copy = _copy(bundled, f"damaged-{uuid.uuid4().hex[:6]}")
    deb = next((copy / "apt").rglob("*.deb"))
    deb.write_bytes(deb.read_bytes()[:-1])       # a hard link: its blob changes with it
    env = user_env(tmp_path)
    assert_one_error(cli("bundle", "import", str(copy), env=env), "differs from the manifest")
    assert not (tmp_path / "cache" / "downloads").exists()


def test_a_bundle_never_overwrites_what_is_there(locked, bundled):
    done = cli("bundle", "--lock", str(locked["lock"]), "-o", str(bundled["dir"]), env=locked["env"])
    assert_one_error(done, "exists: name a new directory")


def test_import_seeds_the_download_cache_and_loads_the_images_into_another_engine(bundled, servers, tmp_path,
                                                                                engine2):
    env = {**user_env(tmp_path), "DOCKER_HOST": engine2.sock}
    done = cli("bundle", "import", str(bundled["tar"]), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "loaded image debian:12" in done.stdout
    manifest = json.loads((bundled["dir"] / "manifest.json").read_text())
    assert engine2.client.images.get("debian:12").id == manifest["inputs"]["images"][0]["id"]
    # each file lies where a download of its URL would have left it, with its record
    for item in manifest["inputs"]["artifacts"] + [p for a in manifest["inputs"]["apt"] for p in a["packages"]]:
        entry = Entry.of(tmp_path / "cache", parse_location(item["url"]))
        assert _sha(entry.final) == Path(item["blob"]).name
        assert entry.record.read_text().split()[0] == Path(item["blob"]).name
    again = cli("bundle", "import", str(bundled["dir"]), env=env)
    assert again.returncode == 0 and "imported" in again.stdout and "is on the engine already" in again.stdout
    assert "0 file(s) into the download cache" in again.stdout


# --- a repo with nested submodules, built from its bundle with the upstream gone ------------------

@pytest.fixture
def upstream(tmp_path):
    inner = tmp_path / "up" / "inner"
    make_repo(inner, {"inner.h": "// inner\n"})
    fmt = tmp_path / "up" / "fmt"
    make_repo(fmt, {"core.h": "// fmt\n"})
    git("submodule", "add", "-q", inner.as_uri(), "deps/inner", cwd=fmt)
    git("commit", "-q", "-m", "inner", cwd=fmt)
    top = tmp_path / "up" / "pytorch"
    make_repo(top, {"README": "pytorch\n", "torch/__init__.py": "\n", "setup.py": "\n"})
    git("submodule", "add", "-q", fmt.as_uri(), "third_party/fmt", cwd=top)
    git("commit", "-q", "-m", "fmt", cwd=top)
    git("tag", "v2.0.0", cwd=top)
    return tmp_path / "up"


def _user(root: Path) -> dict:
    root.mkdir()
    return user_env(root)


def test_a_base_builds_from_an_imported_bundle_with_its_upstream_gone(upstream, servers, tmp_path, engine):
    tag = uuid.uuid4().hex[:8]
    args = ["build-base", "-s", "debian:12", "--python-env", "venv", "-v", "3.11", "-i", "musa-docker-test/bundled-base",
            "-t", tag, "--pytorch-repo", (upstream / "pytorch").as_uri(), "--pip-index-url", servers["public"]]
    online = _user(tmp_path / "online-user")
    lock = tmp_path / "base.lock.json"
    done = cli("lock", *args, "--pytorch-root", str(tmp_path / "src-online"), "-o", str(lock), env=online)
    assert done.returncode == 0, done.stderr
    made = cli("bundle", "--lock", str(lock), "-o", str(tmp_path / "base.tar"), env=online)
    assert made.returncode == 0, made.stderr
    os.rename(upstream, tmp_path / "gone")      # no repo to clone from any more
    offline = _user(tmp_path / "offline-user")
    imported = cli("bundle", "import", str(tmp_path / "base.tar"), env=offline)
    assert imported.returncode == 0, imported.stderr
    assert "2 git bundle(s)" not in imported.stdout and "3 git bundle(s)" in imported.stdout
    # before the import, --offline names what is missing and builds nothing
    empty = _user(tmp_path / "empty-user")
    refused = _in_netns(*args, "--pytorch-root", str(tmp_path / "src-none"), "--lock", str(lock), "--offline",
                        env=empty)
    assert_one_error(refused, "--offline: repo pytorch @ v2.0.0", "is not on this machine", "bundle import")
    try:
        # the tool in a network namespace with no interface but loopback: it reaches nothing but the
        # engine's socket; with the classic builder the build's RUN steps still reach the index
        built = _in_netns(*args, "--pytorch-root", str(tmp_path / "src-offline"), "--lock", str(lock),
                          "--offline", env=offline)
        assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]
        # the checkout `lock` made online, at the same commits, gives the same inputs digest
        metadata = tmp_path / "online.json"
        online_build = cli(*args, "--pytorch-root", str(tmp_path / "src-online"), "--lock", str(lock),
                           "--metadata-file", str(metadata), env=online)
        assert "from its git bundle" in built.stdout and "offline: 1 repo(s)" in built.stdout
        data = json.loads(lock.read_text())
        labels = engine.images.get(f"musa-docker-test/bundled-base:{tag}").labels
        assert labels["musa_docker.pytorch.commit"] == data["repos"][0]["commit"]
        statuses = git("submodule", "status", "--recursive", cwd=tmp_path / "src-offline" / "pytorch")
        assert [line.split()[:2] for line in statuses.splitlines()] == \
            [[s["commit"], s["path"]] for s in data["repos"][0]["submodules"]]
        assert online_build.returncode == 0, online_build.stdout[-3000:] + online_build.stderr[-2000:]
        assert json.loads(metadata.read_text())["inputs_digest"] == labels["musa_docker.inputs"]
    finally:
        remove_images(engine, f"musa-docker-test/bundled-base:{tag}")


def _in_netns(*args, env):
    """`musa-docker ARGS` in a new network namespace: only a loopback interface, which is down."""
    import subprocess
    import sys
    from conftest import REPO
    env = {**env, "PYTHONPATH": str(REPO)}
    return subprocess.run(["unshare", "-n", sys.executable, "-m", "musa_docker", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=1800)


def test_a_differential_bundle_of_the_same_lock_holds_no_blob(bundled, locked, tmp_path):
    diff = tmp_path / "diff"
    done = cli("bundle", "--lock", str(locked["lock"]), "-o", str(diff), "--since", str(bundled["tar"]),
               env=locked["env"])
    assert done.returncode == 0, done.stderr
    assert not (diff / "blobs" / "sha256").exists() or not list((diff / "blobs" / "sha256").iterdir())
    assert "saved" not in done.stdout                    # the image is not saved again
    manifest = json.loads((diff / "manifest.json").read_text())
    assert manifest["since"]["manifest_sha256"] == _sha(bundled["dir"] / "manifest.json")
    assert cli("bundle", "verify", str(diff)).returncode == 0


def test_a_release_builds_offline_from_an_imported_bundle(bundled, locked, servers, tmp_path, engine):
    """The tool in a network namespace: the wheel file from the imported cache, the apt versions and
    MUSA wheels as the lock has them, debian:12 from the engine; nothing asked of a server by the tool."""
    env = _user(tmp_path / "user")
    assert cli("bundle", "import", str(bundled["tar"]), env=env).returncode == 0
    tag = uuid.uuid4().hex[:8]
    try:
        built = _in_netns(*release_args(servers, tag), "--lock", str(locked["lock"]), "--offline", env=env)
        assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]
        assert "cached torch_musa_wheel" in built.stdout + built.stderr
        assert "offline: 0 repo(s), 1 artifact(s) and 0 apt package(s)" in built.stdout   # the classic builder
        digest = engine.images.get(f"{IMAGE}:{tag}").labels["musa_docker.inputs"]
        # the same inputs as the release built online from the same lock (up to date, unless another
        # run sharing the engine removed the image meanwhile: the digest is compared either way)
        metadata = tmp_path / "online.json"
        online = cli(*release_args(servers, tag), "--lock", str(locked["lock"]), "--metadata-file", str(metadata),
                     env=locked["env"])
        assert online.returncode == 0, online.stdout[-3000:] + online.stderr[-2000:]
        assert json.loads(metadata.read_text())["inputs_digest"] == digest
    finally:
        remove_images(engine, f"{IMAGE}:{tag}")


def test_a_repo_with_uncommitted_changes_is_not_locked(upstream_repo, servers, tmp_path, env):
    src = tmp_path / "src"
    first = cli("lock", *base_args(upstream_repo["top"], src, servers["public"]), "-o", str(tmp_path / "a.json"), env=env)
    assert first.returncode == 0, first.stderr
    (src / "pytorch" / "local.txt").write_text("a change of mine\n")
    done = cli("lock", *base_args(upstream_repo["top"], src, servers["public"]), "-o", str(tmp_path / "b.json"), env=env)
    assert_one_error(done, f"pytorch at {src / 'pytorch'} has changes no commit holds")
    assert not (tmp_path / "b.json").exists()
