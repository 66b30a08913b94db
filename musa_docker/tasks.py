"""The invoke tasks: adapters made from the task registry (options/flags.py). Each collects what
the command line gave, hands it with the environment and the config files to the one cascade of
values (options/cascade.py), calls its command (commands.run), and turns the project's errors
into one `error: ...` line and an exit code.

invoke's own config system no longer carries the tasks' values: the cascade reads the config
files invoke found for this entry point (musa_docker.yaml for `musa-docker`, invoke.yaml for
`invoke`) with the line of every key, and the variables of its prefix, so the plan can say where
each value came from.
"""

from __future__ import annotations

import inspect
import logging
import os
import signal
import threading
import traceback
from typing import Callable, Dict, Tuple

from invoke import Collection, Exit, Task
from invoke.parser import Argument

from . import commands
from .errors import MusaDockerError, Terminated
from .options import cascade, flags


class MusaTask(Task):
    """A Task whose short flags and extra long names are given explicitly, as the old scripts spelled them."""

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
        [inspect.Parameter("c", kind)] + [inspect.Parameter(p.name, kind, default=p.default) for p in params]
    )


def musa_task(spec: flags.TaskSpec) -> "MusaTask":
    """A task from its registry entry; its body only collects the values and calls its command."""
    params = list(spec.rows)

    def body(c, **given):
        def call():
            files = cascade.invoke_files(c.config)
            prefix = getattr(c.config, "_env_prefix", None) or "MUSA_DOCKER_"
            return commands.run(spec.name, cascade.collect(spec.name, given, os.environ, files, prefix), os.environ)
        return boundary(call)

    body.__name__ = spec.section
    body.__doc__ = spec.summary
    body.__signature__ = _signature(params)
    return MusaTask(
        body, name=spec.name,
        names={p.name: p.names for p in params},
        help={p.name: p.help for p in params},
        iterable=[p.name for p in params if p.repeatable],
    )


def _terminate(signum, frame):
    raise Terminated()


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


ns = Collection(*(musa_task(spec) for spec in flags.TASKS.values()))
