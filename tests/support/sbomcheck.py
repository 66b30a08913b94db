"""The SBOM documents a build wrote, found from its report, checked with the real validators."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Dict

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

SUFFIXES = {"cyclonedx": ".cdx.json", "spdx": ".spdx.json"}


def beside_the_log(stdout: str) -> Dict[str, Path]:
    """format -> the document written beside the build log the report names."""
    log = Path(re.search(r"^build log: (.+)$", stdout, re.M).group(1))
    return {fmt: log.with_suffix("").with_name(log.stem + suffix) for fmt, suffix in SUFFIXES.items()}


def load_valid(paths: Dict[str, Path]) -> Dict[str, dict]:
    """Each document, after its validator found nothing wrong with it (AssertionError otherwise)."""
    found = {}
    if "cyclonedx" in paths:
        text = paths["cyclonedx"].read_text()
        error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
        assert error is None, f"{paths['cyclonedx']}: {error}"
        found["cyclonedx"] = json.loads(text)
    if "spdx" in paths:
        problems = validate_full_spdx_document(parse_file(str(paths["spdx"])))
        assert not problems, [p.validation_message for p in problems]
        found["spdx"] = json.loads(paths["spdx"].read_text())
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def components(cdx: dict) -> Dict[str, dict]:
    return {c["bom-ref"]: c for c in cdx["components"]}


def image_config(engine, ref: str) -> dict:
    """The image's own config JSON (as `docker save` carries it): labels, history, and BuildKit's
    inline cache (`moby.buildkit.cache.v0`), which `docker inspect` does not show."""
    import io
    import tarfile
    data = b"".join(engine.api.get_image(ref))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        return json.load(tar.extractfile(manifest[0]["Config"]))
