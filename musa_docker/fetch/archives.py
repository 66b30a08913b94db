"""Vendor archives and wheels, checked on the host before any build starts.

A corrupt or wrong-shape archive found here costs seconds; found by a RUN step it costs the
build up to that step and ends in a less helpful message.
"""

from __future__ import annotations

import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Optional, Sequence

from .download import Fetched
from ..errors import ArtifactError
from ..musa import vendor
from ..values.wheelname import wheel_dist
from ..util import CHUNK, human_size


def find_installer(name: str, path: Path, display: str) -> str:
    """The installer's path inside the archive, after reading the archive to its end (a truncated
    download often has its installer intact). Raises ArtifactError naming the artifact."""
    shape = vendor.BY_NAME[name]
    found = None
    try:
        # One streaming pass: every member's bytes are decompressed and read, none is written.
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                member_name = member.name[2:] if member.name.startswith("./") else member.name
                if member.isfile():
                    data = tar.extractfile(member)
                    while data.read(CHUNK):
                        pass
                    if found is None and (member_name == shape.installer if not shape.anywhere
                                          else member_name.rsplit("/", 1)[-1] == shape.installer):
                        found = member_name
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise ArtifactError(
            f"the {name} archive from {display} is corrupt or not a tar archive ({err or type(err).__name__}): "
            "download it again, or check the URL"
        ) from err
    if found:
        return found
    where = "anywhere inside" if shape.anywhere else "at"
    raise ArtifactError(
        f"the {name} archive from {display} has no installer {where} {shape.installer}: "
        f"is it the {name} package? check the URL"
    )


def check_wheel(name: str, dist: str, path: Path, filename: str, display: str, python_version: str) -> None:
    """A wheel of `dist` installable on CPython `python_version`. Raises ArtifactError."""
    got = wheel_dist(name, filename, display, python_version)
    if got != dist:
        raise ArtifactError(f"{name} from {display} is a wheel of {filename.split('-')[0]!r}, not {dist!r}: check the URL")
    try:
        with zipfile.ZipFile(path) as whl:
            if not any(n.endswith(".dist-info/WHEEL") for n in whl.namelist()):
                raise ArtifactError(f"{name} {filename} from {display} has no .dist-info/WHEEL: it is not a wheel")
    except (zipfile.BadZipFile, OSError) as err:
        raise ArtifactError(f"{name} {filename} from {display} is corrupt (not a zip archive): download it again") from err


def check_all(fetched: Sequence[Fetched], python_version: Optional[str], discard,
              checked: Optional[Path] = None, say=None) -> None:
    """Check every vendor archive and wheel of a build; `discard(f)` drops a bad cache entry so
    the next run downloads it again instead of failing the same way. Archives whose sha256 is
    recorded under `checked` passed before and are not read again."""
    for f in fetched:
        try:
            if f.name in vendor.BY_NAME:
                mark = checked / f.sha256 if checked else None
                if mark is None or not mark.exists():
                    if say:
                        say(f"check {f.name} archive ({human_size(f.size)}): read to its end, installer found")
                    find_installer(f.name, f.path, f.location.display)
                    if mark is not None:
                        mark.parent.mkdir(parents=True, exist_ok=True)
                        mark.write_text(f"{f.name}\n")
            elif f.name.endswith(WHEEL_SUFFIX):
                # an extra wheel (--wheel) is named after its own distribution: <dist>_wheel
                dist = WHEELS.get(f.name, f.name[:-len(WHEEL_SUFFIX)])
                check_wheel(f.name, dist, f.path, f.location.filename, f.location.display, python_version)
        except ArtifactError:
            discard(f)
            raise


WHEELS = {"torch_wheel": "torch", "torch_musa_wheel": "torch_musa"}
WHEEL_SUFFIX = "_wheel"


def discard(fetched: Fetched) -> None:
    """Drop a downloaded file that failed its check from the cache (the tool's own file), so the
    next run fetches it again instead of failing the same way. A local file is never touched."""
    if fetched.location.scheme in ("http", "https"):
        fetched.path.unlink(missing_ok=True)
