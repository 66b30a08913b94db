"""The errors a user can act on.

Every failure the user can fix is a `MusaDockerError`; the task boundary turns it into one
`error: ...` line and a non-zero exit. Anything else is a bug and keeps its traceback.
"""


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
