"""One way through every build: observe -> plan -> prepare -> build -> check -> size -> tag -> report.

Each step is a function with plain inputs. `observe` reads what the disk and the engine say,
once; the plan is made from those facts (`plan.make`); `execute` runs the rest; the build step
(`build.image`) runs the builder the plan names. Each step says what it decided in one line before
acting. The image is tagged only after it checks out and fits its size budget, and the build dir
is cleaned up (only what the tool made) whatever happens.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Mapping, Optional, TextIO

from ..fetch import archives, cache, git as repos
from ..fetch import bundle as layout
from . import build, context
from ..check import image as checks, lean, sbom, size
from ..musa import kinds
from ..plan import dockerfile
from ..values import network
from ..resources import COMMON
from .builddir import BuildDir
from .log import BuildLog, log_path
from ..fetch.download import Downloader, Fetched
from ..engine.api import Engine
from ..fetch.locks import EntryLock, lock_for
from ..errors import ChecksumError, LockError
from ..plan.locked import OFFLINE_DIR
from ..plan.plan import Plan
from ..values.locations import parse_location
from ..util import Say, file_sha256, human_size, short_id, write_atomic


@dataclass(frozen=True)
class Report:
    image: str
    image_id: str
    size: int
    seconds: float
    skipped: bool
    log: Optional[Path]
    labels: Dict[str, str] = field(default_factory=dict)
    sizes: Optional[size.Sizes] = None
    sbom: Dict[str, str] = field(default_factory=dict)    # format -> the document beside the build log
    digests: Dict[str, str] = field(default_factory=dict)    # reference -> digest, after --push

    def render(self) -> str:
        what = "up to date, build skipped" if self.skipped else f"built in {self.seconds:.0f}s"
        lines = [f"{self.image}  {short_id(self.image_id)}  {human_size(self.size, 'GB')}  {what}"]
        if self.sizes is not None:
            lines.append(self.sizes.render())
        if self.log:
            lines.append(f"build log: {self.log}")
        return "\n".join(lines)


# --- prepare ---------------------------------------------------------------------------------------

@dataclass
class Prepared:
    states: List[repos.RepoState]
    fetched: List[Fetched]
    trees: Dict[str, str]          # repo name -> fingerprint of its tree
    labels: Dict[str, str]         # the plan's, plus commits, artifact sha256s and musa_docker.inputs
    locked: frozenset = frozenset()    # the repos that are clean checkouts of their locked commits

    @property
    def digest(self) -> str:
        return self.labels["musa_docker.inputs"]


def inputs_digest(plan: Plan, states, fetched, trees) -> str:
    """One digest of everything that decides the image's contents."""
    # online or offline, the same inputs: how the locked bytes reach the RUN steps is no input
    files = {"Dockerfile": hashlib.sha256(dockerfile.for_plan(plan, online=True).encode()).hexdigest()}
    for name in plan.scripts:
        files[f"common/{name}"] = file_sha256(COMMON / name)
    doc = {
        "kind": plan.kind,
        "files": files,
        "buildargs": dict(plan.build.buildargs),
        "labels": dict(plan.build.labels),
        "repos": {s.name: {"commit": s.commit, "tree": trees[s.name]} for s in states},
        "artifacts": {f.name: f.sha256 for f in fetched},
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _locked_checkouts(plan: Plan, states) -> frozenset:
    """The repos that are, under --lock, clean checkouts at their locked commits (git.py checked
    the commits; nothing changed, untracked or ignored besides)."""
    steps = {step.name: step for step in plan.repos}
    return frozenset(s.name for s in states if steps[s.name].commit and s.commit == steps[s.name].commit
                     and repos.is_clean(s.path, ignored=True))


def _locked_trees(plan: Plan, trees: Dict[str, str], locked: frozenset) -> Dict[str, str]:
    """The trees as the inputs digest sees them: a locked checkout (`_locked_checkouts`) is named by
    its commits, which any machine's checkout of them shares, so a build from a lock has one digest
    wherever it runs (and its layer one content, see `context.tree_tar`); any other tree by its
    state on the disk."""
    out = dict(trees)
    for step in plan.repos:
        if step.name in locked:
            commits = json.dumps([step.commit, sorted(step.locked)]).encode()
            out[step.name] = "locked " + hashlib.sha256(commits).hexdigest()
    return out


def _rendered(plan: Plan) -> Path:
    """The rendered Dockerfile as a file in the cache, named by its digest: written once, renamed into
    place, so two runs never see half of one."""
    text = dockerfile.for_plan(plan)
    path = plan.cache_dir / "dockerfiles" / f"{hashlib.sha256(text.encode()).hexdigest()}.Dockerfile"
    if not path.exists():
        write_atomic(path, text)
    return path


def prepare(plan: Plan, say: Say, downloader: Downloader, held: Optional[ExitStack] = None,
            git_echo: Optional[TextIO] = None) -> Prepared:
    """Bring every repo and artifact of the plan to the host and check the vendor archives and
    wheels the plan marks. The repos stay under shared locks that `held` releases (their trees
    are packed later), so that another run cannot move them meanwhile. Raises RepoError,
    DownloadError, ArtifactError; under --offline, LockError when an input is not on this machine."""
    if plan.offline:
        from .locked import check_offline
        check_offline(plan, say)
    states = [repos.ensure(step, say, step.flag, locks_dir=plan.cache_dir / "locks", held=held, echo=git_echo,
                           bundles=plan.cache_dir / "git-bundles")
              for step in plan.repos]
    try:
        fetched = downloader.fetch_all([(a.name, a.location) for a in plan.artifacts]) if plan.artifacts else []
    except ChecksumError as err:
        if not plan.lock:
            raise
        raise LockError(f"{err}; the expected sha256 is the lock {plan.lock}'s: bring the locked file from a bundle, "
                        "or lock again with `musa-docker lock --update NAME`") from err
    checked = [got for step, got in zip(plan.artifacts, fetched) if step.checked]
    if checked:
        archives.check_all(checked, plan.python_version, archives.discard, plan.cache_dir / "checked", say)
    trees = {s.name: context.fingerprint(s.path) for s in states}
    locked = _locked_checkouts(plan, states)
    labels = dict(plan.build.labels)
    labels.update({f"musa_docker.{s.name}.commit": s.commit for s in states})
    labels.update({f"musa_docker.artifact.{f.name}.sha256": f.sha256 for f in fetched})
    labels["musa_docker.inputs"] = inputs_digest(plan, states, fetched, _locked_trees(plan, trees, locked))
    # where each input came from, for the SBOM: not in the digest (the same bytes are the same image)
    labels.update(sbom.provenance_labels(plan))
    return Prepared(states, fetched, trees, labels, locked)


# --- stage, build, check, tag ----------------------------------------------------------------------

def stage(plan: Plan, prep: Prepared, bd: BuildDir, say: Say, held: Optional[ExitStack] = None) -> build.Staged:
    """The context in `bd`: the Dockerfile, common/, the artifacts and the tree tars the Dockerfile
    ADDs; the trees the plan appends as layers are packed but left out of the context. The tree
    tars stay locked (shared) until `held` releases them."""
    say(f"stage context in {bd.path}")
    files = {"Dockerfile": _rendered(plan)}
    for step, got in zip(plan.artifacts, prep.fetched):
        files[step.dest] = got.path
    appended = []
    steps = {step.name: step for step in plan.repos}
    for state in prep.states:
        at = steps[state.name].layer_at
        tar = context.tree_tar(state.path, state.name, plan.cache_dir, say, digest=prep.trees[state.name], at=at,
                               held=held, locked=steps[state.name].url if state.name in prep.locked else None)
        if at:
            appended.append((state.name, tar, at))
        else:
            files[f"{state.name}.tar"] = tar
    if plan.offline and plan.build.builder.kind == "buildkit":
        files.update(_offline_files(plan, say))
    context.stage(bd, files, {"common": COMMON, "artifacts": _empty_dir(plan.cache_dir)}, say)
    labels = dict(prep.labels)
    labels["org.opencontainers.image.created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return build.Staged(bd.path, labels, tuple(appended))


def _offline_files(plan: Plan, say: Say) -> Dict[str, Path]:
    """Under --offline (BuildKit): the context's offline/: each locked apt package and wheel file from
    the download cache (check_offline found them there with their sha256), and the flat apt
    repository's Packages index, written once into the cache under its digest."""
    # the dir is mounted whether or not the lock has anything for this image
    keep = plan.cache_dir / "offline" / "README"
    if not keep.exists():
        write_atomic(keep, "the lock's apt packages and wheels an --offline build's RUN steps take\n")
    out: Dict[str, Path] = {f"{OFFLINE_DIR}/README": keep}
    for dest, url, _ in plan.offline_files:
        out[dest] = cache.Entry.of(plan.cache_dir, parse_location(url)).final
    if plan.offline_apt:
        text = layout.flat_packages([{**dict(control), "Package": p, "Version": v, "Architecture": a, "Filename": n,
                                      "Size": str(size), "SHA256": sha}
                                     for p, v, a, n, size, sha, control in plan.offline_apt])
        path = plan.cache_dir / "offline" / f"{hashlib.sha256(text).hexdigest()}.Packages"
        if not path.exists():
            write_atomic(path, text)
        out[f"{OFFLINE_DIR}/apt/Packages"] = path
    say(f"offline: {len(plan.offline_apt)} apt package(s) and {len(plan.offline_files) - len(plan.offline_apt)} "
        f"wheel file(s) of the lock staged under {OFFLINE_DIR}/, bind-mounted into the RUN steps")
    return out


def check(engine: Engine, plan: Plan, prep: Prepared, image_id: str, labels: Mapping[str, str],
          expect: Optional[Mapping] = None) -> None:
    """The new image against the request: labels, Python, what its kind holds (kinds.py), each
    tree at its commit, and what `expect` adds (the MUSA index's pins). Raises ImageMismatchError."""
    checks.check_image(engine, image_id, checks.Expect.of(
        plan.kind, plan.python_version, {k: v for k, v in labels.items() if k.startswith("musa_docker.")},
        {s.name: s.commit for s in prep.states}, **dict(expect or {})))


@dataclass(frozen=True)
class Shown:
    """How a build shows itself: `echo` gets the build log (None: only its file), `steps` cuts it
    to one line per build step (--progress tty), `bars` draws a bar per download, and `quiet`
    silences the downloads' lines too (-q: only the image id is printed, by the caller)."""

    echo: Optional[TextIO] = sys.stdout
    steps: bool = False
    bars: bool = False
    quiet: bool = False


def execute(plan: Plan, *, engine: Engine, home: Path, say: Say, expect: Optional[Mapping] = None,
            shown: Shown = Shown()) -> Report:
    """Prepare, build, check and tag `plan`'s image. Raises MusaDockerError subclasses. The build
    dir was checked (`BuildDir.check`) before the engine was contacted."""
    with ExitStack() as held:
        return _execute(plan, engine, home, say, expect, shown, held)


def _execute(plan, engine, home, say, expect, shown: Shown, held: ExitStack) -> Report:
    """`execute`, with what it locks (repos, tree tars, the build dir) released by `held`."""
    started = time.monotonic()
    nowhere = held.enter_context(open(os.devnull, "w")) if shown.quiet else None
    downloader = Downloader(plan.cache_dir, verify=not plan.insecure, connections=plan.connections,
                            progress=shown.bars, out=nowhere)
    repo_locks = held.enter_context(ExitStack())
    prep = prepare(plan, say, downloader, held=repo_locks, git_echo=nowhere)
    ref = plan.build.image

    existing = engine.image(ref)
    if existing and not plan.build.force and existing.labels.get("musa_docker.inputs") == prep.digest:
        say(f"up to date {ref} ({short_id(existing.id)}): same inputs digest {prep.digest[:12]}; --force builds anyway")
        for name in plan.build.also:
            engine.tag(existing.id, name)
        if plan.sbom_dir is not None:
            # the image has its SBOM from the build that made it; --sbom DIR still gets the documents
            docs = sbom.documents(sbom.subject(engine, existing.id, ref), sbom.contents(engine, existing.id))
            write_sbom(docs, [plan.sbom_dir / sbom.file_stem(ref)], say)
        return Report(ref, existing.id, existing.size, time.monotonic() - started, True, None, existing.labels,
                      size.measure(engine, existing.id))
    # the image this build replaces under the tag: its layers, for the change per layer
    previous = size.measure(engine, existing.id) if existing else None

    if plan.build_dir is not None:
        # A build dir the user named is one place two runs could share: one waits for the other.
        held.enter_context(EntryLock(lock_for(plan.cache_dir / "locks", "build-dir", plan.build_dir),
                                     f"the build dir {plan.build_dir}", say))
    bd = BuildDir.acquire(plan.build_dir, home, scratch=plan.cache_dir / "builds")
    scratch = None
    if plan.build_dir is None:
        # held while the build runs, so that `cache clean` leaves this dir alone
        scratch = held.enter_context(EntryLock(lock_for(plan.cache_dir / "locks", "build-dir", bd.path), ""))
    secrets_dir = None
    try:
        staged = stage(plan, prep, bd, say, held=held)
        if plan.build.secrets:
            # beside the context, never in it (nor in a --build-dir that is kept): 0700, files 0600
            secrets_dir = Path(tempfile.mkdtemp(prefix="musa-docker-secrets-", dir=plan.cache_dir / "builds"))
            say(f"secrets {', '.join(s.id for s in plan.build.secrets)} in {secrets_dir} (removed after the build)")
            staged = replace(staged, secrets=network.write(plan.build.secrets, secrets_dir))
        repo_locks.close()     # the trees are packed: other runs may move the repos now
        log = BuildLog(log_path(plan.cache_dir / "logs", ref), echo=shown.echo, steps=shown.steps)
        say(f"build {ref} on {engine.host}; the whole log goes to {log.path}")
        try:
            image_id = build.image(engine, plan, staged, log, say)
            say(f"check {short_id(image_id)} against the request")
            check(engine, plan, prep, image_id, staged.labels, expect)
            sizes = size.measure(engine, image_id, previous)
            size.check_budget(sizes, plan.size_budget)
            if kinds.get(plan.kind).lean:
                check_lean(engine, image_id, say)
            image_id = record_sbom(engine, plan, image_id, staged, log, say)
        finally:
            log.close()
        for name in (ref,) + plan.build.also:
            engine.tag(image_id, name)
        image = engine.image(image_id)
        return Report(ref, image_id, image.size, time.monotonic() - started, False, log.path, staged.labels, sizes,
                      {fmt: str(log.path.with_suffix("")) + suffix for fmt, suffix in sbom.SUFFIX.items()})
    finally:
        if secrets_dir is not None:
            shutil.rmtree(secrets_dir, ignore_errors=True)
        if plan.keep_build_dir:
            say(f"kept build dir {bd.path}")
        else:
            bd.remove()
            if scratch is not None:
                scratch.path.unlink(missing_ok=True)     # the dir is gone: so is its lock


def check_lean(engine: Engine, image_id: str, say: Say) -> None:
    """Hold the release image to the lean-release rules before it is tagged (check/lean.py). Raises
    BuildError naming the rules broken; what the wheels bring of their own is said, not failed."""
    theirs = lean.enforce(lean.measure(engine, image_id), image_id)
    if theirs:
        say(f"lean: the wheels bring {len(theirs)} headers and static libraries of their own "
            f"({human_size(sum(f.size for f in theirs))}, e.g. {theirs[0].what}): theirs to ship, not failed")
    else:
        say("lean: none of the rules is broken")


def record_sbom(engine: Engine, plan: Plan, image_id: str, staged: build.Staged, log: BuildLog, say: Say) -> str:
    """Write the checked image's SBOM (sbom.py) beside the build log and in --sbom DIR, and label
    the image with each document's sha256 (added to `staged.labels`). Returns the labelled image's id.
    Raises EngineError, ImageMismatchError (the image's python does not run), OSError of the disk."""
    ref = plan.build.image
    docs = sbom.documents(sbom.subject(engine, image_id, ref, before_labels=True), sbom.contents(engine, image_id))
    stems = [log.path.with_suffix("")] + ([plan.sbom_dir / sbom.file_stem(ref)] if plan.sbom_dir else [])
    write_sbom(docs, stems, say)
    added = {sbom.LABEL[fmt]: hashlib.sha256(data).hexdigest() for fmt, data in docs.items()}
    return build.relabel(engine, plan, staged, image_id, added, log, say)


def write_sbom(docs: Mapping[str, bytes], stems, say: Say) -> None:
    """Each document at each `stem` + its suffix (`.cdx.json`, `.spdx.json`)."""
    for stem in stems:
        for fmt, data in docs.items():
            write_atomic(Path(str(stem) + sbom.SUFFIX[fmt]), data)
    say(f"sbom {', '.join(str(stem) + '.{cdx,spdx}.json' for stem in stems)}")


def _empty_dir(cache: Path) -> Path:
    """An empty source dir, so `artifacts/` exists in every context (Dockerfiles COPY it whole)."""
    path = cache / "empty"
    path.mkdir(parents=True, exist_ok=True)
    return path
