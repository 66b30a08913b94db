"""`cache ls` and `cache clean` on a cache the tool itself filled (a real download over HTTP, a packed
tree, a build dir left by a killed build, logs): every entry is listed with its size and last use;
clean removes only what the tool made, keeps what a running build holds and what --older-than or
--keep-logs spare, and never touches a file someone else put there."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from musa_docker.fetch.download import Downloader
from musa_docker.fetch.locks import EntryLock
from musa_docker.pipeline import cachedir
from musa_docker.pipeline.builddir import BuildDir
from musa_docker.pipeline.context import tree_tar
from musa_docker.pipeline.log import BuildLog, log_path
from musa_docker.values.locations import parse_location

try:
    from httpserver import deterministic_bytes, http_server_fixture  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.support.httpserver import deterministic_bytes, http_server_fixture  # noqa: F401

DAY = 86400


def tool(*args, cache: Path):
    """The installed `musa-docker cache ...`, on a cache of the test's and an engine that is not there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUSA_DOCKER_")}
    env.update(MUSA_DOCKER_CACHE=str(cache), DOCKER_HOST="unix:///nonexistent/docker.sock")
    script = shutil.which("musa-docker", path=env.get("PATH"))
    assert script, "musa-docker is not on PATH: run `pip install -e .` in the repo root"
    return subprocess.run([script, "cache", *args], env=env, cwd=cache.parent, capture_output=True, text=True,
                          timeout=120)


def _age(path: Path, days: float) -> None:
    then = time.time() - days * DAY
    for root, dirs, files in os.walk(path) if path.is_dir() else [(str(path.parent), [], [path.name])]:
        for name in files + dirs:
            os.utime(os.path.join(root, name), (then, then))
    os.utime(path, (then, then))


@pytest.fixture
def filled(tmp_path, http_server):
    """A cache as builds leave it, with a file of someone else's in it: (cache, what is where)."""
    cache = tmp_path / "cache"
    http_server.add("/v/musa_toolkits.tar.gz", deterministic_bytes(300_000))
    got = Downloader(cache, progress=False).fetch_all(
        [("musa_toolkit", parse_location(http_server.url("/v/musa_toolkits.tar.gz")))])[0]
    tree = tmp_path / "src" / "pytorch"
    tree.mkdir(parents=True)
    (tree / "setup.py").write_text("print('torch')\n")
    tar = tree_tar(tree, "pytorch", cache, say=lambda line: None)
    killed = BuildDir.acquire(None, tmp_path, scratch=cache / "builds")     # a build that died
    killed.record(["Dockerfile"])
    (killed.path / "Dockerfile").write_text("FROM scratch\n")
    killed.seal()
    ended = subprocess.Popen(["true"])       # the pid of a build that has ended
    ended.wait()
    old_log = log_path(cache / "logs", "musa-pytorch-base:old").with_name(
        f"musa-pytorch-base_old-20261101-101010-{ended.pid}-abcdef.log")
    BuildLog(old_log).close()
    # a log whose writer still runs: this test's own process
    live_log = cache / "logs" / f"musa-pytorch-dev_live-20261207-101010-{os.getpid()}-abcdef.log"
    live_log.write_text("building\n")
    theirs = [cache / "notes.txt", cache / "downloads" / "mine.tar", cache / "logs" / "keep-me.log"]
    for path in theirs:
        path.write_text("not the tool's\n")
    _age(got.path.parent, 40)
    _age(old_log, 40)
    return cache, {"download": got.path.parent, "tar": tar, "build": killed.path, "old_log": old_log,
                   "live_log": live_log, "theirs": theirs}


def test_ls_lists_each_kind_with_sizes_and_last_use(filled):
    cache, where = filled
    done = tool("ls", cache=cache)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith(f"cache {cache}\n")
    assert "musa_toolkits.tar.gz (downloads/" in out and "40 days ago" in out
    assert where["tar"].name in out and where["build"].name in out
    assert f"{where['live_log'].name}  (in use)" in out
    assert "notes.txt" not in out and "keep-me.log" not in out and "mine.tar" not in out
    assert "BuildKit cache mounts: not listed (" in out and "/nonexistent/docker.sock" in out
    only_old = tool("ls", "--older-than", "30", cache=cache).stdout
    assert "musa_toolkits.tar.gz" in only_old and where["tar"].name not in only_old


def test_clean_older_than_removes_only_what_is_old_and_the_tools(filled):
    cache, where = filled
    done = tool("clean", "--older-than", "30", "--keep-logs", cache=cache)
    assert done.returncode == 0, done.stderr
    assert not where["download"].exists()
    assert where["old_log"].exists() and where["tar"].exists() and where["build"].exists()
    assert all(p.exists() for p in where["theirs"])
    assert "docker builder prune --filter type=exec.cachemount" in done.stdout


def test_clean_keeps_what_a_build_holds_and_what_is_not_the_tools(filled):
    cache, where = filled
    held = EntryLock(Path(f"{where['tar']}.lock"), "").acquire(shared=True)     # a build packing or sending it
    try:
        dry = tool("clean", "--dry-run", cache=cache)
        assert dry.returncode == 0 and "would remove downloads musa_toolkits.tar.gz" in dry.stdout, dry.stdout
        assert where["download"].exists() and where["old_log"].exists()
        done = tool("clean", cache=cache)
    finally:
        held.release()
    assert done.returncode == 0, done.stderr
    assert f"kept trees {where['tar'].name}" in done.stdout and where["tar"].exists()
    assert where["live_log"].exists()
    assert not where["download"].exists() and not where["old_log"].exists() and not where["build"].exists()
    assert all(p.exists() for p in where["theirs"]), "a file the tool did not write was removed"
    assert "2 in use, kept" in done.stdout
    assert [i.kind for i in cachedir.inventory(cache)] == ["trees", "logs"]


def test_clean_refuses_a_dir_the_tool_did_not_make(tmp_path):
    (tmp_path / "cache" / "logs").mkdir(parents=True)
    log = tmp_path / "cache" / "logs" / "x-20260101-000000-1-abcdef.log"
    log.write_text("someone's\n")
    done = tool("clean", cache=tmp_path / "cache")
    assert done.returncode != 0 and done.stderr.startswith("error: ") and "CACHEDIR.TAG" in done.stderr
    assert log.exists()


@pytest.mark.parametrize("args, words", [
    (["ls", "--keep-logs"], "--keep-logs is a flag of `cache clean`"),
    (["clean", "--older-than", "soon"], "--older-than 'soon' is not a number of days"),
    ([], "cache needs an action first: ls or clean"),
    (["purge"], "cache has no action 'purge'"),
])
def test_bad_cache_command_lines(tmp_path, args, words):
    done = tool(*args, cache=tmp_path / "cache")
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.startswith("error: ") and words in done.stderr, done.stderr
