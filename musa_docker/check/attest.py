"""An image's SBOM attached beside it in the registry, as BuildKit attaches its own (`--attest`).

BuildKit stores an attestation as a manifest of in-toto statements next to the image, in the image
index the tag names: the index lists the image's manifest (with its platform) and an attestation
manifest (platform unknown/unknown, annotated `vnd.docker.reference.type: attestation-manifest` and
the image manifest's digest), whose layers are the statements (`application/vnd.in-toto+json`,
annotated with their predicate type). Scanners that read attestations (docker scout, `docker
buildx imagetools inspect --format '{{json .SBOM}}'`, trivy's `--sbom-sources oci`) then take the
plan's SBOM instead of scanning: the MUSA SDK from vendor archives, the MUSA index's wheels and the
source trees, which a scanner misses or mistakes, are all in it.

The engine pushes the image; `attach` then reads what the tag names, adds the statements (the SPDX
document under https://spdx.dev/Document, the CycloneDX one under https://cyclonedx.org/bom) and
points the tag at the new index. Attaching again replaces the image's earlier attestation. The
documents and statements are built here as plain JSON; fetch/registry.py carries them. Raises
PushError.
"""

from __future__ import annotations

import hashlib
import json
from typing import List, Mapping, Tuple
from urllib.parse import quote

from ..errors import PushError
from ..fetch.registry import Registry
from . import sbom

STATEMENT = "https://in-toto.io/Statement/v0.1"
PREDICATE = {sbom.SPDX: "https://spdx.dev/Document", sbom.CYCLONEDX: "https://cyclonedx.org/bom"}
IN_TOTO = "application/vnd.in-toto+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"
ATTESTATION = "attestation-manifest"
UNKNOWN = {"architecture": "unknown", "os": "unknown"}


def _json(data) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True).encode()


def statement(fmt: str, document: bytes, ref: str, digest: str, platform: Mapping[str, str]) -> bytes:
    """The in-toto statement of one SBOM document about the image manifest `digest` of `ref`."""
    shown = "/".join(filter(None, (platform.get("os"), platform.get("architecture"), platform.get("variant"))))
    name, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    return _json({
        "_type": STATEMENT,
        "predicateType": PREDICATE[fmt],
        "subject": [{"name": f"pkg:docker/{name}@{tag}?platform={quote(shown, safe='')}",
                     "digest": {"sha256": digest.split(":", 1)[1]}}],
        "predicate": json.loads(document),
    })


def descriptor(media_type: str, digest: str, data_size: int, **extra) -> dict:
    return {"mediaType": media_type, "digest": digest, "size": data_size, **extra}


def attestation_manifest(layers: List[Tuple[str, bytes]], digests: List[str]) -> Tuple[bytes, bytes]:
    """(config, manifest) of an attestation manifest over `layers` (predicate type, statement), whose
    blobs have `digests`."""
    config = _json({**UNKNOWN, "config": {}, "rootfs": {"type": "layers", "diff_ids": digests}})
    return config, _json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, _digest(config), len(config)),
        "layers": [descriptor(IN_TOTO, digest, len(data), annotations={"in-toto.io/predicate-type": kind})
                   for (kind, data), digest in zip(layers, digests)],
    })


def index(entries: List[dict]) -> bytes:
    return _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _is_attestation(entry: Mapping) -> bool:
    return (entry.get("annotations") or {}).get(REFERENCE_TYPE) == ATTESTATION


def attach(registry: Registry, ref: str, tag: str, docs: Mapping[str, bytes]) -> str:
    """Attach `docs` (format -> SBOM document) to the image `tag` names in `registry`; point the tag at
    the index holding both. Returns the index's digest (what the tag names now)."""
    kind, digest, body = registry.manifest(tag)
    found = json.loads(body)
    if kind in (OCI_INDEX, DOCKER_LIST) or found.get("manifests") is not None:
        images = [e for e in found.get("manifests") or [] if not _is_attestation(e)]
        if len(images) != 1:
            raise PushError(f"{ref} names {len(images)} images for several platforms; --attest attaches "
                            "the SBOM of one image: push each platform under its own tag")
        image = images[0]
    else:
        config = json.loads(registry.blob(found["config"]["digest"]))
        platform = {k: config[k] for k in ("architecture", "os", "variant") if config.get(k)}
        image = descriptor(kind, digest, len(body), platform=platform)
    platform = image.get("platform") or {}
    layers = [(PREDICATE[fmt], statement(fmt, docs[fmt], ref, image["digest"], platform))
              for fmt in sbom.FORMATS if fmt in docs]
    digests = [registry.put_blob(data) for _, data in layers]
    config, manifest = attestation_manifest(layers, digests)
    registry.put_blob(config)
    attested = registry.put_manifest(_digest(manifest), OCI_MANIFEST, manifest)
    entries = [image, descriptor(OCI_MANIFEST, attested, len(manifest), platform=dict(UNKNOWN),
                                 annotations={REFERENCE_DIGEST: image["digest"], REFERENCE_TYPE: ATTESTATION})]
    return registry.put_manifest(tag, OCI_INDEX, index(entries))

