"""The plan: pure data saying everything a build will do, and nothing done yet.

`--dry-run` prints `Plan.render()` and stops. Facts about the disk that decide the plan
(does the repo dir exist?) are observed by the caller and passed in as `present`, so
building a plan touches no disk, network or engine.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import FrozenSet, Iterable, Mapping, Optional, Tuple, Union

from ..engine import docker_cli as client
from . import locked
from .. import defaults
from ..musa import kinds, lines
from ..values import network
from ..resources import ASSETS, DOCKERFILE_BASE, common_scripts
from ..engine.docker_cli import Builder, BuildSettings
from ..musa.sdk import plan_stack, uses_mccl
from ..errors import ConfigError
from ..values.locations import Location, redact, strip_credentials
from ..values.refs import registry_of
from ..options.build import BaseOptions, DevOptions, ReleaseOptions
from ..util import human_size

PENDING = "<after prepare>"
FROM_BASE = "<the base image's>"


class RepoAction(str, Enum):
    """How a repo is brought to the build; the value is what the plan prints."""

    REUSE = "reuse"           # a dir found at the root
    CLONE = "clone"           # into the root
    USE = "use"               # a repo the user named: never cloned
    FETCH = "fetch"           # the tool's own clone

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class RepoStep:
    """A git repo to reuse or clone, and how it enters the context."""

    name: str                 # "pytorch"; also the label key musa_docker.<name>.commit
    url: str
    ref: str                  # the tag or ref wanted
    path: Path                # where it lives on the host
    action: RepoAction
    submodules: bool = True
    layer_at: Optional[str] = None   # "home/pytorch": appended to the built image as one layer, not ADDed
    flag: str = "--root"      # the flag the path came from, named in errors about it
    commit: Optional[str] = None             # --lock: the commit it must be at
    locked: Tuple[Tuple[str, str], ...] = ()  # --lock: (path, commit) of each submodule, recursively
    lock: str = ""                            # --lock: the lock file, as errors name it

    def __post_init__(self):
        object.__setattr__(self, "action", RepoAction(self.action))   # "clone" is accepted, and checked

    @property
    def context_name(self) -> str:
        return f"{self.name}.tar"


@dataclass(frozen=True)
class ArtifactStep:
    name: str                 # "conda_installer"; also the label key musa_docker.artifact.<name>.sha256
    location: Location
    dest: str                 # path inside the context, under artifacts/
    checked: bool = False     # a vendor archive or wheel: its shape is checked before the build


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
    builder: Builder = Builder("classic", "--builder classic")
    secrets: Tuple[network.Secret, ...] = ()  # BuildKit secrets: ids and sources, values never shown
    proxies: Tuple[Tuple[str, str], ...] = ()  # the host's proxies: build args kept out of the history
    also: Tuple[str, ...] = ()                 # more references the image gets (-t given again)
    push: bool = False                         # push every reference after the check (and --verify)
    attest: bool = False                       # then attach the SBOM beside each pushed reference
    platform: str = ""                         # linux/arm64: the base image's and the image's

    @property
    def refs(self) -> Tuple[str, ...]:
        """Every reference the image gets: the first -t, then the others."""
        return (self.image,) + self.also

    def settings(self, labels: Mapping[str, str], proxies: Mapping[str, str]) -> BuildSettings:
        """What the builder is told for the staged Dockerfile: the build args with the proxies (Docker's
        predefined args: out of the history and the inputs digest), and every label."""
        return BuildSettings("Dockerfile", {**dict(self.buildargs), **dict(proxies)}, dict(labels), self.network,
                             self.nocache, self.pull, self.platform)


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
    connections: int = defaults.CONNECTIONS
    notes: Tuple[str, ...] = field(default=())
    inputs: Tuple[Tuple[str, str, str], ...] = field(default=())   # (input, value, where it came from)
    config_files: Tuple[str, ...] = field(default=())              # read by the cascade, highest first
    lock: str = ""                                                 # --lock: the lock file, as errors name it
    offline: bool = False                                          # --offline: every input from this machine
    # --offline with BuildKit: the lock's apt packages and wheels the RUN steps take, as (context path,
    # URL, sha256), and the stanzas (package, version, arch, file name, size, sha256, the control fields apt
    # orders by) of the flat apt repo
    offline_files: Tuple[Tuple[str, str, str], ...] = field(default=())
    offline_apt: Tuple[tuple, ...] = field(default=())
    size_budget: Optional[int] = None      # bytes unpacked the image may hold (--size-budget)
    sbom_dir: Optional[Path] = None        # --sbom DIR: the SBOM documents are written there too

    def render(self) -> str:
        b = self.build
        lines = [f"plan: {self.kind} image {b.image} (python {self.python_version}) on {b.engine}"]
        if self.inputs:
            lines.append("inputs:")
            lines.extend(f"  {name:<19} {value}  ({source})" for name, value, source in self.inputs)
        if self.config_files:
            lines.append(f"config: {', '.join(self.config_files)}")
        lines.append("repos:")
        for r in self.repos:
            how = {RepoAction.CLONE: "shallow, submodules recursive",
                   RepoAction.REUSE: "HEAD reported, submodules checked",
                   RepoAction.USE: "as it is: HEAD reported, submodules checked",
                   RepoAction.FETCH: "into the tool's own clone, shallow, submodules recursive"}[r.action]
            at = f" = {r.commit[:12]} (lock {r.lock})" if r.commit else ""
            lines.append(f"  {r.action.value:<7} {r.name} {redact(r.url)} @ {r.ref}{at} -> {r.path} ({how})")
        if not self.repos:
            lines.append("  (none)")
        lines.append(f"artifacts: (cache {self.cache_dir}, {self.connections} connections for large files"
                     f"{', TLS verification OFF' if self.insecure else ''})")
        for a in self.artifacts:
            sha = f" sha256={a.location.sha256[:12]}…" if a.location.sha256 else ""
            lines.append(f"  fetch   {a.name} {a.location.display}{sha} -> {a.dest}")
        if not self.artifacts:
            lines.append("  (none)")
        where = str(self.build_dir) if self.build_dir else f"a fresh dir under {self.cache_dir / 'builds'}"
        fate = "kept" if self.keep_build_dir else "removed after the build (only what the tool made)"
        lines.append(f"context: {where}, {fate}")
        lines.append(f"  Dockerfile        <- {_rel(b.dockerfile)}, its {b.builder.kind} rendering (musa_docker/plan/dockerfile.py)")
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
        lines.extend(f"  tag         {ref} (the same image)" for ref in b.also)
        if b.push:
            lines.extend(f"  push        {ref} to {registry_of(ref)} (after the check and --verify; credentials "
                         "from the docker config)" for ref in b.refs)
        if b.attest:
            lines.append("  attest      the SBOM beside each pushed tag: SPDX and CycloneDX in-toto statements in "
                         "the tag's image index, as BuildKit stores attestations")
        if self.size_budget is not None:
            lines.append(f"  size budget {human_size(self.size_budget)} unpacked (checked before tagging)")
        if kinds.get(self.kind).lean:
            lines.append("  lean        no compiler, headers, static libraries, -dev packages, apt lists, pip cache, "
                         "archives, or bytes a later layer deletes (checked before tagging)")
        lines.append("  sbom        CycloneDX 1.6 and SPDX 2.3 JSON beside the build log"
                     + (f" and in {self.sbom_dir}" if self.sbom_dir else "")
                     + ", their sha256 labelled musa_docker.sbom.cyclonedx and .spdx")
        lines.append(f"  check       {kinds.get(self.kind).describe({r.name for r in self.repos})}")
        lines.extend(_builder_lines(b))
        if b.platform:
            lines.append(f"  platform    {b.platform} (the base image's, the conda installer's and the wheels' too)")
        lines.append(f"  network     {b.network}")
        lines.append(f"  cache       {'off (--no-cache)' if b.nocache else 'on'}; pull {'on' if b.pull else 'off'}")
        lines.append(
            f"  skip        {'never (--force)' if b.force else 'when the image under that tag has the same inputs digest'}"
        )
        for k, v in b.buildargs:
            lines.append(f"  build arg   {k}={v}")
        lines.extend(network.plan_lines(b.proxies, b.secrets))
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


def _builder_lines(b: BuildStep) -> list:
    k = b.builder
    lines = [f"  builder     {k.kind}: {k.reason}"]
    if k.kind == "buildkit":
        if k.inline_cache:
            api = ".".join(map(str, client.MIN_API))
            lines.append(f"  engine      needs API {api}+ (Engine 18.09), asked at build time"
                         + ("; an older one builds classic" if k.auto else ""))
            lines.append("  cache to    the image itself (BUILDKIT_INLINE_CACHE=1): push it, pass it to --cache-from")
        elif k.cache_to:
            lines.append(f"  cache to    {k.cache_to} (type=registry, mode=max)")
        lines.append("  command     " + client.render(
            k, b.settings(labels=dict(b.labels), proxies=network.shown(b.proxies)), context="<build dir>",
            iidfile="<temp dir>/iid", secrets=[(s.id, f"<secrets dir>/{s.id}") for s in b.secrets]))
        lines.append("              (with a --label= for each label below, its value known after prepare)")
    for ref in k.cache_from:
        lines.append(f"  cache from  {ref}")
    return lines


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ASSETS))
    except ValueError:
        return str(path)


def _plan(kind, o, *, python_version, repos, artifacts, dockerfile, buildargs, labels, notes=(),
          musa_index_secret: str = "", extra_secrets: tuple = ()) -> Plan:
    """The plan from its parts and the options `o`: with the GPU arch's build args, the arch and
    version labels, the inputs table and their notes, when the options carry the inputs."""
    common, resolved = o.common, o.inputs
    buildargs, labels, artifacts = tuple(buildargs), tuple(labels), tuple(artifacts)
    inputs, notes, configs = (), tuple(notes), ()
    if resolved is not None:
        if resolved.selection is not None:
            has_mccl = uses_mccl(dict(buildargs), artifacts, resolved.selection)
            buildargs += tuple(resolved.selection.buildargs(has_mccl))
            labels += (("musa_docker.gpu_arch", resolved.selection.label),)
        labels += tuple((f"musa_docker.version.{n}", v) for n, v in resolved.versions)
        inputs, notes, configs = resolved.sources, notes + resolved.notes, resolved.config_files
        # the default Python is the env's: with --python-env venv, the system's own
        inputs = tuple((n, python_version if n == "python_version" and s == "default" else v, s)
                       for n, v, s in inputs)
    inputs = (("platform", common.platform.name, common.platform_source),) + tuple(inputs)
    labels += (("musa_docker.platform", common.platform.name),)
    labels += lines.needs(resolved.pins if resolved is not None else None, getattr(o, "sdk_line", None))
    buildargs += _users(common.build_args, {k for k, _ in buildargs} | {k for k, _ in common.proxies}
                        | {"BUILDKIT_INLINE_CACHE"}, "--build-arg", "build arg")
    labels += _users(common.labels, {k for k, _ in labels} | {"org.opencontainers.image.created"}, "--label",
                     "label", reserved_prefix="musa_docker.")
    return Plan(
        notes=notes,
        inputs=inputs,
        config_files=configs,
        kind=kind,
        python_version=python_version,
        repos=tuple(repos),
        artifacts=tuple(artifacts),
        scripts=common_scripts(),
        build_dir=common.build_dir,
        keep_build_dir=common.keep_build_dir,
        cache_dir=common.cache_dir,
        insecure=common.insecure,
        connections=common.connections,
        size_budget=common.size_budget,
        sbom_dir=common.sbom_dir,
        build=BuildStep(
            dockerfile=dockerfile,
            image=str(o.image),
            also=tuple(o.also),
            push=common.push,
            attest=common.attest,
            buildargs=tuple(buildargs),
            labels=tuple(labels),
            network=common.network,
            nocache=common.no_cache,
            pull=common.pull,
            force=common.force,
            engine=common.engine,
            builder=common.builder,
            secrets=network.secrets(common.ca_certs, common.pip_index_secret, musa_index_secret) + tuple(extra_secrets),
            proxies=common.proxies,
            platform=common.platform.name,
        ),
    )


def _users(pairs, taken, flag: str, what: str, reserved_prefix: str = "") -> tuple:
    """A user's --build-arg / --label pairs, refused where the tool sets that name itself: the
    image must say what the tool made it from. Raises ConfigError."""
    for key, _ in pairs:
        if key in taken or (reserved_prefix and key.startswith(reserved_prefix)):
            raise ConfigError(f"{flag} {key}: the {what} {key} is one musa-docker sets itself; set it through "
                              f"its own flag (see `musa-docker TASK --help`), or name yours otherwise")
    return tuple(pairs)


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
        # --lock: the OS image's locked apt transaction and the public index's locked versions (plan/locked.py)
        ("OS_APT_PACKAGES", ""),
        ("PIP_LOCKED", ""),
    )


def _env_labels(kind: str, o) -> tuple:
    """The labels of an image that makes its own Python env (base and release)."""
    return (
        ("musa_docker.kind", kind),
        ("musa_docker.python_version", o.python_version),
        ("musa_docker.python_env", o.python_env),
        ("musa_docker.system", o.system.name),
    )


@dataclass(frozen=True)
class Checkout:
    """What a repo on disk holds, read without changing it: for the plan to tell a reused checkout
    that is not what was asked."""

    remote: Optional[str]     # origin's URL, credentials stripped; None without one
    head: Optional[str]
    at_ref: bool              # HEAD is the commit the asked ref names
    dirty: bool               # tracked files changed


@dataclass(frozen=True)
class Facts:
    """What the disk and the engine say, read once before planning (see observe.py)."""

    present: FrozenSet[str] = frozenset()     # repos whose dirs exist at their root
    python_version: Optional[str] = None      # the base image's Python (dev), once the engine was asked
    apt: Optional[object] = None              # the apt source's resolved versions (aptrepo.Resolution)
    base_has_sdk: Optional[bool] = None       # the dev base image has the MUSA SDK already
    checkouts: Tuple[Tuple[str, Checkout], ...] = ()   # repo name -> what its reused dir holds


def make(options: Union[BaseOptions, DevOptions, ReleaseOptions], facts: Facts) -> Plan:
    """The plan of the task `options` were resolved for, from what the disk and engine said; with
    --lock, at the commits and bytes the lock records (locked.py)."""
    lock = options.common.lock
    if lock is not None and facts.apt is None and not facts.base_has_sdk and getattr(options, "stack", None):
        facts = dataclasses.replace(facts, apt=locked.apt(options.stack, lock))
    if isinstance(options, BaseOptions):
        plan = plan_base(options, facts.present)
    elif isinstance(options, DevOptions):
        plan = plan_dev(options, facts.present, facts.python_version, facts.apt, facts.base_has_sdk)
    else:
        plan = plan_release(options, facts.apt)
    told = reuse_notes(plan.repos, dict(facts.checkouts))
    plan = dataclasses.replace(plan, notes=plan.notes + told) if told else plan
    return locked.apply(plan, lock, options.common.offline) if lock is not None else plan


def reuse_notes(repos, checkouts: Mapping[str, Checkout]) -> Tuple[str, ...]:
    """What the plan says of a reused checkout that is not what was asked: another origin, another
    commit than the ref, changed files. The build takes it as it is; the note says so, and how not to."""
    notes = []
    for step in repos:
        seen = checkouts.get(step.name)
        if step.action is not RepoAction.REUSE or seen is None:
            continue
        differs = []
        if seen.remote is not None and not _same_repo(seen.remote, step.url):
            differs.append(f"its origin is {redact(seen.remote)}, not {redact(step.url)}")
        if seen.remote is None:
            differs.append(f"it has no origin (asked: {redact(step.url)})")
        if not seen.at_ref:
            differs.append(f"HEAD {(seen.head or 'none')[:10]} is not {step.ref}")
        if seen.dirty:
            differs.append("it has uncommitted changes")
        if differs:
            notes.append(f"{step.name} at {step.path} is reused as it is, and {'; '.join(differs)}: the image gets "
                         f"that tree; move it away, or give {step.flag} another dir, to clone what was asked")
    return tuple(notes)


def _same_repo(a: str, b: str) -> bool:
    """Whether two repo URLs name one repo: credentials, a trailing `.git` or `/` and the host's
    case aside."""
    def norm(url: str) -> str:
        url = strip_credentials(url).strip().rstrip("/")
        url = url[:-4] if url.endswith(".git") else url
        scheme, sep, rest = url.partition("://")
        if sep:
            host, _, tail = rest.partition("/")
            return f"{scheme.lower()}://{host.lower()}/{tail}"
        return url
    return norm(a) == norm(b)


def local_repos(options) -> Tuple[RepoStep, ...]:
    """The repos a build reuses when their dir exists and clones otherwise, as if none existed:
    the dirs `observe` looks at."""
    if isinstance(options, BaseOptions):
        return (_pytorch_step(options, ()),)
    if isinstance(options, DevOptions):
        return (_vision_step(options, ()),) + tuple(s for s in component_steps(options, ()) if s.action == "clone")
    return ()


def _conda_step(o) -> tuple:
    return (ArtifactStep("conda_installer", o.conda, "artifacts/conda_installer.sh"),) if o.conda else ()


def _vendor_steps(given) -> tuple:
    return tuple(ArtifactStep(a.name, loc, a.dest, checked=True) for a, loc in given.archives())


def _source_repo(name: str, url: str, ref: str, root: Path, present, flag: str,
                 layer_at: Optional[str] = None) -> RepoStep:
    return RepoStep(name=name, url=url, ref=ref, path=root / name,
                    action=RepoAction.REUSE if name in present else RepoAction.CLONE, layer_at=layer_at, flag=flag)


def _pytorch_step(o: BaseOptions, present) -> RepoStep:
    # PyTorch's ~100k files: one layer, written once by the engine (see layers.py)
    return _source_repo("pytorch", o.pytorch_repo, o.pytorch_tag, o.pytorch_root, present, "--pytorch-root",
                        kinds.get("base").trees["pytorch"].lstrip("/"))


def _vision_step(o: DevOptions, present) -> RepoStep:
    return _source_repo("vision", o.vision_repo, o.vision_tag, o.vision_root, present, "--vision-root")


def plan_base(options: BaseOptions, present: Iterable[str]) -> Plan:
    """The plan of `build-base`. `present` names the repos whose directories already exist."""
    o = options
    return _plan(
        "base", o, python_version=o.python_version,
        repos=[_pytorch_step(o, set(present))],
        artifacts=_conda_step(o),
        dockerfile=DOCKERFILE_BASE,
        buildargs=_env_buildargs(o.system.name, o),
        labels=_env_labels("base", o),
        notes=o.notes,
    )


def torch_musa_step(o) -> RepoStep:
    """torch_musa: a local repo is used as it is; a URL is fetched into a clone the tool owns."""
    return _fetched_step("torch_musa", o.torch_musa_repo, o.torch_musa_ref or "HEAD", o.torch_musa_local,
                         o.common.cache_dir, "--torch-musa-repo")


def _fetched_step(name: str, url: str, ref: str, local: bool, cache_dir: Path, flag: str) -> RepoStep:
    if local:
        return RepoStep(name, url, ref, Path(url), RepoAction.USE, flag=flag)
    key = hashlib.sha256(strip_credentials(url).encode()).hexdigest()[:12]
    return RepoStep(name, url, ref, cache_dir / "repos" / f"{name}-{key}", RepoAction.FETCH, flag=flag)


def component_steps(o: DevOptions, present) -> Tuple[RepoStep, ...]:
    """kineto, muAlg, muThrust and torchaudio, those given (see components.py)."""
    return tuple(_source_repo(c.name, c.url, c.ref, c.root, present, c.flag) if c.root else
                 _fetched_step(c.name, c.url, c.ref, c.local, o.common.cache_dir, c.flag)
                 for c in o.components)


def plan_dev(options: DevOptions, present: Iterable[str], python_version: Optional[str] = None,
             apt=None, base_has_sdk: Optional[bool] = None) -> Plan:
    """The plan of `build-dev`. `python_version` is the base image's, once the engine was asked;
    `apt` the resolved apt versions, `base_has_sdk` whether the base image has the SDK already."""
    o = options
    present = set(present)
    stack = plan_stack(o.stack, apt, base_has_sdk, dev=True)
    return _plan(
        "dev", o, python_version=python_version or FROM_BASE,
        repos=[torch_musa_step(o), _vision_step(o, present), *component_steps(o, present)],
        artifacts=_vendor_steps(o.vendor),
        dockerfile=o.dockerfile,
        buildargs=(("BASE_IMAGE", o.base_img), ("PIP_INDEX_URL", o.common.pip_index_url), ("PIP_LOCKED", ""))
        + stack.buildargs
        + (("USE_KINETO", "1" if any(c.name == "kineto" for c in o.components) else "0"),
           ("COMPILE_CACHE", o.compile_cache)),
        labels=(
            ("musa_docker.kind", "dev"),
            ("musa_docker.python_version", python_version or FROM_BASE),
            ("musa_docker.base_image", o.base_img),
        ) + stack.labels,
        notes=stack.notes + _compile_cache_notes(o.compile_cache, o.compile_cache_remote, o.common.builder),
        musa_index_secret=o.stack.pip_index_secret,
        extra_secrets=(o.compile_cache_remote,) if _remote_used(o) else (),
    )


def _remote_used(o: DevOptions) -> bool:
    return bool(o.compile_cache_remote) and o.compile_cache != "off" and o.common.builder.kind == "buildkit"


def _compile_cache_notes(size: str, remote, builder) -> tuple:
    unused = f"; {remote.shown} is not used" if remote else ""
    if builder.kind != "buildkit":
        return ("compile cache: none: the classic builder has no cache mounts (--builder buildkit keeps one)"
                + unused,)
    if size == "off":
        return ("compile cache: off (--no-compile-cache)" + unused,)
    notes = (f"compile cache: ccache (max {size} per Python and GPU arch list) in the BuildKit cache mount "
             "musa-docker-ccache; the hits and misses end the log and label the image musa_docker.compile_cache",)
    if remote:
        notes += (f"compile cache: remote storage {remote.shown} behind the local cache"
                  + (", read only" if "|read-only=true\n" in remote.value else ", read and written (local hits too)")
                  + "; it needs ccache 4.4 or later with that storage in the image (Debian 12's 4.7 has redis:// "
                  "and http://; Ubuntu 20.04's 3.7 has none: local cache only, with a warning); a remote that "
                  "cannot be reached costs a warning and local-only caching",)
    return notes


def plan_release(options: ReleaseOptions, apt=None) -> Plan:
    """The plan of `release`; `apt` the resolved apt versions (None: not read yet)."""
    o = options
    wheels = tuple(
        # a dir each: the Dockerfile installs them in a step each, torch first
        ArtifactStep(name, loc, f"artifacts/wheels/{folder}/{loc.filename}", checked=True)
        for name, folder, loc in (("torch_wheel", "torch", o.torch_whl),
                                  ("torch_musa_wheel", "torch_musa", o.torch_musa_whl)) if loc
    ) + tuple(
        # --wheel and the pins file's other wheels: one step after torch_musa
        ArtifactStep(f"{dist}_wheel", loc, f"artifacts/wheels/extra/{loc.filename}", checked=True)
        for dist, loc in o.extra_wheels
    )
    stack = plan_stack(o.stack, apt)
    return _plan(
        "release", o, python_version=o.python_version,
        repos=(),
        artifacts=_vendor_steps(o.vendor) + _conda_step(o) + wheels,
        dockerfile=o.dockerfile,
        # the release set's locked transaction, for the final image (plan/locked.py SETS)
        buildargs=_env_buildargs(o.system.name, o) + (("OS_APT_RELEASE_PACKAGES", ""),) + stack.buildargs,
        labels=_env_labels("release", o) + stack.labels,
        notes=o.notes + stack.notes,
        musa_index_secret=o.stack.pip_index_secret,
    )
