"""Download throughput and memory: musa_docker's Downloader against `curl -s -o`, and over
one connection against several.

    python bench/download/run.py [--size-mb 500] [--runs 3] [--throttle-mb-s 10] [--throttle-size-mb 128]

A loopback server (tests/support/httpserver.py, the file sent with sendfile) serves a file of
deterministic bytes. Each run fetches it into a fresh directory on the same disk, once with
the Downloader (progress off, in a subprocess so its peak RSS can be read) and once with curl.
Printed: the median wall time of each (process start to exit), the Downloader's own fetch time,
the throughput ratio tool/curl (> 1 means the tool is faster), CPU time (steadier than wall
time on a busy machine), the tool's peak RSS, and the time of a cache hit (the second fetch:
hashing only). Each timed run starts after `sync`, so one run's writeback does not slow the
next.

The Downloader does more than curl: it hashes the bytes as they arrive and records the hash
beside the file before moving it into place.

Two more cases compare one connection (`--connections 1`, the Downloader as it was) with the
default four: unthrottled (the same sendfile server: four must be no slower), and throttled (a
second file, served at a fixed `--throttle-mb-s` per connection, as vendor CDNs and proxies
often do: the goal is at least 3x at four connections).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "support"))

from httpserver import Server  # noqa: E402

CHILD = r"""
import io, json, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from musa_docker.fetch.download import Downloader
from musa_docker.values.locations import parse_location
with io.StringIO() as said:
    dl = Downloader(Path(sys.argv[2]), out=said, progress=False, connections=int(sys.argv[4]))
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    got = dl.fetch("bench", parse_location(sys.argv[3]))
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    split = "split " in said.getvalue()
print(json.dumps({
    "split": split,
    "seconds": seconds,
    "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    "sha256": got.sha256,
    "cached": got.cached,
    "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
}))
"""


def make_file(path: Path, size: int) -> str:
    """Write `size` deterministic bytes (1 MiB blocks that all differ); return their sha256."""
    h = hashlib.sha256()
    block = 1 << 20
    with open(path, "wb") as f:
        for i in range(0, size, block):
            seed = hashlib.sha256(i.to_bytes(8, "big")).digest()
            data = (seed * (block // len(seed)))[: min(block, size - i)]
            f.write(data)
            h.update(data)
    return h.hexdigest()


def run_tool(cache: Path, url: str, connections: int = 1) -> tuple[float, dict]:
    os.sync()  # start each run without the previous one's dirty pages to write back
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), str(cache), url, str(connections)],
        check=True, capture_output=True, text=True,
    )
    wall = time.perf_counter() - started
    return wall, json.loads(proc.stdout)


def run_curl(target: Path, url: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one curl."""
    os.sync()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(["curl", "-s", "-o", str(target), url], check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--throttle-mb-s", type=float, default=10.0, help="per-connection limit of the throttled case")
    parser.add_argument("--throttle-size-mb", type=int, default=128, help="file of the throttled case (>= 68 MB)")
    args = parser.parse_args()
    if shutil.which("curl") is None:
        print("error: curl is not installed", file=sys.stderr)
        return 1

    size = args.size_mb * 1_000_000
    with tempfile.TemporaryDirectory(prefix="bench-download-") as tmp_dir:
        tmp = Path(tmp_dir)
        src = tmp / "served.bin"
        print(f"generating {args.size_mb} MB of test data in {src}", flush=True)
        expected = make_file(src, size)
        with Server() as server:
            server.add("/served.bin", file=src)
            url = server.url("/served.bin")
            throttled_size = args.throttle_size_mb * 1_000_000
            slow = tmp / "throttled.bin"
            slow_sha = make_file(slow, throttled_size)
            server.add("/throttled.bin", file=slow, rate=args.throttle_mb_s * 1_000_000)
            slow_url = server.url("/throttled.bin")

            tool_wall, tool_fetch, tool_cpu, tool_rss, curl_wall, curl_cpu, hits = [], [], [], [], [], [], []
            multi_fast: list[float] = []
            throttled: dict[int, list[float]] = {1: [], 4: []}
            for i in range(args.runs):
                cache = tmp / f"cache{i}"
                wall, result = run_tool(cache, url)
                assert result["sha256"] == expected and not result["cached"], result
                tool_wall.append(wall)
                tool_fetch.append(result["seconds"])
                tool_cpu.append(result["cpu"])
                tool_rss.append(result["maxrss_kb"])
                _, hit = run_tool(cache, url)
                assert hit["cached"], hit
                hits.append(hit["seconds"])
                shutil.rmtree(cache)

                target = tmp / f"curl{i}.bin"
                wall_c, cpu_c = run_curl(target, url)
                curl_wall.append(wall_c)
                curl_cpu.append(cpu_c)
                assert target.stat().st_size == size
                target.unlink()
                fast4 = fetch_once(tmp / f"fast4-{i}", url, 4, expected)
                multi_fast.append(fast4)
                slow1 = fetch_once(tmp / f"slow1-{i}", slow_url, 1, slow_sha)
                slow4 = fetch_once(tmp / f"slow4-{i}", slow_url, 4, slow_sha)
                throttled[1].append(slow1)
                throttled[4].append(slow4)
                print(
                    f"run {i + 1}: tool {wall:.2f}s (fetch {result['seconds']:.2f}s, "
                    f"cpu {result['cpu']:.2f}s, rss {result['maxrss_kb'] / 1024:.0f} MiB), "
                    f"curl {wall_c:.2f}s (cpu {cpu_c:.2f}s), 4 connections {fast4:.2f}s; "
                    f"throttled: 1 connection {slow1:.2f}s, 4 connections {slow4:.2f}s",
                    flush=True,
                )

    def mbps(seconds: float) -> float:
        return size / seconds / 1e6

    t, f, c = statistics.median(tool_wall), statistics.median(tool_fetch), statistics.median(curl_wall)
    print()
    print(f"file                  {args.size_mb} MB over loopback, {args.runs} runs, medians")
    print(f"musa_docker (wall)    {t:.2f}s  {mbps(t):7.0f} MB/s   (process start to exit)")
    print(f"musa_docker (fetch)   {f:.2f}s  {mbps(f):7.0f} MB/s   (Downloader.fetch only)")
    print(f"curl -s -o (wall)     {c:.2f}s  {mbps(c):7.0f} MB/s")
    print(f"throughput tool/curl  {c / t:.2f} (wall)   {c / f:.2f} (fetch only)")
    print(f"CPU (user+sys)        tool fetch {statistics.median(tool_cpu):.2f}s, curl {statistics.median(curl_cpu):.2f}s")
    print(f"tool peak RSS         {max(tool_rss) / 1024:.0f} MiB (max of runs)")
    print(f"cache hit (hash only) {statistics.median(hits):.2f}s")
    m4 = statistics.median(multi_fast)
    print(f"4 connections (fetch) {m4:.2f}s  {mbps(m4):7.0f} MB/s   unthrottled: 1 / 4 connections {f / m4:.2f}x"
          " (goal: >= 1, no slower)")
    s1, s4 = statistics.median(throttled[1]), statistics.median(throttled[4])
    tput = throttled_size / 1e6
    print(f"throttled             {args.throttle_size_mb} MB at {args.throttle_mb_s:g} MB/s per connection:")
    print(f"  1 connection        {s1:.2f}s  {tput / s1:7.1f} MB/s")
    print(f"  4 connections       {s4:.2f}s  {tput / s4:7.1f} MB/s   ratio {s1 / s4:.2f}x (goal: >= 3x)")
    return 0


def fetch_once(cache: Path, url: str, connections: int, expected: str) -> float:
    """Downloader.fetch seconds of one fresh download over `connections`."""
    _, result = run_tool(cache, url, connections)
    assert result["sha256"] == expected and not result["cached"], result
    shutil.rmtree(cache)
    if result["split"]:
        print(f"  ({url.rsplit('/', 1)[1]} with --connections {connections}: split after one connection proved slow)")
    return result["seconds"]


if __name__ == "__main__":
    sys.exit(main())
