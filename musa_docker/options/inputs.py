"""Which value each input of a build takes, and where it came from: the pins file's layer of the
cascade, and the inputs table the plan prints.

The cascade (cascade.py) has decided the values a user gave and their sources (flag, variable,
config file, build-all entry, the old scripts' variables); `resolve` fills what none of them gave
from the pins file (`pins FILE:LINE`), leaves the rest to the defaults (`default`), and records
every shown input's source. `--gpu-arch detect` runs `mthreads-gmi` here, in the observe step (a
dry run too: it is quick and reads nothing else), so the plan is never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ..musa import arch as arch_mod
from .. import defaults
from .cascade import Sourced, empty, shown
from ..musa import pins as pins_mod
from ..musa import sdk, vendor
from ..errors import ConfigError
from ..util import expand_home
from ..values.locations import redact

REPO_KEYS = {
    "build_base": {"pytorch": ("pytorch_repo", "pytorch_tag")},
    "build_dev": {"vision": ("vision_repo", "vision_tag"), "torch_musa": ("torch_musa_repo", "torch_musa_ref"),
                  **{c: (f"{c}_repo", f"{c}_tag") for c in ("kineto", "mualg", "muthrust", "audio")}},
    "release": {},
}
WHEEL_KEYS = {"torch": "torch_whl_url", "torch_musa": "torch_musa_whl_url"}
SHOWN = {
    "build_base": ("python_version", "pytorch_repo", "pytorch_tag"),
    "build_dev": ("gpu_arch", "musa_url", "mudnn_url", "mccl_url", "vision_repo", "vision_tag",
                  "torch_musa_repo", "torch_musa_ref", "kineto_repo", "kineto_tag", "mualg_repo", "mualg_tag",
                  "muthrust_repo", "muthrust_tag", "audio_repo", "audio_tag"),
    "release": ("gpu_arch", "python_version", "musa_url", "mudnn_url", "mccl_url", "torch_whl_url",
                "torch_musa_whl_url"),
}


@dataclass(frozen=True)
class Resolved:
    values: Dict[str, Any]                       # the flag values, with what the pins file gives filled in
    selection: Optional[arch_mod.Selection]      # None for build-base
    pins: Optional[pins_mod.Pins]
    sources: Tuple[Tuple[str, str, str], ...]    # (input, value as shown, source)
    versions: Tuple[Tuple[str, str], ...]
    notes: Tuple[str, ...]
    wheels: Tuple[pins_mod.WheelPin, ...] = ()   # the pins file's wheels for the arch and Python
    config_files: Tuple[str, ...] = ()           # the config files the cascade read, highest first


def load_pins(value, home: Path) -> Optional[pins_mod.Pins]:
    if empty(value):
        return None
    return pins_mod.load(expand_home(value, home))


def resolve(sourced: Sourced, env: Mapping[str, str], platform: str = "") -> Resolved:
    """Fill the values from the pins file where no higher layer gave one, its entries for the
    image's `platform` (linux/arm64) over each arch's own. Raises ConfigError: a bad pins file or
    arch, artifacts or wheels that cannot be chosen."""
    task = sourced.task.replace("-", "_")
    values = sourced.values
    home = Path(env.get("HOME") or Path.home())
    pins = load_pins(values.get("pins"), home)
    pins = pins.for_platform(platform) if pins else None
    out = dict(values)
    # A value a user gave is theirs even when it equals the default: it beats the pins file.
    sources: Dict[str, str] = {k: sourced.source(k) for k in SHOWN[task] if sourced.given(k)}
    notes: List[str] = []
    shown_as: Dict[str, Any] = {}     # an input's value as shown, where it is no flag value; extra rows
    apt = task != "build_base" and not empty(values.get("musa_apt_source"))
    selection = None
    if task != "build_base":
        selection, how = arch_mod.choose(values.get("gpu_arch"), env)
        sources["gpu_arch"] = sources.get("gpu_arch", how) if how == "flag" else how     # detect: what it saw
        # the default stays absent: every arch, none of them asked for (qy1's lack of MCCL then
        # leaves MCCL in for the others)
        out["gpu_arch"] = selection.label if selection.given else None
        if not selection.given:
            notes.append(f"no --gpu-arch: built for every supported arch ({selection.label}); "
                         "name one (e.g. --gpu-arch S4000) for a smaller, faster build")
        _no_mccl(selection, sources, notes)
    wheels: Tuple[pins_mod.WheelPin, ...] = ()
    if pins:
        for name, (url_key, ref_key) in REPO_KEYS[task].items():
            repo = pins.repos.get(name)
            for key, pin in ((url_key, repo and repo.url), (ref_key, repo and repo.ref)):
                if pin and key not in sources:
                    out[key], sources[key] = pin.value, pins.where(pin.line)
        if selection is not None and apt:
            _no_artifacts_with_apt(pins, selection)
        elif selection is not None:
            _artifacts(pins, selection, out, sources)
        if task == "release":
            python = str(values.get("python_version") or defaults.default(task, "python_version"))
            wheels = _wheels(pins, selection, python, out, sources, notes, shown_as)
    if apt:
        for key in vendor.BY_KEY:
            sources.setdefault(key, "none: the SDK comes from --musa-apt-source")
    for key in SHOWN[task]:
        sources.setdefault(key, "default")
    shown = tuple((key, shown_as.get(key) or _shown(key, out, env, task, selection, sources[key]), sources[key])
                  for key in SHOWN[task])
    shown += tuple(row for row in shown_as.values() if isinstance(row, tuple))
    if apt and task != "build_base":
        shown += _apt_rows(pins, out)
    pinned = sorted(pins.versions.items()) if pins else []
    versions = tuple((n, p.value) for n, p in pinned)
    shown += tuple((f"version {n}", p.value, pins.where(p.line)) for n, p in pinned)
    return Resolved(out, selection, pins, shown, versions, tuple(notes), wheels,
                    tuple(str(c.path) for c in sourced.configs))


def _shown(key: str, values, env, task: str, selection, source: str) -> str:
    if key == "gpu_arch":
        return selection.label
    return shown(key, values, env, task, source)


def _no_mccl(selection, sources, notes) -> None:
    """An arch without MCCL (qy1) asked for: MCCL stays out of the image, and a flag asking for
    it is a contradiction to report, not to settle silently."""
    missing = selection.without_mccl
    if not missing:
        return
    names = ", ".join(f"{t} ({arch_mod.ARCHS[t].codename}: {'/'.join(arch_mod.ARCHS[t].products)})" for t in missing)
    if sources.get("mccl_url", "default") != "default":
        how = "$MCCL_URL" if sources["mccl_url"] == "env $MCCL_URL" else "--mccl-url"
        raise ConfigError(f"{how} asks for MCCL, but {names} has no MCCL: drop {how}, or build for another arch")
    sources["mccl_url"] = f"none: {', '.join(missing)} has no MCCL"
    notes.append(f"{names} has no MCCL: MCCL is not installed and torch_musa is built with USE_MCCL=0")


def _per_arch(pins, section: str, table: Dict[str, Any], selection, what: str, needed: bool):
    """The one entry of a per-arch section that serves every selected arch, or None. When the
    flags already give what it would provide (`needed` False), an entry that cannot be chosen is
    no error: there is simply nothing to take from it."""
    if not table or not (needed or selection.given):
        return None
    if not selection.given:
        archs = ", ".join(sorted(table))
        raise ConfigError(f"--pins {pins.path} gives {section} per GPU arch ({archs}): choose one with --gpu-arch "
                          f"(e.g. --gpu-arch {sorted(table)[0]}), or give {what} as flags")
    chosen = [table.get(t) for t in selection.targets]
    for target, entry in zip(selection.targets, chosen):
        if not entry:
            if not needed:
                return None
            raise ConfigError(f"--pins {pins.path} has no {section} for {target} "
                              f"({arch_mod.ARCHS[target].codename}: {'/'.join(arch_mod.ARCHS[target].products)}): "
                              f"add them under {section}:, or give {what} as flags")
    if any(entry != chosen[0] for entry in chosen[1:]):
        if not needed:
            return None
        raise ConfigError(f"--pins {pins.path} gives different {section} for {', '.join(selection.targets)}: "
                          f"build for one arch (--gpu-arch), or give {what} as flags")
    return chosen[0]


def _artifacts(pins, selection, out, sources) -> None:
    needed = [a.key for a in vendor.ARCHIVES if a.required and a.key not in sources]
    found = _per_arch(pins, "artifacts", pins.artifacts, selection, "-m and -n", bool(needed))
    for name, pin in (found or {}).items():
        key = vendor.BY_NAME[name].key
        if key not in sources:
            out[key], sources[key] = pin.location_text, pins.where(pin.url.line)


def _wheels(pins, selection, python: str, out, sources, notes, shown_as) -> Tuple[pins_mod.WheelPin, ...]:
    """The pins file's wheels for the arch and Python: a URL fills its flag; a requirement
    (`torch==2.7.1+musa5.2.0`) joins --musa-wheel's, installed from --musa-pip-index-url alone.
    A flag (or its variable) naming the same wheel wins."""
    table = {t: by_py.get(python) for t, by_py in pins.wheels.items() if by_py.get(python)}
    needed = any(k not in sources for k in WHEEL_KEYS.values())
    found = _per_arch(pins, f"wheels for Python {python}", table, selection,
                      "--torch-whl-url and --torch-musa-whl-url", needed) or {}
    named = {sdk.parse_wheel(v).key for v in out.get("musa_wheel") or ()}
    musa_wheels = list(out.get("musa_wheel") or ())
    for name, pin in sorted(found.items(), key=lambda item: item[1].value.line):
        key, where = WHEEL_KEYS.get(name), pins.where(pin.value.line)
        if pin.requirement:
            wheel = _requirement(pins, pin, out)
            if wheel.key in named or (key and key in sources):
                continue                                      # --musa-wheel or a wheel flag names it
            musa_wheels.append(wheel.requirement)
            shown = f"{wheel.requirement} from the MUSA index"
            if key:
                sources[key], shown_as[key] = where, shown
            else:
                shown_as[f"musa wheel {name}"] = (f"musa wheel {name}", shown, where)
        elif key and key not in sources:
            out[key], sources[key] = pin.value.value, where
        elif not key:
            # installed as a --wheel is, after those the flags give
            out["pins_wheel"] = list(out.get("pins_wheel") or []) + [pin.value.value]
    if musa_wheels:
        out["musa_wheel"] = musa_wheels
    return tuple(found.values())


def _requirement(pins, pin, out) -> "sdk.MusaWheel":
    where = pins.where(pin.value.line)
    try:
        wheel = sdk.parse_wheel(re.sub(r"\s+", "", pin.requirement))
    except ConfigError:
        raise ConfigError(f"{where}: {pin.name} {pin.requirement!r} is not an exact NAME==VERSION, which the MUSA "
                          "index is asked for and the image checked against") from None
    if not out.get("musa_pip_index_url"):
        raise ConfigError(f"{where}: {pin.name} is the requirement {wheel.requirement!r}, which comes from the MUSA "
                          "pip index alone: give --musa-pip-index-url URL, or a wheel URL in the pins file")
    return wheel


def _no_artifacts_with_apt(pins, selection) -> None:
    """The SDK comes one way: the pins file's archives for the arch and an apt source exclude each other."""
    for target in selection.targets if selection.given else sorted(pins.artifacts):
        if pins.artifacts.get(target):
            line = pins.arch_lines[("artifacts", target)]
            raise ConfigError(
                f"--musa-apt-source and the pins file's artifacts for {target} ({pins.where(line)}) both install "
                "the MUSA SDK: give the apt source or the archives, not both (drop --musa-apt-source, or that "
                "arch's artifacts from the pins file)")


def _apt_rows(pins, out) -> Tuple[Tuple[str, str, str], ...]:
    """The apt source and runtime line in the inputs. Without --musa-runtime, the pins file's
    `versions: musa` gives the line (5.2.0 -> 5.2), filled into the values."""
    runtime, source = out.get("musa_runtime"), "flag"
    pinned = pins.versions.get("musa") if pins else None
    if empty(runtime) and pinned:
        m = re.match(r"^([0-9]+)\.([0-9]+)", pinned.value)
        if m:
            out["musa_runtime"] = runtime = f"{m.group(1)}.{m.group(2)}"
            source = f"{pins.where(pinned.line)} (versions.musa {pinned.value})"
    return (("musa_apt_source", redact(str(out["musa_apt_source"])), "flag"),
            ("musa_runtime", str(runtime) if not empty(runtime) else "(none)", source if not empty(runtime) else "none"))
