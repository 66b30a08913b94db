"""The MUSA pip index, asked from the host before anything is built: does its project page (PEP 503,
`INDEX/NAME/`) list a file of the pinned version, and a wheel of it for the image's Python? A build
asks this before its first step, as `pins --check-urls` does, so that a requirement the index cannot
satisfy is one line naming it, not a failed pip step deep inside the build."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import List, Optional
from urllib.parse import unquote, urlsplit

import requests

from ..values.locations import redact
from .http import describe

TIMEOUT = 30


class _Links(HTMLParser):
    """The file names a PEP 503 project page links to."""

    def __init__(self) -> None:
        super().__init__()
        self.files: List[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        href = dict(attrs).get("href") if tag == "a" else None
        if href:
            self.files.append(unquote(urlsplit(href).path.rsplit("/", 1)[-1]))


def _version_of(filename: str) -> Optional[str]:
    """The version a wheel's or sdist's file name carries (`torch-2.7.1+musa5.2.0-cp310-….whl`)."""
    if filename.endswith(".whl"):
        parts = filename[:-4].split("-")
        return parts[1] if len(parts) >= 5 else None
    for suffix in (".tar.gz", ".zip"):
        if filename.endswith(suffix) and "-" in filename:
            return filename[:-len(suffix)].rsplit("-", 1)[1]
    return None


def missing(index: str, requirement: str, session, python: Optional[str] = None) -> Optional[str]:
    """None when the MUSA index lists a file of the pinned version (a wheel for `python`, X.Y,
    when given), else why not, in words for people."""
    name, _, version = re.sub(r"\s+", "", requirement).partition("==")
    url = f"{index.rstrip('/')}/{re.sub(r'[-_.]+', '-', name).lower()}/"
    try:
        res = session.get(url, timeout=TIMEOUT, headers={"Accept": "text/html"})
    except requests.RequestException as err:
        return f"the MUSA index does not answer ({describe(err)})"
    if res.status_code == 404:
        return f"the MUSA index has no project {name} ({redact(url)}: HTTP 404)"
    if res.status_code >= 400:
        return f"the MUSA index answered HTTP {res.status_code} {res.reason} for {redact(url)}"
    links = _Links()
    links.feed(res.text)
    versions = {v for v in map(_version_of, links.files) if v}
    if version.lower() not in {v.lower() for v in versions}:
        has = ", ".join(sorted(versions)[:8]) or "no files"
        return f"the MUSA index has no {name} {version} (it lists {has})"
    files = [f for f in links.files if (_version_of(f) or "").lower() == version.lower()]
    wheels = [f for f in files if f.endswith(".whl")]
    if python and wheels and len(wheels) == len(files) and not any(_fits(f, python) for f in wheels):
        tags = ", ".join(sorted({f[:-4].split("-")[-3] for f in wheels}))
        return (f"the MUSA index has {name} {version} only for {tags}, not for Python {python} "
                f"(cp{python.replace('.', '')})")
    return None


def _fits(wheel: str, python: str) -> bool:
    """Whether a wheel's Python tag takes Python X.Y: cpXY, or a py3 / abi3 wheel."""
    parts = wheel[:-4].split("-")
    if len(parts) < 5:
        return False
    tags, abi = parts[-3].split("."), parts[-2]
    want = f"cp{python.replace('.', '')}"
    return want in tags or "py3" in tags or "py2.py3" in parts[-3] or (abi == "abi3" and any(
        t.startswith("cp3") and int(t[3:] or 0) <= int(python.split(".")[1]) for t in tags))
