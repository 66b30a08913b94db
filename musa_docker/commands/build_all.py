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

A pool of engines instead: each ready entry goes to a free engine that has the labels it asks for,
preferring the engine its base was built on; a base that must reach another engine is pushed to
the file's registry after its check and pulled there by digest; an engine that does not answer
before a build starts is marked down and its entries go elsewhere.

    registry: registry.example.com:5000     # where bases travel between engines
    engines:
      - {name: a, docker_host: "unix:///var/run/docker.sock", jobs: 2, labels: {arch: mp_31, gpu: true}}
      - {name: b, docker_host: "tcp://builder-b:2376", labels: {arch: mp_31}}
    images:
      - {task: build-base, labels: {arch: mp_31}}
      - {task: build-dev, base_img: "musa-pytorch-base:latest", labels: {gpu: true}, …}
"""

from __future__ import annotations

import graphlib
import re
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
from ..errors import ConfigError, DiskError, MusaDockerError
from ..util import expand_home, human_size, short_id, write_atomic
from ..values.refs import image_refs, split_reference
from . import run as run_task
from .build import preflight, resolve

TOP_KEYS = ("defaults", "images", "engines", "registry")
ENTRY_KEYS = ("name", "task", "labels")
ENGINE_KEYS = ("name", "docker_host", "jobs", "labels")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class PoolEngine:
    """One engine of the pool: where it is, how many builds it runs at once, what it has."""

    name: str
    docker_host: str
    jobs: int = 1
    labels: Tuple[Tuple[str, str], ...] = ()

    def has(self, wanted: Tuple[Tuple[str, str], ...]) -> bool:
        return set(wanted) <= set(self.labels)


class Unplaceable(ConfigError):
    """No engine of the pool can build an entry."""


@dataclass(frozen=True)
class Entry:
    name: str
    task: str                     # build-base | build-dev | release
    values: Dict[str, Any]        # flag name -> value, defaults: applied
    line: int                     # where it starts in the file, 1-based
    ref: str                      # the image it makes, name:tag
    after: Tuple[str, ...] = ()   # entries it needs built first
    labels: Tuple[Tuple[str, str], ...] = ()   # what an engine of the pool must have to build it

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
    engine: str = ""              # the pool engine's name, else its address ("" for the default one)
    compile_cache: str = ""       # the image's musa_docker.compile_cache label, when it has one


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


@dataclass(frozen=True)
class Matrix:
    entries: List[Entry]
    engines: Tuple[PoolEngine, ...] = ()      # the pool; none: each entry on its own engine
    registry: Optional[str] = None            # where a base travels between engines of the pool


def load(path: Path, docker_host: Optional[str] = None) -> List[Entry]:
    """The entries of the matrix file, in order (see load_matrix)."""
    return load_matrix(path, docker_host).entries


def _labels(value, where: str) -> Tuple[Tuple[str, str], ...]:
    """`labels:` as sorted (key, value) pairs; values compared as text (true, not True)."""
    if value is None:
        return ()
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"{where}: labels must be a mapping of key: value, e.g. labels: {{arch: mp_31, gpu: true}}")
    out = []
    for key, item in value.items():
        if not isinstance(key, str) or not _NAME.match(key) or isinstance(item, (dict, list)) or item is None:
            raise ConfigError(f"{where}: label {key!r}: {item!r} must be a name and a plain value, e.g. arch: mp_31")
        out.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return tuple(sorted(out))


def _engines(node, path: Path) -> Tuple[PoolEngine, ...]:
    if not isinstance(node, yaml.SequenceNode) or not node.value:
        raise ConfigError(f"{path}:{node.start_mark.line + 1}: `engines:` must list at least one engine "
                          "(name, docker_host, jobs, labels)")
    pool, names, hosts = [], set(), set()
    for index, item in enumerate(node.value):
        fields = _mapping(item, path, f"engines[{index}]")
        line = item.start_mark.line + 1
        for key, (_, key_line) in fields.items():
            if key not in ENGINE_KEYS:
                raise ConfigError(f"{path}:{key_line}: unknown key {key!r} in engines[{index}]; an engine has "
                                  f"{', '.join(ENGINE_KEYS)}")
        name = fields.get("name", (None, line))[0]
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{path}:{line}: engines[{index}] needs a name: letters, digits, '_', '.', '-'")
        if name in names:
            raise ConfigError(f"{path}:{line}: two engines are named {name!r}: give each a unique name")
        host, host_line = fields.get("docker_host", (None, line))
        if not host:
            raise ConfigError(f"{path}:{line}: engine {name!r} needs docker_host: the engine's address, e.g. "
                              "unix:///var/run/docker.sock or tcp://builder:2376")
        try:
            host = validate.docker_host(str(host), "docker_host")
        except ConfigError as err:
            raise ConfigError(f"{path}:{host_line}: engine {name!r}: {err}") from None
        if host in hosts:
            raise ConfigError(f"{path}:{host_line}: engine {name!r}: {host} is in the pool twice")
        jobs, jobs_line = fields.get("jobs", (1, line))
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ConfigError(f"{path}:{jobs_line}: engine {name!r}: jobs {jobs!r} is not a positive whole number")
        labels, labels_line = fields.get("labels", (None, line))
        names.add(name)
        hosts.add(host)
        pool.append(PoolEngine(name, host, jobs, _labels(labels, f"{path}:{labels_line}: engine {name!r}")))
    return tuple(pool)


def load_matrix(path: Path, docker_host: Optional[str] = None) -> Matrix:
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
        labels, labels_line = fields.get("labels", (None, line))
        entries.append(Entry(name, task, values, line, ref,
                             labels=_labels(labels, f"{path}:{labels_line}: images[{index}] ({name})")))
    engines = _engines(next(v for k, v in root.value if k.value == "engines"), path) if "engines" in top else ()
    registry = None
    if "registry" in top:
        value, line = top["registry"]
        if not engines:
            raise ConfigError(f"{path}:{line}: registry: hands bases between the engines of a pool; list them "
                              "under engines:")
        from .push import _registry
        try:
            registry = _registry(str(value or ""))
        except ConfigError as err:
            raise ConfigError(f"{path}:{line}: registry: {err}") from None
    if not engines:
        for e in entries:
            if e.labels:
                raise ConfigError(f"{path}:{e.line}: {e.name!r} asks for labels {_shown_labels(e.labels)}, and the "
                                  "file lists no engines: add a pool under engines: (name, docker_host, jobs, labels)")
        return Matrix(_link(entries, path, docker_host))
    for e in entries:
        host = e.values.get("docker_host")
        if host and host not in {p.docker_host for p in engines}:
            raise ConfigError(f"{path}:{e.line}: {e.name!r} names docker_host {host}, which is not an engine of the "
                              "pool: name one of its engines' docker_host, or ask for labels instead")
    return Matrix(_link(entries, path, docker_host, pooled=True), engines, registry)


def _shown_labels(labels) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels) or "none"


def _checked(row, value, where: str):
    try:
        return flags.checked(row, value, "this file")
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _link(entries: List[Entry], path: Path, docker_host: Optional[str] = None, pooled: bool = False) -> List[Entry]:
    """Each dev entry after the entry that makes its base; ordered; cycles refused; a base built on
    another engine must travel through a registry (in a pool, placement decides: see `place`).
    `docker_host` is the engine of an entry that names none."""
    by_ref = {e.ref: e.name for e in entries}
    makers = {e.ref: e for e in entries}
    for e in entries:
        maker = makers.get(e.base) if e.base else None
        if maker is not None and not pooled:
            _crosses(e, maker, path, docker_host)
            if _platform(e) and _platform(maker) and _platform(e) != _platform(maker):
                raise ConfigError(f"{path}:{e.line}: {e.name} is for {e.values['platform']}, but its base {maker.name} "
                                  f"({path}:{maker.line}) is for {maker.values['platform']}: give both one platform")
    linked = [
        Entry(e.name, e.task, e.values, e.line, e.ref, (by_ref[e.base],) if e.base in by_ref else (), e.labels)
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


# --- a pool of engines -------------------------------------------------------------------------------

def needs(matrix: Matrix) -> Dict[str, Tuple[Tuple[str, str], ...]]:
    """What an engine must have to build each entry: its labels (and the engine it names). Without
    a registry a base and what is built on it share one engine, so a base needs its dependents'
    labels too."""
    own = {e.name: set(e.labels) | ({("docker_host", e.values["docker_host"])} if e.values.get("docker_host") else set())
           for e in matrix.entries}
    if matrix.registry is None:
        for e in reversed(matrix.entries):        # dependents come after their bases
            for base in e.after:
                own[base] |= own[e.name]
    return {name: tuple(sorted(wanted)) for name, wanted in own.items()}


def place(entry: Entry, matrix: Matrix, wanted, up, busy: Mapping[str, int],
          built_on: Mapping[str, str]) -> Optional[PoolEngine]:
    """The engine `entry` starts on now: one that is up, has what it needs and a free slot, the
    engine its base was built on first (no registry: only that one), then the least busy, then the
    file's order. None: every such engine is busy (wait). Raises Unplaceable when none can ever."""
    def has(p: PoolEngine) -> bool:
        return set(wanted) <= set(p.labels) | {("docker_host", p.docker_host)}
    fits = [p for p in matrix.engines if has(p)]
    what = _shown_labels(wanted)
    if not fits:
        raise Unplaceable(f"no engine of the pool has {what}" + ("" if matrix.registry or not entry.after and
                          set(wanted) == set(entry.labels) else " (a base and what is built on it share an "
                          "engine when the file names no registry)"))
    live = [p for p in fits if p.name in up]
    if not live:
        raise Unplaceable(f"every engine that has {what} is down: {', '.join(p.name for p in fits)}")
    base_on = next((built_on[b] for b in entry.after if b in built_on), None)
    if base_on is not None and matrix.registry is None:
        live = [p for p in live if p.name == base_on]
        if not live:
            raise Unplaceable(f"its base was built on {base_on}, which is down, and the file names no registry to "
                              "bring it to another engine: add registry: HOST[:PORT]")
    free = [p for p in live if busy.get(p.name, 0) < p.jobs]
    if not free:
        return None
    order = {p.name: i for i, p in enumerate(matrix.engines)}
    return min(free, key=lambda p: (p.name != base_on, busy.get(p.name, 0) / p.jobs, order[p.name]))


def placement(matrix: Matrix, jobs: int, path: Path) -> Dict[str, str]:
    """Where each entry would be built with every engine up and every build taking as long: what
    --dry-run shows. Raises ConfigError (file and line) for an entry no engine can build."""
    wanted, up = needs(matrix), {p.name for p in matrix.engines}
    built_on: Dict[str, str] = {}
    pending = list(matrix.entries)
    while pending:
        busy: Dict[str, int] = {}
        started = []
        for entry in list(pending):
            if not set(entry.after) <= set(built_on) - set(started) or len(started) >= jobs:
                continue
            try:
                engine = place(entry, matrix, wanted[entry.name], up, busy, built_on)
            except Unplaceable as err:
                raise ConfigError(f"{path}:{entry.line}: {entry.name!r}: {err}") from None
            if engine is not None:
                busy[engine.name] = busy.get(engine.name, 0) + 1
                built_on[entry.name] = engine.name
                started.append(entry.name)
                pending.remove(entry)
        if not started:
            raise ConfigError(f"{path}: no engine of the pool can take {pending[0].name!r}")
    return built_on


def render(entries: List[Entry], matrix: Optional[Matrix] = None, placed: Optional[Mapping[str, str]] = None) -> str:
    lines = ["build-all plan (dependency order):"]
    if matrix is not None and matrix.engines:
        lines[0] = "build-all plan (dependency order, placed on a pool of engines):"
        for p in matrix.engines:
            lines.append(f"  engine {p.name:<12} {p.docker_host}  jobs {p.jobs}  labels {_shown_labels(p.labels)}")
        lines.append(f"  registry {matrix.registry}: a base built on one engine is pushed there after its check, "
                     "and pulled by digest where its dependents are built" if matrix.registry else
                     "  no registry: a base and what is built on it share one engine")
    placed = placed or {}
    for i, e in enumerate(entries, 1):
        after = f"after {', '.join(e.after)}" if e.after else (
            f"base {e.base} must exist on the engine" if e.base else "independent")
        if e.name in placed:
            crossing = [b for b in e.after if placed.get(b) != placed[e.name]]
            engine = f" on {placed[e.name]}" + (f" (wants {_shown_labels(e.labels)})" if e.labels else "")
            if crossing:
                after += f"; its base through {matrix.registry}"
        else:
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

    def write_line(self, line: str) -> None:
        self.write(line + "\n")


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
                       report.size, time.monotonic() - started,
                       compile_cache=(report.labels or {}).get("musa_docker.compile_cache", ""))

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


def run_pool(matrix: Matrix, build: Callable[[Entry, PoolEngine, Any, bool], Any], jobs: int, out,
             reach: Callable[[PoolEngine], bool], say: Callable[[str], None]) -> List[Outcome]:
    """Build the matrix's entries on its pool: each ready entry on the engine `place` picks, at
    most `jobs` at once in all; an engine that `reach` finds down before a build starts is marked
    down and the entry placed again; a failure skips only its dependents (never retried)."""
    entries, wanted = matrix.entries, needs(matrix)
    outcomes: Dict[str, Outcome] = {}
    pending, running = list(entries), {}
    up, busy, built_on = {p.name for p in matrix.engines}, {p.name: 0 for p in matrix.engines}, {}
    echo = jobs == 1

    def one(entry: Entry, engine: PoolEngine) -> Outcome:
        started = time.monotonic()
        try:
            report = build(entry, engine, Prefixed(out, entry.name), echo)
        except MusaDockerError as err:
            return Outcome(entry, Status.FAILED, str(err).splitlines()[0], seconds=time.monotonic() - started,
                           engine=engine.name)
        return Outcome(entry, Status.UP_TO_DATE if report.skipped else Status.BUILT, "", report.image_id,
                       report.size, time.monotonic() - started, engine.name,
                       (report.labels or {}).get("musa_docker.compile_cache", ""))

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, sum(p.jobs for p in matrix.engines)))) as pool:
        while pending or running:
            for entry in list(pending):
                deps = [outcomes.get(d) for d in entry.after]
                if any(d is None for d in deps):
                    continue
                failed = [d.entry.name for d in deps if d.status.failed]
                if failed:
                    pending.remove(entry)
                    outcomes[entry.name] = Outcome(entry, Status.SKIPPED, f"{', '.join(failed)} did not build")
                    continue
                while len(running) < jobs:
                    try:
                        engine = place(entry, matrix, wanted[entry.name], up, busy, built_on)
                    except Unplaceable as err:
                        pending.remove(entry)
                        outcomes[entry.name] = Outcome(entry, Status.FAILED, str(err))
                        break
                    if engine is None:
                        break                 # its engines are busy: it waits for a slot
                    if not reach(engine):
                        up.discard(engine.name)
                        say(f"engine {engine.name} ({engine.docker_host}) does not answer: marked down, its entries "
                            "go to the other engines")
                        continue
                    pending.remove(entry)
                    busy[engine.name] += 1
                    built_on[entry.name] = engine.name
                    running[pool.submit(one, entry, engine)] = (entry, engine)
                    break
            if running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    entry, engine = running.pop(future)
                    busy[engine.name] -= 1
                    outcomes[entry.name] = future.result()
            elif pending:       # nothing runs and nothing can start: cannot happen, but never spin
                for entry in pending:
                    outcomes[entry.name] = Outcome(entry, Status.FAILED, "no engine could take it")
                pending.clear()
    return [outcomes[e.name] for e in entries]


def summary(outcomes: List[Outcome]) -> str:
    pooled = any(o.engine for o in outcomes)
    cached = any(o.compile_cache for o in outcomes)
    rows = [("image", "tag", "id", "size", "time") + (("engine",) if pooled else ()) +
            (("compile cache",) if cached else ()) + ("status",)]
    for o in outcomes:
        name, _, tag = o.entry.ref.rpartition(":")
        rows.append((name, tag, short_id(o.image_id) or "-", human_size(o.size, "GB") if o.size else "-",
                     f"{o.seconds:.0f}s") + ((o.engine or "-",) if pooled else ()) +
                    ((o.compile_cache or "-",) if cached else ()) +
                    (o.status.value + (f": {o.detail}" if o.detail else ""),))
    n = len(rows[0]) - 1
    widths = [max(len(r[i]) for r in rows) for i in range(n)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:n], widths)) + "  " + r[n] for r in rows)


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
    matrix = load_matrix(path, values.get("docker_host") or None)
    entries = matrix.entries
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
    placed = placement(matrix, jobs, path) if matrix.engines else None
    if values.get("dry_run"):
        out.write(render(entries, matrix, placed) + "\n")
        return 0
    if matrix.engines:
        return _build_pool(matrix, path, values, env, invalid, jobs, out)
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
    return _finish(outcomes, values, env, out)


def _finish(outcomes: List[Outcome], values, env, out) -> int:
    """The summary table, and with --metadata-file the same as JSON; the exit code."""
    out.write(summary(outcomes) + "\n")
    if values.get("metadata_file"):
        write_metadata(expand_home(validate.path(values["metadata_file"], "--metadata-file"), env.get("HOME")),
                       outcomes)
    return 1 if any(o.status.failed for o in outcomes) else 0


def write_metadata(path: Path, outcomes: List[Outcome]) -> None:
    """Each entry's result as JSON for CI, written whole or not at all (a temp file renamed into place)."""
    import json
    data = [{"name": o.entry.name, "task": o.entry.task, "image": o.entry.ref, "engine": o.engine or None,
             "result": o.status.value, "detail": o.detail or None, "image_id": o.image_id or None,
             "size": o.size or None, "seconds": round(o.seconds, 1), "compile_cache": o.compile_cache or None}
            for o in outcomes]
    try:
        write_atomic(path, json.dumps({"images": data}, indent=2) + "\n")
    except OSError as err:
        raise DiskError(f"--metadata-file {path} cannot be written ({err.strerror or err}): name a file in a "
                        "writable dir") from err


def _sourced(entry: Entry, path: Path, values: Mapping[str, Any], **override) -> Sourced:
    """An entry's values, each from its line of the file; build-all's own --docker-host, --lock and
    --offline for an entry that names none; `override` (the pool's engine, a base from the
    registry) last."""
    given = dict(entry.values)
    for key in ("docker_host", "lock", "offline"):
        if values.get(key) and not given.get(key):
            given[key] = values[key]
    given.update(override)
    return Sourced.of(entry.task, given, source=f"{path}:{entry.line}")


def _build_pool(matrix: Matrix, path: Path, values, env, invalid, jobs: int, out) -> int:
    """build-all over the file's pool: placement, the registry handoff of bases, the summary."""
    from ..engine.api import Engine
    from .push import PushOptions, run as push
    dependents = {b for e in matrix.entries for b in e.after}
    handoff: Dict[str, str] = {}          # base entry -> registry/name@digest
    built_on: Dict[str, str] = {}
    lock = threading.Lock()

    def say(line: str) -> None:
        with Prefixed.lock:
            out.write(line + "\n")
            out.flush()

    def reach(engine: PoolEngine) -> bool:
        try:
            Engine(engine.docker_host, env)
        except MusaDockerError:
            return False
        return True

    def build(entry: Entry, engine: PoolEngine, entry_out, echo):
        if entry.name in invalid:
            raise invalid[entry.name]
        override = {"docker_host": engine.docker_host}
        for base in entry.after:
            if built_on.get(base) != engine.name:
                override["base_img"] = handoff[base]
                entry_out.write(f"base {handoff[base]}: built on {built_on[base]}, pulled here through "
                                f"{matrix.registry}\n")
        with lock:
            built_on[entry.name] = engine.name
        report = run_task(entry.task, _sourced(entry, path, values, **override), env, out=entry_out, echo=echo)
        if matrix.registry and entry.name in dependents:
            # pushed after its check, so that a dependent placed on another engine pulls exactly it
            _, name, tag = split_reference(entry.ref)
            target = f"{matrix.registry}/{name}:{tag}"
            digest = push(Engine(engine.docker_host, env),
                          PushOptions(image=entry.ref, target=target, registry=matrix.registry, username=None,
                                      docker_host=engine.docker_host), entry_out.write_line, env)
            handoff[entry.name] = f"{matrix.registry}/{name}@{digest}"
            entry_out.write(f"pushed {target} digest {digest}: its dependents on other engines pull it\n")
        return report

    outcomes = run_pool(matrix, build, jobs, out, reach, say)
    return _finish(outcomes, values, env, out)
