"""One artifact over one connection, resumed where a previous attempt stopped.

A `.part` left by a dropped connection or a killed run is resumed with `Range` + `If-Range`
(the validator is kept in the entry's `.part.json`); a server that answers 200 instead of 206,
416, or a range that starts elsewhere makes the download start over (Restart). The bytes are
hashed as they arrive, so the sha256 is ready when the last byte is written.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import IO, Optional

import requests
import urllib3
from tqdm import tqdm

from .cache import Entry, write_error, write_file
from ..util import CHUNK, Cancelled, human_size
from .http import Job, Ranged, Restart, Retry, bar, check_status, content_range, describe, get, int_header
from .http import raw_chunks, validator

# A large file whose server serves ranges starts over one connection; after PROBE_SECONDS, if
# that connection brings less than SPLIT_BELOW bytes/s and the rest would take at least
# SPLIT_MIN_SECONDS, the rest moves to several (parts.py). Faster than that, one connection is
# not what holds the download back (hashing and writing are), and more would only cost CPU.
PROBE_SECONDS = 0.5
SPLIT_BELOW = 40_000_000
SPLIT_MIN_SECONDS = 2.0


class Hasher:
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

    def __enter__(self) -> Hasher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()
        self.digest = self._hash.hexdigest()


def _resume_point(entry: Entry) -> tuple[int, str | None]:
    try:
        size = entry.part.stat().st_size
    except FileNotFoundError:
        return 0, None
    try:
        kept = json.loads(entry.meta.read_text()).get("validator")
    except (OSError, ValueError, AttributeError):
        kept = None
    if size == 0 or not kept:
        return 0, None
    return size, kept


def attempt(job: Job, s: requests.Session, said: set[str]) -> tuple[str, int, bool]:
    """One request over one connection. Returns (sha256, size, resumed) of the complete .part;
    raises Retry, Restart, Ranged or DownloadError."""
    offset, kept = _resume_point(job.entry)
    headers = {"Range": f"bytes={offset}-", "If-Range": kept} if offset else {}
    with get(job, s, headers) as resp:
        status = resp.status_code
        if status == 416 and offset:
            job.say(f"restart {job.name}: the server refused to resume (HTTP 416); downloading from the start")
            raise Restart()
        check_status(job, resp)
        mode = "wb"
        if offset and status == 206:
            span = content_range(resp.headers.get("Content-Range"))
            if span is None or span[0] != offset:
                job.say(f"restart {job.name}: the server resumed at the wrong place; downloading from the start")
                raise Restart()
            mode, total = "ab", span[1]
        else:
            if offset:
                job.say(f"restart {job.name}: the server ignored the range request; downloading from the start")
                offset = 0
            total = int_header(resp, "Content-Length")
        strong = validator(resp)
        splittable = (not offset and job.connections > 1 and total is not None and total >= job.parallel_min
                      and strong and resp.headers.get("Accept-Ranges", "").strip().lower() == "bytes")
        write_file(job.name, job.entry.meta, json.dumps({"validator": strong, "size": total}))
        if offset:
            job.say(f"resume {job.name} {job.location.display} at {human_size(offset)} of {human_size(total)}")
        elif "download" not in said:
            said.add("download")
            job.say(f"download {job.name} {job.location.display} ({human_size(total)})")
        return _stream(job, resp, mode, offset, total, strong if splittable else None)


@dataclass
class _Sink:
    """Where one response's bytes go: the .part, the hash, the bar."""

    f: IO[bytes]
    hasher: Hasher
    progress: tqdm
    received: int = 0


def _stream(job: Job, resp: requests.Response, mode: str, offset: int, total: int | None,
            split: Optional[str]) -> tuple[str, int, bool]:
    """Write the body into the .part. `split` is the validator when the file may move to
    several connections (see _pump)."""
    body_length = int_header(resp, "Content-Length")
    part = job.entry.part
    try:
        f: IO[bytes] = open(part, mode)
    except OSError as err:
        raise write_error(job.name, part, err) from err
    sink = _Sink(f, Hasher(), bar(job, total, offset))
    try:
        with f, sink.hasher as h:
            if offset:
                _rehash(part, h)
            failure = _pump(job, resp, sink, split, total)
            _flush(job, f)
    except Ranged as ranged:
        # The bytes so far stay in the .part (closing flushed them); the bar carries on.
        ranged.have, ranged.bar = offset + sink.received, sink.progress
        raise
    except BaseException:
        sink.progress.close()
        raise
    sink.progress.close()
    received = sink.received
    if failure is not None:
        raise Retry(f"{describe(failure)} after {human_size(offset + received)}", cause=failure)
    if body_length is not None and received != body_length:
        raise Retry(f"connection dropped after {human_size(offset + received)} of {human_size(total)}")
    size = offset + received
    if total is not None and size != total:
        raise Retry(f"incomplete: {human_size(size)} of {human_size(total)}")
    return h.digest, size, bool(offset)


def _rehash(part, h: Hasher) -> None:
    """The hash covers the whole file: first the bytes kept from before."""
    with open(part, "rb") as kept:
        for chunk in iter(lambda: kept.read(CHUNK), b""):
            h.update(chunk)


def _flush(job: Job, f: IO[bytes]) -> None:
    try:
        f.flush()
    except OSError as err:
        raise write_error(job.name, job.entry.part, err) from err


def _pump(job: Job, resp: requests.Response, sink: _Sink, split: Optional[str], total: int | None) -> Optional[BaseException]:
    """Copy the raw body (what the server sent is what gets hashed and stored) into `sink`.

    Returns the network failure that ended it early, if any. With `split`, raises Ranged once
    PROBE_SECONDS show that this one connection is slow and the rest would take a while.
    """
    began: Optional[tuple[float, int]] = None
    try:
        for chunk in raw_chunks(resp):
            if job.cancel.is_set():
                raise Cancelled()
            try:
                sink.f.write(chunk)
            except OSError as err:
                raise write_error(job.name, job.entry.part, err) from err
            sink.hasher.update(chunk)
            sink.received += len(chunk)
            sink.progress.update(len(chunk))
            if split is None:
                continue
            # Timed from the first bytes: the wait for the answer says nothing about the rate.
            began = began or (time.monotonic(), sink.received)
            seconds = time.monotonic() - began[0]
            if seconds >= PROBE_SECONDS:
                _maybe_split(job, split, (sink.received - began[1]) / seconds, total or 0, sink.received)
                split = None
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as err:
        return err
    return None


def _maybe_split(job: Job, kept: str, rate: float, total: int, received: int) -> None:
    """Raise Ranged when one connection at `rate` bytes/s is what holds the download back."""
    left = total - received
    if rate < SPLIT_BELOW and left / rate >= SPLIT_MIN_SECONDS:
        job.say(f"split {job.name}: {human_size(int(rate))}/s over one connection; "
                f"the other {human_size(left)} over {job.connections}")
        raise Ranged(total, kept)
