"""The shell task's options: the image, the container's name, size of /dev/shm and env, checked
and frozen before anything touches the engine."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from .. import defaults
from ..errors import ConfigError
from ..values import validate
from ..values.refs import container_name, image_reference

# docker's sizes: a number, then b, k, m or g (either case), optionally followed by b
_SIZE_RE = re.compile(r"[0-9]+(?:[kmgKMG][bB]?|[bB])?")
_ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTAINER_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


@dataclass(frozen=True)
class ShellOptions:
    image: str
    name: str
    shm_size: str
    privileged: bool
    env: tuple                    # ("K=V", ...), MTHREADS_VISIBLE_DEVICES first unless overridden
    cmd: Optional[str]
    docker_host: Optional[str]
    dry_run: bool = False
    pins: Optional[str] = None    # a pins file whose compatibility section the host is held against


def resolve_shell(values: Mapping[str, Any], env: Mapping[str, str]) -> ShellOptions:
    d = defaults.TASKS["shell"]
    image = image_reference(values.get("image") or "", "-i/--image")
    pairs = []
    for item in values.get("env") or ():
        key, sep, _ = item.partition("=")
        if not _ENV_KEY_RE.fullmatch(key):
            raise ConfigError(f"-e/--env {item!r} is not KEY=VALUE")
        if not sep:
            # docker's habit: `-e KEY` passes this host's KEY
            if key not in env:
                raise ConfigError(f"-e/--env {item!r} is not KEY=VALUE, and {key} is not set on this host to pass "
                                  f"on: give {key}=VALUE, or set it")
            item = f"{key}={env[key]}"
        pairs.append(item)
    if not any(p.startswith("MTHREADS_VISIBLE_DEVICES=") for p in pairs):
        pairs.insert(0, f"MTHREADS_VISIBLE_DEVICES={d['visible_devices']}")
    name = values.get("name") or container_name(image)
    if not _CONTAINER_RE.fullmatch(name):
        raise ConfigError(f"--name {name!r} is not a valid container name: letters, digits, '_', '.', '-'")
    privileged = values.get("privileged")
    shm_size = values.get("shm_size") or d["shm_size"]
    if not _SIZE_RE.fullmatch(shm_size):
        raise ConfigError(f"--shm-size {shm_size!r} is not a size: give a number and a unit, e.g. --shm-size 16G")
    return ShellOptions(
        image=image,
        name=name,
        shm_size=shm_size,
        privileged=d["privileged"] if privileged is None else bool(privileged),
        env=tuple(pairs),
        cmd=values.get("cmd") or None,
        docker_host=validate.docker_host(values["docker_host"]) if values.get("docker_host") else None,
        dry_run=bool(values.get("dry_run")),
        pins=values.get("pins") or None,
    )
