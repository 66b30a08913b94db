"""Two runs sharing one cache at once: both succeed, or one waits and says so. Real processes run
the same fetch (the tool's own clone), clone (a user's root) and tree tar against a real repo."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, git, make_repo
from musa_docker.pipeline import context, log as build
from musa_docker import util
from musa_docker.fetch.locks import EntryLock

RACE = r"""
import sys, time
from pathlib import Path
from musa_docker.pipeline import context
from musa_docker.fetch import git as repos
from musa_docker.plan.plan import RepoStep
url, cache, root, gate = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
while not gate.exists():
    time.sleep(0.005)
said = []
states = [repos.ensure(RepoStep("torch_musa", url, "v1.0.0", cache / "repos" / "torch_musa", "fetch"), said.append,
                       "--torch-musa-repo", locks_dir=cache / "locks"),
          repos.ensure(RepoStep("vision", url, "v1.0.0", root / "vision", "clone"), said.append, "--vision-root",
                       locks_dir=cache / "locks")]
for s in states:
    tar = context.tree_tar(s.path, s.name, cache, said.append)
    print(s.name, s.commit, tar, context.tar_sha256(tar))
print("\n".join(said), file=sys.stderr)
"""


@pytest.fixture
def origin(tmp_path):
    path = tmp_path / "origin"
    sub = tmp_path / "sub"
    make_repo(sub, {"lib.h": "// lib\n"})
    make_repo(path, {f"src/f{i}.py": f"x = {i}\n" * 200 for i in range(300)})
    git("submodule", "add", "-q", sub.as_uri(), "third_party/lib", cwd=path)
    git("commit", "-q", "-m", "sub", cwd=path)
    git("tag", "v1.0.0", cwd=path)
    return path


@pytest.mark.parametrize("round", range(3))
def test_two_processes_fetch_clone_and_pack_into_one_cold_cache(tmp_path, origin, env, round):
    cache, root, gate = tmp_path / "cache", tmp_path / "home", tmp_path / "gate"
    procs = [subprocess.Popen([sys.executable, "-c", RACE, origin.as_uri(), str(cache), str(root), str(gate)],
                              cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    time.sleep(0.5)
    gate.touch()
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    for out, err, code in results:
        assert code == 0, err[-3000:]
    lines = [sorted(out.splitlines()) for out, _, _ in results]
    assert lines[0] == lines[1]                               # same commits, same tars, same digests
    tagged = git("rev-parse", "v1.0.0", cwd=origin)
    assert [line.split()[1] for line in lines[0]] == [tagged, tagged]
    for line in lines[0]:
        tar = line.split()[2]
        assert util.file_sha256(Path(tar)) == line.split()[3]
    # one clone each, in place, with its submodule; no private work dir left behind
    assert (root / "vision" / "third_party" / "lib" / "lib.h").read_text() == "// lib\n"
    assert sorted(p.name for p in root.iterdir()) == ["vision"]
    assert sorted(p.name for p in (cache / "repos").iterdir()) == ["torch_musa"]
    assert not [p for p in (cache / "trees").iterdir() if ".part" in p.name]
    said = results[0][1] + results[1][1]
    assert said.count("clone vision") == 1 and said.count("fetch torch_musa") == 1
    # whoever came second waited and said what for, or found the work done
    assert "reuse vision" in said and ("reuse torch_musa" in said)


def test_a_run_that_waits_says_for_what_and_who_holds_it(tmp_path):
    said = []
    lock_path = tmp_path / "entry.lock"
    first = EntryLock(lock_path, "the entry").acquire()
    got = threading.Event()

    def second():
        with EntryLock(lock_path, "the vision repo at /x", said.append):
            got.set()

    t = threading.Thread(target=second)
    t.start()
    time.sleep(0.3)
    assert not got.is_set()
    assert said == [f"wait for the vision repo at /x (another musa-docker run holds {lock_path})"]
    first.release()
    t.join(10)
    assert got.is_set()


def test_shared_holders_do_not_wait_for_each_other(tmp_path):
    said = []
    a = EntryLock(tmp_path / "e.lock", "e", said.append).acquire(shared=True)
    b = EntryLock(tmp_path / "e.lock", "e", said.append).acquire(shared=True)
    assert said == []
    assert not EntryLock(tmp_path / "e.lock", "e").try_exclusive()
    a.release(), b.release()
    assert EntryLock(tmp_path / "e.lock", "e").try_exclusive()


def test_eviction_skips_a_tar_another_run_holds(tmp_path):
    trees = tmp_path / "cache" / "trees"
    trees.mkdir(parents=True)
    olds = []
    for i in range(3):
        old = trees / f"vision-tree-{i:020d}.tar"
        old.write_bytes(b"x")
        (trees / f"{old.name}.sha256").write_text("0\n")
        olds.append(old)
        time.sleep(0.01)
    held = EntryLock(trees / f"{olds[0].name}.lock", "old").acquire(shared=True)
    src = tmp_path / "src"
    make_repo(src, {"a": "a\n"})
    new = context.tree_tar(src, "vision", tmp_path / "cache", lambda _: None)
    assert new.exists()
    assert olds[0].exists()          # held: kept
    assert not olds[1].exists()      # older than the newest other one, nobody holds it: evicted
    assert olds[2].exists()          # the newest other one is kept anyway
    held.release()


def test_log_names_differ_between_runs_of_one_image_in_one_second(tmp_path):
    names = {build.log_path(tmp_path, "musa-pytorch-dev:latest") for _ in range(20)}
    assert len(names) == 20
