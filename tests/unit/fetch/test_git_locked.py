"""git.py under --lock, with real repos (the `upstream` fixture: pytorch tagged v2.0.0 with a
submodule, then one more commit): locked commits checked before and after a clone, submodules
listed, and a repo made from git bundles with no upstream at all."""

from __future__ import annotations

import os

import pytest

from conftest import git
from musa_docker.errors import RepoError
from musa_docker.fetch import git as repos
from musa_docker.plan.plan import RepoStep


def _step(upstream, path, commit, locked=(), ref=None, url=None):
    return RepoStep(name="pytorch", url=url or upstream["url"], ref=ref or upstream["tag"], path=path,
                    action="clone", commit=commit, locked=tuple(locked), lock="the.lock.json")


def _ensure(step, tmp_path, **kw):
    return repos.ensure(step, lambda _: None, "--pytorch-root", locks_dir=tmp_path / "locks", **kw)


def test_submodules_are_listed_with_path_url_and_commit(upstream, tmp_path):
    state = _ensure(_step(upstream, tmp_path / "src" / "pytorch", upstream["tagged"]), tmp_path)
    (sub,) = repos.submodules(state.path)
    assert sub["path"] == "third_party/fmt" and sub["url"].startswith("file://") and len(sub["commit"]) == 40
    assert sub["commit"] == git("rev-parse", "HEAD", cwd=state.path / "third_party" / "fmt")


def test_a_ref_that_moved_is_refused_before_anything_is_cloned(upstream, tmp_path):
    with pytest.raises(RepoError) as caught:
        _ensure(_step(upstream, tmp_path / "src" / "pytorch", "0" * 40), tmp_path)
    assert f"has {upstream['tagged'][:12]} (the ref moved)" in str(caught.value)
    assert "lock --update pytorch" in str(caught.value)
    assert not (tmp_path / "src").exists()


def test_a_submodule_at_another_commit_is_refused(upstream, tmp_path):
    with pytest.raises(RepoError) as caught:
        _ensure(_step(upstream, tmp_path / "src" / "pytorch", upstream["tagged"], [("third_party/fmt", "1" * 40)]),
                tmp_path)
    assert "pytorch submodule third_party/fmt: the lock the.lock.json has commit 111111111111" in str(caught.value)


def test_a_repo_is_made_from_its_bundles_with_no_upstream(upstream, tmp_path):
    online = _ensure(_step(upstream, tmp_path / "online" / "pytorch", upstream["tagged"]), tmp_path)
    subs = repos.submodules(online.path)
    bundles = tmp_path / "bundles"
    for path, commit in [(online.path, upstream["tagged"])] + [(online.path / s["path"], s["commit"]) for s in subs]:
        repos.bundle_head(path, commit, tmp_path / "b.bundle")
        assert repos.keep_bundle(bundles, commit, tmp_path / "b.bundle") == 1
        assert repos.keep_bundle(bundles, commit, tmp_path / "b.bundle") == 0     # kept once
    step = _step(upstream, tmp_path / "offline" / "pytorch", upstream["tagged"],
                 [(s["path"], s["commit"]) for s in subs], url="https://unreachable.invalid/pytorch.git")
    state = _ensure(step, tmp_path, bundles=bundles)
    assert state.commit == upstream["tagged"] and not state.reused
    assert repos.submodules(state.path) == subs
    assert (state.path / "third_party" / "fmt" / "include" / "fmt" / "core.h").read_text() == "// fmt core\n"
    assert repos.is_clean(state.path, ignored=True)
    assert not [p for p in os.listdir(tmp_path / "offline") if p.startswith(".")]    # no half-made clone left


def test_a_missing_bundle_means_the_network(upstream, tmp_path):
    step = _step(upstream, tmp_path / "src" / "pytorch", upstream["tagged"], [("third_party/fmt", "2" * 40)])
    assert not repos.has_bundles(step, tmp_path / "bundles")


def test_a_locked_checkout_packs_the_same_layer_cloned_or_from_bundles(upstream, tmp_path):
    """The layer of a locked tree is a function of its commits: a clone from the remote and a
    checkout restored from git bundles (made under another umask, at another time) give the same
    tar bytes, and the tree in it is a git checkout at the commit, clean, with its submodule."""
    import subprocess
    import tarfile
    import time
    from musa_docker.pipeline import context
    online = _ensure(_step(upstream, tmp_path / "online" / "pytorch", upstream["tagged"]), tmp_path)
    subs = repos.submodules(online.path)
    bundles = tmp_path / "bundles"
    for path, commit in [(online.path, upstream["tagged"])] + [(online.path / s["path"], s["commit"]) for s in subs]:
        repos.bundle_head(path, commit, tmp_path / "b.bundle")
        repos.keep_bundle(bundles, commit, tmp_path / "b.bundle")
    time.sleep(1.1)          # other file times
    old = os.umask(0o002)    # other modes
    try:
        offline = _ensure(_step(upstream, tmp_path / "offline" / "pytorch", upstream["tagged"],
                                [(s["path"], s["commit"]) for s in subs]), tmp_path, bundles=bundles)
    finally:
        os.umask(old)
    tars = [context.tree_tar(state.path, "pytorch", tmp_path / f"cache-{n}", lambda _: None, at="home/pytorch",
                             locked=upstream["url"]) for n, state in enumerate((online, offline))]
    assert context.tar_sha256(tars[0]) == context.tar_sha256(tars[1])
    assert tars[0].read_bytes() == tars[1].read_bytes()
    # the same for a tree the Dockerfile ADDs from the context (a dev image's vision, torch_musa)
    added = [context.tree_tar(state.path, "pytorch", tmp_path / f"added-{n}", lambda _: None, locked=upstream["url"])
             for n, state in enumerate((online, offline))]
    assert added[0].read_bytes() == added[1].read_bytes()
    # without the lock, each is packed as it is on the disk: they differ
    plain = [context.tree_tar(state.path, "pytorch", tmp_path / f"plain-{n}", lambda _: None, at="home/pytorch")
             for n, state in enumerate((online, offline))]
    assert context.tar_sha256(plain[0]) != context.tar_sha256(plain[1])
    out = tmp_path / "image"
    with tarfile.open(tars[1]) as tar:
        names = tar.getnames()
        assert not [n for n in names if "FETCH_HEAD" in n or "/logs/" in n or "/hooks" in n], names
        tar.extractall(out)
    tree = out / "home" / "pytorch"
    run = lambda *a, cwd=tree: subprocess.run(["git", *a], cwd=cwd, capture_output=True, text=True, check=True).stdout
    assert run("rev-parse", "HEAD").strip() == upstream["tagged"]
    assert run("log", "--format=%H").split() == [upstream["tagged"]]
    assert run("config", "remote.origin.url").strip() == upstream["url"]
    assert run("status", "--porcelain", "--ignored") == ""
    assert [line.split()[:2] for line in run("submodule", "status", "--recursive").splitlines()] == \
        [[s["commit"], s["path"]] for s in subs]
    assert run("rev-parse", "HEAD", cwd=tree / "third_party" / "fmt").strip() == subs[0]["commit"]
