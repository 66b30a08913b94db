"""A wheel's file name, read as the wheel spec writes it: which distribution and version it is and
where it installs, checked before anything is downloaded."""

from __future__ import annotations

import re
from typing import NamedTuple, Optional

from ..errors import ArtifactError
from .platforms import PLATFORMS, Platform, fits, of_machine

_WHEEL = re.compile(r"^(?P<dist>[^-]+)-(?P<ver>[^-]+)(?:-(?P<build>\d[^-]*))?-(?P<py>[^-]+)-(?P<abi>[^-]+)-(?P<plat>[^-]+)\.whl$")


class WheelName(NamedTuple):
    dist: str               # normalised: torch_musa
    version: str            # 2.11.0+musa5.2.0
    pythons: tuple          # cp310, py3
    platforms: tuple        # linux_x86_64, manylinux_2_28_aarch64, any


def is_wheel_name(filename: str) -> bool:
    return bool(_WHEEL.match(filename))


def parse(name: str, filename: str, display: str) -> WheelName:
    """The parts of the wheel file name `filename`. Raises ArtifactError when it is no wheel's."""
    match = _WHEEL.match(filename)
    if not match:
        raise ArtifactError(
            f"{name} from {display} is not a wheel (its file name {filename!r} is not NAME-VERSION-PY-ABI-PLATFORM.whl): "
            "give the URL of a .whl file"
        )
    return WheelName(match.group("dist").lower().replace("-", "_").replace(".", "_"), match.group("ver"),
                     tuple(match.group("py").split(".")), tuple(match.group("plat").split(".")))


def wheel_dist(name: str, filename: str, display: str, python_version: str,
               platform: "Optional[Platform | str]" = None) -> str:
    """The distribution of the wheel named `filename`, checked from its name alone: installable on
    CPython `python_version` and, given `platform` (a Platform, or a machine: x86_64, aarch64), on
    Linux on that platform. Raises ArtifactError."""
    wheel = parse(name, filename, display)
    wanted = f"cp{python_version.replace('.', '')}"
    cpython = [t for t in wheel.pythons if t.startswith("cp")]
    if cpython and wanted not in cpython:
        raise ArtifactError(
            f"{name} {filename} is built for {', '.join(cpython)}, but the image's Python is {python_version}: "
            f"give a {wanted} wheel, or pass -v to match the wheel"
        )
    if platform is not None:
        target = platform if isinstance(platform, Platform) else of_machine(platform)
        if not any(fits(tag, target) for tag in wheel.platforms):
            other = next((p for p in PLATFORMS.values() if any(fits(t, p) for t in wheel.platforms)), None)
            hint = f", or build for --platform {other}" if other else ""
            raise ArtifactError(
                f"{name} {filename} is built for {', '.join(wheel.platforms)}, but the image is {target} "
                f"(--platform): give a linux {target.machine} (or pure-Python) wheel{hint}"
            )
    return wheel.dist
