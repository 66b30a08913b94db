"""The platforms an image can be built for (`--platform linux/amd64|linux/arm64`), and the names
each goes by: the engine's and `uname -m`'s (x86_64, aarch64), Debian's (amd64, arm64), and the
wheel platform tags that fit it (`linux_aarch64`, `manylinux2014_x86_64`)."""

from __future__ import annotations

from typing import NamedTuple

from ..errors import ConfigError


class Platform(NamedTuple):
    name: str          # "linux/arm64", as docker build --platform takes it
    machine: str       # "aarch64": uname -m, the conda installer's and the wheels' CPU
    deb_arch: str      # "arm64": Debian's, an apt index's binary-ARCH

    def __str__(self) -> str:
        return self.name


PLATFORMS = {p.name: p for p in (
    Platform("linux/amd64", "x86_64", "amd64"),
    Platform("linux/arm64", "aarch64", "arm64"),
)}

# Every name a machine goes by (uname -m, Go's GOARCH the engine reports, Debian's) -> its platform.
_BY_MACHINE = {alias: p for p in PLATFORMS.values() for alias in (p.machine, p.deb_arch)}


def parse(value: str, flag: str = "--platform") -> Platform:
    """A platform as the user wrote it: linux/amd64 or linux/arm64 (also amd64, arm64, x86_64,
    aarch64, and linux/arm64/v8). Raises ConfigError."""
    text = str(value or "").strip().lower()
    if text.startswith("linux/"):
        text = text[len("linux/"):]
    if text == "arm64/v8":
        text = "arm64"
    found = _BY_MACHINE.get(text)
    if found is None:
        raise ConfigError(f"{flag} {value!r} is not a platform an image can be built for: choose one of "
                          f"{', '.join(PLATFORMS)}")
    return found


def of_machine(machine: str) -> Platform:
    """The platform of a machine as the engine (`Architecture`: x86_64, aarch64) or uname names it.
    Raises ConfigError for a CPU no image is built for."""
    found = _BY_MACHINE.get(str(machine or "").strip().lower())
    if found is None:
        raise ConfigError(f"the engine runs on {machine!r}, which no image is built for here: pass --platform "
                          f"{' or '.join(PLATFORMS)} (the engine must then run it through QEMU)")
    return found


def fits(tag: str, platform: Platform) -> bool:
    """Whether a wheel's platform tag installs on Linux on `platform`: `any`, or a linux,
    manylinux or musllinux tag of its machine (linux_aarch64, manylinux_2_28_x86_64)."""
    return tag == "any" or (tag.startswith(("linux_", "manylinux", "musllinux"))
                            and tag.endswith(f"_{platform.machine}"))
