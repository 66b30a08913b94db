"""A source tree appended to an image as one layer, through the engine's image load.

With the classic builder an `ADD`ed tree is written twice by the engine: unpacked into the
step's container, then copied again when the step is committed as a layer; for PyTorch's ~100k
files that is most of a build (bench/context). Loaded as a layer, the tree is unpacked once.
The load archive names the image's existing layers without sending them (the engine has them)
and carries the image's own config and history, plus the new layer.

An image built by the engine's own BuildKit carries its cache inline: `moby.buildkit.cache.v0` in
its config, which the engine's inspect data does not show. Its config is then read whole from the
engine (`stored_config`) and the new image's config is that one with the layer added, so the
image, pushed, still serves `--cache-from` on another engine: the cache names the built layers,
which stay the first layers.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import time
from pathlib import Path
from typing import Iterator, List, Mapping, Optional

from .context import Entry, tar_sha256, tar_stream
from ..errors import EngineError
from ..util import ChunkReader, Say


def append(engine, image_id: str, layer: Path, created_by: str, say: Say, keep_config: bool = False) -> str:
    """`image_id` with `layer` on top, as a new image; its id. The layer is sent only when the
    engine does not have it on that chain already. With `keep_config` the new image's config is
    the image's stored one plus the layer (every key kept, BuildKit's inline cache too), else one
    made from its inspect data (with a warning, when the stored one cannot be read). Raises
    EngineError."""
    info, history, diff_id = engine.inspect(image_id), engine.history(image_id), tar_sha256(layer)
    raw = None
    if keep_config:
        say("  keep the built image's own config, inline cache and all: read it from the engine")
        try:
            raw = stored_config(engine, info["Id"])
        except EngineError as err:
            # the image is whole without it: only --cache-from on another engine is lost
            say(f"warning: the built image's inline cache is not kept ({err}); pushed, it serves no --cache-from")
    try:
        loaded = engine.load(load_archive(info, history, layer, diff_id, created_by, send_layer=False, raw=raw))
        say("  the engine has that layer on that image already: nothing sent")
        return loaded
    except EngineError:
        pass   # it has not: send it
    return engine.load(load_archive(info, history, layer, diff_id, created_by, raw=raw))


def stored_config(engine, image_id: str) -> bytes:
    """The image's config as the engine stores it (its sha256 is the image id), read from the
    image's `docker save` stream: the API gives it no other way. The stream stops at the config,
    but the engine writes the whole archive first (its layers' size, on its own disk). Raises
    EngineError."""
    digest = image_id.split(":", 1)[-1]
    names = {f"{digest}.json", f"blobs/sha256/{digest}"}     # `docker save` before Engine 25, and OCI layout
    stream = engine.saved(image_id)
    try:
        with tarfile.open(fileobj=ChunkReader(stream), mode="r|") as tar:
            for member in tar:
                if member.name in names and member.isfile():
                    raw = tar.extractfile(member).read()
                    if hashlib.sha256(raw).hexdigest() == digest:
                        return raw
    except tarfile.TarError as err:
        raise EngineError(f"the engine at {engine.host} sent a broken archive of image {image_id}: {err}") from err
    finally:
        stream.close()
    raise EngineError(f"the engine at {engine.host} saved image {image_id} without its config")


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


# Instructions that change only the image's config, never its layers.
_CONFIG_ONLY = re.compile(r"^(/bin/sh -c #\(nop\)\s+)?(ENV|ARG|LABEL|CMD|ENTRYPOINT|EXPOSE|USER|VOLUME|STOPSIGNAL|"
                          r"HEALTHCHECK|SHELL|ONBUILD|MAINTAINER)\b")


def _history(history: List[Mapping], layers: int) -> List[dict]:
    """The engine's history (newest first) as image-config history (oldest first). The API does
    not say which entries made a layer: the entries of steps that can make one (not ENV, ARG,
    LABEL…) are taken when there are exactly `layers` of them (a RUN that wrote nothing still made
    a layer under BuildKit); else the last `layers` entries with a size, or failing that the last
    ones. So `docker history` lines up, and the size report names the step of each layer."""
    oldest_first = list(reversed(history))
    steps = [i for i, h in enumerate(oldest_first) if not _CONFIG_ONLY.match(h.get("CreatedBy") or "")]
    sized = [i for i, h in enumerate(oldest_first) if h.get("Size")]
    if len(steps) == layers:
        makes_layer = set(steps)
    elif len(sized) >= layers:
        makes_layer = set(sized[-layers:])
    else:
        makes_layer = set(range(len(oldest_first))[-layers:])
    out = []
    for i, h in enumerate(oldest_first):
        entry = {"created": _iso(h.get("Created") or 0), "created_by": h.get("CreatedBy") or ""}
        if h.get("Comment"):
            entry["comment"] = h["Comment"]
        if i not in makes_layer:
            entry["empty_layer"] = True
        out.append(entry)
    return out


def _file(name: str, data: bytes) -> Entry:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    return Entry(name, None, info), data


def load_archive(image: Mapping, history: List[Mapping], layer: Path, diff_id: str, created_by: str,
                 send_layer: bool = True, raw: Optional[bytes] = None) -> Iterator[bytes]:
    """A `docker load` archive of `image` (its inspect data) plus `layer` on top, streamed.
    `diff_id` is the layer tar's sha256; the image's own layers are named, not sent, and with
    `send_layer` False neither is the new one: the engine then loads the image only if it has
    that layer on that chain already (the same tree on the same image, e.g. under a new tag).
    `raw`, the image's stored config, is kept whole with the layer added to its rootfs and history;
    without it the config is made from `image` and `history` (the engine's history)."""
    layers = list(image["RootFS"]["Layers"])
    now = _iso(time.time())
    added = {"created": now, "created_by": created_by}
    if raw is not None:
        config = json.loads(raw)
        config["created"] = now
        config["rootfs"] = {"type": "layers", "diff_ids": list(config["rootfs"]["diff_ids"]) + [f"sha256:{diff_id}"]}
        config["history"] = list(config.get("history") or []) + [added]
    else:
        config = {
            "architecture": image.get("Architecture", "amd64"),
            "os": image.get("Os", "linux"),
            "config": image["Config"],
            "created": now,
            "rootfs": {"type": "layers", "diff_ids": layers + [f"sha256:{diff_id}"]},
            "history": _history(history, len(layers)) + [added],
        }
        if image.get("Variant"):
            config["variant"] = image["Variant"]
    raw = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_name = f"{hashlib.sha256(raw).hexdigest()}.json"
    manifest = json.dumps([{
        "Config": config_name, "RepoTags": None,
        "Layers": [f"{d.split(':', 1)[1]}/layer.tar" for d in layers] + [f"{diff_id}/layer.tar"],
    }]).encode()
    small = [_file(config_name, raw), _file("manifest.json", manifest)]
    layer_dir = tarfile.TarInfo(diff_id)
    layer_dir.type, layer_dir.mode = tarfile.DIRTYPE, 0o755
    layer_info = tarfile.TarInfo(f"{diff_id}/layer.tar")
    layer_info.size, layer_info.mode = layer.stat().st_size, 0o644

    def chunks():
        for entry, data in small:
            yield entry.info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            yield data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)
        # the layer itself, streamed from the cache; tar_stream adds the end-of-archive blocks
        yield from tar_stream([Entry(diff_id, None, layer_dir)]
                              + ([Entry(layer_info.name, layer, layer_info)] if send_layer else []))

    return chunks()
