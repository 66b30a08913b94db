"""The plan: pure data saying everything a build will do, and nothing done yet.

`--dry-run` prints `Plan.render()` and stops. Facts about the disk that decide the plan
(does the repo dir exist?) are observed by the caller and passed in as `present`, so
building a plan touches no disk, network or engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Tuple

from . import defaults
from .locations import Location
from .options import BaseOptions

ASSETS = Path(__file__).resolve().parent.parent   # the repo root: common/, ubuntu/
PENDING = "<after prepare>"


@dataclass(frozen=True)
class RepoStep:
    """A git repo to reuse or clone, and how it enters the context."""

    name: str                 # "pytorch"; also the label key musa_docker.<name>.commit
    url: str
    ref: str                  # the tag or ref wanted
    path: Path                # where it lives on the host
    action: str               # "reuse" | "clone"
    submodules: bool = True

    @property
    def context_name(self) -> str:
        return f"{self.name}.tar"


@dataclass(frozen=True)
class ArtifactStep:
    name: str                 # "conda_installer"; also the label key musa_docker.artifact.<name>.sha256
    location: Location
    dest: str                 # path inside the context, under artifacts/


@dataclass(frozen=True)
class BuildStep:
    dockerfile: Path          # the source Dockerfile in the repo
    image: str                # name:tag
    buildargs: Tuple[Tuple[str, str], ...]
    labels: Tuple[Tuple[str, str], ...]      # known now; commits, digests and inputs follow in prepare
    network: str
    nocache: bool
    pull: bool
    force: bool
    engine: str               # where the build runs, for people


@dataclass(frozen=True)
class Plan:
    kind: str                 # base | dev | release
    python_version: str
    repos: Tuple[RepoStep, ...]
    artifacts: Tuple[ArtifactStep, ...]
    scripts: Tuple[str, ...]  # files of common/ staged, relative names
    build_dir: Optional[Path]
    keep_build_dir: bool
    cache_dir: Path
    build: BuildStep
    insecure: bool = False
    notes: Tuple[str, ...] = field(default=())

    def render(self) -> str:
        b = self.build
        lines = [f"plan: {self.kind} image {b.image} (python {self.python_version}) on {b.engine}"]
        lines.append("repos:")
        for r in self.repos:
            how = "shallow, submodules recursive" if r.action == "clone" else "HEAD reported, submodules checked"
            lines.append(f"  {r.action:<7} {r.name} {r.url} @ {r.ref} -> {r.path} ({how})")
        if not self.repos:
            lines.append("  (none)")
        lines.append(f"artifacts: (cache {self.cache_dir}{', TLS verification OFF' if self.insecure else ''})")
        for a in self.artifacts:
            sha = f" sha256={a.location.sha256[:12]}…" if a.location.sha256 else ""
            lines.append(f"  fetch   {a.name} {a.location.display}{sha} -> {a.dest}")
        if not self.artifacts:
            lines.append("  (none)")
        where = str(self.build_dir) if self.build_dir else "a fresh temp dir"
        fate = "kept" if self.keep_build_dir else "removed after the build (only what the tool made)"
        lines.append(f"context: {where}, {fate}")
        lines.append(f"  Dockerfile        <- {_rel(b.dockerfile)}")
        lines.append("  .dockerignore")
        lines.append(f"  common/           <- common/ ({len(self.scripts)} files)")
        lines.append("  artifacts/" + "".join(f"\n    {Path(a.dest).name}" for a in self.artifacts))
        for r in self.repos:
            lines.append(f"  {r.context_name:<17} <- {r.path} at HEAD (one tar per commit, kept in the cache)")
        lines.append("build:")
        lines.append(f"  dockerfile  Dockerfile ({_rel(b.dockerfile)})")
        lines.append(f"  tag         {b.image} (tagged only after the image checks out)")
        lines.append(f"  network     {b.network}")
        lines.append(f"  cache       {'off (--no-cache)' if b.nocache else 'on'}; pull {'on' if b.pull else 'off'}")
        lines.append(
            f"  skip        {'never (--force)' if b.force else 'when the image under that tag has the same inputs digest'}"
        )
        for k, v in b.buildargs:
            lines.append(f"  build arg   {k}={v}")
        for k, v in b.labels:
            lines.append(f"  label       {k}={v}")
        for r in self.repos:
            lines.append(f"  label       musa_docker.{r.name}.commit={PENDING}")
        for a in self.artifacts:
            lines.append(f"  label       musa_docker.artifact.{a.name}.sha256={PENDING}")
        lines.append(f"  label       musa_docker.inputs={PENDING}")
        lines.append(f"  label       org.opencontainers.image.created=<build time>")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ASSETS))
    except ValueError:
        return str(path)


def engine_display(docker_host: Optional[str], env) -> str:
    host = docker_host or env.get("DOCKER_HOST")
    if host:
        return host
    context = env.get("DOCKER_CONTEXT")
    return f"docker context {context}" if context else "the local engine (DOCKER_HOST unset)"


def common_scripts() -> Tuple[str, ...]:
    return tuple(sorted(p.name for p in (ASSETS / "common").iterdir() if p.is_file()))


def plan_base(options: BaseOptions, present: Iterable[str], env) -> Plan:
    """The plan of `build-base`. `present` names the repos whose directories already exist."""
    c = options.common
    present = set(present)
    pytorch = RepoStep(
        name="pytorch",
        url=options.pytorch_repo,
        ref=options.pytorch_tag,
        path=options.pytorch_root / "pytorch",
        action="reuse" if "pytorch" in present else "clone",
    )
    artifacts = ()
    if options.conda:
        artifacts = (ArtifactStep("conda_installer", options.conda, "artifacts/conda_installer.sh"),)
    buildargs = (
        ("BASE_IMAGE", options.system.name),
        ("PYTHON_VERSION", options.python_version),
        ("PYTHON_ENV", options.python_env),
        ("PYTHON_PREFIX", options.python_prefix),
        ("APT_MIRROR", c.apt_mirror),
        ("PIP_INDEX_URL", c.pip_index_url),
        ("RENDER_GID", str(defaults.RENDER_GID)),
    )
    labels = (
        ("musa_docker.kind", "base"),
        ("musa_docker.python_version", options.python_version),
        ("musa_docker.python_env", options.python_env),
        ("musa_docker.system", options.system.name),
    )
    return Plan(
        kind="base",
        python_version=options.python_version,
        repos=(pytorch,),
        artifacts=artifacts,
        scripts=common_scripts(),
        build_dir=c.build_dir,
        keep_build_dir=c.keep_build_dir,
        cache_dir=c.cache_dir,
        insecure=c.insecure,
        build=BuildStep(
            dockerfile=ASSETS / defaults.DEFAULTS["docker_file_base"],
            image=str(options.image),
            buildargs=buildargs,
            labels=labels,
            network=c.network,
            nocache=c.no_cache,
            pull=c.pull,
            force=c.force,
            engine=engine_display(c.docker_host, env),
        ),
    )
