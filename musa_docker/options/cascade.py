"""Where every value of a task comes from, decided in one place.

Highest first:
1. the command line (`flag`);
2. `MUSA_DOCKER_<TASK>_<FLAG>`, then `MUSA_DOCKER_<FLAG>` (`env $NAME`);
3. the config files (`FILE:LINE`): the one named with `-f/--config`, then `musa_docker.yaml` in the
   working dir, `~/.musa_docker.yaml`, `/etc/musa_docker.yaml` (YAML only: no file is run as code);
   in each, the task's own section (`build_base:`) before the keys at the top, which every task
   with that flag reads;
4. the old scripts' variables (`MUSA_TOOLKITS_URL`, `PYTORCH_REPO_ROOT_PATH`, … `env $NAME`: the
   flag rows name them), which options read where they stand;
5. the pins file (`pins FILE:LINE`, filled in by options.inputs);
6. the defaults (`default`, defaults.py).

`collect` yields a `Sourced`: the values a user gave, and for every flag of the task where its
value came from. A value equal to its default is still the user's (`--vision-tag v0.16.0` beats a
pins file that says v0.17.0). Every value is checked for its flag's type on the way in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from .. import defaults
from ..errors import ConfigError
from ..util import closest
from ..values import yamlfile
from ..values.locations import redact
from . import flags

DEFAULT = "default"
FLAG = "flag"
NAME = "musa_docker.yaml"      # the config file's name in the working dir, ~ (as .musa_docker.yaml) and /etc
ENV_PREFIX = "MUSA_DOCKER_"


@dataclass(frozen=True)
class Sourced:
    """A task's values and their sources. `values` holds only what a user gave (flag, variable,
    config file, build-all entry); a key absent from it takes its default, which options apply."""

    task: str                                        # "build-base"
    values: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)
    configs: Tuple["ConfigFile", ...] = ()           # the config files read, highest first

    def source(self, key: str) -> str:
        return self.sources.get(key, DEFAULT)

    def given(self, key: str) -> bool:
        return self.source(key) != DEFAULT

    @classmethod
    def of(cls, task: str, values: Mapping[str, Any], source: str = FLAG) -> "Sourced":
        """Values from one place (a build-all entry, a test): each value not None is from `source`."""
        given = {k: v for k, v in values.items() if v not in (None, [], ())}
        return cls(task, given, {k: source for k in given})


@dataclass(frozen=True)
class ConfigFile:
    """One config file's keys: at the top and per task section, each with its value and line."""

    path: Path
    top: Mapping[str, Tuple[Any, int, str]]                      # key -> (value, line, text)
    sections: Mapping[str, Mapping[str, Tuple[Any, int, str]]]   # "build_base" -> key -> ...

    def where(self, line: int) -> str:
        return f"{self.path}:{line}" if line else str(self.path)


def _item(node: yaml.Node, loader: yaml.SafeLoader) -> Tuple[Any, int, str]:
    value = loader.construct_object(node, deep=True)
    text = node.value if isinstance(node, yaml.ScalarNode) and not node.style else ""
    return value, node.start_mark.line + 1, text


def load(path: Path) -> ConfigFile:
    """Read a config file with the line of every key. Unknown keys are errors with FILE:LINE and the
    closest real key."""
    sections = {spec.section: spec for spec in flags.TASKS.values()}
    top_keys = {row.name for spec in flags.TASKS.values() for row in spec.rows}
    root = yamlfile.compose(path, "config file", f"config file {path}")
    if root is None:
        return ConfigFile(path, {}, {})
    if not isinstance(root, yaml.MappingNode):
        kind = {yaml.SequenceNode: "list"}.get(type(root), "single value")
        raise ConfigError(f"config file {path} holds a {kind}, not keys and values: write `key: value` lines, "
                          "e.g. `tag: \"2026.11\"` or `build_base:` and its keys")
    top, secs, lines, loader = {}, {}, {}, yaml.SafeLoader("")
    for key_node, value_node in root.value:
        key = str(key_node.value)
        lines[key] = key_node.start_mark.line + 1
        if key in sections and isinstance(value_node, yaml.MappingNode):
            own = {}
            for k_node, v_node in value_node.value:
                own[str(k_node.value)] = _item(v_node, loader)
                lines[f"{key}.{k_node.value}"] = k_node.start_mark.line + 1
            secs[key] = own
        elif key in sections and key not in top_keys:      # `verify: true`, `pins: FILE` are flags
            raise ConfigError(f"{path}:{lines[key]}: {key} is a task's section: give it keys, "
                              f"e.g. `{key}:` then `  tag: \"2026.11\"` on the next line")
        else:
            top[key] = _item(value_node, loader)
    config = ConfigFile(path, top, secs)
    _check_keys(config, sections, top_keys, lines)
    return config


def _check_keys(config: ConfigFile, sections, top_keys, lines) -> None:
    for key in config.top:
        if key not in top_keys:
            raise ConfigError(_unknown(config, key, lines.get(key, 0), sorted(top_keys | set(sections))))
    for section, keys in config.sections.items():
        known = sorted(row.name for row in sections[section].rows)
        for key in keys:
            if key not in known:
                raise ConfigError(_unknown(config, key, lines.get(f"{section}.{key}", 0), known,
                                           f" in {section}"))


def _unknown(config: ConfigFile, key: str, line: int, known: Sequence[str], where: str = "") -> str:
    close = closest(key.replace("-", "_"), known)
    hint = f"did you mean {close}?" if close else "see `musa-docker help TASK` for the keys a task takes"
    return f"{config.where(line)}: unknown key {key!r}{where}: {hint}"


def collect(task: str, given: Mapping[str, Any], env: Mapping[str, str], files: Sequence[ConfigFile] = ()) -> Sourced:
    """The values of `task` from the command line (`given`: None where a flag was not given), the
    environment and the config files (highest first), each checked for its flag's type, with
    where each came from. Raises ConfigError."""
    spec = flags.TASKS[task]
    values: Dict[str, Any] = {}
    sources: Dict[str, str] = {}
    for row in spec.rows:
        key = row.name
        if given.get(key) not in (None, []):
            values[key], sources[key] = given[key], FLAG
            continue
        found = _from_env(spec, row, env) or _from_files(spec, row, files)
        if found:
            values[key], sources[key] = found
        elif row.old_env and env.get(row.old_env):
            sources[key] = f"env ${row.old_env}"
    return Sourced(task, values, sources, tuple(files))


def _from_env(spec, row, env) -> Optional[Tuple[Any, str]]:
    for name in (f"{ENV_PREFIX}{spec.section.upper()}_{row.name.upper()}", f"{ENV_PREFIX}{row.name.upper()}"):
        if name in env:
            value = flags.checked(row, env[name], f"${name}")
            if value not in (None, []):
                return value, f"env ${name}"
    return None


def _from_files(spec, row, files: Sequence[ConfigFile]) -> Optional[Tuple[Any, str]]:
    for config in files:
        for table in (config.sections.get(spec.section, {}), config.top):
            if row.name in table:
                value, line, text = table[row.name]
                where = config.where(line)
                value = flags.checked(row, value, "a config file", at=where, text=text)
                if value is not None:
                    return value, where
    return None


def config_files(explicit: Optional[Path], cwd: Path, env: Mapping[str, str]) -> List[ConfigFile]:
    """The config files of a run, highest first: the one named with -f/--config (it must exist),
    then musa_docker.yaml in the working dir, ~/.musa_docker.yaml, /etc/musa_docker.yaml where they
    exist. Only YAML is read: a file of code is never run as config. Raises ConfigError."""
    found = []
    if explicit is not None:
        if explicit.suffix not in (".yaml", ".yml", ".json"):
            raise ConfigError(f"--config {explicit}: a config file is YAML (.yaml, .yml, or JSON as .json); nothing "
                              "else is read")
        if not explicit.is_file():
            raise ConfigError(f"--config {explicit} does not exist: check the path")
        found.append(explicit)
    home = env.get("HOME")
    for path in [cwd / NAME, cwd / NAME.replace(".yaml", ".yml")] + \
            ([Path(home) / f".{NAME}"] if home else []) + [Path("/etc") / NAME]:
        if path.is_file() and path not in found:
            found.append(path)
    return [load(path) for path in found]


def shown(key: str, values: Mapping[str, Any], env: Mapping[str, str], section: str, source: str) -> str:
    """A value as the plan's inputs and `config` show it: what was given, else the old scripts'
    variable's, else the default; a list joined; credentials redacted; `(none)` for nothing."""
    value = values.get(key)
    if empty(value) and source.startswith("env $"):
        value = env.get(source[5:])
    if empty(value):
        value = defaults.default(section, key)
    if isinstance(value, (list, tuple)):
        value = ", ".join(str(v) for v in value)
    return "(none)" if empty(value) else redact(str(value))


def empty(value) -> bool:
    """Nothing given: None, an empty text or an empty list."""
    return value in (None, "", [], ())


def sourced(task: str, values: "Mapping[str, Any] | Sourced") -> Sourced:
    """`values` as a Sourced: a command called from Python (a build-all entry, a test) with
    plain flag values gets them as given on the command line."""
    if isinstance(values, Sourced):
        return values
    return Sourced.of(task.replace("_", "-"), values)
