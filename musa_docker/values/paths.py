"""Checks of paths a user names, that look at no disk: a leaf, so options can refuse a bad
path before any work is done, and the build dir code can check it again when it acts."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import BuildDirError

_SYSTEM_DIRS = {Path(p) for p in ("/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/opt", "/proc", "/root",
                                  "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var")}


def check_reserved(wanted: Path, home: Path) -> Path:
    """`wanted` made absolute; raises BuildDirError when it is `/`, HOME or a system dir."""
    path = Path(os.path.abspath(wanted))
    if path == Path("/") or path == Path(os.path.abspath(home)) or path in _SYSTEM_DIRS:
        raise BuildDirError(
            f"--build-dir {path} is a system or home directory: name a dedicated directory, "
            f"e.g. {path / 'musa-docker-build'}"
        )
    return path
