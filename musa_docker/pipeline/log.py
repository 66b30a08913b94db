"""The build log and how a failed build is told: shared by the classic and the BuildKit builder.

Everything the engine says goes to the terminal and to a file that outlives the scroll-back; a
failing step is reported by its name, exit code, last lines of output and the log's path.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, TextIO

from ..values.locations import redact

TAIL = 15


@dataclass(frozen=True)
class Built:
    image_id: str
    log: Path


# The line that starts a build step: BuildKit's plain progress (`#7 [stage-1 3/12] RUN …`, once per
# step number) and the classic builder's (`Step 3/12 : RUN …`).
_BUILDKIT_STEP = re.compile(r"#(\d+) \[[^\]]*\d+/\d+\] ")
_CLASSIC_STEP = re.compile(r"Step \d+/\d+ : ")


class BuildLog:
    """Everything the engine said, to a file that outlives the scroll-back, and to `echo`: the whole
    of it, or with `steps` (--progress tty) one line per build step."""

    def __init__(self, path: Path, echo: Optional[TextIO] = None, steps: bool = False):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.echo = echo
        self.steps = steps
        self.file = open(path, "a", encoding="utf-8")
        self._partial = ""
        self._started: set = set()

    def write(self, text: str) -> None:
        text = redact(text)
        self.file.write(text)
        self.file.flush()
        if self.echo is None:
            return
        if self.steps:
            text = self._step_lines(text)
        if text:
            self.echo.write(text)
            self.echo.flush()

    def _step_lines(self, text: str) -> str:
        """Of what the engine said, the lines that start a build step, each step once."""
        *lines, self._partial = (self._partial + text).split("\n")
        shown = []
        for line in lines:
            found = _BUILDKIT_STEP.match(line)
            if found and found.group(1) not in self._started:
                self._started.add(found.group(1))
                shown.append(line)
            elif _CLASSIC_STEP.match(line):
                shown.append(line)
        return "".join(line + "\n" for line in shown)

    def close(self) -> None:
        self.file.close()


def log_path(logs: Path, image: str) -> Path:
    """A log file of this run alone: builds of one image in the same second (build-all --jobs,
    two runs sharing the cache) must not write into one file."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", image)
    return logs / f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{os.urandom(3).hex()}.log"


def failure(step: str, code, message: str, tail, log: Path) -> str:
    what = f"exit code {code}" if code else message
    lines = [f"build step failed ({what}): {redact(step)}"]
    if tail:
        lines.append("  its last lines of output:")
        lines.extend(f"    {redact(t)}" for t in tail)
    elif code:
        lines.append(f"  {message}")
    lines.append(f"  the whole build log: {log}")
    return "\n".join(lines)
