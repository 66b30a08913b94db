"""The tool's cache dir, as `cache ls` lists it and `cache clean` empties it: what each build left
there, by kind, with its size and last use.

Only what the tool wrote is ever listed or removed: each kind is a name pattern the tool itself
makes (a download entry is named by the sha256 of its URL, a tree tar by its fingerprint, a log by
image, time and pid), and anything else in the cache dir is left where it is. An entry a running
build holds (its lock is taken, or its log's writer is alive) is skipped, never pulled from under
it, as the tree tars' own eviction does.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, List, Optional

from ..fetch.locks import EntryLock, lock_for
from .builddir import MARKER, BuildDir

# kind -> what it is, for people; the order `cache ls` shows them in.
KINDS = {
    "downloads": "vendor archives, wheels and installers, by URL",
    "trees": "packed source trees (one tar per tree state)",
    "repos": "the tool's own clones (--torch-musa-repo URL, muAlg, muThrust, torchaudio)",
    "builds": "build dirs left by a build that was killed",
    "logs": "build logs",
    "checked": "vendor archives and wheels already checked",
    "dockerfiles": "rendered Dockerfiles",
    "git-bundles": "git bundles of locked commits, from `bundle import`",
}

_DOWNLOAD = re.compile(r"[0-9a-f]{64}")
_TREE = re.compile(r".+-(?:tree|layer)-[0-9a-f]{1,64}\.tar")
_REPO = re.compile(r"(?P<name>[A-Za-z0-9_.]+(?:-[A-Za-z0-9_.]+)*?)-[0-9a-f]{12}")
_BUILD = re.compile(r"musa-docker-[A-Za-z0-9_]+")
_LOG = re.compile(r".+-\d{8}-\d{6}-(?P<pid>\d+)-[0-9a-f]{6}\.log")
_CHECKED = re.compile(r"[0-9a-f]{64}")
_DOCKERFILE = re.compile(r"[0-9a-f]{64}\.Dockerfile")
_GIT_BUNDLE = re.compile(r"[0-9a-f]{40}\.bundle")


@dataclass(frozen=True)
class Item:
    """One entry of the cache: a file, or a dir the tool made whole."""

    kind: str
    path: Path
    size: int                     # bytes on disk
    used: float                   # last use (newest mtime), seconds since the epoch
    lock: Optional[Path] = None   # held by a build that uses the entry
    pid: Optional[int] = None     # a log's writer

    def age_days(self, now: float) -> float:
        return max(0.0, (now - self.used) / 86400)


def inventory(cache: Path) -> List[Item]:
    """Every entry the tool made under `cache`, by kind in KINDS' order, newest first within a kind."""
    found: List[Item] = []
    for kind in KINDS:
        items = list(_LISTERS[kind](cache))
        found += sorted(items, key=lambda i: -i.used)
    return found


def in_use(item: Item) -> bool:
    """Whether a running build holds `item` (its lock is taken, or its log is being written)."""
    if item.pid is not None:
        return _alive(item.pid)
    if item.lock is None or not item.lock.exists():
        return False              # no lock file: no build holds it
    lock = EntryLock(item.lock, "")
    if not lock.try_exclusive():
        return True
    lock.release()
    return False


def remove(item: Item) -> bool:
    """Remove `item` unless a build holds it; True when it is gone. Only the files of the entry's
    own pattern go: a download entry's dir keeps anything that is not a file, a build dir keeps
    what its marker does not name (BuildDir.remove)."""
    if item.pid is not None and _alive(item.pid):
        return False
    lock = EntryLock(item.lock, "") if item.lock is not None and item.lock.exists() else None
    if lock is not None and not lock.try_exclusive():
        return False
    try:
        _REMOVERS[item.kind](item)
    finally:
        if lock is not None:
            lock.release()
    return not item.path.exists()


# --- what each kind looks like -------------------------------------------------------------------

def _children(folder: Path, pattern: re.Pattern, dirs: bool) -> Iterator[Path]:
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return
    for name in names:
        path = folder / name
        if pattern.fullmatch(name) and (path.is_dir() if dirs else path.is_file()) and not path.is_symlink():
            yield path


def _measure(path: Path) -> tuple:
    """(bytes, newest mtime) of a file, or of a dir's files (not following links)."""
    if path.is_file():
        st = path.stat()
        return st.st_blocks * 512 or st.st_size, st.st_mtime
    size, newest = 0, path.stat().st_mtime
    for root, _, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            size += st.st_blocks * 512 or st.st_size
            newest = max(newest, st.st_mtime)
    return size, newest


def _item(kind: str, path: Path, **kw) -> Optional[Item]:
    try:
        size, used = _measure(path)
    except OSError:
        return None              # removed by another run just now
    return Item(kind, path, size, used, **kw)


def _downloads(cache: Path) -> Iterator[Item]:
    for d in _children(cache / "downloads", _DOWNLOAD, dirs=True):
        item = _item("downloads", d, lock=d / ".lock")
        if item:
            yield item


def _trees(cache: Path) -> Iterator[Item]:
    for tar in _children(cache / "trees", _TREE, dirs=False):
        item = _item("trees", tar, lock=Path(f"{tar}.lock"))
        sha = Path(f"{tar}.sha256")
        if item:
            yield replace(item, size=item.size + sha.stat().st_size) if sha.exists() else item


def _repos(cache: Path) -> Iterator[Item]:
    for d in _children(cache / "repos", _REPO, dirs=True):
        name = _REPO.fullmatch(d.name).group("name")
        item = _item("repos", d, lock=lock_for(cache / "locks", f"repo-{name}", d))
        if item:
            yield item


def _builds(cache: Path) -> Iterator[Item]:
    for d in _children(cache / "builds", _BUILD, dirs=True):
        if (d / MARKER).is_file():
            item = _item("builds", d, lock=lock_for(cache / "locks", "build-dir", d))
            if item:
                yield item


def _logs(cache: Path) -> Iterator[Item]:
    for log in _children(cache / "logs", _LOG, dirs=False):
        item = _item("logs", log, pid=int(_LOG.fullmatch(log.name).group("pid")))
        if item:
            yield item


def _files(kind: str, pattern: re.Pattern) -> Callable[[Path], Iterator[Item]]:
    def listed(cache: Path) -> Iterator[Item]:
        for path in _children(cache / kind, pattern, dirs=False):
            item = _item(kind, path)
            if item:
                yield item
    return listed


_LISTERS = {
    "downloads": _downloads, "trees": _trees, "repos": _repos, "builds": _builds, "logs": _logs,
    "checked": _files("checked", _CHECKED), "dockerfiles": _files("dockerfiles", _DOCKERFILE),
    "git-bundles": _files("git-bundles", _GIT_BUNDLE),
}


def _remove_download(item: Item) -> None:
    """A download entry's files (the artifact, its .part, .part.json, .sha256 and lock), then the dir."""
    for child in item.path.iterdir():
        if child.is_file() and not child.is_symlink() and child.name != ".lock":
            child.unlink(missing_ok=True)
    _unlink_lock_and_dir(item)


def _unlink_lock_and_dir(item: Item) -> None:
    """Last, the entry's lock file (so a waiting run sees the entry gone, see locks.py), then its dir."""
    if item.lock is not None:
        item.lock.unlink(missing_ok=True)
    try:
        item.path.rmdir()
    except OSError:
        pass                     # something that is not the tool's is in it: it stays


def _remove_tree(item: Item) -> None:
    item.path.unlink(missing_ok=True)
    Path(f"{item.path}.sha256").unlink(missing_ok=True)
    if item.lock is not None:
        item.lock.unlink(missing_ok=True)


def _remove_repo(item: Item) -> None:
    # the tool's own clone, made whole under a name only the tool uses
    shutil.rmtree(item.path, ignore_errors=True)
    if item.lock is not None:
        item.lock.unlink(missing_ok=True)


def _remove_build(item: Item) -> None:
    BuildDir.load(item.path).remove()
    if item.lock is not None:
        item.lock.unlink(missing_ok=True)


def _remove_file(item: Item) -> None:
    item.path.unlink(missing_ok=True)


_REMOVERS = {
    "downloads": _remove_download, "trees": _remove_tree, "repos": _remove_repo, "builds": _remove_build,
    "logs": _remove_file, "checked": _remove_file, "dockerfiles": _remove_file, "git-bundles": _remove_file,
}


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
