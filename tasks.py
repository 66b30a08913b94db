"""Exposes the musa_docker task collection to `invoke` in the repo root."""

from musa_docker.tasks import ns  # noqa: F401
