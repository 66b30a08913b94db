"""`--attest`: an image's SBOM attached beside it in a real registry (Debian's `docker-registry` on
127.0.0.1, behind htpasswd), stored as BuildKit stores attestations, with the credentials a push
takes from the docker config. The build tasks' `--push --attest` is run end to end in
tests/e2e/test_wheel.py; here the attachment itself, on an image the engine pushed."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from conftest import remove_images
from musa_docker.check import attest
from musa_docker.engine.api import Engine
from musa_docker.errors import PushError
from musa_docker.fetch.registry import Registry
from registry import attached, serve_registry
from test_push_engine import PASSWORD, USER, htpasswd_line, image  # noqa: F401  (fixtures)

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("attest-registry")
    (root / "htpasswd").write_text(htpasswd_line(USER, PASSWORD) + "\n")
    with serve_registry(root, root / "htpasswd") as host:
        yield host


@pytest.fixture
def logged_in(tmp_path, monkeypatch, auth_registry):
    """A docker config holding the registry's credentials, as `docker login` writes it."""
    config = tmp_path / "docker-config"
    config.mkdir()
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {auth_registry: {"auth": token}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    return config


def test_the_sbom_is_attached_beside_the_pushed_image_and_the_tag_still_pulls(engine, image, auth_registry,
                                                                            logged_in):
    api = Engine()
    name = f"musa-docker-test/attest-{uuid.uuid4().hex[:8]}"
    ref = f"{auth_registry}/{name}:v1"
    engine.images.get(image).tag(ref)
    try:
        login = api.registry_login(auth_registry)
        assert login == (USER, PASSWORD)
        assert api.insecure_registry(auth_registry)     # 127.0.0.0/8: plain HTTP, as the engine pushes
        events = list(api.push(ref, {"username": USER, "password": PASSWORD}))
        assert not any("error" in e for e in events), events
        registry = Registry(auth_registry, name, login, insecure=True)
        _, pushed, _ = registry.manifest("v1")
        docs = {"spdx": json.dumps({"spdxVersion": "SPDX-2.3", "name": ref}).encode(),
                "cyclonedx": json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6"}).encode()}

        index = attest.attach(registry, ref, "v1", docs)

        image_digest, found = attached(auth_registry, name, "v1", index, login)
        assert image_digest == pushed
        assert set(found) == {"https://spdx.dev/Document", "https://cyclonedx.org/bom"}
        spdx = found["https://spdx.dev/Document"]
        assert spdx["_type"] == "https://in-toto.io/Statement/v0.1" and spdx["predicate"]["name"] == ref
        assert spdx["subject"][0]["digest"] == {"sha256": pushed.split(":")[1]}
        assert spdx["subject"][0]["name"].startswith(f"pkg:docker/{auth_registry}/{name}@v1?platform=linux%2F")

        # attaching again replaces the image's attestation, it does not pile up
        again = attest.attach(registry, ref, "v1", {"spdx": docs["spdx"]})
        assert again != index
        assert set(attached(auth_registry, name, "v1", again, login)[1]) == {"https://spdx.dev/Document"}

        # the engine pulls the tag as before: the index leads it to the same image
        source_id = engine.images.get(image).id
        engine.images.remove(ref)
        assert engine.images.pull(ref).id == source_id
    finally:
        remove_images(engine, ref)


def test_a_registry_that_refuses_the_credentials_is_one_clear_error(engine, image, auth_registry):
    registry = Registry(auth_registry, "musa-docker-test/attest-refused", (USER, "not-the-password"), insecure=True)
    with pytest.raises(PushError) as err:
        attest.attach(registry, "x", "v1", {"spdx": b"{}"})
    assert "not-the-password" not in str(err.value)
    assert "refused" in str(err.value) and "docker login" in str(err.value)
