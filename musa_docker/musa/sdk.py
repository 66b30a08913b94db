"""Where the MUSA stack of a dev or release image comes from, beside the vendor archives: the SDK
from an apt repository (aptrepo), and MUSA-built wheels named as requirements, installed from a
MUSA pip index of their own.

The MUSA index and the public one are never merged into one resolve: names such as `torch` exist
on both with different meanings (MooreThreads/vllm-musa's docker/musa.Dockerfile installs its
MUSA wheels `--no-deps --index-url MUSA_PIP_INDEX_URL` first, before anything public, for that
reason). So the requirements go to `pip install --no-deps --index-url MUSA_INDEX` first, and after
the build each one's installed version must equal its pin, and no `nvidia-*`/`cuda-*`
distribution may be installed (a public `torch` would have pulled them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Tuple

from . import arch as arch_mod
from .aptrepo import MCCL_PACKAGES, AptRequest, mccl_packages, parse_runtime, parse_source
from ..errors import ConfigError
from . import vendor

# The build args the Dockerfiles read; MUSA_SDK says which way the SDK comes.
SDK_ARCHIVES, SDK_APT, SDK_BASE = "archives", "apt", "base"


# An exact pin, the only kind whose installed version can be checked against it.
_REQUIREMENT = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)==([0-9][A-Za-z0-9.+!_-]*)$")

# Distributions a MUSA image must never hold: CUDA builds pulled in by a public `torch`.
CUDA_PREFIXES = ("nvidia-", "cuda-")

# What tells that an image already has the SDK (a vendor mthreads/musa:*-devel image).
HAS_SDK = ["sh", "-c", "command -v mcc >/dev/null 2>&1 || test -x /usr/local/musa/bin/mcc"]


@dataclass(frozen=True)
class MusaStack:
    """The SDK from an apt repository, and MUSA wheels from the MUSA index."""

    apt: Optional[AptRequest] = None
    pip_index_url: str = ""                 # without credentials: a build arg
    wheels: Tuple["MusaWheel", ...] = ()
    pip_index_secret: str = field(default="", repr=False)   # with them, for a BuildKit secret (network.py)


def resolve_stack(values: Mapping[str, Any], env: Mapping[str, str], index_url: str, *, dev: bool,
                  selection: Optional["arch_mod.Selection"] = None) -> MusaStack:
    """The stack's flags; `index_url` is --musa-pip-index-url, already checked; `selection` the GPU
    archs (every arch when None). Raises ConfigError."""
    return MusaStack(resolve_apt(values, env, dev=dev, selection=selection), index_url,
                     resolve_wheels(values, index_url))


def from_index(values: Mapping[str, Any], stack: MusaStack, file_flags: Mapping[str, str]) -> set:
    """The distributions --musa-wheel names (pip's names: torch-musa). A wheel-file flag for one of
    them is an error: it would come two ways. `file_flags` maps the flags' keys to their names."""
    names = {w.key for w in stack.wheels}
    for key, flag in file_flags.items():
        dist = key[:-len("_whl_url")].replace("_", "-")
        if dist in names and values.get(key):
            raise ConfigError(f"{flag} and --musa-wheel both give {dist}: name it once, as a file or as a requirement")
    return names


@dataclass(frozen=True)
class MusaWheel:
    name: str
    version: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def key(self) -> str:
        """The name as pip compares it (PEP 503)."""
        return re.sub(r"[-_.]+", "-", self.name).lower()


def parse_wheel(value: str, flag: str = "--musa-wheel") -> MusaWheel:
    m = _REQUIREMENT.match(str(value or ""))
    if not m:
        raise ConfigError(
            f"{flag} {value!r} is not an exact requirement NAME==VERSION, e.g. {flag} torch==2.7.1+musa5.2.0 "
            "(only exact pins: the image is checked against them)"
        )
    return MusaWheel(m.group(1), m.group(2))


def resolve_wheels(values: Mapping[str, Any], musa_index: str) -> Tuple[MusaWheel, ...]:
    """--musa-wheel REQ..., which need --musa-pip-index-url. Raises ConfigError."""
    wheels = tuple(parse_wheel(v) for v in (values.get("musa_wheel") or ()))
    if wheels and not musa_index:
        raise ConfigError("--musa-wheel needs --musa-pip-index-url URL: MUSA builds come from the MUSA index "
                          "alone, never from the public one")
    seen = set()
    for wheel in wheels:
        if wheel.key in seen:
            raise ConfigError(f"--musa-wheel names {wheel.name} twice: pin each distribution once")
        seen.add(wheel.key)
    return wheels


def resolve_apt(values: Mapping[str, Any], env: Mapping[str, str], *, dev: bool,
                selection: Optional["arch_mod.Selection"] = None) -> Optional[AptRequest]:
    """--musa-apt-source with --musa-runtime, or None for the archives. Raises ConfigError."""
    source, runtime = values.get("musa_apt_source"), values.get("musa_runtime")
    if not source and not runtime:
        return None
    if not runtime:
        raise ConfigError("--musa-apt-source needs --musa-runtime X.Y: the runtime line whose packages to install, "
                          "e.g. --musa-runtime 5.2")
    if not source:
        raise ConfigError('--musa-runtime needs --musa-apt-source "deb [trusted=yes] URL SUITE COMPONENT": '
                          "the apt repository the runtime line comes from")
    given = [a.flags for a in vendor.ARCHIVES if values.get(a.key)]
    given += [f"${a.env}" for a in vendor.ARCHIVES if not values.get(a.key) and env.get(a.env)]
    if given:
        raise ConfigError(
            f"--musa-apt-source and {', '.join(given)} both install the MUSA SDK: give the apt source or the "
            "archives, not both (unset the variables when they come from the environment)"
        )
    chosen = selection if selection is not None else arch_mod.choose(values.get("gpu_arch"), env)[0]
    return AptRequest(parse_source(source), parse_runtime(runtime), mccl_packages(chosen), dev=dev)


def uses_mccl(buildargs: Mapping[str, str], artifacts, selection) -> bool:
    """USE_MCCL for torch_musa's build: MCCL is in the image. From apt, when one of MCCL_PACKAGES
    is installed; from the archives, when one was staged; from a base image that has the SDK,
    unless the arch has none."""
    way = buildargs.get("MUSA_SDK", SDK_ARCHIVES)
    if way == SDK_APT:
        names = {spec.split("=")[0] for spec in buildargs.get("MUSA_APT_PACKAGES", "").split()}
        return bool(names & set(MCCL_PACKAGES.values()))
    if way == SDK_BASE:
        return not selection.without_mccl
    return any(a.name == "mccl" for a in artifacts)


@dataclass(frozen=True)
class StackPlan:
    """What the stack adds to a plan: build args, labels, and a line each for people."""

    buildargs: Tuple[Tuple[str, str], ...] = ()
    labels: Tuple[Tuple[str, str], ...] = ()
    notes: Tuple[str, ...] = ()


def plan_stack(stack, resolution=None, base_has_sdk: Optional[bool] = None, *, dev: bool = False) -> StackPlan:
    """The stack's part of a plan. `resolution` is None until prepare read the index (a dry run
    shows `<resolved at prepare>`); `base_has_sdk` is None until the base image was looked at."""
    from .aptrepo import pending
    # Every arg the Dockerfiles declare is passed, at its default when unused: ARG defaults never
    # decide anything on their own.
    args = {"MUSA_SDK": SDK_ARCHIVES, "MUSA_RUNTIME": "", "MUSA_APT_SOURCE": "", "MUSA_APT_PACKAGES": "",
            "MUSA_PIP_INDEX_URL": "", "MUSA_WHEELS": "", "MUSA_WHEEL_HASHES": ""}
    labels, notes = [], []
    if stack.apt is not None:
        src = stack.apt.source
        if base_has_sdk:
            args["MUSA_SDK"] = SDK_BASE
            notes.append(f"the base image already has the MUSA SDK (mcc found): nothing is installed from "
                         f"{src.url} (as vllm-musa's INSTALL_MUSA_STACK=auto)")
        else:
            res = resolution or pending(stack.apt)
            args.update(MUSA_SDK=SDK_APT, MUSA_RUNTIME=stack.apt.runtime, MUSA_APT_SOURCE=src.line,
                        MUSA_APT_PACKAGES=res.specs())
            labels += list(res.labels())
            notes.append(f"MUSA {stack.apt.runtime} SDK from {src.url} {src.suite} {' '.join(src.components)}: "
                         f"{len(res.pins)} packages, exact versions read from its index before the build, one apt "
                         "transaction; the source and apt lists are removed from the image")
            if dev and base_has_sdk is None:
                notes.append("if the base image already has the SDK (mcc on PATH or /usr/local/musa/bin/mcc), "
                             "nothing is installed from the apt source (vllm-musa's INSTALL_MUSA_STACK=auto)")
    if stack.pip_index_url:
        args["MUSA_PIP_INDEX_URL"] = stack.pip_index_url
    if stack.wheels:
        args["MUSA_WHEELS"] = " ".join(w.requirement for w in stack.wheels)
        notes.append(f"MUSA wheels {', '.join(w.requirement for w in stack.wheels)} from {stack.pip_index_url} "
                     "alone, --no-deps, before anything else; everything else from --pip-index-url "
                     "(or pip's default); the two indexes are never merged")
    return StackPlan(tuple(args.items()), tuple(labels), tuple(notes))


def base_has_sdk(engine, ref: str, say) -> bool:
    """Does the image `ref` already hold the MUSA SDK (a vendor mthreads/musa:*-devel image)?"""
    code, _ = engine.run(ref, HAS_SDK)
    if code == 0:
        say(f"keep the MUSA SDK of {ref}: mcc is there, so nothing is installed from the apt source")
    return code == 0


def resolve_apt_versions(stack, deb_arch: str, *, insecure: bool, say):
    """Prepare's part: read the apt repository's index for the image's architecture (Debian's
    name: arm64) and freeze the versions (None when the SDK does not come from apt). Raises
    AptRepoError."""
    if stack.apt is None:
        return None
    from .aptrepo import resolve
    return resolve(stack.apt, arch=deb_arch, verify=not insecure, say=say)


def expect(stack) -> dict:
    """The post-build checks of the stack: each MUSA wheel at its pinned version, no CUDA builds."""
    return {"versions": {w.name: w.version for w in stack.wheels}, "no_cuda": True}


def locked_apt(stack, lock, arch: Optional[str] = None):
    """The apt versions the lock records for the stack's source and runtime line (for `arch`, or
    the only architecture locked), as a resolution; None when the SDK does not come from apt.
    Raises LockError when the lock has no such record or lacks a package."""
    from .aptrepo import Resolution
    from ..errors import LockError
    if stack.apt is None:
        return None
    source, runtime = stack.apt.source.line, stack.apt.runtime
    record = lock.apt(source, runtime, arch)
    if record is None:
        raise LockError(f"the lock {lock.path} has no apt record of {source!r}, runtime {runtime}"
                        f"{' for ' + arch if arch else ''}: lock these flags with `musa-docker lock`")
    pins = {p["package"]: p["version"] for p in record["packages"]}
    names = [name for _, name, _ in stack.apt.packages()]
    missing = [n for n in names if n not in pins]
    if missing:
        raise LockError(f"the lock {lock.path} has no version of {', '.join(missing)} from {stack.apt.source.url}: "
                        f"lock it again with `musa-docker lock --update {missing[0]}`")
    return Resolution(stack.apt, tuple((n, pins[n]) for n in names))


def check_locked_apt(stack, lock, arch: str, *, insecure: bool, say):
    """Prepare's part under --lock: the locked versions (locked_apt for the image's architecture,
    Debian's name), each still in the repository's index with the locked sha256. Raises LockError
    naming the package, AptRepoError when the repository does not answer."""
    from .aptrepo import stanzas
    from ..errors import LockError
    if stack.apt is None:
        return None
    resolution = locked_apt(stack, lock, arch)
    record = lock.apt(stack.apt.source.line, stack.apt.runtime, arch)
    src = stack.apt.source
    say(f"check {len(resolution.pins)} locked MUSA {stack.apt.runtime} packages against {src.url} {src.suite} ({arch})")
    index = stanzas(src, arch, verify=not insecure)
    for pin in record["packages"]:
        if pin["package"] not in dict(resolution.pins):
            continue
        found = index.get((pin["package"], pin["version"]))
        if found is None:
            has = sorted(v for (n, v) in index if n == pin["package"])
            raise LockError(f"apt package {pin['package']} {pin['version']} (lock {lock.path}) is no longer in "
                            f"{src.url} {src.suite} (it has {', '.join(has) or 'no version of it'}): bring it from "
                            f"a bundle, or lock again with `musa-docker lock --update {pin['package']}`")
        if found.get("SHA256", "").lower() != pin["sha256"]:
            raise LockError(f"apt package {pin['package']} {pin['version']}: {src.url} lists sha256 "
                            f"{found.get('SHA256', 'none')[:16]}…, the lock {lock.path} {pin['sha256'][:16]}…: "
                            "the repository's package changed; check it, or lock again with "
                            f"`musa-docker lock --update {pin['package']}`")
    say("apt pins (lock): " + resolution.specs())
    return resolution
