"""The library function behind each task: options -> plan -> (dry run: print, stop) -> execute -> report.

Each takes the flag values (config defaults applied) and the environment. A build returns its
Report (None after a dry run); shell and build-all return an exit code. Errors are raised as
MusaDockerError; the task boundary prints them.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Mapping, TextIO

from . import options as opts
from . import repos, validate
from .context import BuildDir
from .errors import EngineError
from .plan import plan_base, plan_dev, plan_release

MUSA_HOME = "/usr/local/musa"
MUSA_EXPECT = {"env": {"MUSA_HOME": MUSA_HOME}, "paths": (f"{MUSA_HOME}/bin", f"{MUSA_HOME}/lib")}


def _engine(options: opts.Common, env):
    """Connect to the engine, once the build dir is known to be usable. Imported here so that a
    dry run, --help and bad flags never load the Docker SDK."""
    from .engine import Engine
    BuildDir.check(options.build_dir, options.home)
    return Engine(options.docker_host, env)


def _say(out: TextIO) -> Callable[[str], None]:
    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()
    return say


def observe_repos(plan_steps) -> set:
    """Which repo dirs exist already: the one fact about the disk a plan depends on."""
    return {s.name for s in plan_steps if s.path.exists()}


def _build(values, env, out, echo, common: opts.Common, make_plan, say, *, root_flags, expect, vendor: bool):
    """What every build shares: a dry run prints the plan; otherwise connect, plan with what the
    engine says (`make_plan(engine)`; None in a dry run), execute, report, and --verify."""
    if common.dry_run:
        out.write(make_plan(None).render() + "\n")
        return None
    engine = _engine(common, env)
    plan = make_plan(engine)
    say(plan.render().splitlines()[0])
    from . import archives, pipeline

    def check_artifacts(fetched):
        archives.check_all(fetched, plan.python_version, _discard, common.cache_dir / "checked", say)
    report = pipeline.execute(plan, engine=engine, home=common.home, say=say, root_flags=root_flags,
                              expect=expect, validate=check_artifacts if vendor else None, echo=out if echo else None)
    out.write(report.render() + "\n")
    _verify(values, engine, report, out)
    return report


def build_base(values: Mapping[str, Any], env: Mapping[str, str], out: TextIO = sys.stdout, echo: bool = True):
    options = opts.resolve_base(values, env)
    probe = plan_base(options, (), env)
    for step in probe.repos:
        repos.check_root(step, "--pytorch-root")
    present = observe_repos(probe.repos)
    return _build(values, env, out, echo, options.common, lambda engine: plan_base(options, present, env), _say(out),
                  root_flags={"pytorch": "--pytorch-root"}, expect={"imports": ("numpy",)}, vendor=False)


def _verify(values, engine, report, out) -> None:
    """--verify: the smoke checks of `verify -i` on the new image; a failing check fails the task."""
    if values.get("verify"):
        from .verify import verify_after_build
        verify_after_build(engine, report.image, out)


def _discard(fetched) -> None:
    """Drop a downloaded file that failed its check from the cache (the tool's own file), so the
    next run fetches it again instead of failing the same way. A local file is never touched."""
    if fetched.location.scheme in ("http", "https"):
        fetched.path.unlink(missing_ok=True)


def base_python(engine, ref: str, say) -> str:
    """The Python version of the base image `ref`, pulling it when the engine lacks it."""
    image = engine.image(ref)
    if image is None:
        say(f"pull {ref}: the engine at {engine.host} does not have it")
        try:
            engine.pull(ref)
        except EngineError as err:
            raise EngineError(
                f"-b/--base-img {ref}: the engine at {engine.host} does not have it and cannot pull it "
                f"({err}); build it with build-base, or check the name"
            ) from err
        image = engine.image(ref)
    version = image.labels.get("musa_docker.python_version")
    if version:
        return version
    code, output = engine.run(image.id, ["python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    if code != 0:
        raise EngineError(f"-b/--base-img {ref} has no `python` on PATH: is it a base image made by build-base?")
    return output.strip().splitlines()[-1]


def build_dev(values: Mapping[str, Any], env: Mapping[str, str], out: TextIO = sys.stdout, echo: bool = True):
    options = opts.resolve_dev(values, env)
    say = _say(out)
    probe = plan_dev(options, (), env)
    for step in probe.repos:
        if step.action == "clone":
            repos.check_root(step, "--vision-root")
    present = observe_repos([s for s in probe.repos if s.action == "clone"])

    def make_plan(engine):
        python_version = base_python(engine, options.base_img, say) if engine else None
        return plan_dev(options, present, env, python_version)

    return _build(values, env, out, echo, options.common, make_plan, say,
                  root_flags={"vision": "--vision-root", "torch_musa": "--torch-musa-repo"},
                  expect={"imports": ("torchvision",), "installed": ("torch_musa",), **MUSA_EXPECT}, vendor=True)


def release(values: Mapping[str, Any], env: Mapping[str, str], out: TextIO = sys.stdout, echo: bool = True):
    options = opts.resolve_release(values, env)
    return _build(values, env, out, echo, options.common, lambda engine: plan_release(options, env), _say(out),
                  root_flags={}, expect={"imports": ("torch",), "installed": ("torch", "torch_musa"), **MUSA_EXPECT}, vendor=True)


def shell(values: Mapping[str, Any], env: Mapping[str, str], out: TextIO = sys.stdout) -> int:
    from . import shell as shell_mod
    from .engine import Engine
    options = opts.resolve_shell(values, env)
    engine = Engine(options.docker_host, env)
    # Status lines go to stderr so that `--cmd` output on stdout is the command's alone.
    say = _say(sys.stderr)
    from .verify import host_hints
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
    from .errors import ConfigError
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
    if values.get("dry_run"):
        out.write(matrix.render(entries) + "\n")
        return 0
    from .engine import Engine
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
        given = dict(entry.values)
        if values.get("docker_host") and not given.get("docker_host"):
            given["docker_host"] = values["docker_host"]
        return builders[entry.task](given, env, entry_out, echo)

    outcomes = matrix.run(entries, build, jobs, out)
    out.write(matrix.summary(outcomes) + "\n")
    return 1 if any(o.status in ("failed", "skipped") for o in outcomes) else 0
