"""`musa-docker`: the same tasks as `invoke` sees in the repo root, from anywhere.

Its config files and variables carry the project's name: musa_docker.yaml (in the working dir,
~/.musa_docker.yaml, /etc/musa_docker.yaml) and MUSA_DOCKER_* variables.
"""

import os

from invoke import Config, Program

from . import __version__
from .tasks import ns


class MusaConfig(Config):
    prefix = "musa_docker"


class MusaProgram(Program):
    def update_config(self, merge: bool = True) -> None:
        # With a namespace given (not a tasks.py found on disk) invoke has no project dir: the
        # working dir is the project, as for `invoke` run in the repo root.
        self.config.set_project_location(os.getcwd())
        self.config.load_project(merge=False)
        super().update_config(merge)


program = MusaProgram(namespace=ns, version=__version__, name="musa-docker", binary="musa-docker",
                      binary_names=["musa-docker"],
                      config_class=MusaConfig)
