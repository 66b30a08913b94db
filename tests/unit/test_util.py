"""The shared helpers: sizes, short ids, file hashes, whole-or-nothing writes."""

import hashlib

import pytest

from musa_docker.util import file_sha256, human_size, short_id


def test_file_sha256(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"abc" * 1000)
    assert file_sha256(f) == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_human_size_picks_the_unit_or_keeps_gigabytes_when_asked():
    assert human_size(None) == "size unknown"
    assert human_size(999) == "999 B"
    assert human_size(3_200_000) == "3.2 MB"
    assert human_size(1_500_000_000) == "1.5 GB"
    assert human_size(64 << 20, "GB") == "0.07 GB"


def test_short_id_is_what_docker_images_shows():
    assert short_id("sha256:" + "0123456789ab" + "f" * 52) == "0123456789ab"


def test_write_atomic_replaces_whole_and_leaves_no_temp_file(tmp_path):
    from musa_docker.util import write_atomic
    target = tmp_path / "out" / "meta.json"
    write_atomic(target, "one\n")
    write_atomic(target, b"two\n")
    assert target.read_text() == "two\n" and sorted(p.name for p in target.parent.iterdir()) == ["meta.json"]
    with pytest.raises(TypeError):
        write_atomic(target, object())          # not text or bytes: the write fails midway
    assert target.read_text() == "two\n" and sorted(p.name for p in target.parent.iterdir()) == ["meta.json"]
