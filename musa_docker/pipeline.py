"""One way through every build: plan -> prepare -> build -> check -> tag -> report.

The tasks make the plan; `execute` does the rest. Each step says what it decided in one line
before acting. The image is tagged only after it checks out, and the build dir is cleaned up
(only what the tool made) whatever happens.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, TextIO

from . import build, checks, context, layers, repos
from .context import BuildDir
from .download import Downloader, Fetched
from .engine import Engine
from .locks import EntryLock, lock_for
from .plan import ASSETS, Plan

IN_IMAGE = {"pytorch": "/home/pytorch", "vision": "/home/vision", "torch_musa": "/home/torch_musa"}


@dataclass(frozen=True)
class Report:
    image: str
    image_id: str
    size: int
    seconds: float
    skipped: bool
    log: Optional[Path]
    labels: Dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        what = "up to date, build skipped" if self.skipped else f"built in {self.seconds:.0f}s"
        lines = [f"{self.image}  {self.image_id[7:19]}  {self.size / 1e9:.2f} GB  {what}"]
        if self.log:
            lines.append(f"build log: {self.log}")
        return "\n".join(lines)


@dataclass
class Prepared:
    states: List[repos.RepoState]
    fetched: List[Fetched]
    trees: Dict[str, str]          # repo name -> fingerprint of its tree
    labels: Dict[str, str]
    digest: str


def inputs_digest(plan: Plan, states, fetched, trees) -> str:
    """One digest of everything that decides the image's contents."""
    files = {"Dockerfile": context.file_sha256(plan.build.dockerfile)}
    for name in plan.scripts:
        files[f"common/{name}"] = context.file_sha256(ASSETS / "common" / name)
    doc = {
        "kind": plan.kind,
        "files": files,
        "buildargs": dict(plan.build.buildargs),
        "labels": dict(plan.build.labels),
        "repos": {s.name: {"commit": s.commit, "tree": trees[s.name]} for s in states},
        "artifacts": {f.name: f.sha256 for f in fetched},
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def prepare(plan: Plan, engine_flags: Mapping[str, str], say, downloader: Downloader,
            validate: Optional[Callable[[Sequence[Fetched]], None]] = None,
            held: Optional[ExitStack] = None) -> Prepared:
    """Repos, artifacts and their digests. The repos stay under shared locks that `held` releases
    (their trees are packed later), so that another run cannot move them meanwhile."""
    states = [repos.ensure(step, say, engine_flags.get(step.name, "--root"), locks_dir=plan.cache_dir / "locks",
                           held=held) for step in plan.repos]
    fetched = downloader.fetch_all([(a.name, a.location) for a in plan.artifacts]) if plan.artifacts else []
    if validate:
        validate(fetched)
    trees = {s.name: context.fingerprint(s.path) for s in states}
    digest = inputs_digest(plan, states, fetched, trees)
    labels = dict(plan.build.labels)
    labels.update({f"musa_docker.{s.name}.commit": s.commit for s in states})
    labels.update({f"musa_docker.artifact.{f.name}.sha256": f.sha256 for f in fetched})
    labels["musa_docker.inputs"] = digest
    return Prepared(states, fetched, trees, labels, digest)


def execute(plan: Plan, *, engine: Engine, home: Path, say: Callable[[str], None],
            root_flags: Mapping[str, str], expect: Optional[Mapping] = None,
            validate=None, echo: Optional[TextIO] = sys.stdout) -> Report:
    """Prepare, build, check and tag `plan`'s image. Raises MusaDockerError subclasses. The build
    dir was checked (`BuildDir.check`) before the engine was contacted."""
    with ExitStack() as held:
        return _execute(plan, engine, home, say, root_flags, expect, validate, echo, held)


def _execute(plan, engine, home, say, root_flags, expect, validate, echo, held: ExitStack) -> Report:
    """`execute`, with what it locks (repos, tree tars, the build dir) released by `held`."""
    started = time.monotonic()
    downloader = Downloader(plan.cache_dir, verify=not plan.insecure)
    repo_locks = held.enter_context(ExitStack())
    prep = prepare(plan, root_flags, say, downloader, validate, held=repo_locks)
    ref = plan.build.image

    existing = engine.image(ref)
    if existing and not plan.build.force and existing.labels.get("musa_docker.inputs") == prep.digest:
        say(f"up to date {ref} ({existing.id[7:19]}): same inputs digest {prep.digest[:12]}; --force builds anyway")
        return Report(ref, existing.id, existing.size, time.monotonic() - started, True, None, existing.labels)

    if plan.build_dir is not None:
        # A build dir the user named is one place two runs could share: one waits for the other.
        held.enter_context(EntryLock(lock_for(plan.cache_dir / "locks", "build-dir", plan.build_dir),
                                     f"the build dir {plan.build_dir}", say))
    bd = BuildDir.acquire(plan.build_dir, home, scratch=plan.cache_dir / "builds")
    try:
        say(f"stage context in {bd.path}")
        files = {"Dockerfile": plan.build.dockerfile}
        for step, got in zip(plan.artifacts, prep.fetched):
            files[step.dest] = got.path
        layered = {}
        steps = {step.name: step for step in plan.repos}
        for state in prep.states:
            at = steps[state.name].layer_at
            tar = context.tree_tar(state.path, state.name, plan.cache_dir, say, digest=prep.trees[state.name], at=at,
                                   held=held)
            if at:
                layered[state.name] = (tar, at)
            else:
                files[f"{state.name}.tar"] = tar
        repo_locks.close()     # the trees are packed: other runs may move the repos now
        context.stage(bd, files, {"common": ASSETS / "common", "artifacts": _empty_dir(plan.cache_dir)}, say)

        labels = dict(prep.labels)
        labels["org.opencontainers.image.created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        log = build.BuildLog(build.log_path(plan.cache_dir / "logs", ref), echo=echo)
        say(f"build {ref} on {engine.host}; the whole log goes to {log.path}")
        try:
            built = build.run(
                engine, context.tar_stream(context.dir_entries(bd.path)), log,
                dockerfile="Dockerfile", buildargs=dict(plan.build.buildargs), labels=labels,
                network=plan.build.network, nocache=plan.build.nocache, pull=plan.build.pull,
            )
        finally:
            log.close()
        image_id = built.image_id
        for name, (tar, at) in layered.items():
            say(f"append the {name} tree as one layer at /{at}")
            image_id = layers.append(engine, image_id, tar, f"musa-docker: the {name} tree at /{at}", say)
        say(f"check {image_id[7:19]} against the request")
        checks.check_image(engine, image_id, checks.Expect(
            python_version=plan.python_version,
            labels={k: v for k, v in labels.items() if k.startswith("musa_docker.")},
            **dict(expect or {}),
            trees={s.name: (IN_IMAGE.get(s.name, f"/home/{s.name}"), s.commit) for s in prep.states},
        ))
        engine.tag(image_id, ref)
        image = engine.image(image_id)
        return Report(ref, image_id, image.size, time.monotonic() - started, False, built.log, labels)
    finally:
        if plan.keep_build_dir:
            say(f"kept build dir {bd.path}")
        else:
            bd.remove()


def _empty_dir(cache: Path) -> Path:
    """An empty source dir, so `artifacts/` exists in every context (Dockerfiles COPY it whole)."""
    path = cache / "empty"
    path.mkdir(parents=True, exist_ok=True)
    return path
