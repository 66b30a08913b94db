"""A real registry on 127.0.0.1: Debian's `docker-registry`, open or behind htpasswd auth, on a
free port with its storage in a directory of the test's. The engine treats 127.0.0.0/8 registries
as insecure, so plain http works."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(host: str) -> bool:
    try:
        urllib.request.urlopen(f"http://{host}/v2/", timeout=1).close()
        return True
    except urllib.error.HTTPError:
        return True          # 401 from the auth registry: it is up
    except OSError:
        return False


@contextlib.contextmanager
def serve_registry(root: Path, htpasswd: Optional[Path] = None) -> Iterator[str]:
    """Run `docker-registry serve` on a free 127.0.0.1 port with its storage under `root`;
    yield its host:port; stop it at the end."""
    binary = shutil.which("docker-registry")
    assert binary, "no docker-registry on PATH: run `bash scripts/engine.sh`, which installs Debian's docker-registry"
    root.mkdir(parents=True, exist_ok=True)
    auth = f"auth:\n  htpasswd:\n    realm: musa-docker-test\n    path: {htpasswd}\n" if htpasswd else ""
    for _ in range(3):      # another process may take the free port before the registry binds it
        host = f"127.0.0.1:{free_port()}"
        config = root / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'storage'}\n"
            f"http:\n  addr: {host}\n{auth}"
        )
        log = open(root / "registry.log", "wb")
        process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while process.poll() is None and not _answers(host) and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None and _answers(host):
            break
        process.kill()
        process.wait()
        log.close()
    else:
        pytest.fail(f"docker-registry did not start: {(root / 'registry.log').read_text()[-2000:]}")
    try:
        yield host
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def attached(host: str, name: str, tag: str, index_digest: str, credentials=None) -> tuple:
    """What `--attest` left in the registry for `name:tag`, read as a scanner reads it: the tag names
    an OCI index (`index_digest`) of one image manifest and one attestation manifest about it. Returns
    (the image manifest's digest, {predicate type: in-toto statement})."""
    import json
    from musa_docker.fetch.registry import Registry
    registry = Registry(host, name, credentials, insecure=True)
    kind, digest, body = registry.manifest(tag)
    assert kind == "application/vnd.oci.image.index.v1+json" and digest == index_digest, (kind, digest)
    entries = json.loads(body)["manifests"]
    assert len(entries) == 2, entries
    image, attestation = entries
    assert attestation["platform"] == {"architecture": "unknown", "os": "unknown"}, attestation
    assert attestation["annotations"] == {"vnd.docker.reference.digest": image["digest"],
                                          "vnd.docker.reference.type": "attestation-manifest"}, attestation
    _, _, manifest = registry.manifest(attestation["digest"])
    found = {}
    for layer in json.loads(manifest)["layers"]:
        assert layer["mediaType"] == "application/vnd.in-toto+json", layer
        found[layer["annotations"]["in-toto.io/predicate-type"]] = json.loads(registry.blob(layer["digest"]))
    return image["digest"], found
