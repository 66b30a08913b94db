"""The apt source grammar, the package table, and version resolution against a real apt
repository (dpkg-deb + dpkg-scanpackages) served on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest

import musa_apt
from images import serve_directory
from musa_docker.musa import aptrepo
from musa_docker.musa.aptrepo import AptRepoError, AptRequest, parse_runtime, parse_source
from musa_docker.errors import ConfigError


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = musa_apt.write_repo(tmp_path_factory.mktemp("apt"))
    with serve_directory(root) as url:
        yield url.rstrip("/")


def request(url, suite, **kw):
    return AptRequest(parse_source(f"deb [trusted=yes] {url} {suite} main"), "5.2", **kw)


def test_a_source_line_is_parsed_and_written_back():
    src = parse_source("deb [trusted=yes arch=amd64] https://repo.example.com/musa/ jammy main extra")
    assert (src.url, src.suite, src.components) == ("https://repo.example.com/musa", "jammy", ("main", "extra"))
    assert src.line == "deb [trusted=yes arch=amd64] https://repo.example.com/musa/ jammy main extra"


@pytest.mark.parametrize("value, says", [
    ("", "one apt source line"),
    ("deb https://h/x jammy", "not `deb [options] URL SUITE COMPONENT`"),
    ("deb-src https://h/x jammy main", "not `deb"),
    ("deb [signed-by=/etc/k.gpg] https://h/x jammy main", "option 'signed-by=/etc/k.gpg'"),
    ("deb [trusted=maybe] https://h/x jammy main", "option 'trusted=maybe'"),
    ("deb ftp://h/x jammy main", "not an http(s) URL"),
    ("deb https://user:s3cret@h/x jammy main", "carries credentials"),
    ("deb https://h/x?token=s3cret jammy main", "not an http(s) URL"),
    ("deb https://h/x jammy main\ndeb https://evil/ x y", "one apt source line"),
    ("deb https://h/x $(reboot) main", "one apt source line"),
    ("deb https://h/x ../../etc main", "suite"),
    ("deb https://h/x jammy -o", "component '-o'"),
])
def test_hostile_or_malformed_sources_are_refused(value, says):
    with pytest.raises(ConfigError) as err:
        parse_source(value)
    assert says in str(err.value)
    assert "s3cret" not in str(err.value)


def test_runtime_lines():
    assert parse_runtime("5.2") == "5.2"
    for bad in ("5", "5.2.0", "v5.2", "5-2", ""):
        with pytest.raises(ConfigError, match="MAJOR.MINOR"):
            parse_runtime(bad)
    with pytest.raises(ConfigError, match="as a number"):
        parse_runtime(5.1)


def test_one_table_names_the_line_packages():
    src = parse_source("deb [trusted=yes] https://h/x jammy main")
    # the release image: what running torch_musa needs, no compiler, no -dev package
    names = [name for _, name, _ in AptRequest(src, "5.2", mccl=("mccl-s5000",)).packages()]
    assert names == ["musa-musart-5-2", "libmudnn3-musa-5-2", "mccl-s5000"]
    dev = [name for _, name, _ in AptRequest(src, "5.2", mccl=("mccl-s5000",), dev=True).packages()]
    assert dev == ["musa-toolkit-5-2", "mtcc-5-2", "musa-musart-5-2", "libmudnn3-musa-5-2",
                   "libmudnn3-dev-musa-5-2", "mccl-s5000", "musa-mualg-5-2", "musa-muthrust-5-2"]
    dev_no_mccl = [name for _, name, _ in AptRequest(src, "5.3", dev=True).packages()]
    assert dev_no_mccl == ["musa-toolkit-5-3", "mtcc-5-3", "musa-musart-5-3", "libmudnn3-musa-5-3",
                           "libmudnn3-dev-musa-5-3", "musa-mualg-5-3", "musa-muthrust-5-3"]


@pytest.mark.parametrize("a, b, order", [
    ("5.2.0-1", "5.1.0-1", 1), ("5.2.0-1", "5.2.0-1", 0), ("1:1.0", "9.9", 1), ("1.0~rc1", "1.0", -1),
    ("5.2.0-10", "5.2.0-9", 1), ("3.0.0+musa5.2.0", "3.0.0", 1), ("1.0a", "1.0+", -1),
])
def test_debian_version_order(a, b, order):
    assert aptrepo.compare_versions(a, b) == order


def test_the_line_a_version_names():
    assert aptrepo.line_of("5.2.0-1", True) == "5.2"
    assert aptrepo.line_of("1:5.1.3", True) == "5.1"
    assert aptrepo.line_of("3.0.0+musa5.1.0", False) == "5.1"
    assert aptrepo.line_of("2.4.0-1", False) is None


def test_resolution_picks_the_line_build_from_the_gz_index(repo):
    said = []
    res = aptrepo.resolve(request(repo, "good", dev=True, mccl=("mccl-s5000",)), say=said.append)
    pins = dict(res.pins)
    assert pins["musa-toolkit-5-2"] == "5.2.0-1"          # not the 5.1.0-1 build beside it
    assert pins["libmudnn3-musa-5-2"] == "3.0.0+musa5.2.0"
    assert pins["mccl-s5000"] == "2.4.0-1"
    assert ("musa_docker.apt.mtcc-5-2", "5.2.0-1") in res.labels()
    assert res.install_line().startswith("apt-get install -y --no-install-recommends musa-toolkit-5-2=5.2.0-1 mtcc-5-2=")
    assert any("apt pins:" in line for line in said)


def test_resolution_keeps_the_sha256_the_index_gives_each_pinned_deb(repo):
    import hashlib
    res = aptrepo.resolve(request(repo, "good", dev=True, mccl=("mccl-s5000",)))
    sha256s = dict(res.sha256s)
    assert set(sha256s) == {name for name, _ in res.pins}
    import re
    import requests
    index = aptrepo.fetch_index(request(repo, "good").source, "main", musa_apt.ARCH)
    filename = re.search(r"^Filename: (pool/good/musa-toolkit-5-2_5\.2\.0-1_\S+\.deb)$", index, re.M).group(1)
    deb = requests.get(f"{repo}/{filename}", timeout=30).content      # the bytes apt would download
    assert sha256s["musa-toolkit-5-2"] == hashlib.sha256(deb).hexdigest()
    assert ("musa_docker.apt.musa-toolkit-5-2.sha256", sha256s["musa-toolkit-5-2"]) in res.labels()


def test_a_line_mixing_builds_is_refused_naming_the_package(repo):
    with pytest.raises(AptRepoError) as err:
        aptrepo.resolve(request(repo, "mixed", dev=True))
    assert "mixes runtime lines" in str(err.value) and "mtcc-5-2 is 5.1.0-1" in str(err.value)


def test_a_missing_package_is_named_with_its_suite(repo):
    with pytest.raises(AptRepoError) as err:
        aptrepo.resolve(request(repo, "notoolkit", dev=True))
    assert "suite notoolkit" in str(err.value) and "no package musa-toolkit-5-2 (toolkit)" in str(err.value)


def test_an_unknown_suite_says_what_was_tried(repo):
    with pytest.raises(AptRepoError, match="no index for suite nosuch"):
        aptrepo.resolve(request(repo, "nosuch"))


def test_a_source_that_does_not_answer():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(AptRepoError, match="does not answer"):
        aptrepo.resolve(request(f"http://127.0.0.1:{port}/musa", "good"))


def test_hostile_index_entries_never_reach_apt():
    src = parse_source("deb [trusted=yes] https://h/x jammy main")
    index = aptrepo.parse_packages(
        "Package: musa-toolkit-5-2\nVersion: 5.2.0 ; rm -rf /\n\nPackage: mtcc-5-2\nVersion: 5.2.0\n"
    )
    with pytest.raises(AptRepoError, match="not a Debian package name and version"):
        aptrepo.choose(AptRequest(src, "5.2", dev=True), index)
