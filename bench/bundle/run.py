"""Bundles: how much a bundle saves by storing shared inputs once, how long bundling and importing
take, and how small a differential bundle is after a one-pin change.

    python bench/bundle/run.py [--size-mb 64] [--work DIR]

A build-all file of two build-base entries (debian:12, conda) shares one PyTorch stand-in repo (a
submodule inside), one conda installer stand-in of --size-mb and the debian:12 image; it is locked
(`musa-docker lock -c`), bundled into a tar, verified and imported into a fresh cache. One pin then
changes (the second entry's conda installer) and a differential bundle (`--since`) is written.

Printed: the sum of every entry's inputs against the bundle's size (the dedup ratio: > 1 means
shared inputs are stored once), the seconds of lock, bundle, verify and import, and the size of
the differential bundle against the full one. Needs the engine with debian:12 (the tests' fixture
image: `python -c "import sys; sys.path.insert(0, 'tests/support'); import images; images.debian12_image()"`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import claim, say  # noqa: E402

GIT_ENV = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "protocol.file.allow", "GIT_CONFIG_VALUE_0": "always",
           "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.invalid", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@example.invalid"}


def git(*args, cwd=None):
    subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True, capture_output=True)


def repo(path: Path, files: dict) -> None:
    path.mkdir(parents=True)
    git("init", "-q", "-b", "main", str(path))
    for rel, data in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_bytes(data)
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "initial", cwd=path)


def noise(size: int, seed: int) -> bytes:
    import hashlib
    out, block = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:size])


def md(env, *args) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "musa_docker", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True)
    if done.returncode != 0:
        sys.exit(f"musa-docker {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.perf_counter() - started


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=64)
    parser.add_argument("--work", type=Path, default=Path("/tmp/musa-docker-bench-bundle"))
    a = parser.parse_args()
    claim(a.work, ".bench-bundle")
    for child in a.work.iterdir():
        if child.name != ".bench-bundle":
            subprocess.run(["rm", "-rf", str(child)], check=True)
    (a.work / "home").mkdir()
    env = {**os.environ, **GIT_ENV, "HOME": str(a.work / "home"), "MUSA_DOCKER_CACHE": str(a.work / "cache"),
           "PYTHONPATH": str(ROOT)}
    repo(a.work / "up" / "fmt", {"core.h": noise(1 << 20, 1)})
    repo(a.work / "up" / "pytorch", {"setup.py": b"\n", "big.bin": noise(8 << 20, 2)})
    git("submodule", "add", "-q", (a.work / "up" / "fmt").as_uri(), "third_party/fmt", cwd=a.work / "up" / "pytorch")
    git("commit", "-q", "-m", "fmt", cwd=a.work / "up" / "pytorch")
    git("tag", "v2.0.0", cwd=a.work / "up" / "pytorch")
    conda = a.work / "conda-1.sh"
    conda.write_bytes(noise(a.size_mb << 20, 3))
    matrix = a.work / "matrix.yaml"

    def write_matrix(second_conda: Path) -> None:
        entries = ""
        for i, installer in enumerate((conda, second_conda)):
            entries += (f"  - task: build-base\n    image: bench/base{i}\n    sys: debian:12\n    python_version: \"3.11\"\n"
                        f"    conda_url: {installer}\n    pytorch_repo: {(a.work / 'up' / 'pytorch').as_uri()}\n"
                        f"    pytorch_root: {a.work / f'src{i}'}\n")
        matrix.write_text("images:\n" + entries)

    write_matrix(conda)
    lock = a.work / "matrix.lock.json"
    t_lock = md(env, "lock", "-c", str(matrix), "-o", str(lock))
    full = a.work / "full.tar"
    t_bundle = md(env, "bundle", "--lock", str(lock), "-o", str(full))
    t_verify = md(env, "bundle", "verify", str(full))
    fresh = {**env, "MUSA_DOCKER_CACHE": str(a.work / "cache-imported")}
    t_import = md(fresh, "bundle", "import", str(full))
    manifest = json.loads(subprocess.run(["tar", "-xOf", str(full), "manifest.json"], capture_output=True,
                                         check=True).stdout)
    blob = {rel.rsplit("/", 1)[1]: f["size"] for rel, f in manifest["files"].items() if rel.startswith("blobs/")}
    inputs = manifest["inputs"]
    per_entry = (blob[inputs["artifacts"][0]["blob"].rsplit("/", 1)[1]]
                 + sum(blob[i["bundle"].rsplit("/", 1)[1]] for r in inputs["repos"] for i in [r, *r["submodules"]])
                 + blob[inputs["images"][0]["blob"].rsplit("/", 1)[1]])
    summed = 2 * per_entry
    # one pin changes: the second entry's conda installer
    conda2 = a.work / "conda-2.sh"
    conda2.write_bytes(noise(a.size_mb << 20, 4))
    write_matrix(conda2)
    md(env, "lock", "-c", str(matrix), "-o", str(lock), "--update", "conda_installer")
    diff = a.work / "diff.tar"
    t_diff = md(env, "bundle", "--lock", str(lock), "-o", str(diff), "--since", str(full))
    print("bundle: two build-base entries sharing a repo (+ submodule), a conda installer and debian:12")
    say(f"inputs of every entry, summed   {summed / 1e6:10.1f} MB")
    say(f"bundle (tar)                    {size(full) / 1e6:10.1f} MB   dedup ratio {summed / size(full):.2f}x")
    say(f"lock {t_lock:.1f}s   bundle {t_bundle:.1f}s   verify {t_verify:.1f}s   import {t_import:.1f}s")
    say(f"differential after one pin     {size(diff) / 1e6:10.1f} MB   {size(diff) / size(full):.1%} of the full "
        f"bundle ({t_diff:.1f}s)")


if __name__ == "__main__":
    main()
