"""A large artifact over several connections (parts.py), against a throttled loopback server."""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from musa_docker.fetch.cache import Entry
from musa_docker.fetch.download import Downloader
from musa_docker.errors import ChecksumError
from musa_docker.values.locations import parse_location
from musa_docker.fetch.ranged import split

try:
    from httpserver import deterministic_bytes, http_server_fixture  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.support.httpserver import deterministic_bytes, http_server_fixture  # noqa: F401

DATA = deterministic_bytes(4 * 1024 * 1024 + 777)
SHA = hashlib.sha256(DATA).hexdigest()
# bytes per second and connection: DATA takes ~4 s over one; after the first 0.5 s (stream.py's
# PROBE_SECONDS) the rest is split over four
RATE = 1_000_000


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)


def make(cache: Path, **kw) -> tuple[Downloader, io.StringIO]:
    out = io.StringIO()
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 5)
    parallel_min = kw.pop("parallel_min", 1 << 20)
    dl = Downloader(cache, out=out, progress=False, **kw)
    dl.parallel_min = parallel_min
    return dl, out


def ranges(server, path: str) -> list[tuple[int, int]]:
    """The (first, last) byte of every ranged GET, in the order they came."""
    got = []
    for r in server.gets(path):
        if "range" in r.headers:
            first, _, last = r.headers["range"].removeprefix("bytes=").partition("-")
            got.append((int(first), int(last) if last else -1))
    return got


def test_split_covers_the_file_in_n_parts():
    spans = split(10, 4)
    assert [(s.start, s.end) for s in spans] == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert [(s.start, s.end) for s in split(3, 8)] == [(0, 1), (1, 2), (2, 3)]
    assert [(s.start, s.end) for s in split(10, 2, start=4)] == [(4, 7), (7, 10)]


def assert_split(asked: list[tuple[int, int]], size: int, n: int) -> int:
    """`asked` are n ranges that cover [have, size) end to end; returns have."""
    asked = sorted(asked)
    assert len(asked) == n, asked
    assert all(a[1] + 1 == b[0] for a, b in zip(asked, asked[1:])) and asked[-1][1] == size - 1, asked
    assert asked[0][0] > 0  # the first connection's bytes are kept
    return asked[0][0]


def test_large_file_comes_over_n_concurrent_ranges(tmp_path, http_server):
    res = http_server.add("/musa_toolkits.tar.gz", DATA, rate=RATE)
    url = http_server.url("/musa_toolkits.tar.gz")
    dl, out = make(tmp_path, connections=4)

    got = dl.fetch("musa_toolkits", parse_location(f"{url}#sha256={SHA}"))

    assert got.path.read_bytes() == DATA and got.sha256 == SHA and not got.cached
    said = out.getvalue().splitlines()
    assert said[0] == f"download musa_toolkits {url} (4.2 MB)"
    assert said[1].startswith("split musa_toolkits: ") and said[1].endswith(" over one connection; the other "
                                                                           f"{said[1].split('the other ')[1]}")
    assert said[1].endswith(" over 4")
    assert "range" not in http_server.gets()[0].headers
    assert_split(ranges(http_server, "/musa_toolkits.tar.gz"), len(DATA), 4)
    assert http_server.peak_ranged == 4
    assert all(r.headers["if-range"] == res.etag for r in http_server.gets() if "range" in r.headers)
    assert all(r.headers["accept-encoding"] == "identity" for r in http_server.gets())
    assert sorted(p.name for p in got.path.parent.iterdir()) == [".lock", got.path.name, got.path.name + ".sha256"]


def test_small_file_one_connection_or_a_fast_one_stays_on_one(tmp_path, http_server):
    small = DATA[:1_500_000]
    http_server.add("/slow.tar", small, rate=500_000)  # slow enough to split, were it allowed
    http_server.add("/fast.tar", DATA)
    dl, out = make(tmp_path, connections=4, parallel_min=len(small) + 1)
    assert dl.fetch("f", parse_location(http_server.url("/slow.tar"))).path.read_bytes() == small
    dl1, out1 = make(tmp_path / "one", connections=1)
    assert dl1.fetch("f", parse_location(http_server.url("/slow.tar"))).path.read_bytes() == small
    dl4, out4 = make(tmp_path / "fast", connections=4)
    assert dl4.fetch("f", parse_location(http_server.url("/fast.tar"))).sha256 == SHA
    assert len(http_server.gets()) == 3 and http_server.peak_ranged == 0
    assert "split" not in out.getvalue() + out1.getvalue() + out4.getvalue()


def test_a_dropped_part_is_resumed_alone(tmp_path, http_server):
    http_server.add("/f.tar", DATA, rate=RATE, drop_ranged_after=300_000, drop_ranged_times=1)
    dl, out = make(tmp_path, connections=4)

    got = dl.fetch("f", parse_location(http_server.url("/f.tar")))

    assert got.path.read_bytes() == DATA
    asked = ranges(http_server, "/f.tar")
    assert len(asked) == 5
    assert_split(asked[:4], len(DATA), 4)
    first, last = asked[4]
    assert (first - 300_000, last) in asked[:4]  # the dropped part, from where it stopped
    assert "retry f in " in out.getvalue() and "connection dropped" in out.getvalue()


def test_server_that_ignores_ranges_falls_back_to_one_connection(tmp_path, http_server):
    http_server.add("/f.tar", DATA, rate=RATE, ignore_range=True, claim_ranges=True)
    http_server.add("/g.tar", DATA, ignore_range=True)
    dl, out = make(tmp_path, connections=4)

    assert dl.fetch("f", parse_location(http_server.url("/f.tar"))).path.read_bytes() == DATA
    assert dl.fetch("g", parse_location(http_server.url("/g.tar"))).path.read_bytes() == DATA

    text = out.getvalue()
    assert ("restart f: the server did not answer a range as asked (the file changed, or it serves no ranges); "
            "downloading over one connection") in text
    assert [r.status for r in http_server.gets("/f.tar")][-1] == 200
    assert "range" not in http_server.gets("/f.tar")[-1].headers
    assert "split" not in text.split("restart f:")[1]  # the second try stays on one connection
    assert len(http_server.gets("/g.tar")) == 1  # no Accept-Ranges: one connection from the start
    assert f"download g {http_server.url('/g.tar')} (4.2 MB)" in text


def test_checksum_of_the_whole_file_is_verified(tmp_path, http_server):
    http_server.add("/f.tar", DATA, rate=RATE)
    dl, out = make(tmp_path, connections=3)
    loc = parse_location(http_server.url("/f.tar") + "#sha256=" + "0" * 64)
    with pytest.raises(ChecksumError, match=f"got {SHA}"):
        dl.fetch("f", loc)
    assert "split f: " in out.getvalue()
    entry = Entry.of(tmp_path, loc)
    assert not entry.part.exists() and not entry.meta.exists() and not entry.final.exists()


def _fetch_until_killed(cache: str, url: str, log: str) -> None:
    with open(log, "w", buffering=1) as out:
        dl = Downloader(Path(cache), out=out, progress=False, connections=4)
        dl.parallel_min = 1 << 20
        dl.fetch("art", parse_location(url))


def test_killed_download_resumes_every_part_where_it_stopped(tmp_path, http_server):
    res = http_server.add("/art.tar", DATA, rate=RATE // 4)  # ~2 s a part
    url = http_server.url("/art.tar")
    entry = Entry.of(tmp_path, parse_location(url))
    proc = multiprocessing.get_context("spawn").Process(
        target=_fetch_until_killed, args=(str(tmp_path), url, str(tmp_path / "log"))
    )
    proc.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, "the child never recorded progress in every part"
            try:
                parts = json.loads(entry.meta.read_text())["parts"]
            except (OSError, ValueError, KeyError):
                parts = []
            if len(parts) == 5 and all(done > 0 for _, _, done in parts):
                break
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
    assert proc.exitcode == -signal.SIGKILL
    recorded = json.loads(entry.meta.read_text())
    assert recorded["validator"] == res.etag and recorded["size"] == len(DATA)
    before = len(http_server.gets())
    assert len(ranges(http_server, "/art.tar")) == before - 1  # the first GET of the killed run had no range
    res.rate = None

    dl, out = make(tmp_path, connections=4)
    got = dl.fetch("art", parse_location(url))

    assert got.path.read_bytes() == DATA and got.sha256 == SHA and not got.cached
    assert out.getvalue().splitlines()[0].startswith(f"resume art {url} at ")
    again = ranges(http_server, "/art.tar")[before - 1:]
    resumed = {(a + done, b - 1) for a, b, done in recorded["parts"] if a + done < b}
    assert set(again) == resumed and len(again) == 4
    assert "range" in http_server.gets()[-1].headers  # no new probe: the sidecar said where to go


def test_file_changed_under_an_interrupted_multi_part_download_restarts_on_one(tmp_path, http_server):
    http_server.add("/f.tar", DATA)
    url = http_server.url("/f.tar")
    entry = Entry.of(tmp_path, parse_location(url))
    entry.dir.mkdir(parents=True)
    entry.part.write_bytes(b"x" * len(DATA))
    entry.meta.write_text(json.dumps({"validator": '"old"', "size": len(DATA), "parts": [[0, len(DATA), 1000]]}))
    dl, out = make(tmp_path, connections=4)

    assert dl.fetch("f", parse_location(url)).path.read_bytes() == DATA

    said = out.getvalue().splitlines()
    assert said[0] == f"resume f {url} at 1.0 kB of 4.2 MB (1 connection)"
    assert said[1].startswith("restart f: the server did not answer a range as asked")
    first, second = http_server.gets("/f.tar")
    assert first.headers["range"] == f"bytes=1000-{len(DATA) - 1}" and first.headers["if-range"] == '"old"'
    assert first.status == 200 and "range" not in second.headers
