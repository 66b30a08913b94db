"""Small helpers every part shares: the say callback, byte sizes, short image ids, file hashes,
a sorted walk of a tree, a file written whole or not at all, a stream of chunks read as a file."""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import stat
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Tuple

Say = Callable[[str], None]   # one status line for people, written as it happens
CHUNK = 1 << 20               # read and send files in 1 MiB pieces: constant memory, few syscalls


def say_to(out) -> Say:
    """A Say that writes each line to `out` at once (a terminal, a pipe, a test's StringIO)."""
    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()
    return say


def closest(word: str, choices: Sequence[str], cutoff: float = 0.6) -> Optional[str]:
    """The real choice a mistyped `word` most likely meant: one it begins (past two characters),
    else the nearest by difflib's ratio of at least `cutoff`; None when none is near."""
    starts = [c for c in choices if c.startswith(word) and len(word) > 2]
    found = starts[:1] or difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    return found[0] if found else None


def expand_home(text: str, home=None) -> Path:
    """A path a user typed, `~` expanded the one way every part does it: `~` and `~/…` are `home`
    (the HOME of the environment the task was given; the process's when None), `~bob/…` is
    another user's, left to the OS."""
    text = str(text)
    if text == "~" or text.startswith("~/"):
        return Path(str(home if home is not None else os.path.expanduser("~")) + text[1:])
    if text.startswith("~"):
        return Path(os.path.expanduser(text))
    return Path(text)


_SIZE_UNITS = {"": 1, "B": 1, "K": 1000, "KB": 1000, "M": 1000 ** 2, "MB": 1000 ** 2, "G": 1000 ** 3,
               "GB": 1000 ** 3, "T": 1000 ** 4, "TB": 1000 ** 4, "KIB": 1024, "MIB": 1024 ** 2,
               "GIB": 1024 ** 3, "TIB": 1024 ** 4}


def parse_size(text: str) -> int:
    """Bytes from `20G`, `20GB`, `1.5 GB`, `500M`, `18GiB` or a plain number of bytes: SI units
    (G = 10^9, as `docker images` and human_size count), binary ones when spelled GiB. Raises
    ValueError for anything else."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = m and m.group(2).upper()
    if not m or unit not in _SIZE_UNITS:
        raise ValueError(f"{text!r} is not a size")
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def human_size(n: Optional[float], unit: Optional[str] = None) -> str:
    """`812.3 MB`-style size in SI units (the progress bars count the same way); with
    `unit="GB"`, always gigabytes to two places, so a column of image sizes lines up."""
    if n is None:
        return "size unknown"
    if unit == "GB":
        return f"{n / 1e9:.2f} GB"
    if n < 1000:
        return f"{n:.0f} B"
    value = float(n)
    for name in ("kB", "MB", "GB"):
        value /= 1000
        if value < 1000:
            return f"{value:.1f} {name}"
    return f"{value / 1000:.1f} TB"


def short_id(image_id: str) -> str:
    """The 12 hex digits `docker images` shows, from a `sha256:…` id."""
    return image_id.split(":", 1)[-1][:12]


class Cancelled(Exception):
    """Other work of the same run failed: stop, keep what was written for next time."""


def hash_file(path: Path, cancel: Optional[threading.Event] = None) -> Tuple[str, int]:
    """(sha256 hex, size) of a file, read in chunks; raises Cancelled when `cancel` is set
    (checked between chunks, so a large file stops soon after another download fails)."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            chunk = f.read(CHUNK)
            if not chunk:
                return h.hexdigest(), size
            h.update(chunk)
            size += len(chunk)


def file_sha256(path: Path, cancel: Optional[threading.Event] = None) -> str:
    return hash_file(path, cancel)[0]


def walk_tree(root: Path):
    """Yield (relative path, lstat, symlink target) for everything under root, sorted, dirs first."""
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        with os.scandir(root / rel_dir if rel_dir else root) as it:
            entries = sorted(it, key=lambda e: e.name)
        subdirs = []
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            st = entry.stat(follow_symlinks=False)
            target = os.readlink(entry.path) if stat.S_ISLNK(st.st_mode) else ""
            yield rel, st, target
            if stat.S_ISDIR(st.st_mode):
                subdirs.append(rel)
        stack.extend(reversed(subdirs))


def write_atomic(path: Path, data) -> None:
    """`data` (text or bytes) at `path`, whole or not at all: a private temp file beside it, renamed
    into place, so a reader (or another run) never sees half of it. Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def is_terminal(stream) -> bool:
    """Whether `stream` is a terminal: False for a pipe, a file, a closed stream or a test's StringIO."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class ChunkReader:
    """A file-like view of a stream of byte chunks, for tarfile's streaming mode."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if n < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data
