"""YAML files a user writes (build-all's matrix, the pins file, config files): read as nodes, so a
later error can name its line; a file that is not YAML is one ConfigError naming file and line."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..errors import ConfigError


def where(err: yaml.YAMLError) -> str:
    """`:LINE` of a YAML error (1-based), or "" when the parser gave no position."""
    mark = getattr(err, "problem_mark", None)
    return f":{mark.line + 1}" if mark else ""


def problem(err: yaml.YAMLError) -> str:
    return str(getattr(err, "problem", None) or err)


def compose(path: Path, flag: str, label: str) -> yaml.Node:
    """The file's node tree (None when empty). `flag` names the file where it cannot be read,
    `label` where it is not YAML."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{flag} {path} cannot be read: {err.strerror}") from err
    except ValueError:      # a NUL in the path: no file has that name
        raise ConfigError(f"{flag} {str(path)!r} cannot be read: a path holds no NUL character") from None
    try:
        return yaml.compose(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{label}{where(err)} is not YAML: {problem(err)}") from None


def number_hint(name: str, text: str) -> str:
    """What to do about a value YAML read as a number (`3.10` is 3.1, `2026` an int): quote it.
    `name` is its key, or "" for a key itself."""
    return f"quote it, e.g. {name}: \"{text}\"" if name else f"quote it, e.g. \"{text}\""
