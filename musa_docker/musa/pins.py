"""The pins file: versions, source repos, per-arch vendor artifacts and per-arch/Python wheels,
read with the line of every value so that messages and the plan can name it.

    versions:  {musa: "4.0.0", mudnn: "2.8.0"}
    repos:     {vision: {url: https://github.com/MooreThreads/vision.git, tag: v0.22.1-musa}}
    artifacts: {S4000: {musa_toolkits: {url: https://…, sha256: …}, mudnn: {…}, mccl: {…}}}
    wheels:    {S4000: {"3.10": {torch: https://…/torch-….whl, torch_musa: "torch_musa==2.7.1"}},
                mp_22/linux/arm64: {"3.10": {torch: https://…/torch-…-linux_aarch64.whl}}}
    compatibility: {"5.2": {driver: "3.0.0", container_toolkit: "2.0.0"}}

Every section is optional; unknown keys are errors naming `FILE:LINE`. Arch keys take any
spelling `--gpu-arch` takes, alone (every platform) or followed by a platform (`mp_22/linux/arm64`:
that platform only, over the arch's own entry, name by name). `compatibility` gives, per SDK line,
the host driver (`mthreads-gmi`'s Driver Version) and container toolkit versions it needs at least.
Loading reads the file and nothing else.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

import yaml

from . import arch as arch_mod, vendor
from .. import defaults
from ..values import platforms, validate, yamlfile
from ..errors import ConfigError
from ..values.locations import Location, parse_location

SECTIONS = ("versions", "repos", "artifacts", "wheels", "compatibility")
COMPATIBILITY = ("driver", "container_toolkit")
VERSIONS = ("musa", "mudnn", "mccl", "triton", "mualg", "muthrust")
REPOS = ("pytorch", "vision", "torch_musa", "kineto", "mualg", "muthrust", "audio")
ARTIFACTS = vendor.NAMES

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_WHEEL_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
# A requirement pinned for the MUSA index: `name==version` (PEP 508 name, PEP 440 local version).
_REQUIREMENT_RE = re.compile(r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*==\s*(?P<version>[A-Za-z0-9.+!_-]+)$")


@dataclass(frozen=True)
class Pin:
    value: str
    line: int


@dataclass(frozen=True)
class RepoPin:
    name: str
    url: Pin
    ref: Pin                  # the tag, or the ref
    is_tag: bool


@dataclass(frozen=True)
class ArtifactPin:
    name: str                 # musa_toolkits | mudnn | mccl
    url: Pin
    sha256: Optional[Pin]

    @property
    def location_text(self) -> str:
        return f"{self.url.value}#sha256={self.sha256.value}" if self.sha256 else self.url.value


@dataclass(frozen=True)
class WheelPin:
    name: str
    value: Pin
    location: Optional[Location]   # a wheel URL or path; None for a requirement
    requirement: Optional[str]     # `torch==2.7.1+musa5.2.0`, installed from a MUSA pip index


@dataclass(frozen=True)
class Pins:
    path: Path
    versions: Dict[str, Pin]
    repos: Dict[str, RepoPin]
    artifacts: Dict[str, Dict[str, ArtifactPin]]             # mp_XY[/linux/arm64] -> name -> pin
    wheels: Dict[str, Dict[str, Dict[str, WheelPin]]]        # mp_XY[/linux/arm64] -> "3.10" -> name -> pin
    arch_lines: Dict[Tuple[str, str], int]                   # (section, mp_XY[/platform]) -> line
    compatibility: Dict[str, Dict[str, Pin]] = field(default_factory=dict)   # "5.2" -> driver|container_toolkit -> pin

    def where(self, line: int) -> str:
        return f"pins {self.path}:{line}"

    def for_platform(self, platform: str) -> "Pins":
        """The file as it reads for `platform` (linux/arm64): each arch's entries with that
        platform's over them, name by name; other platforms' entries dropped."""
        artifacts: Dict[str, Dict[str, ArtifactPin]] = {}
        wheels: Dict[str, Dict[str, Dict[str, WheelPin]]] = {}
        lines = dict(self.arch_lines)
        for key in sorted(self.artifacts, key=lambda k: "/" in k):          # an arch's own entry first
            target, _, only = key.partition("/")
            if not only or only == platform:
                artifacts.setdefault(target, {}).update(self.artifacts[key])
                lines[("artifacts", target)] = self.arch_lines[("artifacts", key)]
        for key in sorted(self.wheels, key=lambda k: "/" in k):
            target, _, only = key.partition("/")
            if not only or only == platform:
                for py, named in self.wheels[key].items():
                    wheels.setdefault(target, {}).setdefault(py, {}).update(named)
                lines[("wheels", target)] = self.arch_lines[("wheels", key)]
        return dataclasses.replace(self, artifacts=artifacts, wheels=wheels, arch_lines=lines)

    def needs(self, line: str) -> Dict[str, Pin]:
        """What the host needs for the SDK line `line` (5.2): driver and container_toolkit versions."""
        return self.compatibility.get(line, {})


class _Reader:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, node, message: str) -> ConfigError:
        return ConfigError(f"{self.path}:{node.start_mark.line + 1}: {message}")

    def mapping(self, node, what: str, keys: Optional[Tuple[str, ...]] = None):
        """[(key, key node, value node)] of a mapping node; unknown keys refused with their line."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, f"{what} must be a mapping of key: value")
        out, seen = [], set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if keys is not None and key not in keys:
                raise self.fail(key_node, f"unknown key {key!r} in {what}; known: {', '.join(keys)}")
            if key in seen:
                raise self.fail(key_node, f"{key!r} is given twice in {what}")
            seen.add(key)
            out.append((key, key_node, value_node))
        return out

    def scalar(self, node, what: str) -> Pin:
        if not isinstance(node, yaml.ScalarNode) or node.value == "":
            raise self.fail(node, f"{what} must be a single value")
        if node.tag == "tag:yaml.org,2002:float" and not node.style:
            # YAML reads 3.10 as 3.1 and 4.10 as 4.1: say so rather than pin the wrong thing.
            raise self.fail(node, f"{what} {node.value} reads as a number in YAML: {yamlfile.number_hint('', node.value)}")
        return Pin(str(node.value), node.start_mark.line + 1)

    def per_arch(self, node, section: str, pins: "Pins"):
        """(key, target arch, node) for each arch of `section`, the target `mp_XY` or, for a key
        naming a platform too, `mp_XY/linux/arm64`; two keys for one of them are an error."""
        seen: Dict[str, str] = {}
        for key, key_node, value in self.mapping(node, section):
            arch_key, slash, platform_key = str(key).partition("/")
            try:
                target = arch_mod.normalise(arch_key, what=f"{section} key")
                if slash:
                    target += "/" + platforms.parse(platform_key, flag=f"{section} key {key!r}: the platform").name
            except ConfigError as err:
                raise self.fail(key_node, str(err)) from None
            if target in seen:
                raise self.fail(key_node, f"{section}: {key!r} and {seen[target]!r} are the same arch ({target})")
            seen[target] = key
            pins.arch_lines[(section, target)] = key_node.start_mark.line + 1
            yield key, target, value


def load(path: Path) -> Pins:
    """Read and check a pins file. Raises ConfigError naming the file and line."""
    root = yamlfile.compose(path, "--pins", f"--pins {path}")
    r = _Reader(path)
    pins = Pins(path, {}, {}, {}, {}, {})
    if root is None:
        return pins
    for section, _, node in r.mapping(root, "the pins file", SECTIONS):
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            continue                                           # an empty section
        LOADERS[section](r, node, pins)
    return pins


def _versions(r: _Reader, node, pins: Pins) -> None:
    for name, _, value in r.mapping(node, "versions", VERSIONS):
        pin = r.scalar(value, f"versions.{name}")
        if not _VERSION_RE.match(pin.value):
            raise r.fail(value, f"versions.{name} {pin.value!r} is not a version (letters, digits, '.', '_', '+', '-')")
        pins.versions[name] = pin


def check_url(value: str, what: str) -> str:
    """A repo URL as the flags take it (validate.repo_url), said with the pins file's words."""
    try:
        return validate.repo_url(value, what)
    except ConfigError:
        raise ConfigError(f"{what} {value!r} is not a repository URL") from None


def check_ref(value: str, what: str) -> str:
    """A tag or ref as the flags take it (validate.git_ref), said with the pins file's words."""
    try:
        return validate.git_ref(value, what)
    except ConfigError:
        raise ConfigError(f"{what} {value!r} is not a tag or ref name (as git check-ref-format takes it)") from None


def _repos(r: _Reader, node, pins: Pins) -> None:
    for name, _, value in r.mapping(node, "repos", REPOS):
        fields = {k: (kn, v) for k, kn, v in r.mapping(value, f"repos.{name}", ("url", "tag", "ref"))}
        if "url" not in fields:
            raise r.fail(value, f"repos.{name} needs a url")
        if ("tag" in fields) == ("ref" in fields):
            raise r.fail(value, f"repos.{name} needs one of tag or ref")
        url = r.scalar(fields["url"][1], f"repos.{name}.url")
        kind = "tag" if "tag" in fields else "ref"
        ref = r.scalar(fields[kind][1], f"repos.{name}.{kind}")
        for field_name, pin, check in (("url", url, check_url), (kind, ref, check_ref)):
            try:
                check(pin.value, f"repos.{name}.{field_name}")
            except ConfigError as err:
                raise r.fail(fields[field_name][1], str(err)) from None
        pins.repos[name] = RepoPin(name, url, ref, kind == "tag")


def _artifacts(r: _Reader, node, pins: Pins) -> None:
    for key, target, per_arch in r.per_arch(node, "artifacts", pins):
        found = pins.artifacts.setdefault(target, {})
        for name, _, value in r.mapping(per_arch, f"artifacts.{key}", ARTIFACTS):
            fields = {k: v for k, _, v in r.mapping(value, f"artifacts.{key}.{name}", ("url", "sha256"))}
            if "url" not in fields:
                raise r.fail(value, f"artifacts.{key}.{name} needs a url")
            url = r.scalar(fields["url"], f"artifacts.{key}.{name}.url")
            sha = r.scalar(fields["sha256"], f"artifacts.{key}.{name}.sha256") if "sha256" in fields else None
            pin = ArtifactPin(name, url, sha)
            try:
                parse_location(pin.location_text, what=f"artifacts.{key}.{name}")
            except ConfigError as err:
                raise r.fail(value, str(err)) from None
            found[name] = pin


def _wheels(r: _Reader, node, pins: Pins) -> None:
    for key, target, per_arch in r.per_arch(node, "wheels", pins):
        by_python = pins.wheels.setdefault(target, {})
        for py, py_node, per_py in r.mapping(per_arch, f"wheels.{key}"):
            version = r.scalar(py_node, f"wheels.{key} Python version").value
            if version not in defaults.PYTHON_VERSIONS:
                raise r.fail(py_node, f"wheels.{key}: {version!r} is not a Python an image can have; give one of "
                                      f"{', '.join(defaults.PYTHON_VERSIONS)}, quoted: \"3.10\"")
            found = by_python.setdefault(version, {})
            for name, name_node, value in r.mapping(per_py, f"wheels.{key}.{version}"):
                if not _WHEEL_NAME_RE.match(name):
                    raise r.fail(name_node, f"wheels.{key}.{version}: {name!r} is not a package name")
                found[name] = _wheel(r, name, value, f"wheels.{key}.{version}.{name}")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _wheel(r: _Reader, name: str, node, what: str) -> WheelPin:
    pin = r.scalar(node, what)
    text = pin.value.strip()
    match = _REQUIREMENT_RE.match(text)
    if match and "/" not in text:
        if _canonical(match["name"]) != _canonical(name):
            raise r.fail(node, f"{what} is {text!r}, a requirement for another package than {name}")
        return WheelPin(name, pin, None, text)
    try:
        location = parse_location(text, what=what)
    except ConfigError as err:
        raise r.fail(node, str(err)) from None
    if not location.filename.endswith(".whl"):
        raise r.fail(node, f"{what} {location.display} is neither a wheel (*.whl) nor a requirement such as "
                           f"\"{name}==1.0\"")
    return WheelPin(name, pin, location, None)


_LINE_RE = re.compile(r"^[0-9]+\.[0-9]+$")


def _compatibility(r: _Reader, node, pins: Pins) -> None:
    for line, line_node, value in r.mapping(node, "compatibility"):
        if not _LINE_RE.match(line) or (isinstance(line_node, yaml.ScalarNode) and line_node.tag.endswith("float")
                                        and not line_node.style):
            raise r.fail(line_node, f"compatibility: {line!r} is not an SDK line X.Y, quoted (YAML reads 5.10 as 5.1): "
                                    "\"5.2\"")
        needs = {}
        for name, _, version in r.mapping(value, f"compatibility.{line}", COMPATIBILITY):
            pin = r.scalar(version, f"compatibility.{line}.{name}")
            if not re.match(r"^[0-9]+(\.[0-9]+)*$", pin.value):
                raise r.fail(version, f"compatibility.{line}.{name} {pin.value!r} is not a version such as 2.7.0")
            needs[name] = pin
        pins.compatibility[line] = needs


LOADERS = {"versions": _versions, "repos": _repos, "artifacts": _artifacts, "wheels": _wheels,
           "compatibility": _compatibility}
