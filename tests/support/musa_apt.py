"""A local apt repository standing in for Moore Threads' MUSA 5.x repository: real .deb files made
with dpkg-deb, indexed with dpkg-scanpackages, laid out as `dists/SUITE/main/binary-amd64/`.

Suites:
  good       the 5.2 line, and an older 5.1 build of the toolkit beside it (the source mixes
             builds; the 5.2 one is chosen); its index is only Packages.gz (no plain Packages)
  mixed      the 5.2 line, but the only builds of mtcc-5-2 (a dev image's) and musa-musart-5-2 (every
             image's) are 5.1 ones
  notoolkit  the 5.2 line without musa-toolkit-5-2 (which only a dev image installs)
  noruntime  the 5.2 line without musa-musart-5-2 (which every image installs)
Files land under /usr/local/musa-5.2; the packages do not make the /usr/local/musa link.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
from pathlib import Path

import vendor

LINE = "5.2"
PREFIX = f"/usr/local/musa-{LINE}"
ARCH = "amd64"

MCC = f"#!/bin/sh\necho 'mcc (MUSA {LINE}.0 stand-in)'\n"


def _packages(version: str = f"{LINE}.0-1") -> dict:
    """name -> (version, {path: (bytes, mode)})"""
    lib = vendor._compile_library("musart", vendor._library_source("musart", version))
    return {
        "musa-toolkit-5-2": (version, {
            f"{PREFIX}/bin/musa_toolkits_version": (f"#!/bin/sh\necho 'musa_toolkits {version}'\n".encode(), 0o755),
            f"{PREFIX}/include/musa.h": (b"#pragma once\n", 0o644)}),
        "mtcc-5-2": (version, {f"{PREFIX}/bin/mcc": (MCC.encode(), 0o755)}),
        "musa-musart-5-2": (version, {f"{PREFIX}/lib/libmusart.so": (lib, 0o755)}),
        "libmudnn3-musa-5-2": ("3.0.0+musa5.2.0", {f"{PREFIX}/lib/libmudnn.so.3": (b"", 0o644)}),
        "libmudnn3-dev-musa-5-2": ("3.0.0+musa5.2.0", {f"{PREFIX}/include/mudnn.h": (b"#pragma once\n", 0o644)}),
        "mccl-s5000": ("2.4.0-1", {f"{PREFIX}/lib/libmccl.so.2": (b"", 0o644)}),
        "mccl-s4000": ("2.4.0-1", {f"{PREFIX}/lib/s4000/libmccl.so.2": (b"", 0o644)}),
        "musa-mualg-5-2": (version, {f"{PREFIX}/include/mualg/mualg.h": (b"#pragma once\n", 0o644)}),
        "musa-muthrust-5-2": (version, {f"{PREFIX}/include/thrust/version.h": (b"#pragma once\n", 0o644)}),
    }


def _deb(pool: Path, name: str, version: str, files: dict) -> Path:
    work = pool / f".build-{name}-{version}"
    (work / "DEBIAN").mkdir(parents=True)
    (work / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: {ARCH}\nMaintainer: tests <tests@example.com>\n"
        f"Description: MUSA {name} stand-in\n"
    )
    for path, (data, mode) in files.items():
        target = work / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)
    out = pool / f"{name}_{version.replace(':', '%3a')}_{ARCH}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(work), str(out)],
                   check=True, capture_output=True)
    shutil.rmtree(work)
    return out


def _suite(root: Path, suite: str, packages: dict, *, plain: bool = True) -> None:
    pool = root / "pool" / suite
    pool.mkdir(parents=True)
    for name, (version, files) in packages.items():
        _deb(pool, name, version, files)
    index = subprocess.run(["dpkg-scanpackages", "--multiversion", f"pool/{suite}", "/dev/null"], cwd=root,
                           check=True, capture_output=True).stdout
    binary = root / "dists" / suite / "main" / f"binary-{ARCH}"
    binary.mkdir(parents=True)
    if plain:
        (binary / "Packages").write_bytes(index)
    (binary / "Packages.gz").write_bytes(gzip.compress(index, mtime=0))
    _release(root, suite)


def _release(root: Path, suite: str) -> None:
    """dists/SUITE/Release with the index files' hashes: apt fetches only the indexes it lists,
    even from a [trusted=yes] source, and looks each up by its uncompressed name (listed, as real
    repositories do, even where only Packages.gz is served)."""
    dists = root / "dists" / suite
    files = {str(p.relative_to(dists)): p.read_bytes() for p in sorted(dists.rglob("Packages*")) if p.is_file()}
    for name, data in list(files.items()):
        if name.endswith(".gz"):
            files.setdefault(name[:-3], gzip.decompress(data))
    entries = {algo: "".join(f" {hashlib.new(algo, data).hexdigest()} {len(data)} {name}\n"
                             for name, data in sorted(files.items())) for algo in ("md5", "sha256")}
    (dists / "Release").write_text(
        f"Suite: {suite}\nCodename: {suite}\nDate: Tue, 14 Nov 2023 00:00:00 UTC\nComponents: main\n"
        f"Architectures: {ARCH}\nMD5Sum:\n{entries['md5']}SHA256:\n{entries['sha256']}"
    )


def write_repo(root: Path) -> Path:
    """The three suites under `root` (served as the repository's URL)."""
    root.mkdir(parents=True, exist_ok=True)
    good = _packages()
    older = _packages("5.1.0-1")["musa-toolkit-5-2"]
    _suite(root, "good", {**good}, plain=False)
    # the older toolkit build beside the 5.2 one, as the real source mixes them
    _deb(root / "pool" / "good", "musa-toolkit-5-2", older[0], older[1])
    index = subprocess.run(["dpkg-scanpackages", "--multiversion", "pool/good", "/dev/null"], cwd=root,
                           check=True, capture_output=True).stdout
    (root / "dists/good/main" / f"binary-{ARCH}" / "Packages.gz").write_bytes(gzip.compress(index, mtime=0))
    _release(root, "good")
    mixed = _packages()
    mixed["mtcc-5-2"] = ("5.1.0-1", mixed["mtcc-5-2"][1])
    mixed["musa-musart-5-2"] = ("5.1.0-1", mixed["musa-musart-5-2"][1])
    _suite(root, "mixed", mixed)
    lacking = _packages()
    del lacking["musa-toolkit-5-2"]
    _suite(root, "notoolkit", lacking)
    no_runtime = _packages()
    del no_runtime["musa-musart-5-2"]
    _suite(root, "noruntime", no_runtime)
    return root
