#!/usr/bin/env python3
"""How fast a dev image rebuilds after one source file of torch_musa changes: the classic builder
(the torch_musa step reruns and recompiles everything) against BuildKit with the compile cache
(the step reruns; ccache, kept in a cache mount, serves every unchanged unit).

A base image is built from the debootstrap debian:12 (tests/images.py) with `build-base`, or
reused (`--base REF`). The dev image's torch_musa is a generated stand-in (standin.py): a git
repo whose build.sh configures with CMake and builds `--files` C++ units with Ninja on every
core. Flow: one warm-up `build-dev` per builder, then for each run a new commit changes one unit
and `build-dev` runs with `--builder classic` and with `--builder buildkit --docker-cli
/usr/bin/docker`; each is timed from the command's start to its exit (prepare, build, check, tag).
Printed: each run's seconds, medians, classic/buildkit, the compile cache's hits and misses (the
image's label musa_docker.compile_cache, and the log's `compile cache:` lines), and build.sh's own
phases (configure, compile and link, pip install).

Usage (from the repo root): python bench/rebuild/run.py [--work DIR] [--files N] [--runs R] [--base REF] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import benchlib  # noqa: E402  (bench/benchlib.py)
from benchlib import say  # noqa: E402
import standin  # noqa: E402  (bench/rebuild/standin.py)
import vendor  # noqa: E402  (tests/support/vendor.py)
from images import debian12_image, local_pypi  # noqa: E402
from musa_docker.pipeline.build import compile_cache_counts  # noqa: E402

OWNED = ".musa-docker-bench-rebuild"       # marks a work dir as this benchmark's own
SEED = 20240611
PYTHON = "3.11"
BUILDERS = {"classic": ("--builder", "classic"),
            "buildkit": ("--builder", "buildkit", "--docker-cli", "/usr/bin/docker")}
DEV = "musa-docker-bench/dev"
BASE = "musa-docker-bench/base"
LABEL = "musa_docker.compile_cache"
# what the tool and docker read from a shell: none of it reaches the benchmark's builds
LEAKY = ("MUSA_DOCKER_", "INVOKE_", "DOCKER_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
PHASES = re.compile(r"build\.sh: configure ([\d.]+)s, compile and link ([\d.]+)s, pip install ([\d.]+)s")


def claim(work: Path) -> None:
    benchlib.claim(work, OWNED)


def user_env(work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(LEAKY)}
    (work / "home").mkdir(exist_ok=True)
    env.update(HOME=str(work / "home"), MUSA_DOCKER_CACHE=str(work / "cache"),
               PYTHONPATH=str(ROOT), GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="protocol.file.allow",
               GIT_CONFIG_VALUE_0="always")
    return env


def cli(env: dict, log: Path, *args: str) -> tuple:
    """Run `musa-docker ARGS`; (seconds, output). Output goes to `log` too; a failure ends the bench."""
    os.sync()        # the previous build's writeback is not charged to this one
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "musa_docker", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    out = done.stdout + done.stderr
    with log.open("a") as f:
        f.write(f"$ musa-docker {' '.join(args)}\n{out}\n(exit {done.returncode}, {seconds:.1f}s)\n\n")
    if done.returncode != 0:
        raise SystemExit(f"error: musa-docker {args[0]} failed (exit {done.returncode}); see {log}:\n"
                         f"{out[-3000:]}")
    return seconds, out


def build_bench_base(env: dict, log: Path, work: Path, tag: str, upstream: Path) -> tuple:
    """The base every rebuild benchmark builds its dev images on: debian:12, a venv of PYTHON and the
    smallest PyTorch tree, built with the classic builder as BASE:tag; (its ref, seconds)."""
    base = f"{BASE}:{tag}"
    say(f"build-base {base} from debian:12 (log: {log})")
    with local_pypi(work / "index-base") as index:
        seconds, _ = cli(env, log, "build-base", "-s", "debian:12", "--python-env", "venv", "-v", PYTHON,
                         "-i", BASE, "-t", tag, "--pytorch-root", str(work / "src"),
                         "--pytorch-repo", pytorch_repo(upstream / "pytorch").as_uri(),
                         "--pip-index-url", index, *BUILDERS["classic"])
    return base, seconds


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True).stdout.strip()


def pin(base: str, tag: str) -> str:
    """A child of `base` that only this run uses (a label of its own, so an id of its own): the dev
    builds start from it, and while it stands nothing else on the engine can remove `base` (a
    shared engine may hold an image of the same id, which its owner may remove by id)."""
    ref = f"{BASE}:{tag}-pinned"
    done = subprocess.run(["docker", "build", "-q", "-t", ref, "-"], env={**os.environ, "DOCKER_BUILDKIT": "0"},
                          input=f"FROM {base}\nLABEL musa-docker-bench.run={tag}\n", capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: could not build {ref} on {base}: {done.stderr.strip()[-500:]}")
    return ref


def pytorch_repo(path: Path) -> Path:
    """The smallest PyTorch tree build-base takes: a repo with a submodule, as tests/conftest.py's."""
    fmt = path.parent / "fmt"
    for repo, files in ((fmt, {"include/fmt/core.h": "// fmt core\n"}),
                        (path, {"README.md": "pytorch stand-in\n", "torch/__init__.py": "\n", "setup.py": "\n"})):
        repo.mkdir(parents=True)
        standin.git(repo, "init", "-q", "-b", "main")
        for rel, text in files.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
        standin.git(repo, "add", "-A")
        standin.git(repo, "commit", "-q", "-m", "initial")
    standin.git(path, "-c", "protocol.file.allow=always", "submodule", "add", "-q", fmt.as_uri(), "third_party/fmt")
    standin.git(path, "commit", "-q", "-m", "add fmt")
    standin.git(path, "tag", "v2.0.0")
    return path


def cache_counts(out: str, ref: str) -> dict:
    """The compile cache's hits and misses of a build: from the image's label and from the log."""
    label = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", ref) or "{}") or {}
    m = re.fullmatch(r"hits=(\d+)(?: remote_hits=\d+)? misses=(\d+)", label.get(LABEL, ""))
    hits, _, misses = compile_cache_counts(out)   # the build's own `compile cache:` lines, as the tool reads them
    return {"label": (int(m.group(1)), int(m.group(2))) if m else None,
            "log": (hits, misses) if hits + misses else None}


def phases(out: str) -> str:
    m = PHASES.search(out)
    return f"configure {m.group(1)}s, compile+link {m.group(2)}s, pip {m.group(3)}s" if m else "no build.sh phases"


def rate(counts) -> str:
    if not counts:
        return "-"
    hits, misses = counts
    return f"hits={hits} misses={misses} ({100 * hits / max(1, hits + misses):.1f}%)"


def report(results: dict, runs: int) -> None:
    print()
    print(f"{'builder':<10}{'warm-up':>9}" + "".join(f"{'run ' + str(i + 1):>9}" for i in range(runs)) + f"{'median':>9}")
    med = {}
    for name, rows in results.items():
        med[name] = statistics.median(r["seconds"] for r in rows[1:])
        print(f"{name:<10}" + "".join(f"{r['seconds']:>8.1f}s" for r in rows) + f"{med[name]:>8.1f}s")
    print(f"classic/buildkit {med['classic'] / med['buildkit']:.2f}x (goal: at least 5x)")
    rows = results["buildkit"][1:]
    for source in ("label", "log"):
        got = [r["cache"][source] for r in rows if r["cache"][source]]
        hits, misses = sum(h for h, _ in got), sum(n for _, n in got)
        print(f"compile cache over the runs, from the {source}: {rate((hits, misses))} (goal: at least 95%)")
    print()
    print("build.sh phases:")
    for name, rows in results.items():
        for i, r in enumerate(rows):
            print(f"  {name:<9}{'warm-up' if i == 0 else 'run ' + str(i):<9}{r['phases']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/musa-docker-bench-rebuild"),
                    help="where the repos, the index, the tool's cache and the logs go [%(default)s]")
    ap.add_argument("--files", type=int, default=200, help="C++ units of the torch_musa stand-in [%(default)s]")
    ap.add_argument("--runs", type=int, default=3, help="changed-source rebuilds per builder [%(default)s]")
    ap.add_argument("--base", help="reuse this base image (a build-base of debian:12, Python 3.11) instead of building one")
    ap.add_argument("--keep", action="store_true", help="keep the work dir and the last images")
    args = ap.parse_args(argv)
    if args.files < 1 or args.runs < 1:
        sys.exit("error: --files and --runs must be at least 1")

    work = args.work.resolve()
    claim(work)
    env = user_env(work)
    log = work / "bench.log"
    tag = uuid.uuid4().hex[:8]
    made = []                               # images this run built, removed at the end
    # the cache mount outlives the benchmark: a salt of this invocation keeps each run's changed
    # unit a real miss, even where an earlier invocation compiled the same change
    salt = secrets.randbelow(1 << 31) + 1
    results = {name: [] for name in BUILDERS}
    ok = False
    try:
        debian12_image()
        upstream = work / "upstream"
        shutil.rmtree(upstream, ignore_errors=True)
        shutil.rmtree(work / "src", ignore_errors=True)
        base = args.base
        if not base:
            base, seconds = build_bench_base(env, log, work, tag, upstream)
            made.append(base)
            say(f"  {seconds:.1f}s")
        base = pin(base, tag)
        made.append(base)
        vendor_dir = work / "vendor"
        archives = (vendor.musa_toolkits_archive(vendor_dir), vendor.mudnn_archive(vendor_dir),
                    vendor.mccl_archive(vendor_dir))
        repo = standin.create(upstream / "torch_musa", args.files, SEED)
        vision = vendor.vision_repo(upstream)
        say(f"stand-in: {repo} ({args.files} units, seed {SEED}, change salt {salt})")
        common = ["build-dev", "-b", base, "-i", DEV, "-m", str(archives[0]), "-n", str(archives[1]),
                  "--mccl-url", str(archives[2]), "--torch-musa-repo", repo.as_uri(),
                  "--vision-repo", vision.as_uri(), "--vision-root", str(work / "src")]
        with local_pypi(work / "index", vendor.dev_index_wheels(PYTHON)) as index:
            for run in range(args.runs + 1):
                if run:
                    changed = standin.change(repo, args.files, SEED, run, salt + run)
                    say(f"run {run}/{args.runs}: {changed} changed")
                for name, flags in BUILDERS.items():
                    ref = f"{DEV}:{tag}-{name}-{run}"
                    say(f"{'warm-up' if not run else 'run ' + str(run)}: build-dev {name} "
                        f"(load average {os.getloadavg()[0]:.1f})")
                    seconds, out = cli(env, log, *common, "-t", ref.split(":")[1], "--pip-index-url", index, *flags)
                    made.append(ref)
                    row = {"seconds": seconds, "cache": cache_counts(out, ref), "phases": phases(out)}
                    results[name].append(row)
                    say(f"  {seconds:.1f}s; {row['phases']}; compile cache label {rate(row['cache']['label'])}, "
                        f"log {rate(row['cache']['log'])}")
                    # the previous image goes once this one stands: the classic builder's layer
                    # cache is the images' layers
                    if run and not args.keep:
                        old = f"{DEV}:{tag}-{name}-{run - 1}"
                        docker("rmi", old)
                        made.remove(old)
        ok = True
    finally:
        if not args.keep:
            for ref in reversed(made):
                docker("rmi", ref)
            if ok:
                for path in work.iterdir():
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink()
                try:
                    work.rmdir()
                except OSError:
                    pass
        if not ok:
            print(f"the log is kept in {log}", file=sys.stderr)
    if ok:
        report(results, args.runs)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
