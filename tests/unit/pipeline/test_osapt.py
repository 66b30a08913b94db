"""The OS image's apt transaction as install_base.sh prints it in resolve mode, read into lock records,
and compared with a lock. Pure: the output of a run, no engine."""

from __future__ import annotations

import pytest

from musa_docker.errors import LockError
from musa_docker.pipeline import osapt
from musa_docker.values import lockfile

SHA = "a" * 64
OUTPUT = f"""install_base: OS is debian 12
@@uri http://deb.debian.org/debian/pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_amd64.deb
@@uri http://deb.debian.org/debian/pool/main/b/bzip2/bzip2_1.0.8-5%2bb1_amd64.deb
@@stanzas
Package: zlib1g
Version: 1:1.2.13.dfsg-1
Architecture: amd64
Pre-Depends: libc6 (>= 2.14)
Description: compression library
 a continuation line: with a colon
Filename: pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_amd64.deb
Size: 86880
SHA256: {SHA.upper()}

Package: bzip2
Version: 1.0.8-5+b1
Architecture: amd64
Filename: pool/main/b/bzip2/bzip2_1.0.8-5+b1_amd64.deb
Size: 49804
SHA256: {"b" * 64}
"""


def test_each_uri_gets_its_stanza_with_version_size_and_sha256():
    packages = osapt.parse(OUTPUT)
    assert [p["package"] for p in packages] == ["bzip2", "zlib1g"]
    zlib = packages[1]
    assert zlib == {"package": "zlib1g", "version": "1:1.2.13.dfsg-1", "architecture": "amd64",
                    "filename": "pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_amd64.deb", "size": 86880, "sha256": SHA,
                    "control": {"Pre-Depends": "libc6 (>= 2.14)"},
                    "url": "http://deb.debian.org/debian/pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_amd64.deb"}
    assert lockfile.apt_pins({"packages": packages}) == ["bzip2=1.0.8-5+b1", "zlib1g=1:1.2.13.dfsg-1"]


def test_a_uri_without_a_stanza_cannot_be_locked():
    with pytest.raises(LockError, match="lists no SHA256 for http://deb.debian.org/debian/pool/main/b/bzip2"):
        osapt.parse(OUTPUT.replace("Filename: pool/main/b/bzip2/bzip2_1.0.8-5+b1_amd64.deb\n", ""))


def test_a_package_gone_or_changed_is_named():
    record = {"image": "debian:12", "packages": osapt.parse(OUTPUT)}
    osapt.compare(record, osapt.parse(OUTPUT), "l.json")
    with pytest.raises(LockError, match="apt package zlib1g 1:1.2.13.dfsg-1 of debian:12 .* is no longer in its archive"):
        osapt.compare(record, osapt.parse(OUTPUT)[:1], "l.json")
    changed = [dict(p, sha256="c" * 64) for p in osapt.parse(OUTPUT)]
    with pytest.raises(LockError, match="apt package bzip2 1.0.8-5\\+b1 of debian:12: its archive lists sha256 cccc"):
        osapt.compare(record, changed, "l.json")
