"""Where an artifact comes from: parse a location once, and never print its secrets.

A location is `http(s)://...`, `file://...` or a local path, optionally ending in
`#sha256=<64 hex digits>`, which the downloader verifies. Parsing is pure: no file is looked
at and no name is resolved. A relative local path is kept as given (`url` is then
`file:<relative path>`); the downloader resolves it against the working directory, and
expands a leading `~`, when it fetches.

URLs may carry credentials (`https://user:token@host/...`, `?token=...`, presigned
`X-Amz-Signature=...`). `Location.raw` and `Location.url` keep them because the download needs
them; everything meant for people (`display`, `redact()`, the repr) has them replaced by `***`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ..errors import ConfigError

SUPPORTED = "http://, https://, file:// or a local path"

MASK = "***"

# A query parameter is a secret when its name contains one of these (case-insensitive):
# token, access_token, private_token, X-Amz-Security-Token, key, api_key, AWSAccessKeyId,
# sig, signature, X-Goog-Signature, password, passwd, secret, client_secret, credential,
# X-Amz-Credential, auth, pwd.
_SECRET_WORDS = ("token", "secret", "sig", "key", "pass", "credential", "auth", "pwd")

# Characters that end a URL inside free text (log lines, exception messages, reprs).
_STOP = r"\s\"'<>`"
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
_URL_IN_TEXT = re.compile(rf"{_SCHEME}[^{_STOP}]+")
# Greedy up to the last '@' before the path, as urlsplit does: a password may hold a raw '@'.
_USERINFO = re.compile(rf"(?P<scheme>{_SCHEME})(?P<userinfo>[^/?#{_STOP}]+)@")
_PARAM = re.compile(rf"(?P<lead>[?&;])(?P<name>[^=&;#{_STOP}]+)=(?P<value>[^&;#{_STOP}]*)")
_HAS_SCHEME = re.compile(rf"^{_SCHEME}")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f/\\]")


def _is_secret(name: str) -> bool:
    name = unquote(name).lower()
    return any(word in name for word in _SECRET_WORDS)


def _mask_param(match: re.Match[str]) -> str:
    if not _is_secret(match["name"]) or not match["value"]:
        return match[0]
    return f"{match['lead']}{match['name']}={MASK}"


def redact(text: str) -> str:
    """Return `text` with the credentials of every URL in it replaced by `***`.

    Works on any text: a URL, a log line, an exception message. Userinfo
    (`user:password@`) becomes `***@`; the value of each query parameter whose name holds
    token/secret/sig/key/pass/credential/auth/pwd becomes `***`. Secret parameters are
    masked even outside a full URL, because requests' messages quote only the path
    (`Max retries exceeded with url: /f.tar?token=...`).
    """
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _PARAM.sub(_mask_param, text)


def strip_credentials(url: str) -> str:
    """`url` without userinfo and without secret query parameters (dropped, not masked).

    Two URLs that differ only in their credentials give the same result, so a rotated token
    still finds the same cache entry. Scheme and host are lower-cased.
    """
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2].lower()
    query = "&".join(
        pair for pair in parts.query.split("&") if pair and not _is_secret(pair.partition("=")[0])
    )
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, query, ""))


@dataclass(frozen=True)
class Location:
    """A parsed artifact location. Print `display`, never `raw` or `url`.

    raw:      exactly what the user gave (may hold credentials)
    url:      the URL to fetch, without the `#sha256=` fragment: `http(s)://...` with its
              credentials, `file:///abs/path`, or `file:<relative path>` for a relative path
    sha256:   lower-case hex from `#sha256=<hex>`, or None
    scheme:   'http' | 'https' | 'file'
    display:  safe to print: credentials replaced by `***`; a local path as given
    filename: the last path segment, unquoted (`download` when there is none)
    """

    raw: str = field(repr=False)
    url: str = field(repr=False)
    sha256: str | None
    scheme: str
    display: str
    filename: str

    @property
    def local_path(self) -> str | None:
        """The file's path as given (relative, or with `~`, until the downloader resolves it); None for http(s)."""
        if self.scheme != "file":
            return None
        return unquote(urlsplit(self.url).path)


def _split_hash(text: str, what: str) -> tuple[str, str | None]:
    """Split off a trailing `#sha256=<hex>`; any other `#name=value` is refused, so a typo never
    silently turns verification off."""
    body, sep, fragment = text.rpartition("#")
    if not sep:
        return text, None
    name, eq, value = fragment.partition("=")
    if not eq:
        if _HAS_SCHEME.match(text):
            # An ordinary fragment is never sent to the server: drop it.
            return body, None
        return text, None  # a '#' inside a local file name
    if name.strip().lower() != "sha256":
        raise ConfigError(
            f"{what}: unsupported '#{name}=' in {redact(body)}; only '#sha256=<64 hex digits>' is "
            "supported (compute it with `sha256sum FILE`)"
        )
    value = value.strip()
    if not _SHA256.match(value):
        raise ConfigError(
            f"{what}: '#sha256=' must be followed by 64 hex digits, got {value!r} "
            f"({len(value)} characters) in {redact(body)}; compute it with `sha256sum FILE`"
        )
    return body, value.lower()


def _filename(path: str) -> str:
    name = unquote(path.rstrip("/").rpartition("/")[2])
    name = _CONTROL.sub("_", name)
    return "download" if name in ("", ".", "..") else name


def parse_location(text: str, *, what: str = "artifact") -> Location:
    """Parse an artifact location given by the user.

    `what` names where it came from (a flag such as `--musa-url`, or an environment variable)
    in messages. Surrounding whitespace is ignored.

    Raises ConfigError: empty text, an unsupported scheme, a bad `#sha256=`, an http(s) URL
    without a host or with a bad port, a `file://` URL naming another host.
    """
    stripped = (text or "").strip()
    if not stripped:
        raise ConfigError(f"{what} is empty; give an http(s):// URL, a file:// URL or a local path")
    body, sha256 = _split_hash(stripped, what)

    if _HAS_SCHEME.match(body) or body.lower().startswith("file:"):
        if any(c.isspace() or ord(c) < 32 for c in body):
            raise ConfigError(f"{what}: {redact(body)!r} holds a space or control character: "
                              "a URL has none (write a space as %20)")
        try:
            parts = urlsplit(body)
        except ValueError as err:     # e.g. an unclosed '[' of an IPv6 host
            raise ConfigError(f"{what}: {redact(body)} is not a valid URL ({err}): check it") from None
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            display = redact(body)
            if not parts.hostname:
                raise ConfigError(f"{what}: no host in {display}; expected {scheme}://HOST/PATH")
            try:
                parts.port
            except ValueError as err:
                raise ConfigError(f"{what}: bad port in {display}: {err}") from err
            return Location(text, body, sha256, scheme, display, _filename(parts.path))
        if scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise ConfigError(
                    f"{what}: {redact(body)} names host {parts.netloc!r}; a file:// URL must be "
                    "local (file:///abs/path)"
                )
            path = unquote(parts.path)
            if not path:
                raise ConfigError(f"{what}: no path in {redact(body)}; expected file:///abs/path")
            url = f"file://{quote(path)}" if path.startswith("/") else f"file:{quote(path)}"
            return Location(text, url, sha256, "file", body, _filename(path))
        raise ConfigError(
            f"{what}: unsupported scheme '{scheme}://' in {redact(body)}; supported: {SUPPORTED}"
        )

    # A local path (which may contain ':' as in 'a:b.tar', so no scheme sniffing beyond '://').
    path = body
    url = f"file://{quote(path)}" if path.startswith("/") else f"file:{quote(path)}"
    return Location(text, url, sha256, "file", path, _filename(path))
