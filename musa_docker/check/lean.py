"""Is the release image lean? It should hold what running torch_musa needs and nothing to build with.

The rules, one row each (RULES): no compiler, no headers, no static libraries, no `-dev` packages, no
apt lists, no pip cache, no archive left after its install step, and no file written in one layer and
deleted, replaced or chowned in a later one (the bytes stay in the lower layer). The first seven are
read by one shell probe inside the image; the last from the image's layers themselves (`docker save`,
streamed: the layer tars are read, never written to disk).

The base image's own layers are where the image starts: a file of theirs that the build rewrites (the
dpkg database, /etc/group) is not counted, since every image from that base shares those layers and
no build can avoid writing them. The files of the wheels a release installs (torch ships its headers
for C++ extensions) are the wheels' to decide: they are reported apart (`by_wheels`), and `enforce`,
which fails a release before it is tagged, holds the rest to the rules.

`measure` returns the findings; `render` says them per rule, with the bytes each costs.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

from ..engine.api import Engine
from ..errors import BuildError
from ..util import ChunkReader, human_size, short_id
from .size import step_of

# rule -> what it forbids, as a report says it
RULES: Dict[str, str] = {
    "compiler": "a compiler (gcc, g++, cc, c++, clang, mcc)",
    "header": "C/C++ headers (*.h, *.hpp, *.cuh, *.muh)",
    "static library": "static libraries (*.a)",
    "dev package": "-dev packages",
    "apt lists": "apt lists (/var/lib/apt/lists)",
    "pip cache": "a pip cache (~/.cache/pip)",
    "archive": "an archive left after its install step (*.whl, *.tar, *.tar.gz, *.tgz, *.deb, *.run)",
    "layer waste": "a file written in one layer and deleted, replaced or chowned in a later one",
}

# One line per finding: RULE<TAB>BYTES<TAB>WHAT. GNU find's -printf where there is one (Debian,
# Ubuntu); the probe needs only sh, find and dpkg-query when present.
PROBE = r"""
say() { printf '%s\t%s\t%s\n' "$1" "$2" "$3"; }
for p in $(for c in gcc g++ cc c++ clang mcc; do command -v "$c" 2>/dev/null; done) /usr/local/musa*/bin/mcc; do
    [ -x "$p" ] && say compiler "$(stat -Lc %s "$p" 2>/dev/null || echo 0)" "$(readlink -f "$p" 2>/dev/null || echo "$p")"
done | sort -u
files() { find / -xdev -type f \( "$@" \) -printf '%s\t%p\n' 2>/dev/null; }
files -name '*.h' -o -name '*.hpp' -o -name '*.cuh' -o -name '*.muh' | sed 's/^/header\t/'
files -name '*.a' | sed 's/^/static library\t/'
files -name '*.whl' -o -name '*.tar' -o -name '*.tar.gz' -o -name '*.tgz' -o -name '*.deb' -o -name '*.run' \
    | sed 's/^/archive\t/'
command -v dpkg-query >/dev/null 2>&1 && dpkg-query -W -f '${Package}\t${Installed-Size}\n' 2>/dev/null \
    | awk -F'\t' '$1 ~ /-dev(-|:|$)/ {printf "dev package\t%d\t%s\n", $2 * 1024, $1}'
for d in /var/lib/apt/lists; do
    [ -d "$d" ] && find "$d" -maxdepth 1 -type f ! -name lock -printf 'apt lists\t%s\t%p\n' 2>/dev/null
done
for d in /root/.cache/pip /home/*/.cache/pip; do
    [ -d "$d" ] && say "pip cache" "$(du -sb "$d" 2>/dev/null | cut -f1)" "$d"
done
true
"""


@dataclass(frozen=True)
class Finding:
    rule: str
    size: int             # bytes it costs (0 when not known)
    what: str             # a path, a package, or for layer waste the path and the two steps


def probe_findings(engine: Engine, image_id: str) -> List[Finding]:
    """The in-image rules, read by one shell probe. Raises EngineError."""
    _, output = engine.run(image_id, ["sh", "-c", PROBE])
    found = []
    for line in output.splitlines():
        rule, _, rest = line.partition("\t")
        size, _, what = rest.partition("\t")
        if rule in RULES and size.isdigit():
            found.append(Finding(rule, int(size), what))
    return found


def _layer_entries(layer: tarfile.TarFile) -> Iterator[Tuple[str, str, int]]:
    """(kind, path, size) of a layer tar's members: kind is `file`, `whiteout` (deleted) or
    `opaque` (a directory whose lower contents are hidden); directories are left out."""
    for member in layer:
        name = member.name[2:] if member.name.startswith("./") else member.name
        path = "/" + name.strip("/")
        base = posixpath.basename(path)
        if base == ".wh..wh..opq":
            yield "opaque", posixpath.dirname(path), 0
        elif base.startswith(".wh."):
            yield "whiteout", posixpath.join(posixpath.dirname(path), base[4:]), 0
        elif not member.isdir():
            yield "file", path, member.size


def layer_waste(stream: Iterable[bytes], steps: Optional[List[str]] = None, base_layers: int = 0) -> List[Finding]:
    """The files written in one layer and deleted, replaced or chowned in a later one, from a
    `docker save` stream. `steps` names each layer's step (else they are read from the image's
    config in the stream); the first `base_layers` layers are the base image's, whose files the
    build may rewrite."""
    layers: Dict[str, List[Tuple[str, str, int]]] = {}
    manifest, configs = None, {}
    with tarfile.open(fileobj=ChunkReader(stream), mode="r|") as outer:
        for member in outer:
            name = member.name
            if name.endswith("/layer.tar") or (name.startswith("blobs/") and member.isfile() and member.size > 0
                                               and not name.endswith(".json")):
                try:
                    with tarfile.open(fileobj=outer.extractfile(member), mode="r|") as layer:
                        layers[name] = list(_layer_entries(layer))
                except tarfile.ReadError:
                    pass          # a blob that is not a layer (an OCI index or config)
            elif name == "manifest.json":
                manifest = json.load(outer.extractfile(member))
            elif name.endswith(".json") and member.isfile():
                try:
                    configs[name] = json.load(outer.extractfile(member))
                except ValueError:
                    pass
    if not manifest:
        return []
    order = manifest[0].get("Layers") or []
    if steps is None:
        config = configs.get(manifest[0].get("Config", ""), {})
        steps = [step_of(h.get("created_by", "")) for h in config.get("history", []) if not h.get("empty_layer")]
    present: Dict[str, Tuple[int, int]] = {}          # path -> (layer index, size)
    waste: Dict[Tuple[int, int], List[Tuple[str, int]]] = defaultdict(list)

    def drop(index: int, path: str, under: bool) -> None:
        """A whiteout (or an opaque dir: `under` only) hides what lower layers wrote there."""
        prefix = path.rstrip("/") + "/"
        for p in [p for p, (i, _) in present.items() if i < index and (p.startswith(prefix) or (p == path and not under))]:
            written, size = present.pop(p)
            waste[(written, index)].append((p, size))

    for index, name in enumerate(order):
        for kind, path, size in layers.get(name, ()):
            if kind == "opaque":
                drop(index, path, under=True)
            elif kind == "whiteout":
                drop(index, path, under=False)
            else:
                if path in present and present[path][0] < index:
                    written, old = present[path]
                    waste[(written, index)].append((path, old))
                present[path] = (index, size)

    def step(i: int) -> str:
        return f"`{steps[i]}`" if steps and i < len(steps) else f"layer {i + 1}"

    out = []
    for (written, later), files in sorted(waste.items(), key=lambda kv: -sum(s for _, s in kv[1])):
        if written < base_layers:
            continue
        total = sum(s for _, s in files)
        biggest = ", ".join(p for p, _ in sorted(files, key=lambda f: -f[1])[:3])
        out.append(Finding("layer waste", total, f"{len(files)} files written by {step(written)}, deleted, replaced "
                                                 f"or chowned by {step(later)} ({biggest}{', …' if len(files) > 3 else ''})"))
    return out


def base_layers(engine: Engine, image_id: str, base: Optional[str]) -> int:
    """How many of the image's first layers are those of `base` (the image it was built FROM, as
    its musa_docker.base_image label names it); 0 when there is none or the engine lacks it."""
    if not base or engine.image(base) is None:
        return 0
    mine = (engine.inspect(image_id).get("RootFS") or {}).get("Layers") or []
    theirs = (engine.inspect(base).get("RootFS") or {}).get("Layers") or []
    count = 0
    for a, b in zip(mine, theirs):
        if a != b:
            break
        count += 1
    return count


def measure(engine: Engine, image_id: str, layers: bool = True) -> List[Finding]:
    """Every finding of the rules in the image; `layers` False skips reading the layers. The base
    image is read from the image's labels. Raises EngineError."""
    found = probe_findings(engine, image_id)
    if layers:
        image = engine.image(image_id)
        labels = image.labels if image else {}
        base = labels.get("musa_docker.base_image") or labels.get("musa_docker.system")
        found += layer_waste(engine.saved(image_id), base_layers=base_layers(engine, image_id, base))
    return found


# What a Python env brings of its own; every other distribution in site-packages came with a wheel
# the release installs (torch, torch_musa, --wheel, --musa-wheel) or one of their dependencies.
ENV_OWN = ("numpy", "pip", "setuptools", "wheel", "_distutils_hack", "pkg_resources")


def by_wheels(finding: Finding) -> bool:
    """Is the finding a file of an installed wheel's own (under site-packages, not the env's own)?"""
    _, marker, rest = finding.what.partition("/site-packages/")
    top = rest.split("/", 1)[0]
    return bool(marker) and finding.rule in ("header", "static library") and bool(top) \
        and top.split("-")[0].split(".")[0] not in ENV_OWN


def enforce(found: List[Finding], image_id: str, limit: int = 3) -> List[Finding]:
    """Raise BuildError when a finding not of the wheels' own breaks a rule, naming each rule broken and
    its largest offenders (the caller has not tagged the image); return the wheels' findings, to report."""
    theirs = [f for f in found if by_wheels(f)]
    breaks = [f for f in found if not by_wheels(f)]
    if breaks:
        rules: Dict[str, List[Finding]] = defaultdict(list)
        for f in breaks:
            rules[f.rule].append(f)
        said = "; ".join(
            f"{rule} ({len(items)}, {human_size(sum(f.size for f in items))}): "
            + ", ".join(f.what for f in sorted(items, key=lambda f: -f.size)[:limit])
            + (", …" if len(items) > limit else "")
            for rule, items in ((r, rules[r]) for r in RULES if r in rules))
        raise BuildError(
            f"the new image {short_id(image_id)} breaks the lean-release rules, so it was not tagged: {said}; "
            f"`musa-docker verify -i {short_id(image_id)} --lean` lists them all; the release installs only what "
            "running torch_musa needs, so something in its Dockerfile or scripts brought these")
    return theirs


def render(found: List[Finding], limit: int = 5) -> str:
    """The findings per rule: how many, the bytes, the largest few; `lean: ...` first."""
    if not found:
        return "lean: none of the rules is broken (" + "; ".join(RULES.values()) + ")"
    by_rule: Dict[str, List[Finding]] = defaultdict(list)
    for f in found:
        by_rule[f.rule].append(f)
    lines = [f"lean: {len(by_rule)} of {len(RULES)} rules broken, {human_size(sum(f.size for f in found))} in all"]
    for rule in RULES:
        items = sorted(by_rule.get(rule, ()), key=lambda f: -f.size)
        if not items:
            continue
        lines.append(f"  {rule}: {len(items)}, {human_size(sum(f.size for f in items))} ({RULES[rule]})")
        lines.extend(f"    {human_size(f.size):>9}  {f.what}" for f in items[:limit])
        if len(items) > limit:
            lines.append(f"    … and {len(items) - limit} more")
    return "\n".join(lines)
