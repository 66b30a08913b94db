"""Where the files the tool ships live: the repo root holds common/ (scripts staged into every
context) and ubuntu/ (the Dockerfiles). A leaf, so options and plan can both read it."""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

ASSETS = Path(__file__).resolve().parent.parent
COMMON = ASSETS / "common"
DOCKERFILE_BASE = ASSETS / "ubuntu" / "dockerfile.base"


def common_scripts() -> Tuple[str, ...]:
    """The files of common/, by name, sorted: what every context stages under common/."""
    return tuple(sorted(p.name for p in COMMON.iterdir() if p.is_file()))
