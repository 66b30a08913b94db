"""The MUSA SDK from an apt repository: the source line, the runtime line's packages, and their
exact versions read from the repository's Packages index on the host, before any build step.

Moore Threads ships MUSA 5.x as apt packages whose names carry the runtime line
(`musa-toolkit-5-2`, `mtcc-5-2`, `musa-musart-5-2`, `libmudnn3-musa-5-2`, ...), as
MooreThreads/vllm-musa's docker/musa.Dockerfile installs them. That repository's source "now mixes
5.1.0/5.2.0 builds", so every package is pinned to an exact version of the line and all of them go
in one apt transaction; a line whose newest build of some package is another line's is refused.

Raises ConfigError for a source or runtime line a user has to fix, AptRepoError for what the
repository says (does not answer, lacks a package, mixes lines).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import requests

from ..errors import ConfigError, DownloadError
from ..util import Say

PENDING = "<resolved at prepare>"

# The runtime line's packages by role, one row each: (role, name template, checked against the
# line, when installed). `{line}` is the line with a dash (5.2 -> 5-2), `{major}` its major.
# "always" rows are what running torch_musa needs, in every image with the SDK (the lean release
# holds only these and MCCL); "dev" rows where torch_musa is compiled (build-dev): the toolkit, its
# compiler, muDNN's headers, and muAlg's and muThrust's headers. MCCL follows the GPU arch: see
# MCCL_PACKAGES.
PACKAGES: Tuple[Tuple[str, str, bool, str], ...] = (
    ("toolkit", "musa-toolkit-{line}", True, "dev"),
    ("compiler", "mtcc-{line}", True, "dev"),
    ("runtime", "musa-musart-{line}", True, "always"),
    ("muDNN", "libmudnn3-musa-{line}", False, "always"),
    ("muDNN headers", "libmudnn3-dev-musa-{line}", False, "dev"),
    ("muAlg", "musa-mualg-{line}", True, "dev"),
    ("muThrust", "musa-muthrust-{line}", True, "dev"),
)

# MCCL's apt package per GPU arch (arch.ARCHS says which archs have MCCL; qy1 has none). The
# vendor names it after the product: vllm-musa's docker/musa.Dockerfile installs `mccl-s5000`
# for S5000, pinned by MCCL_VERSION, with a note that a generic `mccl` is to replace it; S4000's
# follows the same naming. MCCL is versioned on its own, so its version is not held against the
# runtime line. This is the one place to change when the vendor renames them.
MCCL_PACKAGES: Dict[str, str] = {"mp_22": "mccl-s4000", "mp_31": "mccl-s5000"}


def mccl_packages(selection) -> Tuple[str, ...]:
    """The MCCL packages an image built for `selection` (arch.Selection) gets: one per arch that
    has MCCL, so an image for several archs holds each of their MCCL builds; none when an arch
    asked for explicitly has no MCCL (torch_musa is then built with USE_MCCL=0, as with the
    archives). Without --gpu-arch (every arch) the archs that have MCCL get theirs."""
    if selection.without_mccl:
        return ()
    return tuple(dict.fromkeys(MCCL_PACKAGES[t] for t in selection.targets if t in MCCL_PACKAGES))


# `deb [opt=value ...] URL SUITE COMPONENT...`: options limited to those that need no file on
# the build machine; anything else in the line is refused rather than passed to apt.
_OPTIONS = {"trusted": re.compile(r"^(yes|no)$"), "arch": re.compile(r"^[a-z0-9]+(,[a-z0-9]+)*$")}
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~+-]*$")
_SUITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~+-]*(/[A-Za-z0-9][A-Za-z0-9._~+-]*)*$")
_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%+/-]*)?$")
_RUNTIME = re.compile(r"^([1-9][0-9]*|0)\.([0-9]+)$")
# What a Packages index may name, before a name or version reaches an apt-get argv in the image.
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_VERSION = re.compile(r"^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*$")


class AptRepoError(DownloadError):
    """The apt repository does not answer, lacks a package, or mixes runtime lines."""


@dataclass(frozen=True)
class AptSource:
    url: str                       # no trailing slash
    suite: str
    components: Tuple[str, ...]
    options: Tuple[Tuple[str, str], ...]

    @property
    def line(self) -> str:
        """The line written to /etc/apt/sources.list.d/musa.list."""
        opts = f"[{' '.join(f'{k}={v}' for k, v in self.options)}] " if self.options else ""
        return f"deb {opts}{self.url}/ {self.suite} {' '.join(self.components)}"


def parse_source(value: str, flag: str = "--musa-apt-source") -> AptSource:
    """Check `deb [trusted=yes] URL SUITE COMPONENT...`. Raises ConfigError naming what is wrong."""
    text = str(value or "").strip()
    example = f'e.g. {flag} "deb [trusted=yes] https://repo.example.com/musa jammy main"'
    if not text or any(c in text for c in "\n\r\t\"'`$\\;|&<>"):
        raise ConfigError(f"{flag} must be one apt source line of plain words, {example}")
    options: List[Tuple[str, str]] = []
    m = re.match(r"^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)((?:\s+\S+)+)$", text)
    if not m:
        raise ConfigError(f"{flag} is not `deb [options] URL SUITE COMPONENT`: {example}")
    for item in (m.group(1) or "").split():
        key, sep, val = item.partition("=")
        if not sep or key not in _OPTIONS or not _OPTIONS[key].match(val):
            raise ConfigError(
                f"{flag}: the option {item!r} is not one this tool passes on: use trusted=yes|no, arch=amd64[,arm64]"
            )
        options.append((key, val))
    url = m.group(2).rstrip("/")
    parts = urlsplit(url)
    if parts.username or parts.password or "@" in parts.netloc:
        # The line is a build arg, stored in the image history for anyone who pulls the image.
        raise ConfigError(f"{flag}: the URL carries credentials, which would be stored in the image history; "
                          "give a repository that needs none (a mirror on your network)")
    if parts.query or parts.fragment or not _URL.match(url):
        raise ConfigError(f"{flag}: {url.split('?')[0]!r} is not an http(s) URL of an apt repository, {example}")
    suite, components = m.group(3), tuple(m.group(4).split())
    if not _SUITE.match(suite) or ".." in suite:
        raise ConfigError(f"{flag}: the suite {suite!r} is not a suite name such as jammy or bookworm")
    for component in components:
        if not _WORD.match(component):
            raise ConfigError(f"{flag}: the component {component!r} is not a component name such as main")
    return AptSource(url, suite, components, tuple(options))


def parse_runtime(value: str, flag: str = "--musa-runtime") -> str:
    """`5.2` as given; raises ConfigError for anything that is not MAJOR.MINOR."""
    if isinstance(value, float):
        # YAML reads 5.10 as the number 5.1: say so rather than install another line.
        raise ConfigError(f"{flag} {value!r} came from a config file as a number (5.10 reads as 5.1): quote it")
    text = str(value or "")
    if not _RUNTIME.match(text):
        raise ConfigError(f"{flag} {text!r} is not a runtime line: give MAJOR.MINOR, e.g. {flag} 5.2")
    return text


@dataclass(frozen=True)
class AptRequest:
    """What the options ask of the repository; no network yet."""

    source: AptSource
    runtime: str                   # "5.2"
    mccl: Tuple[str, ...] = ()     # the MCCL packages (mccl_packages): none where the arch has no MCCL
    dev: bool = False

    def packages(self) -> Tuple[Tuple[str, str, bool], ...]:
        """(role, package name, checked against the line): the SDK, then MCCL, then muAlg and
        muThrust; without `dev` (the release image) the runtime rows and MCCL only."""
        major, minor = self.runtime.split(".")
        rows = [(role, template.format(line=f"{major}-{minor}", major=major), checked, when)
                for role, template, checked, when in PACKAGES]
        rows[5:5] = [("MCCL", name, False, "mccl") for name in self.mccl]
        return tuple(row[:3] for row in rows if row[3] != "dev" or self.dev)


@dataclass(frozen=True)
class Resolution:
    """The exact versions to install: frozen before the build, labelled, part of the inputs digest."""

    request: AptRequest
    pins: Tuple[Tuple[str, str], ...]      # (package, version), the table's order
    sha256s: Tuple[Tuple[str, str], ...] = ()   # (package, sha256 of its .deb) as the index lists it

    def labels(self) -> Tuple[Tuple[str, str], ...]:
        return tuple((f"musa_docker.apt.{name}", version) for name, version in self.pins) + tuple(
            (f"musa_docker.apt.{name}.sha256", sha) for name, sha in self.sha256s)

    def specs(self) -> str:
        """`pkg=ver pkg=ver`: the build arg the Dockerfile hands to one `apt-get install`."""
        return " ".join(f"{name}={version}" for name, version in self.pins)

    def install_line(self) -> str:
        return f"apt-get install -y --no-install-recommends {self.specs()}"


def pending(request: AptRequest) -> Resolution:
    """The resolution as a dry run shows it: names known, versions not yet read."""
    return Resolution(request, tuple((name, PENDING) for _, name, _ in request.packages()))


# --- Debian version order (dpkg's algorithm, deb-version(7)) -------------------------------------

def _order(c: str) -> int:
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _compare_part(a: str, b: str) -> int:
    while a or b:
        da = re.match(r"^[^0-9]*", a).group(0)
        db = re.match(r"^[^0-9]*", b).group(0)
        for i in range(max(len(da), len(db))):
            ca = _order(da[i]) if i < len(da) else 0
            cb = _order(db[i]) if i < len(db) else 0
            if ca != cb:
                return -1 if ca < cb else 1
        a, b = a[len(da):], b[len(db):]
        na = re.match(r"^[0-9]*", a).group(0)
        nb = re.match(r"^[0-9]*", b).group(0)
        if int(na or 0) != int(nb or 0):
            return -1 if int(na or 0) < int(nb or 0) else 1
        a, b = a[len(na):], b[len(nb):]
    return 0


def _split(version: str) -> Tuple[int, str, str]:
    epoch, _, rest = version.rpartition(":") if ":" in version else ("0", "", version)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
    return int(epoch or 0), upstream, revision


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as dpkg --compare-versions orders `a` and `b`."""
    ea, ua, ra = _split(a)
    eb, ub, rb = _split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def line_of(version: str, checked: bool) -> Optional[str]:
    """The runtime line a build's version names: `...musa5.2...` anywhere, else (for packages
    versioned by the line) its leading MAJOR.MINOR; None when the version says nothing."""
    m = re.search(r"musa([0-9]+)\.([0-9]+)", version)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    m = re.match(r"^([0-9]+)\.([0-9]+)(?:[.+~-]|$)", _split(version)[1])
    return f"{m.group(1)}.{m.group(2)}" if m and checked else None


# --- the Packages index ---------------------------------------------------------------------------

_DECOMPRESS: Tuple[Tuple[str, Callable[[bytes], bytes]], ...] = (
    ("", lambda data: data), (".xz", lzma.decompress), (".gz", gzip.decompress), (".bz2", bz2.decompress),
)


def parse_packages(text: str) -> Dict[str, List[str]]:
    """package name -> every version the index lists (deb822 stanzas; other fields ignored)."""
    found: Dict[str, List[str]] = {}
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^([A-Za-z0-9-]+):[ \t]*(.*?)[ \t]*$", stanza, re.M))
        name, version = fields.get("Package"), fields.get("Version")
        if name and version:
            found.setdefault(name, []).append(version)
    return found


def parse_stanzas(text: str) -> List[Dict[str, str]]:
    """Every stanza of a Packages index as its fields (Package, Version, Architecture, Filename,
    Size, SHA256, ...)."""
    found = []
    for stanza in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^([A-Za-z0-9-]+):[ \t]*(.*?)[ \t]*$", stanza, re.M))
        if fields.get("Package") and fields.get("Version"):
            found.append(fields)
    return found


def parse_sha256s(text: str) -> Dict[Tuple[str, str], str]:
    """(package, version) -> the SHA256 of its .deb, as the index lists it (apt checks it on download)."""
    return {(f["Package"], f["Version"]): f["SHA256"] for f in parse_stanzas(text)
            if re.fullmatch(r"[0-9a-f]{64}", f.get("SHA256", ""))}


def stanzas(source: AptSource, arch: str, *, verify=True, session: Optional[requests.Session] = None
            ) -> Dict[Tuple[str, str], Dict[str, str]]:
    """(package, version) -> its stanza, over the source's components. Raises AptRepoError."""
    found: Dict[Tuple[str, str], Dict[str, str]] = {}
    for component in source.components:
        for fields in parse_stanzas(fetch_index(source, component, arch, verify=verify, session=session)):
            found.setdefault((fields["Package"], fields["Version"]), fields)
    return found


def fetch_index(source: AptSource, component: str, arch: str, *, verify=True, timeout: float = 30.0,
                session: Optional[requests.Session] = None) -> str:
    """The text of `dists/SUITE/COMPONENT/binary-ARCH/Packages` (plain, else .xz, .gz, .bz2).

    Raises AptRepoError when the repository does not answer or has no such index."""
    http = session or requests.Session()
    base = f"{source.url}/dists/{source.suite}/{component}/binary-{arch}/Packages"
    tried = []
    for suffix, decompress in _DECOMPRESS:
        try:
            # identity: the bytes are decompressed here, by their own suffix, never twice
            resp = http.get(base + suffix, timeout=timeout, verify=verify, headers={"Accept-Encoding": "identity"})
        except requests.exceptions.SSLError as err:
            raise AptRepoError(f"--musa-apt-source {source.url}: TLS verification failed ({err.__class__.__name__}); "
                               "pass --ca-cert or fix the certificate (--insecure turns the check off)") from err
        except requests.exceptions.RequestException as err:
            raise AptRepoError(f"--musa-apt-source {source.url} does not answer ({err.__class__.__name__}); "
                               "check the URL and the network") from err
        tried.append(f"Packages{suffix} {resp.status_code}")
        if resp.status_code == 404:
            continue
        if resp.status_code != 200:
            raise AptRepoError(f"--musa-apt-source {base + suffix} answered HTTP {resp.status_code}")
        try:
            return decompress(resp.content).decode("utf-8", "replace")
        except (OSError, EOFError, lzma.LZMAError, ValueError) as err:
            raise AptRepoError(f"--musa-apt-source {base + suffix} is not a readable index ({err})") from err
    raise AptRepoError(
        f"--musa-apt-source {source.url} has no index for suite {source.suite}, component {component}, "
        f"arch {arch} ({', '.join(tried)}): check the suite and component"
    )


def choose(request: AptRequest, index: Dict[str, List[str]]) -> Resolution:
    """Pick each package's newest build of the requested line. Raises AptRepoError."""
    src = request.source
    where = f"suite {src.suite} ({' '.join(src.components)}) of {src.url}"
    pins = []
    missing = []
    for role, name, checked in request.packages():
        versions = index.get(name)
        if not versions:
            missing.append(f"{name} ({role})")
            continue
        for version in versions:
            if not (_PACKAGE.match(name) and _VERSION.match(version)):
                raise AptRepoError(f"{where} lists {name!r} {version!r}, which is not a Debian package name and version")
        ordered = sorted(set(versions), key=_VersionKey, reverse=True)
        fits = [v for v in ordered if line_of(v, checked) in (None, request.runtime)]
        if not fits:
            raise AptRepoError(
                f"{where} mixes runtime lines: {name} is {', '.join(ordered)}, a {line_of(ordered[0], checked)} "
                f"build in the {request.runtime} line; installing it would split the SDK across "
                f"/usr/local/musa-{line_of(ordered[0], checked)} and -{request.runtime}: ask the repository's "
                f"owner for a {request.runtime} build, or choose --musa-runtime {line_of(ordered[0], checked)}"
            )
        pins.append((name, fits[0]))
    if missing:
        raise AptRepoError(f"{where} has no package {', '.join(missing)} for MUSA {request.runtime}: "
                           "check --musa-runtime and the suite")
    return Resolution(request, tuple(pins))


class _VersionKey:
    def __init__(self, version: str) -> None:
        self.version = version

    def __lt__(self, other: "_VersionKey") -> bool:
        return compare_versions(self.version, other.version) < 0


def resolve(request: AptRequest, *, arch: str = "amd64", verify=True, say: Say = lambda _: None,
            session: Optional[requests.Session] = None) -> Resolution:
    """Read the repository's index on the host and freeze the versions. Raises AptRepoError."""
    src = request.source
    say(f"resolve MUSA {request.runtime} packages from {src.url} {src.suite} {' '.join(src.components)} ({arch})")
    index: Dict[str, List[str]] = {}
    sha256s: Dict[Tuple[str, str], str] = {}
    for component in src.components:
        text = fetch_index(src, component, arch, verify=verify, session=session)
        for name, versions in parse_packages(text).items():
            index.setdefault(name, []).extend(versions)
        sha256s.update(parse_sha256s(text))
    resolution = choose(request, index)
    resolution = replace(resolution, sha256s=tuple((name, sha256s[(name, version)])
                                                   for name, version in resolution.pins if (name, version) in sha256s))
    say("apt pins: " + resolution.specs())
    return resolution

