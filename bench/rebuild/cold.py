#!/usr/bin/env python3
"""The cold dev build (no compile cache anywhere, no layer cache) under each builder, interleaved,
with the CPU time that explains the wall time: which builder is faster cold, and why.

Every build runs on an engine started for it (a dockerd of its own, tests/support/dockerd.py, with
only the base image loaded: an empty BuildKit cache mount, no layers), in an order that rotates
from round to round, so that no variant always runs first or on a quieter machine. The variants:

  classic              --builder classic (no compile cache: the classic builder has no cache mounts)
  buildkit             --builder buildkit, the compile cache on, its mount empty (every unit a miss)
  buildkit-no-cache    --builder buildkit --no-compile-cache (BuildKit without ccache: the builder
                       alone against classic, and ccache's cost on a miss against `buildkit`)

Each build gives: its wall time; the wall time of each build step, from the time each line of the
log arrived (the torch_musa step, the MUSA installs, BuildKit's export to the image store, the rest
of the steps, and what lies outside the steps: prepare, context, the label's run, the check); the
stand-in's build.sh (standin.py) compile+link wall and CPU time (user and system of every process
it waited for) and the jobs it ran; the engine's CPU time (the dockerd and its containerd, with the
children they reaped, and the classic builder's containers in a cgroup of the run's own); the
host's CPU time spent meanwhile by everything (so a loaded machine shows) and the load average.

Usage (from the repo root): python bench/rebuild/cold.py [--work DIR] [--files N] [--rounds R]
                            [--variants classic,buildkit,buildkit-no-cache] [--base REF] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as rebuild  # noqa: E402  (bench/rebuild/run.py: its env, base and stand-in helpers)
from run import BUILDERS, DEV, PYTHON, SEED, say  # noqa: E402
import standin  # noqa: E402
import vendor  # noqa: E402  (tests/support/vendor.py)
from dockerd import start_dockerd, stop_dockerd  # noqa: E402  (tests/support/dockerd.py)
from images import debian12_image, local_pypi  # noqa: E402
from musa_docker.pipeline.build import compile_cache_counts  # noqa: E402

OWNED = ".musa-docker-bench-rebuild-cold"
VARIANTS = {"classic": BUILDERS["classic"],
            "buildkit": BUILDERS["buildkit"],
            "buildkit-no-cache": (*BUILDERS["buildkit"], "--no-compile-cache")}
TICK = os.sysconf("SC_CLK_TCK")
CGROUP = Path("/sys/fs/cgroup/cpuacct")     # cgroup v1; on v2 the containers' share is not read
PHASES = re.compile(r"build\.sh: configure ([\d.]+)s, compile and link ([\d.]+)s, pip install ([\d.]+)s")
CPU = re.compile(r"build\.sh: compile and link cpu user ([\d.]+)s system ([\d.]+)s, (\d+) jobs")
BK_STEP = re.compile(r"#(\d+) (\[[^\]]*\] .*|exporting to image.*)$")
BK_DONE = re.compile(r"#(\d+) DONE ([\d.]+)s")
CLASSIC_STEP = re.compile(r"Step \d+/\d+ : (.*)$")


def host_cpu() -> tuple:
    """(busy, all) seconds of every CPU of the host since boot, from /proc/stat."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / TICK, sum(fields[:8]) / TICK


def proc_cpu(pid: int) -> float:
    """User and system seconds of `pid` itself (not of its children: a BuildKit RUN step's processes
    are runc's children, and are counted in the cgroup)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def remove_cgroup(name: str) -> None:
    """Remove the cgroup `name` (made by a dockerd of this bench, empty once it stopped) from every
    hierarchy, its sub-cgroups (BuildKit's `buildkit`) first."""
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / name
        if not top.is_dir():
            continue
        for path in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                path.rmdir()
            except OSError:
                pass
        try:
            top.rmdir()
        except OSError:
            pass


@contextmanager
def fresh_engine(base: str, cgroup: str):
    """A dockerd of its own with `base` loaded, its containers (the classic builder's, and BuildKit's
    RUN steps, which go under `buildkit/`) in the top-level cgroup `cgroup`; yields (socket, a
    function giving (the containers' CPU seconds, the engine's own: dockerd and containerd))."""
    import docker
    root = Path(tempfile.mkdtemp(prefix="mdb.", dir="/tmp"))
    proc, client, sock = start_dockerd(root, "--cgroup-parent", f"/{cgroup}")
    try:
        main = docker.from_env()
        client.api.load_image(main.api.get_image(base))

        def cpu() -> tuple:
            engine = proc_cpu(proc.pid)
            pid = root / "x" / "containerd" / "containerd.pid"
            if pid.is_file():
                engine += proc_cpu(int(pid.read_text().strip() or 0))
            usage = CGROUP / cgroup / "cpuacct.usage"
            return (int(usage.read_text()) / 1e9 if usage.is_file() else 0.0), engine

        yield sock, cpu
    finally:
        client.close()
        stop_dockerd(proc, root)
        shutil.rmtree(root, ignore_errors=True)
        remove_cgroup(cgroup)


def timed_cli(env: dict, log: Path, *args: str) -> tuple:
    """Run `musa-docker ARGS`; (seconds, [(seconds since start, line)]). A failure ends the bench."""
    os.sync()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "musa_docker", *args], env=env, cwd=rebuild.ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines = [(time.perf_counter() - started, line.rstrip("\n")) for line in proc.stdout]
    proc.wait()
    seconds = time.perf_counter() - started
    with log.open("a") as f:
        f.write(f"$ musa-docker {' '.join(args)}\n" + "".join(f"[{t:7.1f}] {line}\n" for t, line in lines)
                + f"(exit {proc.returncode}, {seconds:.1f}s)\n\n")
    if proc.returncode != 0:
        raise SystemExit(f"error: musa-docker {args[0]} failed (exit {proc.returncode}); see {log}")
    return seconds, lines


def steps(lines: list) -> list:
    """[(step, seconds)] of every build step the log shows, in order. BuildKit: its own `#N DONE`
    time; a second or third BuildKit build (the runs that label the image, every step from the
    cache) is one entry, `label run`, from its first line to its last. Classic: from its `Step`
    line to the next one, the last to `Successfully built`."""
    out, order, done, starts, spans = [], [], {}, [], {}
    build = 0
    for t, line in lines:
        if line.startswith("#1 [internal] load build definition"):
            build += 1
        if build >= 2 and line.startswith("#"):
            first, _ = spans.get(build, (t, t))
            spans[build] = (first, t)
            continue
        m = BK_STEP.match(line)
        if m and (build, m.group(1)) not in done:
            done[(build, m.group(1))] = None
            order.append(((build, m.group(1)), m.group(2)))
        m = BK_DONE.match(line)
        if m:
            done[(build, m.group(1))] = float(m.group(2))
        m = CLASSIC_STEP.match(line)
        if m:
            starts.append((t, m.group(1)))
        elif starts and line.startswith("Successfully built"):
            starts.append((t, None))
    for (t, step), (t2, _) in zip(starts, starts[1:]):
        if step is not None:
            out.append((step, t2 - t))
    out += [(text, done[key]) for key, text in order if done[key] is not None]
    out += [("label run", last - first) for first, last in spans.values()]
    return out


def kind(step: str) -> str:
    if step == "label run":
        return "label runs"
    if "build_torch_musa.sh" in step:
        return "torch_musa"
    if "build_torchvision.sh" in step:
        return "vision"
    if "install_musa.sh" in step or step.startswith("COPY --from="):
        return "musa"
    if step.startswith("exporting to image"):
        return "export"
    return "other"


def build(variant: str, base: str, common: list, env: dict, log: Path, tag: str) -> dict:
    cgroup = f"musa-docker-bench-{tag}"
    with fresh_engine(base, cgroup) as (sock, engine_cpu):
        load = os.getloadavg()[0]
        (box0, engine0), host0 = engine_cpu(), host_cpu()
        seconds, lines = timed_cli(env, log, *common, "-t", tag, "--docker-host", sock, *VARIANTS[variant])
        (box1, engine1), host1 = engine_cpu(), host_cpu()
    text = "\n".join(line for _, line in lines)
    by_kind = {}
    for step, took in steps(lines):
        by_kind[kind(step)] = by_kind.get(kind(step), 0.0) + took
    by_kind["outside steps"] = seconds - sum(by_kind.values())
    m, c = PHASES.search(text), CPU.search(text)
    hits, _, misses = compile_cache_counts(text)
    return {"seconds": seconds, "steps": by_kind, "load": (load, os.getloadavg()[0]),
            "compile": float(m.group(2)) if m else None,
            "compile_cpu": (float(c.group(1)), float(c.group(2))) if c else None, "jobs": int(c.group(3)) if c else None,
            "containers_cpu": box1 - box0, "engine_cpu": engine1 - engine0, "host_cpu": host1[0] - host0[0],
            "host_share": (host1[0] - host0[0]) / max(1e-9, host1[1] - host0[1]),
            "cache": (hits, misses) if hits + misses else None}


def report(rows: dict, files: int) -> None:
    print()
    print(f"{'variant':<19}" + "".join(f"{'round ' + str(i + 1):>10}" for i in range(len(next(iter(rows.values())))))
          + f"{'median':>10}")
    med = {}
    for name, got in rows.items():
        med[name] = statistics.median(r["seconds"] for r in got)
        print(f"{name:<19}" + "".join(f"{r['seconds']:>9.1f}s" for r in got) + f"{med[name]:>9.1f}s")
    if "classic" in med and "buildkit" in med:
        print(f"cold classic / cold buildkit {med['classic'] / med['buildkit']:.2f}x (wall, medians)")
    print()
    print("per build (wall s; cpu s = user+system):")
    for name, got in rows.items():
        for i, r in enumerate(got, 1):
            user, system = r["compile_cpu"] or (0.0, 0.0)
            steps = "  ".join(f"{k} {v:.1f}" for k, v in r["steps"].items())
            print(f"  {name:<18} round {i}: total {r['seconds']:.1f}  [{steps}]")
            print(f"  {'':<18}   compile+link wall {r['compile'] or 0:.1f}, cpu {user + system:.1f} "
                  f"(user {user:.1f} system {system:.1f}; {(user + system) / files:.2f}/unit), {r['jobs']} jobs; "
                  f"containers cpu {r['containers_cpu']:.1f}, engine cpu {r['engine_cpu']:.1f}; host cpu {r['host_cpu']:.1f} "
                  f"({100 * r['host_share']:.0f}% of all CPUs; this build's containers {100 * r['containers_cpu'] / max(1e-9, r['host_cpu']):.0f}% of it), load {r['load'][0]:.1f}->{r['load'][1]:.1f}; "
                  f"compile cache {rebuild.rate(r['cache'])}")
    print()
    print("medians:")
    for name, got in rows.items():
        cpu = statistics.median(sum(r["compile_cpu"] or (0, 0)) for r in got)
        wall = statistics.median(r["compile"] or 0 for r in got)
        engine = statistics.median(r["engine_cpu"] for r in got)
        box = statistics.median(r["containers_cpu"] for r in got)
        share = statistics.median(r["host_share"] for r in got)
        ours = statistics.median(r["containers_cpu"] / max(1e-9, r["host_cpu"]) for r in got)
        print(f"  {name:<18} compile+link wall {wall:.1f}s, cpu {cpu:.1f}s ({cpu / files:.2f}s/unit); "
              f"containers cpu {box:.1f}s, engine cpu {engine:.1f}s; host busy {100 * share:.0f}%, "
              f"of which this build {100 * ours:.0f}%")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/musa-docker-bench-rebuild-cold"),
                    help="where the repos, the index, the tool's cache and the logs go [%(default)s]")
    ap.add_argument("--files", type=int, default=60, help="C++ units of the torch_musa stand-in [%(default)s]")
    ap.add_argument("--rounds", type=int, default=2, help="rounds, each one cold build of every variant [%(default)s]")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"which builds, comma-separated, of {', '.join(VARIANTS)} [all]")
    ap.add_argument("--base", help="reuse this base image (a build-base of debian:12, Python 3.11) instead of building one")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    if args.files < 1 or args.rounds < 1:
        sys.exit("error: --files and --rounds must be at least 1")
    if not variants or any(v not in VARIANTS for v in variants):
        sys.exit(f"error: --variants takes {', '.join(VARIANTS)}, comma-separated")
    work = args.work.resolve()
    rebuild.benchlib.claim(work, OWNED)
    env = rebuild.user_env(work)
    log = work / "bench.log"
    tag = uuid.uuid4().hex[:8]
    rows = {v: [] for v in variants}
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
        archives = (vendor.musa_toolkits_archive(vendor_dir), vendor.mudnn_archive(vendor_dir),
                    vendor.mccl_archive(vendor_dir))
        repo = standin.create(upstream / "torch_musa", args.files, SEED)
        vision = vendor.vision_repo(upstream)
        with local_pypi(work / "index", vendor.dev_index_wheels(PYTHON)) as index:
            common = ["build-dev", "-b", base, "-i", DEV, "-m", str(archives[0]), "-n", str(archives[1]),
                      "--mccl-url", str(archives[2]), "--torch-musa-repo", repo.as_uri(),
                      "--vision-repo", vision.as_uri(), "--vision-root", str(work / "src"), "--pip-index-url", index]
            for rnd in range(args.rounds):
                order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
                for name in order:
                    say(f"round {rnd + 1}/{args.rounds}: cold {name} on a fresh engine "
                        f"(load average {os.getloadavg()[0]:.1f})")
                    row = build(name, base, common, env, log, f"{tag}-{rnd + 1}-{name}")
                    rows[name].append(row)
                    cpu = sum(row["compile_cpu"] or (0, 0))
                    say(f"  {row['seconds']:.1f}s; compile+link {row['compile'] or 0:.1f}s wall, {cpu:.1f}s cpu; "
                        f"host busy {100 * row['host_share']:.0f}%")
        ok = True
    finally:
        for ref in made:
            rebuild.docker("rmi", ref)
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        if not ok:
            print(f"the log is kept in {log}", file=sys.stderr)
    if ok:
        report(rows, args.files)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
