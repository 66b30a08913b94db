"""`sbom -i IMAGE`: the SBOM of an image the tool built earlier, from its labels and a probe inside
it, without rebuilding (the documents themselves: check/sbom.py)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Mapping, TextIO

from ..check import sbom as docs
from ..engine.api import Engine
from ..errors import ConfigError, VerifyError, disk_errors
from ..options.cascade import sourced
from ..util import expand_home, say_to, short_id, write_atomic
from ..values import validate
from ..values.refs import image_reference


def sbom(values, env: Mapping[str, str], out: TextIO = sys.stdout) -> int:
    """Write the image's CycloneDX and/or SPDX document; return 0. Raises ConfigError (bad flags),
    VerifyError (no such image), ImageMismatchError (its python does not run), EngineError, DiskError."""
    values = sourced("sbom", values).values
    if not values.get("image"):
        raise ConfigError("sbom needs -i IMAGE: the image to describe, e.g. -i musa-pytorch-release:latest")
    ref = image_reference(values["image"], "-i/--image")
    fmt = values.get("format") or None
    if fmt is not None and fmt not in docs.FORMATS:
        raise ConfigError(f"--format {fmt!r} is not one this tool writes: choose {' or '.join(docs.FORMATS)}")
    home = Path(env.get("HOME") or Path.home())
    where = expand_home(validate.path(values["output_dir"], "-o/--output-dir"), home) if values.get("output_dir") \
        else Path(os.getcwd())
    say = say_to(out)
    engine = Engine(values.get("docker_host") or None, env)
    image = engine.image(ref)
    if image is None:
        raise VerifyError(f"image {ref} does not exist on {engine.host}: build it first, or check -i")
    if "musa_docker.kind" not in image.labels:
        say(f"note: {ref} has no musa_docker.kind label: not built by musa-docker, so the SBOM holds what the probe "
            "sees and no input of a plan")
    say(f"probe {ref} ({short_id(image.id)}) for its OS, dpkg packages and Python distributions")
    written = docs.documents(docs.subject(engine, image.id, ref), docs.contents(engine, image.id))
    with disk_errors(((where, "the SBOM dir (-o/--output-dir)", "name a writable dir with -o"),)):
        for name, data in written.items():
            if fmt and name != fmt:
                continue
            path = where / (docs.file_stem(ref) + docs.SUFFIX[name])
            write_atomic(path, data)
            at_build = image.labels.get(docs.LABEL[name])
            note = f"; the one written at build time has sha256 {at_build[:12]}… (label {docs.LABEL[name]})" \
                if at_build else ""
            say(f"{name} {path} (sha256 {hashlib.sha256(data).hexdigest()[:12]}…{note})")
    return 0
