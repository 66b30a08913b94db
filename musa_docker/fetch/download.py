"""Fetch artifacts into a cache: verified, resumable, retried, and quiet about secrets.

The facade the rest of the package uses. `Downloader.fetch()` decides first and says so in one
line (`cached ...`, `download ...`, `resume ...`, `local ...`), then acts: where things live and
what to do with them is `cache.py`, the HTTP is `transfer.py` (one connection) and `parts.py`
(a large file over several).

Bytes go to `<filename>.part`, are checked against the promised sha256, and only then
`os.replace`d into place: a file that fails its checksum never sits in the cache as good.
The sha256 of the bytes received is recorded next to the file (`<filename>.sha256`, in
sha256sum's format) and a cache hit is re-hashed against it, so a file torn by a crash or
changed since is downloaded again (which is why nothing needs to be fsynced).

file:// URLs and local paths are not copied: the file is hashed where it is.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence, TextIO

import urllib3
from tqdm import tqdm

from . import ranged as parts
from .cache import CACHEDIR_TAG, Action, Entry, cache_key, decide, discard
from .cache import locked, look, prepare, write_file
from ..defaults import CONNECTIONS
from ..errors import ChecksumError, DownloadError
from ..values.locations import Location, redact
from .single import attempt
from .http import Job, Ranged, Restart, session, split_auth, with_retries
from ..util import Cancelled, expand_home, hash_file, human_size, is_terminal

__all__ = ["CACHEDIR_TAG", "Downloader", "Fetched", "cache_key"]


@dataclass(frozen=True)
class Fetched:
    """An artifact on disk.

    path is in the cache for http(s), the original file for file:// URLs and local paths;
    sha256 is always computed; cached is True when nothing was downloaded this time.
    """

    name: str
    location: Location
    path: Path
    sha256: str
    size: int
    cached: bool


def local_file(name: str, location: Location) -> Path:
    """The file a local location names (`~` and relative paths resolved), as a build will read it.
    A dry run asks this too, so it refuses what the build would. Raises DownloadError."""
    given = location.local_path or ""
    path = expand_home(given)
    if not path.is_absolute():
        path = Path.cwd() / path
    try:
        exists, is_file = path.exists(), path.is_file()
    except OSError as err:          # a name too long for the filesystem, a permission on the way
        raise DownloadError(f"{name}: {path} cannot be looked at ({err.strerror}); check the path given for it") from None
    if not exists:
        hint = ""
        first = given.split("/")[0]
        if "/" in given and "." in first and not given.startswith((".", "/", "~")):
            hint = f" (if it is a URL, write https://{location.display})"
        raise DownloadError(f"{name}: no such file: {path}{hint}; check the path given for it")
    if not is_file:
        raise DownloadError(f"{name}: {path} is not a file; give the archive itself")
    return path


class Downloader:
    """Fetches artifacts into `cache_dir` (see the module docstring for the rules).

    verify:   check TLS certificates (REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE are honoured); False
              only for `--insecure`, which prints one warning line
    out:      where the one-line decisions, warnings and bars go (stderr by default)
    progress: tqdm bars; None means only when `out` is a terminal. Without bars each
              download ends with a `fetched ...` summary line
    retries:  further attempts after a connection error, timeout, dropped connection, 5xx, 408
              or 429; other 4xx are never retried. An attempt that resumed and made progress
              resets the count
    backoff:  first delay in seconds, doubled each time (capped at 30 s)
    timeout:  seconds to connect and between two reads
    connections: connections for one large file whose server serves ranges (see parts.py)
    """

    # The size from which a file counts as large (an attribute, so tests can use small files).
    parallel_min = parts.PARALLEL_MIN

    def __init__(
        self,
        cache_dir: Path,
        *,
        verify: bool = True,
        out: TextIO | None = None,
        progress: bool | None = None,
        retries: int = 4,
        backoff: float = 0.5,
        timeout: float = 30,
        connections: int = CONNECTIONS,
    ):
        self.cache_dir = Path(cache_dir)
        self.verify = verify
        self.out = out if out is not None else sys.stderr
        self.progress = is_terminal(self.out) if progress is None else progress
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.connections = max(1, connections)
        self._out_lock = threading.Lock()
        if not verify:
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
            self._say(
                "warning: --insecure: TLS certificates of download servers are not verified; "
                "anyone on the network path can replace the artifacts"
            )

    # -- public ---------------------------------------------------------------------------

    def fetch(self, name: str, location: Location) -> Fetched:
        """Fetch one artifact (see the module docstring).

        Raises DownloadError (not found, denied, unreachable, out of retries, cannot write the
        cache) or its subclass ChecksumError (the bytes do not match `#sha256=`).
        """
        return self._fetch(name, location, None, threading.Event())

    def fetch_all(self, items: Sequence[tuple[str, Location]]) -> list[Fetched]:
        """Fetch several artifacts at once, one thread and one bar each; results in input order.

        When one fails, the others stop at their next chunk (keeping their `.part` for the next
        run) or are not started, and the first failure is raised once all threads are done.
        """
        items = list(items)
        if not items:
            return []
        cancel = threading.Event()
        failures: list[BaseException] = []  # in the order they happened
        lock = threading.Lock()

        def run(position: int, name: str, location: Location) -> Fetched:
            try:
                return self._fetch(name, location, position, cancel)
            except Cancelled:
                raise
            except BaseException as err:
                with lock:
                    failures.append(err)
                cancel.set()
                raise

        with ThreadPoolExecutor(max_workers=min(len(items), 8), thread_name_prefix="fetch") as pool:
            futures = [pool.submit(run, i, name, loc) for i, (name, loc) in enumerate(items)]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
            except BaseException:
                cancel.set()
                raise
            if cancel.is_set():
                for f in futures:
                    f.cancel()
            wait(futures)
        if failures:
            for err in failures[1:]:
                self._say(f"also failed: {redact(str(err))}")
            raise failures[0]
        return [f.result() for f in futures]

    # -- steps ----------------------------------------------------------------------------

    def _say(self, line: str) -> None:
        with self._out_lock:
            if self.progress:
                tqdm.write(line, file=self.out)
            else:
                self.out.write(line + "\n")
            try:
                self.out.flush()
            except (AttributeError, ValueError, OSError):
                pass

    def _fetch(self, name: str, location: Location, position: Optional[int], cancel: threading.Event) -> Fetched:
        if location.scheme == "file":
            return self._local(name, location, cancel)
        return self._remote(name, location, position, cancel)

    def _local(self, name: str, location: Location, cancel: threading.Event) -> Fetched:
        path = local_file(name, location)
        try:
            sha, size = hash_file(path, cancel)
        except OSError as err:
            raise DownloadError(f"{name}: cannot read {path}: {err.strerror or err}") from err
        self._check(name, location, sha, size, str(path))
        self._say(f"local {name} {path} ({human_size(size)}, {self._hash_note(location, sha)})")
        return Fetched(name, location, path, sha, size, True)

    def _remote(self, name: str, location: Location, position: Optional[int], cancel: threading.Event) -> Fetched:
        entry = Entry.of(self.cache_dir, location)
        prepare(entry)
        on_wait = lambda: self._say(f"wait {name}: another build is downloading it (lock {entry.lock})")  # noqa: E731
        with locked(entry, on_wait, cancel):
            found = look(name, entry, cancel)
            action = decide(found, location)
            if found is not None and action is Action.USE:
                _touch(entry.final)      # `cache clean --older-than` goes by last use
                self._say(f"cached {name} {location.filename} ({human_size(found.size)}, "
                          f"{self._hash_note(location, found.sha256)})")
                return Fetched(name, location, entry.final, found.sha256, found.size, True)
            if found is not None and action is Action.DAMAGED:
                self._say(
                    f"damaged {name} {location.filename}: cached sha256 {found.sha256[:12]}, recorded "
                    f"{(found.recorded or 'none')[:12]}; downloading again"
                )
            elif found is not None and action is Action.STALE:
                self._say(
                    f"stale {name} {location.filename}: cached sha256 {found.sha256[:12]}, expected "
                    f"{(location.sha256 or '')[:12]}; downloading again"
                )
            if found is not None:
                entry.final.unlink()
            url, auth = split_auth(location.url)
            job = Job(name=name, location=location, entry=entry, url=url, auth=auth, say=self._say, cancel=cancel,
                      out=self.out, progress=self.progress, position=position, verify=self.verify,
                      timeout=self.timeout, retries=self.retries, backoff=self.backoff,
                      connections=self.connections, parallel_min=self.parallel_min)
            sha, size = self._download(job)
            return Fetched(name, location, entry.final, sha, size, False)

    def _hash_note(self, location: Location, sha: str) -> str:
        return "sha256 ok" if location.sha256 else f"sha256 {sha[:12]}"

    def _check(self, name: str, location: Location, sha: str, size: int, where: str) -> None:
        if location.sha256 is not None and sha != location.sha256:
            raise ChecksumError(
                f"{name}: sha256 mismatch for {where} ({human_size(size)}): expected {location.sha256}, "
                f"got {sha}; check that the URL and its '#sha256=' belong to the same file "
                "(the vendor may have republished it)"
            )

    # -- the download proper --------------------------------------------------------------

    def _download(self, job: Job) -> tuple[str, int]:
        """Download into the .part, check it, record its sha256 and move it into place."""
        entry, location = job.entry, job.location
        started = time.monotonic()
        resumed_mismatch = False
        while True:
            sha, size, resumed = self._receive(job)
            if location.sha256 is not None and sha != location.sha256:
                discard(entry.part, entry.meta)
                if resumed and not resumed_mismatch:
                    # The part may predate a change the server's validator did not show.
                    resumed_mismatch = True
                    self._say(f"restart {job.name}: sha256 mismatch after resuming; downloading from the start")
                    continue
                self._check(job.name, location, sha, size, location.display)
            # The record first: a crash between the two leaves a file that does not match it.
            write_file(job.name, entry.record, f"{sha}  {entry.final.name}\n")
            os.replace(entry.part, entry.final)
            discard(entry.meta)
            break
        if not self.progress:
            seconds = max(time.monotonic() - started, 1e-6)
            self._say(
                f"fetched {job.name} {location.filename} {human_size(size)} in {seconds:.1f}s "
                f"({human_size(int(size / seconds))}/s)"
            )
        return sha, size

    def _receive(self, job: Job) -> tuple[str, int, bool]:
        """The whole file in the .part: over several connections when a large file's server
        serves ranges (or an interrupted one left spans to resume), else over one."""
        state = parts.load(job)
        if state is not None:
            return self._parts(job, state, None)
        said: set[str] = set()  # the one-line decisions already printed
        part_size = lambda: job.entry.part.stat().st_size if job.entry.part.exists() else 0  # noqa: E731
        with session() as s:
            while True:
                try:
                    return with_retries(job, lambda: attempt(job, s, said), part_size)
                except Restart:
                    discard(job.entry.part, job.entry.meta)
                except Ranged as ranged:
                    return self._parts(job, None, ranged)

    def _parts(self, job: Job, state: Optional[parts._State], ranged: Optional[Ranged]) -> tuple[str, int, bool]:
        try:
            return parts.fetch(job, state, ranged)
        except Restart:
            parts.forget(job)
            self._say(f"restart {job.name}: the server did not answer a range as asked (the file changed, "
                      "or it serves no ranges); downloading over one connection")
            return self._receive(replace(job, connections=1))


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass          # a read-only cache still serves the file
