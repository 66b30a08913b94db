"""`python -m musa_docker`: the musa-docker program."""

from .cli import run

run()
