"""What an image's RUN steps install from the public pip index (--pip-index-url), resolved for a lock.

The image's pip runs inside the build, for the image's Python and platform; the host's pip resolves
the same requirements for that Python and platform (`--python-version`, `--platform`,
`--only-binary=:all:`, `--dry-run --report`), so the lock gets exact files with their sha256
without building. The requirements are the scripts' own:

- the Python env (common/install_python_env.sh, base and release): its NUMPY_REQUIREMENT, read from
  the script, and `cmake>=3.18` where the OS image's cmake is older (ubuntu:20.04);
- the dev image's build tools and torch_musa's requirements.txt (dev_requirements), for the Python and
  OS of its base when the same build-all file makes that base;
- the release's wheels (torch, torch_musa, --wheel) and the MUSA index's wheels: their dependencies,
  with the wheel files themselves offered as local files (`--find-links`), so only what the index must
  serve is recorded.

Raises LockError when pip cannot resolve them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

from ..errors import LockError
from ..resources import COMMON
from ..values.locations import redact, strip_credentials

# the C library each OS image has: manylinux wheels up to it run there
GLIBC = {"ubuntu:20.04": "2_31", "ubuntu:22.04": "2_35", "debian:12": "2_36"}
OLD_CMAKE = ("ubuntu:20.04",)                        # cmake older than 3.18: install_python_env.sh adds one


def env_requirements(system: str) -> List[str]:
    """What install_python_env.sh installs into the env on `system`."""
    text = (COMMON / "install_python_env.sh").read_text()
    numpy = re.search(r'^NUMPY_REQUIREMENT="([^"]+)"', text, re.M)
    cmake = re.search(r'^CMAKE_MIN="([^"]+)"', text, re.M)
    wanted = [numpy.group(1)] if numpy else []
    if system in OLD_CMAKE and cmake:
        wanted.append(f"cmake>={cmake.group(1)}")
    return wanted


def dev_requirements(plan) -> List[str]:
    """What a dev image's own steps ask of the public index: the `wheel` install_build_tools.sh adds to a
    base env whose setuptools (below 70.1) lacks bdist_wheel, and torch_musa's requirements.txt, read
    from its checkout at the locked commit."""
    wanted = ["wheel<0.46"]
    for step in plan.repos:
        if step.name == "torch_musa" and (Path(step.path) / "requirements.txt").is_file():
            for line in (Path(step.path) / "requirements.txt").read_text().splitlines():
                line = line.split("#", 1)[0].strip()
                if line and not line.startswith("-"):
                    wanted.append(line)
    return wanted


def platforms(system: str, machine: str) -> List[str]:
    """The platform tags pip in an image of `system` on `machine` takes, newest first: every manylinux
    glibc version up to the image's (pip's --platform takes each tag as it is, it does not expand
    one), their legacy aliases, and plain linux."""
    newest = int(GLIBC.get(system, "2_17").split("_")[1])
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(newest, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += [f"{name}_{machine}" for minor, name in legacy.items() if minor <= newest]
    return tags + [f"linux_{machine}"]


def resolve(index: str, requirements: Sequence[str], *, python: str, platform_tags: Sequence[str],
            local: Iterable[Path] = (), verify: bool = True) -> List[Dict[str, object]]:
    """The distributions pip takes from `index` for `requirements` (names or local wheel files), for
    CPython `python` on `platform_tags`: each {name, version, filename, url, sha256}; local files left
    out. Raises LockError."""
    local = sorted({str(Path(p).parent) for p in local})
    with tempfile.TemporaryDirectory(prefix="musa-docker-piplock-") as tmp:
        report = Path(tmp) / "report.json"
        argv = [sys.executable, "-m", "pip", "install", "--isolated", "--disable-pip-version-check", "-q",
                "--dry-run", "--ignore-installed", "--report", str(report), "--only-binary=:all:",
                "--python-version", python, "--implementation", "cp", "--target", str(Path(tmp) / "target"),
                "--index-url", index]
        argv += [a for tag in platform_tags for a in ("--platform", tag)]
        argv += [a for d in local for a in ("--find-links", d)]
        if not verify:
            argv += ["--trusted-host", re.sub(r"^[a-z]+://([^/@]*@)?([^/:]+).*$", r"\2", index)]
        argv += ["--", *requirements]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        done = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0 or not report.is_file():
            last = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()][-2:]
            raise LockError(f"pip cannot resolve {' '.join(Path(r).name for r in requirements)} from "
                            f"{redact(index)} for python {python} ({', '.join(platform_tags)}): "
                            f"{redact(' | '.join(last))}")
        items = json.loads(report.read_text()).get("install", [])
    out = []
    for item in items:
        info = item.get("download_info") or {}
        url = str(info.get("url", ""))
        if url.startswith("file:"):
            continue
        archive = info.get("archive_info") or {}
        sha = (archive.get("hashes") or {}).get("sha256") or str(archive.get("hash", "")).partition("sha256=")[2]
        meta = item.get("metadata") or {}
        if not sha:
            raise LockError(f"pip {meta.get('name')} {meta.get('version')}: {redact(index)} gives no sha256 for "
                            f"{redact(url)}: it cannot be locked")
        out.append({"name": meta.get("name", ""), "version": meta.get("version", ""),
                    "filename": url.split("#")[0].split("?")[0].rsplit("/", 1)[-1],
                    "url": strip_credentials(url.split("#")[0]), "sha256": sha})
    return sorted(out, key=lambda d: str(d["name"]).lower())
