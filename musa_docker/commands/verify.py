"""`verify`: is an image fit for torch_musa work, and is this host ready to run it? The checks
themselves live in check/verify.py; this is the task."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Mapping, TextIO

from ..check import lean, size
from ..check.verify import Check, failed, render_table, verify_host, verify_image
from ..engine.api import Engine
from ..errors import ConfigError
from ..options.cascade import sourced
from ..options.inputs import load_pins
from ..values import validate
from ..values.refs import image_reference


def verify(values, env: Mapping[str, str], out: TextIO = sys.stdout) -> int:
    """`verify -i IMAGE` and/or `verify --host`: print the table(s); 1 when a check failed, else 0.
    Raises ConfigError (neither asked), VerifyError (no such image), EngineError."""
    values = sourced("verify", values).values
    ref = values.get("image") or None
    if ref:
        ref = image_reference(ref, "-i/--image")
    if not ref and not values.get("host"):
        raise ConfigError("verify needs -i IMAGE (check an image) or --host (check this host), or both")
    pins = load_pins(values.get("pins"), Path(env.get("HOME") or Path.home()))
    engine = Engine(validate.docker_host(values["docker_host"]) if values.get("docker_host") else None, env)
    checks: List[Check] = []
    if ref:
        rows = verify_image(engine, ref, out, env=env, pins=pins)
        out.write(render_table(rows) + "\n")
        out.write(size.measure(engine, ref).render() + "\n")
        if values.get("lean"):
            out.write(lean.render(lean.measure(engine, ref)) + "\n")
        checks += rows
    if values.get("host"):
        rows = verify_host(engine, out, env)
        out.write(render_table(rows) + "\n")
        checks += rows
    bad = failed(checks)
    out.write(f"{len(bad)} check{'s' if len(bad) != 1 else ''} failed\n" if bad else "all checks passed or were skipped\n")
    out.flush()
    return 1 if bad else 0
