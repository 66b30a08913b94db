"""The docker client: which builder runs a build, and the BuildKit command line it gets.

docker-py speaks only the classic builder (docker/docker-py#2230), so BuildKit builds drive the
docker client: `docker buildx build` when the buildx plugin answers, else a client with BuildKit
built in (`DOCKER_BUILDKIT=1 docker build`, Docker CLI before 23). The client is probed with no
engine in reach (DOCKER_HOST pointed at a socket that cannot exist), so choosing a builder, and
`--dry-run`, contact no engine. Whether the engine can run BuildKit is asked at build time.

The build itself runs in `buildkit.run`; this module only decides and spells it, so options
and the plan can use it without loading anything that builds.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple

from ..errors import ConfigError
from ..values.locations import redact
from ..values.network import secret_flag

BUILDERS = ("auto", "buildkit", "classic")
# What the CLI reads to find and reach the engine, as docker-py does; PATH and HOME for its plugins.
PASSED = ("PATH", "HOME", "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT",
          "DOCKER_CONFIG", "BUILDX_CONFIG")
MIN_API = (1, 39)           # Engine 18.09: the first with BuildKit built in
BUILTIN_BEFORE = 23         # Docker CLI 23 made `docker build` an alias of buildx
_VERSION = re.compile(r"^Docker version (\d+)\.(\d+)\.(\d+)")
_GET = ("install the buildx plugin (docker-buildx-plugin, or docker-buildx into ~/.docker/cli-plugins), "
        "or name a client before 23 with BuildKit built in, e.g. --docker-cli /usr/bin/docker (Debian's docker.io)")
PROBE_TIMEOUT = 30


@dataclass(frozen=True)
class BuildSettings:
    """What one build is told, whichever builder runs it: the Dockerfile (its path in the
    context), build args, labels, the RUN steps' network, and the cache and pull switches."""

    dockerfile: str = "Dockerfile"
    buildargs: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    network: str = "host"
    nocache: bool = False
    pull: bool = False
    platform: str = ""          # linux/arm64: the base image's and the result's; "" the engine's


@dataclass(frozen=True)
class Builder:
    """The builder a build uses, and why; pure data the plan shows."""

    kind: str                                   # "classic" | "buildkit"
    reason: str
    cli: Optional[str] = None                   # absolute path of the docker client (buildkit)
    buildx: bool = False                        # `docker buildx build` rather than DOCKER_BUILDKIT=1
    buildx_builder: Optional[str] = None
    cache_from: Tuple[str, ...] = ()
    cache_to: Optional[str] = None
    host: Optional[str] = None                  # --docker-host, passed as --host
    env: Tuple[Tuple[str, str], ...] = ()       # the child's environment (PASSED only)
    auto: bool = False                          # chosen by `auto`: may still fall back to classic

    @property
    def inline_cache(self) -> bool:
        """The engine's own BuildKit: the cache travels inside the image."""
        return self.kind == "buildkit" and not self.buildx_builder


def _probe_env(env: Mapping[str, str], dead: str) -> dict:
    child = {k: env[k] for k in ("PATH", "HOME", "DOCKER_CONFIG") if env.get(k)}
    child["DOCKER_HOST"] = f"unix://{dead}/no-engine.sock"
    return child


def _run(argv, env) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=PROBE_TIMEOUT, check=False)


def probe(cli: str, env: Mapping[str, str]) -> Tuple[str, Tuple[int, int, int], bool]:
    """(absolute path, version, buildx answers) of the docker client `cli`, asked with no engine in
    reach. Raises ConfigError when it does not exist or is not a docker client."""
    path = shutil.which(cli, path=env.get("PATH")) if "/" not in cli else (cli if Path(cli).is_file() else None)
    if not path:
        raise ConfigError(f"--docker-cli {cli!r}: no such program{' on PATH' if '/' not in cli else ''}; "
                          "name a docker client, e.g. --docker-cli /usr/bin/docker")
    path = str(Path(path).absolute())
    with tempfile.TemporaryDirectory(prefix="musa-docker-probe-") as dead:
        child = _probe_env(env, dead)
        try:
            out = _run([path, "--version"], child)
            match = _VERSION.match(out.stdout.strip()) if out.returncode == 0 else None
            if not match:
                raise ConfigError(f"--docker-cli {path} is not a docker client (`{path} --version` did not say "
                                  "`Docker version X.Y.Z`); name one, e.g. --docker-cli /usr/bin/docker")
            buildx = _run([path, "buildx", "version"], child).returncode == 0
        except (OSError, subprocess.SubprocessError) as err:
            raise ConfigError(f"--docker-cli {path} cannot be run ({err}); name a docker client") from err
    return path, tuple(int(g) for g in match.groups()), buildx


def choose(builder: str, docker_cli: str, env: Mapping[str, str], *, docker_host: Optional[str] = None,
           buildx_builder: Optional[str] = None, cache_from: Sequence[str] = (),
           cache_to: Optional[str] = None, check_builder: bool = True) -> Builder:
    """The builder for `--builder` (auto | buildkit | classic). Raises ConfigError for a bad value,
    a client that cannot do what is asked, and an unknown `--buildx-builder`."""
    if builder not in BUILDERS:
        raise ConfigError(f"--builder {builder!r} is not one of {', '.join(BUILDERS)}")
    child = tuple((k, env[k]) for k in PASSED if env.get(k))
    common = dict(cache_from=tuple(cache_from), host=docker_host, env=child)
    if builder == "classic":
        if docker_cli != "docker":
            probe(docker_cli, env)      # a bad --docker-cli is reported whichever builder runs
        if cache_to or buildx_builder:
            raise ConfigError(f"{'--cache-to' if cache_to else '--buildx-builder'} needs BuildKit: "
                              "use --builder buildkit (or auto) with a buildx builder")
        return Builder("classic", "--builder classic", **common)
    explicit = builder == "buildkit" or bool(buildx_builder or cache_to)
    try:
        path, version, buildx = probe(docker_cli, env)
    except ConfigError as err:
        if explicit or docker_cli != "docker":
            raise
        return Builder("classic", f"no docker client to drive BuildKit ({err}) (auto)", **common)
    shown = ".".join(map(str, version))
    if buildx:
        how, reason = True, f"{path} {shown} has the buildx plugin"
    elif version[0] < BUILTIN_BEFORE and not buildx_builder:
        how, reason = False, f"{path} {shown} has BuildKit built in (DOCKER_BUILDKIT=1)"
    else:
        why = (f"{path} {shown} has no buildx plugin" + ("" if version[0] < BUILTIN_BEFORE else
               f", and clients from {BUILTIN_BEFORE} on have BuildKit only through it"))
        if buildx_builder:
            raise ConfigError(f"--buildx-builder {buildx_builder}: {why}; install the buildx plugin "
                              "(docker-buildx-plugin, or docker-buildx into ~/.docker/cli-plugins)")
        if explicit:
            raise ConfigError(f"{'--cache-to' if cache_to else '--builder buildkit'}: {why}; {_GET}")
        return Builder("classic", f"{why} (auto)", **common)
    if buildx_builder:
        _check_buildx_builder(path, buildx_builder, env, check_builder)
        reason += f", builder {buildx_builder}"
    elif cache_to:
        raise ConfigError(
            f"--cache-to {cache_to}: the engine's built-in BuildKit cannot export a cache; its images carry "
            "their cache inline (push the image and pass it to --cache-from), or name a buildx builder that "
            "exports caches with --buildx-builder NAME")
    return Builder("buildkit", reason, cli=path, buildx=how, buildx_builder=buildx_builder,
                   cache_to=cache_to, auto=builder == "auto", **common)


def _check_buildx_builder(cli: str, name: str, env: Mapping[str, str], check: bool) -> None:
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", name):
        raise ConfigError(f"--buildx-builder {name!r} is not a builder name: see `docker buildx ls`")
    if not check:
        return      # a dry run reaches no engine, and some drivers ask theirs
    out = _run([cli, "buildx", "inspect", f"--builder={name}"], dict(env))
    if out.returncode != 0:
        raise ConfigError(f"--buildx-builder {name}: no such buildx builder ({out.stderr.strip()[:200]}); "
                          "see `docker buildx ls`, or create one with `docker buildx create --name NAME`")


def command(b: Builder, s: BuildSettings, *, context: str, iidfile: str,
            secrets: Sequence[Tuple[str, str]] = ()) -> Tuple[list, dict]:
    """(argv, extra env) of the build; `secrets` are (id, file) pairs. Every user value is the
    argument of its own `--flag=`, and `--` comes before the context dir, so no value can become
    an option."""
    argv = [b.cli] + ([f"--host={b.host}"] if b.host else [])
    argv += ["buildx", "build", f"--builder={b.buildx_builder}"] if b.buildx_builder else (
        ["buildx", "build"] if b.buildx else ["build"])
    # the CLI reads --file relative to its own working dir, not to the context
    argv += ["--progress=plain", f"--iidfile={iidfile}", f"--file={context}/{s.dockerfile}", f"--network={s.network}"]
    if b.buildx_builder:
        argv.append("--load")      # a builder of its own keeps the image unless told to load it
    if s.platform:
        argv.append(f"--platform={s.platform}")
    if s.nocache:
        argv.append("--no-cache")
    if s.pull:
        argv.append("--pull")
    args = dict(s.buildargs)
    if b.inline_cache:
        args["BUILDKIT_INLINE_CACHE"] = "1"
    argv += [f"--build-arg={k}={v}" for k, v in args.items()]
    argv += [f"--label={k}={v}" for k, v in s.labels.items()]
    argv += [secret_flag(i, path) for i, path in secrets]
    argv += [f"--cache-from={ref}" for ref in b.cache_from]
    if b.cache_to:
        argv.append(f"--cache-to=type=registry,ref={b.cache_to},mode=max")
    argv += ["--", context]
    return argv, ({} if b.buildx else {"DOCKER_BUILDKIT": "1"})


def render(b: Builder, s: BuildSettings, **kwargs) -> str:
    """The build command as the plan shows it, credentials redacted."""
    argv, extra = command(b, s, **kwargs)
    shown = [f"{k}={v}" for k, v in extra.items()] + [_quote(a) for a in argv]
    return redact(" ".join(shown))


def _quote(arg: str) -> str:
    return arg if re.match(r"^[\w@%+=:,./<>-]+$", arg) else "'" + arg.replace("'", "'\\''") + "'"


# --- the build -----------------------------------------------------------------------------------
