"""A plan under `--lock FILE`: each input at what the lock records, and the lock named as its source.

Pure, as the plan is: the lock was read with the options, and what the servers and the engine say
now is compared with it later (prepare: git.py for the repos, the downloader for the artifacts'
sha256, observe for the apt index, the pip index and the base image). An input of the plan that
the lock does not record is an error now, before anything is fetched: a flag that disagrees with
the lock (another tag, another URL) is exactly such an input.
"""

from __future__ import annotations

from dataclasses import replace
from typing import List, Tuple

from ..errors import LockError
from ..musa import sdk
from ..values.locations import redact


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
    notes = plan.notes
    base = args.get("BASE_IMAGE")
    image = lock.image(base) if base else None
    if image is not None:
        rows.append((f"image {base}", image["id"], source))
    elif base:
        notes += (f"the lock {lock.path} does not record {base} (the engine did not have it when it was locked, or "
                  "another image of the matrix makes it): it is taken as the engine has it",)
    if offline:
        notes += ("offline: nothing is fetched on this machine: the repos from imported git bundles, the artifacts "
                  "from the download cache, the base image from the engine, the apt and MUSA wheel versions as the "
                  "lock records them; the build's RUN steps still reach the servers its build args name",)
    return replace(plan, repos=tuple(repos), artifacts=tuple(artifacts), inputs=plan.inputs + tuple(rows),
                   notes=notes, lock=lock.path, offline=offline, build=build)
