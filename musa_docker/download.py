"""Fetch artifacts into a cache: verified, resumable, retried, and quiet about secrets.

`Downloader.fetch()` decides first and says so in one line (`cached ...`, `download ...`,
`resume ...`, `local ...`), then acts. http(s) downloads land in
`<cache>/downloads/<key>/<filename>`, where `key` is the sha256 of the URL without its
credentials, so a rotated token still finds the file.

Bytes go to `<filename>.part`, are checked against the promised sha256, and only then
`os.replace`d into place: a file that fails its checksum never sits in the cache as good.
The sha256 of the bytes received is recorded next to the file (`<filename>.sha256`, in
sha256sum's format) and a cache hit is re-hashed against it, so a file torn by a crash or
changed since is downloaded again (which is why nothing needs to be fsynced).

A `.part` left by a dropped connection or a killed run is resumed with `Range` + `If-Range`
(the validator is kept in `<filename>.part.json`); a server that answers 200 instead of 206
makes the download start over. An `fcntl` lock per cache entry (`.lock`) lets builds that
share a cache wait for each other.

file:// URLs and local paths are not copied: the file is hashed where it is.

Every message goes through `Location.display` or `redact()`: a URL's credentials are never
printed, not even inside the exceptions chained to the ones raised here.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import queue
import socket
import ssl
import sys
import threading
import time
import warnings
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator, Sequence, TextIO
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
import urllib3
from tqdm import tqdm

from . import __version__
from .errors import ChecksumError, DownloadError
from .locations import Location, redact, strip_credentials

CHUNK = 1 << 20
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by musa_docker.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/\n"
)
# Client errors that are about timing, not about the request: worth another try.
_RETRY_4XX = (408, 429)
_MAX_DELAY = 30.0


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


def human_size(n: int | None) -> str:
    """`812.3 MB`-style size, in SI units (the progress bars count the same way)."""
    if n is None:
        return "size unknown"
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} TB"


def cache_key(location: Location) -> str:
    """The cache entry's name: sha256 of the URL without credentials."""
    return hashlib.sha256(strip_credentials(location.url).encode()).hexdigest()


def hash_file(path: Path, cancel: threading.Event | None = None) -> tuple[str, int]:
    """(sha256 hex, size) of a file, read in chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            if cancel is not None and cancel.is_set():
                raise _Cancelled()
            chunk = f.read(CHUNK)
            if not chunk:
                return h.hexdigest(), size
            h.update(chunk)
            size += len(chunk)


class _Hasher:
    """sha256 in a thread of its own, so hashing overlaps receiving and writing.

    hashlib lets go of the GIL on large updates; the queue is short, so memory stays at a few
    chunks. `digest` is the hex digest, read after the `with` block.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._hash = hashlib.sha256()
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self.digest = ""

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            self._hash.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def __enter__(self) -> _Hasher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()
        self.digest = self._hash.hexdigest()


class _Cancelled(Exception):
    """Another artifact of the same fetch_all failed: stop, keep the .part for next time."""


class _Retry(Exception):
    """A failure worth another attempt (the message is already redacted)."""

    def __init__(self, reason: str, delay: float | None = None, cause: BaseException | None = None):
        super().__init__(reason)
        self.reason = reason
        self.delay = delay
        self.cause = _scrubbed(cause) if cause is not None else None


class _Restart(Exception):
    """Throw the .part away and ask again from byte 0 (does not count as a failure)."""


def _scrubbed(err: BaseException) -> BaseException:
    """A stand-in for `err` with the URLs in its message redacted, for `raise ... from`.

    requests and urllib3 quote the URL (query included) in their messages; chaining the
    original would print it with `--debug`. The stand-in keeps the type name and traceback.
    """
    cls = type(err)
    try:
        clone: BaseException = cls(redact(str(err)))
    except Exception:
        clone = DownloadError(f"{cls.__module__}.{cls.__qualname__}: {redact(str(err))}")
    clone.__traceback__ = err.__traceback__
    clone.__suppress_context__ = True
    return clone


def _walk(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[object] = [err]
    while stack:
        e = stack.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack.extend([e.__cause__, e.__context__, getattr(e, "reason", None), *e.args])


def _resolution_failure(err: BaseException) -> tuple[bool, bool]:
    """(the host did not resolve, the resolver said 'try again')."""
    name_error = getattr(urllib3.exceptions, "NameResolutionError", ())
    failed = False
    for e in _walk(err):
        if isinstance(e, socket.gaierror):
            return True, e.errno == socket.EAI_AGAIN
        if name_error and isinstance(e, name_error):
            failed = True
    return failed, False


def _describe(err: BaseException) -> str:
    """A short, redacted reason for a network failure."""
    if isinstance(err, (requests.Timeout, urllib3.exceptions.TimeoutError)):
        return "timed out"
    for e in _walk(err):
        if isinstance(e, ConnectionRefusedError):
            return "connection refused"
        if isinstance(e, ConnectionResetError):
            return "connection reset"
        if isinstance(e, urllib3.exceptions.IncompleteRead) or "IncompleteRead" in type(e).__name__:
            return "connection dropped"
    if isinstance(err, (requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError)):
        return "connection dropped"
    return redact(str(err)) or type(err).__name__


def _split_auth(url: str) -> tuple[str, tuple[str, str] | None]:
    """The URL without userinfo, and the userinfo as requests' `auth`.

    Credentials travel in the Authorization header that requests drops on a redirect to
    another host, and stay out of the URL that requests and urllib3 quote in messages.
    """
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return url, None
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=hostport)), (unquote(user), unquote(password))


def _validator(resp: requests.Response) -> str | None:
    """A strong validator for If-Range (RFC 9110: weak ETags are not allowed there)."""
    etag = resp.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return resp.headers.get("Last-Modified")


def _content_range_start(value: str | None) -> tuple[int, int | None] | None:
    """Parse `bytes N-M/T` into (N, T or None)."""
    if not value or not value.startswith("bytes "):
        return None
    span, _, total = value[6:].partition("/")
    first, _, _ = span.partition("-")
    try:
        return int(first), (None if total.strip() == "*" else int(total))
    except ValueError:
        return None


def _raw_chunks(resp: requests.Response) -> Iterator[bytes]:
    """The body as sent (no decompression), in chunks of at most CHUNK bytes.

    read1 hands over whatever has arrived, so a stall or a drop loses nothing already
    received (read(CHUNK) would sit on up to a whole chunk); urllib3 < 2.3 has no read1.
    """
    read1 = getattr(resp.raw, "read1", None)
    if read1 is None:
        yield from resp.raw.stream(64 * 1024, decode_content=False)
        return
    while True:
        chunk = read1(CHUNK, decode_content=False)
        if not chunk:
            return
        yield chunk


def _read_record(path: Path) -> str | None:
    """The sha256 recorded when the cached file was downloaded (sha256sum's format)."""
    try:
        return path.read_text().split()[0].lower()
    except (OSError, IndexError):
        return None


def _int_header(resp: requests.Response, name: str) -> int | None:
    try:
        return int(resp.headers[name])
    except (KeyError, ValueError):
        return None


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
    """

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
    ):
        self.cache_dir = Path(cache_dir)
        self.verify = verify
        self.out = out if out is not None else sys.stderr
        if progress is None:
            try:
                progress = self.out.isatty()
            except (AttributeError, ValueError):
                progress = False
        self.progress = progress
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
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
            except _Cancelled:
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

    def _fetch(self, name: str, location: Location, position: int | None, cancel: threading.Event) -> Fetched:
        if location.scheme == "file":
            return self._local(name, location, cancel)
        return self._remote(name, location, position, cancel)

    def _local(self, name: str, location: Location, cancel: threading.Event) -> Fetched:
        given = location.local_path or ""
        path = Path(os.path.expanduser(given))
        if not path.is_absolute():
            path = Path.cwd() / path
        if not path.exists():
            hint = ""
            first = given.split("/")[0]
            if "/" in given and "." in first and not given.startswith((".", "/", "~")):
                hint = f" (if it is a URL, write https://{location.display})"
            raise DownloadError(f"{name}: no such file: {path}{hint}; check the path given for it")
        if not path.is_file():
            raise DownloadError(f"{name}: {path} is not a file; give the archive itself")
        try:
            sha, size = hash_file(path, cancel)
        except OSError as err:
            raise DownloadError(f"{name}: cannot read {path}: {err.strerror or err}") from err
        self._check(name, location, sha, size, str(path))
        self._say(f"local {name} {path} ({human_size(size)}, {self._hash_note(location, sha)})")
        return Fetched(name, location, path, sha, size, True)

    def _remote(self, name: str, location: Location, position: int | None, cancel: threading.Event) -> Fetched:
        entry = self.cache_dir / "downloads" / cache_key(location)
        final = entry / location.filename
        record = final.with_name(final.name + ".sha256")
        self._prepare_cache(entry)
        with self._locked(name, entry / ".lock", cancel):
            if final.is_file():
                try:
                    sha, size = hash_file(final, cancel)
                except OSError as err:
                    raise DownloadError(f"{name}: cannot read the cached {final}: {err.strerror or err}") from err
                recorded = _read_record(record)
                if sha != recorded:
                    # Torn by a crash (nothing is fsynced), or changed since: not the bytes received.
                    self._say(
                        f"damaged {name} {location.filename}: cached sha256 {sha[:12]}, recorded "
                        f"{(recorded or 'none')[:12]}; downloading again"
                    )
                    final.unlink()
                elif location.sha256 is None or sha == location.sha256:
                    self._say(f"cached {name} {location.filename} ({human_size(size)}, {self._hash_note(location, sha)})")
                    return Fetched(name, location, final, sha, size, True)
                else:
                    self._say(
                        f"stale {name} {location.filename}: cached sha256 {sha[:12]}, expected "
                        f"{location.sha256[:12]}; downloading again"
                    )
                    final.unlink()
            sha, size = self._download(name, location, final, position, cancel)
            return Fetched(name, location, final, sha, size, False)

    def _hash_note(self, location: Location, sha: str) -> str:
        return "sha256 ok" if location.sha256 else f"sha256 {sha[:12]}"

    def _check(self, name: str, location: Location, sha: str, size: int, where: str) -> None:
        if location.sha256 is not None and sha != location.sha256:
            raise ChecksumError(
                f"{name}: sha256 mismatch for {where} ({human_size(size)}): expected {location.sha256}, "
                f"got {sha}; check that the URL and its '#sha256=' belong to the same file "
                "(the vendor may have republished it)"
            )

    def _prepare_cache(self, entry: Path) -> None:
        try:
            entry.mkdir(parents=True, exist_ok=True)
            tag = self.cache_dir / "CACHEDIR.TAG"
            if not tag.exists():
                tmp = tag.with_name(f"CACHEDIR.TAG.{os.getpid()}.{threading.get_ident()}")
                tmp.write_text(CACHEDIR_TAG)
                os.replace(tmp, tag)
        except OSError as err:
            raise DownloadError(
                f"cannot use the download cache {self.cache_dir}: {err.strerror or err}; "
                "set MUSA_DOCKER_CACHE to a writable directory"
            ) from err

    @contextmanager
    def _locked(self, name: str, lock_path: Path, cancel: threading.Event) -> Iterator[None]:
        # flock locks belong to the open file, so threads of one process exclude each other too.
        # Polled rather than blocking, so that a cancelled fetch_all does not hang here.
        with open(lock_path, "a+b") as lock:
            waiting = False
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waiting:
                        waiting = True
                        self._say(f"wait {name}: another build is downloading it (lock {lock_path})")
                    if cancel.wait(0.1):
                        raise _Cancelled() from None
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # -- the download proper --------------------------------------------------------------

    def _download(
        self, name: str, location: Location, final: Path, position: int | None, cancel: threading.Event
    ) -> tuple[str, int]:
        part = final.with_name(final.name + ".part")
        meta = final.with_name(final.name + ".part.json")
        url, auth = _split_auth(location.url)
        failures = 0
        attempts = 0
        said: set[str] = set()  # the one-line decisions already printed
        resumed_mismatch = False
        high_water = part.stat().st_size if part.exists() else 0
        started = time.monotonic()
        with requests.Session() as session:
            session.headers.update(
                {
                    "User-Agent": f"musa_docker/{__version__} {requests.utils.default_user_agent()}",
                    "Accept-Encoding": "identity",
                }
            )
            while True:
                if cancel.is_set():
                    raise _Cancelled()
                attempts += 1
                try:
                    sha, size, resumed = self._attempt(
                        session, url, auth, name, location, part, meta, position, cancel, said
                    )
                except _Restart:
                    self._discard(part, meta)
                    high_water = 0
                    continue
                except _Retry as err:
                    now = part.stat().st_size if part.exists() else 0
                    if now > high_water:
                        # Resumable progress: the budget is for failures in a row.
                        failures, high_water = 0, now
                    failures += 1
                    if failures > self.retries:
                        raise DownloadError(
                            f"{name}: could not download {location.display} after {attempts} attempts: "
                            f"{err.reason}; check the network and run again (a partial download "
                            "resumes where it stopped)"
                        ) from err.cause
                    delay = min(self.backoff * 2 ** (failures - 1), _MAX_DELAY)
                    if err.delay is not None:
                        delay = max(delay, min(err.delay, _MAX_DELAY * 2))
                    self._say(f"retry {name} in {delay:.2g}s ({failures}/{self.retries}): {err.reason}")
                    if cancel.wait(delay):
                        raise _Cancelled() from None
                    continue
                if location.sha256 is not None and sha != location.sha256:
                    if resumed and not resumed_mismatch:
                        # The part may predate a change the server's validator did not show.
                        resumed_mismatch = True
                        self._say(f"restart {name}: sha256 mismatch after resuming; downloading from the start")
                        self._discard(part, meta)
                        high_water = 0
                        continue
                    self._discard(part, meta)
                    self._check(name, location, sha, size, location.display)
                # The record first: a crash between the two leaves a file that does not match it.
                self._write_file(name, final.with_name(final.name + ".sha256"), f"{sha}  {final.name}\n")
                os.replace(part, final)
                self._discard(meta)
                break
        if not self.progress:
            seconds = max(time.monotonic() - started, 1e-6)
            self._say(
                f"fetched {name} {location.filename} {human_size(size)} in {seconds:.1f}s "
                f"({human_size(int(size / seconds))}/s)"
            )
        return sha, size

    @staticmethod
    def _discard(*paths: Path) -> None:
        for p in paths:
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def _resume_point(self, part: Path, meta: Path) -> tuple[int, str | None]:
        try:
            size = part.stat().st_size
        except FileNotFoundError:
            return 0, None
        try:
            validator = json.loads(meta.read_text()).get("validator")
        except (OSError, ValueError, AttributeError):
            validator = None
        if size == 0 or not validator:
            return 0, None
        return size, validator

    def _attempt(
        self,
        session: requests.Session,
        url: str,
        auth: tuple[str, str] | None,
        name: str,
        location: Location,
        part: Path,
        meta: Path,
        position: int | None,
        cancel: threading.Event,
        said: set[str],
    ) -> tuple[str, int, bool]:
        """One request. Returns (sha256, size, resumed) of the complete .part; raises _Retry,
        _Restart or DownloadError."""
        offset, validator = self._resume_point(part, meta)
        headers = {"Range": f"bytes={offset}-", "If-Range": validator} if offset else {}
        failure: BaseException | None = None
        try:
            resp = session.get(
                url, headers=headers, auth=auth, stream=True, timeout=self.timeout, verify=self.verify
            )
        except requests.RequestException as err:
            failure = err
        if failure is not None:
            self._classify(name, location, url, failure)  # raises
        with resp:
            status = resp.status_code
            if status == 416 and offset:
                self._say(f"restart {name}: the server refused to resume (HTTP 416); downloading from the start")
                raise _Restart()
            self._check_status(name, location, resp)
            mode = "wb"
            if offset and status == 206:
                content_range = _content_range_start(resp.headers.get("Content-Range"))
                if content_range is None or content_range[0] != offset:
                    self._say(f"restart {name}: the server resumed at the wrong place; downloading from the start")
                    raise _Restart()
                mode = "ab"
                total = content_range[1]
            else:
                if offset:
                    self._say(f"restart {name}: the server ignored the range request; downloading from the start")
                    offset = 0
                total = _int_header(resp, "Content-Length")
            body_length = _int_header(resp, "Content-Length")
            self._write_file(name, meta, json.dumps({"validator": _validator(resp), "size": total}))

            if offset:
                self._say(
                    f"resume {name} {location.display} at {human_size(offset)} of {human_size(total)}"
                )
            elif "download" not in said:
                said.add("download")
                self._say(f"download {name} {location.display} ({human_size(total)})")
            return self._stream(name, resp, part, mode, offset, total, body_length, position, cancel)

    def _classify(self, name: str, location: Location, url: str, err: BaseException) -> None:
        """Turn a requests exception from opening a connection into _Retry or a DownloadError."""
        host = urlsplit(url).hostname or "?"
        cause = _scrubbed(err)
        if isinstance(err, requests.exceptions.SSLError):
            why = next(
                (e.verify_message for e in _walk(err) if isinstance(e, ssl.SSLCertVerificationError) and e.verify_message),
                redact(str(err)),
            )
            raise DownloadError(
                f"{name}: TLS verification failed for {host} ({location.display}): {why}; "
                "if the server uses a private CA, set REQUESTS_CA_BUNDLE=/path/to/ca.pem "
                "(--insecure turns verification off)"
            ) from cause
        if isinstance(err, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                            requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader)):
            raise DownloadError(f"{name}: invalid URL {location.display}: {redact(str(err))}") from cause
        if isinstance(err, requests.exceptions.TooManyRedirects):
            raise DownloadError(f"{name}: too many redirects from {location.display}; check the URL") from cause
        unresolved, temporary = _resolution_failure(err)
        if unresolved and not temporary:
            raise DownloadError(
                f"{name}: cannot resolve host {host!r} ({location.display}); check the URL and the "
                "network (DNS, HTTPS_PROXY)"
            ) from cause
        if isinstance(err, (requests.ConnectionError, requests.Timeout)):
            raise _Retry(f"cannot resolve {host} (temporary)" if unresolved else _describe(err), cause=err)
        raise DownloadError(f"{name}: request for {location.display} failed: {redact(str(err))}") from cause

    def _check_status(self, name: str, location: Location, resp: requests.Response) -> None:
        status = resp.status_code
        if status in (200, 206):
            return
        reason = f"HTTP {status}{' ' + resp.reason if resp.reason else ''}"
        if status >= 500 or status in _RETRY_4XX:
            retry_after = None
            try:
                retry_after = float(resp.headers.get("Retry-After", ""))
            except ValueError:
                pass
            raise _Retry(f"server answered {reason}", retry_after)
        if status == 404 or status == 410:
            raise DownloadError(f"{name} not found (HTTP {status}): {location.display}; check the URL")
        if status in (401, 403):
            raise DownloadError(
                f"{name}: access denied ({reason}) for {location.display}; check the credentials "
                "in the URL (user:token@ or ?token=) and that they are still valid"
            )
        raise DownloadError(f"{name}: unexpected answer {reason} for {location.display}")

    def _write_file(self, name: str, path: Path, text: str) -> None:
        try:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
        except OSError as err:
            raise self._write_error(name, path, err) from err

    def _stream(
        self,
        name: str,
        resp: requests.Response,
        part: Path,
        mode: str,
        offset: int,
        total: int | None,
        body_length: int | None,
        position: int | None,
        cancel: threading.Event,
    ) -> tuple[str, int, bool]:
        try:
            f: IO[bytes] = open(part, mode)
        except OSError as err:
            raise self._write_error(name, part, err) from err
        received = 0
        with f, _Hasher() as h, tqdm(
            total=total,
            initial=offset,
            desc=name,
            unit="B",
            unit_scale=True,
            unit_divisor=1000,
            position=position,
            leave=True,
            file=self.out,
            disable=not self.progress,
            dynamic_ncols=True,
        ) as bar:
            if offset:
                # The hash covers the whole file: first the bytes kept from before.
                with open(part, "rb") as kept:
                    for chunk in iter(lambda: kept.read(CHUNK), b""):
                        h.update(chunk)
            failure: BaseException | None = None
            try:
                # Raw bytes: what the server sent is what gets hashed and stored.
                for chunk in _raw_chunks(resp):
                    if cancel.is_set():
                        raise _Cancelled()
                    try:
                        f.write(chunk)
                    except OSError as err:
                        raise self._write_error(name, part, err) from err
                    h.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as err:
                failure = err
            try:
                f.flush()
            except OSError as err:
                raise self._write_error(name, part, err) from err
        if failure is not None:
            raise _Retry(f"{_describe(failure)} after {human_size(offset + received)}", cause=failure)
        if body_length is not None and received != body_length:
            raise _Retry(f"connection dropped after {human_size(offset + received)} of {human_size(total)}")
        size = offset + received
        if total is not None and size != total:
            raise _Retry(f"incomplete: {human_size(size)} of {human_size(total)}")
        return h.digest, size, bool(offset)

    def _write_error(self, name: str, part: Path, err: OSError) -> DownloadError:
        hint = "free some space or" if err.errno == errno.ENOSPC else "check the permissions or"
        return DownloadError(
            f"{name}: cannot write {part}: {err.strerror or err}; {hint} set MUSA_DOCKER_CACHE to another directory"
        )
