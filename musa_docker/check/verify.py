"""`verify`: is an image fit for torch_musa work, and is this host ready to run it?

`verify -i IMAGE` runs one throwaway container (no network) with a probe script and reports a
row per check: the kind from the labels, Python (runs, version, env), the imports the kind
promises, the MUSA toolkit, and, when a MUSA device is visible in the container, `mthreads-gmi`
and a tiny MUSA program compiled with `mcc` and run. `verify --host` checks the MUSA driver, the
engine's mthreads container runtime and the host's `render` group. Each row passes, fails, or is
skipped with the reason why; any failure makes the exit code 1.
"""

from __future__ import annotations

import enum
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, TextIO

from ..engine import host
from ..musa import kinds
from . import probe
from ..engine.api import Engine
from ..errors import MusaDockerError, VerifyError
from ..musa.kinds import NO_TOOLKIT, Kind
from ..options.build import python_prefix
from .probe import last as _last
from ..util import short_id
from ..values import platforms

NO_DEVICE = "no MUSA device visible"

DRIVER_HINT = "install the MUSA driver (it provides the mtgpu kernel module and mthreads-gmi)"
RUNTIME_HINT = (
    "install mt-container-toolkit and make mthreads the engine's default runtime "
    "(`(cd /usr/bin/musa && sudo ./docker setup $PWD)`, or \"default-runtime\": \"mthreads\" in "
    "/etc/docker/daemon.json, then restart dockerd)"
)
RENDER_HINT = (
    "the MUSA device nodes (/dev/dri/renderD*) belong to group render, and `shell` adds the host's "
    "render gid to its containers so that their processes may open them: install the MUSA driver, "
    "or create the group (`sudo groupadd -r render`)"
)


class Status(str, enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIPPED = "skipped"     # the kind does not promise it, or it cannot be checked here
    WARN = "warn"           # works, but not as well as it could (doctor): the detail says how

    # A row prints its value, whatever Python's default for str-mixed enums.
    __str__ = str.__str__
    __format__ = str.__format__


PASS, FAIL, SKIPPED, WARN = Status.PASS, Status.FAIL, Status.SKIPPED, Status.WARN


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str      # what was seen; for skipped, why


def render_table(checks: Sequence[Check]) -> str:
    """The checks as aligned columns: check, status, detail."""
    rows = [("check", "status", "detail")] + [(c.name, c.status, c.detail) for c in checks]
    width0 = max(len(r[0]) for r in rows)
    width1 = max(len(r[1]) for r in rows)
    return "\n".join(f"{a:<{width0}}  {b:<{width1}}  {c}".rstrip() for a, b, c in rows)


def failed(checks: Sequence[Check]) -> List[Check]:
    return [c for c in checks if c.status == FAIL]


@dataclass
class Section:
    lines: List[str]
    code: Optional[int]     # None: the section never ended (the container died inside it)


def parse_sections(output: str) -> Dict[str, Section]:
    """The probe's output, split into its framed sections."""
    sections: Dict[str, Section] = {}
    current = None
    for line in output.splitlines():
        if line.startswith("@@musa_docker_verify begin "):
            current = line.split(" ", 2)[2].strip()
            sections[current] = Section([], None)
        elif line.startswith("@@musa_docker_verify end "):
            name, _, code = line.split(" ", 2)[2].strip().partition(" ")
            if name in sections:
                try:
                    sections[name].code = int(code)
                except ValueError:
                    sections[name].code = -1
            current = None
        elif current is not None and line.strip():
            sections[current].lines.append(line.rstrip())
    return sections


def _first(lines: Sequence[str], fallback: str = "no output") -> str:
    return next((line.strip() for line in lines if line.strip()), fallback)[:200]


# --- verify -i IMAGE ------------------------------------------------------------------------------

def verify_image(engine: Engine, ref: str, out: TextIO, devices: Optional[Sequence[str]] = None,
                 env: Optional[Mapping[str, str]] = None, pins=None) -> List[Check]:
    """Check the image `ref` in one throwaway container; return the rows.

    The container sees the MUSA devices through the engine's mthreads runtime when it has one;
    else, for an engine on this machine, this machine's device nodes are mapped into it.
    `devices` (`/dev/x` or `/dev/x:/dev/y`) replaces that choice. Before the container starts,
    the host's driver and container toolkit are held against what the image's SDK line needs (its
    labels, or `pins`' compatibility section); `env` is where mthreads-gmi is looked for.
    Raises VerifyError when the image does not exist, EngineError when the engine fails."""
    image = engine.image(ref)
    if image is None:
        raise VerifyError(f"image {ref} does not exist on {engine.host}: build it first, or check -i")
    labels = image.labels
    label_kind = labels.get("musa_docker.kind")
    kind = kinds.KINDS.get(label_kind) if label_kind else None

    info = engine.info()
    fit = host_fit(engine, info, image.labels, os.environ if env is None else env, pins)
    runtime, default = host.musa_runtime(info)
    if devices is not None:
        runtime, default, devices = None, False, list(devices)
    elif runtime is None and host.is_local(engine):
        # Without the mthreads runtime nothing injects the devices: map this host's own nodes.
        devices = host.device_nodes()
    else:
        devices = []
    gid = host.render_gid() if devices and host.is_local(engine) else None
    group_add = [str(gid)] if gid is not None else []
    build = kind is None or kind.compiles
    access = (f"runtime {runtime}" if runtime else
              f"devices {' '.join(devices)}" if devices else "no MUSA runtime or devices")
    out.write(f"verify {ref} ({short_id(image.id)}, kind {kind.name if kind else 'unknown'}) on {engine.host}: "
              f"one check container, {access}\n")
    out.flush()
    command = probe.shell_command(probe.spec(kinds.all_modules()), build)
    code, output = engine.probe(
        image.id, command, env=["MTHREADS_VISIBLE_DEVICES=all"], devices=devices, group_add=group_add,
        runtime=runtime if runtime and not default else None,
    )
    sections = parse_sections(output)
    if "python" not in sections:
        raise VerifyError(
            f"the check container of {ref} did not run its probe (exit {code}: {_last(output.splitlines())}): "
            "does the image have /bin/sh?"
        )
    return [_platform_row(image.platform, labels, str(info.get("Architecture") or ""))] + fit + \
        _image_rows(label_kind, kind, labels, sections)


# --- the host against the image's SDK line -----------------------------------------------------------

NEEDS = {  # what a host needs for an SDK line: (row, what it is, how to upgrade it)
    "driver": ("host MUSA driver", "MUSA driver", "upgrade the MUSA driver (the mtgpu kernel module and mthreads-gmi)"),
    "container_toolkit": ("host container toolkit", "container toolkit",
                          "upgrade mt-container-toolkit (the engine's mthreads runtime)"),
}


def version_key(version: str) -> tuple:
    """A version compared number by number: 2.10.0 after 2.9.1; what follows +, ~ or - is dropped."""
    return tuple(int(n) for n in re.findall(r"[0-9]+", re.split(r"[+~-]", version, maxsplit=1)[0]))


def image_needs(labels: Mapping[str, str], pins=None) -> tuple:
    """(the image's SDK line or None, {driver|container_toolkit: (minimum version, where it is said)}):
    from its labels (musa_docker.sdk_line, musa_docker.needs.*), the pins file's compatibility
    section for that line over them."""
    line = labels.get("musa_docker.sdk_line")
    needs = {key: (labels[f"musa_docker.needs.{key}"], f"label musa_docker.needs.{key}")
             for key in NEEDS if labels.get(f"musa_docker.needs.{key}")}
    if pins is not None and line:
        needs.update({key: (pin.value, pins.where(pin.line)) for key, pin in pins.needs(line).items()})
    return line, needs


def fit_rows(line: Optional[str], needs: Mapping[str, tuple], have: Mapping[str, Optional[str]]) -> List[Check]:
    """A row each for the host's driver and container toolkit (`have`, None when this host has
    none to ask) against what SDK `line` needs."""
    rows = []
    for key, (row, what, upgrade) in NEEDS.items():
        got = have.get(key)
        here = f"{what} {got} here" if got else f"no {what} version on this host"
        if not line:
            rows.append(Check(row, SKIPPED, f"{here}; the image names no SDK line (no musa_docker.sdk_line label)"))
        elif key not in needs:
            rows.append(Check(row, SKIPPED, f"{here}; nothing says what SDK {line} needs (no musa_docker.needs.{key} "
                                            "label: pass --pins FILE with a compatibility section)"))
        elif not got:
            source = "mthreads-gmi -q" if key == "driver" else "the engine's mthreads runtime --version"
            rows.append(Check(row, SKIPPED, f"{here} ({source} does not say) to hold against the {needs[key][0]} "
                                            f"SDK {line} needs"))
        elif version_key(got) < version_key(needs[key][0]):
            need, where = needs[key]
            rows.append(Check(row, FAIL, f"this host's {what} {got} is older than the {need} the image's SDK {line} "
                                         f"needs ({where}): {upgrade} to {need} or newer, or run an image of an "
                                         "older SDK line"))
        else:
            rows.append(Check(row, PASS, f"{got}, SDK {line} needs {needs[key][0]} ({needs[key][1]})"))
    return rows


def host_versions(engine: Engine, info: Mapping, env: Mapping[str, str]) -> Dict[str, Optional[str]]:
    """This host's driver and container toolkit versions; Nones for an engine on another machine."""
    if not host.is_local(engine):
        return {"driver": None, "container_toolkit": None}
    return {"driver": host.driver_version(env), "container_toolkit": host.toolkit_version(info, env)[0]}


def host_fit(engine: Engine, info: Mapping, labels: Mapping[str, str], env: Mapping[str, str], pins=None) -> List[Check]:
    """The host against the image (labels) before a container of it starts; skipped for an engine on
    another machine, whose host this one cannot read."""
    if not host.is_local(engine):
        why = f"the engine at {engine.host} is on another machine; this check reads this one"
        return [Check(row, SKIPPED, why) for row, _, _ in NEEDS.values()]
    line, needs = image_needs(labels, pins)
    return fit_rows(line, needs, host_versions(engine, info, env))


def _platform_row(seen: str, labels: Mapping[str, str], engine_machine: str) -> Check:
    """The image's platform (its config's os/architecture) against its label musa_docker.platform,
    and whether the engine runs it natively or through QEMU."""
    want = labels.get("musa_docker.platform")
    try:
        native = platforms.of_machine(engine_machine).name == seen
    except MusaDockerError:
        native = False
    how = "" if native or not engine_machine else f"; the engine runs on {engine_machine}, so through QEMU"
    if not want:
        return Check("platform", SKIPPED, f"{seen} (no musa_docker.platform label){how}")
    if want != seen:
        return Check("platform", FAIL, f"the image's config says {seen}, label musa_docker.platform says {want}")
    return Check("platform", PASS, f"{seen} (label musa_docker.platform){how}")


def _image_rows(label_kind, kind: Optional[Kind], labels, sections) -> List[Check]:
    rows: List[Check] = []
    if kind:
        rows.append(Check("kind", PASS, f"{kind.name} (label musa_docker.kind)"))
    elif label_kind is None:
        rows.append(Check("kind", SKIPPED, "unknown: no musa_docker.kind label (not built by musa_docker?); "
                                           "rows that depend on the kind are not required"))
    else:
        rows.append(Check("kind", FAIL, f"label musa_docker.kind is {label_kind!r}, expected one of {', '.join(kinds.KINDS)}"))
    py = probe.parse(sections["python"].lines, sections["python"].code)
    rows.extend(_python_rows(py, labels))
    rows.extend(_import_rows(py, kind))
    home = dict(line.partition("=")[::2] for line in sections.get("musa_home", Section([], 0)).lines)
    rows.append(_musa_home_row(home, kind))
    has_device = bool(_first(sections.get("devices", Section([], 0)).lines, "").strip())
    rows.extend(_device_rows(sections, kind, home, has_device))
    return rows


def _python_rows(py: probe.Seen, labels: Mapping[str, str]) -> List[Check]:
    info = py.info
    if info is None:
        detail = f"`python` does not run (exit {py.code}: {_last(py.noise)})"
        why = "python does not run"
        return [Check("python runs", FAIL, detail), Check("python version", SKIPPED, why),
                Check("python env", SKIPPED, why)]
    rows = [Check("python runs", PASS, f"Python {info['version']} ({info['executable']})")]
    want = labels.get("musa_docker.python_version")
    if not want:
        rows.append(Check("python version", SKIPPED, f"no musa_docker.python_version label; it is {info['version']}"))
    elif (info["version"] + ".").startswith(want + "."):
        rows.append(Check("python version", PASS, f"{info['version']} (label {want})"))
    else:
        rows.append(Check("python version", FAIL, f"python is {info['version']}, label musa_docker.python_version says {want}"))
    version = want or ".".join(info["version"].split(".")[:2])
    env = labels.get("musa_docker.python_env")
    expected = {e: python_prefix(e, version) for e in ((env,) if env in ("conda", "venv") else ("conda", "venv"))}
    prefix = os.path.normpath(info["prefix"])
    match = next((e for e, p in expected.items() if p == prefix), None)
    source = f"label musa_docker.python_env {env}" if env in expected else "no musa_docker.python_env label"
    if match:
        rows.append(Check("python env", PASS, f"{match} {prefix} ({source})"))
    else:
        rows.append(Check("python env", FAIL, f"sys.prefix is {prefix}, expected "
                                              f"{' or '.join(expected.values())} ({source})"))
    return rows


def _import_rows(py: probe.Seen, kind: Optional[Kind]) -> List[Check]:
    rows = []
    for name in kinds.all_modules():
        row = f"import {name}"
        if kind and name not in kind.modules:
            rows.append(Check(row, SKIPPED, kind.why_not(name)))
            continue
        if py.info is None:
            rows.append(Check(row, SKIPPED if kind is None else FAIL, "python does not run"))
            continue
        got = py.imports.get(name) or {"ok": False, "error": f"python ended (exit {py.code}) before importing it"}
        if got["ok"]:
            rows.append(Check(row, PASS, f"{name} {got['version']}".strip()))
        elif kind is None:
            rows.append(Check(row, SKIPPED, f"kind unknown, so not required; it fails: {got['error'][:200]}"))
        else:
            rows.append(Check(row, FAIL, got["error"][:200]))
    return rows


def _no_toolkit(kind: Optional[Kind]) -> bool:
    return kind is not None and kind.musa_home is None


def _musa_home_row(home: Mapping[str, str], kind: Optional[Kind]) -> Check:
    if _no_toolkit(kind):
        return Check("MUSA_HOME", SKIPPED, NO_TOOLKIT)
    value = home.get("value", "")
    # a lean release holds the SDK's libraries, not its tools
    need = "bin" if kind is None or kind.compiles else "lib"
    if home.get("set") and value and home.get(need):
        return Check("MUSA_HOME", PASS, f"{value} ($MUSA_HOME/{need} present)")
    problem = (f"$MUSA_HOME/{need} ({value}/{need}) is missing" if value else
               "MUSA_HOME is set but empty" if home.get("set") else "MUSA_HOME is not set")
    if kind is None:
        return Check("MUSA_HOME", SKIPPED, f"kind unknown, so not required; {problem}")
    return Check("MUSA_HOME", FAIL, problem)


def _device_rows(sections: Mapping[str, Section], kind: Optional[Kind], home, has_device: bool) -> List[Check]:
    if not has_device:
        return [Check("mthreads-gmi", SKIPPED, NO_DEVICE),
                Check("musa program", SKIPPED, NO_TOOLKIT if _no_toolkit(kind) else NO_DEVICE)]
    devices = _first(sections["devices"].lines)
    gmi = sections.get("gmi", Section([], None))
    if gmi.code == 0:
        rows = [Check("mthreads-gmi", PASS, f"answers ({devices})")]
    else:
        hint = "; " + RUNTIME_HINT if gmi.code == 127 else ""
        rows = [Check("mthreads-gmi", FAIL, f"exit {gmi.code}: {_last(gmi.lines)}{hint}")]
    if _no_toolkit(kind):
        return rows + [Check("musa program", SKIPPED, NO_TOOLKIT)]
    if kind is not None and not kind.compiles:
        return rows + [Check("musa program", SKIPPED, f"{kind.name} images have no compiler (mcc): they are lean")]
    if kind is None and not home.get("mcc"):
        return rows + [Check("musa program", SKIPPED, "kind unknown and no $MUSA_HOME/bin/mcc")]
    mcc, program = sections.get("mcc"), sections.get("program")
    if mcc is None or mcc.code != 0:
        code = mcc.code if mcc else None
        rows.append(Check("musa program", FAIL, f"mcc cannot build it (exit {code}): {_last(mcc.lines if mcc else [])}"))
    elif program is None or program.code != 0:
        code = program.code if program else None
        rows.append(Check("musa program", FAIL, f"it exits {code}: {_last(program.lines if program else [])}"))
    else:
        rows.append(Check("musa program", PASS, f"built with mcc, ran: {_last(program.lines)}"))
    return rows


# --- verify --host ---------------------------------------------------------------------------------

def verify_host(engine: Engine, out: TextIO, env: Optional[Mapping[str, str]] = None) -> List[Check]:
    """Check the engine's host: MUSA driver, the mthreads runtime, the render group. The driver and
    the group are looked for on this machine, so they are skipped when the engine is remote."""
    env = os.environ if env is None else env
    out.write(f"verify the host of the engine at {engine.host}\n")
    out.flush()
    local = host.is_local(engine)
    remote = f"the engine at {engine.host} is on another machine; this check looks at this one"
    rows = [_driver_row(env) if local else Check("MUSA driver", SKIPPED, remote)]
    rows.append(_runtime_row(engine))
    rows.append(_render_row() if local else Check("render group", SKIPPED, remote))
    return rows


def _driver_row(env: Mapping[str, str]) -> Check:
    gmi = shutil.which("mthreads-gmi", path=env.get("PATH"))
    if gmi is None:
        return Check("MUSA driver", FAIL, f"mthreads-gmi is not on PATH: {DRIVER_HINT}")
    try:
        done = subprocess.run([gmi], capture_output=True, text=True, timeout=60, env=dict(env))
    except (OSError, subprocess.TimeoutExpired) as err:
        return Check("MUSA driver", FAIL, f"{gmi} does not answer ({err}): is the mtgpu module loaded? {DRIVER_HINT}")
    if done.returncode != 0:
        last = _last((done.stdout + done.stderr).splitlines())
        return Check("MUSA driver", FAIL, f"{gmi} exits {done.returncode}: {last}; is the mtgpu kernel module loaded "
                                          f"(`lsmod | grep mtgpu`)? else {DRIVER_HINT}")
    return Check("MUSA driver", PASS, f"{gmi} answers: {_first(done.stdout.splitlines())}")


def _runtime_row(engine: Engine) -> Check:
    try:
        info = engine.info()
    except MusaDockerError as err:
        return Check("MUSA container runtime", FAIL, str(err))
    name, default = host.musa_runtime(info)
    if name is None:
        known = ", ".join(sorted((info.get("Runtimes") or {}).keys())) or "none"
        return Check("MUSA container runtime", FAIL, f"the engine knows no mthreads runtime (it has {known}): {RUNTIME_HINT}")
    if not default:
        return Check("MUSA container runtime", FAIL,
                     f"{name} is known but the default runtime is {info.get('DefaultRuntime')}, so the containers "
                     f"`shell` makes get no MUSA devices or driver libraries: {RUNTIME_HINT}")
    return Check("MUSA container runtime", PASS, f"{name} (the default runtime)")


def _render_row() -> Check:
    gid = host.render_gid()
    if gid is None:
        return Check("render group", FAIL, f"this host has no render group: {RENDER_HINT}")
    return Check("render group", PASS, f"gid {gid} (`shell` adds it to its containers)")


def host_hints(engine: Engine, env: Optional[Mapping[str, str]] = None) -> List[str]:
    """One `hint: …` line per failing host check, for `shell` to print before it opens the shell."""
    return [f"hint: {c.name}: {c.detail}" for c in failed(verify_host(engine, _Null(), env))]


class _Null:
    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


# --- the task and --verify ------------------------------------------------------------------------

def verify_after_build(engine: Engine, ref: str, out: TextIO) -> None:
    """`--verify` of the build tasks: verify the new image, print the table, and raise
    VerifyError naming the failing rows when one failed."""
    rows = verify_image(engine, ref, out)
    out.write(render_table(rows) + "\n")
    out.flush()
    bad = failed(rows)
    if bad:
        raise VerifyError(f"{ref} fails --verify: " + "; ".join(f"{c.name}: {c.detail}" for c in bad))
