"""`musa-docker pins`: show what a pins file resolves to, and with --check-urls ask every URL
and repo tag in it, without building anything.

URLs are asked with HEAD and, where a server refuses HEAD (many object stores answer 403 or 405
for it on presigned links), with a GET of one byte (`Range: bytes=0-0`). Tags are asked with
`git ls-remote --exit-code --end-of-options URL refs/tags/TAG`: the URL and tag were checked
when the file was read, and git takes neither as an option. A requirement wheel
(`torch==2.7.1+musa5.2.0`) is asked of the MUSA index (--musa-pip-index-url), the only place it
comes from: its project page (PEP 503, `INDEX/NAME/`) must list a file of that version.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable, List, Mapping, Optional, Sequence, TextIO, Tuple

from ..musa import arch as arch_mod
from ..values import platforms
from ..options import inputs
from ..errors import ConfigError, MusaDockerError
from ..values.locations import Location, parse_location, redact
from ..values.network import index_url
from ..options.build import python_version as check_python
from ..musa.pins import Pins
from ..fetch.git import GIT_ENV
from ..fetch.http import describe
from ..fetch.pipindex import missing as check_requirement
from ..options.cascade import sourced
from ..util import expand_home, say_to

TIMEOUT = 30


def _arch_title(key: str) -> str:
    target, _, only = key.partition("/")
    a = arch_mod.ARCHS[target]
    return f"{target} ({a.codename}: {'/'.join(a.products)})" + (f" on {only}" if only else "")


def _wanted(key: str, targets) -> bool:
    return not targets or key.partition("/")[0] in targets


def table(pins: Pins, targets: Optional[Tuple[str, ...]], python: Optional[str]) -> str:
    """The file's contents as resolved: every arch and Python in it, or only those asked for."""
    lines = [f"pins {pins.path}"]
    lines.append("versions:")
    lines += [f"  {n:<15} {p.value:<40} line {p.line}" for n, p in sorted(pins.versions.items())] or ["  (none)"]
    lines.append("repos:")
    lines += [f"  {n:<15} {redact(r.url.value)} @ {'tag' if r.is_tag else 'ref'} {r.ref.value}  line {r.url.line}"
              for n, r in sorted(pins.repos.items())] or ["  (none)"]
    keys = set(targets or ()) | {k for k in set(pins.artifacts) | set(pins.wheels) if _wanted(k, targets)}
    for target in sorted(keys):
        lines.append(f"artifacts: {_arch_title(target)}")
        found = pins.artifacts.get(target, {})
        for name, pin in sorted(found.items()):
            sha = f" sha256={pin.sha256.value[:12]}…" if pin.sha256 else " (no sha256)"
            lines.append(f"  {name:<15} {redact(pin.url.value)}{sha}  line {pin.url.line}")
        if not found:
            lines.append("  (none)")
        for py, wheels in sorted(pins.wheels.get(target, {}).items()):
            if python and py != python:
                continue
            lines.append(f"wheels: {_arch_title(target)}, Python {py}")
            for name, pin in sorted(wheels.items()):
                what = (f"{pin.requirement} from the MUSA index" if pin.requirement else pin.location.display)
                lines.append(f"  {name:<15} {what}  line {pin.value.line}")
        if python and python not in pins.wheels.get(target, {}):
            lines.append(f"wheels: {_arch_title(target)}, Python {python}\n  (none)")
    return "\n".join(lines)


def check_location(location: Location, session) -> Optional[str]:
    """None when the artifact is there, else why not."""
    if location.scheme == "file":
        path = expand_home(location.local_path)
        return None if path.is_file() else f"no such file {location.display}"
    import requests
    headers = {"Accept-Encoding": "identity"}
    try:
        res = session.head(location.url, allow_redirects=True, timeout=TIMEOUT, headers=headers)
        res.close()
        if res.status_code < 400:
            return None
        res = session.get(location.url, allow_redirects=True, timeout=TIMEOUT, stream=True,
                          headers={**headers, "Range": "bytes=0-0"})
        res.close()
    except requests.RequestException as err:
        return describe(err)
    return None if res.status_code < 400 else f"HTTP {res.status_code} {res.reason}"


def check_tag(url: str, ref: str, is_tag: bool) -> Optional[str]:
    """None when `ref` exists at `url`, else why not. A commit id cannot be asked for: skipped."""
    if not is_tag and re.fullmatch(r"[0-9a-f]{7,40}", ref):
        return None
    pattern = f"refs/tags/{ref}" if is_tag else ref
    try:
        done = subprocess.run(["git", "ls-remote", "--exit-code", "--end-of-options", url, pattern],
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                              env={**os.environ, **GIT_ENV})
    except FileNotFoundError:
        raise ConfigError("git is not installed: --check-urls needs it to ask for repo tags") from None
    except subprocess.TimeoutExpired:
        return "git ls-remote timed out"
    if done.returncode == 0:
        return None
    if done.returncode == 2:
        return f"no {'tag' if is_tag else 'ref'} {ref!r} there"
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return redact(f"git ls-remote failed: {last}")


def check(pins: Pins, say: Callable[[str], None], index: str = "", targets: Optional[Sequence[str]] = None,
          python: Optional[str] = None) -> int:
    """Ask every URL and tag in the file (of the archs `targets` and the Python `python` only, when
    given), and every requirement of the MUSA index `index` when one is given; say one line each;
    return the number that failed."""
    import requests
    items: List[Tuple[int, str, Callable[[], Optional[str]]]] = []
    session = requests.Session()
    for name, repo in sorted(pins.repos.items()):
        items.append((repo.ref.line, f"repos.{name} {redact(repo.url.value)} @ {repo.ref.value}",
                      lambda r=repo: check_tag(r.url.value, r.ref.value, r.is_tag)))
    for target, found in sorted(pins.artifacts.items()):
        if not _wanted(target, targets):
            continue
        for name, pin in sorted(found.items()):
            location = parse_location(pin.location_text, what=name)
            items.append((pin.url.line, f"artifacts.{target}.{name} {location.display}",
                          lambda loc=location: check_location(loc, session)))
    for target, by_py in sorted(pins.wheels.items()):
        if not _wanted(target, targets):
            continue
        for py, wheels in sorted(by_py.items()):
            if python and py != python:
                continue
            for name, pin in sorted(wheels.items()):
                if pin.location:
                    items.append((pin.value.line, f"wheels.{target}.{py}.{name} {pin.location.display}",
                                  lambda loc=pin.location: check_location(loc, session)))
                elif index:
                    items.append((pin.value.line, f"wheels.{target}.{py}.{name} {pin.requirement} on the MUSA index",
                                  lambda req=pin.requirement: check_requirement(index, req, session)))
                else:
                    say(f"skip  {pins.path}:{pin.value.line}  wheels.{target}.{py}.{name} {pin.requirement}: "
                        "a requirement, which only the MUSA index can answer (give --musa-pip-index-url)")
    failed = 0
    for line, what, ask in sorted(items, key=lambda item: item[0]):
        why = ask()
        failed += bool(why)
        say(f"{'ok  ' if not why else 'FAIL'}  {pins.path}:{line}  {what}" + (f": {why}" if why else ""))
    say(f"checked {len(items)}, {failed} failed")
    return failed


def pins(values, env: Mapping[str, str], out: TextIO = sys.stdout) -> int:
    """The task: print the pins file's table; with --check-urls, ask every URL and tag. Returns 0,
    or raises MusaDockerError when a check failed."""
    values = sourced("pins", values).values
    if not values.get("pins"):
        raise ConfigError("--pins FILE is required: the pins file to show (see docs/config-and-pins.md)")
    pinned = inputs.load_pins(values["pins"], Path(env.get("HOME") or Path.home()))
    targets = None
    if values.get("gpu_arch"):
        targets = arch_mod.choose(values["gpu_arch"], env)[0].targets
    python = check_python(values["python_version"]) if values.get("python_version") else None
    index = index_url(values.get("musa_pip_index_url") or "", "--musa-pip-index-url")[0]   # asked from the host: no secret
    shown = pinned.for_platform(platforms.parse(values["platform"]).name) if values.get("platform") else pinned
    out.write(table(shown, targets, python) + "\n")
    if values.get("check_urls"):
        failed = check(pinned, say_to(out), index, targets, python)
        if failed:
            raise MusaDockerError(f"{failed} pin(s) of {pinned.path} failed the check; each is named above with its line")
    return 0
