"""A pip index's project pages (PEP 503, the simple API), read on the host: which files a pinned
MUSA wheel (`torch==2.7.1+musa5.2.0`) has there, each with its sha256, and whether one installs
on the image's Python (asked before a build's first step, so a requirement the index cannot
satisfy is one line naming it, not a failed pip step deep in the build).

The lock records them; a build given `--lock` asks the index again and refuses a file whose
sha256 changed or a version that is gone. A page's links carry `#sha256=` as PEP 503 says they
should; a file whose link does not is hashed from its bytes. Raises DownloadError.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import List, Optional
from urllib.parse import unquote, urljoin, urlsplit

import requests

from ..errors import DownloadError
from ..values.locations import redact, strip_credentials
from .http import describe

TIMEOUT = 30


@dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str                  # with the index's credentials, for fetching; never shown
    sha256: Optional[str]     # from the link's #sha256=, when it has one


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: List[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        href = dict(attrs).get("href") if tag == "a" else None
        if href:
            self.links.append(href)


def project(name: str) -> str:
    """The name as the index spells its page (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def version_of(filename: str) -> Optional[str]:
    """The version a wheel's or sdist's file name carries."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        return parts[1] if len(parts) >= 5 else None
    for suffix in (".tar.gz", ".zip"):
        if filename.endswith(suffix) and "-" in filename:
            return filename[:-len(suffix)].rsplit("-", 1)[1]
    return None


def listing(index: str, name: str, *, verify=True, session: Optional[requests.Session] = None) -> List[IndexFile]:
    """Every file the project page of `name` lists. Raises DownloadError when the index does not
    answer or has no such project."""
    http = session or requests.Session()
    page = f"{index.rstrip('/')}/{project(name)}/"
    try:
        res = http.get(page, timeout=TIMEOUT, verify=verify, headers={"Accept": "text/html"})
    except requests.RequestException as err:
        raise DownloadError(f"the pip index {redact(index)} does not answer ({describe(err)})") from None
    if res.status_code == 404:
        raise DownloadError(f"the pip index {redact(index)} has no project {name} ({redact(page)}: HTTP 404)")
    if res.status_code >= 400:
        raise DownloadError(f"the pip index {redact(index)} answered HTTP {res.status_code} for {redact(page)}")
    links = _Links()
    links.feed(res.text)
    found = []
    for href in links.links:
        url = urljoin(page, href)
        body, _, fragment = url.partition("#")
        filename = unquote(urlsplit(body).path.rsplit("/", 1)[-1])
        algo, _, digest = fragment.partition("=")
        found.append(IndexFile(filename, body, digest.lower() if algo == "sha256" and digest else None))
    return sorted(found, key=lambda f: f.filename)


def files(index: str, name: str, version: str, *, verify=True, session: Optional[requests.Session] = None
          ) -> List[IndexFile]:
    """The files of `name` at `version` the index lists (empty when none). Raises DownloadError when
    the index does not answer or has no such project."""
    return [f for f in listing(index, name, verify=verify, session=session)
            if (version_of(f.filename) or "").lower() == version.lower()]


def missing(index: str, requirement: str, session: requests.Session, python: Optional[str] = None) -> Optional[str]:
    """None when the index lists a file of the pinned `NAME==VERSION` (and, given `python` X.Y, a
    wheel of it that installs there), else why not, in words for people: what a build asks before
    its first step, and `pins --check-urls`."""
    name, _, version = re.sub(r"\s+", "", requirement).partition("==")
    try:
        listed = [f.filename for f in listing(index, name, verify=session.verify, session=session)]
    except DownloadError as err:
        return str(err)
    versions = {v for v in map(version_of, listed) if v}
    if version.lower() not in {v.lower() for v in versions}:
        has = ", ".join(sorted(versions)[:8]) or "no files"
        return f"the index has no {name} {version} (it lists {has})"
    chosen = [f for f in listed if (version_of(f) or "").lower() == version.lower()]
    wheels = [f for f in chosen if f.endswith(".whl")]
    if python and wheels and len(wheels) == len(chosen) and not any(_fits(f, python) for f in wheels):
        tags = ", ".join(sorted({f[:-4].split("-")[-3] for f in wheels}))
        return f"the index has {name} {version} only for {tags}, not for Python {python} (cp{python.replace('.', '')})"
    return None


def _fits(wheel: str, python: str) -> bool:
    """Whether a wheel's Python tag takes Python X.Y: cpXY, py3, or an abi3 wheel of an older cp3."""
    parts = wheel[:-4].split("-")
    if len(parts) < 5:
        return False
    tags, abi = parts[-3].split("."), parts[-2]
    minor = int(python.split(".")[1])
    return f"cp{python.replace('.', '')}" in tags or "py3" in tags or (
        abi == "abi3" and any(t.startswith("cp3") and t[3:].isdigit() and int(t[3:]) <= minor for t in tags))


def sha256_of(file: IndexFile, *, verify=True, session: Optional[requests.Session] = None) -> str:
    """The file's sha256: its link's, else hashed from its bytes. Raises DownloadError."""
    if file.sha256:
        return file.sha256
    http = session or requests.Session()
    digest = hashlib.sha256()
    try:
        with http.get(file.url, timeout=TIMEOUT, verify=verify, stream=True,
                      headers={"Accept-Encoding": "identity"}) as res:
            if res.status_code >= 400:
                raise DownloadError(f"{redact(file.url)} answered HTTP {res.status_code}")
            for chunk in res.iter_content(1 << 20):
                digest.update(chunk)
    except requests.RequestException as err:
        raise DownloadError(f"{redact(file.url)} cannot be read ({describe(err)})") from None
    return digest.hexdigest()


def shown_url(url: str) -> str:
    """A file's URL as the lock writes it: no credentials."""
    return strip_credentials(url)
