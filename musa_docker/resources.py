"""The files the tool ships, found through one table: common/ (scripts staged into every
context and run inside images) and ubuntu/ (the Dockerfile templates).

In a checkout (and an editable install) they are the repo's top-level common/ and ubuntu/, the
old scripts' layout. A built wheel carries copies of both under musa_docker/_data/ (see
pyproject.toml), so `pip install .`, `pipx install` and a wheel work from anywhere. A leaf: the
plan, the options and the probe all read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

_PACKAGE = Path(__file__).resolve().parent


def _root() -> Path:
    """Where common/ and ubuntu/ live: inside the installed package, else the checkout."""
    for root in (_PACKAGE / "_data", _PACKAGE.parent):
        if (root / "common").is_dir() and (root / "ubuntu").is_dir():
            return root
    raise FileNotFoundError(
        f"musa_docker's common/ and ubuntu/ are neither in {_PACKAGE / '_data'} nor in {_PACKAGE.parent}: "
        "reinstall musa-docker"
    )


ASSETS = _root()                      # a relative -f/--docker-file is taken from here
COMMON = ASSETS / "common"
UBUNTU = ASSETS / "ubuntu"
DOCKERFILES: Dict[str, Path] = {kind: UBUNTU / f"dockerfile.{kind}" for kind in ("base", "dev", "release")}
DOCKERFILE_BASE = DOCKERFILES["base"]


def common_scripts() -> Tuple[str, ...]:
    """The files of common/, by name, sorted: what every context stages under common/."""
    return tuple(sorted(p.name for p in COMMON.iterdir() if p.is_file() and not p.name.endswith(".pyc")))


def common_script(name: str) -> str:
    """The text of one file of common/ (the in-image probe reads its script this way)."""
    return (COMMON / name).read_text()
