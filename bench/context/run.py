#!/usr/bin/env python3
"""How fast a PyTorch-sized source tree gets from the host into an image: the old way against the tool's.

- old:       `cp -r TREE CTX/pytorch`, then `DOCKER_BUILDKIT=0 docker build --no-cache -q` with
             `COPY pytorch /home/pytorch` (what build_base.sh did);
- tool cold: what build-base does: `context.tree_tar(..., at="home/pytorch")` with an empty cache
             (fingerprint + pack as a layer, its sha256 taken while packing), the Dockerfile built
             without the tree (`build.run` on a staged context), then the tree appended as one
             layer with `Engine.load(layers.load_archive(...))`;
- tool warm: the same with the layer tar already in the cache (fingerprint, no pack).

Every build is `--no-cache`, so the engine unpacks the tree every time. Each run is timed from its
first step to the image id; cleaning up is not timed. Every image is checked against the host tree
(counts, and digests of contents, modes and symlink targets) so the ways are compared on equal output.

Usage (from the repo root): python bench/context/run.py [--work DIR] [--files N] [--size-gb G] [--runs R] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import benchlib  # noqa: E402  (bench/benchlib.py)
from benchlib import say  # noqa: E402
import tree  # noqa: E402  (bench/context/tree.py)
from musa_docker.pipeline import build, context, layers  # noqa: E402
from musa_docker.pipeline.builddir import BuildDir  # noqa: E402
from musa_docker.engine.api import Engine  # noqa: E402
from musa_docker.engine.docker_cli import BuildSettings  # noqa: E402

BASE = "musa-docker-test/busybox:latest"
OLD_TAG = "bench-old:latest"
SEED = 20230401
OWNED = ".musa-docker-bench-context"       # marks a work dir as this benchmark's own
NAME = "pytorch"

VERIFY = (
    "cd /home && "
    "echo files $(find pytorch -type f | wc -l) && "
    "echo dirs $(find pytorch -type d | wc -l) && "
    "echo links $(find pytorch -type l | wc -l) && "
    "echo content $(find pytorch -type f | sort | xargs sha256sum | sha256sum) && "
    "echo modes $(find pytorch | sort | xargs stat -c '%a %F %n' | sha256sum) && "
    "echo links_digest $(for l in $(find pytorch -type l | sort); do echo \"$l $(readlink $l)\"; done | sha256sum)"
)


def now() -> float:
    return time.perf_counter()


# --- the work dir and the tree -------------------------------------------------------------------

def claim(work: Path) -> None:
    benchlib.claim(work, OWNED)


def ensure_tree(work: Path, files: int, size_bytes: int) -> Path:
    """The tree for these parameters: reused when the marker says it is there, else (re)generated."""
    root = work / NAME
    marker = work / "tree.params"
    params = f"spec={tree.SPEC} seed={SEED} files={files} bytes={size_bytes}\n"
    if root.is_dir() and marker.is_file() and marker.read_text() == params:
        say(f"reuse tree {root} ({params.strip()})")
        return root
    marker.unlink(missing_ok=True)
    if root.exists():
        shutil.rmtree(root)
    say(f"generate tree {root} ({params.strip()})")
    started = now()
    plan = tree.plan(files, size_bytes, SEED)
    tree.write(root, plan, SEED)
    marker.write_text(params)
    say(f"generated {len(plan.files)} files, {len(plan.dirs)} dirs, {len(plan.links)} symlinks, "
        f"{plan.bytes / 1e9:.2f} GB in {now() - started:.1f}s")
    return root


def remove_image(ref: str) -> None:
    subprocess.run(["docker", "rmi", "-f", ref], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def check_image(image: str, want: dict, way: str) -> list:
    """What differs between the tree in `image` and `want` (empty when nothing does)."""
    out = subprocess.run(["docker", "run", "--rm", "--network", "none", image, "sh", "-c", VERIFY],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return [f"{way}: the check container failed ({out.returncode}): {out.stderr.strip()[:300]}"]
    got = {}
    for line in out.stdout.splitlines():
        key, _, value = line.partition(" ")
        got[key] = value.split()[0] if value else ""
    return [f"{way}: {k} is {got.get(k)!r} in the image, {v!r} on the host"
            for k, v in want.items() if got.get(k) != v]


def quiesce() -> None:
    """Flush the previous run's dirty pages, so its writeback is not charged to the next run."""
    os.sync()


# --- the three ways ----------------------------------------------------------------------------------

def old_way(src: Path, work: Path) -> tuple:
    ctx = work / "old-ctx"
    if ctx.exists():
        shutil.rmtree(ctx)
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {BASE}\nCOPY {NAME} /home/{NAME}\n")
    try:
        t0 = now()
        subprocess.run(["cp", "-r", str(src), str(ctx / NAME)], check=True)
        t1 = now()
        out = subprocess.run(["docker", "build", "--no-cache", "-q", "-t", OLD_TAG, str(ctx)],
                             env={**os.environ, "DOCKER_BUILDKIT": "0"}, capture_output=True, text=True)
        t2 = now()
        if out.returncode != 0:
            raise SystemExit(f"error: docker build (old way) failed: {out.stderr.strip()[-500:]}")
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    return OLD_TAG, {"cp -r": t1 - t0, "docker build": t2 - t1, "total": t2 - t0}


def tool_way(src: Path, work: Path, engine: Engine, warm: bool) -> tuple:
    cache = work / "cache"
    if not warm:
        shutil.rmtree(cache, ignore_errors=True)
    dockerfile = work / "Dockerfile.tool"
    dockerfile.write_text(f"FROM {BASE}\nWORKDIR /home\n")
    said = []
    logs = work / "logs"
    log = build.BuildLog(logs / f"tool-{'warm' if warm else 'cold'}-{time.strftime('%H%M%S')}.log")
    bd = None
    try:
        t0 = now()
        digest = context.fingerprint(src)
        t1 = now()
        tar = context.tree_tar(src, NAME, cache, said.append, digest=digest, at=f"home/{NAME}")
        t2 = now()
        bd = BuildDir.acquire(work / "build", Path.home())
        context.stage(bd, {"Dockerfile": dockerfile}, {})
        built = build.run(engine, context.tar_stream(context.dir_entries(bd.path)), log,
                          BuildSettings(network="host", nocache=True))
        t3 = now()
        image_id = engine.load(layers.load_archive(engine.inspect(built.image_id), engine.history(built.image_id),
                                                   tar, context.tar_sha256(tar), f"the {NAME} tree"))
        t4 = now()
    finally:
        log.close()
        if bd is not None:
            bd.remove()
    packed = any(s.startswith("pack ") for s in said)
    if packed == warm:
        raise SystemExit(f"error: the {'warm' if warm else 'cold'} run {'packed' if packed else 'did not pack'}: {said}")
    remove_image(built.image_id)
    return image_id, {"fingerprint": t1 - t0, "pack" if not warm else "cache hit": t2 - t1,
                      "build": t3 - t2, "load layer": t4 - t3, "total": t4 - t0, "_bytes": tar.stat().st_size}


# --- report ----------------------------------------------------------------------------------------

def report(results: dict, runs: int) -> None:
    print()
    print(f"{'way':<10}" + "".join(f"{'run ' + str(i + 1):>9}" for i in range(runs)) + f"{'median':>9}")
    med = {}
    for way, rows in results.items():
        totals = [r["total"] for r in rows]
        med[way] = statistics.median(totals)
        print(f"{way:<10}" + "".join(f"{t:>8.1f}s" for t in totals) + f"{med[way]:>8.1f}s")
    print(f"old/cold {med['old'] / med['tool cold']:.2f}x    old/warm {med['old'] / med['tool warm']:.2f}x")
    print()
    print("phases (median seconds):")
    for way, rows in results.items():
        keys = [k for k in rows[0] if not k.startswith("_")]
        print(f"  {way:<10}" + "  ".join(f"{k} {statistics.median(r[k] for r in rows):.1f}" for k in keys))
    for way, rows in results.items():
        if "_bytes" in rows[0]:
            b, s = rows[0]["_bytes"], statistics.median(r["load layer"] for r in rows)
            print(f"  {way}: a {b / 1e9:.2f} GB layer loaded in {s:.1f}s ({b / 1e6 / s:.0f} MB/s)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/musa-docker-bench-context"),
                    help="where the tree, the cache and the contexts go [%(default)s]")
    ap.add_argument("--files", type=int, default=60000, help="regular files in the tree [%(default)s]")
    ap.add_argument("--size-gb", type=float, default=1.2, help="their total size, in 10^9 bytes [%(default)s]")
    ap.add_argument("--runs", type=int, default=3, help="runs of each way [%(default)s]")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work dir (the generated tree) so the next run skips generating it")
    args = ap.parse_args(argv)

    work = args.work.resolve()
    claim(work)
    engine = Engine()
    if engine.image(BASE) is None:
        sys.path.insert(0, str(ROOT / "tests" / "support"))
        from images import busybox_image
        busybox_image()
    results = {"old": [], "tool cold": [], "tool warm": []}
    problems = []
    ok = False
    try:
        src = ensure_tree(work, args.files, int(args.size_gb * 1e9))
        # Reading the whole tree here also puts it in the page cache for every run alike.
        started = now()
        want = tree.digests(src, NAME)
        say(f"host tree: {want['files']} files, {want['dirs']} dirs, {want['links']} symlinks, "
            f"{sum(f.stat().st_size for f in src.rglob('*') if f.is_file() and not f.is_symlink()) / 1e9:.2f} GB "
            f"(digested in {now() - started:.1f}s)")
        for run in range(args.runs):
            for way in results:
                quiesce()
                say(f"run {run + 1}/{args.runs}: {way} (load average {os.getloadavg()[0]:.1f})")
                if way == "old":
                    image, times = old_way(src, work)
                else:
                    image, times = tool_way(src, work, engine, warm=(way == "tool warm"))
                results[way].append(times)
                say("  " + "  ".join(f"{k} {v:.1f}s" for k, v in times.items() if not k.startswith("_")))
                try:
                    problems += check_image(image, want, f"{way} run {run + 1}")
                finally:
                    remove_image(image)
        ok = True
    finally:
        remove_image(OLD_TAG)
        # the build logs stay when something broke: they say what
        for name in ("old-ctx", "build", "cache", "Dockerfile.tool") + (("logs",) if ok else ()):
            path = work / name
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
        if not args.keep:
            shutil.rmtree(work / NAME, ignore_errors=True)
            (work / "tree.params").unlink(missing_ok=True)
            if ok:
                (work / OWNED).unlink(missing_ok=True)
                try:
                    work.rmdir()
                except OSError:
                    pass
        if not ok:
            print(f"build logs kept in {work / 'logs'}", file=sys.stderr)
    report(results, args.runs)
    print()
    if problems:
        print("verify: the images differ from the host tree:")
        for p in problems:
            print(f"  {p}")
        return 1
    print(f"verify: all {args.runs * len(results)} images hold the host tree "
          f"({want['files']} files, {want['dirs']} dirs, {want['links']} symlinks; "
          "contents, modes and symlink targets match)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
