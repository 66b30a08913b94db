"""Options: flag values and the environment, checked and frozen.

`resolve_*` take the values the task received (from flags and config) and an explicit
environment mapping, apply the defaults of `defaults` to what is unset; they read no global
state and no disk but for one check (the -f Dockerfile is a file), and raise
`ConfigError` with a message naming the flag for anything a user has to fix.

Over 400 lines on purpose: the three build tasks' `resolve_*` sit side by side with the checks
they share, so a flag is read the same way everywhere. What stands apart already lives apart:
image references (refs.py), the shell's options (shellopts.py), the grammar of refs, URLs and
paths (validate.py), the MUSA stack (sdk.py) and the dev image's components (components.py).
"""

from __future__ import annotations

import dataclasses
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from ..musa import components, lines, sdk, vendor
from .. import defaults
from ..values import validate
from ..resources import ASSETS
from ..engine.docker_cli import Builder, choose as choose_builder
from ..defaults import SYSTEMS, System
from ..errors import ConfigError
from ..util import expand_home, parse_size
from ..values.locations import Location, parse_location, redact
from ..values.lockfile import Lock, load as load_lock
from ..values.network import Secret, ca_certs, compile_cache_remote, index_url, no_credentials, proxies
from ..values.paths import check_reserved
from ..values import platforms
from ..values.platforms import Platform
from ..values.refs import ImageRef, image_reference, image_refs
from ..values import wheelname
from ..values.wheelname import wheel_dist
from ..values.yamlfile import number_hint
from .cascade import sourced
from .inputs import Resolved, resolve as resolve_inputs

_PY_RE = re.compile(r"3\.(?:0|[1-9][0-9]?)")
_HTTP_RE = re.compile(r"https?://\S+")


@dataclass(frozen=True)
class Common:
    """What every build task shares."""

    tags: tuple                   # every -t as given: a tag, or NAME:TAG (refs.image_refs reads them)
    build_dir: Optional[Path]     # None: a fresh dir in the cache
    keep_build_dir: bool
    no_cache: bool
    pull: bool
    network: str
    apt_mirror: str
    pip_index_url: str
    insecure: bool
    connections: int              # for one large download whose server serves ranges
    force: bool
    dry_run: bool
    verify: bool                  # verify the new image after the build (as `verify -i`)
    build_args: tuple             # (KEY, VALUE) of each --build-arg
    labels: tuple                 # (KEY, VALUE) of each --label
    metadata_file: Optional[Path]  # where to write the result as JSON
    push: bool                    # push every tag after the check (and --verify)
    attest: bool                  # then attach the SBOM beside each pushed tag
    quiet: bool                   # only the image id on stdout
    progress: str                 # auto | plain | tty: how the build shows itself (commands/build.py decides auto)
    docker_host: Optional[str]    # None: DOCKER_HOST / docker context, as the CLI sees it
    engine: str                   # where the build runs, for people: the host, or the docker context
    cache_dir: Path
    home: Path
    builder: Builder = Builder("classic", "--builder classic")
    platform: Platform = platforms.PLATFORMS["linux/amd64"]
    platform_source: str = "default"      # where --platform came from, as the plan shows it
    platform_given: bool = False          # by a user (flag, variable, config): the engine's never replaces it
    ca_certs: tuple = ()                  # --ca-cert files, checked (network.py)
    proxies: tuple = ()                   # (name, value) of the host's proxy variables, as build args
    pip_index_secret: str = field(default="", repr=False)   # --pip-index-url with its credentials
    lock: Optional[Lock] = None           # --lock: the commits and bytes the build must take
    offline: bool = False                 # --offline: nothing fetched, every input from the machine
    size_budget: Optional[int] = None     # bytes unpacked the image may hold (--size-budget), None: no budget
    sbom_dir: Optional[Path] = None       # --sbom DIR: the SBOM documents are written there too


@dataclass(frozen=True)
class BaseOptions:
    common: Common
    image: ImageRef
    system: System
    python_version: str
    python_env: str
    python_prefix: str
    conda: Optional[Location]     # the installer, when python_env is conda
    pytorch_tag: str
    pytorch_repo: str
    pytorch_root: Path
    notes: tuple = ()             # what the plan should say about a choice made for the user
    inputs: Optional[Resolved] = None   # each shown input's value and source, the pins' versions
    also: tuple = ()                      # the image's other references (more -t), tagged with it


def python_version(value: str) -> str:
    if isinstance(value, float):
        # YAML reads 3.10 as the number 3.1: say so rather than build the wrong Python.
        raise ConfigError(f"python_version {value!r} came from a config file as a number (YAML reads 3.10 as 3.1): "
                          f"{number_hint('python_version', '3.10')}")
    if not _PY_RE.fullmatch(str(value)):
        raise ConfigError(f"-v/--python-version {value!r} is not a Python version: give MAJOR.MINOR, e.g. -v 3.10")
    if value not in defaults.PYTHON_VERSIONS:
        raise ConfigError(
            f"-v/--python-version {value} is not a Python an image can have: choose one of "
            f"{', '.join(defaults.PYTHON_VERSIONS)}"
        )
    return str(value)


def system(value: str) -> System:
    try:
        return SYSTEMS[value]
    except KeyError:
        raise ConfigError(
            f"-s/--sys {value!r} is not supported: choose one of {', '.join(SYSTEMS)}"
        ) from None


def _path(value: Optional[str], home: Path) -> Optional[Path]:
    if not value:
        return None
    return expand_home(value, home)


def _ca_cert_paths(given: Any, home: Path) -> list:
    """--ca-cert's values (one from the environment, a list from the flag or config) as paths."""
    return [_path(str(v), home) for v in ([given] if isinstance(given, str) else given or ()) if v]


def _connections(value: Any) -> int:
    if value is None or value == "":
        return defaults.CONNECTIONS
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= defaults.MAX_CONNECTIONS:
        raise ConfigError(
            f"--connections {value!r} is not a whole number from 1 to {defaults.MAX_CONNECTIONS}, "
            f"e.g. --connections {defaults.CONNECTIONS}"
        )
    return int(text)


def resolve_platform(values, machine: Optional[str], source: str = "flag") -> tuple:
    """(platform, its source, given by a user) of --platform; without it, the engine's (`machine`,
    once the engine was asked), else, before that (a dry run), this machine's. Raises ConfigError."""
    given = values.get("platform")
    if given:
        return platforms.parse(given), source, True
    if machine:
        return platforms.of_machine(machine), f"default: the engine's ({machine})", False
    here = platform.machine()
    return (platforms.of_machine(here),
            f"default: this machine's ({here}); a build takes the engine's, asked before it starts", False)


def resolve_common(values: Mapping[str, Any], env: Mapping[str, str], machine: Optional[str] = None,
                   platform_source: str = "flag") -> Common:
    home = Path(env.get("HOME") or Path.home())
    build_dir = values.get("build_dir") or env.get("DOCKER_BUILD_DIR")
    if build_dir:
        validate.path(build_dir, "--build-dir" if values.get("build_dir") else "$DOCKER_BUILD_DIR")
    network = values.get("network") or defaults.default("", "network")
    apt_mirror = values.get("apt_mirror") or ""
    if apt_mirror and not _HTTP_RE.fullmatch(apt_mirror):
        raise ConfigError(
            f"--apt-mirror {redact(apt_mirror)!r} is not an http(s) URL, e.g. http://mirrors.example.com/ubuntu"
        )
    if apt_mirror:
        no_credentials(parse_location(apt_mirror, what="--apt-mirror"), "--apt-mirror")
    if build_dir:
        # Refused now, not after the clone and downloads that come before staging.
        check_reserved(_path(build_dir, home), home)
    if values.get("docker_host"):
        validate.docker_host(values["docker_host"])
    builder = _builder(values, env)
    network = validate.network_mode(network, builder.kind == "buildkit")
    index, index_secret = index_url(values.get("pip_index_url") or "", "--pip-index-url", builder)
    target, target_source, target_given = resolve_platform(values, machine, platform_source)
    return Common(
        platform=target,
        platform_source=target_source,
        platform_given=target_given,
        tags=values.get("tag") or (),
        build_dir=_path(build_dir, home),
        keep_build_dir=bool(values.get("keep_build_dir")),
        no_cache=bool(values.get("no_cache")),
        pull=bool(values.get("pull")),
        network=network,
        apt_mirror=apt_mirror.rstrip("/"),
        pip_index_url=index,
        pip_index_secret=index_secret,
        insecure=bool(values.get("insecure")),
        connections=_connections(values.get("connections")),
        force=bool(values.get("force")),
        dry_run=bool(values.get("dry_run")),
        verify=bool(values.get("verify")),
        build_args=_pairs(values.get("build_arg"), "--build-arg", _ARG_RE),
        labels=_pairs(values.get("label"), "--label", _LABEL_RE),
        metadata_file=_path(validate.path(values["metadata_file"], "--metadata-file"), home)
        if values.get("metadata_file") else None,
        push=bool(values.get("push")),
        attest=_attest(values),
        quiet=bool(values.get("quiet")),
        progress=_progress(values.get("progress")),
        docker_host=values.get("docker_host") or None,
        engine=engine_display(values.get("docker_host") or None, env),
        cache_dir=_path(str(defaults.default_cache_dir({**env, "HOME": str(home)})), home),
        home=home,
        builder=builder,
        ca_certs=ca_certs(_ca_cert_paths(values.get("ca_cert"), home), builder),
        proxies=proxies(env, bool(values.get("no_proxy_env"))),
        lock=load_lock(_path(validate.path(values["lock"], "--lock"), home), values["lock"])
        if values.get("lock") else None,
        offline=_offline(values),
        size_budget=_budget(values.get("size_budget")),
        sbom_dir=_path(validate.path(values["sbom"], "--sbom"), home) if values.get("sbom") else None,
    )


def _attest(values) -> bool:
    if values.get("attest") and not values.get("push"):
        raise ConfigError("--attest attaches the SBOM beside the pushed image in its registry: give --push too, "
                          "or drop --attest (the SBOM files and labels are written either way)")
    return bool(values.get("attest"))


def _offline(values) -> bool:
    if values.get("offline") and values.get("pull"):
        raise ConfigError("--offline and --pull: an offline build pulls nothing; drop --pull")
    if values.get("offline") and not values.get("lock"):
        raise ConfigError("--offline needs --lock FILE: an offline build takes the commits and bytes a lock records, "
                          "from what `musa-docker bundle import` brought (see docs/air-gapped.md)")
    return bool(values.get("offline"))


PROGRESS = ("auto", "plain", "tty")


def _progress(value: Any) -> str:
    value = value or defaults.default("", "progress")
    if value not in PROGRESS:
        raise ConfigError(f"--progress {value!r} is not a progress mode: choose one of {', '.join(PROGRESS)}")
    return value


def _budget(value: Any) -> Optional[int]:
    """--size-budget SIZE in bytes; None when not set. Raises ConfigError."""
    if value is None or str(value).strip() == "":
        return None
    try:
        found = parse_size(str(value))
    except ValueError:
        found = 0
    if found <= 0:
        raise ConfigError(f"--size-budget {value!r} is not a size such as 20G, 20GB, 500M or 18GiB")
    return found


_ARG_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


def _pairs(given, flag: str, key_re) -> tuple:
    """(KEY, VALUE) of each `KEY=VALUE` of a repeatable flag; a key given twice keeps its last value."""
    found = {}
    for item in [given] if isinstance(given, str) else (given or ()):
        key, sep, value = str(item).partition("=")
        if not sep or not key_re.fullmatch(key):
            chars = "letters, digits, '_', '.', '/', '-'" if flag == "--label" else "letters, digits, '_'"
            raise ConfigError(f"{flag} {item!r} is not KEY=VALUE, KEY of {chars}")
        found[key] = value
    return tuple(found.items())


def engine_display(docker_host: Optional[str], env: Mapping[str, str]) -> str:
    host = docker_host or env.get("DOCKER_HOST")
    if host:
        return host
    context = env.get("DOCKER_CONTEXT")
    return f"docker context {context}" if context else "the local engine (DOCKER_HOST unset)"


def _builder(values: Mapping[str, Any], env: Mapping[str, str]) -> Builder:
    """The builder: the one check that runs a program, the docker client, with no engine in reach."""
    cache_to = values.get("cache_to") or None
    return choose_builder(
        values.get("builder") or defaults.default("", "builder"),
        values.get("docker_cli") or defaults.default("", "docker_cli"), env,
        docker_host=values.get("docker_host") or None, buildx_builder=values.get("buildx_builder") or None,
        cache_from=tuple(image_reference(ref, "--cache-from") for ref in values.get("cache_from") or ()),
        cache_to=cache_to and image_reference(cache_to, "--cache-to"), check_builder=not values.get("dry_run"),
    )


def python_prefix(python_env: str, version: str) -> str:
    if python_env == "conda":
        return f"{defaults.CONDA_ROOT}/envs/py{version.replace('.', '')}"
    return defaults.VENV_ROOT


def resolve_python_env(values: Mapping[str, Any], sys_: System, machine: str, task: str = "build_base") -> tuple:
    """(python version, python_env, prefix, conda installer location or None, notes) for
    build-base and release. Without -v a venv gets the system's own Python, and a note says so."""
    python_env = values.get("python_env") or defaults.default(task, "python_env")
    if python_env not in defaults.PYTHON_ENVS:
        raise ConfigError(f"--python-env {python_env!r} is not supported: choose conda or venv")
    notes = ()
    if python_env == "venv" and not values.get("python_version"):
        version = sys_.python
        notes = (f"python {version}: -v was not given, and --python-env venv uses {sys_.name}'s own Python",)
    else:
        version = python_version(values.get("python_version") or defaults.default(task, "python_version"))
    if python_env == "venv" and version != sys_.python:
        raise ConfigError(
            f"--python-env venv uses {sys_.name}'s own Python {sys_.python}, but -v asks for {version}: "
            f"pass -v {sys_.python}, or use --python-env conda for any version"
        )
    conda = None
    if python_env == "conda":
        url = values.get("conda_url") or defaults.CONDA_URL.format(arch=machine)
        conda = parse_location(url, what="--conda-url")
    return version, python_env, python_prefix(python_env, version), conda, notes


def _inputs(task: str, values, env: Mapping[str, str], machine: Optional[str]) -> tuple:
    """(the values with the pins file's layer filled in (options.inputs), the shared options),
    from the cascade's Sourced or plain flag values; `machine` is the engine's, once asked."""
    given = sourced(task, values)
    target, _, _ = resolve_platform(given.values, machine)
    resolved = resolve_inputs(given, env, target.name)
    return resolved, resolve_common(resolved.values, env, machine, given.source("platform"))


def resolve_base(values, env: Mapping[str, str], machine: Optional[str] = None) -> BaseOptions:
    """Check build-base's flags; `values` is the cascade's Sourced, or flag names (underscored)
    mapped to what the task got; `machine` the engine's CPU, once asked (default: this machine's)."""
    resolved, common = _inputs("build-base", values, env, machine)
    values = resolved.values
    d = defaults.TASKS["build_base"]
    image, also = image_refs(values.get("image"), common.tags, d["image"], defaults.default("", "tag"))
    sys_ = system(values.get("sys") or d["sys"])
    version, python_env, prefix, conda, notes = resolve_python_env(values, sys_, common.platform.machine)
    root = _root(values, env, "pytorch_root", "PYTORCH_REPO_ROOT_PATH", common.home)
    return BaseOptions(
        common=common,
        image=image,
        also=also,
        system=sys_,
        python_version=version,
        python_env=python_env,
        python_prefix=prefix,
        conda=conda,
        pytorch_tag=validate.git_ref(values.get("pytorch_tag") or d["pytorch_tag"], "--pytorch-tag"),
        pytorch_repo=repo_url(values.get("pytorch_repo") or d["pytorch_repo"], "--pytorch-repo"),
        pytorch_root=_path(root, common.home),
        notes=notes,
        inputs=resolved,
    )


def _root(values, env, key: str, var: str, home: Path) -> str:
    """A repo root from its flag, else its variable, else HOME: a path git clones into."""
    if values.get(key):
        return validate.path(values[key], f"--{key.replace('_', '-')}")
    if env.get(var):
        return validate.path(env[var], f"${var}")
    return str(home)


@dataclass(frozen=True)
class VendorArtifacts:
    """Where each vendor archive (musa/vendor.py) comes from; all None when the SDK comes from
    --musa-apt-source."""

    musa_toolkits: Optional[Location] = None
    mudnn: Optional[Location] = None
    mccl: Optional[Location] = None

    def archives(self):
        """(vendor.Archive, Location) of each archive given, in the catalog's order."""
        return [(a, getattr(self, a.name)) for a in vendor.ARCHIVES if getattr(self, a.name)]

MusaStack = sdk.MusaStack


def resolve_stack(values, env, *, dev: bool, builder: Optional[Builder] = None, selection=None) -> MusaStack:
    """The MUSA stack; credentials in --musa-pip-index-url need `builder` to be BuildKit (a secret)."""
    index, secret = index_url(values.get("musa_pip_index_url") or "", "--musa-pip-index-url", builder)
    stack = sdk.resolve_stack(values, env, index, dev=dev, selection=selection)
    return dataclasses.replace(stack, pip_index_secret=secret) if secret else stack


@dataclass(frozen=True)
class DevOptions:
    common: Common
    image: ImageRef
    base_img: str
    dockerfile: Path
    vendor: VendorArtifacts
    vision_tag: str
    vision_repo: str
    vision_root: Path
    torch_musa_repo: str          # a URL, or a local repo path (used as it is)
    torch_musa_local: bool
    torch_musa_ref: Optional[str]
    stack: MusaStack = MusaStack()
    components: tuple = ()        # components.Component: kineto, muAlg, muThrust, torchaudio given
    compile_cache: str = "off"    # ccache's max size (e.g. 20G), or off (--no-compile-cache)
    compile_cache_remote: Optional[Secret] = None   # ccache's remote storage (--compile-cache-remote), a secret
    inputs: Optional[Resolved] = None   # the GPU arch selection, each input's source, the pins' versions
    also: tuple = ()                      # the image's other references (more -t), tagged with it
    sdk_line: Optional[str] = None        # the MUSA SDK line the image installs (5.2), when something names it


@dataclass(frozen=True)
class ReleaseOptions:
    common: Common
    image: ImageRef
    system: System
    dockerfile: Path
    python_version: str
    python_env: str
    python_prefix: str
    conda: Optional[Location]
    vendor: VendorArtifacts
    torch_whl: Optional[Location]         # None: --musa-wheel torch==... from the MUSA index
    torch_musa_whl: Optional[Location]
    notes: tuple = ()
    stack: MusaStack = MusaStack()
    extra_wheels: tuple = ()              # (dist, Location): --wheel and the pins file's other wheels
    inputs: Optional[Resolved] = None     # the GPU arch selection, each input's source, the pins' versions
    also: tuple = ()                      # the image's other references (more -t), tagged with it
    sdk_line: Optional[str] = None        # the MUSA SDK line the image installs (5.2), when something names it


def _required_location(values, env, key: str, flag: str, var: str) -> Location:
    value = values.get(key) or env.get(var)
    if not value:
        raise ConfigError(f"{flag} is required (or set ${var}): give the URL or path of the archive")
    return parse_location(value, what=flag.split("/")[-1])


def resolve_vendor(values, env, stack: MusaStack = MusaStack()) -> VendorArtifacts:
    """Each vendor archive from its flag, else its old variable; the required ones must be given."""
    if stack.apt:
        return VendorArtifacts()
    given = {}
    for a in vendor.ARCHIVES:
        if a.required:
            given[a.name] = _required_location(values, env, a.key, a.flags, a.env)
        elif values.get(a.key) or env.get(a.env):
            given[a.name] = parse_location(values.get(a.key) or env.get(a.env), what=a.flags.split("/")[-1])
    return VendorArtifacts(**given)


def _dockerfile(values, task: str, home: Path) -> Path:
    value = validate.path(values.get("docker_file") or defaults.TASKS[task]["docker_file"], "-f/--docker-file")
    path = _path(value, home)
    path = path if path.is_absolute() else ASSETS / path
    # Checked now, not after the clones and downloads that come before staging.
    if path.is_dir():
        raise ConfigError(f"-f/--docker-file {path} is a directory: name the Dockerfile in it")
    if not path.is_file():
        raise ConfigError(f"-f/--docker-file {path} does not exist: check the path (a relative one is "
                          "taken from the repo root)")
    return path


def repo_url(value: str, flag: str, local_ok: bool = True) -> str:
    """A repo URL git may clone from (validate.repo_url) that also parses (an unclosed '[' of an
    IPv6 host, a space: refused, not a traceback)."""
    from urllib.parse import urlsplit
    validate.repo_url(value, flag, local_ok=local_ok)
    if validate.is_url(value) and "://" in value:
        try:
            urlsplit(value).port
        except ValueError as err:
            raise ConfigError(f"{flag} {redact(value)} is not a valid URL ({err}): check it") from None
    if validate.is_url(value) and any(c.isspace() for c in value):
        raise ConfigError(f"{flag} {redact(value)!r} holds a space: a repo URL has none")
    return value


def resolve_dev(values, env: Mapping[str, str], machine: Optional[str] = None) -> DevOptions:
    """Check build-dev's flags. Raises ConfigError."""
    resolved, common = _inputs("build-dev", values, env, machine)
    values = resolved.values
    d = defaults.TASKS["build_dev"]
    image, also = image_refs(values.get("image"), common.tags, d["image"], defaults.default("", "tag"))
    base = image_reference(values.get("base_img") or "", "-b/--base-img")
    repo = values.get("torch_musa_repo") or d["torch_musa_repo"]
    local = not validate.is_url(repo)
    if local:
        repo = str(_path(validate.local_repo(repo, "--torch-musa-repo"), common.home))
    else:
        repo = repo_url(repo, "--torch-musa-repo", local_ok=False)
    root = _root(values, env, "vision_root", "TORCH_VISION_REPO_ROOT_PATH", common.home)
    ref = values.get("torch_musa_ref")
    stack = resolve_stack(values, env, dev=True, builder=common.builder, selection=resolved.selection)
    vendor_given = resolve_vendor(values, env, stack)
    line = one_sdk_line(resolved, stack, vendor_given, ())
    return DevOptions(
        sdk_line=line,
        common=common,
        image=image,
        also=also,
        base_img=base,
        dockerfile=_dockerfile(values, "build_dev", common.home),
        vendor=vendor_given,
        vision_tag=validate.git_ref(values.get("vision_tag") or d["vision_tag"], "--vision-tag"),
        vision_repo=repo_url(values.get("vision_repo") or d["vision_repo"], "--vision-repo"),
        vision_root=_path(root, common.home),
        torch_musa_repo=repo,
        torch_musa_local=local,
        torch_musa_ref=validate.git_ref(ref, "--torch-musa-ref") if ref else None,
        stack=stack,
        components=components.resolve(values, env, common.home, url=repo_url, path=_path, root=_root),
        compile_cache="off" if values.get("no_compile_cache") else _size(
            values.get("compile_cache_size") or d["compile_cache_size"], "--compile-cache-size"),
        compile_cache_remote=compile_cache_remote(values.get("compile_cache_remote") or "",
                                                  bool(values.get("compile_cache_remote_only_read"))),
        inputs=resolved,
    )


def _size(value: str, flag: str) -> str:
    """A ccache size such as 20G or 500M (ccache's CCACHE_MAXSIZE)."""
    if not re.fullmatch(r"[1-9][0-9]{0,5}(\.[0-9]{1,2})?[KMGT]", str(value)):
        raise ConfigError(f"{flag} {value!r} is not a size such as 20G or 500M")
    return str(value)


def resolve_release(values, env: Mapping[str, str], machine: Optional[str] = None) -> ReleaseOptions:
    """Check release's flags. Raises ConfigError or ArtifactError."""
    resolved, common = _inputs("release", values, env, machine)
    values = resolved.values
    d = defaults.TASKS["release"]
    image, also = image_refs(values.get("image"), common.tags, d["image"], defaults.default("", "tag"))
    base = values.get("base_img") or d["base_img"]
    try:
        sys_ = SYSTEMS[base]
    except KeyError:
        raise ConfigError(
            f"-b/--base-img {base!r} is not an OS image release supports: choose one of {', '.join(SYSTEMS)}"
        ) from None
    version, python_env, prefix, conda, notes = resolve_python_env(values, sys_, common.platform.machine,
                                                                   "release")
    stack = resolve_stack(values, env, dev=False, builder=common.builder, selection=resolved.selection)
    from_index = sdk.from_index(values, stack, {"torch_whl_url": "--torch-whl-url",
                                                "torch_musa_whl_url": "--torch-musa-whl-url"})
    vendor_given = resolve_vendor(values, env, stack)
    # torch and torch_musa come as wheel files, unless --musa-wheel names them for the MUSA index
    torch_whl = None if "torch" in from_index else \
        _wheel_file(values, env, "torch_whl_url", "--torch-whl-url", "TORCH_WHL_URL", version, common.platform)
    torch_musa_whl = None if "torch-musa" in from_index else \
        _wheel_file(values, env, "torch_musa_whl_url", "--torch-musa-whl-url", "TORCH_MUSA_WHL_URL", version,
                    common.platform)
    extra = extra_wheels(values.get("wheel") or (), values.get("pins_wheel") or (), version, common.platform)
    line = one_sdk_line(resolved, stack, vendor_given, [("--torch-whl-url", torch_whl),
                                                 ("--torch-musa-whl-url", torch_musa_whl)]
                 + [("--wheel", location) for _, location in extra])
    return ReleaseOptions(
        sdk_line=line,
        common=common,
        image=image,
        also=also,
        system=sys_,
        dockerfile=_dockerfile(values, "release", common.home),
        python_version=version,
        python_env=python_env,
        python_prefix=prefix,
        conda=conda,
        vendor=vendor_given,
        torch_whl=torch_whl,
        torch_musa_whl=torch_musa_whl,
        notes=notes,
        stack=stack,
        extra_wheels=extra,
        inputs=resolved,
    )


def one_sdk_line(resolved: Resolved, stack: MusaStack, given: VendorArtifacts, wheel_files) -> Optional[str]:
    """The image installs one MUSA SDK line (musa/lines.py): `--musa-runtime`, the pins file's
    `versions: musa` and the toolkit archive's name agree, and so do the wheels that name a line
    (wheel files `wheel_files`, (flag, Location or None), and --musa-wheel's requirements); a wheel
    that names an arch is built for one of --gpu-arch's. Returns the line, None when nothing
    names one. Raises ConfigError naming both sides."""
    pinned = resolved.pins.versions.get("musa") if resolved.pins else None
    runtime_source = next((s for n, _, s in resolved.sources if n == "musa_runtime"), "flag")
    sdk = [
        lines.sdk_claim(stack.apt.runtime, f"--musa-runtime {stack.apt.runtime}") if stack.apt and
        not runtime_source.startswith("pins ") else None,
        lines.sdk_claim(pinned.value, f"{resolved.pins.where(pinned.line)} (versions.musa {pinned.value})")
        if pinned else None,
        lines.sdk_claim(lines.of_archive(given.musa_toolkits.display), f"-m {given.musa_toolkits.display}")
        if given.musa_toolkits else None,
    ]
    wheels = [lines.wheel_claim(wheelname.parse(flag, loc.filename, loc.display).version, f"{flag} {loc.filename}")
              for flag, loc in wheel_files if loc is not None and wheelname.is_wheel_name(loc.filename)]
    wheels += [lines.wheel_claim(w.version, f"--musa-wheel {w.requirement}") for w in stack.wheels]
    targets = resolved.selection.targets if resolved.selection is not None else ()
    return lines.check(sdk, wheels, targets)


def _wheel_file(values, env, key: str, flag: str, var: str, python_version: str, target: Platform) -> Location:
    """A required wheel file, its name checked for the image's Python and platform before
    anything is fetched. Raises ConfigError or ArtifactError."""
    location = _required_location(values, env, key, flag, var)
    if location.filename.endswith(".whl"):
        wheel_dist(flag, location.filename, location.display, python_version, target)
    return location


def extra_wheels(given, pinned, python_version: str, machine: "Platform | str") -> tuple:
    """(dist, location) of each --wheel, then of each of the pins file's other wheels whose
    distribution no --wheel gives (a flag wins over the pins file), each name checked for the
    image's Python and platform now, before anything is fetched. Raises ConfigError or ArtifactError."""
    found, flagged = {}, set()
    for value, from_flag in [(v, True) for v in ([given] if isinstance(given, str) else given)] + \
            [(v, False) for v in pinned]:
        location = parse_location(value, what="--wheel")
        dist = wheel_dist("--wheel", location.filename, location.display, python_version, machine)
        if dist in ("torch", "torch_musa"):
            raise ConfigError(f"--wheel {location.display} is a {dist} wheel: give it with --{dist.replace('_', '-')}-whl-url")
        if dist in flagged and not from_flag:
            continue
        if dist in found:
            raise ConfigError(f"--wheel gives two {dist} wheels ({found[dist].display}, {location.display}): keep one")
        found[dist] = location
        if from_flag:
            flagged.add(dist)
    return tuple(found.items())
