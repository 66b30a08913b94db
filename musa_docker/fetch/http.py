"""HTTP for the download cache: requests, retried, and quiet about secrets.

What every request shares: the Job (one artifact's request settings), the session's headers
(`Accept-Encoding: identity`, so the bytes hashed are the bytes stored), statuses and errors,
and the retry loop; stream.py fetches over one connection, parts.py over several. Failures
become `Retry` (connection errors, timeouts, 5xx, 408, 429: worth another try, with backoff)
or a DownloadError (every other 4xx, TLS, a bad URL: never retried). Every message goes
through `redact()`: a URL's credentials are never printed, not even inside the exceptions
chained to the ones raised here.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, TextIO, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
import urllib3
from tqdm import tqdm

from .. import __version__
from .cache import Entry
from ..util import CHUNK, Cancelled, Say
from ..errors import DownloadError
from ..values.locations import Location, redact

# Client errors that are about timing, not about the request: worth another try.
RETRY_4XX = (408, 429)
MAX_DELAY = 30.0
T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    """What every request for one artifact needs: the artifact, where it goes, how to talk."""

    name: str
    location: Location
    entry: Entry
    url: str                                   # without userinfo (see split_auth)
    auth: Optional[tuple[str, str]]
    say: Say
    cancel: threading.Event
    out: TextIO
    progress: bool
    position: Optional[int]                    # the bar's line, for fetch_all
    verify: bool
    timeout: float
    retries: int                               # further attempts after a Retry (see with_retries)
    backoff: float                             # first delay in seconds, doubled each time
    connections: int = 1
    parallel_min: int = 1 << 62


class Retry(Exception):
    """A failure worth another attempt (the message is already redacted)."""

    def __init__(self, reason: str, delay: float | None = None, cause: BaseException | None = None):
        super().__init__(reason)
        self.reason = reason
        self.delay = delay
        self.cause = scrubbed(cause) if cause is not None else None


class Restart(Exception):
    """Throw the .part away and ask again from byte 0 (does not count as a failure)."""


class Ranged(Exception):
    """The server serves byte ranges of a large file and one connection is slow: fetch the rest
    over several. `have` bytes are in the .part already; `bar` is the artifact's live bar."""

    def __init__(self, total: int, validator: str):
        super().__init__(f"{total} bytes, validator {validator}")
        self.total = total
        self.validator = validator
        self.have = 0
        self.bar: Optional[tqdm] = None


def scrubbed(err: BaseException) -> BaseException:
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


def describe(err: BaseException) -> str:
    """A short, redacted reason for a network failure."""
    if isinstance(err, (requests.Timeout, urllib3.exceptions.TimeoutError)):
        return "timed out"
    if _resolution_failure(err)[0]:
        request = getattr(err, "request", None)
        host = urlsplit(request.url).hostname if request is not None and request.url else None
        return f"cannot resolve {host}" if host else "the host name does not resolve"
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


def split_auth(url: str) -> tuple[str, tuple[str, str] | None]:
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


def validator(resp: requests.Response) -> str | None:
    """A strong validator for If-Range (RFC 9110: weak ETags are not allowed there)."""
    etag = resp.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return resp.headers.get("Last-Modified")


def content_range(value: str | None) -> tuple[int, int | None] | None:
    """Parse `bytes N-M/T` into (N, T or None)."""
    if not value or not value.startswith("bytes "):
        return None
    span, _, total = value[6:].partition("/")
    first, _, _ = span.partition("-")
    try:
        return int(first), (None if total.strip() == "*" else int(total))
    except ValueError:
        return None


def int_header(resp: requests.Response, name: str) -> int | None:
    try:
        return int(resp.headers[name])
    except (KeyError, ValueError):
        return None


def raw_chunks(resp: requests.Response) -> Iterator[bytes]:
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


def session() -> requests.Session:
    s = requests.Session()
    s.headers.update(
        {
            "User-Agent": f"musa_docker/{__version__} {requests.utils.default_user_agent()}",
            # The checksum covers the bytes on disk: no transparent decompression.
            "Accept-Encoding": "identity",
        }
    )
    return s


def get(job: Job, s: requests.Session, headers: dict[str, str]) -> requests.Response:
    """Send one GET; raises Retry or DownloadError for failures to connect and bad statuses
    (except 416, which the caller reads)."""
    failure: BaseException | None = None
    try:
        resp = s.get(job.url, headers=headers, auth=job.auth, stream=True, timeout=job.timeout, verify=job.verify)
    except requests.RequestException as err:
        failure = err
    if failure is not None:
        _classify(job, failure)
    if resp.status_code != 416:
        try:
            check_status(job, resp)
        except BaseException:
            resp.close()
            raise
    return resp


def _classify(job: Job, err: BaseException) -> None:
    """Turn a requests exception from opening a connection into Retry or a DownloadError."""
    name, display = job.name, job.location.display
    host = urlsplit(job.url).hostname or "?"
    cause = scrubbed(err)
    if isinstance(err, requests.exceptions.SSLError):
        why = next(
            (e.verify_message for e in _walk(err) if isinstance(e, ssl.SSLCertVerificationError) and e.verify_message),
            redact(str(err)),
        )
        raise DownloadError(
            f"{name}: TLS verification failed for {host} ({display}): {why}; "
            "if the server uses a private CA, set REQUESTS_CA_BUNDLE=/path/to/ca.pem "
            "(--insecure turns verification off)"
        ) from cause
    if isinstance(err, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                        requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader)):
        raise DownloadError(f"{name}: invalid URL {display}: {redact(str(err))}") from cause
    if isinstance(err, requests.exceptions.TooManyRedirects):
        raise DownloadError(f"{name}: too many redirects from {display}; check the URL") from cause
    unresolved, temporary = _resolution_failure(err)
    if unresolved and not temporary:
        raise DownloadError(
            f"{name}: cannot resolve host {host!r} ({display}); check the URL and the network (DNS, HTTPS_PROXY)"
        ) from cause
    if isinstance(err, (requests.ConnectionError, requests.Timeout)):
        raise Retry(f"cannot resolve {host} (temporary)" if unresolved else describe(err), cause=err)
    raise DownloadError(f"{name}: request for {display} failed: {redact(str(err))}") from cause


def check_status(job: Job, resp: requests.Response) -> None:
    status = resp.status_code
    if status in (200, 206):
        return
    name, display = job.name, job.location.display
    reason = f"HTTP {status}{' ' + resp.reason if resp.reason else ''}"
    if status >= 500 or status in RETRY_4XX:
        retry_after = None
        try:
            retry_after = float(resp.headers.get("Retry-After", ""))
        except ValueError:
            pass
        raise Retry(f"server answered {reason}", retry_after)
    if status == 404 or status == 410:
        raise DownloadError(f"{name} not found (HTTP {status}): {display}; check the URL")
    if status in (401, 403):
        raise DownloadError(
            f"{name}: access denied ({reason}) for {display}; check the credentials "
            "in the URL (user:token@ or ?token=) and that they are still valid"
        )
    raise DownloadError(f"{name}: unexpected answer {reason} for {display}")


def bar(job: Job, total: int | None, initial: int) -> tqdm:
    """The artifact's one progress bar (disabled without progress)."""
    return tqdm(
        total=total, initial=initial, desc=job.name, unit="B", unit_scale=True, unit_divisor=1000,
        position=job.position, leave=True, file=job.out, disable=not job.progress, dynamic_ncols=True,
    )


def with_retries(job: Job, once: Callable[[], T], done: Callable[[], int]) -> T:
    """Call `once` until it returns, sleeping with backoff after each Retry.

    `done` tells the bytes kept so far: an attempt that made resumable progress resets the
    count, so the budget is for failures in a row. Raises DownloadError when it is spent.
    """
    failures = attempts = 0
    high_water = done()
    while True:
        if job.cancel.is_set():
            raise Cancelled()
        attempts += 1
        try:
            return once()
        except Retry as err:
            now = done()
            if now > high_water:
                failures, high_water = 0, now
            failures += 1
            if failures > job.retries:
                raise DownloadError(
                    f"{job.name}: could not download {job.location.display} after {attempts} attempts: "
                    f"{err.reason}; check the network and run again (a partial download "
                    "resumes where it stopped)"
                ) from err.cause
            delay = min(job.backoff * 2 ** (failures - 1), MAX_DELAY)
            if err.delay is not None:
                delay = max(delay, min(err.delay, MAX_DELAY * 2))
            job.say(f"retry {job.name} in {delay:.2g}s ({failures}/{job.retries}): {err.reason}")
            if job.cancel.wait(delay):
                raise Cancelled() from None
