"""The invoke tasks: adapters that parse flags, call one function of `commands`, and turn the
project's errors into one `error: ...` line and an exit code.

Defaults live in `defaults`, registered with `Collection.configure`: the keys every build task
shares at the top, one section per task. invoke's config system lets `musa_docker.yaml` /
`invoke.yaml` and `MUSA_DOCKER_*` / `INVOKE_*` variables override them; a flag given on the
command line wins over both.
"""

from __future__ import annotations

import inspect
import logging
import os
import traceback
from typing import Any, Callable, Dict, Tuple

from invoke import Collection, Exit, Task

from . import commands, flags
from .push import push as push_image
from .defaults import config as default_config
from .errors import MusaDockerError


class MusaTask(Task):
    """A Task whose short flags and extra long names are given explicitly, as DESIGN.md spells them."""

    def __init__(self, *args, names: Dict[str, Tuple[str, ...]] = None, **kwargs):
        self.names = names or {}
        kwargs["auto_shortflags"] = False
        super().__init__(*args, **kwargs)

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, taken_names)
        opts["names"] = list(opts["names"]) + list(self.names.get(name, ()))
        return opts




def _signature(params) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature(
        [inspect.Parameter("c", kind)] + [inspect.Parameter(p[0], kind, default=p[1]) for p in params]
    )


def musa_task(name: str, doc: str, params, run: Callable[[Dict[str, Any]], int], common: bool = True):
    """Make a task from a flag table; its body only collects the values and calls `run`."""
    params = list(params) + (flags.COMMON if common else [])

    section = name.replace("-", "_")

    def body(c, **given):
        values = {k: (v if v not in (None, []) else configured(c.config, section, k, v)) for k, v in given.items()}
        return boundary(lambda: run(values))

    body.__name__ = name.replace("-", "_")
    body.__doc__ = doc
    body.__signature__ = _signature(params)
    return MusaTask(
        body, name=name,
        names={p[0]: p[2] for p in params},
        help={p[0]: p[3] for p in params},
        iterable=[p[0] for p in params if p[1] == []],
    )


def configured(config, section: str, key: str, fallback):
    """A flag's value from config: the task's own section first, then the shared keys."""
    own = config.get(section, {})
    if key in own:
        return own[key]
    return config.get(key, fallback) if key in COMMON_KEYS else fallback


COMMON_KEYS = {p[0] for p in flags.COMMON}


def boundary(call: Callable[[], int]) -> None:
    """Run a command; a MusaDockerError becomes `error: ...` on stderr and its exit code."""
    try:
        code = call()
    except MusaDockerError as err:
        if os.environ.get("MUSA_DOCKER_DEBUG") or logging.getLogger().isEnabledFor(logging.DEBUG):
            traceback.print_exc()
        raise Exit(f"error: {err}", code=err.exit_code) from None
    except KeyboardInterrupt:
        raise Exit("error: interrupted; nothing was tagged", code=130) from None
    if isinstance(code, int) and code:
        raise Exit(code=code)


build_base = musa_task(
    "build-base",
    "Build the base image: OS, build tools, a Python env, numpy, the PyTorch source at /home/pytorch.",
    flags.BUILD_BASE, lambda values: commands.build_base(values, os.environ),
)

build_dev = musa_task(
    "build-dev",
    "Build the dev image: MUSA toolkit, muDNN, MCCL, torch_musa and torchvision built from source, on a base image.",
    flags.BUILD_DEV, lambda values: commands.build_dev(values, os.environ),
)

release = musa_task(
    "release",
    "Build the release image: an OS image with the MUSA libraries, a Python env and the torch + torch_musa wheels.",
    flags.RELEASE, lambda values: commands.release(values, os.environ),
)

shell = musa_task(
    "shell",
    "Open bash in a dev container of IMAGE (created, started or reused), or run --cmd in it.",
    flags.SHELL, lambda values: commands.shell(values, os.environ), common=False,
)

build_all = musa_task(
    "build-all",
    "Build the images a YAML file lists, in dependency order, independent ones at once with --jobs.",
    flags.BUILD_ALL, lambda values: commands.build_all(values, os.environ), common=False,
)

push = musa_task(
    "push",
    "Tag IMAGE as [REGISTRY/]NAME:TAG and push it: one line per layer state, the digest at the end.",
    flags.PUSH, lambda values: push_image(values, os.environ), common=False,
)

def _verify(values):
    from .verify import verify as verify_checks   # loads the Docker SDK: only when verify runs
    return verify_checks(values, os.environ)


verify = musa_task(
    "verify",
    "Check an image (-i) or this host (--host) for torch_musa work: a pass/fail/skipped table, exit 1 when a check fails.",
    flags.VERIFY, lambda values: _verify(values), common=False,
)

def _pins(values):
    from . import pinstask
    return pinstask.run(values, os.environ)


pins = musa_task(
    "pins",
    "Show what a pins file resolves to (for --gpu-arch and -v); --check-urls asks every URL and repo tag in it.",
    flags.PINS_TASK, lambda values: _pins(values), common=False,
)

ns = Collection(build_base, build_dev, release, shell, build_all, push, verify, pins)
ns.configure(default_config())
