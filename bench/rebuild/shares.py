#!/usr/bin/env python3
"""Where each builder's RUN steps sit among the host's CPU cgroups, and what that does to a build's
wall time on a shared machine.

The Docker engine (cgroupfs driver, cgroup v1 or v2) puts every container under its cgroup parent,
`/docker` by default: one cgroup per classic build step (`/docker/<id>`), while every BuildKit RUN
step goes under one more level, `/docker/buildkit/<id>`. The kernel shares the CPUs between the
cgroups of one level by weight (cpu.shares, 1024 each), so all BuildKit steps running at once on
the machine, from every engine with that parent, share the weight of one classic step.

This measures it: one fixed CPU-bound job (2 busy workers, as `-j2` on 2 CPUs) run as a build step
of each builder, alone and beside a load of three spinning containers, one in a classic step's
place (/docker/<id>) and two in BuildKit steps' place (/docker/buildkit/<id>), as other builds on a
shared machine would be; the job on an engine with the default cgroup parent (as the engines of a
shared machine are), then on one with a cgroup parent of its own (as bench/rebuild/cold.py runs
its engines). Printed: the job's wall time per case; each case runs --rounds times, the builders
alternating.

Usage (from the repo root): python bench/rebuild/shares.py [--rounds R] [--work-mloops N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import say  # noqa: E402
from dockerd import start_dockerd, stop_dockerd  # noqa: E402  (tests/support/dockerd.py)
from images import busybox_image  # noqa: E402
from cold import remove_cgroup  # noqa: E402  (bench/rebuild/cold.py)

DOCKER = "/usr/bin/docker"


def loop(n: int) -> str:
    return f"i=0; while [ $i -lt {n} ]; do i=$((i+1)); done"


def dockerfile(ref: str, body: str, salt: str) -> str:
    return f"FROM {ref}\nRUN echo {salt} >/salt; {body}\n"


def build(sock: str, ctx: Path, buildkit: bool) -> None:
    env = {**os.environ, "DOCKER_BUILDKIT": "1" if buildkit else "0"}
    argv = [DOCKER, "-H", sock, "build", "--no-cache", "-q"] + (["--network", "host"] if buildkit else []) + [str(ctx)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: a build failed: {done.stderr.strip()[-500:]}")


def case(load_client, sock: str, work: Path, ref: str, ours: str, load: bool, n: int) -> float:
    """The wall time of the job built by `ours` on `sock`, with or without the load: containers of
    the engine `load_client` placed where its builders put their steps, one where a classic step
    goes (its own cgroup under the engine's parent, /docker) and two where BuildKit's go
    (/docker/buildkit/), each spinning 2 workers until it is removed."""
    tag = uuid.uuid4().hex[:8]
    loads = []
    try:
        if load:
            for parent in ("", "/docker/buildkit", "/docker/buildkit"):
                loads.append(load_client.containers.run(
                    ref, ["sh", "-c", "(while :; do :; done) & while :; do :; done"], detach=True,
                    network_mode="none", cgroup_parent=parent or None, labels={"musa-docker-bench.shares": tag}))
            time.sleep(3)                          # the load is spinning
        ctx = work / f"job-{tag}"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(dockerfile(ref, f"({loop(n)}) & ({loop(n)}) & wait", tag))
        started = time.perf_counter()
        build(sock, ctx, ours == "buildkit")
        return time.perf_counter() - started
    finally:
        for container in loads:
            container.remove(force=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2, help="rounds of every case [%(default)s]")
    ap.add_argument("--work-mloops", type=float, default=3.0,
                    help="the job: millions of shell loop turns per worker [%(default)s]")
    args = ap.parse_args(argv)
    n = int(args.work_mloops * 1e6)
    results = {}
    engines = []
    cgroup = f"musa-docker-bench-shares-{uuid.uuid4().hex[:8]}"
    try:
        for extra in ((), ("--cgroup-parent", f"/{cgroup}")):
            root = Path(tempfile.mkdtemp(prefix="mdb.", dir="/tmp"))
            proc, client, sock = start_dockerd(root, *extra)
            engines.append((proc, client, sock, root))
        (_, load_client, load_sock, _), (_, own_client, own_sock, _) = engines
        ref = busybox_image(load_client)
        busybox_image(own_client)
        work = Path(tempfile.mkdtemp(prefix="mdb-shares."))
        for rnd in range(args.rounds):
            for load in (False, True):
                for parent, sock in (("default", load_sock), ("own", own_sock)):
                    for ours in (("classic", "buildkit") if rnd % 2 == 0 else ("buildkit", "classic")):
                        say(f"cgroup parent {parent}, {'with' if load else 'without'} the load: job by {ours} "
                            f"(load average {os.getloadavg()[0]:.1f})")
                        seconds = case(load_client, sock, work, ref, ours, load, n)
                        results.setdefault((parent, load, ours), []).append(seconds)
                        say(f"  {seconds:.1f}s")
        shutil.rmtree(work, ignore_errors=True)
    finally:
        for proc, client, sock, root in engines:
            client.close()
            stop_dockerd(proc, root)
            shutil.rmtree(root, ignore_errors=True)
        remove_cgroup(cgroup)
    print()
    print(f"{'cgroup parent':<15}{'load':<10}{'job by':<10}" + "".join(f"{'round ' + str(i + 1):>10}"
                                                                      for i in range(args.rounds)) + f"{'median':>10}")
    med = {}
    for (parent, load, ours), got in results.items():
        med[(parent, load, ours)] = statistics.median(got)
        print(f"{parent:<15}{'1c+2bk' if load else 'none':<10}{ours:<10}" + "".join(f"{s:>9.1f}s" for s in got)
              + f"{med[(parent, load, ours)]:>9.1f}s")
    for parent in ("default", "own"):
        for load in (False, True):
            c, b = med[(parent, load, "classic")], med[(parent, load, "buildkit")]
            print(f"cgroup parent {parent}, load {'1 classic + 2 BuildKit steps' if load else 'none'}: "
                  f"buildkit/classic {b / c:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
