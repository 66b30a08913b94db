"""context: tree tars, the context stream, staging into the build dir."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from conftest import git, snapshot, stage_something
from musa_docker.pipeline import context
from musa_docker.pipeline.builddir import MARKER, BuildDir

EXTRACT = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}


class Said(list):
    def __call__(self, line):
        self.append(line)


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "home"
    path.mkdir()
    return path


def make_tree(root: Path) -> Path:
    (root / "src" / "deep").mkdir(parents=True)
    (root / "empty_dir").mkdir()
    (root / "README.md").write_text("readme\n")
    (root / "src" / "deep" / "data.bin").write_bytes(bytes(range(256)) * 40)
    (root / "empty").write_bytes(b"")
    run = root / "run.sh"
    run.write_text("#!/bin/sh\necho hi\n")
    run.chmod(0o755)
    secret = root / "private.txt"
    secret.write_text("only me\n")
    secret.chmod(0o600)
    (root / "src" / "ünïcode name.txt").write_text("名前\n")
    long_dir = root / ("d" * 60) / ("e" * 60)
    long_dir.mkdir(parents=True)
    (long_dir / ("f" * 80 + ".txt")).write_text("a long path\n")
    os.symlink("README.md", root / "link_to_file")
    os.symlink("src/deep", root / "link_to_dir")
    os.symlink("does/not/exist", root / "dangling")
    return root


# --- fingerprints and tree tars ---------------------------------------------------------------------

def test_fingerprint_is_stable_and_changes_with_any_file(tmp_path):
    root = make_tree(tmp_path / "tree")
    fp = context.fingerprint(root)
    assert context.fingerprint(root) == fp

    f = root / "src" / "deep" / "data.bin"
    st = f.stat()
    f.write_bytes(b"x" * st.st_size)                 # same size, new content, new mtime
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    fp2 = context.fingerprint(root)
    assert fp2 != fp

    (root / "run.sh").chmod(0o700)
    fp3 = context.fingerprint(root)
    assert fp3 != fp2

    os.unlink(root / "link_to_file")
    os.symlink("run.sh", root / "link_to_file")
    fp4 = context.fingerprint(root)
    assert fp4 != fp3

    (root / "empty_dir" / "new").write_text("")
    assert context.fingerprint(root) != fp4


def read_tar(path_or_bytes) -> tarfile.TarFile:
    if isinstance(path_or_bytes, (bytes, bytearray)):
        return tarfile.open(fileobj=io.BytesIO(path_or_bytes))
    return tarfile.open(path_or_bytes)


def test_tree_tar_round_trips(tmp_path):
    root = make_tree(tmp_path / "tree")
    tar = context.tree_tar(root, "pytorch", tmp_path / "cache", Said())
    assert tar.parent == tmp_path / "cache" / "trees"
    out = tmp_path / "out"
    with read_tar(tar) as tf:
        names = tf.getnames()
        assert names[0] == "pytorch"
        assert all(n == "pytorch" or n.startswith("pytorch/") for n in names)
        assert len(names) == len(set(names))
        assert all(m.uid == 0 and m.gid == 0 for m in tf.getmembers())
        tf.extractall(out, **EXTRACT)
    assert snapshot(out / "pytorch") == snapshot(root)
    assert os.readlink(out / "pytorch" / "link_to_dir") == "src/deep"


def test_tree_tar_carries_submodule_files(upstream, tmp_path):
    repo = tmp_path / "pytorch"
    git("clone", "-q", "--recurse-submodules", "--branch", upstream["tag"], upstream["url"], str(repo))
    tar = context.tree_tar(repo, "pytorch", tmp_path / "cache", Said())
    out = tmp_path / "out"
    with read_tar(tar) as tf:
        assert "pytorch/third_party/fmt/include/fmt/core.h" in tf.getnames()
        tf.extractall(out, **EXTRACT)
    assert snapshot(out / "pytorch") == snapshot(repo)
    assert git("rev-parse", "HEAD", cwd=out / "pytorch") == upstream["tagged"]


def test_tree_tar_is_served_from_the_cache(tmp_path):
    root = make_tree(tmp_path / "tree")
    said = Said()
    first = context.tree_tar(root, "pytorch", tmp_path / "cache", said)
    assert said[-1].startswith("pack pytorch")
    st = first.stat()
    second = context.tree_tar(root, "pytorch", tmp_path / "cache", said)
    assert second == first
    assert said[-1].startswith("cached pytorch tree tar")
    st2 = second.stat()
    # not rewritten: the same file; its mtime is refreshed so eviction goes by last use
    assert (st2.st_ino, st2.st_size, st2.st_ctime_ns >= st.st_ctime_ns) == (st.st_ino, st.st_size, True)
    assert st2.st_mtime_ns >= st.st_mtime_ns


def test_a_reused_tree_tar_outlives_newer_packs(tmp_path):
    cache = tmp_path / "cache"
    said = Said()
    roots = [make_tree(tmp_path / f"tree{i}") for i in range(2)]
    for i, root in enumerate(roots):
        (root / "differs").write_text(str(i))
    kept = context.tree_tar(roots[0], "pytorch", cache, said)
    context.tree_tar(roots[1], "pytorch", cache, said)
    os.utime(kept, (1, 1))                              # packed long ago...
    context.tree_tar(roots[0], "pytorch", cache, said)  # ...but used just now
    (roots[1] / "differs").write_text("third state")
    context.tree_tar(roots[1], "pytorch", cache, said)  # a third pack evicts the least recently used
    assert kept.exists()


def test_tree_tar_repacks_a_changed_tree(tmp_path):
    root = make_tree(tmp_path / "tree")
    first = context.tree_tar(root, "pytorch", tmp_path / "cache", Said())
    (root / "NEW").write_text("new\n")
    said = Said()
    second = context.tree_tar(root, "pytorch", tmp_path / "cache", said)
    assert second != first
    assert said[-1].startswith("pack pytorch")
    with read_tar(second) as tf:
        assert tf.extractfile("pytorch/NEW").read() == b"new\n"


def test_tree_tar_is_deterministic(tmp_path):
    root = make_tree(tmp_path / "tree")
    a = context.tree_tar(root, "pytorch", tmp_path / "cache-a", Said())
    b = context.tree_tar(root, "pytorch", tmp_path / "cache-b", Said())
    assert a.name == b.name
    assert a.read_bytes() == b.read_bytes()


def test_tree_tar_lists_each_dir_sorted(tmp_path):
    """Whatever order the filesystem lists a dir in, the tar's order is the names' order."""
    root = tmp_path / "tree"
    root.mkdir()
    names = [f"f{i:02d}" for i in range(40)]
    for name in reversed(names[::2]):
        (root / name).write_text(name)
    for name in names[1::2]:
        (root / name).write_text(name)
    (root / "sub").mkdir()
    for name in ("zz", "aa", "mm"):
        (root / "sub" / name).write_text(name)
    with read_tar(context.tree_tar(root, "t", tmp_path / "cache", Said())) as tf:
        members = tf.getnames()
    children = {}
    for m in members[1:]:
        parent, _, leaf = m.rpartition("/")
        children.setdefault(parent, []).append(leaf)
    assert children["t"] == sorted(names + ["sub"])
    assert children["t/sub"] == ["aa", "mm", "zz"]


def test_eviction_keeps_at_most_two_tars_per_name(tmp_path):
    cache = tmp_path / "cache"
    trees = cache / "trees"
    other_root = make_tree(tmp_path / "vision")
    other = context.tree_tar(other_root, "vision", cache, Said())
    root = tmp_path / "tree"
    root.mkdir()
    made = []
    for i in range(4):
        (root / "f").write_text(f"version {i}\n")
        os.utime(root / "f", ns=(i * 10**9, i * 10**9))
        made.append(context.tree_tar(root, "pytorch", cache, Said()))
        # As if packed a second apart (and long ago), whatever the filesystem's timestamp grain.
        os.utime(made[-1], ns=(10**18 + i * 10**9, 10**18 + i * 10**9))
        left = sorted(trees.glob("pytorch-*.tar"))
        assert len(left) <= 2
        assert made[-1] in left
    assert sorted(trees.glob("pytorch-*.tar")) == sorted(made[-2:])
    assert other.exists()                            # another tree's tars are not this one's


# --- the context stream and staging ---------------------------------------------------------------

def test_stage_hard_links_and_writes_dockerignore(tmp_path, home):
    src = tmp_path / "assets"
    (src / "common").mkdir(parents=True)
    (src / "Dockerfile").write_text("FROM scratch\n")
    (src / "common" / "a.sh").write_text("echo a\n")
    (src / "common" / "b.sh").write_text("echo b\n")
    (src / "common" / "nested").mkdir()               # only files of a staged dir are taken
    big = tmp_path / "cache" / "pytorch-abc.tar"
    big.parent.mkdir()
    big.write_bytes(b"t" * 4096)
    bd = BuildDir.acquire(tmp_path / "bd", home)
    staged = context.stage(
        bd, {"Dockerfile": src / "Dockerfile", "pytorch.tar": big}, {"common": src / "common"}
    )
    assert staged == ["Dockerfile", "common/a.sh", "common/b.sh", "pytorch.tar"]
    for rel, source in [("Dockerfile", src / "Dockerfile"), ("pytorch.tar", big),
                        ("common/a.sh", src / "common" / "a.sh")]:
        assert (bd.path / rel).stat().st_ino == source.stat().st_ino
    assert not (bd.path / "common" / "nested").exists()
    ignore = (bd.path / ".dockerignore").read_text().splitlines()
    assert MARKER in ignore
    bd.remove()
    assert not (tmp_path / "bd").exists()
    assert (src / "Dockerfile").read_text() == "FROM scratch\n"   # the sources survive the cleanup
    assert big.stat().st_size == 4096


def test_link_or_copy_copies_across_filesystems(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise OSError(18, "Invalid cross-device link")
    monkeypatch.setattr(context.os, "link", no_link)
    (tmp_path / "a").write_text("content\n")
    context.link_or_copy(tmp_path / "a", tmp_path / "x" / "b")
    assert (tmp_path / "x" / "b").read_text() == "content\n"
    assert (tmp_path / "x" / "b").stat().st_ino != (tmp_path / "a").stat().st_ino


def test_context_stream_round_trips_without_the_marker(tmp_path, home):
    bd = BuildDir.acquire(tmp_path / "bd", home)
    stage_something(bd, tmp_path)
    (bd.path / "common" / "a.sh").chmod(0o755)
    data = b"".join(context.tar_stream(context.dir_entries(bd.path)))
    assert len(data) % tarfile.BLOCKSIZE == 0
    with read_tar(data) as tf:
        names = tf.getnames()
        assert set(names) == {".dockerignore", "Dockerfile", "common", "common/a.sh"}
        assert MARKER not in names
        assert tf.extractfile("Dockerfile").read() == b"FROM scratch\n"
        assert tf.getmember("common/a.sh").mode == 0o755
        assert tf.getmember("common").isdir()
    assert data == b"".join(context.tar_stream(context.dir_entries(bd.path)))
    bd.remove()


def test_tar_stream_of_a_tree_matches_the_tree(tmp_path):
    root = make_tree(tmp_path / "tree")
    data = b"".join(context.tar_stream(context.dir_entries(root)))
    out = tmp_path / "out"
    with read_tar(data) as tf:
        tf.extractall(out, **EXTRACT)
    assert snapshot(out) == snapshot(root)



def test_fingerprint_sees_an_edit_that_restores_size_and_mtime(tmp_path):
    root = make_tree(tmp_path / "tree")
    target = next(p for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink())
    before_stat = target.stat()
    before = context.fingerprint(root)
    data = target.read_bytes()
    target.write_bytes(bytes([data[0] ^ 1]) + data[1:] if data else b"x")
    os.utime(target, ns=(before_stat.st_atime_ns, before_stat.st_mtime_ns))   # as cp -p / rsync -t would
    assert target.stat().st_size == before_stat.st_size and target.stat().st_mtime_ns == before_stat.st_mtime_ns
    assert context.fingerprint(root) != before


def test_a_large_file_that_cannot_be_hard_linked_is_copied_and_said(tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.fail("this test needs /dev/shm on another filesystem than the test's tmp dir")
    src = shm / f"musa-docker-test-{os.getpid()}.tar"
    try:
        with open(src, "wb") as f:
            f.truncate(64 << 20)
        said = []
        context.link_or_copy(src, tmp_path / "ctx" / "pytorch.tar", said.append)
        assert (tmp_path / "ctx" / "pytorch.tar").stat().st_size == 64 << 20
        assert os.stat(tmp_path / "ctx" / "pytorch.tar").st_ino != os.stat(src).st_ino
        assert said and said[0].startswith(f"copy {src.name} (0.07 GB) into the build dir")
    finally:
        src.unlink(missing_ok=True)


def test_a_layer_tar_puts_the_tree_at_its_path_and_records_its_sha256(tmp_path):
    import hashlib
    root = make_tree(tmp_path / "tree")
    said = Said()
    tar = context.tree_tar(root, "pytorch", tmp_path / "cache", said, at="home/pytorch")
    assert context.tar_sha256(tar) == hashlib.sha256(tar.read_bytes()).hexdigest()
    with read_tar(tar) as tf:
        names = tf.getnames()
        assert names[:2] == ["home", "home/pytorch"]
        assert tf.getmember("home").mode == 0o755 and tf.getmember("home").uid == 0
        out = tmp_path / "out"
        tf.extractall(out, **EXTRACT)
    assert snapshot(out / "home" / "pytorch") == snapshot(root)
    again = context.tree_tar(root, "pytorch", tmp_path / "cache", said, at="home/pytorch")
    assert again == tar and said[-1].startswith("cached pytorch layer tar")


def test_a_full_disk_while_packing_names_the_tar_and_leaves_no_part(tmp_path):
    import errno
    import subprocess
    cache = tmp_path / "cache"
    cache.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(cache)], capture_output=True, text=True)
    assert done.returncode == 0, f"mounting a small tmpfs needs root: {done.stderr}"
    try:
        tree = tmp_path / "tree"
        tree.mkdir()
        (tree / "big.bin").write_bytes(os.urandom(1 << 20))
        with pytest.raises(OSError) as info:
            context.tree_tar(tree, "pytorch", cache, lambda line: None)
        assert info.value.errno == errno.ENOSPC
        assert ".tar.part-" in info.value.filename          # the run's own private name
        assert not list((cache / "trees").glob("*.part*"))
    finally:
        subprocess.run(["umount", str(cache)], check=True)


def test_disk_errors_name_the_place_and_what_to_do(tmp_path):
    import errno

    from musa_docker.commands.build import disk_places
    from musa_docker.errors import DiskError, disk_errors
    from musa_docker.options.build import resolve_common
    common = resolve_common({}, {"HOME": str(tmp_path), "MUSA_DOCKER_CACHE": str(tmp_path / "cache")})
    part = tmp_path / "cache" / "trees" / "pytorch-layer-abc.tar.part"
    with pytest.raises(DiskError) as info:
        with disk_errors(disk_places(common)):
            raise OSError(errno.ENOSPC, "No space left on device", str(part))
    assert str(info.value).startswith(f"the cache of packed source trees cannot be written at {part}: no space")
    assert "MUSA_DOCKER_CACHE" in str(info.value)
    with pytest.raises(FileNotFoundError):          # not a disk refusing: a bug, left as it is
        with disk_errors(disk_places(common)):
            raise FileNotFoundError(errno.ENOENT, "gone", "x")
