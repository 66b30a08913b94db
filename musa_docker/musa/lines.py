"""SDK lines: which MUSA SDK line (5.2, 5.1, 4.3) an image installs, and which one each of its wheels
was built for, read from the wheel's local version (`torch-2.11.0.post2+musa5.2.0`,
`torch_musa-2.11.0+musa5.2.1mp22`, which also names the GPU arch). An image holds one line: the SDK
and every wheel that names a line must agree, and a wheel that names an arch must be built for one
of `--gpu-arch`'s. All is decided from names alone, before anything is fetched.

The SDK's line comes from `--musa-runtime` (the apt route), the pins file's `versions: musa`, and
the toolkit archive's name (`musa_toolkits_rc5.2.0.tar.gz`, `…/release_musa_5.2.0/…`).
"""

from __future__ import annotations

import re
from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple

from . import arch as arch_mod
from ..errors import ConfigError

# The SDK line in a wheel's local version, with an optional arch: +musa5.2.0, +musa5.2.1mp22, +musa4.3.4.mp31
_LOCAL = re.compile(r"(?:^|[.+_-])musa(?P<line>[0-9]+\.[0-9]+)(?P<patch>\.[0-9]+)?(?:[._-]?mp_?(?P<arch>[0-9]{2}))?",
                    re.IGNORECASE)
_ARCH_ONLY = re.compile(r"(?:^|[.+_-])mp_?(?P<arch>[0-9]{2})(?:$|[._-])", re.IGNORECASE)
# The toolkit archive's version in its name or folder: musa_toolkits_rc5.2.0, musa_toolkits_install_5.1.0,
# release_musa_4.0.0/
_ARCHIVE = re.compile(r"musa(?:[_-]toolkits?)?(?:[_-]install)?(?:[_-]full)?[_-](?:rc|rtm)?(?P<line>[0-9]+\.[0-9]+)"
                      r"(?P<patch>\.[0-9]+)?(?![0-9])", re.IGNORECASE)
_VERSION = re.compile(r"^(?P<line>[0-9]+\.[0-9]+)(?P<patch>\.[0-9]+)?")


class Claim(NamedTuple):
    """One thing that names an SDK line (and perhaps an arch): the SDK's source or a wheel."""

    line: Optional[str]       # "5.2"
    version: str              # as named: "5.2.0", "5.2"
    arch: Optional[str]       # "mp_22"
    what: str                 # for people: "--musa-runtime 5.2", "--torch-musa-whl-url torch_musa-…whl"


def of_local_version(version: str) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """(line, version as written, arch) named by a wheel version's local part (after `+`); Nones
    where it names none."""
    _, plus, local = str(version).partition("+")
    if not plus:
        return None, None, None
    found = _LOCAL.search(local)
    if found:
        arch = f"mp_{found['arch']}" if found["arch"] else None
        return found["line"], found["line"] + (found["patch"] or ""), arch
    only = _ARCH_ONLY.search(local)
    return None, None, (f"mp_{only['arch']}" if only else None)


def of_sdk_version(version: str) -> Optional[str]:
    """The line of an SDK version as a pins file or --musa-runtime writes it: 5.2.0 -> 5.2."""
    found = _VERSION.match(str(version or ""))
    return found["line"] if found else None


def of_archive(name: str) -> Optional[str]:
    """The version a toolkit archive's path names (musa_toolkits_rc5.2.0.tar.gz -> 5.2.0), if any."""
    found = _ARCHIVE.search(str(name or ""))
    return found["line"] + (found["patch"] or "") if found else None


def wheel_claim(version: str, what: str) -> Optional[Claim]:
    line, written, arch = of_local_version(version)
    return Claim(line, written or "", arch, what) if (line or arch) else None


def sdk_claim(version: Optional[str], what: str) -> Optional[Claim]:
    line = of_sdk_version(version) if version else None
    return Claim(line, str(version), None, what) if line else None


def check(sdk: Sequence[Optional[Claim]], wheels: Iterable[Optional[Claim]], targets: Sequence[str]) -> Optional[str]:
    """One SDK line for the image: the SDK's sources agree, every wheel that names a line names
    the SDK's (or, with no SDK line known, the same as the others), every wheel that names an arch
    names one of `targets` (the --gpu-arch selection). Returns the line (None when nothing names
    one). Raises ConfigError naming both sides."""
    sdk = [c for c in sdk if c is not None]
    wheels = [c for c in wheels if c is not None]
    for other in sdk[1:]:
        if other.line != sdk[0].line:
            raise ConfigError(f"{sdk[0].what} and {other.what} name two MUSA SDK lines ({sdk[0].line} and "
                              f"{other.line}): an image installs one; make them agree")
    lined: List[Claim] = [c for c in wheels if c.line]
    if sdk:
        for wheel in lined:
            if wheel.line != sdk[0].line:
                raise ConfigError(
                    f"{wheel.what} is built for MUSA SDK {wheel.version} (+musa{wheel.version}), but the image "
                    f"installs SDK {sdk[0].line} ({sdk[0].what}): give a +musa{sdk[0].line} wheel, or install "
                    f"SDK {wheel.line}")
    elif lined:
        for wheel in lined[1:]:
            if wheel.line != lined[0].line:
                raise ConfigError(f"{lined[0].what} is built for MUSA SDK {lined[0].version} and {wheel.what} for "
                                  f"{wheel.version}: an image holds one SDK line; give wheels of one line")
    for wheel in wheels:
        if wheel.arch and wheel.arch not in targets:
            spec = arch_mod.ARCHS.get(wheel.arch)
            names = f" ({spec.codename}: {'/'.join(spec.products)})" if spec else ""
            raise ConfigError(f"{wheel.what} is built for {wheel.arch}{names}, but --gpu-arch is "
                              f"{', '.join(targets)}: build for --gpu-arch {wheel.arch}, or give a wheel of that arch")
    return sdk[0].line if sdk else (lined[0].line if lined else None)


def needs(pins, line: Optional[str]) -> Tuple[Tuple[str, str], ...]:
    """The labels saying what a host needs to run an image of SDK `line`, from the pins file's
    compatibility section: musa_docker.sdk_line, musa_docker.needs.driver, .container_toolkit."""
    if not line:
        return ()
    found = pins.needs(line) if pins is not None else {}
    return (("musa_docker.sdk_line", line),) + tuple((f"musa_docker.needs.{name}", pin.value)
                                                     for name, pin in sorted(found.items()))
