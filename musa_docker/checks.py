"""After a build: does the image hold what was asked for? An image whose contents do not match
its tag is the worst outcome, so a mismatch is an error and the image is not tagged."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Dict, Tuple

from .engine import Engine
from .errors import ImageMismatchError

# Runs with the image's own python: reports its version, which modules import, and the commit
# each source tree is at (read from .git, so the image needs no git for it).
_PROBE = r"""
import importlib, json, os, sys
def commit(path):
    git = os.path.join(path, ".git")
    if os.path.isfile(git):
        git = os.path.join(path, open(git).read().split(":", 1)[1].strip())
    try:
        head = open(os.path.join(git, "HEAD")).read().strip()
    except OSError:
        return None
    if not head.startswith("ref: "):
        return head
    ref = head[5:]
    try:
        return open(os.path.join(git, ref)).read().strip()
    except OSError:
        pass
    try:
        for line in open(os.path.join(git, "packed-refs")):
            if line.strip().endswith(" " + ref):
                return line.split()[0]
    except OSError:
        return None
spec = json.loads(sys.argv[1])
out = {"python": "%d.%d.%d" % sys.version_info[:3], "prefix": sys.prefix, "imports": {}, "commits": {}}
for name in spec["imports"]:
    try:
        importlib.import_module(name)
        out["imports"][name] = None
    except Exception as err:
        out["imports"][name] = "%s: %s" % (type(err).__name__, err)
for name, path in spec["trees"].items():
    out["commits"][name] = commit(path)
out["env"] = {name: os.environ.get(name) for name in spec["env"]}
try:
    from importlib import metadata
except ImportError:
    metadata = None
def installed(name):
    try:
        return metadata.version(name) if metadata else None
    except Exception:
        return None
out["installed"] = {name: installed(name) for name in spec["installed"]}
out["paths"] = {path: os.path.exists(path) for path in spec["paths"]}
out["dists"] = sorted({(d.metadata["Name"] or "") for d in metadata.distributions()}) if metadata else []
print("MUSA_DOCKER_PROBE " + json.dumps(out))
"""


@dataclass(frozen=True)
class Expect:
    python_version: str
    labels: Dict[str, str]
    imports: Tuple[str, ...] = ()
    # installed, not imported: torch_musa may need the MUSA driver to import, which a build
    # machine need not have; `verify` imports it and says why when it cannot
    installed: Tuple[str, ...] = ()
    trees: Dict[str, Tuple[str, str]] = field(default_factory=dict)   # name -> (path in image, commit)
    env: Dict[str, str] = field(default_factory=dict)                 # variables the image must set
    paths: Tuple[str, ...] = ()                                       # paths that must exist
    # distribution -> the exact version its MUSA-index requirement pins (sdk.py)
    versions: Dict[str, str] = field(default_factory=dict)
    # no nvidia-*/cuda-* distribution: a CUDA build slipped in through the public index
    no_cuda: bool = False


def check_image(engine: Engine, image_id: str, expect: Expect) -> Dict:
    """Compare the image with `expect`; return what the probe saw. Raises ImageMismatchError."""
    image = engine.image(image_id)
    problems = [
        f"label {k} is {image.labels.get(k)!r}, expected {v!r}"
        for k, v in expect.labels.items() if image.labels.get(k) != v
    ]
    spec = {"imports": list(expect.imports), "trees": {n: p for n, (p, _) in expect.trees.items()},
            "env": list(expect.env), "paths": list(expect.paths),
            "installed": list(expect.installed) + [n for n in expect.versions if n not in expect.installed]}
    code, output = engine.run(image_id, ["python", "-c", _PROBE, json.dumps(spec)])
    seen = None
    for line in output.splitlines():
        if line.startswith("MUSA_DOCKER_PROBE "):
            seen = json.loads(line.split(" ", 1)[1])
    if code != 0 or seen is None:
        last = output.strip().splitlines()[-1:] or ["no output"]
        problems.append(f"`python` does not run in the image (exit {code}: {last[0]})")
    else:
        if not (seen["python"] + ".").startswith(expect.python_version + "."):
            problems.append(f"python is {seen['python']} ({seen['prefix']}), expected {expect.python_version}")
        for name, err in seen["imports"].items():
            if err:
                problems.append(f"`import {name}` fails: {err}")
        for name, (path, commit) in expect.trees.items():
            got = seen["commits"].get(name)
            if got != commit:
                problems.append(f"{path} is at {got or 'no commit'}, expected {commit}")
        for name, value in expect.env.items():
            if seen["env"].get(name) != value:
                problems.append(f"${name} is {seen['env'].get(name)!r}, expected {value!r}")
        problems.extend(f"{path} is missing" for path, ok in seen["paths"].items() if not ok)
        problems.extend(f"{name} is not installed" for name, version in seen["installed"].items() if not version)
        problems.extend(
            f"{name} is {seen['installed'][name]}, but the MUSA index requirement is {name}=={version}: "
            "something installed after the MUSA wheels replaced it (a dependency from the public index?)"
            for name, version in expect.versions.items()
            if seen["installed"].get(name) and seen["installed"][name] != version
        )
        if expect.no_cuda:
            from .sdk import CUDA_PREFIXES
            # compared as pip names them (PEP 503): nvidia_cublas_cu12 is nvidia-cublas-cu12
            cuda = [d for d in seen.get("dists", []) if re.sub(r"[-_.]+", "-", d.lower()).startswith(CUDA_PREFIXES)]
            if cuda:
                problems.append(f"CUDA distributions are installed ({', '.join(cuda)}): a public CUDA build "
                                "slipped in; pin the MUSA builds with --musa-wheel from --musa-pip-index-url")
    if problems:
        raise ImageMismatchError(
            f"the new image {image_id[7:19]} does not match the request, so it was not tagged: "
            + "; ".join(problems)
        )
    return seen
