"""What `--lock FILE` checks once the engine is in reach, before anything is fetched or built: the
image the build starts from has the locked id, and the MUSA index still serves each locked wheel
file with its locked sha256. (The repos are checked by git.py, the artifacts by the downloader,
the apt packages by sdk.check_locked_apt.) Raises LockError naming the input."""

from __future__ import annotations

from ..errors import EngineError, LockError
from ..fetch import pipindex
from ..options.build import DevOptions
from ..util import Say
from ..values.locations import redact


def from_image(options) -> str:
    """The image the build starts FROM: dev's base image, else the OS image."""
    return options.base_img if isinstance(options, DevOptions) else options.system.name


def check(options, lock, engine, say: Say) -> None:
    check_image(from_image(options), lock, engine, say)
    stack = getattr(options, "stack", None)
    if stack is not None and stack.wheels:
        check_wheels(stack, lock, insecure=options.common.insecure, say=say)


def check_image(ref: str, lock, engine, say: Say) -> None:
    record = lock.image(ref)
    if record is None:
        return
    image = engine.image(ref)
    if image is None:
        say(f"pull {ref}: the engine at {engine.host} does not have it; the lock {lock.path} has it as "
            f"{record['id'][:19]}")
        try:
            engine.pull(ref)
        except EngineError as err:
            raise LockError(f"image {ref} (lock {lock.path}: {record['id'][:19]}) is not on the engine at "
                            f"{engine.host} and cannot be pulled ({err}): import it with `musa-docker bundle "
                            "import`") from err
        image = engine.image(ref)
    if image is None or image.id != record["id"]:
        raise LockError(f"image {ref} is {image.id[:19] if image else 'missing'} on the engine at {engine.host}, "
                        f"the lock {lock.path} has {record['id'][:19]}: load the locked one (`musa-docker bundle "
                        f"import`), or lock again with `musa-docker lock --update {ref}`")
    say(f"image {ref} is {image.id[:19]} (lock)")


def check_wheels(stack, lock, *, insecure: bool, say: Say) -> None:
    index = stack.pip_index_secret or stack.pip_index_url
    for wheel in stack.wheels:
        record = lock.pip(stack.pip_index_url, wheel.requirement)
        if record is None:
            continue              # the plan names it as an input the lock lacks
        now = {f.filename: f for f in pipindex.files(index, wheel.name, wheel.version, verify=not insecure)}
        for file in record["files"]:
            found = now.get(file["filename"])
            if found is None:
                raise LockError(f"pip {wheel.requirement}: {file['filename']} (lock {lock.path}) is no longer on "
                                f"{redact(stack.pip_index_url)}: bring it from a bundle, or lock again with "
                                f"`musa-docker lock --update {wheel.name}`")
            sha = pipindex.sha256_of(found, verify=not insecure)
            if sha != file["sha256"]:
                raise LockError(f"pip {wheel.requirement}: {file['filename']} on {redact(stack.pip_index_url)} has "
                                f"sha256 {sha[:16]}…, the lock {lock.path} {file['sha256'][:16]}…: the index's file "
                                f"changed; check it, or lock again with `musa-docker lock --update {wheel.name}`")
        say(f"pip {wheel.requirement}: {len(record['files'])} file(s) at their locked sha256 on "
            f"{redact(stack.pip_index_url)}")
