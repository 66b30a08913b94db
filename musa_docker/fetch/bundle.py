"""A bundle: everything a lock file names, in one portable directory or tar, and its manifest.

    manifest.json              every other file with its size and sha256, and what each input is
    lock.json                  the lock the bundle was made from
    blobs/sha256/<hex>         each file's bytes, stored once whatever uses them: artifacts, .debs,
                               wheels, git bundles, `docker save` archives
    apt/<key>/Packages(.gz)    a flat apt repository per locked apt record (`deb [trusted=yes]
    apt/<key>/<name>.deb       file:DIR/apt/<key> ./`), its .debs hard links to their blobs
    pip/<key>/simple/…         a wheelhouse per index (PEP 503 pages linking files/ with #sha256=),
    pip/<key>/files/<name>     its files hard links to their blobs

Hard links keep one copy of the bytes on disk, and a tar of the directory stores each once too.
`verify` checks every file against the manifest and fails closed: a file that differs, is missing
or is not in the manifest is named, and nothing is imported from such a bundle. Raises BundleError.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from ..errors import BundleError
from ..util import hash_file

FORMAT = 1
MANIFEST = "manifest.json"
LOCK = "lock.json"


def key_of(*parts: str) -> str:
    """A short, stable directory name for an input of the lock (an apt record, an index)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class Writer:
    """Builds a bundle directory: blobs stored once, named views as hard links, then the manifest.
    `held`: the blobs an older bundle holds (a differential bundle leaves them out)."""

    def __init__(self, root: Path, held: frozenset = frozenset()):
        self.root = Path(root)
        self.held = held
        self.inputs: Dict[str, List[Dict[str, Any]]] = {"repos": [], "images": [], "apt": [], "os_apt": [], "pip": [],
                                                         "artifacts": []}
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)

    def blob(self, source: Path, sha256: Optional[str] = None) -> str:
        """Store `source`'s bytes once (hard-linked when the file system allows, else copied);
        return the blob's path in the bundle. A sha256 given is checked."""
        got, _ = hash_file(source)
        if sha256 and got != sha256:
            raise BundleError(f"{source} has sha256 {got[:16]}…, not {sha256[:16]}… as the lock says: it changed "
                              "since it was fetched; lock again")
        if got in self.held:
            return f"blobs/sha256/{got}"
        target = self.root / "blobs" / "sha256" / got
        if not target.exists():
            tmp = target.with_name(f".{got}.tmp")
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        return f"blobs/sha256/{got}"

    def link(self, blob: str, rel: str) -> None:
        """A named view of a blob (`apt/<key>/x.deb`), a hard link when the file system allows."""
        target = self.root / rel
        if not (self.root / blob).exists():
            return                # the older bundle holds it (a differential bundle)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            return
        try:
            os.link(self.root / blob, target)
        except OSError:
            shutil.copyfile(self.root / blob, target)

    def text(self, rel: str, data: bytes) -> None:
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def finish(self, lock_text: str, since: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """Write the lock and the manifest (last, so a bundle cut short has none and is refused)."""
        self.text(LOCK, lock_text.encode())
        files = {}
        for path in sorted(p for p in self.root.rglob("*") if p.is_file() and p.name != MANIFEST):
            sha, size = hash_file(path)
            files[path.relative_to(self.root).as_posix()] = {"sha256": sha, "size": size}
        manifest = {"musa_docker_bundle": FORMAT, "files": files,
                    "inputs": {k: sorted(v, key=lambda r: json.dumps(r, sort_keys=True))
                               for k, v in self.inputs.items()}}
        if since is not None:
            manifest["since"] = dict(since)
        self.text(MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
        return manifest


def flat_packages(stanzas: List[Dict[str, str]]) -> bytes:
    """A flat repository's Packages index: each stanza with its Filename in the repository's root."""
    out = []
    order = ("Package", "Version", "Architecture", "Filename", "Size", "SHA256")
    for fields in stanzas:
        fields = dict(fields, Filename=f"./{PurePosixPath(fields['Filename']).name}")
        keys = [k for k in order if k in fields] + sorted(k for k in fields if k not in order)
        out.append("\n".join(f"{k}: {fields[k]}" for k in keys))
    return ("\n\n".join(out) + "\n").encode()


def simple_page(files: List[Tuple[str, str]]) -> bytes:
    """A PEP 503 project page linking `../../files/<name>#sha256=<hex>`."""
    links = "".join(f'<a href="../../files/{name}#sha256={sha}">{name}</a><br>\n' for name, sha in files)
    return f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n".encode()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def write_tar(root: Path, target: Path) -> None:
    """The bundle directory as one tar, members sorted, hard links stored once, owners dropped;
    written under a private name and renamed into place."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(root.rglob("*")):
                info = tar.gettarinfo(str(path), path.relative_to(root).as_posix())
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                if info.isreg():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def opened(path: Path, scratch: Path, only: Optional[str] = None) -> Iterator[Path]:
    """The bundle at `path` as a directory: itself, or a tar (or a tar split in parts, see
    `split`) unpacked into a private dir under `scratch` (removed afterwards), refusing members that
    would land outside it; `only` unpacks that one member. Raises BundleError."""
    path = Path(path)
    if path.is_dir():
        yield path
        return
    parts = parts_file(path)
    if not path.is_file() and not parts.is_file():
        raise BundleError(f"{path}: no such bundle (a directory or a .tar that `musa-docker bundle` wrote)")
    scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bundle-", dir=scratch))
    try:
        if not path.is_file():
            path = join(parts, work / "joined.tar")
        try:
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    name = PurePosixPath(member.name)
                    if name.is_absolute() or ".." in name.parts or not (member.isreg() or member.isdir()
                                                                          or member.islnk()):
                        raise BundleError(f"{path}: member {member.name!r} is not a file of a bundle: refused")
                    if member.islnk() and (PurePosixPath(member.linkname).is_absolute()
                                           or ".." in PurePosixPath(member.linkname).parts):
                        raise BundleError(f"{path}: member {member.name!r} links outside the bundle: refused")
                members = [m for m in tar.getmembers() if only is None or m.name == only]
                tar.extractall(work / "bundle", members=members,
                               **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        except (tarfile.TarError, EOFError, OSError) as err:
            raise BundleError(f"{path} is not a readable bundle tar ({err})") from err
        if not (work / "bundle").is_dir():
            (work / "bundle").mkdir()
        yield work / "bundle"
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- parts ------------------------------------------------------------------------------------------

def parts_file(tar: Path) -> Path:
    return tar.with_name(tar.name + ".parts.json")


def split(tar: Path, size: int) -> List[Path]:
    """Cut `tar` into `NAME.001`, `NAME.002`… of at most `size` bytes, with `NAME.parts.json`
    listing each part's size and sha256; the tar itself is removed. Returns the parts."""
    parts, rows = [], []
    with open(tar, "rb") as src:
        while True:
            part = tar.with_name(f"{tar.name}.{len(parts) + 1:03d}")
            digest, written = hashlib.sha256(), 0
            with open(part, "wb") as out:
                while written < size:
                    chunk = src.read(min(1 << 20, size - written))
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
            if written == 0 and parts:
                part.unlink()
                break
            parts.append(part)
            rows.append({"name": part.name, "size": written, "sha256": digest.hexdigest()})
            if written < size:
                break
    parts_file(tar).write_text(json.dumps({"musa_docker_bundle_parts": FORMAT, "tar": tar.name, "parts": rows},
                                          indent=2, sort_keys=True) + "\n")
    tar.unlink()
    return parts


def join(parts: Path, target: Path) -> Path:
    """The parts a `.parts.json` lists, each checked, joined into `target`. Raises BundleError
    naming a part that is missing or differs."""
    try:
        data = json.loads(parts.read_text())
        rows = data["parts"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BundleError(f"{parts} cannot be read ({err}): the bundle's list of parts is damaged") from None
    with open(target, "wb") as out:
        for row in rows:
            part = parts.with_name(str(row["name"]))
            if not part.is_file():
                raise BundleError(f"{part} is missing: copy every part of the bundle ({len(rows)} parts)")
            sha, size = hash_file(part)
            if sha != row["sha256"] or size != row["size"]:
                raise BundleError(f"{part} differs from {parts.name} (sha256 {sha[:16]}…, {size} bytes; expected "
                                  f"{str(row['sha256'])[:16]}…, {row['size']} bytes): copy it again")
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    return target


def held(manifest: Mapping[str, Any]) -> frozenset:
    """The blobs (sha256) a bundle holds, by its manifest."""
    return frozenset(rel.rsplit("/", 1)[1] for rel in manifest.get("files", {}) if rel.startswith("blobs/sha256/"))


def manifest_sha256(root: Path) -> str:
    return hash_file(root / MANIFEST)[0]


def old_manifest(path: Path, scratch: Path) -> Tuple[Dict[str, Any], str]:
    """The manifest of an older bundle (its directory, its tar or its manifest.json) and the
    sha256 of its bytes, which names it. Raises BundleError."""
    path = Path(path)
    if path.is_file() and path.suffix == ".json":
        return read_manifest(path.parent, str(path), path.name), hash_file(path)[0]
    with opened(path, scratch, only=MANIFEST) as root:
        return read_manifest(root, str(path)), manifest_sha256(root)


def read_manifest(root: Path, shown: str, name: str = MANIFEST) -> Dict[str, Any]:
    try:
        data = json.loads((root / name).read_text())
    except FileNotFoundError:
        raise BundleError(f"{shown} has no {MANIFEST}: not a bundle, or one cut short; write it again") from None
    except (OSError, ValueError) as err:
        raise BundleError(f"{shown}: {MANIFEST} cannot be read ({err}): the bundle is damaged") from None
    if not isinstance(data, dict) or data.get("musa_docker_bundle") != FORMAT or not isinstance(data.get("files"), dict):
        raise BundleError(f"{shown}: {MANIFEST} is not a bundle manifest of format {FORMAT}: the bundle is damaged")
    return data


def verify(root: Path, shown: str, say=lambda _: None) -> Dict[str, Any]:
    """Check every file of the bundle at `root` against its manifest; return the manifest. Fails
    closed: raises BundleError naming the first file that differs, is missing, or is not listed."""
    manifest = read_manifest(root, shown)
    listed = manifest["files"]
    links = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_symlink())
    if links:
        raise BundleError(f"{shown}: {links[0]} is a symbolic link, which no bundle holds: refused")
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != MANIFEST}
    extra = sorted(present - set(listed))
    if extra:
        raise BundleError(f"{shown}: {extra[0]} is not in the manifest: the bundle was changed; use the bundle "
                          "as it was written")
    for rel in sorted(listed):
        entry = listed[rel]
        path = root / rel
        if not path.is_file():
            raise BundleError(f"{shown}: {rel} is missing (the manifest lists it): the bundle is incomplete; "
                              "copy it again")
        sha, size = hash_file(path)
        if size != entry.get("size") or sha != entry.get("sha256"):
            raise BundleError(f"{shown}: {rel} differs from the manifest (sha256 {sha[:16]}…, {size} bytes; "
                              f"expected {str(entry.get('sha256'))[:16]}…, {entry.get('size')} bytes): the bundle "
                              "is damaged; copy it again")
        if rel.startswith("blobs/sha256/") and sha != rel.rsplit("/", 1)[1]:
            raise BundleError(f"{shown}: {rel} does not hold the bytes its name says: the bundle is damaged")
    say(f"verified {shown}: {len(listed)} files, every sha256 as the manifest says")
    return manifest
