"""The source-tree layers of a dev image, read from the engine: what `ADD torch_musa.tar` and
`ADD vision.tar` made, entry by entry, to compare two builds of the same trees."""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile

from musa_docker.engine.api import Engine
from musa_docker.pipeline import layers
from musa_docker.util import ChunkReader


def tree_layers(eng: Engine, ref: str) -> dict:
    """The layers the dev Dockerfile's `ADD torch_musa.tar` and `ADD vision.tar` made: step -> diff id."""
    config = json.loads(layers.stored_config(eng, eng.inspect(ref)["Id"]))
    made = [h for h in config["history"] if not h.get("empty_layer")]
    assert len(made) == len(config["rootfs"]["diff_ids"])
    steps = [(re.search(r"ADD (torch_musa|vision)\.tar ", h.get("created_by", "")), diff)
             for h, diff in zip(made, config["rootfs"]["diff_ids"])]
    return {found.group(1): diff for found, diff in steps if found}


def tree_files(eng: Engine, ref: str) -> dict:
    """The entries of the layers `tree_layers` names: step -> path -> (type, mode, uid, gid, mtime,
    link, sha256), from the image's save stream."""
    wanted = {diff: step for step, diff in tree_layers(eng, ref).items()}
    out = {}
    with tarfile.open(fileobj=ChunkReader(eng.saved(eng.inspect(ref)["Id"])), mode="r|") as outer:
        for member in outer:
            if not (member.name.endswith("/layer.tar") and member.isfile()):
                continue
            data = outer.extractfile(member).read()
            step = wanted.get(f"sha256:{hashlib.sha256(data).hexdigest()}")
            if step:
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    out[step] = {e.name: (e.type, e.mode, e.uid, e.gid, e.mtime, e.linkname,
                                          hashlib.sha256(layer.extractfile(e).read()).hexdigest() if e.isfile() else "")
                                 for e in layer}
    return out
