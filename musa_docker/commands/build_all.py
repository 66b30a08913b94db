"""build-all: a YAML file lists the images to build; they are built in dependency order (a dev
image after the base it names), independent ones at once with --jobs, and one failure stops
only what depends on it.

    defaults:                # flags for every entry (any build flag)
      tag: "2026.11"
    images:
      - name: base-py310     # optional; unique
        task: build-base     # build-base | build-dev | release
        python_version: "3.10"
      - task: build-dev
        base_img: musa-pytorch-base:2026.11     # another entry's image: built first
        musa_url: https://…/musa_toolkits.tar.gz
        docker_host: tcp://gpu-builder:2376     # an entry may name its engine (a base from another
                                                # engine comes through a registry: push: true)
"""

from __future__ import annotations

import graphlib
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, TextIO, Tuple

import yaml

from ..options import flags
from ..options.cascade import Sourced, sourced
from ..values import platforms, validate, yamlfile
from ..defaults import default
from ..errors import ConfigError, MusaDockerError
from ..util import expand_home, human_size, short_id
from ..values.refs import image_refs, split_reference
from . import run as run_task
from .build import preflight, resolve

TOP_KEYS = ("defaults", "images")
ENTRY_KEYS = ("name", "task")


@dataclass(frozen=True)
class Entry:
    name: str
    task: str                     # build-base | build-dev | release
    values: Dict[str, Any]        # flag name -> value, defaults: applied
    line: int                     # where it starts in the file, 1-based
    ref: str                      # the image it makes, name:tag
    after: Tuple[str, ...] = ()   # entries it needs built first

    @property
    def base(self) -> Optional[str]:
        return self.values.get("base_img") if self.task == "build-dev" else None


class Status(str, Enum):
    BUILT = "built"
    UP_TO_DATE = "up to date"
    FAILED = "failed"
    SKIPPED = "skipped"           # an entry it needs did not build

    @property
    def failed(self) -> bool:
        return self in (Status.FAILED, Status.SKIPPED)


@dataclass
class Outcome:
    entry: Entry
    status: Status
    detail: str = ""
    image_id: str = ""
    size: int = 0
    seconds: float = 0.0


def _allowed(task: str) -> Dict[str, str]:
    """A task's keys (python_version) and their dashed spellings (python-version)."""
    names = {row[0] for row in flags.BUILDS[task]} - {"dry_run"}
    return {**{n: n for n in names}, **{n.replace("_", "-"): n for n in names}}


def _mapping(node, path: Path, what: str) -> Dict[str, Tuple[Any, int]]:
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path}:{node.start_mark.line + 1}: {what} must be a mapping of key: value")
    out = {}
    for key_node, value_node in node.value:
        out[str(key_node.value)] = (yaml.safe_load(yaml.serialize(value_node)), key_node.start_mark.line + 1)
    return out


def load(path: Path, docker_host: Optional[str] = None) -> List[Entry]:
    """Read and check the matrix file; `docker_host` is the engine of the entries that name none.
    Raises ConfigError naming the file, line and key."""
    root = yamlfile.compose(path, "-c", str(path))
    if root is None:
        raise ConfigError(f"{path} is empty: list the images under `images:` (see docs/tasks.md, build-all)")
    top = _mapping(root, path, "the file")
    for key, (_, line) in top.items():
        if key not in TOP_KEYS:
            raise ConfigError(f"{path}:{line}: unknown key {key!r}; the file has {' and '.join(TOP_KEYS)}")
    common = {}
    if "defaults" in top:
        node = next(v for k, v in root.value if k.value == "defaults")
        rows = {row[0]: row for task in flags.BUILDS for row in flags.BUILDS[task]}
        for key, (value, line) in _mapping(node, path, "defaults").items():
            known = {**_allowed("build-base"), **_allowed("build-dev"), **_allowed("release")}
            if key not in known:
                raise ConfigError(f"{path}:{line}: unknown key {key!r} in defaults: not a flag of any build task")
            common[known[key]] = _checked(rows[known[key]], value, f"{path}:{line}: defaults")
    images = next((v for k, v in root.value if k.value == "images"), None)
    if not isinstance(images, yaml.SequenceNode) or not images.value:
        raise ConfigError(f"{path}: `images:` must list at least one image (see docs/tasks.md, build-all)")
    entries, names, refs = [], set(), {}
    for index, node in enumerate(images.value):
        fields = _mapping(node, path, f"images[{index}]")
        line = node.start_mark.line + 1
        task = fields.get("task", (None, line))[0]
        if task not in flags.BUILDS:
            raise ConfigError(f"{path}:{fields.get('task', (None, line))[1]}: images[{index}] has task {task!r}; "
                              f"choose one of {', '.join(flags.BUILDS)}")
        allowed = _allowed(task)
        values = {k: v for k, v in common.items() if k in allowed.values()}
        for key, (value, key_line) in fields.items():
            if key in ENTRY_KEYS:
                continue
            if key not in allowed:
                raise ConfigError(
                    f"{path}:{key_line}: unknown key {key!r} in images[{index}] ({task}); "
                    f"its keys are {', '.join(sorted(set(allowed.values())))}"
                )
            row = next(r for r in flags.BUILDS[task] if r[0] == allowed[key])
            values[allowed[key]] = _checked(row, value, f"{path}:{key_line}: images[{index}] ({task})")
        section = task.replace("-", "_")
        try:
            ref = str(image_refs(values.get("image"), values.get("tag"), default(section, "image"), default("", "tag"))[0])
        except ConfigError:
            # told with the entry's name when its values are checked, before anything is built
            tags = values.get("tag") or [default("", "tag")]
            ref = f"{values.get('image') or default(section, 'image')}:{tags[0] if isinstance(tags, list) else tags}"
        name = str(fields.get("name", (None, line))[0] or ref)
        if ref in refs and values.get("docker_host") == refs[ref][0]:
            if str(values.get("platform") or "") != refs[ref][1]:
                raise ConfigError(f"{path}:{line}: {ref} is listed for two platforms on the same engine, which keeps "
                                  "one image per tag: give each platform its own tag (e.g. tag: 2.11-arm64)")
            raise ConfigError(f"{path}:{line}: {ref} is listed twice for the same engine")
        if name in names:
            raise ConfigError(f"{path}:{line}: two images are named {name!r}: give each a unique name")
        names.add(name)
        refs[ref] = (values.get("docker_host"), str(values.get("platform") or ""))
        entries.append(Entry(name, task, values, line, ref))
    return _link(entries, path, docker_host)


def _checked(row, value, where: str):
    try:
        return flags.checked(row, value, "this file")
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _link(entries: List[Entry], path: Path, docker_host: Optional[str] = None) -> List[Entry]:
    """Each dev entry after the entry that makes its base; ordered; cycles refused; a base built on
    another engine must travel through a registry. `docker_host` is the engine of an entry that
    names none."""
    by_ref = {e.ref: e.name for e in entries}
    makers = {e.ref: e for e in entries}
    for e in entries:
        maker = makers.get(e.base) if e.base else None
        if maker is not None:
            _crosses(e, maker, path, docker_host)
            if _platform(e) and _platform(maker) and _platform(e) != _platform(maker):
                raise ConfigError(f"{path}:{e.line}: {e.name} is for {e.values['platform']}, but its base {maker.name} "
                                  f"({path}:{maker.line}) is for {maker.values['platform']}: give both one platform")
    linked = [
        Entry(e.name, e.task, e.values, e.line, e.ref, (by_ref[e.base],) if e.base in by_ref else ())
        for e in entries
    ]
    try:
        graphlib.TopologicalSorter({e.name: e.after for e in linked}).prepare()
    except graphlib.CycleError as err:
        cycle = " -> ".join(err.args[1])
        raise ConfigError(f"{path}: the images depend on each other in a cycle: {cycle}") from None
    # The file's order wherever the dependencies allow it: what a reader of the file expects.
    ordered, done = [], set()
    while len(ordered) < len(linked):
        entry = next(e for e in linked if e.name not in done and set(e.after) <= done)
        ordered.append(entry)
        done.add(entry.name)
    return ordered


def _platform(entry: Entry) -> Optional[str]:
    """The platform an entry names, None when it names none (the engine's) or a bad one (told when its
    values are checked, with the entry's name)."""
    try:
        return platforms.parse(entry.values["platform"]).name if entry.values.get("platform") else None
    except ConfigError:
        return None


def _crosses(entry: Entry, maker: Entry, path: Path, docker_host: Optional[str]) -> None:
    """A base made on one engine reaches a dev build on another only through a registry both reach:
    the base's reference names that registry and the base entry pushes it (`push: true`); the dev
    build's engine then pulls it. Raises ConfigError naming both entries and what to change."""
    here = entry.values.get("docker_host") or docker_host
    there = maker.values.get("docker_host") or docker_host
    if here == there:
        return
    registry = split_reference(maker.ref)[0]
    if registry and maker.values.get("push"):
        return
    where = lambda host: host or "the local engine"   # noqa: E731
    fix = (f"add push: true to {maker.name!r}" if registry else
           f"name {maker.name!r}'s image by a registry both engines reach (image: registry.example.com:5000/"
           f"{maker.ref.rsplit(':', 1)[0].split('/')[-1]}) with push: true")
    raise ConfigError(
        f"{path}:{entry.line}: {entry.name!r} builds on {where(here)} from {maker.ref}, which {maker.name!r} builds "
        f"on {where(there)}: an image reaches another engine only through a registry; {fix}, or build both "
        "on one engine")


def render(entries: List[Entry]) -> str:
    lines = ["build-all plan (dependency order):"]
    for i, e in enumerate(entries, 1):
        after = f"after {', '.join(e.after)}" if e.after else (
            f"base {e.base} must exist on the engine" if e.base else "independent")
        engine = f" on {e.values['docker_host']}" if e.values.get("docker_host") else ""
        lines.append(f"  {i}. {e.name:<24} {e.task:<10} -> {e.ref}{engine}  ({after})")
        for key, value in sorted(e.values.items()):
            if key not in ("image", "tag"):
                lines.append(f"       {key.replace('_', '-')}: {_shown(key, value)}")
    return "\n".join(lines)


def _shown(key: str, value) -> str:
    from ..values.locations import redact
    return str(value).lower() if isinstance(value, bool) else redact(str(value))


class Prefixed:
    """A text stream that prefixes each line with an entry's name; whole lines, one writer at a time."""

    lock = threading.Lock()

    def __init__(self, out, prefix: str):
        self.out, self.prefix, self.partial = out, prefix, ""

    def write(self, text: str) -> int:
        self.partial += text
        *lines, self.partial = self.partial.split("\n")
        if lines:
            with self.lock:
                for line in lines:
                    self.out.write(f"[{self.prefix}] {line}\n")
                self.out.flush()
        return len(text)

    def flush(self) -> None:
        pass


def run(entries: List[Entry], build: Callable[[Entry, Any, bool], Any], jobs: int, out) -> List[Outcome]:
    """Build `entries` (ordered), at most `jobs` at once; a failure skips only its dependents."""
    outcomes: Dict[str, Outcome] = {}
    pending = list(entries)
    running = {}
    echo = jobs == 1

    def one(entry: Entry) -> Outcome:
        started = time.monotonic()
        try:
            report = build(entry, Prefixed(out, entry.name), echo)
        except MusaDockerError as err:
            return Outcome(entry, Status.FAILED, str(err).splitlines()[0], seconds=time.monotonic() - started)
        return Outcome(entry, Status.UP_TO_DATE if report.skipped else Status.BUILT, "", report.image_id,
                       report.size, time.monotonic() - started)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while pending or running:
            for entry in list(pending):
                deps = [outcomes.get(d) for d in entry.after]
                if any(d is None for d in deps):
                    continue
                pending.remove(entry)
                failed = [d.entry.name for d in deps if d.status.failed]
                if failed:
                    outcomes[entry.name] = Outcome(entry, Status.SKIPPED, f"{', '.join(failed)} did not build")
                    continue
                if len(running) < max(1, jobs):
                    running[pool.submit(one, entry)] = entry
                else:
                    pending.insert(0, entry)
                    break
            if running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    outcome = future.result()
                    outcomes[running.pop(future).name] = outcome
    return [outcomes[e.name] for e in entries]


def summary(outcomes: List[Outcome]) -> str:
    rows = [("image", "tag", "id", "size", "time", "status")]
    for o in outcomes:
        name, _, tag = o.entry.ref.rpartition(":")
        rows.append((name, tag, short_id(o.image_id) or "-", human_size(o.size, "GB") if o.size else "-",
                     f"{o.seconds:.0f}s", o.status.value + (f": {o.detail}" if o.detail else "")))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5] for r in rows)


def build_all(values, env: Mapping[str, str], out: TextIO = sys.stdout) -> int:
    """Build every image of a matrix file in dependency order; print a summary table."""
    values = sourced("build-all", values).values
    if not values.get("config"):
        raise ConfigError("-c/--config FILE is required: the YAML file that lists the images (see docs/tasks.md, build-all)")
    try:
        jobs = int(values.get("jobs") or 1)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise ConfigError(f"--jobs {values.get('jobs')!r} is not a positive whole number")
    path = expand_home(validate.path(values["config"], "-c/--config"), env.get("HOME"))
    entries = load(path, values.get("docker_host") or None)
    invalid = {}
    for entry in entries:
        # Every entry's values checked before anything is built: a bad one is named with its line
        # on stderr (a dry run stops there); it fails and only what depends on it is skipped.
        try:
            _, options = resolve(entry.task, _sourced(entry, path, values), env)
            if values.get("dry_run"):
                preflight(options)
        except MusaDockerError as err:
            where = f"{path}:{entry.line}: {entry.name} ({entry.task}): {err}"
            if values.get("dry_run"):
                raise ConfigError(where) from err
            sys.stderr.write(f"error: {where}\n")
            invalid[entry.name] = err
    if values.get("dry_run"):
        out.write(render(entries) + "\n")
        return 0
    from ..engine.api import Engine
    engines = {}
    for entry in entries:
        host = entry.values.get("docker_host") or values.get("docker_host")
        if entry.base and not entry.after:
            engine = engines.get(host) or engines.setdefault(host, Engine(host, env))
            if engine.image(entry.base) is None:
                raise ConfigError(
                    f"{path}:{entry.line}: {entry.name} needs base {entry.base}, which is neither listed in "
                    f"the file nor present on {engine.host}: add a build-base entry for it, or build it first"
                )
    def build(entry, entry_out, echo):
        if entry.name in invalid:
            raise invalid[entry.name]
        return run_task(entry.task, _sourced(entry, path, values), env, out=entry_out, echo=echo)

    outcomes = run(entries, build, jobs, out)
    out.write(summary(outcomes) + "\n")
    return 1 if any(o.status.failed for o in outcomes) else 0


def _sourced(entry: Entry, path: Path, values: Mapping[str, Any]) -> Sourced:
    """An entry's values, each from its line of the file; build-all's own --docker-host, --lock and
    --offline for an entry that names none."""
    given = dict(entry.values)
    for key in ("docker_host", "lock", "offline"):
        if values.get(key) and not given.get(key):
            given[key] = values[key]
    return Sourced.of(entry.task, given, source=f"{path}:{entry.line}")
