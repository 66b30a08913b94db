"""One large artifact over several connections: byte ranges written into the one `.part`.

Vendor drops are several GB, and a single connection is often held to a fixed rate by the
server or a proxy on the way. When the first answer for a file of at least PARALLEL_MIN bytes
says `Accept-Ranges: bytes`, carries a Content-Length and a strong validator, and that one
connection proves slow (stream.py), the rest of the file is cut into one span per connection;
each span is fetched with `Range: bytes=A-B` + `If-Range` and
written at its offset (`os.pwrite`) into the `.part`, sized to the whole file up front. The
sidecar (`.part.json`) records each span's progress, so a dropped connection or a killed run
resumes every span where it stopped; each span retries on its own. The sha256 of the whole
file is taken once all spans are in.

A server that answers a range with 200 (or the wrong range, or 416) raises Restart: the caller
throws the `.part` away and downloads over one connection.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import List, Optional

import requests
import urllib3

from .cache import discard, write_error, write_file
from ..util import Cancelled, hash_file, human_size
from .http import (
    Job,
    Ranged,
    Restart,
    Retry,
    bar,
    check_status,
    content_range,
    describe,
    get,
    raw_chunks,
    session,
)
from .http import with_retries

# Below this, the extra connections cost more than they bring.
PARALLEL_MIN = 64 << 20
_SAVE_EVERY = 0.5  # seconds between sidecar writes; a lagging sidecar only costs re-fetched bytes


@dataclass
class Span:
    start: int
    end: int    # exclusive
    done: int   # bytes written from start

    @property
    def left(self) -> int:
        return self.end - self.start - self.done


@dataclass
class _State:
    """The spans of one download and what writes them, shared by the span threads."""

    job: Job
    total: int
    validator: str
    spans: List[Span]
    fd: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock)
    saved: float = 0.0

    def save(self, force: bool = False) -> None:
        # Under the lock: the threads share one temp file for the atomic replace.
        with self.lock:
            now = time.monotonic()
            if not force and now - self.saved < _SAVE_EVERY:
                return
            self.saved = now
            spans = [[s.start, s.end, s.done] for s in self.spans]
            write_file(self.job.name, self.job.entry.meta,
                       json.dumps({"validator": self.validator, "size": self.total, "parts": spans}))


def split(total: int, n: int, start: int = 0) -> List[Span]:
    """`n` spans of (nearly) equal size covering [start, total)."""
    n = max(1, min(n, total - start))
    bounds = [start + (total - start) * i // n for i in range(n + 1)]
    return [Span(a, b, 0) for a, b in zip(bounds, bounds[1:])]


def load(job: Job) -> Optional[_State]:
    """The recorded spans of an interrupted download over several connections, if any."""
    try:
        meta = json.loads(job.entry.meta.read_text())
        spans = [Span(int(a), int(b), int(d)) for a, b, d in meta["parts"]]
        total, kept = int(meta["size"]), str(meta["validator"])
        if job.entry.part.stat().st_size != total or not spans:
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return _State(job, total, kept, spans)


def fetch(job: Job, state: Optional[_State] = None, ranged: Optional[Ranged] = None) -> tuple[str, int, bool]:
    """Fetch the spans still missing: after the first `ranged.have` bytes that one connection
    brought, or those `state` (as `load` found it) records as missing.

    Returns (sha256, size, resumed) of the complete .part; raises Restart, DownloadError or
    Cancelled (the sidecar then records what is done).
    """
    resumed = state is not None
    progress = None
    if state is None:
        assert ranged is not None
        first = [Span(0, ranged.have, ranged.have)] if ranged.have else []
        state = _State(job, ranged.total, ranged.validator, first + split(ranged.total, job.connections, ranged.have))
        progress = ranged.bar
    pending = [s for s in state.spans if s.left > 0]
    have = state.total - sum(s.left for s in state.spans)
    conns = max(1, min(job.connections, len(pending)))
    if resumed:
        job.say(f"resume {job.name} {job.location.display} at {human_size(have)} of {human_size(state.total)} "
                f"({conns} connection{'s' if conns > 1 else ''})")
    try:
        state.fd = os.open(job.entry.part, os.O_RDWR | os.O_CREAT, 0o644)
        if not resumed:
            os.ftruncate(state.fd, state.total)
    except OSError as err:
        raise write_error(job.name, job.entry.part, err) from err
    try:
        state.save(force=True)
        with progress or bar(job, state.total, have) as shown:
            _run(state, pending, conns, shown)
    finally:
        os.close(state.fd)
        state.save(force=True)
    sha, got = hash_file(job.entry.part, job.cancel)
    return sha, got, resumed


def _run(state: _State, pending: List[Span], conns: int, progress) -> None:
    """Fetch `pending` over `conns` threads; the first failure stops the others and is raised."""
    stop = threading.Event()
    job = replace(state.job, cancel=stop)
    bar_lock = threading.Lock()

    def advance(n: int) -> None:
        with bar_lock:
            progress.update(n)

    with ThreadPoolExecutor(max_workers=conns, thread_name_prefix=f"{job.name}-part") as pool:
        futures = [pool.submit(_span, job, state, span, advance) for span in pending]
        try:
            _watch(futures, stop, state.job.cancel)
        except BaseException:
            stop.set()
            raise
    errors = [f.exception() for f in futures if f.exception() is not None]
    if state.job.cancel.is_set():
        raise Cancelled()
    # A Restart outranks the Cancelled it caused in the other spans.
    for kind in (Restart, BaseException):
        for err in errors:
            if isinstance(err, kind) and not isinstance(err, Cancelled):
                raise err
    if errors:
        raise errors[0]


def _watch(futures: list, stop: threading.Event, cancel: threading.Event) -> None:
    """Wait for every span; the first failure, or a cancelled fetch_all, stops the others."""
    running = futures
    while running:
        done, running = wait(futures, timeout=0.1, return_when=FIRST_EXCEPTION)
        if cancel.is_set() or any(f.exception() for f in done):
            stop.set()


def _span(job: Job, state: _State, span: Span, advance) -> None:
    with session() as s:
        with_retries(job, lambda: _once(job, state, span, s, advance), lambda: span.done)


def _once(job: Job, state: _State, span: Span, s: requests.Session, advance) -> None:
    at = span.start + span.done
    headers = {"Range": f"bytes={at}-{span.end - 1}", "If-Range": state.validator}
    with get(job, s, headers) as resp:
        if resp.status_code == 416:
            raise Restart()
        check_status(job, resp)
        answered = content_range(resp.headers.get("Content-Range"))
        if resp.status_code != 206 or answered != (at, state.total):
            raise Restart()
        failure = _copy(job, state, span, resp, advance)
    if failure is not None:
        raise Retry(f"{describe(failure)} after {human_size(span.done)} of a part", cause=failure)
    if span.left > 0:
        raise Retry(f"connection dropped with {human_size(span.left)} of a part left")


def _copy(job: Job, state: _State, span: Span, resp: requests.Response, advance) -> Optional[BaseException]:
    """Write the body at the span's offset; returns the network failure that ended it early."""
    at = span.start + span.done
    try:
        for chunk in raw_chunks(resp):
            if job.cancel.is_set():
                raise Cancelled()
            _write(job, state, at, chunk)
            at += len(chunk)
            with state.lock:
                span.done += len(chunk)
            advance(len(chunk))
            state.save()
    except (urllib3.exceptions.HTTPError, requests.RequestException) as err:
        return err
    return None


def _write(job: Job, state: _State, at: int, chunk: bytes) -> None:
    try:
        view = memoryview(chunk)
        while view:
            n = os.pwrite(state.fd, view, at)
            view, at = view[n:], at + n
    except OSError as err:
        raise write_error(job.name, job.entry.part, err) from err


def forget(job: Job) -> None:
    """Throw away an abandoned multi-part download."""
    discard(job.entry.part, job.entry.meta)
