"""The one way to ask an image what it holds: common/probe_image.py, run with the image's own
python, answering what a spec asks (imports, installed distributions, tree commits, env, paths).

The post-build check, `verify` (inside common/probe_image.sh) and build-dev's look at its base
image's Python all send that same file, as an argument: the image need not contain it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence

from ..engine.api import Engine
from ..resources import common_script

PYTHON = "probe_image.py"
SHELL = "probe_image.sh"
MUSA_PROGRAM = "probe_musa.mu"
TAG = "@@py "


def script(name: str) -> str:
    """The text of the probe file `name` under common/."""
    return common_script(name)


def spec(imports: Sequence[str] = (), installed: Sequence[str] = (), trees: Optional[Mapping[str, str]] = None,
         env: Sequence[str] = (), paths: Sequence[str] = (), dists: bool = False, contents: bool = False) -> str:
    """What to ask, as the probe's JSON argument (`dists`: every installed distribution's name;
    `contents`: the OS, every dpkg package and every distribution with its version)."""
    return json.dumps({"imports": list(imports), "installed": list(installed), "trees": dict(trees or {}),
                       "env": list(env), "paths": list(paths), "dists": dists, "contents": contents})


@dataclass
class Seen:
    """The probe's answers. `info` is None when python did not run; an import the probe was inside
    when python died is reported as a failed import naming the exit code."""

    code: Optional[int]
    info: Optional[dict] = None
    imports: Dict[str, dict] = field(default_factory=dict)     # name -> {ok, version | error}
    installed: Dict[str, Optional[str]] = field(default_factory=dict)
    commits: Dict[str, Optional[str]] = field(default_factory=dict)
    env: Dict[str, Optional[str]] = field(default_factory=dict)
    paths: Dict[str, bool] = field(default_factory=dict)
    dists: List[str] = field(default_factory=list)
    os: Dict[str, str] = field(default_factory=dict)                  # /etc/os-release
    dpkg: List[List[str]] = field(default_factory=list)              # [name, version, arch]
    distributions: List[List[str]] = field(default_factory=list)     # [name, version]
    musa_wheels: List[List[str]] = field(default_factory=list)       # [name, version, sha256, file]
    done: bool = False
    noise: List[str] = field(default_factory=list)             # lines that were not the probe's


def parse(lines: Sequence[str], code: Optional[int]) -> Seen:
    seen, importing = Seen(code), None
    for line in lines:
        if not line.startswith(TAG):
            if line.strip():
                seen.noise.append(line.rstrip())
            continue
        _, tag, data = line.split(" ", 2)
        data = json.loads(data)
        if tag == "info":
            seen.info = data
        elif tag == "importing":
            importing = data
        elif tag == "import":
            seen.imports[data["name"]] = data
            importing = None
        elif tag == "done":
            seen.done = True
        elif tag in ("installed", "commits", "env", "paths", "dists", "os", "dpkg", "distributions",
                     "musa_wheels"):
            setattr(seen, tag, data)
    if importing is not None:
        seen.imports[importing] = {"name": importing, "ok": False,
                                   "error": f"python died (exit {code}) while importing it: {last(seen.noise)}"}
    return seen


def run_python(engine: Engine, image_id: str, asked: str) -> Seen:
    """Run the probe with the image's `python` in a throwaway container. Raises EngineError."""
    code, output = engine.run(image_id, ["python", "-c", script(PYTHON), asked])
    return parse(output.splitlines(), code)


def shell_command(asked: str, build: bool) -> List[str]:
    """The command of `verify`'s check container: the shell probe, given the python probe and the
    MUSA program as arguments."""
    return ["sh", "-c", script(SHELL), "sh", script(PYTHON), asked, script(MUSA_PROGRAM), "1" if build else "0"]


def last(lines: Sequence[str], fallback: str = "no output") -> str:
    """The last non-blank line, cut to a length a table row can hold."""
    return next((line for line in reversed(lines) if line.strip()), fallback)[:200]
