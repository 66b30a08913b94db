"""`bundle`, `bundle verify` and `bundle import` without an engine: a lock of local artifacts only,
bundled into a directory and a tar, checked, and one flipped byte found and named."""

from __future__ import annotations

import hashlib
import json

import pytest

from conftest import assert_one_error, cli
from musa_docker.values import lockfile


@pytest.fixture
def made(tmp_path, env):
    files = tmp_path / "files"
    files.mkdir()
    data = lockfile.empty()
    for name, body in (("mudnn", b"mudnn archive\n" * 100), ("same", b"mudnn archive\n" * 100),
                       ("musa_toolkits", b"toolkit\n" * 50)):
        path = files / f"{name}.tar"
        path.write_bytes(body)
        lockfile.add(data, "artifacts", {"name": name, "url": str(path), "filename": path.name, "size": len(body),
                                         "sha256": hashlib.sha256(body).hexdigest()})
    lock = tmp_path / "lock.json"
    lockfile.write(lock, data)
    return {"lock": lock, "env": env, "tmp": tmp_path, "files": files}


def test_a_bundle_dir_and_tar_verify_and_store_equal_bytes_once(made):
    out = made["tmp"] / "b"
    done = cli("bundle", "--lock", str(made["lock"]), "-o", str(out), env=made["env"])
    assert done.returncode == 0, done.stderr
    assert "2 blobs" in done.stdout                     # two artifacts with the same bytes: one blob
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["files"]) == sorted(["lock.json"] + [f"blobs/sha256/{p.name}" for p in
                                                                (out / "blobs" / "sha256").iterdir()])
    assert cli("bundle", "verify", str(out), env=made["env"]).returncode == 0
    tar = made["tmp"] / "b.tar"
    assert cli("bundle", "--lock", str(made["lock"]), "-o", str(tar), env=made["env"]).returncode == 0
    checked = cli("bundle-verify", "--bundle", str(tar), env=made["env"])
    assert checked.returncode == 0 and "every sha256 as the manifest says" in checked.stdout


def test_a_flipped_byte_is_named_and_the_bundle_is_not_imported(made):
    out = made["tmp"] / "b"
    assert cli("bundle", "--lock", str(made["lock"]), "-o", str(out), env=made["env"]).returncode == 0
    blob = next((out / "blobs" / "sha256").iterdir())
    data = bytearray(blob.read_bytes())
    data[3] ^= 0x20
    blob.write_bytes(bytes(data))
    assert_one_error(cli("bundle", "verify", str(out), env=made["env"]), f"{blob.name} differs from the manifest")
    assert_one_error(cli("bundle", "import", str(out), env=made["env"]), f"{blob.name} differs from the manifest")


def test_a_file_that_changed_since_it_was_locked_is_not_bundled(made):
    (made["files"] / "mudnn.tar").write_bytes(b"another archive\n")
    done = cli("bundle", "--lock", str(made["lock"]), "-o", str(made["tmp"] / "b"), env=made["env"])
    assert done.returncode != 0 and "sha256 mismatch" in done.stderr.splitlines()[-1]
    assert not (made["tmp"] / "b").exists()
    assert not [p for p in made["tmp"].iterdir() if p.name.startswith(".b.")]     # its work dir is gone


def test_bundle_needs_a_lock_and_an_output(env, tmp_path):
    assert_one_error(cli("bundle", "-o", str(tmp_path / "b"), env=env), "bundle needs --lock FILE")
    assert_one_error(cli("bundle", "verify", env=env), "give the bundle")
    assert_one_error(cli("bundle", "verify", str(tmp_path / "none"), env=env), "no such bundle")


def test_a_tar_member_outside_the_bundle_is_refused(tmp_path, env):
    import io
    import tarfile
    bad = tmp_path / "evil.tar"
    with tarfile.open(bad, "w") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    assert_one_error(cli("bundle", "verify", str(bad), env=env), "'../escape.txt' is not a file of a bundle")
    assert not (tmp_path / "escape.txt").exists()
