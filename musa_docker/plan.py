"""The plan: pure data saying everything a build will do, and nothing done yet.

`--dry-run` prints `Plan.render()` and stops. Facts about the disk that decide the plan
(does the repo dir exist?) are observed by the caller and passed in as `present`, so
building a plan touches no disk, network or engine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Tuple

from . import defaults, kinds
from .locations import Location, redact, strip_credentials
from .options import BaseOptions, DevOptions, ReleaseOptions

ASSETS = Path(__file__).resolve().parent.parent   # the repo root: common/, ubuntu/
PENDING = "<after prepare>"
FROM_BASE = "<the base image's>"


@dataclass(frozen=True)
class RepoStep:
    """A git repo to reuse or clone, and how it enters the context."""

    name: str                 # "pytorch"; also the label key musa_docker.<name>.commit
    url: str
    ref: str                  # the tag or ref wanted
    path: Path                # where it lives on the host
    action: str               # "reuse" (a dir found at the root) | "clone" (into the root) |
                              # "use" (a repo the user named: never cloned) | "fetch" (the tool's own clone)
    submodules: bool = True
    layer_at: Optional[str] = None   # "home/pytorch": appended to the built image as one layer, not ADDed

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
            how = {"clone": "shallow, submodules recursive", "reuse": "HEAD reported, submodules checked",
                   "use": "as it is: HEAD reported, submodules checked",
                   "fetch": "into the tool's own clone, shallow, submodules recursive"}[r.action]
            lines.append(f"  {r.action:<7} {r.name} {redact(r.url)} @ {r.ref} -> {r.path} ({how})")
        if not self.repos:
            lines.append("  (none)")
        lines.append(f"artifacts: (cache {self.cache_dir}{', TLS verification OFF' if self.insecure else ''})")
        for a in self.artifacts:
            sha = f" sha256={a.location.sha256[:12]}…" if a.location.sha256 else ""
            lines.append(f"  fetch   {a.name} {a.location.display}{sha} -> {a.dest}")
        if not self.artifacts:
            lines.append("  (none)")
        where = str(self.build_dir) if self.build_dir else f"a fresh dir under {self.cache_dir / 'builds'}"
        fate = "kept" if self.keep_build_dir else "removed after the build (only what the tool made)"
        lines.append(f"context: {where}, {fate}")
        lines.append(f"  Dockerfile        <- {_rel(b.dockerfile)}")
        lines.append("  .dockerignore")
        lines.append(f"  common/           <- common/ ({len(self.scripts)} files)")
        lines.append("  artifacts/" + "".join(f"\n    {Path(a.dest).name}" for a in self.artifacts))
        for r in self.repos:
            if r.layer_at:
                continue
            lines.append(f"  {r.context_name:<17} <- {r.path} (one tar per tree state, kept in the cache)")
        lines.append("build:")
        lines.append(f"  dockerfile  Dockerfile ({_rel(b.dockerfile)})")
        for r in self.repos:
            if r.layer_at:
                lines.append(f"  then        {r.name} tree from {r.path} appended as one layer at /{r.layer_at} "
                             "(one tar per tree state, kept in the cache)")
        lines.append(f"  tag         {b.image} (tagged only after the image checks out)")
        lines.append(f"  check       {kinds.get(self.kind).describe()}")
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
        lines.append("  label       org.opencontainers.image.created=<build time>")
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


def _plan(kind, common, *, python_version, repos, artifacts, dockerfile, image, buildargs, labels, env) -> Plan:
    return Plan(
        kind=kind,
        python_version=python_version,
        repos=tuple(repos),
        artifacts=tuple(artifacts),
        scripts=common_scripts(),
        build_dir=common.build_dir,
        keep_build_dir=common.keep_build_dir,
        cache_dir=common.cache_dir,
        insecure=common.insecure,
        build=BuildStep(
            dockerfile=dockerfile,
            image=str(image),
            buildargs=tuple(buildargs),
            labels=tuple(labels),
            network=common.network,
            nocache=common.no_cache,
            pull=common.pull,
            force=common.force,
            engine=engine_display(common.docker_host, env),
        ),
    )


def _env_buildargs(base: str, o) -> tuple:
    """The build args of an image that makes its own Python env (base and release)."""
    return (
        ("BASE_IMAGE", base),
        ("PYTHON_VERSION", o.python_version),
        ("PYTHON_ENV", o.python_env),
        ("PYTHON_PREFIX", o.python_prefix),
        ("APT_MIRROR", o.common.apt_mirror),
        ("PIP_INDEX_URL", o.common.pip_index_url),
        ("RENDER_GID", str(defaults.RENDER_GID)),
    )


def _env_labels(kind: str, o) -> tuple:
    """The labels of an image that makes its own Python env (base and release)."""
    return (
        ("musa_docker.kind", kind),
        ("musa_docker.python_version", o.python_version),
        ("musa_docker.python_env", o.python_env),
        ("musa_docker.system", o.system.name),
    )


def _conda_step(o) -> tuple:
    return (ArtifactStep("conda_installer", o.conda, "artifacts/conda_installer.sh"),) if o.conda else ()


VENDOR_DEST = {"musa_toolkits": "artifacts/musa_toolkits.tar.gz", "mudnn": "artifacts/mudnn.tar",
               "mccl": "artifacts/mccl.tar.gz"}


def _vendor_steps(vendor) -> tuple:
    given = {"musa_toolkits": vendor.musa, "mudnn": vendor.mudnn, "mccl": vendor.mccl}
    return tuple(ArtifactStep(name, loc, VENDOR_DEST[name]) for name, loc in given.items() if loc)


def _source_repo(name: str, url: str, ref: str, root: Path, present, layer_at: Optional[str] = None) -> RepoStep:
    path = root / name
    return RepoStep(name=name, url=url, ref=ref, path=path, action="reuse" if name in present else "clone",
                    layer_at=layer_at)


def plan_base(options: BaseOptions, present: Iterable[str], env) -> Plan:
    """The plan of `build-base`. `present` names the repos whose directories already exist."""
    o = options
    return _plan(
        "base", o.common, python_version=o.python_version,
        # PyTorch's ~100k files: one layer, written once by the engine (see layers.py)
        repos=[_source_repo("pytorch", o.pytorch_repo, o.pytorch_tag, o.pytorch_root, set(present),
                            kinds.get("base").trees["pytorch"].lstrip("/"))],
        artifacts=_conda_step(o),
        dockerfile=ASSETS / "ubuntu" / "dockerfile.base",
        image=o.image,
        buildargs=_env_buildargs(o.system.name, o),
        labels=_env_labels("base", o),
        env=env,
    )


def torch_musa_step(o, present) -> RepoStep:
    """torch_musa: a local repo is used as it is; a URL is fetched into a clone the tool owns."""
    ref = o.torch_musa_ref or "HEAD"
    if o.torch_musa_local:
        return RepoStep("torch_musa", o.torch_musa_repo, ref, Path(o.torch_musa_repo), "use")
    key = hashlib.sha256(strip_credentials(o.torch_musa_repo).encode()).hexdigest()[:12]
    path = o.common.cache_dir / "repos" / f"torch_musa-{key}"
    return RepoStep("torch_musa", o.torch_musa_repo, ref, path, "fetch")


def plan_dev(options: DevOptions, present: Iterable[str], env, python_version: Optional[str] = None) -> Plan:
    """The plan of `build-dev`. `python_version` is the base image's, once the engine was asked."""
    o = options
    present = set(present)
    return _plan(
        "dev", o.common, python_version=python_version or FROM_BASE,
        repos=[torch_musa_step(o, present), _source_repo("vision", o.vision_repo, o.vision_tag, o.vision_root, present)],
        artifacts=_vendor_steps(o.vendor),
        dockerfile=o.dockerfile,
        image=o.image,
        buildargs=(("BASE_IMAGE", o.base_img), ("PIP_INDEX_URL", o.common.pip_index_url)),
        labels=(
            ("musa_docker.kind", "dev"),
            ("musa_docker.python_version", python_version or FROM_BASE),
            ("musa_docker.base_image", o.base_img),
        ),
        env=env,
    )


def plan_release(options: ReleaseOptions, env) -> Plan:
    o = options
    wheels = (
        # a dir each: the Dockerfile installs them in a step each, torch first
        ArtifactStep("torch_wheel", o.torch_whl, f"artifacts/wheels/torch/{o.torch_whl.filename}"),
        ArtifactStep("torch_musa_wheel", o.torch_musa_whl, f"artifacts/wheels/torch_musa/{o.torch_musa_whl.filename}"),
    )
    return _plan(
        "release", o.common, python_version=o.python_version,
        repos=(),
        artifacts=_vendor_steps(o.vendor) + _conda_step(o) + wheels,
        dockerfile=o.dockerfile,
        image=o.image,
        buildargs=_env_buildargs(o.system.name, o),
        labels=_env_labels("release", o),
        env=env,
    )
