"""The errors a user can act on.

Every failure the user can fix is a `MusaDockerError`; the task boundary turns it into one
`error: ...` line and a non-zero exit. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Sequence, Tuple


class MusaDockerError(Exception):
    """Root of the project's errors. `str(err)` is the whole message shown to the user."""

    exit_code = 1


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived. A KeyboardInterrupt, so that it unwinds through the same cleanup as Ctrl-C."""


class ConfigError(MusaDockerError, ValueError):
    """An option or combination of options is not valid."""

    exit_code = 2


class RepoError(MusaDockerError):
    """A source repository could not be cloned, reused or read."""


class BuildDirError(MusaDockerError):
    """The build directory cannot be used (a system dir, or a non-empty dir the tool did not make)."""


class DownloadError(MusaDockerError):
    """An artifact could not be fetched."""


class ChecksumError(DownloadError):
    """An artifact's bytes do not match the sha256 it was promised with."""


class ArtifactError(MusaDockerError):
    """An artifact is corrupt or not of the shape the vendor ships."""


class EngineError(MusaDockerError):
    """The Docker engine cannot be reached or refused a request."""


class BuildError(MusaDockerError):
    """The image build failed (a step exited non-zero, or the engine reported an error)."""


class ImageMismatchError(MusaDockerError):
    """A built image does not hold what was asked for."""


class ShellError(MusaDockerError):
    """A container for `shell` could not be created, started or entered."""


class PushError(MusaDockerError):
    """An image could not be pushed: it does not exist, or the registry cannot be reached or
    refused the credentials or the push. `reason` keeps the engine's or registry's own words."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(f"{message}: {reason}" if reason else message)
        self.reason = reason


class VerifyError(MusaDockerError):
    """An image failed `verify` (a check row failed), or cannot be verified (it does not exist)."""


class LockError(MusaDockerError):
    """An input differs from what the lock file (--lock) records: a ref that moved, bytes whose
    sha256 differ, a package version the repository no longer has; or the lock file cannot be read."""


class BundleError(MusaDockerError):
    """A bundle cannot be written, read, verified or imported: a file differs from its manifest."""


class DiskError(MusaDockerError):
    """A file system refused a write the tool needs: read-only, full, over quota, not permitted."""


DISK_ERRNOS = {
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space is left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
}


@contextmanager
def disk_errors(places: Sequence[Tuple[Optional[Path], str, str]]):
    """Turn an OSError of the disk (DISK_ERRNOS) into a DiskError that names the path, the place
    it is in and what to do. `places` are (root, "the cache", "what to do"), most specific first;
    other OSErrors are bugs and pass unchanged."""
    try:
        yield
    except OSError as err:
        if err.errno not in DISK_ERRNOS and err.errno != errno.ENOENT:
            raise
        path = err.filename
        place = next(((name, fix) for root, name, fix in places
                      if root is not None and path and _under(Path(os.fsdecode(path)), root)), None)
        if err.errno == errno.ENOENT:
            # a dir the tool makes for itself whose parent cannot hold one (/proc/x); any other
            # missing file is a bug and keeps its traceback
            if place is None:
                raise
            name, fix = place
            raise DiskError(f"{name} cannot be made at {os.fsdecode(path)}: a directory on that path does not "
                            f"exist and cannot be created; {fix}") from err
        if place is None:
            where = f"writing {os.fsdecode(path)}" if path else "a write"
            roots = ", ".join(f"{name} ({root})" for root, name, _ in places if root is not None)
            fix = f"make room or make it writable: {roots}" if roots else "make room or make it writable"
            raise DiskError(f"{where} failed: {DISK_ERRNOS[err.errno]}; {fix}") from err
        name, fix = place
        raise DiskError(f"{name} cannot be written at {os.fsdecode(path)}: {DISK_ERRNOS[err.errno]}; {fix}") from err


def _under(path: Path, root: Path) -> bool:
    path, root = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    return path == root or root in path.parents
