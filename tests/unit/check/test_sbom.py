"""The SBOM documents from an image's labels and what the probe saw: both validate against their
schemas with the real validators, and every input of the plan is there with its sha256 or commit."""

import json

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from musa_docker.check import probe, sbom

COMMIT_TM, COMMIT_VISION = "c" * 40, "d" * 40
SHA_MUSA, SHA_WHEEL = "a" * 64, "b" * 64
LABELS = {
    "musa_docker.kind": "release", "musa_docker.system": "debian:12", "musa_docker.inputs": "9" * 64,
    "org.opencontainers.image.created": "2026-12-07T23:40:00Z",
    "musa_docker.artifact.musa_toolkits.sha256": SHA_MUSA,
    "musa_docker.artifact.musa_toolkits.url": "https://vendor.example.com/musa/musa_toolkits_4.0.0.tar.gz",
    "musa_docker.version.musa": "4.0.0",
    "musa_docker.artifact.torch_wheel.sha256": SHA_WHEEL,
    "musa_docker.artifact.torch_wheel.url": "http://127.0.0.1:8000/torch-2.0.0-cp311-cp311-linux_x86_64.whl",
    "musa_docker.torch_musa.commit": COMMIT_TM,
    "musa_docker.torch_musa.url": "https://github.com/MooreThreads/torch_musa.git",
    "musa_docker.vision.commit": COMMIT_VISION, "musa_docker.vision.url": "file:///srv/src/vision",
    "musa_docker.musa_pip_index": "http://127.0.0.1:9000/simple/",
    "musa_docker.musa_wheels": "torchaudio==2.7.1+musa5.2.0",
    "musa_docker.apt.musa-toolkit-5-2": "5.2.0-1",
    "musa_docker.apt_source": "deb [trusted=yes] http://127.0.0.1:7000/musa bookworm main",
}
SEEN = probe.Seen(0, done=True, os={"ID": "debian", "VERSION_ID": "12", "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"},
                  dpkg=[["libc6", "2.36-9+deb12u4", "amd64"], ["musa-toolkit-5-2", "5.2.0-1", "amd64"],
                        ["tzdata", "2024a-0+deb12u1", "all"], ["libgcc-s1", "1:12.2.0-14", "amd64"]],
                  distributions=[["torch", "2.0.0"], ["torch_musa", "2.0.0"], ["torchaudio", "2.7.1+musa5.2.0"],
                                 ["torchvision", "0.16.0"], ["numpy", "1.26.4"]],
                  musa_wheels=[["torchaudio", "2.7.1+musa5.2.0", "5" * 64,
                                "torchaudio-2.7.1+musa5.2.0-cp311-cp311-linux_x86_64.whl"]])
SUBJECT = sbom.Subject("team/release:2026", "sha256:" + "e" * 64, LABELS, "2026-12-07T23:40:00Z",
                       base="debian:12", base_id="sha256:" + "f" * 64, chain_id="sha256:" + "1" * 64)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sbom")
    docs = sbom.documents(SUBJECT, SEEN)
    paths = {}
    for fmt, data in docs.items():
        paths[fmt] = tmp / ("doc" + sbom.SUFFIX[fmt])
        paths[fmt].write_bytes(data)
    return {fmt: json.loads(data) for fmt, data in docs.items()}, paths, docs


def test_both_documents_validate_against_their_schemas(written):
    _, paths, docs = written
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(docs["cyclonedx"].decode()) is None
    problems = validate_full_spdx_document(parse_file(str(paths["spdx"])))
    assert [p.validation_message for p in problems] == []


def test_the_validators_do_refuse_a_broken_document(written, tmp_path):
    docs, _, _ = written
    broken = dict(docs["cyclonedx"], components=[{"type": "no-such-type", "name": "x"}])
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(broken)) is not None
    spdx = dict(docs["spdx"])
    spdx["packages"] = [dict(spdx["packages"][1], downloadLocation="http://127.0.0.1:8000/x.whl")]
    (tmp_path / "bad.spdx.json").write_text(json.dumps(spdx))
    assert validate_full_spdx_document(parse_file(str(tmp_path / "bad.spdx.json")))


def _components(doc):
    return {c["bom-ref"]: c for c in doc["components"]}


def test_image_os_and_dpkg_packages_with_distro_qualified_purls(written):
    cdx = written[0]["cyclonedx"]
    image = cdx["metadata"]["component"]
    assert (image["type"], image["name"], image["version"]) == ("container", "team/release", "2026")
    assert "sha256:" + "e" * 64 in image["description"]
    assert image["pedigree"]["ancestors"][0]["name"] == "debian"
    found = _components(cdx)
    assert found["os"]["type"] == "operating-system" and (found["os"]["name"], found["os"]["version"]) == ("debian", "12")
    assert "purl" not in found["os"]
    assert found["deb:libc6:amd64"]["purl"] == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
    assert found["deb:libgcc-s1:amd64"]["purl"].startswith("pkg:deb/debian/libgcc-s1@1%3A12.2.0-14?")
    sdk = found["deb:musa-toolkit-5-2:amd64"]
    assert "repository_url=http://127.0.0.1:7000/musa" in sdk["purl"]


def test_python_distributions_with_escaped_local_versions_and_the_musa_index(written):
    found = _components(written[0]["cyclonedx"])
    audio = found["pypi:torchaudio"]["purl"]
    assert audio.startswith("pkg:pypi/torchaudio@2.7.1%2Bmusa5.2.0?")
    assert "repository_url=http://127.0.0.1:9000/simple/" in audio
    # the wheel the index served, as pip's report named it: its sha256 and file name
    assert found["pypi:torchaudio"]["hashes"] == [{"alg": "SHA-256", "content": "5" * 64}]
    assert "file_name=torchaudio-2.7.1%2Bmusa5.2.0-cp311-cp311-linux_x86_64.whl" in audio
    assert found["pypi:numpy"]["purl"] == "pkg:pypi/numpy@1.26.4"
    assert found["pypi:torch-musa"]["purl"] == "pkg:pypi/torch-musa@2.0.0"


def test_every_input_is_there_with_its_sha256_or_commit(written):
    cdx, spdx = written[0]["cyclonedx"], written[0]["spdx"]
    found = _components(cdx)
    musa = found["artifact:musa_toolkits"]
    assert musa["hashes"] == [{"alg": "SHA-256", "content": SHA_MUSA}] and musa["version"] == "4.0.0"
    assert musa["purl"].startswith("pkg:generic/musa_toolkits@4.0.0?")
    assert musa["externalReferences"][0]["url"] == LABELS["musa_docker.artifact.musa_toolkits.url"]
    assert found["artifact:torch_wheel"]["hashes"][0]["content"] == SHA_WHEEL
    assert found["source:torch_musa"]["version"] == COMMIT_TM
    assert found["source:torch_musa"]["externalReferences"] == [{"type": "vcs", "url": LABELS["musa_docker.torch_musa.url"]}]
    assert found["source:vision"]["version"] == COMMIT_VISION
    packages = {p["name"]: p for p in spdx["packages"]}
    assert packages["musa_toolkits"]["checksums"] == [{"algorithm": "SHA256", "checksumValue": SHA_MUSA}]
    assert packages["musa_toolkits"]["downloadLocation"] == LABELS["musa_docker.artifact.musa_toolkits.url"]
    # spdx-tools refuses a download location without a top-level domain: the hash stays
    assert packages["torch_wheel"]["downloadLocation"] == "NOASSERTION"
    assert packages["torch_wheel"]["checksums"][0]["checksumValue"] == SHA_WHEEL
    assert packages["torch_musa"]["downloadLocation"] == f"git+https://github.com/MooreThreads/torch_musa.git@{COMMIT_TM}"
    assert packages["vision"]["downloadLocation"] == "NOASSERTION" and packages["vision"]["versionInfo"] == COMMIT_VISION


def test_relationships_contains_built_from_and_descends_from(written):
    cdx, spdx = written[0]["cyclonedx"], written[0]["spdx"]
    deps = {d["ref"]: d["dependsOn"] for d in cdx["dependencies"]}
    assert set(deps["image"]) == set(_components(cdx))
    assert deps["pypi:torch-musa"] == ["source:torch_musa"]
    assert deps["pypi:torch"] == ["artifact:torch_wheel"]
    assert deps["pypi:torchvision"] == ["source:vision"]
    ids = {p["SPDXID"]: p["name"] for p in spdx["packages"]}
    rel = {(ids.get(r["spdxElementId"], r["spdxElementId"]), r["relationshipType"], ids[r["relatedSpdxElement"]])
           for r in spdx["relationships"]}
    assert ("torch_musa", "GENERATED_FROM", "torch_musa") in rel
    assert ("team/release", "DESCENDANT_OF", "debian") in rel
    assert ("team/release", "CONTAINS", "libc6") in rel
    assert ("SPDXRef-DOCUMENT", "DESCRIBES", "team/release") in rel


def test_no_credentials_are_written():
    from musa_docker.check.sbom import _clean
    assert _clean("https://user:t0ken@vendor.example.com/m.tar.gz?token=abc&x=1") == "https://vendor.example.com/m.tar.gz?x=1"
    assert _clean("/srv/mudnn.tar") == "file:///srv/mudnn.tar"


def test_the_same_image_gives_the_same_documents():
    assert sbom.documents(SUBJECT, SEEN) == sbom.documents(SUBJECT, SEEN)


def test_after_a_push_the_image_carries_its_oci_purl_and_a_pulled_base_its_own():
    pushed = sbom.Subject("team/release:2026", SUBJECT.image_id, LABELS, SUBJECT.created,
                          digests=("registry.example.com/team/release@sha256:" + "7" * 64,), base="ubuntu:22.04",
                          base_digests=("ubuntu@sha256:" + "8" * 64,))
    docs = sbom.documents(pushed, SEEN)
    image = json.loads(docs["cyclonedx"])["metadata"]["component"]
    assert image["purl"] == ("pkg:oci/release@sha256%3A" + "7" * 64
                             + "?repository_url=registry.example.com/team/release&tag=2026")
    assert image["pedigree"]["ancestors"][0]["purl"] == ("pkg:oci/ubuntu@sha256%3A" + "8" * 64
                                                         + "?repository_url=ubuntu&tag=22.04")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(docs["cyclonedx"].decode()) is None


def test_chain_id_follows_the_oci_definition():
    import hashlib
    a, b = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    assert sbom.chain_id([a]) == a
    assert sbom.chain_id([a, b]) == "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
