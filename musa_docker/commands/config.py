"""`config`: every value of every task (or of `--task`), and where it comes from, as the one
cascade decides it (options/cascade.py): the command line, a MUSA_DOCKER_* variable, a config file
and its line, the old scripts' variable, or the default. A build's pins file fills its inputs below
these; `--dry-run` shows that layer too."""

from __future__ import annotations

import sys
from typing import List, Mapping, TextIO

from ..errors import ConfigError
from ..options import cascade, flags


def config(values, env: Mapping[str, str], out: TextIO = sys.stdout) -> int:
    """Print the config files read and each task's values with their sources. Returns 0."""
    given = cascade.sourced("config", values)
    task = given.values.get("task")
    if task and task not in flags.TASKS:
        raise ConfigError(f"--task {task!r} is not a task: choose one of {', '.join(flags.TASKS)}")
    files = given.configs
    out.write("config files: " + (", ".join(str(c.path) for c in files) if files else "none") + "\n")
    for spec in flags.TASKS.values():
        if spec.name == "config" or (task and spec.name != task):
            continue
        out.write(f"{spec.name}:\n")
        out.write("\n".join(rows(spec, cascade.collect(spec.name, {}, env, files), env)) + "\n")
    return 0


def rows(spec: flags.TaskSpec, sourced: cascade.Sourced, env: Mapping[str, str]) -> List[str]:
    """One line per flag: its key, the value it takes, and where that comes from."""
    return [f"  {row.name:<22} {cascade.shown(row.name, sourced.values, env, spec.section, sourced.source(row.name))}"
            f"  ({sourced.source(row.name)})" for row in spec.rows]
