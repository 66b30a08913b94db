"""After a build: does the image hold what was asked for? An image whose contents do not match
its tag is the worst outcome, so a mismatch is an error and the image is not tagged."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, Mapping, Tuple

from ..musa import kinds
from . import probe
from ..engine.api import Engine
from ..errors import ImageMismatchError
from ..util import short_id


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

    @classmethod
    def of(cls, kind_name: str, python_version: str, labels: Mapping[str, str],
           commits: Mapping[str, str], **extra) -> "Expect":
        """What an image of that kind (kinds.KINDS) must hold; `commits`: repo name -> the commit
        its tree is at."""
        kind = kinds.get(kind_name)
        return cls(python_version=python_version, labels=dict(labels), imports=kind.imports,
                   installed=kind.installed, env=kind.env, paths=kind.paths,
                   trees={name: (kind.trees[name], commit) for name, commit in commits.items()}, **extra)


def check_image(engine: Engine, image_id: str, expect: Expect) -> probe.Seen:
    """Compare the image with `expect`; return what the probe saw. Raises ImageMismatchError."""
    image = engine.image(image_id)
    problems = [
        f"label {k} is {image.labels.get(k)!r}, expected {v!r}"
        for k, v in expect.labels.items() if image.labels.get(k) != v
    ]
    installed = list(expect.installed) + [n for n in expect.versions if n not in expect.installed]
    asked = probe.spec(expect.imports, installed, {n: p for n, (p, _) in expect.trees.items()},
                       expect.env, expect.paths, dists=expect.no_cuda)
    seen = probe.run_python(engine, image_id, asked)
    if seen.info is None:
        problems.append(f"`python` does not run in the image (exit {seen.code}: {probe.last(seen.noise)})")
    else:
        version = seen.info["version"]
        if not (version + ".").startswith(expect.python_version + "."):
            problems.append(f"python is {version} ({seen.info['prefix']}), expected {expect.python_version}")
        for name in expect.imports:
            got = seen.imports.get(name) or {"ok": False, "error": f"python ended (exit {seen.code}) before it"}
            if not got["ok"]:
                problems.append(f"`import {name}` fails: {got['error']}")
        if seen.done:
            for name, (path, commit) in expect.trees.items():
                got = seen.commits.get(name)
                if got != commit:
                    problems.append(f"{path} is at {got or 'no commit'}, expected {commit}")
            for name, value in expect.env.items():
                if seen.env.get(name) != value:
                    problems.append(f"${name} is {seen.env.get(name)!r}, expected {value!r}")
            problems.extend(f"{path} is missing" for path, ok in seen.paths.items() if not ok)
            problems.extend(f"{name} is not installed" for name, version in seen.installed.items() if not version)
            problems.extend(_musa_index(expect, seen))
        elif all(got["ok"] for got in seen.imports.values()):
            problems.append(f"the probe ended early (exit {seen.code}: {probe.last(seen.noise)})")
    if problems:
        raise ImageMismatchError(
            f"the new image {short_id(image_id)} does not match the request, so it was not tagged: "
            + "; ".join(problems)
        )
    return seen


def _musa_index(expect: Expect, seen: probe.Seen) -> list:
    """Each MUSA-index wheel at its pinned version, and no CUDA build from the public index."""
    problems = [
        f"{name} is {seen.installed[name]}, but the MUSA index requirement is {name}=={version}: "
        "something installed after the MUSA wheels replaced it (a dependency from the public index?)"
        for name, version in expect.versions.items()
        if seen.installed.get(name) and seen.installed[name] != version
    ]
    if expect.no_cuda:
        from ..musa.sdk import CUDA_PREFIXES
        # compared as pip names them (PEP 503): nvidia_cublas_cu12 is nvidia-cublas-cu12
        cuda = [d for d in seen.dists if re.sub(r"[-_.]+", "-", d.lower()).startswith(CUDA_PREFIXES)]
        if cuda:
            problems.append(f"CUDA distributions are installed ({', '.join(cuda)}): a public CUDA build "
                            "slipped in; pin the MUSA builds with --musa-wheel from --musa-pip-index-url")
    return problems
