"""One library function per task, called by the thin invoke tasks: `build` (build-base, build-dev,
release), `build_all`, `shell`, `push`, `verify`, `pins`, `config`, `doctor`. Each takes the task's values (a
cascade.Sourced) and the environment; a build returns its Report, the others an exit code."""

from __future__ import annotations

import importlib
from typing import Any, Mapping

# task -> (module, function). A task's module is imported when the task runs, so --help, --list
# and a dry run never load the Docker SDK.
COMMANDS = {
    "build-base": ("build", "build_base"),
    "build-dev": ("build", "build_dev"),
    "release": ("build", "release"),
    "shell": ("shell", "shell"),
    "build-all": ("build_all", "build_all"),
    "push": ("push", "push"),
    "verify": ("verify", "verify"),
    "pins": ("pins", "pins"),
    "config": ("config", "config"),
    "doctor": ("doctor", "doctor"),
    "cache": ("cache", "cache"),
}


def run(task: str, values: Any, env: Mapping[str, str], **how: Any) -> Any:
    """Run `task` with its values (a cascade.Sourced, or plain flag values); `how` is the
    function's own keywords (a build's `out` and `echo`)."""
    module, function = COMMANDS[task]
    return getattr(importlib.import_module(f"{__name__}.{module}"), function)(values, env, **how)
