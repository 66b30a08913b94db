"""`doctor`: what a build and a MUSA shell need, checked before they need it, one row each with
what to do: git, the engine and its API, a docker client that drives BuildKit (and, when the first
on PATH cannot, the exact `--docker-cli` that can), free space where the cache and the engine keep
their data, and the MUSA host runtime `shell` needs. A failing row is one a build cannot survive;
exit 1 then. What only `shell` needs, or what makes a build slower, is a warning."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Optional, TextIO

from .. import defaults
from ..check.verify import (FAIL, NEEDS, PASS, SKIPPED, WARN, Check, fit_rows, host_versions, render_table,
                            verify_host, version_key)
from ..engine import host
from ..options.inputs import load_pins
from ..engine import docker_cli
from ..errors import ConfigError, EngineError
from ..options.cascade import sourced
from ..util import human_size

LOW, TOO_LOW = 30e9, 3e9          # free bytes: a dev image's compile wants tens of GB
CLIENTS = ("/usr/bin/docker", "/usr/local/bin/docker")


def doctor(values, env: Mapping[str, str], out: TextIO = sys.stdout) -> int:
    """Print the checks; return 1 when one a build needs failed, else 0."""
    values = sourced("doctor", values).values
    pins = load_pins(values.get("pins"), Path(env.get("HOME") or Path.home()))
    rows = [_git(env)]
    engine, info, row = _engine(values.get("docker_host"), env)
    rows.append(row)
    rows.append(_client(values.get("docker_cli") or defaults.default("", "docker_cli"), env))
    rows.append(_space("free space: cache", _cache_dir(env)))
    if engine is not None:
        rows.append(_engine_space(engine, info))
        with open(os.devnull, "w") as quiet:
            for check in verify_host(engine, quiet, env):
                # a build needs none of these; `shell` on a MUSA machine does
                rows.append(Check(f"{check.name} (shell)", WARN if check.status == FAIL else check.status,
                                  check.detail))
        rows.extend(_sdk_lines(engine, info, env, pins))
    out.write(render_table(rows) + "\n")
    bad = [r for r in rows if r.status == FAIL]
    out.write(f"{len(bad)} check{'s' if len(bad) != 1 else ''} a build needs failed\n" if bad else
              "a build has what it needs\n")
    return 1 if bad else 0


def _sdk_lines(engine, info: dict, env: Mapping[str, str], pins) -> list:
    """This host's driver and container toolkit versions, and with a pins file, whether they are
    new enough for each SDK line its compatibility section names (what `shell` needs: a warning)."""
    have = host_versions(engine, info, env)
    if not host.is_local(engine):
        return [Check("MUSA versions (shell)", SKIPPED, f"the engine at {engine.host} is on another machine")]
    shown = ", ".join(f"{NEEDS[k][1]} {v or '(none)'}" for k, v in have.items())
    rows = [Check("MUSA versions (shell)", PASS if have["driver"] else SKIPPED,
                  shown + ("" if have["driver"] else ": no mthreads-gmi answers on this host"))]
    for line in sorted((pins.compatibility if pins else {}), key=version_key):
        needs = {k: (p.value, pins.where(p.line)) for k, p in pins.needs(line).items()}
        fit = fit_rows(line, needs, have)
        bad, good = [c for c in fit if c.status == FAIL], [c for c in fit if c.status == PASS]
        name = f"SDK {line} on this host (shell)"
        if bad:
            rows.append(Check(name, WARN, "; ".join(c.detail for c in bad)))
        elif good:
            rows.append(Check(name, PASS, "; ".join(f"{_what(c)} {c.detail}" for c in good)))
        else:
            rows.append(Check(name, SKIPPED, fit[0].detail))
    return rows


def _what(row: Check) -> str:
    return next(what for name, what, _ in NEEDS.values() if name == row.name)


def _git(env: Mapping[str, str]) -> Check:
    git = shutil.which("git", path=env.get("PATH"))
    if not git:
        return Check("git", FAIL, "not on PATH: install git (apt-get install git); builds clone their sources with it")
    done = subprocess.run([git, "--version"], capture_output=True, text=True, timeout=30)
    return Check("git", PASS, done.stdout.strip() or git)


def _engine(host: Optional[str], env: Mapping[str, str]):
    from ..engine.api import Engine
    try:
        engine = Engine(host, env)
        info = engine.info()
    except EngineError as err:
        return None, {}, Check("Docker engine", FAIL, str(err))
    return engine, info, Check("Docker engine", PASS, f"{engine.host}: Docker Engine {info.get('ServerVersion', '?')} "
                                               f"(API {engine.api_version})")


def _client(cli: str, env: Mapping[str, str]) -> Check:
    """BuildKit through the client named (or `docker` on PATH); else the one that would."""
    try:
        builder = docker_cli.choose("auto", cli, env, check_builder=False)
    except ConfigError as err:
        return Check("docker client", FAIL, str(err))
    if builder.kind == "buildkit":
        return Check("docker client", PASS, f"BuildKit: {builder.reason}")
    for candidate in CLIENTS:
        if candidate == builder.cli or not Path(candidate).is_file():
            continue
        try:
            other = docker_cli.choose("auto", candidate, env, check_builder=False)
        except ConfigError:
            continue
        if other.kind == "buildkit":
            return Check("docker client", WARN, f"the classic builder: {builder.reason}; BuildKit (compile cache, "
                                                f"secrets) with --docker-cli {candidate}: {other.reason}")
    return Check("docker client", WARN, f"the classic builder: {builder.reason}; for BuildKit (compile cache, "
                                        "secrets) install the buildx plugin (docker-buildx)")


def _cache_dir(env: Mapping[str, str]) -> Optional[Path]:
    try:
        return defaults.default_cache_dir(env)
    except ConfigError:
        return None


def _space(name: str, path: Optional[Path]) -> Check:
    if path is None:
        return Check(name, FAIL, "no place for it: HOME is not set; set MUSA_DOCKER_CACHE=DIR")
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError as err:
        return Check(name, FAIL, f"{path}: {err.strerror}")
    shown = f"{human_size(free, 'GB')} free at {path}"
    if free < TOO_LOW:
        return Check(name, FAIL, f"{shown}: a build will run out; free space there or move it (MUSA_DOCKER_CACHE)")
    if free < LOW:
        return Check(name, WARN, f"{shown}: a dev image needs tens of GB")
    return Check(name, PASS, shown)


def _engine_space(engine, info: dict) -> Check:
    from ..engine import host
    root = info.get("DockerRootDir")
    if not root:
        return Check("free space: engine", SKIPPED, "the engine does not say where it keeps its data")
    if not host.is_local(engine):
        return Check("free space: engine", SKIPPED, f"the engine at {engine.host} keeps its data on another machine")
    return _space("free space: engine", Path(root))
