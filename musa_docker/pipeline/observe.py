"""The first step of a build: what the disk and the engine say, read once, as plain facts the
plan is made from. The disk is read first, before the engine is contacted, so a repo root that
can never work is refused without one; a dry run reads the disk alone. With the engine come the
base image's Python, the apt SDK's versions and the MUSA index's answer for each requirement, all
before the first build step. Imports no Docker SDK."""

from __future__ import annotations

import dataclasses
from typing import Optional

from ..fetch import git as repos
from ..fetch import pipindex
from ..fetch.download import local_file
from ..musa import sdk
from ..errors import ConfigError, EngineError
from ..values.locations import redact
from ..options.build import DevOptions, ReleaseOptions
from ..plan.plan import Facts, local_repos
from ..util import Say


def observe_disk(options) -> Facts:
    """Which repo dirs exist, their roots checked first, and what each holds (its origin, HEAD and
    changes, read only). Raises RepoError."""
    candidates = local_repos(options)
    for step in candidates:
        repos.check_root(step, step.flag)
    present = [s for s in candidates if s.path.exists()]
    checkouts = tuple((s.name, seen) for s in present for seen in [repos.look(s.path, s.ref)] if seen)
    return Facts(present=frozenset(s.name for s in present), checkouts=checkouts)


def check_local_files(plan) -> None:
    """Every input given as a local path is a file now, as prepare will read it: a dry run refuses
    what the build would. Raises DownloadError naming the input."""
    for step in plan.artifacts:
        if step.location.scheme == "file":
            local_file(step.name, step.location)


def observe_engine(options, facts: Facts, engine, say: Say) -> Facts:
    """`facts` with what the engine says: a dev image's base image's Python and whether it has
    the MUSA SDK already; with an apt source, the versions its index offers for the image's
    platform (--platform, else the engine's). Raises EngineError, ConfigError or DownloadError."""
    if isinstance(options, DevOptions):
        facts = dataclasses.replace(facts, python_version=base_python(engine, options.base_img, say,
                                                                      pull=not options.common.offline))
        if options.stack.apt:
            facts = dataclasses.replace(facts, base_has_sdk=sdk.base_has_sdk(engine, options.base_img, say))
    lock = options.common.lock
    if isinstance(options, (DevOptions, ReleaseOptions)) and options.stack.apt and not facts.base_has_sdk:
        arch = options.common.platform.deb_arch
        if lock is not None and options.common.offline:
            facts = dataclasses.replace(facts, apt=sdk.locked_apt(options.stack, lock, arch))
        elif lock is not None:
            facts = dataclasses.replace(facts, apt=sdk.check_locked_apt(
                options.stack, lock, arch, insecure=options.common.insecure, say=say))
        else:
            facts = dataclasses.replace(facts, apt=sdk.resolve_apt_versions(
                options.stack, arch, insecure=options.common.insecure, say=say))
    offline = lock is not None and options.common.offline
    if isinstance(options, (DevOptions, ReleaseOptions)) and options.stack.wheels and not offline:
        python = facts.python_version if isinstance(options, DevOptions) else options.python_version
        ask_musa_index(options.stack, python, insecure=options.common.insecure, say=say)
    if lock is not None:
        from . import locked       # the checks of --lock against the engine and the pip index
        locked.check(options, lock, engine, say)
    return facts


def ask_musa_index(stack, python: Optional[str], *, insecure: bool, say: Say) -> None:
    """Every --musa-wheel requirement, asked of the MUSA index from the host before the build: one
    the index cannot satisfy (no such version, no wheel for the image's Python, no answer) is one
    error naming it, not a failed pip step deep in the build. Raises ConfigError."""
    import requests
    index = stack.pip_index_secret or stack.pip_index_url
    with requests.Session() as session:
        session.verify = not insecure
        for wheel in stack.wheels:
            why = pipindex.missing(index, wheel.requirement, session, python)
            if why:
                raise ConfigError(f"--musa-wheel {wheel.requirement}: {why}; pin a version the index has, "
                                  "or check --musa-pip-index-url")
    say(f"musa index {redact(stack.pip_index_url)} has {', '.join(w.requirement for w in stack.wheels)}"
        f"{f' for Python {python}' if python else ''}")


def base_python(engine, ref: str, say: Say, pull: bool = True) -> str:
    """The Python version of the base image `ref`, pulling it when the engine lacks it (unless
    `pull` is off: --offline)."""
    image = engine.image(ref)
    if image is None and not pull:
        raise EngineError(f"-b/--base-img {ref}: the engine at {engine.host} does not have it, and --offline pulls "
                          "nothing: import the bundle that holds it (`musa-docker bundle import`), or build it here")
    if image is None:
        say(f"pull {ref}: the engine at {engine.host} does not have it")
        try:
            engine.pull(ref)
        except EngineError as err:
            raise EngineError(
                f"-b/--base-img {ref}: the engine at {engine.host} does not have it and cannot pull it "
                f"({err}); build it with build-base, or check the name"
            ) from err
        image = engine.image(ref)
    version = image.labels.get("musa_docker.python_version")
    if version:
        return version
    from ..check.probe import run_python, spec     # the one in-image probe; loads the engine's module
    seen = run_python(engine, image.id, spec())
    if seen.info is None:
        raise EngineError(f"-b/--base-img {ref} has no `python` on PATH: is it a base image made by build-base?")
    return ".".join(seen.info["version"].split(".")[:2])
