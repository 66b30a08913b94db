"""The invoke tasks: adapters that parse flags, call one function of `commands`, and turn the
project's errors into one `error: ...` line and an exit code.

Every flag's key is declared with `Collection.configure` (the keys every build task shares at
the top, one section per task), so that invoke's config system reads it from `musa_docker.yaml` /
`invoke.yaml` and `MUSA_DOCKER_*` / `INVOKE_*` variables; a flag given on the command line wins
over both, and options apply the defaults of `defaults` to what none of them set.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import threading
import traceback
from typing import Any, Callable, Dict, Tuple

from invoke import Collection, Exit, Task
from invoke.parser import Argument

from .commands import build as commands
from .options import flags
from .commands.push import push as push_image
from .errors import MusaDockerError, Terminated


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

    def get_arguments(self, *args, **kwargs):
        arguments = super().get_arguments(*args, **kwargs)
        for arg in arguments:
            if arg.kind is bool:
                arg.__class__ = _GivenOnly
        return arguments


class _GivenOnly(Argument):
    """An on/off flag whose value is None unless given on the command line, so that config and
    MUSA_DOCKER_* variables can set it (invoke would pass its signature default, which cannot be
    told from a flag given). The default stays declared: it makes `--no-privileged` and --help."""

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, arg):
        self.set_value(arg, cast=True)



def _signature(params) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature(
        [inspect.Parameter("c", kind)] + [inspect.Parameter(p[0], kind, default=p[1]) for p in params]
    )


def musa_task(name: str, doc: str, params, run: Callable[[Dict[str, Any]], int], common: bool = True):
    """Make a task from a flag table; its body only collects the values and calls `run`."""
    params = list(params) + (flags.COMMON if common else [])

    section = name.replace("-", "_")

    rows = {p[0]: p for p in params}

    def body(c, **given):
        return boundary(lambda: run({
            k: (v if v not in (None, []) else configured(c.config, section, rows[k], v)) for k, v in given.items()
        }))

    body.__name__ = name.replace("-", "_")
    body.__doc__ = doc
    body.__signature__ = _signature(params)
    return MusaTask(
        body, name=name,
        names={p[0]: p[2] for p in params},
        help={p[0]: p[3] for p in params},
        iterable=[p[0] for p in params if p[1] == []],
    )


def configured(config, section: str, row, fallback):
    """A flag's value from config (files and MUSA_DOCKER_* variables): the task's own section
    first, then the shared keys; checked for its flag's type. None: not set anywhere, so
    options apply the default from defaults.py."""
    key = row[0]
    own = config.get(section) or {}
    value = own.get(key)
    if value is None and key in COMMON_KEYS and key not in SECTIONS:
        value = config.get(key)
    value = flags.checked(row, value)
    return fallback if value is None else value


COMMON_KEYS = {p[0] for p in flags.COMMON}
# Task sections at the top of the config: `verify` there is the verify task's, so the build
# tasks' --verify is set per task (build_base: verify: true, MUSA_DOCKER_BUILD_BASE_VERIFY=1).
SECTIONS = {"build_base", "build_dev", "release", "shell", "build_all", "push", "verify"}


def _terminate(signum, frame):
    raise Terminated()


def declared() -> dict:
    """Every flag's key, declared (None) for invoke's config system: invoke maps a
    MUSA_DOCKER_<TASK>_<FLAG> / MUSA_DOCKER_<FLAG> variable only onto a key it knows. The
    values stay None: options apply the defaults (defaults.py), so a value set anywhere is
    one a user gave."""
    tables = {"build_base": flags.BUILD_BASE, "build_dev": flags.BUILD_DEV, "release": flags.RELEASE,
              "shell": flags.SHELL, "build_all": flags.BUILD_ALL, "push": flags.PUSH, "verify": flags.VERIFY,
              "pins": flags.PINS_TASK}
    config = {row[0]: None for row in flags.COMMON if row[0] not in SECTIONS}
    for task, rows in tables.items():
        shared = flags.COMMON if task in ("build_base", "build_dev", "release") else []
        config[task] = {row[0]: None for row in rows + shared}
    return config


def boundary(call: Callable[[], int]) -> None:
    """Run a command; a MusaDockerError becomes `error: ...` on stderr and its exit code.
    SIGTERM (what CI sends on cancel) unwinds like Ctrl-C: the same cleanup runs."""
    main = threading.current_thread() is threading.main_thread()   # only it may set handlers
    previous = signal.signal(signal.SIGTERM, _terminate) if main else None
    try:
        code = call()
    except MusaDockerError as err:
        if os.environ.get("MUSA_DOCKER_DEBUG") or logging.getLogger().isEnabledFor(logging.DEBUG):
            traceback.print_exc()
        raise Exit(f"error: {err}", code=err.exit_code) from None
    except Terminated:
        raise Exit("error: terminated", code=143) from None
    except KeyboardInterrupt:
        raise Exit("error: interrupted; nothing was tagged", code=130) from None
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
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
    from .check.verify import verify as verify_checks   # loads the Docker SDK: only when verify runs
    return verify_checks(values, os.environ)


verify = musa_task(
    "verify",
    "Check an image (-i) or this host (--host) for torch_musa work: a pass/fail/skipped table, exit 1 when a check fails.",
    flags.VERIFY, lambda values: _verify(values), common=False,
)

def _pins(values):
    from .commands import pins as pinstask
    return pinstask.run(values, os.environ)


pins = musa_task(
    "pins",
    "Show what a pins file resolves to (for --gpu-arch and -v); --check-urls asks every URL and repo tag in it.",
    flags.PINS_TASK, lambda values: _pins(values), common=False,
)

ns = Collection(build_base, build_dev, release, shell, build_all, push, verify, pins)
ns.configure(declared())
