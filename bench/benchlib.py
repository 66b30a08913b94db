"""What every benchmark here does alike: say a line, and claim its work dir."""

from __future__ import annotations

import sys
from pathlib import Path


def say(text: str) -> None:
    print(f"  {text}", flush=True)


def claim(work: Path, owned: str) -> None:
    """Use `work` only when it is new, empty or this benchmark's own (it holds the marker `owned`)."""
    if work.exists() and any(work.iterdir()) and not (work / owned).exists():
        sys.exit(f"error: --work {work} is not empty and was not made by this benchmark: name another dir")
    work.mkdir(parents=True, exist_ok=True)
    (work / owned).touch()
