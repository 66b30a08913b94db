"""Builds behind a corporate network: extra CAs, the host's proxies, credentialed pip indexes.

What must stay out of every layer and history entry reaches the RUN steps as BuildKit secrets:
the CAs of `--ca-cert` (one bundle) and a `--pip-index-url` with credentials. The plan carries a
secret as data: its id and where its value comes from (the CA files, or the flag), never the value
in anything it prints. `write` puts the values in files of a private dir beside the context, never
in it; the templates mount them in every RUN step that reaches the network (`@net`, see
dockerfile.py) and common/net_env.sh turns them into what apt, pip, conda, git and curl read.

The classic builder has no secrets: a CA or credentials would land in a layer or the history, so
both are refused with it. The host's proxies are Docker's predefined build args, which the engine
keeps out of `docker history` and out of the layer cache keys (both builders).
"""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from ..errors import ConfigError
from .locations import Location, parse_location, redact, strip_credentials

CA_SECRET = "musa_docker_ca"
PIP_INDEX_SECRET = "musa_docker_pip_index"
MUSA_PIP_INDEX_SECRET = "musa_docker_musa_pip_index"
SECRETS = (CA_SECRET, PIP_INDEX_SECRET, MUSA_PIP_INDEX_SECRET)     # every id the templates mount (dockerfile.py)
# ccache's remote storage (--compile-cache-remote): mounted in the compile steps only (dockerfile.dev),
# read by common/compile_cache.sh
COMPILE_CACHE_SECRET = "musa_docker_compile_cache_remote"
COMPILE_CACHE_SCHEMES = {"redis": 6379, "rediss": 6379, "http": 80, "https": 443}
NET_DIR = "/run/musa_docker_net"            # the tmpfs net_env.sh writes the CA bundle to
# Docker's predefined proxy args (ALL_PROXY from Engine 23 on; older engines ignore it), in
# either case: the engine keeps them out of the history and the layer cache keys.
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")
_NEEDS_BUILDKIT = "use --builder buildkit (e.g. with --docker-cli /usr/bin/docker)"


@dataclass(frozen=True)
class Secret:
    """A BuildKit secret of the build: its id, and what its value is made of."""

    id: str
    shown: str                                  # for people: the CA files, or the flag and redacted URL
    files: Tuple[Path, ...] = ()                # the CA files whose certificates make the value
    value: str = field(default="", repr=False)  # a URL with credentials: never printed

    def content(self) -> bytes:
        """The value: the URL, or the certificates of the CA files (only their PEM blocks).
        Raises ConfigError when a CA file went away since it was checked."""
        if not self.files:
            return self.value.encode()
        return "".join(b + "\n" for f in self.files for b in certificates(f, "--ca-cert")).encode()


def certificates(path: Path, flag: str) -> Tuple[str, ...]:
    """The PEM certificate blocks of `path`, each parsed by OpenSSL. Raises ConfigError naming
    `flag` for a file that is missing, unreadable, a dir, or holds no certificate that parses."""
    try:
        if path.is_dir():
            raise ConfigError(f"{flag} {path} is a directory: name a PEM file of CA certificates")
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise ConfigError(f"{flag} {path} does not exist: name a PEM file of CA certificates") from None
    except (OSError, ValueError) as err:      # unreadable, a name too long, a NUL byte in it
        why = getattr(err, "strerror", None) or str(err)
        raise ConfigError(f"{flag} {str(path)[:200]!r} cannot be read ({why}): name a readable PEM file") from None
    blocks = tuple(_PEM.findall(text))
    if not blocks:
        raise ConfigError(f"{flag} {path} holds no '-----BEGIN CERTIFICATE-----' block: give the CA "
                          "certificate in PEM form (`openssl x509 -in CA.der -inform der -out CA.pem`)")
    try:
        ssl.create_default_context(cadata="\n".join(blocks))
    except (ssl.SSLError, ValueError) as err:
        raise ConfigError(f"{flag} {path}: a certificate in it does not parse ({err}): give the CA "
                          "certificate in PEM form") from None
    return blocks


def ca_certs(given: Sequence[Path], builder) -> Tuple[Path, ...]:
    """The checked `--ca-cert` files (`~` already expanded), absolute. Raises ConfigError for a bad
    file, and with the classic builder, which cannot keep a CA out of every layer."""
    paths = []
    for path in (Path(p).absolute() for p in given):
        certificates(path, "--ca-cert")
        if path not in paths:
            paths.append(path)
    if paths and builder.kind != "buildkit":
        raise ConfigError(f"--ca-cert needs BuildKit: the classic builder ({builder.reason}) cannot keep the "
                          f"CA out of every layer; {_NEEDS_BUILDKIT}")
    return tuple(paths)


def no_credentials(location: Location, flag: str) -> None:
    """Refuse a URL with credentials where no secret can carry them: a build arg is stored in the
    image history, and a token there would leak to anyone who can pull the image."""
    if location.display != location.url:
        raise ConfigError(f"{flag} {location.display} carries credentials, which would be stored in the "
                          "image history; give one that needs none (a mirror or proxy on your network)")


def index_url(value: str, flag: str, builder=None) -> Tuple[str, str]:
    """(the URL without credentials, the URL with them or '') of a pip index given to `flag`.
    The first is a build arg (a new index host rebuilds what it installed), the second a secret.
    Raises ConfigError for a URL that is not http(s), and for credentials with the classic builder
    (or with no builder, where there is no build to keep them out of)."""
    if not value:
        return "", ""
    location = parse_location(value, what=flag)
    if location.scheme not in ("http", "https"):
        # pip runs inside the image, where a host path or file:// URL names nothing.
        raise ConfigError(
            f"{flag} {location.display} is not an http(s) URL, e.g. https://mirrors.example.com/pypi/simple"
        )
    if location.display == location.url:
        return location.url, ""
    if builder is None:
        no_credentials(location, flag)
    if builder.kind != "buildkit":
        raise ConfigError(f"{flag} {location.display} carries credentials, which the classic builder "
                          f"({builder.reason}) would store in the image history; {_NEEDS_BUILDKIT}, which passes "
                          "them as a secret, or give an index that needs none")
    return strip_credentials(location.url), location.url


def proxies(env: Mapping[str, str], off: bool = False) -> Tuple[Tuple[str, str], ...]:
    """The host's proxy variables (either case) as build args; none with `--no-proxy-env`."""
    if off:
        return ()
    return tuple((k, v) for k, v in sorted(env.items()) if k.upper() in PROXY_VARS and v)


def shown_proxy(value: str) -> str:
    """A proxy setting as people may see it: the credentials masked (`user:pw@host:3128` too)."""
    return redact(value) if "://" in value else re.sub(r"^[^@/\s]*@", "***@", value)


def shown(proxy_args) -> dict:
    return {name: shown_proxy(value) for name, value in proxy_args}


def plan_lines(proxy_args, found: Sequence[Secret]) -> list:
    """The plan's lines for the proxies and the secrets: no password, no secret value."""
    return [f"  proxy arg   {k}={v} (the host's; not in the image history)" for k, v in shown(proxy_args).items()] + [
        f"  secret      {s.id} <- {s.shown} (at /run/secrets/{s.id} in the steps that "
        f"{'compile' if s.id == COMPILE_CACHE_SECRET else 'reach the network'}; in no layer)"
        for s in found]


def secrets(ca_files: Sequence[Path], pip_index: str, musa_pip_index: str = "") -> Tuple[Secret, ...]:
    """The build's secrets: the CA bundle and the credentialed indexes, those given."""
    found = []
    if ca_files:
        found.append(Secret(CA_SECRET, ", ".join(map(str, ca_files)), files=tuple(ca_files)))
    for secret_id, flag, url in ((PIP_INDEX_SECRET, "--pip-index-url", pip_index),
                                 (MUSA_PIP_INDEX_SECRET, "--musa-pip-index-url", musa_pip_index)):
        if url:
            found.append(Secret(secret_id, f"{flag} {redact(url)}", value=url))
    return tuple(found)


def compile_cache_remote(value: str, only_read: bool = False) -> Optional[Secret]:
    """The secret that hands ccache its remote storage: `value` (a redis://, rediss://, http:// or
    https:// URL) as ccache's `remote_storage` setting, `|read-only=true` with `only_read`. A secret,
    not a build arg: the URL may hold credentials, and where the shared cache lives changes nothing
    in the image (no cache key, no inputs digest). None without a value. Raises ConfigError for a
    URL ccache could not take, and for `only_read` alone."""
    flag = "--compile-cache-remote"
    if not value:
        if only_read:
            raise ConfigError("--compile-cache-remote-only-read needs --compile-cache-remote URL: the remote "
                              "compile cache to read")
        return None
    shown = redact(value)
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 or c == "|" for c in value):
        raise ConfigError(f"{flag} {shown!r} holds a space, a control character or '|': give one URL, "
                          "e.g. redis://cache.example.com:6379")
    try:
        parts = urlsplit(value)
        parts.port
    except ValueError as err:
        raise ConfigError(f"{flag} {shown} is not a valid URL ({err}): check it") from None
    if parts.scheme not in COMPILE_CACHE_SCHEMES or not parts.hostname:
        raise ConfigError(f"{flag} {shown} is not a redis://, rediss://, http:// or https:// URL with a host, "
                          "e.g. redis://cache.example.com:6379 or http://cache.example.com:8080/ccache")
    # line 1: ccache's setting; line 2: scheme://host:port, all the build log may say of it
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    where = f"{parts.scheme}://{host}:{parts.port or COMPILE_CACHE_SCHEMES[parts.scheme]}"
    spec = value + ("|read-only=true" if only_read else "")
    return Secret(COMPILE_CACHE_SECRET, f"{flag} {shown}" + (" (read only)" if only_read else ""),
                  value=f"{spec}\n{where}\n")


def write(found: Sequence[Secret], directory: Path) -> Tuple[Tuple[str, str], ...]:
    """Write each secret's value to a file of `directory` (made 0700 by the caller), mode 0600,
    created anew; return (id, path) for the client's `--secret` flags."""
    out = []
    for secret in found:
        path = directory / secret.id
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secret.content())
        out.append((secret.id, str(path)))
    return tuple(out)


def secret_flag(secret_id: str, path: str) -> str:
    """`--secret=id=ID,src=PATH`, the path quoted as CSV when it holds a comma or a quote (the
    client reads the value as one CSV record)."""
    src = f"src={path}"
    if "," in src or '"' in src:
        src = '"' + src.replace('"', '""') + '"'
    return f"--secret=id={secret_id},{src}"
