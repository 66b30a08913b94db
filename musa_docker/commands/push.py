"""`push`: tag a local image as `[REGISTRY/]NAME:TAG` and push it, with the progress streamed one
line per layer state and the digest the registry stored printed at the end.

Credentials come from the docker config (`docker login`), or from `--username` with the password
read from stdin (`--password-stdin`) or from `$MUSA_DOCKER_REGISTRY_PASSWORD`: never from the
command line, where `ps` and the shell history would show it, and never printed.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, Mapping, Optional, TextIO

from ..defaults import PASSWORD_VAR
from ..errors import ConfigError, MusaDockerError, PushError
from ..values import validate
from ..values.refs import image_name, image_reference, image_tag, split_reference
from ..options.cascade import sourced
from ..util import Say, human_size, short_id

_DIGEST_RE = re.compile(r"digest: (sha256:[0-9a-f]{64})")


@dataclass(frozen=True)
class PushOptions:
    image: str                    # name:tag on the engine
    target: str                   # [registry/]name:tag to push
    registry: Optional[str]       # None: Docker Hub
    username: Optional[str]       # None: the docker config's credentials
    password: str = field(repr=False, default="")
    docker_host: Optional[str] = None
    dry_run: bool = False                 # say what would be pushed, contact no engine or registry

    @property
    def registry_name(self) -> str:
        return self.registry or "Docker Hub"


def _registry(value: str) -> str:
    if "://" in value:
        raise ConfigError(
            f"--registry {value!r} takes a host, not a URL: give HOST[:PORT], e.g. --registry {value.split('://', 1)[1].split('/')[0]}"
        )
    host = value.rstrip("/")
    try:
        image_name(f"{host}/probe", "--registry")
    except ConfigError:
        raise ConfigError(
            f"--registry {value!r} is not a registry host: give HOST[:PORT], e.g. --registry registry.example.com:5000"
        ) from None
    if split_reference(f"{host}/probe")[0] != host:
        # Docker reads `name/...` without '.', ':' or `localhost` as a Docker Hub account.
        raise ConfigError(
            f"--registry {value!r} would be read as a Docker Hub account, not a host: give a dotted "
            f"name or a port, e.g. --registry {host}:5000 or --registry {host}.example.com"
        )
    return host


def _password(values: Mapping[str, Any], env: Mapping[str, str], stdin: TextIO, username: str) -> str:
    if values.get("password_stdin"):
        text = stdin.read()
        # As `docker login --password-stdin`: only the line end `echo` adds is not the password's.
        password = text[:-1] if text.endswith("\n") else text
        password = password[:-1] if password.endswith("\r") else password
        if not password:
            raise ConfigError("--password-stdin read an empty password: pipe it in, e.g. `cat token.txt | musa-docker push … --password-stdin`")
        return password
    password = env.get(PASSWORD_VAR) or ""
    if not password:
        raise ConfigError(
            f"--username {username} needs a password: pipe it to --password-stdin "
            f"(e.g. `cat token.txt | musa-docker push … --username {username} --password-stdin`) or set "
            f"{PASSWORD_VAR}; it is never taken from the command line"
        )
    return password


def resolve(values: Mapping[str, Any], env: Mapping[str, str], stdin: TextIO) -> PushOptions:
    """Check the flags; raises ConfigError naming the flag. Reads stdin only for --password-stdin."""
    image = image_reference(values.get("image") or "", "-i/--image")
    image_registry, path, tag = split_reference(image)
    if ":" not in image.split("/")[-1]:
        image = f"{image}:{tag}"
    registry = _registry(values["registry"]) if values.get("registry") else image_registry
    remote_name = values.get("remote_name") or path
    if values.get("remote_name"):
        image_name(remote_name, "--remote-name")
        named, _, _ = split_reference(remote_name)
        if named:
            raise ConfigError(
                f"--remote-name {remote_name!r} names a registry ({named}): give the host with "
                f"--registry {named} and the name alone with --remote-name {remote_name.split('/', 1)[1]}"
            )
    remote_tag = image_tag(values["remote_tag"], "--remote-tag") if values.get("remote_tag") else tag
    target = f"{registry}/{remote_name}" if registry else remote_name
    image_name(target, "the target")
    username = values.get("username") or None
    if values.get("password_stdin") and not username:
        raise ConfigError("--password-stdin needs --username: name the account the password is for")
    password = _password(values, env, stdin, username) if username else ""
    return PushOptions(
        image=image,
        target=f"{target}:{remote_tag}", registry=registry, username=username, password=password,
        docker_host=validate.docker_host(values["docker_host"]) if values.get("docker_host") else None,
        dry_run=bool(values.get("dry_run")),
    )


_UNREACHABLE = ("connection refused", "no such host", "i/o timeout", "no route to host",
                "network is unreachable", "connection reset", "context deadline exceeded")
_REFUSED = ("unauthorized", "authentication required", "incorrect username or password")


def explain(options: PushOptions, reason: str) -> str:
    """The engine's or registry's words about a failed login or push, said for people."""
    where = options.registry_name
    text = reason.lower()
    unreachable = next((m for m in _UNREACHABLE if m in text), None)
    if unreachable:
        return f"cannot reach registry {where}: start it or check --registry ({unreachable})"
    if "server gave http response to https client" in text:
        return (f"registry {where} speaks plain http, which the engine allows only for its insecure "
                f"registries: add {where} to `insecure-registries` in the engine's daemon.json, or serve it over TLS")
    if "x509" in text or "certificate" in text:
        return f"the engine does not trust the certificate of registry {where} ({reason}): install its CA on the engine's host"
    if "no basic auth credentials" in text:
        login = f"docker login {options.registry}" if options.registry else "docker login"
        return f"registry {where} needs credentials: log in with `{login}`, or pass --username with --password-stdin"
    if any(m in text for m in _REFUSED):
        return f"registry {where} refused the credentials: check --username / docker login"
    if "denied" in text or "forbidden" in text:
        return f"registry {where} denied the push of {options.target}: the account may not push to that name ({reason})"
    return f"pushing {options.target} to registry {where} failed: {reason}"


def _scrubbed(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def follow(events: Iterable[dict], say: Say, options: PushOptions) -> Optional[str]:
    """Print one line per layer state change; return the digest the registry stored. Raises
    PushError on an error event."""
    states: Dict[str, str] = {}
    sizes: Dict[str, int] = {}
    digest = None
    for event in events:
        if "error" in event or "errorDetail" in event:
            reason = (event.get("errorDetail") or {}).get("message") or event.get("error") or "unknown error"
            raise PushError(explain(options, reason))
        aux = event.get("aux") or {}
        if aux.get("Digest"):
            digest = aux["Digest"]
        status = event.get("status") or ""
        layer = event.get("id")
        if not layer:
            found = _DIGEST_RE.search(status)
            digest = digest or (found.group(1) if found else None)
            continue
        total = (event.get("progressDetail") or {}).get("total")
        if total:
            sizes[layer] = total
        # "Retrying in 5 seconds", "in 4 seconds", …: one state, not a countdown.
        state = "Retrying" if status.startswith("Retrying in") else status
        if states.get(layer) == state:
            continue
        states[layer] = state
        size = f" ({human_size(sizes[layer])})" if state == "Pushed" and layer in sizes else ""
        say(f"  {layer}: {status}{size}")
    return digest


def run(engine, options: PushOptions, say: Say, env: Mapping[str, str]) -> str:
    """Tag the image as the target, log in when asked, push; return the digest. Raises PushError,
    EngineError. A target tag made here is taken back when the push fails."""
    image = engine.image(options.image)
    if image is None:
        raise PushError(f"image {options.image} does not exist on {engine.host}: build it first, or check -i")
    before = engine.image(options.target)
    if before is not None and before.id == image.id:
        say(f"tag {options.target}: already on {options.image} ({short_id(image.id)})")
    else:
        was = f", was {short_id(before.id)}" if before is not None else ""
        say(f"tag {options.image} ({short_id(image.id)}) as {options.target}{was}")
        engine.tag(image.id, options.target)
    try:
        if options.username:
            say(f"login to {options.registry_name} as {options.username}")
            try:
                engine.login(options.username, options.password, options.registry)
            except PushError as err:
                raise PushError(explain(options, err.reason)) from err
            auth = {"username": options.username, "password": options.password,
                    "serveraddress": options.registry or "https://index.docker.io/v1/"}
        else:
            auth = engine.saved_auth(options.registry, env)
        say(f"push {options.target} to {options.registry_name}")
        digest = follow(engine.push(options.target, auth), say, options)
    except BaseException:
        _restore(engine, options.target, before, image)
        raise
    if not digest:
        raise PushError(f"the engine at {engine.host} pushed {options.target} but reported no digest")
    return digest


def _restore(engine, target: str, before, image) -> None:
    """Put the target tag back as it was before the push (absent, or on its old image)."""
    try:
        if before is None:
            engine.remove_image(target)
        elif before.id != image.id:
            engine.tag(before.id, target)
    except MusaDockerError:
        pass    # the push's own error is the one to report


def push(values, env: Mapping[str, str], out: TextIO = sys.stdout, stdin: TextIO = sys.stdin) -> int:
    """The `push` task. Raises ConfigError for bad flags, PushError / EngineError when the image
    cannot be pushed; no message, line or error ever holds the password."""
    values = sourced("push", values).values
    options = resolve(values, env, stdin)
    if options.dry_run:
        out.write(f"plan: push {options.image} as {options.target}"
                  f" to {options.registry_name}"
                  f"{' as ' + options.username if options.username else ' with the docker config credentials'}\n")
        return 0
    from ..engine.api import Engine   # here, so that bad flags never load the Docker SDK

    def say(line: str) -> None:
        out.write(_scrubbed(line, options.password) + "\n")
        out.flush()

    try:
        engine = Engine(options.docker_host, env)
        digest = run(engine, options, say, env)
    except MusaDockerError as err:
        if options.password and options.password in str(err):
            raise type(err)(_scrubbed(str(err), options.password)) from None
        raise
    say(f"pushed {options.target} digest {digest}")
    return 0
