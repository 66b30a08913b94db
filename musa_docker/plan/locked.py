"""A plan under `--lock FILE`: each input at what the lock records, and the lock named as its source.

Pure, as the plan is: the lock was read with the options, and what the servers and the engine say
now is compared with it later (prepare: git.py for the repos, the downloader for the artifacts'
sha256, observe for the apt index, the pip index and the base image). An input of the plan that
the lock does not record is an error now, before anything is fetched: a flag that disagrees with
the lock (another tag, another URL) is exactly such an input.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import PurePosixPath
from typing import Dict, List, Optional, Tuple

from ..errors import LockError
from ..musa import sdk
from ..values import lockfile
from ..values.locations import redact
from .dockerfile import OFFLINE_TARGET

# The plan's kind -> common/install_base.sh's sets its image installs from the OS image, each with the
# build arg that carries the set's locked transaction: a release's stages install `runtime` (with
# python3-venv, to make the env) and its final image `release` (without it, for the lean rules).
SETS = {"base": (("build", "OS_APT_PACKAGES"),),
        "release": (("runtime", "OS_APT_PACKAGES"), ("release", "OS_APT_RELEASE_PACKAGES"))}
OFFLINE_DIR = "offline"      # in the context, under --offline: the lock's apt packages and wheels


def sets_of(kind: str) -> Tuple[str, ...]:
    """install_base.sh's sets the image of `kind` installs from its OS image; none for dev."""
    return tuple(name for name, _ in SETS.get(kind, ()))


def _absent(lock, what: str) -> LockError:
    return LockError(f"the lock {lock.path} has no {what}: a flag or pin differs from what was locked; give the "
                     "locked values, or lock these flags with `musa-docker lock`")


def apt(stack, lock):
    """The apt versions the lock records, for a plan made before the index is read (a dry run)."""
    return sdk.locked_apt(stack, lock)


def apply(plan, lock, offline: bool = False):
    """`plan` with its repos at the locked commits (git.py checks them), its artifacts carrying
    the locked sha256 (the downloader verifies it), and a `(lock FILE)` row per locked input.
    Raises LockError for an input the lock does not record, or records otherwise."""
    source = lock.source
    rows: List[Tuple[str, str, str]] = []
    repos = []
    for step in plan.repos:
        record = lock.repo(step.name, step.url, step.ref)
        if record is None:
            raise _absent(lock, f"{step.name} {redact(step.url)} @ {step.ref}")
        repos.append(replace(step, commit=record["commit"], lock=lock.path,
                             locked=tuple((s["path"], s["commit"]) for s in record.get("submodules", []))))
        rows.append((f"{step.name} commit", record["commit"], source))
    artifacts = []
    for step in plan.artifacts:
        record = lock.artifact(step.location.url)
        if record is None:
            raise _absent(lock, f"artifact {step.name} {step.location.display}")
        if step.location.sha256 and step.location.sha256 != record["sha256"]:
            raise LockError(f"{step.name} {step.location.display} asks for #sha256={step.location.sha256[:16]}…, the "
                            f"lock {lock.path} records {record['sha256'][:16]}…: give one of them")
        artifacts.append(replace(step, location=replace(step.location, sha256=record["sha256"])))
        rows.append((f"{step.name} sha256", record["sha256"], source))
    args = dict(plan.build.buildargs)
    if args.get("MUSA_SDK") == sdk.SDK_APT:
        rows += [(f"apt {name}", version, source) for name, _, version in
                 (spec.partition("=") for spec in args.get("MUSA_APT_PACKAGES", "").split())]
    hashes = []
    for requirement in args.get("MUSA_WHEELS", "").split():
        record = lock.pip(args.get("MUSA_PIP_INDEX_URL", ""), requirement)
        if record is None:
            raise _absent(lock, f"pip distribution {requirement} from {redact(args.get('MUSA_PIP_INDEX_URL', ''))}")
        rows.append((f"pip {record['name']}", f"{record['version']} ({len(record['files'])} files, sha256 each)",
                     source))
        # pip in the build takes only a file of these sha256s (--require-hashes)
        hashes.append(f"{requirement}@{','.join(sorted(f['sha256'] for f in record['files']))}")
    build = plan.build
    if hashes:
        build = replace(build, buildargs=tuple((k, " ".join(hashes) if k == "MUSA_WHEEL_HASHES" else v)
                                               for k, v in build.buildargs))
    base = args.get("BASE_IMAGE")
    notes = plan.notes
    files, stanzas, more, absent = _offline_inputs(plan, lock, args, base, rows, offline)
    build = replace(build, buildargs=tuple((k, more.get(k, v)) for k, v in build.buildargs) +
                    tuple((k, v) for k, v in more.items() if k not in args))
    notes += tuple(f"the lock {lock.path} records no {what} (it was written before they were locked): "
                   "they come from where the build's network reaches; lock again to record them" for what in absent)
    image = lock.image(base) if base else None
    if image is not None:
        rows.append((f"image {base}", image["id"], source))
    elif base:
        notes += (f"the lock {lock.path} does not record {base} (the engine did not have it when it was locked, or "
                  "another image of the matrix makes it): it is taken as the engine has it",)
    if offline and build.builder.kind == "buildkit" and plan.kind == "dev" and not more.get("PIP_LOCKED"):
        notes += ("offline: nothing is fetched on this machine: the repos from imported git bundles, the artifacts, "
                  "the MUSA SDK's apt packages and MUSA wheels from the download cache (bind-mounted into the RUN "
                  "steps), the base image from the engine; what the dev image's own steps take from the public "
                  "index is not locked, so its RUN steps keep the build's network",)
    elif offline and build.builder.kind == "buildkit":
        build = replace(build, network="none")
        notes += ("offline: nothing is fetched on this machine: the repos from imported git bundles, the artifacts, "
                  "apt packages and wheels from the download cache, the base image from the engine; the RUN steps "
                  f"run with no network, the lock's apt packages and wheels bind-mounted at {OFFLINE_TARGET} "
                  f"({len(stanzas)} .deb, {len(files) - len(stanzas)} wheel file(s))",)
    elif offline:
        notes += ("offline: nothing is fetched on this machine: the repos from imported git bundles, the artifacts "
                  "from the download cache, the base image from the engine; the classic builder cannot mount the "
                  "bundle's apt repository and wheelhouses into RUN steps, so they keep the build's network "
                  "(--builder buildkit builds with none)",)
        files, stanzas = (), ()
    return replace(plan, repos=tuple(repos), artifacts=tuple(artifacts), inputs=plan.inputs + tuple(rows),
                   notes=notes, lock=lock.path, offline=offline, build=build,
                   offline_files=tuple(files) if offline else (), offline_apt=tuple(stanzas) if offline else ())


def _offline_inputs(plan, lock, args, base: Optional[str], rows: List[Tuple[str, str, str]], offline: bool):
    """The OS image's locked apt transaction and the public index's locked distributions as build args
    (OS_APT_PACKAGES, PIP_LOCKED: what install_base.sh and pip take, online or offline), with a plan
    row each; and every apt package and wheel file the build's RUN steps take, as (context path, URL,
    sha256) and the apt stanzas of the context's flat repository. Raises LockError for an input the
    lock lacks; a lock with no record of the section at all (written before the section was) is taken
    as not locking it, and named in `absent`, unless the build is --offline."""
    files: List[Tuple[str, str, str]] = []
    stanzas: List[tuple] = []
    more: Dict[str, str] = {}
    absent: List[str] = []
    arch = plan.build.platform and _deb_arch(plan.build.platform)

    def deb(package, version, architecture, filename, size, sha256, url, control=None):
        name = PurePosixPath(filename).name
        if all(f[0] != f"{OFFLINE_DIR}/apt/{name}" for f in files):
            files.append((f"{OFFLINE_DIR}/apt/{name}", url, sha256))
            stanzas.append((package, version, architecture, name, int(size or 0), sha256,
                            tuple(sorted((control or {}).items()))))

    sets = SETS.get(plan.kind, ()) if base else ()
    if sets and not lock.data.get("os_apt") and not offline:
        absent.append("apt packages of the OS image")
    for set_name, arg in sets if lock.data.get("os_apt") or offline else ():
        found = [r for r in lock.data.get("os_apt", ()) if r["image"] == base and r["set"] == set_name
                 and (not arch or r["arch"] == arch)]
        if len(found) != 1:
            raise _absent(lock, f"os_apt record of {base}'s {set_name} packages{' for ' + arch if arch else ''}")
        record = found[0]
        for p in record["packages"]:
            deb(p["package"], p["version"], p.get("architecture", ""), p["filename"], p.get("size", 0), p["sha256"],
                p["url"], p.get("control"))
        more[arg] = " ".join(lockfile.apt_pins(record))
        rows.append((f"apt {base} {set_name}", f"{len(record['packages'])} packages (sha256 each)", lock.source))
    if args.get("MUSA_SDK") == sdk.SDK_APT:
        wanted = {spec.partition("=")[0] for spec in args.get("MUSA_APT_PACKAGES", "").split()}
        for record in lock.data.get("apt", ()):
            if record.get("url") and (not arch or record["arch"] == arch) and \
                    wanted & {p["package"] for p in record["packages"]}:
                for p in record["packages"]:
                    deb(p["package"], p["version"], p.get("architecture", ""), p["filename"], p.get("size", 0),
                        p["sha256"], f"{record['url']}/{p['filename']}", p.get("control"))
    for requirement in args.get("MUSA_WHEELS", "").split():
        record = lock.pip(args.get("MUSA_PIP_INDEX_URL", ""), requirement) or {"files": []}
        files += [(f"{OFFLINE_DIR}/pip/musa/{f['filename']}", f["url"], f["sha256"]) for f in record["files"]]
    index = args.get("PIP_INDEX_URL") or lockfile.PUBLIC_INDEX
    pip_set = lock.pip_set(lockfile.image_name(plan.build.image), index)
    if plan.kind in ("base", "release") and not lock.data.get("pip_sets") and not offline:
        absent.append("distributions of the public index")
    elif plan.kind in ("base", "release") or pip_set is not None:
        if pip_set is None:
            raise _absent(lock, f"pip set of {lockfile.image_name(plan.build.image)} from {redact(index)}")
        for requirement in pip_set["requirements"]:
            record = lock.pip(index, requirement)
            files += [(f"{OFFLINE_DIR}/pip/public/{f['filename']}", f["url"], f["sha256"]) for f in record["files"]]
        more["PIP_LOCKED"] = " ".join(pip_set["requirements"])
        rows.append((f"pip {redact(index)}", " ".join(pip_set["requirements"]) or "(nothing)", lock.source))
    return files, stanzas, more, absent


def _deb_arch(platform: str) -> str:
    from ..values.platforms import parse
    return parse(platform).deb_arch
