"""What is in an image, in the formats scanners read: a CycloneDX 1.6 and an SPDX 2.3 JSON document.

Scanners read package databases: they miss the MUSA SDK installed from vendor archives, mistake
the MUSA index's wheels for PyPI's torch, and never see the source trees built in the dev image.
The tool knows each of those exactly, and the image carries it in its labels (the plan's inputs:
`musa_docker.<repo>.commit` and `.url`, `musa_docker.artifact.<name>.sha256` and `.url`, the apt
pins, the MUSA index and its wheels); what the package databases say is read from the image by
the probe (common/probe_image.py: /etc/os-release, dpkg's status file, the Python distributions).
`documents` turns both into the two documents, as plain JSON: no runtime dependency.

Each document holds the image (a container), its OS, every dpkg package with a distro-qualified
`pkg:deb` purl, every Python distribution with a `pkg:pypi` purl (a MUSA-index one with its
`repository_url`), each downloaded input as `pkg:generic` with its URL and sha256, each source tree
with its VCS URL and commit, and the relations: the image contains them, a distribution built from
a tree or installed from a wheel comes from it, the image descends from its base.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote, urlsplit

from .. import __version__
from ..engine.api import Engine
from ..errors import ImageMismatchError
from ..plan.plan import Plan
from ..util import short_id
from ..values.locations import strip_credentials
from . import probe

CYCLONEDX, SPDX = "cyclonedx", "spdx"
FORMATS = (CYCLONEDX, SPDX)
SUFFIX = {CYCLONEDX: ".cdx.json", SPDX: ".spdx.json"}
LABEL = {CYCLONEDX: "musa_docker.sbom.cyclonedx", SPDX: "musa_docker.sbom.spdx"}
NOASSERTION = "NOASSERTION"

# The labels that carry what the plan knows beyond commits and sha256s (see provenance_labels).
MUSA_INDEX, MUSA_WHEELS, APT_SOURCE, PIP_INDEX = (
    "musa_docker.musa_pip_index", "musa_docker.musa_wheels", "musa_docker.apt_source", "musa_docker.pip_index")
# A vendor archive's version is the pins file's `versions:` entry of that name.
_VERSION_OF = {"musa_toolkits": "musa", "mudnn": "mudnn", "mccl": "mccl"}
# A source tree the dev image builds into a distribution: tree name -> the distribution's (PEP 503)
# name. pytorch's tree is source only; kineto, muAlg and muThrust go into torch_musa's build and MUSA_HOME.
_BUILT_FROM = {"torch_musa": "torch-musa", "vision": "torchvision", "audio": "torchaudio"}


def provenance_labels(plan: Plan) -> Dict[str, str]:
    """The labels beside the commits and sha256s that let an SBOM be written from the image alone:
    each repo's and each artifact's URL (credentials stripped), the apt source, the pip indexes and
    the MUSA wheels. Not part of the inputs digest: the same bytes from another URL are the same
    image."""
    labels = {f"musa_docker.{r.name}.url": _clean(r.url) for r in plan.repos}
    labels.update({f"musa_docker.artifact.{a.name}.url": _clean(a.location.url) for a in plan.artifacts})
    args = dict(plan.build.buildargs)
    for label, arg in ((MUSA_INDEX, "MUSA_PIP_INDEX_URL"), (MUSA_WHEELS, "MUSA_WHEELS"),
                       (APT_SOURCE, "MUSA_APT_SOURCE"), (PIP_INDEX, "PIP_INDEX_URL")):
        if args.get(arg):
            labels[label] = _clean(args[arg]) if "://" in args[arg] and " " not in args[arg] else args[arg]
    return labels


def _clean(url: str) -> str:
    """A URL without credentials; a local path as a file:// URL."""
    if url.startswith("file:") and not url.startswith("file://"):
        return url
    if "://" not in url:
        return "file://" + quote(url) if url.startswith("/") else url
    return strip_credentials(url)


# --- what the image holds ------------------------------------------------------------------------

@dataclass(frozen=True)
class Subject:
    """The image an SBOM describes: its reference, id, labels, registry digests and base image."""

    ref: str                                   # name:tag
    image_id: str
    labels: Mapping[str, str]
    created: str                               # YYYY-MM-DDThh:mm:ssZ
    digests: Tuple[str, ...] = ()              # name@sha256:… once pushed or pulled
    base: Optional[str] = None                 # the image it was built FROM
    base_id: Optional[str] = None
    chain_id: str = ""                         # of its layers (OCI ChainID): labels do not change it
    before_labels: bool = False                # the id is the one before the SBOM labels were added
    base_digests: Tuple[str, ...] = ()         # the base image's name@sha256:…, when it came from a registry

    @property
    def description(self) -> str:
        if self.before_labels:
            return (f"image {self.image_id} before its SBOM labels (musa_docker.sbom.*), which change only its "
                    f"config: its layers, rootfs chain id {self.chain_id}, stay")
        return f"image {self.image_id}, rootfs chain id {self.chain_id}"


def subject(engine: Engine, image_id: str, ref: str, before_labels: bool = False) -> Subject:
    """What the engine says of the image `image_id` (named `ref`) and of its base. Raises EngineError."""
    data = engine.inspect(image_id)
    labels = dict((data.get("Config") or {}).get("Labels") or {})
    created = labels.get("org.opencontainers.image.created") or _seconds(data.get("Created", ""))
    base = labels.get("musa_docker.base_image") or labels.get("musa_docker.system")
    found = engine.image(base) if base else None
    base_digests = tuple(engine.inspect(found.id).get("RepoDigests") or ()) if found else ()
    return Subject(ref, data["Id"], labels, created, tuple(data.get("RepoDigests") or ()), base,
                   found.id if found else None, chain_id((data.get("RootFS") or {}).get("Layers") or ()),
                   before_labels, base_digests)


def chain_id(diff_ids: Sequence[str]) -> str:
    """The OCI ChainID of a stack of layers: the first DiffID, then sha256 of `chain + " " + next`."""
    chain = ""
    for diff in diff_ids:
        chain = diff if not chain else "sha256:" + hashlib.sha256(f"{chain} {diff}".encode()).hexdigest()
    return chain


def _seconds(stamp: str) -> str:
    """An engine timestamp (`2026-01-02T03:04:05.123456789Z`) to the second, as SPDX wants it."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)", stamp or "")
    return (m.group(1) if m else "1970-01-01T00:00:00") + "Z"


def contents(engine: Engine, image_id: str) -> probe.Seen:
    """The OS, dpkg packages and Python distributions of the image, read by the probe in a
    throwaway container. Raises ImageMismatchError when its python does not run."""
    seen = probe.run_python(engine, image_id, probe.spec(contents=True))
    if not seen.done:
        raise ImageMismatchError(f"the image {short_id(image_id)} could not be read for its SBOM: `python` "
                                 f"in it ended with exit {seen.code} ({probe.last(seen.noise)})")
    return seen


# --- one model, two documents -------------------------------------------------------------------

@dataclass
class Part:
    """One thing the image holds or came from."""

    ref: str                        # unique in the document: deb:NAME:ARCH, pypi:NAME, artifact:NAME…
    kind: str                       # os | deb | pypi | artifact | source | base
    name: str
    version: str = ""
    purl: str = ""
    sha256: str = ""
    url: str = ""                   # where it was downloaded or cloned from, no credentials
    description: str = ""
    came_from: List[str] = field(default_factory=list)   # refs it was built or installed from


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _purl_version(version: str) -> str:
    return quote(version, safe=".-_~")


def _qualifiers(pairs: Sequence[Tuple[str, str]]) -> str:
    given = [(k, v) for k, v in sorted(pairs) if v]
    return ("?" + "&".join(f"{k}={quote(v, safe='/:.-_~')}" for k, v in given)) if given else ""


def parts(subject_: Subject, seen: probe.Seen) -> List[Part]:
    """Everything the documents list, from the image's labels and what the probe saw."""
    labels = subject_.labels
    out: List[Part] = []
    os_id = (seen.os.get("ID") or "").lower()
    os_version = seen.os.get("VERSION_ID") or ""
    if os_id:
        out.append(Part("os", "os", os_id, os_version, description=seen.os.get("PRETTY_NAME", "")))
    apt_versions = {k[len("musa_docker.apt."):]: v for k, v in labels.items()
                    if k.startswith("musa_docker.apt.") and not k.endswith(".sha256")}
    apt_url = _apt_url(labels.get(APT_SOURCE, ""))
    for name, version, arch in (row[:3] for row in seen.dpkg):
        qualifiers = [("arch", arch), ("distro", f"{os_id}-{os_version}" if os_version else os_id)]
        part = Part(f"deb:{name}:{arch}", "deb", name, version)
        if name in apt_versions:
            qualifiers.append(("repository_url", apt_url))
            part.url = apt_url
            part.sha256 = labels.get(f"musa_docker.apt.{name}.sha256", "")
            part.description = "from the MUSA apt repository"
        part.purl = f"pkg:deb/{os_id or 'debian'}/{name}@{_purl_version(version)}" + _qualifiers(qualifiers)
        out.append(part)
    artifacts = _artifacts(labels)
    sources = _sources(labels)
    musa_index = labels.get(MUSA_INDEX, "")
    musa_wheels = {_norm(r.split("==")[0]) for r in labels.get(MUSA_WHEELS, "").split() if "==" in r}
    wheel_of = {_norm(a.name[:-len("_wheel")]): a for a in artifacts if a.name.endswith("_wheel")}
    built = {dist: f"source:{tree}" for tree, dist in _BUILT_FROM.items()}
    # what install_musa_wheels.sh kept of pip's report: the wheel's sha256 and file name
    from_index = {_norm(row[0]): row for row in seen.musa_wheels if len(row) == 4}
    for name, version in (row[:2] for row in seen.distributions):
        key = _norm(name)
        part = Part(f"pypi:{key}", "pypi", name, version)
        qualifiers = []
        if key in musa_wheels and musa_index:
            qualifiers.append(("repository_url", musa_index))
            part.url = musa_index
            part.description = "from the MUSA pip index"
            got = from_index.get(key)
            if got and got[1] == version:
                part.sha256 = got[2] if re.fullmatch(r"[0-9a-f]{64}", got[2]) else ""
                qualifiers.append(("file_name", got[3]))
        if key in wheel_of:
            part.came_from.append(wheel_of[key].ref)
            qualifiers.append(("download_url", wheel_of[key].url))
        if key in built and any(s.ref == built[key] for s in sources):
            part.came_from.append(built[key])
        part.purl = f"pkg:pypi/{key}@{_purl_version(version)}" + _qualifiers(qualifiers)
        out.append(part)
    out.extend(artifacts)
    out.extend(sources)
    seen_refs, unique = set(), []
    for part in out:        # a dpkg database may list a name twice; the first stands
        if part.ref not in seen_refs:
            seen_refs.add(part.ref)
            unique.append(part)
    return unique


def _apt_url(line: str) -> str:
    """The repository URL of a `deb [opts] URL SUITE COMPONENT` line."""
    words = [w for w in re.sub(r"\[[^\]]*\]", " ", line).split() if w != "deb"]
    return words[0].rstrip("/") if words else ""


def _artifacts(labels: Mapping[str, str]) -> List[Part]:
    found = []
    for key, sha in sorted(labels.items()):
        m = re.fullmatch(r"musa_docker\.artifact\.(.+)\.sha256", key)
        if not m:
            continue
        name = m.group(1)
        url = labels.get(f"musa_docker.artifact.{name}.url", "")
        version = labels.get(f"musa_docker.version.{_VERSION_OF.get(name, name)}", "")
        purl = f"pkg:generic/{name}" + (f"@{_purl_version(version)}" if version else "") + _qualifiers(
            [("download_url", url), ("checksum", f"sha256:{sha}")])
        found.append(Part(f"artifact:{name}", "artifact", name, version, purl, sha, url,
                          description="downloaded on the host, checked, installed in its own build step"))
    return found


def _sources(labels: Mapping[str, str]) -> List[Part]:
    found = []
    for key, commit in sorted(labels.items()):
        m = re.fullmatch(r"musa_docker\.([A-Za-z0-9_]+)\.commit", key)
        if not m:
            continue
        name = m.group(1)
        url = labels.get(f"musa_docker.{name}.url", "")
        vcs = f"git+{url}@{commit}" if url else ""
        purl = f"pkg:generic/{name}@{commit}" + _qualifiers([("vcs_url", vcs)])
        found.append(Part(f"source:{name}", "source", name, commit, purl, url=url,
                          description=f"source tree at commit {commit}"))
    return found


def _image_purl(subject_: Subject) -> str:
    """`pkg:oci/NAME@sha256:…?repository_url=…&tag=…` once the image has a registry digest."""
    return oci_purl(subject_.ref, subject_.digests)


def oci_purl(ref: str, digests: Sequence[str]) -> str:
    """The purl of image `ref` from its first registry digest (`name@sha256:…`); "" without one."""
    if not digests:
        return ""
    repo, _, digest = digests[0].partition("@")
    tag = ref.rpartition(":")[2] if ":" in ref.rsplit("/", 1)[-1] else ""
    return (f"pkg:oci/{repo.rsplit('/', 1)[-1].lower()}@{quote(digest, safe='')}"
            + _qualifiers([("repository_url", repo), ("tag", tag)]))


def _serial(subject_: Subject, found: Sequence[Part]) -> uuid.UUID:
    """The same image and contents give the same serial number, so an SBOM written again matches."""
    text = json.dumps([subject_.ref, subject_.image_id, [p.__dict__ for p in found]], sort_keys=True)
    return uuid.UUID(hashlib.sha256(text.encode()).hexdigest()[:32], version=4)


def _name_version(ref: str) -> Tuple[str, str]:
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = ref.rpartition(":")
        return name, tag
    return ref, "latest"


def cyclonedx(subject_: Subject, found: Sequence[Part]) -> dict:
    """The CycloneDX 1.6 document."""
    name, tag = _name_version(subject_.ref)
    image = {"type": "container", "bom-ref": "image", "name": name, "version": tag,
             "description": subject_.description,
             "properties": [{"name": "musa_docker:image_id", "value": subject_.image_id},
                            {"name": "musa_docker:rootfs_chain_id", "value": subject_.chain_id}]
             + [{"name": f"musa_docker:{k[len('musa_docker.'):]}", "value": v}
                for k, v in sorted(subject_.labels.items()) if k in ("musa_docker.kind", "musa_docker.inputs")]}
    if _image_purl(subject_):
        image["purl"] = _image_purl(subject_)
    if subject_.base:
        base_name, base_tag = _name_version(subject_.base)
        ancestor = {"type": "container", "bom-ref": "base-image", "name": base_name, "version": base_tag}
        if subject_.base_id:
            ancestor["description"] = f"image {subject_.base_id}"
        if oci_purl(subject_.base, subject_.base_digests):
            ancestor["purl"] = oci_purl(subject_.base, subject_.base_digests)
        image["pedigree"] = {"ancestors": [ancestor]}
    components = []
    for part in found:
        c = {"type": {"os": "operating-system", "artifact": "file"}.get(part.kind, "library"),
             "bom-ref": part.ref, "name": part.name}
        if part.version:
            c["version"] = part.version
        if part.description:
            c["description"] = part.description
        if part.purl:
            c["purl"] = part.purl
        if part.sha256:
            c["hashes"] = [{"alg": "SHA-256", "content": part.sha256}]
        if part.url:
            c["externalReferences"] = [{"type": "vcs" if part.kind == "source" else "distribution", "url": part.url}]
        components.append(c)
    deps = [{"ref": "image", "dependsOn": [p.ref for p in found]}]
    deps += [{"ref": p.ref, "dependsOn": list(dict.fromkeys(p.came_from))} for p in found if p.came_from]
    return {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX", "specVersion": "1.6", "serialNumber": f"urn:uuid:{_serial(subject_, found)}",
        "version": 1,
        "metadata": {"timestamp": subject_.created,
                     "tools": {"components": [{"type": "application", "name": "musa-docker",
                                               "version": __version__}]},
                     "component": image},
        "components": components,
        "dependencies": deps,
    }


_SPDX_ID = re.compile(r"[^A-Za-z0-9.-]+")
# spdx-tools' pattern for a download location wants a host with a top-level domain
_HOST_WITH_TLD = re.compile(r"^(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}$")


def _download_location(part: Part) -> str:
    url = part.url
    parts = urlsplit(url) if url else None
    if not parts or parts.scheme not in ("http", "https") or not _HOST_WITH_TLD.match(parts.hostname or ""):
        return NOASSERTION
    return f"git+{url}@{part.version}" if part.kind == "source" else url


def spdx(subject_: Subject, found: Sequence[Part]) -> dict:
    """The SPDX 2.3 document."""
    name, tag = _name_version(subject_.ref)
    ids: Dict[str, str] = {}

    def spdx_id(ref: str) -> str:
        if ref not in ids:
            base = "SPDXRef-" + _SPDX_ID.sub("-", ref).strip("-")
            candidate, n = base, 1
            while candidate in ids.values():
                n += 1
                candidate = f"{base}-{n}"
            ids[ref] = candidate
        return ids[ref]

    image = {"SPDXID": spdx_id("image"), "name": name, "versionInfo": tag, "downloadLocation": NOASSERTION,
             "filesAnalyzed": False, "primaryPackagePurpose": "CONTAINER",
             "description": subject_.description}
    if _image_purl(subject_):
        image["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                  "referenceLocator": _image_purl(subject_)}]
    packages = [image]
    relationships = [{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES",
                      "relatedSpdxElement": image["SPDXID"]}]
    purpose = {"os": "OPERATING-SYSTEM", "artifact": "ARCHIVE", "source": "SOURCE"}
    for part in found:
        p = {"SPDXID": spdx_id(part.ref), "name": part.name, "downloadLocation": _download_location(part),
             "filesAnalyzed": False, "primaryPackagePurpose": purpose.get(part.kind, "LIBRARY")}
        if part.version:
            p["versionInfo"] = part.version
        if part.sha256:
            p["checksums"] = [{"algorithm": "SHA256", "checksumValue": part.sha256}]
        if part.description:
            p["description"] = part.description
        if part.kind == "source":
            p["sourceInfo"] = f"git commit {part.version} of {part.url or 'an unnamed repository'}"
        elif part.url and p["downloadLocation"] == NOASSERTION:
            p["sourceInfo"] = f"downloaded from {part.url}"
        if part.purl:
            p["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                  "referenceLocator": part.purl}]
        packages.append(p)
        relationships.append({"spdxElementId": image["SPDXID"], "relationshipType": "CONTAINS",
                              "relatedSpdxElement": p["SPDXID"]})
        relationships += [{"spdxElementId": p["SPDXID"], "relationshipType": "GENERATED_FROM",
                           "relatedSpdxElement": spdx_id(ref)} for ref in dict.fromkeys(part.came_from)]
    if subject_.base:
        base_name, base_tag = _name_version(subject_.base)
        base = {"SPDXID": spdx_id("base-image"), "name": base_name, "versionInfo": base_tag,
                "downloadLocation": NOASSERTION, "filesAnalyzed": False, "primaryPackagePurpose": "CONTAINER"}
        if subject_.base_id:
            base["description"] = f"image {subject_.base_id}"
        if oci_purl(subject_.base, subject_.base_digests):
            base["externalRefs"] = [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                     "referenceLocator": oci_purl(subject_.base, subject_.base_digests)}]
        packages.append(base)
        relationships.append({"spdxElementId": image["SPDXID"], "relationshipType": "DESCENDANT_OF",
                              "relatedSpdxElement": base["SPDXID"]})
    serial = _serial(subject_, found)
    return {
        "spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
        "name": subject_.ref, "documentNamespace": f"urn:uuid:{serial}",
        "creationInfo": {"created": subject_.created, "creators": [f"Tool: musa-docker-{__version__}"]},
        "packages": packages,
        "relationships": relationships,
    }


def documents(subject_: Subject, seen: probe.Seen) -> Dict[str, bytes]:
    """Both documents, as the bytes written and hashed: format -> JSON."""
    found = parts(subject_, seen)
    return {fmt: (json.dumps(make(subject_, found), indent=2, sort_keys=False) + "\n").encode()
            for fmt, make in ((CYCLONEDX, cyclonedx), (SPDX, spdx))}


def file_stem(ref: str) -> str:
    """`team_release_2026` for `team/release:2026`: a document's file name without its suffix."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", ref)
