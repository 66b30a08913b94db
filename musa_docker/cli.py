"""`musa-docker`: the same tasks as `invoke` sees in the repo root, from anywhere."""

from invoke import Program

from . import __version__
from .tasks import ns

program = Program(namespace=ns, version=__version__, name="musa-docker", binary="musa-docker")
