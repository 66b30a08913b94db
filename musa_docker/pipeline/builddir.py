"""The build dir: made, checked, sealed and cleaned by the tool.

The build dir belongs to the tool only when the tool made it: a marker file inside says so and
lists every file the tool wrote (with its size, inode and mtime) and every dir it made; only
those are ever removed, and a kept dir holding anything else is refused, never cleared.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from ..errors import BuildDirError
from ..values.paths import check_reserved
from ..util import walk_tree

MARKER = ".musa-docker-build-dir"
DOCKERIGNORE = f"{MARKER}\n"


@dataclass
class BuildDir:
    path: Path
    made_dir: bool                       # the tool created the directory itself
    # What the tool wrote, relative to `path`: each file with [size, inode, mtime_ns] to recognise
    # it by (None: recorded just before it was written), and each dir it made.
    files: Dict[str, Optional[list]] = field(default_factory=dict)
    dirs: List[str] = field(default_factory=list)
    made_parents: List[Path] = field(default_factory=list)   # missing parents the tool created, deepest first

    @staticmethod
    def check(wanted: Optional[Path], home: Path) -> tuple:
        """Can `wanted` be used? Returns (path, entries, record); raises BuildDirError for a dir the
        tool must not touch: one it did not make, or one holding anything the tool did not write
        there (a file a user added or changed in a kept dir is never replaced). Reads only, so it
        runs before any clone or download."""
        if wanted is None:
            return None, [], {}
        path = check_reserved(wanted, home)
        if path.exists() and not path.is_dir():
            raise BuildDirError(f"--build-dir {path} is a file: name a directory")
        entries = sorted(os.listdir(path)) if path.exists() else []
        if not entries:
            return path, entries, {}
        if MARKER not in entries:
            raise BuildDirError(
                f"--build-dir {path} is not empty and was not made by musa-docker: it is left untouched; "
                "name an empty or new directory"
            )
        record = _read_marker(path)
        foreign = []
        for rel, st, _ in walk_tree(path):
            if rel == MARKER:
                continue
            if stat.S_ISDIR(st.st_mode):
                if rel not in record["dirs"]:
                    foreign.append(rel + "/")
            elif rel not in record["files"] or not _same(record["files"][rel], st):
                foreign.append(rel)
        if foreign:
            raise BuildDirError(
                f"--build-dir {path} holds files musa-docker did not write, or that were changed since "
                f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); they are left untouched: "
                "move them, or name another directory"
            )
        return path, entries, record

    @classmethod
    def acquire(cls, wanted: Optional[Path], home: Path, scratch: Optional[Path] = None) -> "BuildDir":
        """Use `wanted`, or a fresh temp dir under `scratch` (the cache, so that staged files can be
        hard-linked from it rather than copied). Raises BuildDirError for a dir the tool must not touch."""
        if wanted is None:
            if scratch is not None:
                scratch.mkdir(parents=True, exist_ok=True)
            bd = cls(Path(tempfile.mkdtemp(prefix="musa-docker-", dir=scratch)), made_dir=True)
        else:
            path, entries, record = cls.check(wanted, home)
            if not path.exists():
                missing = [p for p in [path, *path.parents] if not p.exists()]
                path.mkdir(parents=True)
                bd = cls(path, made_dir=True, made_parents=missing[1:])
            elif not entries:
                bd = cls(path, made_dir=False)
            else:
                # A dir the tool made before (e.g. --keep-build-dir), holding only what it wrote:
                # that is replaced, nothing else.
                bd = cls(path, made_dir=record["made_dir"], files=record["files"], dirs=record["dirs"])
                bd.clear()
        bd._write_marker()
        return bd

    @classmethod
    def load(cls, path: Path) -> "BuildDir":
        """A dir the tool made before, as its marker records it (for `cache clean`). Raises
        BuildDirError when the marker cannot be read."""
        record = _read_marker(path)
        return cls(path, made_dir=record["made_dir"], files=record["files"], dirs=record["dirs"])

    def _write_marker(self) -> None:
        (self.path / MARKER).write_text(json.dumps(
            {"made_dir": self.made_dir, "files": dict(sorted(self.files.items())), "dirs": sorted(self.dirs)}))

    def record(self, rels) -> None:
        """Note files, and the dirs they need, as the tool's before they are written, so a crash
        leaves them owned; `seal` then records how to recognise each file."""
        for rel in rels:
            self._note_dirs(rel.rpartition("/")[0])
            self.files.setdefault(rel, None)
        self._write_marker()

    def record_dir(self, rel: str) -> None:
        self._note_dirs(rel)
        self._write_marker()

    def _note_dirs(self, rel_dir: str) -> None:
        parts = rel_dir.split("/") if rel_dir else []
        for depth in range(1, len(parts) + 1):
            made = "/".join(parts[:depth])
            if made not in self.dirs and not (self.path / made).exists():
                self.dirs.append(made)

    def seal(self) -> None:
        for rel in self.files:
            try:
                st = os.lstat(self.path / rel)
            except FileNotFoundError:
                continue
            self.files[rel] = [st.st_size, st.st_ino, st.st_mtime_ns]
        self._write_marker()

    def clear(self) -> None:
        """Remove what the tool wrote: its files, then its dirs once empty. Never a whole tree:
        a file someone put in one of its dirs stays, and so does that dir."""
        for rel in sorted(self.files, reverse=True):
            target = self.path / rel
            if target.is_symlink() or target.is_file():
                target.unlink()
        self.files = {}
        for rel in sorted(self.dirs, key=lambda d: d.count("/"), reverse=True):
            try:
                (self.path / rel).rmdir()
                self.dirs.remove(rel)
            except FileNotFoundError:
                self.dirs.remove(rel)
            except OSError:
                pass              # not empty: someone else's files are in it
        self._write_marker()

    def remove(self) -> None:
        """Remove what the tool wrote, and the dir itself when the tool made it."""
        self.clear()
        if self.dirs:
            return                # a dir of the tool's holds someone's files: keep the marker that says so
        (self.path / MARKER).unlink(missing_ok=True)
        if self.made_dir:
            for made in [self.path, *self.made_parents]:
                try:
                    made.rmdir()
                except OSError:
                    break


def _read_marker(path: Path) -> dict:
    """The marker's record, with only paths inside the dir: a marker naming '..' or '/' must
    never steer a removal outside it. Raises BuildDirError when it cannot be read."""
    try:
        record = json.loads((path / MARKER).read_text() or "{}")
        files = {str(k): (list(v) if v is not None else None) for k, v in (record.get("files") or {}).items()}
        dirs = [str(d) for d in record.get("dirs") or []]
        made_dir = bool(record.get("made_dir"))
    except (OSError, ValueError, AttributeError, TypeError):
        raise BuildDirError(
            f"--build-dir {path} has an unreadable {MARKER}: it is left untouched; "
            "name an empty or new directory"
        ) from None
    return {"made_dir": made_dir, "files": {k: v for k, v in files.items() if _inside(k)},
            "dirs": [d for d in dirs if _inside(d)]}


def _inside(rel: str) -> bool:
    parts = rel.split("/")
    return bool(rel) and not rel.startswith("/") and all(p not in ("", ".", "..") for p in parts) \
        and parts[0] != MARKER


def _same(recorded: Optional[list], st: os.stat_result) -> bool:
    """Is this the file the tool wrote? Size and inode, and the mtime unless the file is a hard
    link into the cache (whose mtime the cache's eviction moves)."""
    if recorded is None:
        return True               # recorded, then the run stopped before it could be sealed
    size, ino, mtime = (list(recorded) + [None, None, None])[:3]
    return st.st_size == size and st.st_ino == ino and (st.st_nlink > 1 or st.st_mtime_ns == mtime)
