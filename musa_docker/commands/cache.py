"""`cache ls` and `cache clean`: what the tool's cache holds, and removing what the tool made there,
as `pip cache` and `conda clean` do.

The cache dir is MUSA_DOCKER_CACHE (else ~/.cache/musa_docker). `ls` lists each kind of entry
(pipeline/cachedir.py) with its size and last use, and the engine's BuildKit cache mounts (the
compile cache), which live in the engine, not in the cache dir, with the `docker builder prune`
line that frees them. `clean` removes the entries, all or those unused for `--older-than DAYS`,
keeping the logs with `--keep-logs`; an entry a running build holds is kept and said so.
"""

from __future__ import annotations

import calendar
import sys
import time
from pathlib import Path
from typing import Any, List, Mapping, Optional, TextIO

from .. import defaults
from ..errors import ConfigError, MusaDockerError
from ..fetch.cache import made_by_tool
from ..options.cascade import sourced
from ..pipeline import cachedir
from ..util import expand_home, human_size

PRUNE = "docker builder prune --filter type=exec.cachemount"
_LISTED = ("downloads", "trees", "repos", "builds", "logs")   # one line per entry; the rest in sum


def cache(values, env: Mapping[str, str], out: TextIO = sys.stdout, action: str = "ls") -> int:
    values = sourced("cache", values).values
    home = Path(env.get("HOME") or Path.home())
    root = expand_home(str(defaults.default_cache_dir({**env, "HOME": str(home)})), home)
    days = older_than(values.get("older_than"))
    if action == "ls":
        if values.get("keep_logs") or values.get("dry_run"):
            flag = "--keep-logs" if values.get("keep_logs") else "--dry-run"
            raise ConfigError(f"{flag} is a flag of `cache clean`: `cache ls` only lists")
        return _ls(root, days, values.get("docker_host") or None, env, out)
    if values.get("docker_host"):
        raise ConfigError("--docker-host is a flag of `cache ls`: `cache clean` leaves the engine's build cache "
                          f"alone (free it with `{PRUNE}`)")
    return _clean(root, days, bool(values.get("keep_logs")), bool(values.get("dry_run")), out)


def older_than(value: Any) -> Optional[float]:
    """--older-than DAYS as a number of days; None when not given. Raises ConfigError."""
    if value is None or value == "":
        return None
    try:
        days = float(str(value).strip())
    except ValueError:
        days = -1.0
    if not days >= 0 or days != days:
        raise ConfigError(f"--older-than {value!r} is not a number of days: give e.g. --older-than 30")
    return days


def _chosen(items, days: Optional[float], now: float) -> List[cachedir.Item]:
    return [i for i in items if days is None or i.age_days(now) > days]


def _ls(root, days, docker_host, env, out: TextIO) -> int:
    now = time.time()
    items = _chosen(cachedir.inventory(root), days, now)
    since = f", last used more than {_days(days)} ago" if days is not None else ""
    out.write(f"cache {root}{since}\n")
    for kind, what in cachedir.KINDS.items():
        mine = [i for i in items if i.kind == kind]
        if not mine:
            continue
        count = f"{len(mine)} entr{'y' if len(mine) == 1 else 'ies'}"
        out.write(f"  {kind:<12} {count:>11}  {human_size(sum(i.size for i in mine)):>9}  {what}\n")
        if kind in _LISTED:
            for item in mine:
                busy = "  (in use)" if cachedir.in_use(item) else ""
                out.write(f"    {human_size(item.size):>9}  {_age(item, now):<15}  {_name(item)}{busy}\n")
    total = sum(i.size for i in items)
    out.write(f"total {human_size(total)} in {len(items)} entr{'y' if len(items) == 1 else 'ies'}; "
              f"`musa-docker cache clean` removes them\n" if items else "  (empty)\n")
    out.write(_mounts(docker_host, env, now))
    return 0


def _clean(root, days, keep_logs: bool, dry_run: bool, out: TextIO) -> int:
    if not root.exists():
        out.write(f"cache {root} does not exist: nothing to remove\n")
        return 0
    if not made_by_tool(root):
        raise ConfigError(f"{root} holds no CACHEDIR.TAG of musa-docker's: it was not made by this tool, so "
                          "nothing in it is removed; point MUSA_DOCKER_CACHE at the tool's cache dir")
    now = time.time()
    items = [i for i in _chosen(cachedir.inventory(root), days, now) if not (keep_logs and i.kind == "logs")]
    freed, gone, kept = 0, 0, 0
    for item in items:
        what = f"{item.kind} {_name(item)} ({human_size(item.size)}, {_age(item, now)})"
        if dry_run:
            busy = cachedir.in_use(item)
            out.write(f"{'in use, would keep' if busy else 'would remove'} {what}\n")
            kept += busy
            freed += 0 if busy else item.size
            gone += not busy
            continue
        if cachedir.remove(item):
            out.write(f"removed {what}\n")
            freed, gone = freed + item.size, gone + 1
        else:
            out.write(f"kept {what}: a running build holds it\n")
            kept += 1
    verb = "would free" if dry_run else "freed"
    tail = f"; {kept} in use, kept" if kept else ""
    out.write(f"{verb} {human_size(freed)} ({gone} entr{'y' if gone == 1 else 'ies'}){tail}\n")
    out.write(f"the engine's BuildKit cache mounts (the compile cache) are not in {root}: `{PRUNE}` frees them\n")
    return 0


def _mounts(docker_host, env, now: float) -> str:
    """The engine's BuildKit cache mounts, or one line saying why they cannot be listed."""
    from ..engine.api import Engine      # here: `cache` without an engine still lists the cache dir
    try:
        engine = Engine(docker_host, env)
        mounts = engine.cache_mounts()
    except MusaDockerError as err:
        return f"BuildKit cache mounts: not listed ({err})\n"
    if not mounts:
        return f"BuildKit cache mounts on {engine.host}: none\n"
    lines = [f"BuildKit cache mounts on {engine.host} (the compile cache; in the engine, not in the cache dir):"]
    for m in mounts:
        used = _parse_time(m.get("LastUsedAt"))
        age = _ago(now - used) if used else "never used"
        busy = "  (in use)" if m.get("InUse") else ""
        lines.append(f"    {human_size(m.get('Size') or 0):>9}  {age:<15}  {_mount(m)}{busy}")
    lines.append(f"  free them with: {PRUNE}")
    return "\n".join(lines) + "\n"


def _mount(m: dict) -> str:
    """`cached mount /root/.ccache from exec /bin/sh -c … build_torch_musa.sh …` as
    `/root/.ccache (build_torch_musa.sh)`: the path, and the script of the step that used it."""
    text = m.get("Description") or m.get("ID") or "?"
    path, _, command = text.removeprefix("cached mount ").partition(" from exec ")
    script = next((w.rsplit("/", 1)[-1] for w in command.split() if w.endswith(".sh")), "")
    return f"{path} ({script})" if script else path


def _name(item: cachedir.Item) -> str:
    """What an entry is, for people: a download by its file's name, the rest by their own."""
    if item.kind == "downloads":
        names = [p.name for p in item.path.iterdir() if p.is_file() and not p.name.startswith(".")
                 and not p.name.endswith((".part", ".part.json", ".sha256"))] if item.path.exists() else []
        return f"{names[0] if names else '(partial)'} (downloads/{item.path.name[:12]}…)"
    return item.path.name


def _age(item: cachedir.Item, now: float) -> str:
    return _ago(now - item.used)


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def _days(days: float) -> str:
    return f"{days:g} day{'s' if days != 1 else ''}"


def _parse_time(text: Optional[str]) -> Optional[float]:
    """The engine's RFC 3339 time (`2026-12-07T23:44:02.123456789Z`) as seconds since the epoch."""
    if not text:
        return None
    try:
        return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
