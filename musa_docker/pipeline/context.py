"""The build context staged in the build dir: source trees as tars, the tar stream, staging.

How a source tree reaches the image was settled by measurement (see bench/context): the tree
is packed once into one tar, kept in the cache under a fingerprint of its files, hard-linked
into the context and `ADD`ed. Where the old way wrote every file four times (`cp -r`, the
context, `COPY`, the layer), the engine now writes one large file and unpacks the tree into
the step's container, then saves the layer; a rebuild with an unchanged tree packs nothing
and sends a context the layer cache recognises.

The build dir itself (what the tool may remove from it) is `builddir`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tarfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from .builddir import DOCKERIGNORE, MARKER, BuildDir
from ..fetch import git as repos
from ..fetch.locks import EntryLock, shared_entry
from ..util import CHUNK, Say, human_size, walk_tree

# --- source trees as one tar per content ---------------------------------------------------------

def fingerprint(root: Path) -> str:
    """A digest of every entry's path, type, mode, size, mtime, ctime and inode: changes whenever a
    file does, even by an edit that restores size and mtime (cp -p, rsync -t), since no user
    program can set a ctime."""
    h = hashlib.sha256()
    for rel, st, target in walk_tree(root):
        h.update(f"{rel}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}\0{target}\n"
                 .encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def tree_tar(root: Path, name: str, cache_dir: Path, say: Say, digest: Optional[str] = None,
             at: Optional[str] = None, held: Optional[ExitStack] = None, locked: Optional[str] = None) -> Path:
    """The tar of `root`, from the cache when the tree has not changed. Its members are under
    `name/` (for `ADD` at a directory), or, with `at` ("home/pytorch"), under that path with
    its parent dirs: an image layer. The tar's own sha256 (a layer's diff id) is taken while
    packing and kept beside it, see `tar_sha256`. `digest` is the tree's `fingerprint`, when
    the caller has it already. The tar is packed under a private name and renamed into place
    under its lock; it is left under a shared lock that `held` releases (eviction by another
    run skips it meanwhile); without `held` the lock is released on return.

    `locked` (the repo's URL as the lock records it) says the tree is a clean checkout of locked
    commits: its tar is then the same bytes however the checkout was made (cloned, or restored
    from git bundles; see `_locked_entries`)."""
    digest = (digest or fingerprint(root))[:20]
    trees = cache_dir / "trees"
    kind = ("layer" if at else "tree") + ("-locked" if locked is not None else "")
    target = trees / f"{name}-{kind}-{digest}.tar"
    lock = EntryLock(Path(f"{target}.lock"), f"the {name} {kind} tar {target.name}", say)

    def read():
        if _complete(target):
            say(f"cached {name} {kind} tar (tree unchanged since it was packed)")
            os.utime(target)      # eviction goes by last use, not by when it was packed
            return target
        return None

    def write():
        if _complete(target):     # packed by another run while this one waited
            return target
        say(f"pack {name} tree from {root} into the cache"
            + (": a checkout of its locked commits, file times, modes and .git made from them"
               if locked is not None else ""))
        for stale in trees.glob(f"{target.name}.part-*"):
            stale.unlink(missing_ok=True)     # left by a run that died: this lock is held by this run alone
        part = target.with_name(f"{target.name}.part-{os.getpid()}-{os.urandom(4).hex()}")
        h = hashlib.sha256()
        gits = Path(f"{part}.git")
        try:
            if locked is not None:
                made = repos.canonical_git(root, locked, gits)
                entries = _locked_entries(root, at or name, made, with_parents=bool(at))
            else:
                entries = _layer_entries(root, at) if at else _tree_entries(root, name)
            with open(part, "wb") as out:
                for chunk in tar_stream(entries):
                    h.update(chunk)
                    out.write(chunk)
            os.replace(part, target)
        except OSError as err:
            raise _at(err, part)     # a failed write(2) names no file: say where the disk filled up
        finally:
            part.unlink(missing_ok=True)     # a half-packed tar helps no one and fills the disk
            shutil.rmtree(gits, ignore_errors=True)
        sha = Path(f"{target}.sha256")
        sha_part = sha.with_name(f"{part.name}.sha256")
        sha_part.write_text(h.hexdigest() + "\n")
        os.replace(sha_part, sha)
        return target

    shared_entry(lock, read, write, still=lambda t: _complete(t))
    if held is not None:
        held.callback(lock.release)
    try:
        _evict(trees, f"{name}-{kind}", keep=target)
    finally:
        if held is None:
            lock.release()
    return target


def _complete(target: Path) -> bool:
    return target.exists() and Path(f"{target}.sha256").exists()


def _at(err: BaseException, path: Path) -> BaseException:
    """`err`, naming `path` when it is an OSError that names no file (a failed write(2) does not),
    so the message can say where the disk filled up."""
    if isinstance(err, OSError) and err.filename is None:
        err.filename = str(path)
    return err


def tar_sha256(tar: Path) -> str:
    """The sha256 of a tar made by `tree_tar`, recorded when it was packed."""
    return Path(f"{tar}.sha256").read_text().strip()


def _layer_entries(root: Path, at: str) -> Iterator[Entry]:
    parts = at.strip("/").split("/")
    for depth in range(1, len(parts)):
        parent = "/".join(parts[:depth])
        info = tarfile.TarInfo(parent)
        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
        yield Entry(parent, None, info)
    yield from _tree_entries(root, "/".join(parts))


def _locked_entries(root: Path, at: str, made, with_parents: bool) -> List[Entry]:
    """A locked checkout's entries under `at`, as a function of its commits: its files as checked
    out, each repo's `.git` replaced by the one `canonical_git` made (`made`), every entry owned by
    root with the top commit's time, files 0644 or 0755 (as git records them, whatever the umask
    was), dirs 0755; sorted by name."""
    parts = at.strip("/").split("/")
    prefix = "/".join(parts)
    out = []
    if with_parents:
        out += [Entry(p, None, _normal(tarfile.DIRTYPE, p, 0))
                for p in ("/".join(parts[:depth]) for depth in range(1, len(parts)))]

    def add(base: str, tree: Path, skip=frozenset()) -> None:
        for rel, st, target in walk_tree(tree):
            if rel in skip or any(rel.startswith(f"{s}/") for s in skip):
                continue
            ti = _info(f"{base}/{rel}", st, target)
            if ti is not None:
                out.append(Entry(ti.name, tree / rel if ti.isreg() else None,
                                 _normal(ti.type, ti.name, made.time, ti.mode, ti.size, ti.linkname)))

    out.append(Entry(prefix, None, _normal(tarfile.DIRTYPE, prefix, made.time)))
    add(prefix, root, skip=frozenset(f"{rel}/.git" if rel else ".git" for rel in made.gits))
    for rel, git_dir in made.gits.items():
        base = f"{prefix}/{rel}/.git" if rel else f"{prefix}/.git"
        out.append(Entry(base, None, _normal(tarfile.DIRTYPE, base, made.time)))
        add(base, git_dir)
    return sorted(out, key=lambda e: e.arcname)


def _normal(kind: bytes, name: str, mtime: int, mode: int = 0o755, size: int = 0,
            linkname: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = kind, mtime, 0, 0, "", ""
    if kind == tarfile.DIRTYPE:
        ti.mode = 0o755
    elif kind == tarfile.SYMTYPE:
        ti.mode, ti.linkname = 0o777, linkname
    else:
        ti.mode, ti.size = (0o755 if mode & 0o111 else 0o644), size
    return ti


def _evict(trees: Path, name: str, keep: Path, most: int = 2) -> None:
    """Keep the newest few tars of a tree: each is GBs. A tar another run holds (it is packing or
    sending it) is skipped, never pulled from under it."""
    tars = []
    for tar in trees.glob(f"{name}-*.tar"):
        try:
            tars.append((tar.stat().st_mtime, tar))
        except FileNotFoundError:
            continue               # evicted by another run just now
    older = [tar for _, tar in sorted(tars, reverse=True) if tar != keep]
    for old in older[most - 1:]:
        lock = EntryLock(Path(f"{old}.lock"), "")
        if not lock.try_exclusive():
            continue
        try:
            old.unlink(missing_ok=True)
            Path(f"{old}.sha256").unlink(missing_ok=True)
            Path(f"{old}.lock").unlink(missing_ok=True)
        finally:
            lock.release()


# --- the context as a tar stream -------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    arcname: str
    source: Optional[Path]     # None for a directory entry
    info: tarfile.TarInfo


def _info(arcname: str, st: os.stat_result, target: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(arcname)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.mtime = int(st.st_mtime)
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    if stat.S_ISDIR(st.st_mode):
        ti.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        ti.type, ti.linkname = tarfile.SYMTYPE, target
    elif stat.S_ISREG(st.st_mode):
        ti.size = st.st_size
    else:
        return None            # sockets, fifos, devices have no place in an image's source tree
    return ti


def _tree_entries(root: Path, prefix: str) -> Iterator[Entry]:
    st = os.lstat(root)
    yield Entry(prefix, None, _info(prefix, st))
    for rel, st, target in walk_tree(root):
        ti = _info(f"{prefix}/{rel}", st, target)
        if ti is not None:
            yield Entry(ti.name, root / rel if ti.isreg() else None, ti)


def dir_entries(root: Path, exclude=(MARKER,)) -> Iterator[Entry]:
    """Every entry of a staged context dir, sorted, with the tool's own marker left out."""
    for rel, st, target in walk_tree(root):
        if rel.split("/")[0] in exclude:
            continue
        ti = _info(rel, st, target)
        if ti is not None:
            yield Entry(rel, root / rel if ti.isreg() else None, ti)


def tar_stream(entries) -> Iterator[bytes]:
    """A POSIX tar of `entries`, yielded in chunks: constant memory whatever the sizes."""
    for e in entries:
        yield e.info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        if e.source is not None and e.info.size:
            left = e.info.size
            with open(e.source, "rb") as f:
                while left:
                    chunk = f.read(min(CHUNK, left))
                    if not chunk:
                        raise OSError(errno.EIO, f"{e.source} shrank while it was being sent")
                    left -= len(chunk)
                    yield chunk
            pad = -e.info.size % tarfile.BLOCKSIZE
            if pad:
                yield b"\0" * pad
    yield b"\0" * (tarfile.BLOCKSIZE * 2)


# --- staging ---------------------------------------------------------------------------------------

def link_or_copy(src: Path, dst: Path, say: Optional[Say] = None) -> None:
    """Hard-link when source and context share a filesystem (instant, no bytes written), else copy,
    saying so for a large file: a GB tree tar copied on every build is worth knowing about."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError as err:
        if err.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EACCES):
            raise
        size = src.stat().st_size
        if say and size >= 64 << 20:
            say(f"copy {src.name} ({human_size(size, 'GB')}) into the build dir: it cannot be hard-linked "
                f"({os.strerror(err.errno)}); a --build-dir on the cache's filesystem avoids the copy")
        shutil.copy2(src, dst)


def stage(bd: BuildDir, files: Dict[str, Path], dirs: Dict[str, Path], say: Optional[Say] = None) -> List[str]:
    """Put `files` (context path -> source file) and every file of `dirs` (context dir -> source
    dir) in the build dir, plus the .dockerignore; return the context paths staged, sorted. Every
    path is recorded in the build dir's marker before it is written."""
    files = dict(files)
    for rel, src in sorted(dirs.items()):
        bd.record_dir(rel)
        (bd.path / rel).mkdir(parents=True, exist_ok=True)
        for child in sorted(src.iterdir()):
            if child.is_file():
                files[f"{rel}/{child.name}"] = child
    bd.record(sorted(files) + [".dockerignore"])
    for rel, src in sorted(files.items()):
        try:
            link_or_copy(src, bd.path / rel, say)
        except OSError as err:
            raise _at(err, bd.path / rel)
    (bd.path / ".dockerignore").write_text(DOCKERIGNORE)
    bd.seal()
    return sorted(files)

