#!/usr/bin/env python3
"""Where the tool's time goes, piece by piece, on the tree `run.py --keep` left in the work dir.

Each probe times one piece in isolation (after an `os.sync()`, so earlier writes are not charged
to it) and prints seconds and throughput:

- fingerprint        `context.fingerprint` (one lstat per entry)
- read               every file read once in Python, nothing written: the floor for a Python packer
- pack py /dev/null  `context.tar_stream` over the tree, bytes dropped: the packer's CPU cost
- pack py            `context.tree_tar` into an empty cache (what a cold build pays), then its sync
- pack gnu tar       GNU tar writing the same tree (sorted, numeric owner 0, POSIX) into a file, then its sync
- stream             the staged context (Dockerfile + hard-linked tar) through `tar_stream`, bytes dropped
- build cli          `docker build --no-cache` (classic builder) of that same staged dir: the docker-py
                     stream against the CLI's own
- load               the alternative: the tree as a layer tar (`home/pytorch/...`, sha256 taken while
                     packing), appended to the base image with `POST /images/load`: the engine writes the
                     upload once and unpacks the tree once, instead of unpacking, copying and re-committing it
- ab                 old / build ADD / load, interleaved for --rounds rounds, their tars cached

Usage (from the repo root): python bench/context/run.py --keep; python bench/context/probe.py [--work DIR] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import run  # noqa: E402  (bench/context/run.py)
import tree  # noqa: E402
from musa_docker.pipeline import build, context
from musa_docker import util  # noqa: E402
from musa_docker.pipeline.builddir import BuildDir  # noqa: E402
from musa_docker.pipeline.context import Entry  # noqa: E402
from musa_docker.engine.api import Engine  # noqa: E402
from musa_docker.engine.docker_cli import BuildSettings  # noqa: E402

NAME = run.NAME
MTIME = tree.MTIME


def timed(label: str, fn, nbytes: int = 0):
    os.sync()
    t0 = time.perf_counter()
    value = fn()
    s = time.perf_counter() - t0
    rate = f"  {nbytes / 1e6 / s:7.0f} MB/s" if nbytes else ""
    print(f"  {label:<34}{s:7.1f}s{rate}", flush=True)
    return value, s


def sync_time(label: str):
    t0 = time.perf_counter()
    os.sync()
    print(f"  {label:<34}{time.perf_counter() - t0:7.1f}s", flush=True)


def tree_bytes(src: Path) -> int:
    return sum(e[1].st_size for e in util.walk_tree(src) if e[1].st_mode & 0o170000 == 0o100000)


def read_all(src: Path) -> int:
    n = 0
    for rel, st, _ in util.walk_tree(src):
        if st.st_mode & 0o170000 == 0o100000:
            with open(src / rel, "rb") as f:
                while True:
                    chunk = f.read(context.CHUNK)
                    if not chunk:
                        break
                    n += len(chunk)
    return n


def drain(chunks) -> int:
    return sum(len(c) for c in chunks)


def gnu_tar(src: Path, out: Path) -> None:
    subprocess.run(["tar", "--sort=name", "--format=posix", "--owner=0", "--group=0", "--numeric-owner",
                    "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
                    "-cf", str(out), "-C", str(src.parent), src.name], check=True)


# --- the load alternative ----------------------------------------------------------------------------

def _dir_info(name: str) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, MTIME
    return ti


def pack_layer(src: Path, out: Path) -> str:
    """The tree as an image layer (`home/`, `home/pytorch/...`); returns the tar's sha256 (its diff id)."""
    h = hashlib.sha256()
    entries = [Entry("home", None, _dir_info("home"))]
    with open(out, "wb") as f:
        for chunk in context.tar_stream(_chain(entries, context._tree_entries(src, f"home/{NAME}"))):
            h.update(chunk)
            f.write(chunk)
    return h.hexdigest()


def _chain(*its):
    for it in its:
        yield from it


def _file_entry(arcname: str, path: Path) -> Entry:
    ti = tarfile.TarInfo(arcname)
    ti.size, ti.mode, ti.mtime = path.stat().st_size, 0o644, MTIME
    return Entry(arcname, path, ti)


def load_layer(engine: Engine, base: str, layer: Path, diff_id: str, tmp: Path) -> str:
    """Append `layer` to `base` with one `POST /images/load`; return the new image's id.
    The base's own layers are named in the manifest but not sent: the engine has them already."""
    info = engine.api.inspect_image(base)
    base_layers = info["RootFS"]["Layers"]
    config = {
        "architecture": info["Architecture"], "os": info["Os"], "config": info["Config"],
        "created": "2023-04-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": base_layers + [f"sha256:{diff_id}"]},
        "history": [{"created": "2023-04-01T00:00:00Z", "created_by": f"base {base}", "empty_layer": False}
                    for _ in base_layers]
        + [{"created": "2023-04-01T00:00:00Z", "created_by": f"/home/{NAME} (musa-docker tree layer)"}],
    }
    raw = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = f"{hashlib.sha256(raw).hexdigest()}.json"
    (tmp / config_name).write_bytes(raw)
    manifest = [{"Config": config_name, "RepoTags": None,
                 "Layers": [f"{d.split(':')[1]}/layer.tar" for d in base_layers] + ["tree/layer.tar"]}]
    (tmp / "manifest.json").write_text(json.dumps(manifest))
    entries = [_file_entry(config_name, tmp / config_name), _file_entry("manifest.json", tmp / "manifest.json"),
               Entry("tree", None, _dir_info("tree")), _file_entry("tree/layer.tar", layer)]
    image_id = None
    for event in engine.api.load_image(context.tar_stream(entries)):
        if "error" in event:
            raise SystemExit(f"error: load failed: {event['error']}")
        text = event.get("stream", "")
        if "Loaded image ID:" in text:
            image_id = text.split("Loaded image ID:")[1].strip()
    if not image_id:
        raise SystemExit("error: the engine loaded no image")
    return image_id


# --- main ---------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/musa-docker-bench-context"))
    ap.add_argument("--only", default="", help="comma-separated probe names: read,pack,stream,cli,load,ab (default: all but ab)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the `ab` probe [%(default)s]")
    args = ap.parse_args(argv)
    src = args.work.resolve() / NAME
    if not (src.is_dir() and (args.work / "tree.params").is_file()):
        sys.exit(f"error: no generated tree in {args.work}: run `python bench/context/run.py --keep` first")
    only = set(filter(None, args.only.split(",")))
    want = lambda name: name in only if only else name != "ab"  # noqa: E731  (ab takes minutes: ask for it)
    scratch = Path(tempfile.mkdtemp(prefix="probe-", dir=args.work))
    engine = Engine()
    total = tree_bytes(src)
    print(f"tree {src}: {total / 1e9:.2f} GB")
    try:
        digest, _ = timed("fingerprint", lambda: context.fingerprint(src))
        if want("read"):
            timed("read", lambda: read_all(src), total)
        if want("pack"):
            timed("pack py /dev/null", lambda: drain(context.tar_stream(context._tree_entries(src, NAME))), total)
        tar = None
        if want("pack") or want("stream") or want("cli"):
            tar, _ = timed("pack py (tree_tar, cold cache)",
                           lambda: context.tree_tar(src, NAME, scratch / "cache", lambda s: None, digest=digest), total)
            sync_time("  its sync")
        if want("pack"):
            timed("pack gnu tar", lambda: gnu_tar(src, scratch / "gnu.tar"), total)
            sync_time("  its sync")
            print(f"  sizes: py {tar.stat().st_size / 1e9:.3f} GB, gnu {(scratch / 'gnu.tar').stat().st_size / 1e9:.3f} GB")
            (scratch / "gnu.tar").unlink()
        if want("stream") or want("cli"):
            dockerfile = scratch / "Dockerfile"
            dockerfile.write_text(f"FROM {run.BASE}\nADD {NAME}.tar /home/\n")
            bd = BuildDir.acquire(scratch / "build", Path.home())
            try:
                context.stage(bd, {"Dockerfile": dockerfile, f"{NAME}.tar": tar}, {})
                if want("stream"):
                    timed("stream staged ctx /dev/null",
                          lambda: drain(context.tar_stream(context.dir_entries(bd.path))), tar.stat().st_size)
                if want("cli"):
                    out, _ = timed("build cli (docker build, ADD)", lambda: subprocess.run(
                        ["docker", "build", "--no-cache", "-q", str(bd.path)], env={**os.environ, "DOCKER_BUILDKIT": "0"},
                        capture_output=True, text=True, check=True).stdout.strip())
                    run.remove_image(out)
                    log = build.BuildLog(scratch / "py.log")
                    built, _ = timed("build py (build.run, ADD)", lambda: build.run(
                        engine, context.tar_stream(context.dir_entries(bd.path)), log,
                        BuildSettings(network="host", nocache=True)))
                    log.close()
                    run.remove_image(built.image_id)
            finally:
                bd.remove()
        if want("load"):
            layer = scratch / "layer.tar"
            diff_id, _ = timed("load: pack layer + sha256", lambda: pack_layer(src, layer), total)
            sync_time("  its sync")
            image, _ = timed("load: POST /images/load", lambda: load_layer(engine, run.BASE, layer, diff_id, scratch))
            try:
                problems = run.check_image(image, tree.digests(src, NAME), "load")
                print("  load: image checked: " + ("; ".join(problems) if problems else "holds the host tree"))
            finally:
                run.remove_image(image)
        if want("ab"):
            ab(src, args.work.resolve(), scratch, engine, args.rounds, digest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def ab(src: Path, work: Path, scratch: Path, engine: Engine, rounds: int, digest: str) -> None:
    """The old way, the tool's build with the tar cached (`ADD`) and the load alternative with its
    layer tar cached, interleaved round by round so a noisy neighbour hits all three alike."""
    import statistics
    tar = context.tree_tar(src, NAME, scratch / "cache", lambda s: None, digest=digest)
    layer = scratch / "layer.tar"
    diff_id = pack_layer(src, layer)
    dockerfile = scratch / "Dockerfile"
    dockerfile.write_text(f"FROM {run.BASE}\nADD {NAME}.tar /home/\n")
    times = {"old": [], "build ADD (warm)": [], "load (warm)": []}
    for r in range(rounds):
        os.sync()
        image, t = run.old_way(src, scratch)
        run.remove_image(image)
        times["old"].append(t["total"])
        os.sync()
        bd = BuildDir.acquire(scratch / "build", Path.home())
        log = build.BuildLog(scratch / "ab.log")
        try:
            context.stage(bd, {"Dockerfile": dockerfile, f"{NAME}.tar": tar}, {})
            t0 = time.perf_counter()
            built = build.run(engine, context.tar_stream(context.dir_entries(bd.path)), log,
                              BuildSettings(network="host", nocache=True))
            times["build ADD (warm)"].append(time.perf_counter() - t0)
        finally:
            log.close()
            bd.remove()
        run.remove_image(built.image_id)
        os.sync()
        t0 = time.perf_counter()
        image = load_layer(engine, run.BASE, layer, diff_id, scratch)
        times["load (warm)"].append(time.perf_counter() - t0)
        run.remove_image(image)
        print(f"  round {r + 1}: " + "  ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print("  median: " + "  ".join(f"{k} {v:.1f}s" for k, v in med.items()))
    print(f"  old/build {med['old'] / med['build ADD (warm)']:.2f}x  old/load {med['old'] / med['load (warm)']:.2f}x  "
          f"build/load {med['build ADD (warm)'] / med['load (warm)']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
