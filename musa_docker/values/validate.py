"""Values that reach another program's command line, checked before the plan.

A ref, a repo URL or a path from a user (flag, config file, build-all entry, environment) ends up
in a git argv. Git reads `--upload-pack=…` as an option wherever it stands among the arguments,
and `ext::…` as "run this command", so such a value is refused here, before anything is done,
with a message naming where it came from. The argvs are still built with git's own guards
(`--end-of-options`): a value is never trusted to be harmless because it passed a check.

Pure: no disk, no network, no subprocess. Every check raises `ConfigError`.
"""

from __future__ import annotations

import re
from typing import Optional
from urllib.parse import urlsplit

from ..errors import ConfigError

SCHEMES = ("https", "http", "ssh", "git", "file")
URL_FORMS = "https://, http://, ssh://, git://, file:// or user@host:path"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# git check-ref-format: no control character, space, ~ ^ : ? * [ \ anywhere.
_REF_BAD_CHAR = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REF_MAX = 255
_PATH_MAX, _NAME_MAX = 4096, 255      # Linux's PATH_MAX and NAME_MAX
# A transport helper (`ext::sh -c …`, `fd::3`): git runs it instead of talking to a server.
_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# A host name, or an IP address (an IPv6 one as urlsplit gives it, without its brackets, or in
# brackets in the scp-like form).
_HOST = re.compile(r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[?[0-9A-Fa-f]*:[0-9A-Fa-f:.]+\]?)$")
# scp-like `user@host:path`, as git reads it: no '/' before the ':'.
_SCP = re.compile(r"^(?P<user>[A-Za-z0-9_][A-Za-z0-9_.+-]*)@(?P<host>\[[0-9A-Fa-f:.]+\]|[^/:\[]+):(?P<path>.+)$")


def _shown(value: str) -> str:
    """A value for a message: quoted, control characters escaped, a long one cut."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…'"


def _text(value, flag: str) -> str:
    if not isinstance(value, str):
        # YAML reads an unquoted 2026 or 1.10 as a number.
        what = "a number" if isinstance(value, (int, float)) else f"a {type(value).__name__}"
        raise ConfigError(f"{flag} {value!r} is {what}, not text: quote it in the config file")
    return value


def git_ref(value, flag: str) -> str:
    """A branch or tag name as `git check-ref-format --allow-onelevel` accepts it, or a 40-hex
    commit; never one starting with '-'. Returned as given."""
    if not _text(value, flag):
        raise ConfigError(f"{flag} is empty: give a branch, tag or commit name")
    if _COMMIT.fullmatch(value):
        return value
    why = _ref_problem(value)
    if why:
        raise ConfigError(
            f"{flag} {_shown(value)} is not a branch, tag or commit name ({why}); "
            "give a name as git accepts it (git check-ref-format --branch NAME), e.g. v2.0.0 or main"
        )
    return value


def _ref_problem(value: str) -> Optional[str]:
    if value.startswith("-"):
        return "it starts with '-'"
    if len(value) > _REF_MAX:
        return f"longer than {_REF_MAX} characters"
    if _REF_BAD_CHAR.search(value):
        return "it holds a space, a control character or one of ~ ^ : ? * [ \\"
    if value == "@" or "@{" in value:
        return "'@' alone or '@{' is git's own syntax"
    if ".." in value:
        return "it holds '..'"
    if value.startswith("/") or value.endswith("/") or "//" in value:
        return "a '/' at an end, or two in a row"
    if value.endswith("."):
        return "it ends with '.'"
    for part in value.split("/"):
        if part.startswith("."):
            return "a part starts with '.'"
        if part.endswith(".lock"):
            return "a part ends with '.lock'"
    return None


def repo_url(value, flag: str, local_ok: bool = True) -> str:
    """A repo git may clone from: a URL of the schemes the tool supports, `user@host:path`, or
    (with `local_ok`) an absolute local path. Never a transport helper (`ext::`), never a value
    starting with '-'. Returned as given."""
    if not _text(value, flag).strip():
        raise ConfigError(f"{flag} is empty: give the repo's URL ({URL_FORMS})")
    problem = _url_problem(value, local_ok)
    if problem:
        raise ConfigError(f"{flag} {_shown(value)} is not a repo URL git may use ({problem}); give {URL_FORMS}"
                          + (", or an absolute path" if local_ok else ""))
    return value


def is_url(value: str) -> bool:
    """Does `value` name a remote (or file://) repo rather than a local path?"""
    return isinstance(value, str) and bool(_SCHEME.match(value) or _HELPER.match(value) or _SCP.match(value))


def _url_problem(value: str, local_ok: bool) -> Optional[str]:
    if value.startswith("-"):
        return "it starts with '-'"
    if _CONTROL.search(value):
        return "it holds a control character"
    if _HELPER.match(value):
        return f"'{value.split('::')[0]}::' runs a git transport helper, which is never allowed"
    scheme = _SCHEME.match(value)
    if scheme:
        name = scheme.group(1).lower()
        if name not in SCHEMES:
            return f"the scheme {name}:// is not supported"
        if any(c.isspace() for c in value):
            return "it holds white space"
        try:
            parts = urlsplit(value)
            parts.port
        except ValueError as err:
            return f"it cannot be parsed: {err}"
        if name == "file":
            if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
                return "a file:// URL names a local absolute path, file:///path/to/repo"
            return None
        host = parts.hostname or ""
        if not _HOST.match(host):
            return f"{'no host' if not host else 'the host ' + repr(host) + ' is not a host name'}"
        return None
    scp = _SCP.match(value)
    if scp:
        if any(c.isspace() for c in value):
            return "it holds white space"
        if not _HOST.match(scp.group("host")):
            return f"the host {scp.group('host')!r} is not a host name"
        return None
    if local_ok and value.startswith("/"):
        return None
    return "not a URL" + (" or an absolute path" if local_ok else "")


def local_repo(value, flag: str) -> str:
    """A repo on this machine, named by its path. It is only ever git's working dir, never an
    argument; a leading '-' is still refused, as for a URL (`./-name` says the same)."""
    if path(value, flag).startswith("-"):
        raise ConfigError(f"{flag} {_shown(value)} starts with '-': write a path to a repo, e.g. ./{value}")
    return value


def path(value, flag: str) -> str:
    """A file system path from a user: any name the system allows, except control characters
    (a NUL cannot be in a path at all; a newline in one is a mistake). Returned as given."""
    if _CONTROL.search(_text(value, flag)):
        raise ConfigError(f"{flag} {_shown(value)} holds a control character: give a plain path")
    size = len(value.encode("utf-8", "surrogateescape"))
    if size > _PATH_MAX or any(len(p.encode("utf-8", "surrogateescape")) > _NAME_MAX for p in value.split("/")):
        raise ConfigError(f"{flag} {_shown(value)} is longer than a path or file name may be "
                          f"({_PATH_MAX} bytes, {_NAME_MAX} a name): give a shorter path")
    return value


DOCKER_HOST_FORMS = "unix:///path/docker.sock, tcp://HOST:PORT or ssh://USER@HOST"
_NETWORK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
BUILDKIT_NETWORKS = ("default", "host", "none")


def docker_host(value, flag: str = "--docker-host") -> str:
    """An engine address as the docker client takes it: unix:// with an absolute path, tcp:// (or
    http(s)://) or ssh:// with a host. Only its form: whether an engine answers there is the
    engine's to say."""
    text = _text(value, flag)
    found = _SCHEME.match(text)
    scheme = found.group(1).lower() if found else ""
    try:
        parts = urlsplit(text)
    except ValueError:            # "Invalid IPv6 URL": tcp://[::1
        scheme = ""
    if scheme == "unix":
        ok = parts.path.startswith("/") and not parts.netloc
    elif scheme in ("tcp", "http", "https", "ssh"):
        try:
            parts.port
            ok = bool(parts.hostname) and _HOST.match(parts.hostname or "") is not None
        except ValueError:
            ok = False
    elif scheme == "npipe":
        ok = bool(parts.path)
    else:
        ok = False
    if not ok:
        raise ConfigError(f"{flag} {_shown(text)} is not an engine address: give {DOCKER_HOST_FORMS}")
    return text


def network_mode(value, buildkit: bool, flag: str = "--network") -> str:
    """The network of a build's RUN steps: BuildKit knows default, host and none; the classic
    builder also a network of the engine's, by name."""
    text = _text(value, flag)
    if text in BUILDKIT_NETWORKS:
        return text
    if buildkit:
        raise ConfigError(f"{flag} {_shown(text)}: a BuildKit build runs its steps on {', '.join(BUILDKIT_NETWORKS)} "
                          "only; give one of those, or --builder classic for a network of the engine's")
    if not _NETWORK_NAME.fullmatch(text):
        raise ConfigError(f"{flag} {_shown(text)} is not a network: give default, host, none or the name of a "
                          "network of the engine's (`docker network ls`)")
    return text
