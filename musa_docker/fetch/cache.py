"""The download cache: where an artifact's files live, what to do with them, and who may touch them.

An http(s) artifact lives in `<cache>/downloads/<key>/`, where `key` is the sha256 of the URL
without its credentials, so a rotated token still finds the file. `Entry` names every file of
that directory once. What to do is decided first, as pooch does (`download_action`): `look()`
reads what is on disk, `decide()` turns that and the promised sha256 into an `Action`, and only
then does anything get fetched or removed. An `fcntl` lock per entry lets builds that share a
cache wait for each other; the cache root carries a `CACHEDIR.TAG` so backup tools skip it.
"""

from __future__ import annotations

import enum
import errno
import fcntl
import hashlib
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterator, Optional

from ..errors import DownloadError
from ..values.locations import Location, strip_credentials
from ..util import Cancelled, hash_file, write_atomic

CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by musa_docker.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/\n"
)


def cache_key(location: Location) -> str:
    """The cache entry's name: sha256 of the URL without credentials."""
    return hashlib.sha256(strip_credentials(location.url).encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """The files of one cached artifact, named once.

    final: the verified file; part: bytes being received; meta: the .part's sidecar (validator,
    size, and for a download over several connections the ranges done); record: the sha256 of
    the bytes received, in sha256sum's format; lock: the entry's fcntl lock.
    """

    root: Path
    dir: Path
    final: Path
    part: Path
    meta: Path
    record: Path
    lock: Path

    @classmethod
    def of(cls, cache_dir: Path, location: Location) -> Entry:
        d = Path(cache_dir) / "downloads" / cache_key(location)
        final = d / location.filename
        return cls(
            root=Path(cache_dir),
            dir=d,
            final=final,
            part=final.with_name(final.name + ".part"),
            meta=final.with_name(final.name + ".part.json"),
            record=final.with_name(final.name + ".sha256"),
            lock=d / ".lock",
        )


@dataclass(frozen=True)
class Found:
    """What `look()` saw of the cached file: its sha256 and size, and the sha256 recorded."""

    sha256: str
    size: int
    recorded: Optional[str]


class Action(enum.Enum):
    USE = "cached"          # the file matches its record and the promised sha256
    DOWNLOAD = "download"   # nothing cached
    DAMAGED = "damaged"     # does not match its record: torn by a crash (nothing is fsynced), or changed
    STALE = "stale"         # intact, but not what the URL's #sha256= promises now


def look(name: str, entry: Entry, cancel: threading.Event | None = None) -> Optional[Found]:
    """Hash the cached file of artifact `name`, if there is one. Raises DownloadError when it
    cannot be read."""
    if not entry.final.is_file():
        return None
    try:
        sha, size = hash_file(entry.final, cancel)
    except OSError as err:
        raise DownloadError(f"{name}: cannot read the cached {entry.final}: {err.strerror or err}") from err
    return Found(sha, size, read_record(entry.record))


def decide(found: Optional[Found], location: Location) -> Action:
    """What to do with a cache entry, from what is on disk and what the location promises."""
    if found is None:
        return Action.DOWNLOAD
    if found.sha256 != found.recorded:
        return Action.DAMAGED
    if location.sha256 is None or found.sha256 == location.sha256:
        return Action.USE
    return Action.STALE


def read_record(path: Path) -> str | None:
    """The sha256 recorded when the cached file was downloaded (sha256sum's format)."""
    try:
        return path.read_text().split()[0].lower()
    except (OSError, IndexError):
        return None


def make_root(root: Path) -> None:
    """The cache dir, with the CACHEDIR.TAG that tells backup tools to skip it and `cache clean`
    that the tool made it. Raises OSError."""
    root.mkdir(parents=True, exist_ok=True)
    tag = root / "CACHEDIR.TAG"
    if not tag.exists():
        tmp = tag.with_name(f"CACHEDIR.TAG.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(CACHEDIR_TAG)
        os.replace(tmp, tag)


def made_by_tool(root: Path) -> bool:
    """Whether `root` carries the tool's own CACHEDIR.TAG."""
    try:
        return (root / "CACHEDIR.TAG").read_text().startswith(CACHEDIR_TAG.splitlines()[0]) and \
            "musa_docker" in (root / "CACHEDIR.TAG").read_text()
    except OSError:
        return False


def prepare(entry: Entry) -> None:
    """Make the entry's directory and the root's CACHEDIR.TAG; raises DownloadError."""
    try:
        make_root(entry.root)
        entry.dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(
            f"cannot use the download cache {entry.root}: {err.strerror or err}; "
            "set MUSA_DOCKER_CACHE to a writable directory"
        ) from err


@contextmanager
def locked(entry: Entry, on_wait: Callable[[], None], cancel: threading.Event) -> Iterator[None]:
    """Hold the entry's lock; `on_wait` is called once if another holder makes us wait."""
    # flock locks belong to the open file, so threads of one process exclude each other too.
    # Polled rather than blocking, so that a cancelled fetch_all does not hang here.
    with open(entry.lock, "a+b") as lock:
        _acquire(lock, on_wait, cancel)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _acquire(lock: IO[bytes], on_wait: Callable[[], None], cancel: threading.Event) -> None:
    waiting = False
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if not waiting:
            waiting = True
            on_wait()
        if cancel.wait(0.1):
            raise Cancelled()


def discard(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def write_error(name: str, path: Path, err: OSError) -> DownloadError:
    hint = "free some space or" if err.errno == errno.ENOSPC else "check the permissions or"
    return DownloadError(
        f"{name}: cannot write {path}: {err.strerror or err}; {hint} set MUSA_DOCKER_CACHE to another directory"
    )


def write_file(name: str, path: Path, text: str) -> None:
    """Replace `path` with `text` atomically, through a temp file of its own (two writers of one
    entry never share one); raises DownloadError."""
    try:
        write_atomic(path, text)
    except OSError as err:
        raise write_error(name, path, err) from err
