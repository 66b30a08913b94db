from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import re
import signal
import threading
import time
import traceback
import warnings
from pathlib import Path

import pytest
import urllib3

from musa_docker.defaults import default_cache_dir
from musa_docker.fetch.download import CACHEDIR_TAG, Downloader, Fetched, cache_key
from musa_docker.errors import ChecksumError, ConfigError, DownloadError
from musa_docker.values.locations import parse_location

try:
    from httpserver import Server, deterministic_bytes, http_server_fixture, make_tls_files, tls_context  # noqa: F401
except ImportError:  # tests/ imported as a package
    from tests.support.httpserver import Server, deterministic_bytes, http_server_fixture, make_tls_files, tls_context  # noqa: F401

DATA = deterministic_bytes(3 * 1024 * 1024 + 12345)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    """A developer's proxy settings must not route these requests through a proxy."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make(cache: Path, **kw) -> tuple[Downloader, io.StringIO]:
    out = io.StringIO()
    kw.setdefault("backoff", 0.01)
    kw.setdefault("timeout", 5)
    return Downloader(cache, out=out, **kw), out


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def cache_files(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


# -- the happy path and the cache ---------------------------------------------------------


def test_download_then_second_fetch_is_cached_without_a_get(tmp_path, http_server):
    http_server.add("/musa/musa_toolkits_1.4.0.tar.gz", DATA)
    loc = parse_location(http_server.url("/musa/musa_toolkits_1.4.0.tar.gz"))
    dl, out = make(tmp_path / "cache")

    first = dl.fetch("musa_toolkits", loc)

    assert first.path.read_bytes() == DATA
    assert (first.sha256, first.size, first.cached, first.name) == (SHA, len(DATA), False, "musa_toolkits")
    assert first.path == tmp_path / "cache" / "downloads" / cache_key(loc) / "musa_toolkits_1.4.0.tar.gz"
    assert (tmp_path / "cache" / "CACHEDIR.TAG").read_text() == CACHEDIR_TAG
    assert CACHEDIR_TAG.startswith("Signature: 8a477f597d28d172789f06886806bc55\n")
    assert lines(out)[0] == f"download musa_toolkits {loc.display} (3.2 MB)"
    assert re.fullmatch(
        r"fetched musa_toolkits musa_toolkits_1\.4\.0\.tar\.gz 3\.2 MB in \d+\.\ds \([\d.]+ [kMG]?B/s\)", lines(out)[1]
    )
    assert not any(p.name.endswith((".part", ".part.json")) for p in first.path.parent.iterdir())
    gets = http_server.gets("/musa/musa_toolkits_1.4.0.tar.gz")
    assert len(gets) == 1
    assert gets[0].headers["accept-encoding"] == "identity"
    assert "range" not in gets[0].headers

    dl2, out2 = make(tmp_path / "cache")
    second = dl2.fetch("musa_toolkits", loc)
    assert second.cached and second.path == first.path and second.sha256 == SHA
    assert lines(out2) == [f"cached musa_toolkits musa_toolkits_1.4.0.tar.gz (3.2 MB, sha256 {SHA[:12]})"]
    assert len(http_server.gets()) == 1


def test_sha256_ok_is_reported_on_download_and_cache_hit(tmp_path, http_server):
    http_server.add("/mudnn.tar", DATA)
    loc = parse_location(http_server.url("/mudnn.tar") + f"#sha256={SHA}")
    dl, out = make(tmp_path)
    assert dl.fetch("mudnn", loc).sha256 == SHA
    dl.fetch("mudnn", loc)
    assert lines(out)[-1] == "cached mudnn mudnn.tar (3.2 MB, sha256 ok)"
    assert len(http_server.gets()) == 1


def test_sha256_mismatch_leaves_nothing_good_in_the_cache(tmp_path, http_server):
    http_server.add("/mudnn.tar", DATA)
    wrong = "f" * 64
    loc = parse_location(http_server.url("/mudnn.tar") + f"#sha256={wrong}")
    dl, _ = make(tmp_path)

    with pytest.raises(ChecksumError) as info:
        dl.fetch("mudnn", loc)

    msg = str(info.value)
    assert f"expected {wrong}" in msg and f"got {SHA}" in msg
    assert "mudnn" in msg and loc.display in msg
    assert isinstance(info.value, DownloadError)
    # only the lock file and the cache tag remain: no file, no .part to resume from
    entry = f"downloads/{cache_key(loc)}"
    assert cache_files(tmp_path) == ["CACHEDIR.TAG", f"{entry}/.lock"]
    # and the next fetch with the right hash downloads again
    good = parse_location(http_server.url("/mudnn.tar") + f"#sha256={SHA}")
    assert dl.fetch("mudnn", good).path.read_bytes() == DATA
    assert len(http_server.gets()) == 2


def test_damaged_cached_file_is_downloaded_again(tmp_path, http_server):
    http_server.add("/f.bin", DATA)
    loc = parse_location(http_server.url("/f.bin"))
    dl, out = make(tmp_path)
    first = dl.fetch("f", loc)
    assert (first.path.parent / "f.bin.sha256").read_text() == f"{SHA}  f.bin\n"
    first.path.write_bytes(DATA[:1000])  # as a crash before the data reached the disk would

    again = dl.fetch("f", loc)

    assert again.path.read_bytes() == DATA and not again.cached
    assert f"damaged f f.bin: cached sha256 {sha(DATA[:1000])[:12]}, recorded {SHA[:12]}; downloading again" in lines(out)
    assert len(http_server.gets()) == 2


def test_republished_file_with_a_new_sha256_is_downloaded_again(tmp_path, http_server):
    http_server.add("/f.bin", DATA)
    dl, out = make(tmp_path)
    dl.fetch("f", parse_location(http_server.url("/f.bin")))
    new = DATA[::-1]
    http_server.add("/f.bin", new)

    again = dl.fetch("f", parse_location(http_server.url("/f.bin") + f"#sha256={sha(new)}"))

    assert again.path.read_bytes() == new and not again.cached
    assert f"stale f f.bin: cached sha256 {SHA[:12]}, expected {sha(new)[:12]}; downloading again" in lines(out)
    assert len(http_server.gets()) == 2


# -- resume ---------------------------------------------------------------------------------


def test_dropped_connection_is_resumed_with_range_and_if_range(tmp_path, http_server):
    res = http_server.add("/big.tar", DATA, drop_after=1_000_000, drop_times=1)
    dl, out = make(tmp_path)

    got = dl.fetch("big", parse_location(http_server.url("/big.tar")))

    assert got.path.read_bytes() == DATA and got.sha256 == SHA
    first, second = http_server.gets("/big.tar")
    assert "range" not in first.headers
    offset = int(second.headers["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < offset <= 1_000_000
    assert second.headers["if-range"] == res.etag
    assert second.status == 206
    text = out.getvalue()
    assert re.search(r"^retry big in [\d.e-]+s \(1/4\): connection dropped", text, re.M)
    assert f"resume big {http_server.url('/big.tar')} at " in text


def test_read_timeout_is_retried_and_resumed(tmp_path, http_server):
    http_server.add("/slow.tar", DATA, stall_after=500_000, stall_seconds=1.5, stall_times=1)
    dl, out = make(tmp_path, timeout=0.3)
    got = dl.fetch("slow", parse_location(http_server.url("/slow.tar")))
    assert got.path.read_bytes() == DATA
    assert "timed out" in out.getvalue()
    assert http_server.gets("/slow.tar")[1].headers["range"].startswith("bytes=")


def _fetch_until_killed(cache: str, url: str, log: str) -> None:
    with open(log, "w", buffering=1) as out:
        Downloader(Path(cache), out=out, progress=False, backoff=0.01).fetch("art", parse_location(url))


def test_leftover_part_of_a_killed_run_is_resumed(tmp_path, http_server):
    gate = threading.Event()
    res = http_server.add("/art.tar", DATA, gate=gate)
    url = http_server.url("/art.tar")
    loc = parse_location(url)
    part = tmp_path / "downloads" / cache_key(loc) / "art.tar.part"
    proc = multiprocessing.get_context("spawn").Process(
        target=_fetch_until_killed, args=(str(tmp_path), url, str(tmp_path / "log"))
    )
    proc.start()
    try:
        deadline = time.monotonic() + 20
        while not (part.exists() and part.stat().st_size > 0):
            assert time.monotonic() < deadline, "the child never started writing"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
    finally:
        gate.set()
    assert proc.exitcode == -signal.SIGKILL
    time.sleep(0.05)
    kept = part.stat().st_size
    assert 0 < kept < len(DATA)
    res.gate = None

    dl, out = make(tmp_path)
    got = dl.fetch("art", loc)

    assert got.path.read_bytes() == DATA and not got.cached
    last = http_server.gets("/art.tar")[-1]
    assert last.headers["range"] == f"bytes={kept}-"
    assert last.headers["if-range"] == res.etag
    assert lines(out)[0].startswith(f"resume art {url} at ")


def test_server_ignoring_range_restarts_cleanly(tmp_path, http_server):
    http_server.add("/f.tar", DATA, drop_after=700_000, drop_times=1, ignore_range=True)
    dl, out = make(tmp_path)
    got = dl.fetch("f", parse_location(http_server.url("/f.tar")))
    assert got.path.read_bytes() == DATA  # not the first 700 kB twice
    gets = http_server.gets("/f.tar")
    assert len(gets) == 2 and "range" in gets[1].headers and gets[1].status == 200
    assert "restart f: the server ignored the range request; downloading from the start" in lines(out)


def test_changed_file_on_the_server_restarts_instead_of_mixing(tmp_path, http_server):
    """If-Range with the old validator: the server sends the new file whole."""
    loc = parse_location(http_server.url("/f.tar"))
    entry = tmp_path / "downloads" / cache_key(loc)
    entry.mkdir(parents=True)
    (entry / "f.tar.part").write_bytes(b"x" * 1000)
    (entry / "f.tar.part.json").write_text(json.dumps({"validator": '"old-etag"', "size": 5000}))
    http_server.add("/f.tar", DATA)
    dl, out = make(tmp_path)
    assert dl.fetch("f", loc).path.read_bytes() == DATA
    assert http_server.gets()[0].headers["if-range"] == '"old-etag"'
    assert "restart f: the server ignored the range request; downloading from the start" in lines(out)


def test_416_restarts_from_zero(tmp_path, http_server):
    res = http_server.add("/f.tar", DATA)
    loc = parse_location(http_server.url("/f.tar"))
    entry = tmp_path / "downloads" / cache_key(loc)
    entry.mkdir(parents=True)
    (entry / "f.tar.part").write_bytes(b"x" * (len(DATA) + 10))
    (entry / "f.tar.part.json").write_text(json.dumps({"validator": res.etag}))
    dl, out = make(tmp_path)
    assert dl.fetch("f", loc).path.read_bytes() == DATA
    assert [r.status for r in http_server.gets()] == [416, 200]
    assert lines(out)[0] == "restart f: the server refused to resume (HTTP 416); downloading from the start"


# -- retries and errors ---------------------------------------------------------------------


def test_5xx_is_retried_with_backoff(tmp_path, http_server):
    http_server.add("/f.tar", DATA, fail_status=500, fail_times=2)
    dl, out = make(tmp_path)
    got = dl.fetch("f", parse_location(http_server.url("/f.tar")))
    assert got.path.read_bytes() == DATA
    assert [r.status for r in http_server.gets()] == [500, 500, 200]
    retries = [line for line in lines(out) if line.startswith("retry f ")]
    assert len(retries) == 2 and "HTTP 500" in retries[0] and "(2/4)" in retries[1]


def test_5xx_gives_up_after_the_retries(tmp_path, http_server):
    http_server.add("/f.tar", DATA, fail_status=503, fail_times=100)
    dl, _ = make(tmp_path, retries=2)
    with pytest.raises(DownloadError) as info:
        dl.fetch("f", parse_location(http_server.url("/f.tar")))
    assert "after 3 attempts" in str(info.value) and "HTTP 503" in str(info.value)
    assert len(http_server.gets()) == 3


def test_404_is_not_retried_and_says_what_to_check(tmp_path, http_server):
    http_server.add("/gone.tar", status=404)
    url = http_server.url("/gone.tar")
    dl, out = make(tmp_path)
    with pytest.raises(DownloadError) as info:
        dl.fetch("mudnn", parse_location(url))
    assert str(info.value) == f"mudnn not found (HTTP 404): {url}; check the URL"
    assert len(http_server.gets()) == 1
    assert "retry" not in out.getvalue()


def test_401_is_not_retried(tmp_path, http_server):
    http_server.add("/f.tar", DATA, auth=("u", "right"))
    dl, _ = make(tmp_path)
    with pytest.raises(DownloadError, match=r"access denied \(HTTP 401"):
        dl.fetch("f", parse_location(http_server.url("/f.tar", userinfo="u:wrong")))
    assert len(http_server.gets()) == 1


def test_unresolvable_host_names_the_host(tmp_path):
    dl, _ = make(tmp_path)
    with pytest.raises(DownloadError) as info:
        dl.fetch("mccl", parse_location("https://no-such-host.invalid/mccl.tar.gz"))
    msg = str(info.value)
    assert "'no-such-host.invalid'" in msg or "no-such-host.invalid (temporary)" in msg
    assert "check" in msg


def test_connection_refused_is_retried_then_reported(tmp_path):
    with Server() as server:
        url = server.url("/f.tar")
    dl, out = make(tmp_path, retries=2)
    with pytest.raises(DownloadError, match=r"after 3 attempts: connection refused"):
        dl.fetch("f", parse_location(url))
    assert len([line for line in lines(out) if line.startswith("retry f ")]) == 2


# -- secrets --------------------------------------------------------------------------------


def _everything_shown(err: BaseException, out: io.StringIO) -> str:
    return out.getvalue() + str(err) + repr(err) + "".join(traceback.format_exception(type(err), err, err.__traceback__))


def test_credentials_in_the_url_are_used_but_never_printed(tmp_path, http_server):
    http_server.add("/f.tar", DATA, auth=("alice", "Pa55-SECRET"))
    url = http_server.url("/f.tar", userinfo="alice:Pa55-SECRET", query="token=TOK-SECRET&v=1")
    dl, out = make(tmp_path)

    got = dl.fetch("f", parse_location(url))

    assert got.path.read_bytes() == DATA
    assert http_server.gets()[0].query == "token=TOK-SECRET&v=1"
    assert http_server.gets()[0].headers["authorization"].startswith("Basic ")
    shown = out.getvalue() + repr(got)
    assert "SECRET" not in shown and "alice" not in shown
    assert f"http://***@127.0.0.1:{http_server.port}/f.tar?token=***&v=1" in shown


@pytest.mark.parametrize("case", ["404", "unresolvable", "refused", "checksum"])
def test_credentials_stay_out_of_errors_and_their_causes(tmp_path, http_server, case):
    http_server.add("/f.tar", DATA)
    secret = "userinfo:Pa55-SECRET"
    query = "token=TOK-SECRET&X-Amz-Signature=SIG-SECRET"
    if case == "404":
        url = http_server.url("/missing.tar", userinfo=secret, query=query)
    elif case == "unresolvable":
        url = f"https://{secret}@secret-host.invalid/f.tar?{query}"
    elif case == "refused":
        with Server() as closed:
            url = closed.url("/f.tar", userinfo=secret, query=query)
    else:
        url = http_server.url("/f.tar", userinfo=secret, query=query) + "#sha256=" + "0" * 64
    dl, out = make(tmp_path, retries=1)
    with pytest.raises(DownloadError) as info:
        dl.fetch("f", parse_location(url))
    shown = _everything_shown(info.value, out)
    assert "SECRET" not in shown and "userinfo" not in shown
    assert "***" in str(info.value)


def test_cache_key_ignores_credentials(tmp_path, http_server):
    http_server.add("/f.tar", DATA)
    dl, out = make(tmp_path)
    a = dl.fetch("f", parse_location(http_server.url("/f.tar", userinfo="u:old", query="token=old&v=1")))
    b = dl.fetch("f", parse_location(http_server.url("/f.tar", userinfo="u:new", query="token=new&v=1")))
    c = dl.fetch("f", parse_location(http_server.url("/f.tar", query="v=1")))
    assert a.path == b.path == c.path and b.cached and c.cached
    assert len(http_server.gets()) == 1
    other = dl.fetch("f", parse_location(http_server.url("/f.tar", query="v=2")))
    assert other.path != a.path and not other.cached


# -- local files ----------------------------------------------------------------------------


def test_file_url_and_local_path_are_hashed_in_place(tmp_path, monkeypatch):
    src = tmp_path / "vendor" / "mudnn 2.tar"
    src.parent.mkdir()
    src.write_bytes(DATA)
    cache = tmp_path / "cache"
    dl, out = make(cache)

    by_url = dl.fetch("mudnn", parse_location(f"file://{src}".replace(" ", "%20") + f"#sha256={SHA}"))
    monkeypatch.chdir(tmp_path)
    by_rel = dl.fetch("mudnn", parse_location("vendor/mudnn 2.tar"))

    for got in (by_url, by_rel):
        assert (got.path, got.sha256, got.size, got.cached) == (src, SHA, len(DATA), True)
    assert lines(out) == [f"local mudnn {src} (3.2 MB, sha256 ok)", f"local mudnn {src} (3.2 MB, sha256 {SHA[:12]})"]
    assert not cache.exists()  # nothing copied


def test_local_file_missing_or_mismatching(tmp_path):
    dl, _ = make(tmp_path / "cache")
    with pytest.raises(DownloadError, match=re.escape(f"mudnn: no such file: {tmp_path / 'nope.tar'}")):
        dl.fetch("mudnn", parse_location(str(tmp_path / "nope.tar")))
    (tmp_path / "x.tar").write_bytes(b"abc")
    with pytest.raises(ChecksumError, match=f"expected {'1' * 64}, got {sha(b'abc')}"):
        dl.fetch("mudnn", parse_location(f"{tmp_path / 'x.tar'}#sha256={'1' * 64}"))


def test_local_path_that_looks_like_a_url_gets_a_hint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dl, _ = make(tmp_path)
    with pytest.raises(DownloadError, match=r"write https://example\.com/f\.tar"):
        dl.fetch("f", parse_location("example.com/f.tar"))


# -- concurrency ----------------------------------------------------------------------------


def _fetch_in_process(cache: str, url: str, log: str) -> tuple[str, bool]:
    with open(log, "w", buffering=1) as out:
        got = Downloader(Path(cache), out=out, progress=False, backoff=0.01).fetch("art", parse_location(url))
    return got.sha256, got.cached


def test_two_processes_sharing_a_cache_download_once(tmp_path, http_server):
    gate = threading.Event()
    http_server.add("/art.tar", DATA, gate=gate)
    url = http_server.url("/art.tar")
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = [pool.apply_async(_fetch_in_process, (str(tmp_path / "cache"), url, str(log))) for log in logs]
        # hold the first download open until the other process says it is waiting for the lock
        deadline = time.monotonic() + 20
        while not any(log.exists() and "wait art: another build is downloading it" in log.read_text() for log in logs):
            assert time.monotonic() < deadline, [log.read_text() for log in logs if log.exists()]
            time.sleep(0.02)
        gate.set()
        got = [r.get(20) for r in results]
    assert {s for s, _ in got} == {SHA}
    assert sorted(cached for _, cached in got) == [False, True]
    assert len(http_server.gets()) == 1
    assert (tmp_path / "cache" / "downloads" / cache_key(parse_location(url)) / "art.tar").read_bytes() == DATA


def test_fetch_all_runs_concurrently_and_keeps_input_order(tmp_path, http_server):
    blobs = {name: deterministic_bytes(600_000 + i, seed=name.encode()) for i, name in enumerate(["a", "b", "c"])}
    # the first is the slowest, so finishing order differs from input order
    for delay, (name, blob) in zip((0.03, 0.01, 0.0), blobs.items()):
        http_server.add(f"/{name}.tar", blob, chunk_delay=delay)
    dl, out = make(tmp_path, progress=False)
    items = [(name, parse_location(http_server.url(f"/{name}.tar"))) for name in blobs]

    got = dl.fetch_all(items)

    assert [f.name for f in got] == ["a", "b", "c"]
    assert [f.path.read_bytes() for f in got] == list(blobs.values())
    assert all(isinstance(f, Fetched) and not f.cached for f in got)
    fetched = [line.split()[1] for line in lines(out) if line.startswith("fetched ")]
    # concurrent: the first one, slowest, finished last
    assert sorted(fetched) == ["a", "b", "c"] and fetched[-1] == "a"


def test_fetch_all_raises_the_first_failure_after_the_others_stop(tmp_path, http_server):
    http_server.add("/slow.tar", DATA, chunk_delay=0.1)  # ~50 chunks: 5 s if not cancelled
    http_server.add("/gone.tar", status=404)
    dl, out = make(tmp_path)
    items = [("slow", parse_location(http_server.url("/slow.tar"))), ("gone", parse_location(http_server.url("/gone.tar")))]
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"^gone not found \(HTTP 404\)"):
        dl.fetch_all(items)
    assert time.monotonic() - started < 2.5
    slow_part = tmp_path / "downloads" / cache_key(items[0][1]) / "slow.tar.part"
    assert slow_part.exists()  # kept, to resume next time
    assert not (slow_part.parent / "slow.tar").exists()


# -- output ---------------------------------------------------------------------------------


def test_no_bars_when_out_is_not_a_terminal(tmp_path, http_server):
    http_server.add("/f.tar", DATA)
    dl, out = make(tmp_path)  # progress=None and a StringIO: not a tty
    assert dl.progress is False
    dl.fetch("f", parse_location(http_server.url("/f.tar")))
    assert "\r" not in out.getvalue() and "%|" not in out.getvalue()
    assert [line.split()[0] for line in lines(out)] == ["download", "fetched"]


def test_bars_when_asked(tmp_path, http_server):
    http_server.add("/f.tar", DATA)
    dl, out = make(tmp_path, progress=True)
    dl.fetch("f", parse_location(http_server.url("/f.tar")))
    assert "100%" in out.getvalue() and "f: " in out.getvalue()
    assert "fetched " not in out.getvalue()


# -- TLS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def https_server(tls_files):
    with Server(tls=tls_context(*tls_files)) as server:
        server.add("/f.tar", DATA)
        yield server


def test_tls_is_verified_by_default(tmp_path, https_server, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    dl, _ = make(tmp_path)
    with pytest.raises(DownloadError) as info:
        dl.fetch("f", parse_location(https_server.url("/f.tar")))
    assert "TLS verification failed for 127.0.0.1" in str(info.value)
    assert "REQUESTS_CA_BUNDLE" in str(info.value) and "--insecure" in str(info.value)
    assert len(https_server.gets()) == 0  # the handshake failed: no request was sent


def test_requests_ca_bundle_is_honoured(tmp_path, https_server, tls_files, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files[0]))
    dl, _ = make(tmp_path)
    assert dl.fetch("f", parse_location(https_server.url("/f.tar"))).path.read_bytes() == DATA


def test_insecure_warns_once_and_silences_urllib3(tmp_path, https_server, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dl, out = make(tmp_path, verify=False)
        got = dl.fetch("f", parse_location(https_server.url("/f.tar")))
    assert got.path.read_bytes() == DATA
    assert not [w for w in caught if issubclass(w.category, urllib3.exceptions.InsecureRequestWarning)]
    warning_lines = [line for line in lines(out) if line.startswith("warning:")]
    assert len(warning_lines) == 1 and "--insecure" in warning_lines[0]


# -- cache dir ------------------------------------------------------------------------------


def test_default_cache_dir():
    assert default_cache_dir({"HOME": "/home/u"}) == Path("/home/u/.cache/musa_docker")
    assert default_cache_dir({"HOME": "/home/u", "MUSA_DOCKER_CACHE": "/big/cache"}) == Path("/big/cache")
    assert default_cache_dir({"HOME": "/home/u", "MUSA_DOCKER_CACHE": "~/c"}) == Path("/home/u/c")
    assert default_cache_dir({"HOME": "/home/u", "MUSA_DOCKER_CACHE": ""}) == Path("/home/u/.cache/musa_docker")
    with pytest.raises(ConfigError, match="MUSA_DOCKER_CACHE"):
        default_cache_dir({})


def test_unwritable_cache_is_a_clear_error(tmp_path, http_server):
    http_server.add("/f.tar", DATA)
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    dl, _ = make(blocker / "cache")
    with pytest.raises(DownloadError, match="cannot use the download cache .*MUSA_DOCKER_CACHE"):
        dl.fetch("f", parse_location(http_server.url("/f.tar")))
