"""What `--lock FILE` checks once the engine is in reach, before anything is fetched or built: the
image the build starts from has the locked id, and the MUSA index still serves each locked wheel
file with its locked sha256. (The repos are checked by git.py, the artifacts by the downloader,
the apt packages by sdk.check_locked_apt.) Raises LockError naming the input."""

from __future__ import annotations

from ..errors import EngineError, LockError
from ..fetch import cache, git, pipindex
from ..options.build import DevOptions, ReleaseOptions
from ..values import lockfile
from ..util import Say, expand_home
from ..values.locations import parse_location, redact


def from_image(options) -> str:
    """The image the build starts FROM: dev's base image, else the OS image."""
    return options.base_img if isinstance(options, DevOptions) else options.system.name


def check(options, lock, engine, say: Say) -> None:
    offline = options.common.offline
    check_image(from_image(options), lock, engine, say, pull=not offline)
    stack = getattr(options, "stack", None)
    if stack is not None and stack.wheels and not offline:
        check_wheels(stack, lock, insecure=options.common.insecure, say=say)
    if not offline and not isinstance(options, DevOptions):
        check_os_apt(options, lock, engine, say)
        check_public(options, lock, say)


def check_os_apt(options, lock, engine, say: Say) -> None:
    """The OS image's archive still has each package the lock records for the image's set, with the
    locked sha256: apt in a container of the OS image resolves the locked pins. Raises LockError."""
    from . import osapt
    from ..plan.locked import sets_of
    image, arch = from_image(options), options.common.platform.deb_arch
    for set_name in sets_of("release" if isinstance(options, ReleaseOptions) else "base"):
        record = lock.os_apt(image, set_name, arch)
        if record is None:
            continue                # the plan named it as an input the lock lacks
        now = osapt.resolve(engine, image, set_name, mirror=options.common.apt_mirror, pins=lockfile.apt_pins(record),
                            network=options.common.network)
        osapt.compare(record, now, lock.path)
        say(f"apt {image} {set_name}: {len(record['packages'])} package(s) at their locked versions and sha256 "
            "(lock)")


def check_public(options, lock, say: Say) -> None:
    """The public index still serves each distribution of the image's pip set with its locked sha256.
    Raises LockError naming the first that moved."""
    index = options.common.pip_index_url or lockfile.PUBLIC_INDEX
    record = lock.pip_set(lockfile.image_name(str(options.image)), index)
    if record is None:
        return
    verify = not options.common.insecure
    for requirement in record["requirements"]:
        dist = lock.pip(index, requirement)
        now = {f.filename: f for f in pipindex.files(options.common.pip_index_secret or index, dist["name"],
                                                     dist["version"], verify=verify)}
        for file in dist["files"]:
            found = now.get(file["filename"])
            sha = pipindex.sha256_of(found, verify=verify) if found is not None else None
            if sha != file["sha256"]:
                what = "is no longer on" if found is None else f"has sha256 {sha[:16]}… on"
                raise LockError(f"pip {requirement}: {file['filename']} (lock {lock.path}: {file['sha256'][:16]}…) "
                                f"{what} {redact(index)}: bring it from a bundle, or lock again with "
                                f"`musa-docker lock --update {dist['name']}`")
    say(f"pip {redact(index)}: {len(record['requirements'])} distribution(s) at their locked sha256 (lock)")


def check_image(ref: str, lock, engine, say: Say, pull: bool = True) -> None:
    record = lock.image(ref)
    if record is None:
        return
    image = engine.image(ref)
    if image is None and not pull:
        raise LockError(f"--offline: image {ref} (lock {lock.path}: {record['id'][:19]}) is not on the engine at "
                        f"{engine.host}: bring it with `musa-docker bundle --lock {lock.path} -o BUNDLE` where it is, "
                        "then `musa-docker bundle import BUNDLE` here")
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


def check_offline(plan, say: Say) -> None:
    """Under --offline, before anything is fetched or built: every repo to clone has its git
    bundles in the cache, every artifact is in the download cache (or its local file exists) with
    the locked sha256. Raises LockError naming every input that is not on this machine."""
    missing = []
    bundles = plan.cache_dir / "git-bundles"
    for step in plan.repos:
        if step.action in ("clone", "fetch") and not git.has_bundles(step, bundles):
            missing.append(f"repo {step.name} @ {step.ref} ({step.commit[:12]})")
    for step in plan.artifacts:
        location = step.location
        if location.scheme == "file":
            if not expand_home(location.local_path).is_file():
                missing.append(f"artifact {step.name} {location.display}")
            continue
        entry = cache.Entry.of(plan.cache_dir, location)
        found = cache.look(step.name, entry)
        if found is None or found.sha256 != location.sha256 or found.recorded != found.sha256:
            missing.append(f"artifact {step.name} {location.display}")
    for dest, url, sha256 in plan.offline_files:
        name = dest.rsplit("/", 1)[-1]
        entry = cache.Entry.of(plan.cache_dir, parse_location(url, what=name))
        found = cache.look(name, entry)
        if found is None or found.sha256 != sha256 or found.recorded != found.sha256:
            missing.append(f"{'apt package' if '/apt/' in dest else 'wheel'} {name}")
    if missing:
        raise LockError(f"--offline: {'; '.join(missing)} {'is' if len(missing) == 1 else 'are'} not on this machine: "
                        f"bring {'it' if len(missing) == 1 else 'them'} with `musa-docker bundle --lock {plan.lock} "
                        "-o BUNDLE` where the servers are, then `musa-docker bundle import BUNDLE` here")
    say(f"offline: {len(plan.repos)} repo(s), {len(plan.artifacts)} artifact(s) and {len(plan.offline_files)} apt "
        "package(s) and wheel file(s) of the lock are on this machine")
