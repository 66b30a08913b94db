"""One Dockerfile template per image, rendered for the plan's builder.

The files under ubuntu/ are templates. Marker lines choose what each builder gets:

    # [classic]        the lines up to the next marker are the classic builder's only
    # [buildkit]       the lines up to the next marker are BuildKit's only
    # [end]            back to lines both builders get

A `# [buildkit]` may follow a `# [classic]` block directly (and the reverse): the one rendering's
lines, then the other's, then `# [end]`.

The marker lines themselves are dropped. In BuildKit lines, `@bind(SRC,TARGET)` becomes
`--mount=type=bind,source=SRC,target=TARGET` when SRC is in the context (common/ always, an
artifact, or a dir of them, only when the plan stages it), and nothing otherwise: an optional archive that is not
staged is simply not mounted, and the step's cache key covers exactly the file it reads.

`@net` marks a RUN step that reaches the network (apt, pip, conda, git, curl). With BuildKit it
becomes a secret mount of each secret network.py knows and a tmpfs at network.NET_DIR, where
common/net_env.sh builds the CA bundle: all of them always, whether the build has the secret or
not (a secret mount with no secret is left out, `required` being false), so adding or removing a
CA or an index password changes no cache key. The classic builder gets nothing in its place.
Under --offline (BuildKit) it also becomes a read-only bind mount of the context's `offline/` (the
lock's apt packages as a flat repository, its wheels per index) at OFFLINE_TARGET: the build runs
with no network at all, and the scripts take what they install from there. A bind mount rather than a
server on 127.0.0.1: a step with no network reaches no server, not even one on the host's loopback,
and the files are in no layer. The inputs digest is taken of the online rendering
(`for_plan(plan, online=True)`): how the locked bytes reach the steps is no input.

Why two renderings: with BuildKit, vendor archives, wheels and the conda installer reach their RUN
steps through bind mounts (never copied into a layer), and apt and pip keep their downloads in
cache mounts; the classic builder (docker-py) knows no `RUN --mount`, so it gets throwaway stages
that copy the files in and keep only what the installers wrote (common/capture.sh). Only syntax
the dockerfile frontend built into Engine 18.09+ understands is used: no `# syntax=` line, since
the engine may have no way to fetch another frontend.

A Dockerfile without markers (a user's `-f`) is passed through unchanged.
"""

from __future__ import annotations

import re
from typing import Collection, Optional

from ..errors import ConfigError
from ..values.network import NET_DIR, SECRETS

KINDS = ("classic", "buildkit")
_MARKER = re.compile(r"^# \[(classic|buildkit|end)\]\s*$")
_BIND = re.compile(r"@bind\(([^,()\s]+),([^,()\s]+)\)")
_NET = re.compile(r"@net(\s|$)")
NET_MOUNTS = " ".join([f"--mount=type=secret,id={i}" for i in SECRETS] + [f"--mount=type=tmpfs,target={NET_DIR}"])
OFFLINE_TARGET = "/tmp/musa-docker-offline"
OFFLINE_MOUNT = f"--mount=type=bind,source=offline,target={OFFLINE_TARGET},readonly"


def render(text: str, builder: str, staged: Collection[str] = (), offline: bool = False) -> str:
    """`text` for `builder` (classic or buildkit); `staged` names the context paths under
    artifacts/ the plan stages. Raises ConfigError on a marker out of place."""
    if builder not in KINDS:
        raise ValueError(builder)
    out, current = [], "end"
    for number, line in enumerate(text.split("\n"), 1):
        m = _MARKER.match(line)
        if m:
            if m.group(1) == current:
                raise ConfigError(f"Dockerfile line {number}: '{line.strip()}' here does not close or open a block")
            current = m.group(1)
            continue
        if current not in ("end", builder):
            continue
        if builder == "buildkit":
            line = _BIND.sub(lambda b: _bind(b.group(1), b.group(2), staged), line)
            net = NET_MOUNTS + (" " + OFFLINE_MOUNT if offline else "")
            line = _NET.sub(lambda m: net + m.group(1), line)
        else:
            line = _NET.sub("", line)
        out.append(line)
    if current != "end":
        raise ConfigError(f"Dockerfile: the '# [{current}]' block is not closed by '# [end]'")
    return "\n".join(out)


def for_plan(plan, kind: Optional[str] = None, online: bool = False) -> str:
    """The plan's Dockerfile as the builder `kind` (the plan's, by default) gets it: rendered for
    that builder and for the artifacts the plan stages; `online`: as a build that is not --offline."""
    kind = kind or plan.build.builder.kind
    return render(plan.build.dockerfile.read_text(), kind, [a.dest for a in plan.artifacts],
                  offline=plan.offline and kind == "buildkit" and not online)


def _bind(source: str, target: str, staged: Collection[str]) -> str:
    if source.startswith("artifacts/") and not any(s == source or s.startswith(source + "/") for s in staged):
        return ""
    return f"--mount=type=bind,source={source},target={target}"


def rendering(text: str) -> bool:
    """Whether `text` has builder blocks (else both builders get it as it is)."""
    return any(_MARKER.match(line) for line in text.split("\n"))
