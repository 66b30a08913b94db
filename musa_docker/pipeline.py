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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence, TextIO

from . import build, checks, context, layers, repos
from .context import BuildDir
from .download import Downloader, Fetched
from .engine import Engine
from .plan import ASSETS, Plan


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
            validate: Optional[Callable[[Sequence[Fetched]], None]] = None) -> Prepared:
    states = [repos.ensure(step, say, engine_flags.get(step.name, "--root")) for step in plan.repos]
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
            root_flags: Mapping[str, str],
            validate=None, echo: Optional[TextIO] = sys.stdout) -> Report:
    """Prepare, build, check and tag `plan`'s image. Raises MusaDockerError subclasses. The build
    dir was checked (`BuildDir.check`) before the engine was contacted."""
    started = time.monotonic()
    downloader = Downloader(plan.cache_dir, verify=not plan.insecure)
    prep = prepare(plan, root_flags, say, downloader, validate)
    ref = plan.build.image

    existing = engine.image(ref)
    if existing and not plan.build.force and existing.labels.get("musa_docker.inputs") == prep.digest:
        say(f"up to date {ref} ({existing.id[7:19]}): same inputs digest {prep.digest[:12]}; --force builds anyway")
        return Report(ref, existing.id, existing.size, time.monotonic() - started, True, None, existing.labels)

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
            tar = context.tree_tar(state.path, state.name, plan.cache_dir, say, digest=prep.trees[state.name], at=at)
            if at:
                layered[state.name] = (tar, at)
            else:
                files[f"{state.name}.tar"] = tar
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
        checks.check_image(engine, image_id, checks.Expect.of(
            plan.kind, plan.python_version, {k: v for k, v in labels.items() if k.startswith("musa_docker.")},
            {s.name: s.commit for s in prep.states}))
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
