"""Vendor archives and wheels are checked on the host before any build."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from musa_docker.musa import vendor
from musa_docker.fetch import archives
from musa_docker.fetch.download import Fetched
from musa_docker.errors import ArtifactError
from musa_docker.values.locations import parse_location


def make_tar(path: Path, members: dict, mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def make_wheel(path: Path, dist: str = "torch") -> Path:
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(f"{dist}/__init__.py", "")
        whl.writestr(f"{dist}-2.0.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    return path


@pytest.mark.parametrize("name,members,mode", [
    ("musa_toolkits", {"musa_toolkits_install/install.sh": "#!/bin/bash\n"}, "w:gz"),
    ("musa_toolkits", {"./musa_toolkits_install/install.sh": "#!/bin/bash\n"}, "w:gz"),
    ("mudnn", {"mudnn/lib/libmudnn.so": "x", "mudnn/install_mudnn.sh": "#!/bin/bash\n"}, "w"),
    ("mccl", {"mccl_rc1.4.0/deep/dir/install.sh": "#!/bin/bash\n"}, "w:gz"),
])
def test_installer_found_in_each_vendor_shape(tmp_path, name, members, mode):
    path = make_tar(tmp_path / "a", members, mode)
    found = archives.find_installer(name, path, "https://vendor.example/a")
    assert found.endswith(vendor.BY_NAME[name].installer)


def test_archive_without_its_installer_names_the_artifact_and_what_is_missing(tmp_path):
    path = make_tar(tmp_path / "musa.tar.gz", {"musa_toolkits_install/README": "no installer\n"})
    with pytest.raises(ArtifactError) as caught:
        archives.find_installer("musa_toolkits", path, "https://vendor.example/musa.tar.gz")
    assert "musa_toolkits" in str(caught.value)
    assert "musa_toolkits_install/install.sh" in str(caught.value)
    assert "https://vendor.example/musa.tar.gz" in str(caught.value)


def test_muDNN_installer_at_the_wrong_place_is_refused(tmp_path):
    path = make_tar(tmp_path / "mudnn.tar", {"other/install_mudnn.sh": "#!/bin/bash\n"}, "w")
    with pytest.raises(ArtifactError, match="mudnn/install_mudnn.sh"):
        archives.find_installer("mudnn", path, "mudnn.tar")


@pytest.mark.parametrize("content", [b"", b"<html>404 not found</html>", b"\x1f\x8b\x08\x00broken gzip"])
def test_corrupt_archive_is_an_error_naming_the_artifact(tmp_path, content):
    path = tmp_path / "mccl.tar.gz"
    path.write_bytes(content)
    with pytest.raises(ArtifactError) as caught:
        archives.find_installer("mccl", path, "https://vendor.example/mccl.tar.gz")
    assert "mccl archive" in str(caught.value) and "corrupt" in str(caught.value)


def test_truncated_archive_is_corrupt(tmp_path):
    whole = make_tar(tmp_path / "whole.tar.gz", {"pad/big.bin": "x" * 200000, "mccl/install.sh": "#!/bin/bash\n"})
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    with pytest.raises(ArtifactError, match="corrupt"):
        archives.find_installer("mccl", cut, "cut.tar.gz")


def test_wheels_are_checked_for_name_dist_python_and_zip(tmp_path):
    good = make_wheel(tmp_path / "torch-2.0.0-cp310-cp310-linux_x86_64.whl")
    archives.check_wheel("torch_wheel", "torch", good, good.name, "u", "3.10")
    anywhere = make_wheel(tmp_path / "torch_musa-1.0-py3-none-any.whl", "torch_musa")
    archives.check_wheel("torch_musa_wheel", "torch_musa", anywhere, anywhere.name, "u", "3.8")
    with pytest.raises(ArtifactError, match="is not a wheel"):
        archives.check_wheel("torch_wheel", "torch", good, "torch.tar.gz", "u", "3.10")
    with pytest.raises(ArtifactError, match="built for cp310.*Python is 3.8"):
        archives.check_wheel("torch_wheel", "torch", good, good.name, "u", "3.8")
    numpy = make_wheel(tmp_path / "numpy-1.0-cp310-cp310-linux_x86_64.whl", "numpy")
    with pytest.raises(ArtifactError, match="a wheel of 'numpy', not 'torch'"):
        archives.check_wheel("torch_wheel", "torch", numpy, numpy.name, "u", "3.10")
    fake = tmp_path / "torch-2.0.0-cp310-cp310-linux_x86_64.whl.html"
    fake.write_text("<html>")
    with pytest.raises(ArtifactError, match="corrupt"):
        archives.check_wheel("torch_wheel", "torch", fake, good.name, "u", "3.10")


def test_a_bad_download_is_dropped_from_the_cache_but_a_local_file_never_is(tmp_path):
    bad = tmp_path / "cache-entry.tar"
    bad.write_bytes(b"not a tar")
    local = tmp_path / "mine.tar"
    local.write_bytes(b"not a tar either")
    discard = archives.discard
    remote = Fetched("mudnn", parse_location("https://vendor.example/mudnn.tar"), bad, "0" * 64, 9, False)
    with pytest.raises(ArtifactError):
        archives.check_all([remote], "3.10", discard)
    assert not bad.exists()
    mine = Fetched("mudnn", parse_location(str(local)), local, "0" * 64, 16, False)
    with pytest.raises(ArtifactError):
        archives.check_all([mine], "3.10", discard)
    assert local.exists()


def test_an_archive_is_read_once_then_remembered_by_its_sha256(tmp_path):
    path = make_tar(tmp_path / "musa.tar.gz", {"musa_toolkits_install/install.sh": "#!/bin/bash\n"})
    said = []
    fetched = Fetched("musa_toolkits", parse_location(str(path)), path, "ab" * 32, path.stat().st_size, False)
    archives.check_all([fetched], "3.10", archives.discard, tmp_path / "checked", said.append)
    assert said and said[0].startswith("check musa_toolkits archive")
    path.write_bytes(b"damaged after the check")       # same recorded sha256: not read again
    archives.check_all([fetched], "3.10", archives.discard, tmp_path / "checked", said.append)
    assert len(said) == 1
    other = Fetched("musa_toolkits", fetched.location, path, "cd" * 32, 5, False)
    with pytest.raises(ArtifactError, match="corrupt"):
        archives.check_all([other], "3.10", archives.discard, tmp_path / "checked", said.append)
