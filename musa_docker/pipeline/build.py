"""Running one build on the engine: the log streamed as it comes, and kept whole in a file.

`image` is the one build step of the pipeline: the plan's builder (classic through the SDK, or
BuildKit through the docker client, see `buildkit`) runs the Dockerfile, then the trees are
appended as layers of their own. Both builders take the same staged context and give the same
BuildLog, BuildError and image id.

Build events are dispatched by key (`stream`, `status`, `aux`, `error`). A failing step ends in
a `BuildError` that names the step, its exit code, its last lines of output and the log file.
The image is not tagged here: the caller tags it only after it checks out.
"""

from __future__ import annotations

import collections
import tempfile
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple

from . import buildkit, context, layers
from ..plan import dockerfile
from .log import TAIL, BuildLog, Built, failure
from ..engine.docker_cli import MIN_API, Builder, BuildSettings
from ..engine.api import Engine
from ..errors import BuildError, ConfigError
from ..values.locations import redact
from ..plan.plan import Plan
from ..util import Say

_STEP = re.compile(r"^Step \d+/\d+ : ")
_CODE = re.compile(r"returned a non-zero code: (\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CCACHE = re.compile(r"compile cache: hits=(\d+)(?: remote_hits=(\d+))? misses=(\d+)\s*$", re.M)
_CCACHE_WARNING = re.compile(r"compile cache: warning: (.*?)\s*$", re.M)
COMPILE_CACHE_LABEL = "musa_docker.compile_cache"
_CHATTER = (" ---> ", "Removing intermediate container", "Successfully built", "Successfully tagged")


@dataclass(frozen=True)
class Staged:
    """What a builder gets besides the plan: the context dir, the image's labels, and the trees
    that join the image as layers of their own after the Dockerfile's steps."""

    path: Path                                # the context: Dockerfile, common/, artifacts/, tree tars
    labels: Dict[str, str]                    # every label, the build time included
    layers: Tuple[Tuple[str, Path, str], ...] = ()   # (repo name, tar, path in the image)
    secrets: Tuple[Tuple[str, str], ...] = ()        # (id, file) of each BuildKit secret, outside the context


def run(engine: Engine, context: Iterable[bytes], log: BuildLog, settings: BuildSettings,
        cache_from: Sequence[str] = ()) -> Built:
    """Build; return the new image's id. Raises BuildError (a step failed) or EngineError."""
    step = "(before the first step)"
    tail = collections.deque(maxlen=TAIL)
    image_id = None
    for event in engine.build(context, settings, cache_from=cache_from):
        if "stream" in event:
            text = event["stream"]
            log.write(text)
            for line in _ANSI.sub("", text).splitlines():
                if _STEP.match(line):
                    step, tail = line.strip(), collections.deque(maxlen=TAIL)
                elif line.strip() and not line.startswith(_CHATTER):
                    tail.append(line.rstrip())
        elif "status" in event:
            # pull progress: one line per layer state, not every byte count
            if "progress" not in event:
                log.write(f"{event.get('id', '')} {event['status']}\n".lstrip())
        elif "aux" in event:
            image_id = (event["aux"] or {}).get("ID") or image_id
        elif "error" in event:
            detail = event.get("errorDetail") or {}
            message = redact(detail.get("message") or event["error"]).strip()
            log.write(f"error: {message}\n")
            match = _CODE.search(message)
            code = detail.get("code") or (match and int(match.group(1)))
            raise BuildError(failure(step, code, message, tail, log.path))
    if not image_id:
        raise BuildError(f"the engine ended the build without an image id; the whole log is in {log.path}")
    return Built(image_id, log.path)


def image(engine: Engine, plan: Plan, staged: Staged, log: BuildLog, say: Say) -> str:
    """Build the plan's Dockerfile with its builder, then append each tree as one layer (keeping
    the config of an image the engine's BuildKit built, its inline cache in it). Returns the image id; raises BuildError, EngineError or ConfigError."""
    b = plan.build
    builder = effective(b.builder, engine, say)
    if builder.kind != b.builder.kind:
        # the staged Dockerfile is the other builder's rendering: stage this one's (unlink first, the
        # staged file may be a link to the cache's copy)
        path = staged.path / "Dockerfile"
        path.unlink()
        path.write_text(dockerfile.for_plan(plan, builder.kind))
    start = log.path.stat().st_size
    settings = b.settings(staged.labels, dict(b.proxies))
    image_id = build_context(builder, engine, staged.path, log, settings, say=say, secrets=staged.secrets).image_id
    if builder.kind == "buildkit" and dict(b.buildargs).get("COMPILE_CACHE", "off") != "off":
        image_id = _label_compile_cache(builder, engine, staged, settings, log, start, say)
    for name, tar, at in staged.layers:
        say(f"append the {name} tree as one layer at /{at}")
        image_id = layers.append(engine, image_id, tar, f"musa-docker: the {name} tree at /{at}", say,
                                 keep_config=builder.inline_cache)
    return image_id


def compile_cache_counts(text: str) -> Tuple[int, Optional[int], int]:
    """(hits, remote hits or None, misses) summed over the `compile cache: hits=N [remote_hits=R]
    misses=M` lines of a build's log (common/compile_cache.sh prints one per source build; a step
    served by the layer cache none). Remote hits are None when no source build used a remote."""
    found = _CCACHE.findall(text)
    remote = [int(r) for _, r, _ in found if r]
    return (sum(int(h) for h, _, _ in found), sum(remote) if remote else None, sum(int(m) for _, _, m in found))


def compile_cache_value(hits: int, remote: Optional[int], misses: int) -> str:
    """The label's value: `hits=N misses=M`, or `hits=N remote_hits=R misses=M` with a remote."""
    return f"hits={hits}" + (f" remote_hits={remote}" if remote is not None else "") + f" misses={misses}"


def _label_compile_cache(builder: Builder, engine: Engine, staged: Staged, settings: BuildSettings, log: BuildLog,
                         start: int, say: Say) -> str:
    """The image with the label musa_docker.compile_cache=hits=N [remote_hits=R] misses=M of this build. The numbers
    are known only at the end of the build and BuildKit fixes labels at its start, so the same build
    runs again with the label: every step comes from the cache the first run just filled (no cache
    import, no export, no pull), and the image it gives is BuildKit's own, inline cache and all (a
    label put on by any other builder would drop that cache from the image's config)."""
    with open(log.path, encoding="utf-8", errors="replace") as f:
        f.seek(start)
        text = f.read()
    for warning in dict.fromkeys(_CCACHE_WARNING.findall(text)):
        say(f"warning: compile cache: {redact(warning)}")
    hits, remote, misses = compile_cache_counts(text)
    value = compile_cache_value(hits, remote, misses)
    say(f"compile cache: {value}" + (f" ({100 * hits // (hits + misses)}% hits)" if hits + misses else
                                      " (no source build ran: its steps came from the layer cache)"))
    staged.labels[COMPILE_CACHE_LABEL] = value
    say("label the image: the build again with the label, every step from the cache")
    again = replace(settings, labels={**dict(settings.labels), COMPILE_CACHE_LABEL: value}, nocache=False, pull=False)
    return build_context(replace(builder, cache_from=(), cache_to=None), engine, staged.path, log, again, say=say,
                         secrets=staged.secrets).image_id


def relabel(engine: Engine, plan: Plan, staged: Staged, image_id: str, added: Dict[str, str], log: BuildLog,
            say: Say) -> str:
    """`image_id` (built from `staged` by `image`) with the labels `added`, known only once it was
    built and checked (its SBOM's sha256s). The engine's own BuildKit keeps the image's cache inline,
    in its config, which any build on top drops: there the plan's Dockerfile is built again with the
    labels, every step from the cache just made (never --no-cache, never --pull), and the trees
    appended again (the engine has their layers: nothing is sent). Elsewhere a one-line classic build
    on top adds them. Returns the new image's id; raises BuildError or EngineError."""
    b = plan.build
    builder = effective(b.builder, engine, say)
    staged.labels.update(added)
    if not (builder.kind == "buildkit" and builder.inline_cache):
        return add_labels(engine, image_id, added, log)
    say(f"label {', '.join(sorted(added))}: the build again, from its own cache, so the image keeps its inline cache")
    settings = replace(b.settings(staged.labels, dict(b.proxies)), nocache=False, pull=False)
    new = build_context(replace(builder, cache_from=(), cache_to=None), engine, staged.path, log, settings, say=say,
                        secrets=staged.secrets).image_id
    for name, tar, at in staged.layers:
        new = layers.append(engine, new, tar, f"musa-docker: the {name} tree at /{at}", say, keep_config=True)
    return new


def add_labels(engine: Engine, image_id: str, labels: Dict[str, str], log: BuildLog) -> str:
    """`image_id` with `labels` added, for what is known only once the image is built: a one-line
    classic build on top (`FROM <id>`: no layer, only the config changes). Returns the new id."""
    with tempfile.TemporaryDirectory(prefix="musa-docker-label-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(f"FROM {image_id}\n")
        return run(engine, context.tar_stream(context.dir_entries(Path(tmp))), log,
                   BuildSettings(labels=dict(labels), network="none")).image_id


def build_context(builder: Builder, engine: Engine, context_dir: Path, log: BuildLog, settings: BuildSettings, *,
                  say: Say, secrets: Sequence[Tuple[str, str]] = ()) -> Built:
    """Build a staged context dir with `builder`: classic through docker-py, BuildKit through the
    client, with `secrets` ((id, file) pairs). An `auto` BuildKit falls back to classic when the
    engine predates BuildKit, and a build with secrets then stops (ConfigError)."""
    builder = effective(builder, engine, say)
    if builder.kind == "classic" and secrets:
        raise ConfigError(f"the secrets {', '.join(i for i, _ in secrets)} need BuildKit, and {builder.reason}: the "
                          "classic builder would keep them in the image; use an engine of 18.09 or later")
    if builder.kind == "classic":
        for ref in builder.cache_from:
            if engine.image(ref) is None:     # the classic builder ignores it without a word
                say(f"warning: --cache-from {ref} is not an image on {engine.host} (the classic builder uses "
                    "only local images: pull it first); building without it")
        return run(engine, context.tar_stream(context.dir_entries(context_dir)), log, settings,
                   cache_from=builder.cache_from)
    return buildkit.run(builder, context_dir, log, settings, say=say, secrets=secrets)


def effective(builder: Builder, engine: Engine, say: Say) -> Builder:
    """`builder`, or classic when it is an `auto` BuildKit and the engine predates BuildKit.
    Raises ConfigError when BuildKit was asked for and the engine cannot."""
    if builder.kind == "buildkit" and builder.inline_cache:
        api = engine.api_version
        if tuple(int(p) for p in api.split(".")[:2]) < MIN_API:
            why = f"the engine at {engine.host} speaks API {api}, BuildKit needs 1.39 (Engine 18.09)"
            if not builder.auto:
                raise ConfigError(f"--builder buildkit: {why}; upgrade the engine or use --builder classic")
            say(f"builder classic: {why}")
            builder = Builder("classic", why, cache_from=builder.cache_from)
    return builder
