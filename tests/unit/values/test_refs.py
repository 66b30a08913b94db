"""Image references split as docker reads them: where a push goes."""

import pytest

from musa_docker.values import refs


@pytest.mark.parametrize("ref, split", [
    ("app", (None, "app", "latest")),
    ("team/app:1", (None, "team/app", "1")),
    ("localhost/app", ("localhost", "app", "latest")),
    ("127.0.0.1:5000/team/app:2", ("127.0.0.1:5000", "team/app", "2")),
    ("reg.example.com/app", ("reg.example.com", "app", "latest")),
])
def test_split_reference(ref, split):
    assert refs.split_reference(ref) == split


@pytest.mark.parametrize("ref, where", [
    ("musa-dev:1", "Docker Hub"),
    ("team/musa-dev:1", "Docker Hub"),
    ("127.0.0.1:5000/musa-dev:1", "127.0.0.1:5000"),
])
def test_registry_of_names_docker_hub_for_a_bare_name(ref, where):
    assert refs.registry_of(ref) == where
