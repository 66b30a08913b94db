"""`musa-docker`: the same tasks as `invoke` sees in the repo root, from anywhere.

Its config files and variables carry the project's name: musa_docker.yaml (in the working dir,
~/.musa_docker.yaml, /etc/musa_docker.yaml) and MUSA_DOCKER_* variables.
"""

import errno
import os
import re

import yaml
from invoke import Config, Exit, ParseError, Program

from . import __version__
from .values import yamlfile
from .tasks import ns


class MusaConfig(Config):
    prefix = "musa_docker"

    def _load_yaml(self, path):
        """A config file that is not YAML, or not a mapping of keys, is one `error:` line."""
        try:
            with open(path) as fd:
                data = yaml.safe_load(fd)
        except yaml.YAMLError as err:
            raise Exit(f"error: config file {path}{yamlfile.where(err)} is not YAML ({yamlfile.problem(err)}): "
                       "fix it, or move it away", code=2) from None
        except OSError as err:
            if err.errno == errno.ENOENT:
                raise     # invoke looks for each file this way
            raise Exit(f"error: config file {path} cannot be read ({err.strerror}): fix its permissions, "
                       "or move it away", code=2) from None
        if data is not None and not isinstance(data, dict):
            raise Exit(f"error: config file {path} holds a {type(data).__name__}, not keys and values: "
                       "write `key: value` lines, e.g. `tag: \"2026.11\"` or `build_base:` and its keys", code=2)
        return data

    _load_yml = _load_yaml


def parse_error(err: ParseError, binary: str) -> Exit:
    """invoke's own parse errors (`No idea what '--bogus' is!`, a flag missing its value, an
    unknown task) as one `error:` line naming the flag and where its help is."""
    task = getattr(err.context, "name", None)
    helped = f"{binary} {task} --help" if task else f"{binary} --help"
    text = str(err)
    unknown = re.fullmatch(r"No idea what '(.*)' is!", text, re.S)
    needs = re.fullmatch(r"Flag <Argument: (\S+).*> needed value and was not given one!", text, re.S)
    if unknown and unknown.group(1).startswith("-"):
        what = f"{task} has no flag {unknown.group(1)}" if task else f"unknown flag {unknown.group(1)}"
    elif unknown and task:
        what = f"{task} takes no argument {unknown.group(1)!r}, and no task has that name"
    elif unknown:
        what = f"no task named {unknown.group(1)!r} (`{binary} --list` lists them)"
    elif needs:
        what = f"--{needs.group(1).replace('_', '-')} needs a value"
    else:
        what = text.rstrip("!")
    return Exit(f"error: {what}: see `{helped}`", code=2)


class MusaProgram(Program):
    def parse_core(self, argv) -> None:
        try:
            super().parse_core(argv)
        except ParseError as err:
            raise parse_error(err, self.binary_names[0] if self.binary_names else "musa-docker") from None

    def parse_tasks(self) -> None:
        try:
            super().parse_tasks()
        except ParseError as err:
            raise parse_error(err, self.binary_names[0] if self.binary_names else "musa-docker") from None

    def update_config(self, merge: bool = True) -> None:
        # With a namespace given (not a tasks.py found on disk) invoke has no project dir: the
        # working dir is the project, as for `invoke` run in the repo root.
        self.config.set_project_location(os.getcwd())
        self.config.load_project(merge=False)
        super().update_config(merge)


program = MusaProgram(namespace=ns, version=__version__, name="musa-docker", binary="musa-docker",
                      binary_names=["musa-docker"],
                      config_class=MusaConfig)
