#!/usr/bin/env python3
"""The compile cache past one machine: a dev rebuild after one source file of torch_musa changes, on a
fresh engine (no layer cache, no compile cache mount) that has the shared compile cache
(--compile-cache-remote, Debian's redis-server on 127.0.0.1) against the same build with no cache
anywhere; and the cold build under both builders, interleaved.

Every build runs on an engine started for it (a dockerd of its own, tests/support/dockerd.py) that
gets the base image loaded and nothing else. Each run: the remote is emptied; a cold classic build
and a cold BuildKit build with the remote (which fills it), in alternating order from run to run;
then a commit changes one unit of the stand-in (standin.py) and a BuildKit build on another fresh
engine reads the remote. Printed: each build's seconds, the medians, cold BuildKit / shared-cache
rebuild (goal: at least 5x), the rebuild's compile cache (goal: at least 95% hits), cold
classic / cold BuildKit, and build.sh's phases (configure, compile and link, pip install).

Usage (from the repo root): python bench/rebuild/remote.py [--work DIR] [--files N] [--runs R] [--base REF] [--keep]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as rebuild  # noqa: E402  (bench/rebuild/run.py: its env, cli, base, stand-in helpers)
from run import BUILDERS, DEV, PYTHON, SEED, cli, phases, rate, say  # noqa: E402
import standin  # noqa: E402
import vendor  # noqa: E402  (tests/support/vendor.py)
from redisserver import redis_cli, serve_redis  # noqa: E402  (tests/support/redisserver.py)
from cold import fresh_engine  # noqa: E402  (bench/rebuild/cold.py: an engine in a cgroup of its own)
from images import debian12_image, local_pypi  # noqa: E402
from musa_docker.pipeline.build import compile_cache_counts  # noqa: E402

OWNED = ".musa-docker-bench-rebuild-remote"


def counts(out: str):
    hits, remote, misses = compile_cache_counts(out)
    return (hits, misses) if hits + misses else None, remote


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/musa-docker-bench-rebuild-remote"),
                    help="where the repos, the index, the tool's cache and the logs go [%(default)s]")
    ap.add_argument("--files", type=int, default=200, help="C++ units of the torch_musa stand-in [%(default)s]")
    ap.add_argument("--runs", type=int, default=2, help="runs, each: cold classic, cold BuildKit, shared rebuild [%(default)s]")
    ap.add_argument("--base", help="reuse this base image (a build-base of debian:12, Python 3.11) instead of building one")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    args = ap.parse_args(argv)
    if args.files < 1 or args.runs < 1:
        sys.exit("error: --files and --runs must be at least 1")
    work = args.work.resolve()
    rebuild.benchlib.claim(work, OWNED)
    env = rebuild.user_env(work)
    log = work / "bench.log"
    tag = uuid.uuid4().hex[:8]
    salt = secrets.randbelow(1 << 31) + 1
    rows = {"classic cold": [], "buildkit cold": [], "shared rebuild": []}
    made, ok = [], False
    try:
        debian12_image()
        upstream = work / "upstream"
        shutil.rmtree(upstream, ignore_errors=True)
        base = args.base
        if not base:
            base, _ = rebuild.build_bench_base(env, log, work, tag, upstream)
            made.append(base)
        vendor_dir = work / "vendor"
        archives = (vendor.musa_toolkits_archive(vendor_dir), vendor.mudnn_archive(vendor_dir))
        repo = standin.create(upstream / "torch_musa", args.files, SEED)
        vision = vendor.vision_repo(upstream)
        common = ["build-dev", "-b", base, "-i", DEV, "-m", str(archives[0]), "-n", str(archives[1]),
                  "--torch-musa-repo", repo.as_uri(), "--vision-repo", vision.as_uri(),
                  "--vision-root", str(work / "src")]
        with serve_redis() as port, local_pypi(work / "index", vendor.dev_index_wheels(PYTHON)) as index:
            remote = f"redis://127.0.0.1:{port}"
            for run in range(1, args.runs + 1):
                redis_cli(port, "flushall")            # no cache anywhere: the cold builds start from nothing
                order = ("classic", "buildkit") if run % 2 else ("buildkit", "classic")
                for name in order:
                    extra = ("--compile-cache-remote", remote) if name == "buildkit" else ()
                    with fresh_engine(base, f"musa-docker-bench-{tag}-{run}-{name}") as (sock, _):
                        say(f"run {run}: cold {name} on a fresh engine (load average {os.getloadavg()[0]:.1f})")
                        seconds, out = cli(env, log, *common, "-t", f"{tag}-{run}-{name}", "--pip-index-url", index,
                                           "--docker-host", sock, *BUILDERS[name], *extra)
                    rows[f"{name} cold"].append({"seconds": seconds, "phases": phases(out), "cache": counts(out)})
                    say(f"  {seconds:.1f}s; {phases(out)}")
                changed = standin.change(repo, args.files, SEED, run, salt + run)
                with fresh_engine(base, f"musa-docker-bench-{tag}-{run}-shared") as (sock, _):
                    say(f"run {run}: {changed} changed; BuildKit with the shared cache on a fresh engine")
                    seconds, out = cli(env, log, *common, "-t", f"{tag}-{run}-shared", "--pip-index-url", index,
                                       "--docker-host", sock, *BUILDERS["buildkit"], "--compile-cache-remote", remote,
                                       "--compile-cache-remote-only-read")
                cache, from_remote = counts(out)
                rows["shared rebuild"].append({"seconds": seconds, "phases": phases(out), "cache": cache,
                                               "remote": from_remote})
                say(f"  {seconds:.1f}s; {phases(out)}; compile cache {rate(cache)}, {from_remote} from the remote")
        ok = True
    finally:
        for ref in made:
            rebuild.docker("rmi", ref)
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        if not ok:
            print(f"the log is kept in {log}", file=sys.stderr)
    if ok:
        print()
        med = {}
        for name, got in rows.items():
            med[name] = statistics.median(r["seconds"] for r in got)
            print(f"{name:<16}" + "".join(f"{r['seconds']:>8.1f}s" for r in got) + f"   median {med[name]:.1f}s")
        print(f"cold BuildKit / shared-cache rebuild {med['buildkit cold'] / med['shared rebuild']:.2f}x "
              "(goal: at least 5x)")
        hits = sum(r["cache"][0] for r in rows["shared rebuild"] if r["cache"])
        misses = sum(r["cache"][1] for r in rows["shared rebuild"] if r["cache"])
        print(f"shared-cache rebuilds' compile cache: {rate((hits, misses))} (goal: at least 95%)")
        print(f"cold classic / cold BuildKit {med['classic cold'] / med['buildkit cold']:.2f}x")
        print("build.sh phases:")
        for name, got in rows.items():
            for i, r in enumerate(got, 1):
                print(f"  {name:<16}run {i}  {r['phases']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
