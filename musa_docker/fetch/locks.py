"""Locks on what builds share: repo clones, tree tars and build dirs, between threads of one
run (build-all --jobs), runs of one user, and users sharing a cache.

An `EntryLock` is an `fcntl.flock` on a `<entry>.lock` file: shared while an entry is read,
exclusive while it is made or changed (made under a private name and renamed into place by the
caller). flock locks belong to the open file, so each `EntryLock` opens its own and threads
exclude each other as processes do. A run that has to wait says so in one line first.

A lock file may be removed (eviction removes an old tar's), so a lock counts only when the file
locked is still the one at the path; otherwise it is taken again on the new file.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import Callable, Optional, TypeVar

from ..util import Say

T = TypeVar("T")


def lock_for(locks_dir: Path, kind: str, target: Path) -> Path:
    """The lock file, in the tool's own `locks_dir`, for something outside it (a user's repo
    root, a build dir): no lock file is ever left in a user's directories."""
    key = hashlib.sha256(os.path.abspath(target).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return locks_dir / f"{kind}-{key}.lock"


class EntryLock:
    def __init__(self, path: Path, what: str, say: Optional[Say] = None):
        self.path, self.what, self.say = path, what, say
        self.file = None
        self.mode = None          # fcntl.LOCK_SH | fcntl.LOCK_EX while held

    def acquire(self, shared: bool = False) -> "EntryLock":
        """Take the lock, or change a held one to `shared`/exclusive. A change is not atomic (flock
        drops the old lock first): callers check the entry again after it."""
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        while True:
            if self.file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.file = open(self.path, "a+b")
            try:
                fcntl.flock(self.file, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                if self.say:
                    self.say(f"wait for {self.what} (another musa-docker run holds {self.path})")
                try:
                    fcntl.flock(self.file, mode)
                except BaseException:
                    self.release()
                    raise
            if self._current():
                self.mode = mode
                return self
            self.release()      # the file was removed or replaced while we waited: lock the new one

    def try_exclusive(self) -> bool:
        """Take the exclusive lock if nobody holds the entry; never waits."""
        try:
            self.file = open(self.path, "a+b")
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.release()
            return False
        if not self._current():
            self.release()
            return False
        self.mode = fcntl.LOCK_EX
        return True

    def release(self) -> None:
        if self.file is not None:
            self.file.close()   # closing drops the flock
            self.file, self.mode = None, None

    def _current(self) -> bool:
        try:
            held, now = os.fstat(self.file.fileno()), os.stat(self.path)
        except FileNotFoundError:
            return False
        return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)

    def __enter__(self) -> "EntryLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def shared_entry(lock: EntryLock, read: Callable[[], Optional[T]], write: Callable[[], T],
                 still: Callable[[T], bool]) -> T:
    """The entry as `read()` finds it under the shared lock; when it is missing or out of date
    (`read()` gives None), `write()` makes it under the exclusive lock, and it is read again under
    the shared lock until `still(value)` holds (another run may have changed it between). Returns
    with the shared lock held: the caller releases it once it is done with the entry."""
    try:
        lock.acquire(shared=True)
        while True:
            value = read()
            if value is not None:
                return value
            lock.acquire(shared=False)
            value = write()
            lock.acquire(shared=True)
            if still(value):
                return value
    except BaseException:
        lock.release()
        raise
