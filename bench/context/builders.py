#!/usr/bin/env python3
"""How long a build of the `bench/context` tree takes to get its context to the engine, under each
builder: classic (`DOCKER_BUILDKIT=0 docker build`, what docker-py does too: the whole context
as one tar, every build) against BuildKit (`DOCKER_BUILDKIT=1 /usr/bin/docker build`: the client
syncs the context dir with the engine and sends only the files that changed since the last build).

The Dockerfile is `FROM busybox` + `COPY pytorch /home/pytorch`, built with the layer cache (as a
developer rebuilds): after one warm-up build per builder, each run times a build with nothing
changed (the COPY is a cache hit: what is left is sending the context) and a build after one text
file of the tree changed (the COPY reruns too). Printed: each run's seconds, the medians, and what
BuildKit reports it transferred.

Usage (from the repo root):
    python bench/context/builders.py [--work DIR] [--files N] [--size-gb G] [--runs R] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as context_run  # noqa: E402  (bench/context/run.py: the work dir and the tree)
import tree  # noqa: E402

CLIENT = "/usr/bin/docker"         # Debian's 20.10 client: BuildKit built in
BUILDERS = {"classic": "0", "buildkit": "1"}
TRANSFERRED = re.compile(r"transferring context: ([\d.]+[kMG]?B)")


def build(ctx: Path, builder: str, ref: str, iid: Path) -> tuple:
    """Build `ctx` with `builder`; (seconds, image id, what BuildKit said it transferred)."""
    os.sync()
    started = time.perf_counter()
    done = subprocess.run([CLIENT, "build", "--progress=plain", "--iidfile", str(iid), "-t", ref, str(ctx)]
                          if builder == "buildkit" else
                          [CLIENT, "build", "--iidfile", str(iid), "-t", ref, str(ctx)],
                          env={**os.environ, "DOCKER_BUILDKIT": BUILDERS[builder]}, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"error: the {builder} build failed: {(done.stdout + done.stderr)[-1500:]}")
    sent = TRANSFERRED.findall(done.stdout + done.stderr)
    return seconds, iid.read_text().strip(), sent[-1] if sent else ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/musa-docker-bench-context-builders"),
                    help="where the tree goes [%(default)s]")
    ap.add_argument("--files", type=int, default=20000, help="regular files in the tree [%(default)s]")
    ap.add_argument("--size-gb", type=float, default=0.4, help="their total size, in 10^9 bytes [%(default)s]")
    ap.add_argument("--runs", type=int, default=3, help="no-change and one-change builds per builder [%(default)s]")
    ap.add_argument("--keep", action="store_true", help="keep the generated tree for the next run")
    args = ap.parse_args(argv)

    work = args.work.resolve()
    context_run.claim(work)
    if not shutil.which(CLIENT):
        sys.exit(f"error: {CLIENT} (a docker client with BuildKit built in) is missing")
    src = context_run.ensure_tree(work, args.files, int(args.size_gb * 1e9))
    (work / "Dockerfile").write_text(f"FROM {context_run.BASE}\nCOPY {context_run.NAME} /home/{context_run.NAME}\n")
    subprocess.run(["python3", "-c", "import sys; sys.path.insert(0, 'tests/support'); import images; images.busybox_image()"],
                   cwd=HERE.parents[1], check=True)
    texts = sorted(p for p in src.rglob("*.py") if p.is_file() and not p.is_symlink()) or \
        sorted(p for p in src.rglob("*") if p.is_file() and not p.is_symlink() and ".git" not in p.parts)
    originals = {}
    ids = []
    tag = uuid.uuid4().hex[:8]
    results = {name: {"warm-up": [], "no change": [], "one file changed": []} for name in BUILDERS}
    iid = work / "iid"
    try:
        for name in BUILDERS:
            ref = f"bench-context-{name}:{tag}"
            seconds, image, sent = build(work, name, ref, iid)
            ids.append(image)
            results[name]["warm-up"].append((seconds, sent))
            context_run.say(f"{name} warm-up: {seconds:.1f}s {sent}")
            for run in range(1, args.runs + 1):
                for case in ("no change", "one file changed"):
                    if case == "one file changed":
                        path = texts[random.Random(f"{name}:{run}").randrange(len(texts))]
                        originals.setdefault(path, path.read_bytes())
                        path.write_bytes(originals[path] + f"\n# changed: {name} run {run}\n".encode())
                    seconds, image, sent = build(work, name, ref, iid)
                    ids.append(image)
                    results[name][case].append((seconds, sent))
                    context_run.say(f"{name} run {run} {case}: {seconds:.1f}s {sent}")
    finally:
        for path, data in originals.items():      # the tree as generated, for --keep
            path.write_bytes(data)
            os.utime(path, (tree.MTIME, tree.MTIME))
        for image in reversed(dict.fromkeys(ids)):
            subprocess.run(["docker", "rmi", image], capture_output=True)   # by id: ours alone
        for path in (work / "Dockerfile", iid):
            path.unlink(missing_ok=True)
        if not args.keep:
            shutil.rmtree(src, ignore_errors=True)
            (work / "tree.params").unlink(missing_ok=True)
            (work / context_run.OWNED).unlink(missing_ok=True)
            try:
                work.rmdir()
            except OSError:
                pass
    print()
    print(f"{'builder':<10}{'case':<18}" + "".join(f"{'run ' + str(i + 1):>9}" for i in range(args.runs)) + f"{'median':>9}")
    med = {}
    for name, cases in results.items():
        for case in ("no change", "one file changed"):
            rows = cases[case]
            med[name, case] = statistics.median(s for s, _ in rows)
            print(f"{name:<10}{case:<18}" + "".join(f"{s:>8.1f}s" for s, _ in rows) + f"{med[name, case]:>8.1f}s"
                  + (f"   sent {', '.join(x for _, x in rows)}" if rows[0][1] else ""))
    for case in ("no change", "one file changed"):
        print(f"{case}: classic/buildkit {med['classic', case] / med['buildkit', case]:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
