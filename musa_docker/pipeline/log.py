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
