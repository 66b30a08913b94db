"""The library function behind each task: options -> observe -> plan -> (dry run: print, stop) ->
execute -> report. Each build task is a short adapter: its options and what its image must hold.

Each takes the flag values (config defaults applied) and the environment. A build returns its
Report (None after a dry run); shell and build-all return an exit code. Errors are raised as
MusaDockerError; the task boundary prints them.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Mapping, TextIO

from ..options import inputs
from ..options import build as opts
from ..plan import plan as plans
from ..musa import sdk
from ..options import shell as shellopts
from ..values import validate
from ..build.builddir import BuildDir
from ..errors import disk_errors
from ..build.observe import observe_disk, observe_engine
from ..util import Say

def build_base(values: Mapping[str, Any], env: Mapping[str, str], out: TextIO = sys.stdout, echo: bool = True):
    resolved, options = resolve("build_base", values, env)
    return _run(options, resolved, values, env, out, echo, expect={})


def build_dev(values: Mapping[str, Any], env: Mapping[str, str], out: TextIO = sys.stdout, echo: bool = True):
    resolved, options = resolve("build_dev", values, env)
    return _run(options, resolved, values, env, out, echo,
                expect=sdk.expect(options.stack))


def release(values: Mapping[str, Any], env: Mapping[str, str], out: TextIO = sys.stdout, echo: bool = True):
    resolved, options = resolve("release", values, env)
    return _run(options, resolved, values, env, out, echo,
                expect=sdk.expect(options.stack))


RESOLVERS = {"build_base": opts.resolve_base, "build_dev": opts.resolve_dev, "release": opts.resolve_release}


def resolve(task: str, values: Mapping[str, Any], env: Mapping[str, str]):
    """A build task's options: the pins file and the environment under the flags, then checked.
    Returns (the resolved inputs with their sources, the options). Raises ConfigError."""
    resolved = inputs.resolve(task, values, env)
    return resolved, RESOLVERS[task](resolved.values, env)


def _run(options, resolved: inputs.Resolved, values, env, out: TextIO, echo: bool, expect: Mapping):
    """What every build shares: observe, plan; a dry run prints the plan and stops; otherwise
    execute, report, and --verify. Returns the Report, None after a dry run."""
    say = _say(out)
    common = options.common
    facts = observe_disk(options)
    if common.dry_run:
        out.write(inputs.extend(plans.make(options, facts, env), resolved).render() + "\n")
        return None
    with disk_errors(disk_places(common)):
        engine = _engine(common, env)
        common.cache_dir.mkdir(parents=True, exist_ok=True)     # after the engine: a refused run leaves no trace
        plan = inputs.extend(plans.make(options, observe_engine(options, facts, engine, say), env), resolved)
        say(plan.render().splitlines()[0])
        from ..build import pipeline    # loads the Docker SDK: only past the dry run
        report = pipeline.execute(plan, engine=engine, home=common.home, say=say, expect=expect,
                                  echo=out if echo else None)
    out.write(report.render() + "\n")
    if values.get("verify"):
        # the smoke checks of `verify -i` on the new image; a failing check fails the task
        from ..check.verify import verify_after_build
        verify_after_build(engine, report.image, out)
    return report


def _engine(options: opts.Common, env):
    """Connect to the engine, once the build dir is known to be usable. Imported here so that a
    dry run, --help and bad flags never load the Docker SDK."""
    from ..engine.api import Engine
    BuildDir.check(options.build_dir, options.home)
    return Engine(options.docker_host, env)


def disk_places(common: opts.Common) -> tuple:
    """Where a build writes, most specific first, with what to do when that disk refuses."""
    cache_fix = "set MUSA_DOCKER_CACHE to a writable dir with room, or free space there"
    return (
        (common.build_dir, "the build dir (--build-dir)", "name a --build-dir on a writable disk with room"),
        (common.cache_dir / "builds", "the build dir", f"{cache_fix}, or name a --build-dir elsewhere"),
        (common.cache_dir / "trees", "the cache of packed source trees", cache_fix),
        (common.cache_dir, "the cache dir", cache_fix),
    )


def _say(out: TextIO) -> Say:
    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()
    return say


def shell(values: Mapping[str, Any], env: Mapping[str, str], out: TextIO = sys.stdout) -> int:
    from . import shell as shell_mod
    from ..engine.api import Engine
    options = shellopts.resolve_shell(values, env)
    engine = Engine(options.docker_host, env)
    # Status lines go to stderr so that `--cmd` output on stdout is the command's alone.
    say = _say(sys.stderr)
    from ..check.verify import host_hints
    for hint in host_hints(engine, env):
        say(hint)
    name = shell_mod.ensure_container(engine, options, say)
    if options.cmd:
        return shell_mod.run_command(engine, name, options.cmd, options.env)
    return shell_mod.interactive(name, options.env, options.docker_host, env)


def build_all(values: Mapping[str, Any], env: Mapping[str, str], out: TextIO = sys.stdout) -> int:
    """Build every image of a matrix file in dependency order; print a summary table."""
    from pathlib import Path

    from . import matrix
    from ..errors import ConfigError
    if not values.get("config"):
        raise ConfigError("-c/--config FILE is required: the YAML file that lists the images (see README, build-all)")
    try:
        jobs = int(values.get("jobs") or 1)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise ConfigError(f"--jobs {values.get('jobs')!r} is not a positive whole number")
    # os.path.expanduser leaves `~nobody/…` as it is where pathlib would raise
    path = Path(os.path.expanduser(validate.path(values["config"], "-c/--config")))
    entries = matrix.load(path)
    invalid = {}
    for entry in entries:
        # Every entry's values checked before anything is built: a bad one is named with its line
        # on stderr (a dry run stops there); it fails and only what depends on it is skipped.
        try:
            resolve(entry.task.replace("-", "_"), entry.values, env)
        except ConfigError as err:
            where = f"{path}:{entry.line}: {entry.name} ({entry.task}): {err}"
            if values.get("dry_run"):
                raise ConfigError(where) from err
            sys.stderr.write(f"error: {where}\n")
            invalid[entry.name] = err
    if values.get("dry_run"):
        out.write(matrix.render(entries) + "\n")
        return 0
    from ..engine.api import Engine
    engines = {}
    for entry in entries:
        host = entry.values.get("docker_host") or values.get("docker_host")
        if entry.base and not entry.after:
            engine = engines.get(host) or engines.setdefault(host, Engine(host, env))
            if engine.image(entry.base) is None:
                raise ConfigError(
                    f"{path}:{entry.line}: {entry.name} needs base {entry.base}, which is neither listed in "
                    f"the file nor present on {engine.host}: add a build-base entry for it, or build it first"
                )
    builders = {"build-base": build_base, "build-dev": build_dev, "release": release}

    def build(entry, entry_out, echo):
        if entry.name in invalid:
            raise invalid[entry.name]
        given = dict(entry.values)
        if values.get("docker_host") and not given.get("docker_host"):
            given["docker_host"] = values["docker_host"]
        return builders[entry.task](given, env, entry_out, echo)

    outcomes = matrix.run(entries, build, jobs, out)
    out.write(matrix.summary(outcomes) + "\n")
    return 1 if any(o.status.failed for o in outcomes) else 0
