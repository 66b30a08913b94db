"""A wheel's file name, read as the wheel spec writes it: which distribution it is and where it
installs, checked before anything is downloaded."""

from __future__ import annotations

import re
from typing import Optional

from ..errors import ArtifactError

_WHEEL = re.compile(r"^(?P<dist>[^-]+)-(?P<ver>[^-]+)(?:-(?P<build>\d[^-]*))?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$")


def wheel_dist(name: str, filename: str, display: str, python_version: str, machine: Optional[str] = None) -> str:
    """The distribution of the wheel named `filename`, checked from its name alone: installable on
    CPython `python_version` and, given `machine` (x86_64, aarch64), on Linux on that machine.
    Raises ArtifactError."""
    match = _WHEEL.match(filename)
    if not match:
        raise ArtifactError(
            f"{name} from {display} is not a wheel (its file name {filename!r} is not NAME-VERSION-PY-ABI-PLATFORM.whl): "
            "give the URL of a .whl file"
        )
    tags = match.group("py").split(".")
    wanted = f"cp{python_version.replace('.', '')}"
    cpython = [t for t in tags if t.startswith("cp")]
    if cpython and wanted not in cpython:
        raise ArtifactError(
            f"{name} {filename} is built for {', '.join(cpython)}, but the image's Python is {python_version}: "
            f"give a {wanted} wheel, or pass -v to match the wheel"
        )
    platforms = match.group("plat").split(".")
    if machine and "any" not in platforms and not any(p.startswith(("linux_", "manylinux", "musllinux"))
                                                      and p.endswith(f"_{machine}") for p in platforms):
        raise ArtifactError(
            f"{name} {filename} is built for {', '.join(platforms)}, but the image is Linux on {machine}: "
            f"give a linux {machine} (or pure-Python) wheel"
        )
    return match.group("dist").lower().replace("-", "_").replace(".", "_")
