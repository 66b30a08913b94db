"""Running one build on the engine: the log streamed as it comes, and kept whole in a file.

Build events are dispatched by key (`stream`, `status`, `aux`, `error`). A failing step ends in
a `BuildError` that names the step, its exit code, its last lines of output and the log file.
The image is not tagged here: the caller tags it only after it checks out.
"""

from __future__ import annotations

import collections
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Optional, TextIO

from .engine import Engine
from .errors import BuildError
from .locations import redact

_STEP = re.compile(r"^Step \d+/\d+ : ")
_CODE = re.compile(r"returned a non-zero code: (\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CHATTER = (" ---> ", "Removing intermediate container", "Successfully built", "Successfully tagged")
TAIL = 15


@dataclass(frozen=True)
class Built:
    image_id: str
    log: Path
    seconds: float


class BuildLog:
    """Everything the engine said, to the terminal and to a file that outlives the scroll-back."""

    def __init__(self, path: Path, echo: Optional[TextIO] = None):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.echo = echo
        self.file = open(path, "a", encoding="utf-8")

    def write(self, text: str) -> None:
        text = redact(text)
        self.file.write(text)
        self.file.flush()
        if self.echo is not None:
            self.echo.write(text)
            self.echo.flush()

    def close(self) -> None:
        self.file.close()


def log_path(logs: Path, image: str) -> Path:
    """A log file of this run alone: builds of one image in the same second (build-all --jobs,
    two runs sharing the cache) must not write into one file."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", image)
    return logs / f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{os.urandom(3).hex()}.log"


def run(engine: Engine, context: Iterable[bytes], log: BuildLog, *, dockerfile: str,
        buildargs: Mapping[str, str], labels: Mapping[str, str], network: str,
        nocache: bool, pull: bool) -> Built:
    """Build; return the new image's id. Raises BuildError (a step failed) or EngineError."""
    started = time.monotonic()
    step = "(before the first step)"
    tail = collections.deque(maxlen=TAIL)
    image_id = None
    for event in engine.build(context, dockerfile=dockerfile, buildargs=buildargs, labels=labels,
                              network=network, nocache=nocache, pull=pull):
        if "stream" in event:
            text = event["stream"]
            log.write(text)
            for line in _ANSI.sub("", text).splitlines():
                if _STEP.match(line):
                    step, tail = line.strip(), collections.deque(maxlen=TAIL)
                elif line.strip() and not line.startswith(_CHATTER):
                    tail.append(line.rstrip())
        elif "status" in event:
            # pull progress: one line per layer state, not every byte count
            if "progress" not in event:
                log.write(f"{event.get('id', '')} {event['status']}\n".lstrip())
        elif "aux" in event:
            image_id = (event["aux"] or {}).get("ID") or image_id
        elif "error" in event:
            detail = event.get("errorDetail") or {}
            message = redact(detail.get("message") or event["error"]).strip()
            log.write(f"error: {message}\n")
            match = _CODE.search(message)
            code = detail.get("code") or (match and int(match.group(1)))
            raise BuildError(_failure(step, code, message, tail, log.path))
    if not image_id:
        raise BuildError(f"the engine ended the build without an image id; the whole log is in {log.path}")
    return Built(image_id, log.path, time.monotonic() - started)


def _failure(step: str, code, message: str, tail, log: Path) -> str:
    what = f"exit code {code}" if code else message
    lines = [f"build step failed ({what}): {redact(step)}"]
    if tail:
        lines.append("  its last lines of output:")
        lines.extend(f"    {redact(t)}" for t in tail)
    elif code:
        lines.append(f"  {message}")
    lines.append(f"  the whole build log: {log}")
    return "\n".join(lines)


def stderr_log(path: Path, quiet: bool = False) -> BuildLog:
    return BuildLog(path, echo=None if quiet else sys.stdout)
