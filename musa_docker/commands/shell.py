"""`shell`: a long-lived dev container per image, created once, started when stopped, reused when
running; then an interactive bash (through the docker CLI, since the SDK cannot attach a
terminal) or one command run non-interactively with its output streamed and its exit code kept.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Optional, TextIO

from ..engine.api import Engine
from ..errors import ShellError
from ..engine.host import render_gid
from ..options.cascade import sourced
from ..options.inputs import load_pins
from ..options.shell import ShellOptions, resolve_shell
from ..util import Say, say_to, short_id



def ensure_container(engine: Engine, options: ShellOptions, say: Say) -> str:
    """Create, start or reuse the container; return its name. Raises ShellError, EngineError."""
    image = engine.image(options.image)
    if image is None:
        raise ShellError(f"image {options.image} does not exist on {engine.host}: build it first, or check -i")
    found = engine.container(options.name)
    if found is not None:
        if found["Image"] != image.id:
            raise ShellError(
                f"container {options.name} exists but runs {found['Config']['Image']} "
                f"({short_id(found['Image'])}), not {options.image} ({short_id(image.id)}): "
                f"pass another --name, or remove it with `docker rm -f {options.name}`"
            )
        if found["State"]["Running"]:
            say(f"reuse running container {options.name}")
        else:
            say(f"start stopped container {options.name}")
            engine.start(options.name)
        return options.name
    gid = render_gid()
    group_add = [str(gid)] if gid is not None else []
    say(
        f"create container {options.name} from {options.image}"
        f" (shm {options.shm_size}, {'privileged' if options.privileged else 'unprivileged'}"
        f"{f', host render gid {gid}' if gid is not None else ''})"
    )
    engine.create_container(
        options.image, options.name, command=["/bin/bash"], env=list(options.env),
        shm_size=options.shm_size, privileged=options.privileged, group_add=group_add, network="host",
    )
    try:
        engine.start(options.name)
    except Exception:
        # It was made just now and never ran: leave no broken container behind to trip the next run.
        engine.remove_container(options.name)
        raise
    return options.name


def host_meets_image(engine: Engine, ref: str, env: Mapping[str, str], pins=None) -> None:
    """Before a container starts: this host's driver and container toolkit are not older than what
    the image's SDK line needs (its labels, or `pins`' compatibility section). Raises ShellError
    naming both versions and what to upgrade."""
    from ..check.verify import failed, host_fit
    image = engine.image(ref)
    if image is None:
        return                      # ensure_container says so
    bad = failed(host_fit(engine, engine.info(), image.labels, env, pins))
    if bad:
        raise ShellError(f"{ref}: " + "; and ".join(row.detail for row in bad))


def run_command(engine: Engine, name: str, cmd: str, env, out=None) -> int:
    """Run `cmd` with bash in the container, stream its output, return its exit code."""
    out = out or sys.stdout.buffer
    stream = engine.exec_stream(name, ["bash", "-c", cmd], env=list(env))
    while True:
        try:
            chunk = next(stream)
        except StopIteration as done:
            return done.value
        out.write(chunk)
        out.flush()


def interactive(name: str, env, docker_host: Optional[str], environ: Mapping[str, str]) -> int:
    """An interactive bash in the container through the docker CLI; return its exit code."""
    cli = shutil.which("docker", path=environ.get("PATH"))
    if cli is None:
        raise ShellError("the interactive shell needs the docker CLI on PATH: install it, or run a command with --cmd")
    child_env = dict(environ)
    if docker_host:
        child_env["DOCKER_HOST"] = docker_host
    return subprocess.call(exec_argv(cli, name, env, sys.stdin.isatty()), env=child_env)


def exec_argv(cli: str, name: str, env, tty: bool) -> list:
    """`docker exec` into `name`: each value joined to its flag (`--env=K=V`) and the container
    after `--`, so no value is ever read as an option of the docker CLI."""
    return [cli, "exec", "-it" if tty else "-i", *(f"--env={item}" for item in env), "--", name, "bash"]


def shell(values, env: Mapping[str, str], out: TextIO = sys.stdout) -> int:
    """The task: ensure the container, then bash in it or --cmd. Returns the exit code."""
    options = resolve_shell(sourced("shell", values).values, env)
    if options.dry_run:
        out.write(plan(options) + "\n")
        return 0
    pins = load_pins(options.pins, Path(env.get("HOME") or Path.home()))
    engine = Engine(options.docker_host, env)
    # Status lines go to stderr so that `--cmd` output on stdout is the command's alone.
    say = say_to(sys.stderr)
    host_meets_image(engine, options.image, env, pins)
    from ..check.verify import host_hints
    for hint in host_hints(engine, env):
        say(hint)
    name = ensure_container(engine, options, say)
    if options.cmd:
        return run_command(engine, name, options.cmd, options.env)
    return interactive(name, options.env, options.docker_host, env)


def plan(options: ShellOptions) -> str:
    """What `shell` would do, contacting no engine: the container, how it runs, the command. Values
    of the environment are not shown (they may be secrets); their names are."""
    lines = [f"plan: a dev container {options.name} of {options.image} on "
             f"{options.docker_host or 'the engine of DOCKER_HOST / the docker context'}",
             "  create      if absent; start if stopped; reuse if running",
             f"  privileged  {'yes' if options.privileged else 'no'}; /dev/shm {options.shm_size}; "
             "the host's render group added when it has one",
             f"  env         {', '.join(p.partition('=')[0] for p in options.env)}",
             f"  then        {'run: ' + options.cmd if options.cmd else 'an interactive bash (docker exec -it)'}"]
    return "\n".join(lines)
