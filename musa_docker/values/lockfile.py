"""The lock file: every input of one or more builds, resolved to exact commits and bytes.

`musa-docker lock` writes it; a build given `--lock FILE` takes exactly what it records, and a
bundle carries it. It is JSON with sorted keys, a two-space indent and no time in it, so locking
again what did not move writes the same bytes (a diff shows only what moved). Each section is a
list of records sorted by their key, and a build finds its inputs by that key, so one file holds
every image of a build-all matrix and an input several images share is recorded once:

    repos      name, url, ref          -> commit, submodules (path, url, commit, their submodules)
    artifacts  url                     -> name, filename, size, sha256
    apt        source, runtime, arch   -> packages (package, version, architecture, filename, size, sha256,
                                          control: the Depends, Pre-Depends… a flat repository lists)
    os_apt     image, set, arch        -> mirror, packages (package, version, architecture, filename, url,
                                          size, sha256, control): the OS image's own packages, the whole
                                          transaction of common/install_base.sh's set (build: base;
                                          runtime: release)
    pip        index, requirement      -> name, version, files (filename, url, sha256)
    pip_sets   image, index            -> python, platforms, requirements (`name==version`, each a `pip`
                                          record of that index): what the image's RUN steps install from
                                          the public index (--pip-index-url), resolved as pip would
    images     ref                     -> id, digests

URLs are written without their credentials (`strip_credentials`): a token never lands in the
file, and a rotated token still finds its record. Raises LockError for a file that cannot be read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..errors import LockError
from ..util import write_atomic
from .locations import strip_credentials

FORMAT = 1
PUBLIC_INDEX = "https://pypi.org/simple/"    # pip's own default: a pip set's index when --pip-index-url is not given
KEYS: Dict[str, Tuple[str, ...]] = {
    "repos": ("name", "url", "ref"),
    "artifacts": ("url",),
    "apt": ("source", "runtime", "arch"),
    "os_apt": ("image", "set", "arch"),
    "pip": ("index", "requirement"),
    "pip_sets": ("image", "index"),
    "images": ("ref",),
}
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def image_name(ref: str) -> str:
    """An image reference without its tag: the key of its pip set, whatever tag a build gives it."""
    last = ref.rsplit("/", 1)[-1]
    return ref.rsplit(":", 1)[0] if ":" in last else ref


def key_url(url: str) -> str:
    """A URL as the lock writes and finds it: without credentials; a local path as it is."""
    return strip_credentials(url) if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url) and \
        not url.lower().startswith("file:") else url


def empty() -> Dict[str, Any]:
    return {"musa_docker_lock": FORMAT, **{section: [] for section in KEYS}}


def key(section: str, record: Mapping[str, Any]) -> Tuple[str, ...]:
    return tuple(str(record.get(k, "")) for k in KEYS[section])


@dataclass(frozen=True)
class Lock:
    """A lock file read and checked: `path` as the user named it, `data` its content."""

    path: str
    data: Dict[str, Any]

    @property
    def source(self) -> str:
        """The source the plan shows for a locked value: `lock FILE`."""
        return f"lock {self.path}"

    def find(self, section: str, *values: str) -> Optional[Dict[str, Any]]:
        wanted = tuple(values)
        return next((r for r in self.data.get(section, ()) if key(section, r) == wanted), None)

    def repo(self, name: str, url: str, ref: str) -> Optional[Dict[str, Any]]:
        return self.find("repos", name, key_url(url), ref)

    def artifact(self, url: str) -> Optional[Dict[str, Any]]:
        return self.find("artifacts", key_url(url))

    def apt(self, source: str, runtime: str, arch: Optional[str] = None) -> Optional[Dict[str, Any]]:
        """The apt record of that source line and runtime, for `arch` (or the only one there is)."""
        found = [r for r in self.data.get("apt", ()) if r.get("source") == source and r.get("runtime") == runtime]
        if arch is not None:
            found = [r for r in found if r.get("arch") == arch]
        return found[0] if len(found) == 1 else None

    def pip(self, index: str, requirement: str) -> Optional[Dict[str, Any]]:
        return self.find("pip", key_url(index), requirement)

    def image(self, ref: str) -> Optional[Dict[str, Any]]:
        return self.find("images", ref)

    def os_apt(self, image: str, set_name: str, arch: str) -> Optional[Dict[str, Any]]:
        return self.find("os_apt", image, set_name, arch)

    def pip_set(self, image: str, index: str) -> Optional[Dict[str, Any]]:
        return self.find("pip_sets", image, key_url(index))

    def names(self) -> List[str]:
        """Every input's name, as `lock --update NAME` takes it."""
        out = {r["name"] for r in self.data["repos"]} | {r["name"] for r in self.data["artifacts"]}
        out |= {p["package"] for r in self.data["apt"] + self.data["os_apt"] for p in r["packages"]}
        out |= {r["name"] for r in self.data["pip"]} | {r["ref"] for r in self.data["images"]}
        return sorted(out)


def apt_pins(record: Mapping[str, Any]) -> List[str]:
    """The `name=version` of each package an apt or os_apt record holds: what apt installs under --lock."""
    return [f"{p['package']}={p['version']}" for p in record["packages"]]


def add(data: Dict[str, Any], section: str, record: Dict[str, Any]) -> None:
    """Put `record` in its section, replacing one of the same key; the section stays sorted."""
    rows = [r for r in data[section] if key(section, r) != key(section, record)]
    rows.append(record)
    data[section] = sorted(rows, key=lambda r: key(section, r))


def dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(path: Path, data: Mapping[str, Any]) -> None:
    """Write the lock whole or not at all (a temp file renamed into place)."""
    write_atomic(path, dumps(data))


def load(path: Path, shown: Optional[str] = None) -> Lock:
    """Read and check a lock file. Raises LockError naming the file and what is wrong."""
    shown = shown or str(path)
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise LockError(f"--lock {shown}: no such file; write it with `musa-docker lock`") from None
    except (OSError, UnicodeDecodeError) as err:
        raise LockError(f"--lock {shown} cannot be read: {getattr(err, 'strerror', None) or err}") from err
    try:
        data = json.loads(text)
    except ValueError as err:
        raise LockError(f"--lock {shown} is not a lock file (not JSON: {err}); write it with `musa-docker lock`") \
            from None
    check(data, shown)
    return Lock(shown, data)


def check(data: Any, shown: str) -> None:
    """Refuse a lock whose records lack what a build needs from them. Raises LockError."""
    def bad(what: str):
        return LockError(f"--lock {shown}: {what}; write it again with `musa-docker lock`")

    if not isinstance(data, dict) or data.get("musa_docker_lock") != FORMAT:
        raise bad(f"not a lock file of format {FORMAT} (no \"musa_docker_lock\": {FORMAT})")
    for section in KEYS:
        rows = data.setdefault(section, [])
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise bad(f"{section!r} is not a list of records")
        for row in rows:
            if not all(isinstance(row.get(k), str) for k in KEYS[section]):
                raise bad(f"a record of {section!r} lacks {', '.join(KEYS[section])}")
    for row in data["repos"]:
        if not _HEX40.match(str(row.get("commit"))):
            raise bad(f"repo {row['name']} has no 40-hex commit")
    for row in data["artifacts"]:
        if not _HEX64.match(str(row.get("sha256"))) or not isinstance(row.get("size"), int):
            raise bad(f"artifact {row['url']} has no sha256 and size")
        row.setdefault("name", row.get("filename", ""))
    for row in data["apt"]:
        packages = row.get("packages")
        if not isinstance(packages, list) or not all(
                isinstance(p, dict) and isinstance(p.get("package"), str) and isinstance(p.get("version"), str)
                and _HEX64.match(str(p.get("sha256"))) for p in packages):
            raise bad(f"the apt record of {row['source']} lacks packages with version and sha256")
    for row in data["pip"]:
        files = row.get("files")
        if not isinstance(row.get("name"), str) or not isinstance(files, list) or not files or not all(
                isinstance(f, dict) and isinstance(f.get("filename"), str) and _HEX64.match(str(f.get("sha256")))
                for f in files):
            raise bad(f"the pip record of {row['requirement']} lacks files with their sha256")
    for row in data["os_apt"]:
        packages = row.get("packages")
        if not isinstance(packages, list) or not all(
                isinstance(p, dict) and all(isinstance(p.get(k), str) for k in ("package", "version", "url"))
                and _HEX64.match(str(p.get("sha256"))) for p in packages):
            raise bad(f"the os_apt record of {row['image']} lacks packages with version, url and sha256")
    for row in data["pip_sets"]:
        requirements = row.get("requirements")
        if not isinstance(requirements, list) or not all(isinstance(r, str) and "==" in r for r in requirements):
            raise bad(f"the pip set of {row['image']} lacks its `name==version` requirements")
        for requirement in requirements:
            if not any(key("pip", r) == (row["index"], requirement) for r in data["pip"]):
                raise bad(f"the pip set of {row['image']} names {requirement}, which has no pip record")
    for row in data["images"]:
        if not isinstance(row.get("id"), str):
            raise bad(f"image {row['ref']} has no id")
