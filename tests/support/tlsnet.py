"""A corporate network on 127.0.0.1, for the tests of --ca-cert, credentialed indexes and proxies.

- `make_ca` / `make_server_cert`: a CA of the test's own and a certificate it signs for 127.0.0.1,
  made with the openssl CLI.
- `https_index`: a PEP 503 index (tests/support/images.py's layout and wheels) served over HTTPS with that
  certificate, optionally behind HTTP basic auth; it records each request's path.
- `ConnectProxy`: an HTTP CONNECT proxy that tunnels and records each CONNECT target and the
  Proxy-Authorization it was sent.

Builds reach them because they run with host networking (`--network host`).
"""

from __future__ import annotations

import base64
import contextlib
import select
import socket
import socketserver
import subprocess
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from httpserver import tls_context
from images import QuietHandler, serve_directory, write_simple_index


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True)
    assert done.returncode == 0, f"openssl {' '.join(args[:2])} failed: {done.stderr}"


def make_ca(directory: Path, name: str = "musa-docker test CA") -> tuple[Path, Path]:
    """A self-signed CA: (its certificate, its key), PEM."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "ca.pem", directory / "ca.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return cert, key


def make_server_cert(directory: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by `ca`: (certificate, key), PEM."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key, csr, ext = (directory / n for n in ("server.pem", "server.key", "server.csr", "server.ext"))
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return cert, key


class _IndexHandler(QuietHandler):
    auth: str | None = None          # the expected Authorization header, when basic auth is on
    seen: list                        # (path, authorized)

    def do_GET(self) -> None:
        ok = self.auth is None or self.headers.get("Authorization") == self.auth
        self.seen.append((self.path, ok))
        if not ok:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="index"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()


@contextlib.contextmanager
def https_index(root: Path, wheels: Iterable[Path], cert: tuple[Path, Path],
                auth: tuple[str, str] | None = None) -> Iterator[dict]:
    """Serve a PEP 503 index of `wheels` over HTTPS on 127.0.0.1 with `cert` (certificate, key);
    yield {"url": "https://127.0.0.1:PORT/simple/", "port": PORT, "seen": [(path, authorized)]}."""
    write_simple_index(root, wheels)
    seen: list = []
    expected = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode() if auth else None
    handler = type("Handler", (_IndexHandler,), {"auth": expected, "seen": seen})
    with serve_directory(root, handler, tls_context(*cert)) as url:
        yield {"url": url + "simple/", "port": int(url.rstrip("/").rsplit(":", 1)[1]), "seen": seen}


class _ProxyHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        head = []
        while True:
            line = self.rfile.readline(65537)
            if not line or line in (b"\r\n", b"\n"):
                break
            head.append(line.decode("latin-1").rstrip("\r\n"))
        if not head:
            return
        method, target = (head[0].split(" ") + ["", ""])[:2]
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
        self.server.owner.record(method, target, headers.get("proxy-authorization"))
        if method != "CONNECT":
            self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except (OSError, ValueError):
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        with upstream:
            _pump(self.connection, upstream)


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until one side closes."""
    a.setblocking(True)
    while True:
        readable, _, _ = select.select([a, b], [], [], 30)
        if not readable:
            return
        for src in readable:
            data = src.recv(65536)
            if not data:
                return
            (b if src is a else a).sendall(data)


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that records what passes through it:
    `connects` lists each CONNECT target (host:port), `auth` each Proxy-Authorization sent."""

    def __init__(self) -> None:
        self.connects: list[str] = []
        self.auth: list[str | None] = []
        self.lock = threading.Lock()

    def record(self, method: str, target: str, auth: str | None) -> None:
        with self.lock:
            if method == "CONNECT":
                self.connects.append(target)
            self.auth.append(auth)

    def url(self, userinfo: str | None = None) -> str:
        return f"http://{userinfo + '@' if userinfo else ''}127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "ConnectProxy":
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _ProxyHandler)
        self._server.daemon_threads = True
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="connect-proxy", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
