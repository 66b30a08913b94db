"""The OS image's own apt packages (common/install_base.sh's package set), resolved for a lock.

Which packages and versions a set pulls in, and from which of the image's sources, only apt inside
that very image can tell: its release, its sources, its pinning. So `lock` runs install_base.sh in a
throwaway container of the OS image with `OS_APT_RESOLVE=1`: apt-get update, the set's transaction
with `--print-uris` (nothing is installed), then each package's stanza from apt-cache, whose SHA256 is
what the signed index of the image's archive says. The same run with the locked `name=version` pins
(`OS_APT_PACKAGES`) is how a build under `--lock` checks, before it builds, that the archive still has
each of them with the locked sha256.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional
from urllib.parse import unquote

from ..errors import LockError
from ..resources import COMMON

_SCRIPTS = ("install_base.sh", "net_env.sh")
# the fields apt orders and checks a transaction by: a flat repository of the .debs (a bundle's, an
# offline build's) lists them in its Packages, or apt unpacks a package before what it pre-depends on
CONTROL = ("Depends", "Pre-Depends", "Provides", "Conflicts", "Breaks", "Replaces", "Multi-Arch", "Essential",
           "Protected", "Priority", "Section")


def parse(output: str) -> List[Dict[str, object]]:
    """The packages of a resolve run's output: `@@uri URL` lines, then `@@stanzas` and apt-cache's
    stanzas. Raises LockError when a URI has no stanza with a SHA256."""
    head, _, body = output.partition("\n@@stanzas\n")
    uris = [line[len("@@uri "):].strip() for line in head.splitlines() if line.startswith("@@uri ")]
    stanzas: Dict[str, Dict[str, str]] = {}
    for block in body.split("\n\n"):
        fields: Dict[str, str] = {}
        for line in block.splitlines():
            if line[:1] not in (" ", "\t") and ":" in line:
                name, _, value = line.partition(":")
                fields[name.strip()] = value.strip()
        if fields.get("Filename"):
            stanzas[fields["Filename"]] = fields
    packages = []
    for uri in uris:
        path = unquote(uri)
        fields = next((f for name, f in stanzas.items() if path.endswith("/" + name)), None)
        if fields is None or not fields.get("SHA256"):
            raise LockError(f"apt in the OS image lists no SHA256 for {uri}: the package cannot be locked")
        packages.append({"package": fields.get("Package", ""), "version": fields.get("Version", ""),
                         "architecture": fields.get("Architecture", ""), "filename": fields["Filename"],
                         "url": uri, "size": int(fields.get("Size") or 0), "sha256": fields["SHA256"].lower(),
                         "control": {k: fields[k] for k in CONTROL if k in fields}})
    return sorted(packages, key=lambda p: (p["package"], p["version"]))


def resolve(engine, image: str, set_name: str, *, mirror: str = "", pins: Optional[List[str]] = None,
            network: str = "host") -> List[Dict[str, object]]:
    """The transaction of `set_name` in a container of `image` (its `pins` instead, when given).
    Raises LockError when apt cannot resolve it, EngineError when the container cannot run."""
    files = {f"/opt/musa_docker/{name}": (COMMON / name).read_bytes() for name in _SCRIPTS}
    env = ["OS_APT_RESOLVE=1", f"APT_MIRROR={mirror}", "DEBIAN_FRONTEND=noninteractive"]
    if pins:
        env.append(f"OS_APT_PACKAGES={' '.join(pins)}")
    code, out = engine.run_script(image, files, ["bash", "/opt/musa_docker/install_base.sh", set_name], env=env,
                                  network=network)
    if code != 0:
        last = [line for line in out.splitlines() if line.strip()][-3:]
        raise LockError(f"apt in {image} cannot resolve the {set_name} packages{' at their locked versions' if pins else ''}"
                        f" (exit {code}): {' | '.join(last)}")
    return parse(out)


def compare(record: Mapping, now: List[Dict[str, object]], lock_path: str) -> None:
    """The archive's packages now against the lock's record. Raises LockError naming the first that
    differs."""
    found = {(p["package"], p["version"]): p for p in now}
    for pin in record["packages"]:
        got = found.get((pin["package"], pin["version"]))
        if got is None:
            raise LockError(f"apt package {pin['package']} {pin['version']} of {record['image']} (lock {lock_path}) is "
                            f"no longer in its archive: bring it from a bundle (`musa-docker bundle import`), or lock "
                            f"again with `musa-docker lock --update {pin['package']}`")
        if got["sha256"] != pin["sha256"]:
            raise LockError(f"apt package {pin['package']} {pin['version']} of {record['image']}: its archive lists "
                            f"sha256 {str(got['sha256'])[:16]}…, the lock {lock_path} {pin['sha256'][:16]}…: check the "
                            f"archive, or lock again with `musa-docker lock --update {pin['package']}`")
