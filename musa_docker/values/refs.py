"""Image references as docker spells them: `name[:tag]`, checked against the grammar of
docker/distribution's reference package (without digests), and names derived from them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Tuple

from ..errors import ConfigError

# The grammar of docker/distribution's reference package, without digests.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?)"
_NAME_RE = re.compile(rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_NAME_MAX = 255
# Docker's meaning of a reference without a tag, not a default of this project.
_IMPLICIT_TAG = "latest"


@dataclass(frozen=True)
class ImageRef:
    name: str
    tag: str

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}"


def image_name(value: str, flag: str) -> str:
    """A repository name as docker accepts it, without a tag."""
    if not value:
        raise ConfigError(f"{flag} is required: name the image, e.g. {flag} musa-pytorch-base")
    name, _, tag = value.rpartition(":") if ":" in value.split("/")[-1] else (value, "", "")
    if tag:
        raise ConfigError(f"{flag} takes a name without a tag (got {value!r}); pass the tag with -t {tag}")
    if len(value) > _NAME_MAX or not _NAME_RE.fullmatch(value):
        raise ConfigError(
            f"{flag} {value!r} is not a valid image name: use lower-case letters, digits and "
            "'.', '_', '-' separators, optionally after a registry host and '/'"
        )
    return value


def image_tag(value: str, flag: str = "-t/--tag") -> str:
    if not isinstance(value, str) or not _TAG_RE.fullmatch(value):
        raise ConfigError(
            f"{flag} {value!r} is not a valid tag: up to 128 letters, digits, '_', '.', '-', "
            "not starting with '.' or '-'"
        )
    return value


def image_refs(image: Optional[str], tags, default_image: str, default_tag: str) -> Tuple[ImageRef, Tuple[str, ...]]:
    """The image a build makes and its other references, from -i and every -t, as docker reads -t:
    a tag (`-t 2026`) names `IMAGE:2026`, a reference (`-t team/base:2026`, `-t team/base`) names
    itself. The first is the image; the others get the same image once it checks out. Without -i,
    a first -t that is a reference names the image. Raises ConfigError."""
    tags = [tags] if isinstance(tags, str) else [t for t in (tags or ()) if t]
    refs = []
    for value in tags or [default_tag]:
        value = str(value)
        if ":" in value.split("/")[-1] or "/" in value:
            image_reference(value, "-t/--tag")
            last = value.split("/")[-1]
            name, tag = value.rsplit(":", 1) if ":" in last else (value, "latest")
            refs.append(ImageRef(name, tag))
        else:
            refs.append(ImageRef(image or "", image_tag(value)))
    first_named = bool(refs[0].name)
    name = image_name(image or (refs[0].name if first_named else default_image), "-i/--image")
    refs = [r if r.name else ImageRef(name, r.tag) for r in refs]
    unique = list(dict.fromkeys(str(r) for r in refs))
    primary = refs[0]
    return primary, tuple(u for u in unique if u != str(primary))


_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_reference(value: str, flag: str) -> str:
    """A full reference `name[:tag]` or `name@sha256:…` (for -b and -i of shell): returned as given."""
    if not value:
        raise ConfigError(f"{flag} is required: name an image, e.g. {flag} musa-pytorch-base:latest")
    if "@" in value:
        name, _, digest = value.partition("@")
        if not _DIGEST.match(digest):
            raise ConfigError(f"{flag} {value!r}: after '@' comes a digest, sha256: and 64 hex digits")
        image_name(name, flag)
        return value
    last = value.split("/")[-1]
    name, tag = (value.rsplit(":", 1) if ":" in last else (value, ""))
    image_name(name, flag)
    if tag:
        image_tag(tag, flag)
    return value


def container_name(image: str) -> str:
    """`musa-pytorch-dev:latest` -> `musa-pytorch-dev-latest`: a valid container name from a reference."""
    name = re.sub(r"[^a-zA-Z0-9_.-]+", "-", image.split("/")[-1]).strip("-.")
    return name or "musa-docker"


def split_reference(ref: str) -> Tuple[Optional[str], str, str]:
    """`[registry/]path[:tag]` -> (registry or None, path, tag), by docker's rule: the first
    component names a registry when it has a '.' or ':', or is `localhost`."""
    last = ref.split("/")[-1]
    name, tag = ref.rsplit(":", 1) if ":" in last else (ref, _IMPLICIT_TAG)
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest, tag
    return None, name, tag


def registry_of(ref: str) -> str:
    """Where a push of `ref` goes, for people: its registry host, else Docker Hub."""
    return split_reference(ref)[0] or "Docker Hub"
