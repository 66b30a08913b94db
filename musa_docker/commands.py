"""The library function behind each task: options -> plan -> (dry run: print, stop) -> execute -> report.

Each takes the flag values (config defaults applied) and the environment, and returns an exit
code. Errors are raised as MusaDockerError; the task boundary prints them.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Mapping, TextIO

from . import options as opts
from . import pipeline, repos, shell as shell_mod
from .engine import Engine
from .plan import plan_base


def _say(out: TextIO) -> Callable[[str], None]:
    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()
    return say


def observe_repos(plan_steps) -> set:
    """Which repo dirs exist already: the one fact about the disk a plan depends on."""
    return {s.name for s in plan_steps if s.path.exists()}


def build_base(values: Mapping[str, Any], env: Mapping[str, str], out: TextIO = sys.stdout) -> int:
    options = opts.resolve_base(values, env)
    say = _say(out)
    probe = plan_base(options, (), env)
    for step in probe.repos:
        repos.check_root(step, "--pytorch-root")
    plan = plan_base(options, observe_repos(probe.repos), env)
    if options.common.dry_run:
        out.write(plan.render() + "\n")
        return 0
    say(plan.render().splitlines()[0])
    engine = Engine(options.common.docker_host, env)
    report = pipeline.execute(
        plan, engine=engine, home=options.common.home, say=say,
        root_flags={"pytorch": "--pytorch-root"}, expect_imports=("numpy",), echo=out,
    )
    out.write(report.render() + "\n")
    return 0


def shell(values: Mapping[str, Any], env: Mapping[str, str], out: TextIO = sys.stdout) -> int:
    options = opts.resolve_shell(values, env)
    engine = Engine(options.docker_host, env)
    # Status lines go to stderr so that `--cmd` output on stdout is the command's alone.
    say = _say(sys.stderr)
    name = shell_mod.ensure_container(engine, options, say)
    if options.cmd:
        return shell_mod.run_command(engine, name, options.cmd, options.env)
    return shell_mod.interactive(name, options.env, options.docker_host, env)
