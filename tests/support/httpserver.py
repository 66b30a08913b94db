"""A real HTTP server on 127.0.0.1 for download tests, with the misbehaviours servers have.

    with Server() as server:
        res = server.add("/f.tar", data, drop_after=1000, drop_times=1)
        url = server.url("/f.tar", userinfo="user:pass", query="token=abc")
        ...
        server.gets("/f.tar")[1].headers["range"]

Resources honour `Range` (206 + Content-Range, 416 past the end) and `If-Range` (a validator
that does not match gives the full 200). Each one can also:
  drop_after=N, drop_times=K       send the headers with the full Content-Length, N bytes, then
                                   close the connection, for the first K GETs
  stall_after=N, stall_seconds=S,  send N bytes, then go silent for S seconds (a read timeout on
  stall_times=K                    the client) for the first K GETs
  fail_status=500, fail_times=K    answer fail_status for the first K GETs
  status=404                       always answer this status
  head_status=405                  answer HEAD with this status (servers that refuse HEAD)
  ignore_range=True                always 200 with the whole body (and no Accept-Ranges, unless
                                   claim_ranges=True: a server that says it serves ranges and does not)
  auth=("user", "pass")            require HTTP basic auth (401 otherwise)
  gate=threading.Event()           after the headers and the first chunk, wait until it is set
  chunk_delay=S                    sleep S seconds between chunks
  rate=B                           send at most B bytes per second on each connection (throttled)
  drop_ranged_after=N,             like drop_after, for the first K GETs that ask for a range
  drop_ranged_times=K
  content_encoding="gzip"          label the body with a Content-Encoding (bytes sent as given)
  file=Path                        serve a file's bytes (with sendfile) instead of `data`
Every request is recorded (method, path, query, lower-cased headers, status); `peak_ranged`
is the most 206 bodies that were being sent at once. Closed ranges (`bytes=A-B`) are served.

`http_server_fixture` provides the `http_server` pytest fixture: import it into a test module.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

CHUNK = 64 * 1024


@dataclass
class Resource:
    data: bytes = b""
    file: Path | None = None
    etag: str | None = None
    last_modified: str | None = None
    drop_after: int | None = None
    drop_times: int = 0
    stall_after: int | None = None
    stall_seconds: float = 0.0
    stall_times: int = 0
    fail_status: int = 500
    fail_times: int = 0
    status: int | None = None
    head_status: int | None = None
    ignore_range: bool = False
    claim_ranges: bool = False
    auth: tuple[str, str] | None = None
    gate: threading.Event | None = None
    chunk_delay: float = 0.0
    content_encoding: str | None = None
    rate: float | None = None
    drop_ranged_after: int | None = None
    drop_ranged_times: int = 0
    # counters (under Server.lock)
    failed: int = 0
    dropped: int = 0
    stalled: int = 0
    dropped_ranged: int = 0

    @property
    def size(self) -> int:
        return self.file.stat().st_size if self.file is not None else len(self.data)


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    status: int = 0


@dataclass
class Server:
    """A threaded HTTP(S) server on 127.0.0.1 and a random port."""

    tls: ssl.SSLContext | None = None
    resources: dict[str, Resource] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    ranged_now: int = 0
    peak_ranged: int = 0

    def __post_init__(self) -> None:
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- setup --------------------------------------------------------------------------

    def add(self, path: str, data: bytes = b"", *, validators: bool = True, **behaviour) -> Resource:
        """Serve `data` (or `behaviour['file']`) at `path`; returns the Resource to inspect."""
        res = Resource(data=data, **behaviour)
        if validators:
            digest = hashlib.sha256(data if res.file is None else str(res.file).encode()).hexdigest()
            res.etag = f'"{digest[:16]}"'
            res.last_modified = formatdate(1_700_000_000, usegmt=True)
        self.resources[path] = res
        return res

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    def url(self, path: str, *, userinfo: str | None = None, query: str | None = None, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        auth = f"{userinfo}@" if userinfo else ""
        q = f"?{query}" if query else ""
        return f"{scheme}://{auth}{host}:{self.port}{path}{q}"

    def gets(self, path: str | None = None) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.method == "GET" and (path is None or r.path == path)]

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Server:
        server = self

        class Handler(_Handler):
            owner = server

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        if self.tls is not None:
            httpd.socket = self.tls.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        for res in self.resources.values():
            if res.gate is not None:
                res.gate.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    # -- helpers ------------------------------------------------------------------------

    def _record(self) -> Request:
        parts = urlsplit(self.path)
        req = Request(self.command, parts.path, parts.query, {k.lower(): v for k, v in self.headers.items()})
        with self.owner.lock:
            self.owner.requests.append(req)
        return req

    def _small(self, req: Request, status: int, text: str = "", headers: dict[str, str] | None = None) -> None:
        req.status = status
        body = text.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _serve(self, body: bool) -> None:
        req = self._record()
        server = self.owner
        res = server.resources.get(req.path)
        if res is None:
            return self._small(req, 404, "not found\n")
        if res.auth is not None:
            expected = "Basic " + base64.b64encode(f"{res.auth[0]}:{res.auth[1]}".encode()).decode()
            if req.headers.get("authorization") != expected:
                return self._small(req, 401, "unauthorized\n", {"WWW-Authenticate": 'Basic realm="test"'})
        if res.status is not None:
            return self._small(req, res.status, f"status {res.status}\n")
        if res.head_status is not None and not body:
            return self._small(req, res.head_status, "")
        with server.lock:
            fail = body and res.failed < res.fail_times
            if fail:
                res.failed += 1
        if fail:
            return self._small(req, res.fail_status, "try again\n")

        size = res.size
        start, end = 0, size
        status = 200
        rng = req.headers.get("range")
        if rng and not res.ignore_range and rng.startswith("bytes="):
            if_range = req.headers.get("if-range")
            if if_range is None or if_range in (res.etag, res.last_modified):
                first, _, last = rng[6:].partition("-")
                start = int(first)
                if start >= size:
                    return self._small(req, 416, "", {"Content-Range": f"bytes */{size}"})
                end = min(int(last) + 1, size) if last else size
                status = 206
        length = end - start

        with server.lock:
            drop_at = None
            if body and res.drop_after is not None and res.dropped < res.drop_times:
                res.dropped += 1
                drop_at = res.drop_after
            stall = body and res.stall_after is not None and res.stalled < res.stall_times
            if stall:
                res.stalled += 1
            if body and status == 206 and res.drop_ranged_after is not None and res.dropped_ranged < res.drop_ranged_times:
                res.dropped_ranged += 1
                drop_at = res.drop_ranged_after

        req.status = status
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        if not res.ignore_range or res.claim_ranges:
            self.send_header("Accept-Ranges", "bytes")
        if res.etag:
            self.send_header("ETag", res.etag)
        if res.last_modified:
            self.send_header("Last-Modified", res.last_modified)
        if res.content_encoding:
            self.send_header("Content-Encoding", res.content_encoding)
        self.end_headers()
        if not body:
            return
        ranged = status == 206
        if ranged:
            with server.lock:
                server.ranged_now += 1
                server.peak_ranged = max(server.peak_ranged, server.ranged_now)
        try:
            self._body(res, start, length, drop_at, stall)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True
        finally:
            if ranged:
                with server.lock:
                    server.ranged_now -= 1

    def _body(self, res: Resource, start: int, length: int, drop_at: int | None, stall: bool) -> None:
        drop = drop_at is not None
        limit = length
        if drop_at is not None:
            limit = min(length, drop_at)
        stall_at = res.stall_after if stall else None
        if res.file is not None and not (drop or stall or res.gate or res.chunk_delay or res.rate) and self.owner.tls is None:
            self.wfile.flush()
            with open(res.file, "rb") as f:
                self.connection.sendfile(f, start, length)
            return
        sent = 0
        first = True
        began = time.monotonic()
        with open(res.file, "rb") if res.file is not None else nullcontext() as f:
            while sent < limit:
                n = min(CHUNK, limit - sent)
                if stall_at is not None and sent < stall_at:
                    n = min(n, stall_at - sent)
                if f is not None:
                    f.seek(start + sent)
                    chunk = f.read(n)
                else:
                    chunk = res.data[start + sent : start + sent + n]
                self.wfile.write(chunk)
                sent += len(chunk)
                if first and res.gate is not None:
                    self.wfile.flush()
                    res.gate.wait(30)
                first = False
                if stall_at is not None and sent == stall_at:
                    self.wfile.flush()
                    time.sleep(res.stall_seconds)
                    stall_at = None
                if res.chunk_delay:
                    self.wfile.flush()
                    time.sleep(res.chunk_delay)
                if res.rate:
                    self.wfile.flush()
                    ahead = began + sent / res.rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
        if drop and limit < length:
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def make_tls_files(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key), made with the openssl CLI."""
    import subprocess

    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


@pytest.fixture(name="http_server")
def http_server_fixture() -> Iterator[Server]:
    """A started Server, as the `http_server` fixture (import this into a test module)."""
    with Server() as server:
        yield server


def deterministic_bytes(size: int, seed: bytes = b"musa") -> bytes:
    """`size` bytes that differ from chunk to chunk (so misplaced ranges show)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest() * 1024
        counter += 1
    return bytes(out[:size])


__all__ = ["Server", "Resource", "Request", "http_server_fixture", "make_tls_files", "tls_context", "deterministic_bytes"]
