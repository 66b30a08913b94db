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


def _lock_of(tmp_path, name, files):
    data = lockfile.empty()
    for artifact, path in files.items():
        body = path.read_bytes()
        lockfile.add(data, "artifacts", {"name": artifact, "url": str(path), "filename": path.name, "size": len(body),
                                         "sha256": hashlib.sha256(body).hexdigest()})
    lock = tmp_path / name
    lockfile.write(lock, data)
    return lock


def test_a_differential_bundle_holds_only_what_is_new_and_imports_on_top_of_its_own(made):
    tmp, env = made["tmp"], made["env"]
    full = tmp / "full"
    assert cli("bundle", "--lock", str(made["lock"]), "-o", str(full), env=env).returncode == 0
    newer = made["files"] / "mccl.tar"
    newer.write_bytes(b"mccl archive\n" * 10)
    files = {"mudnn": made["files"] / "mudnn.tar", "musa_toolkits": made["files"] / "musa_toolkits.tar", "mccl": newer}
    lock = _lock_of(tmp, "newer.lock.json", files)
    diff = tmp / "diff"
    done = cli("bundle", "--lock", str(lock), "-o", str(diff), "--since", str(full / "manifest.json"), env=env)
    assert done.returncode == 0, done.stderr
    blobs = [p.name for p in (diff / "blobs" / "sha256").iterdir()]
    assert blobs == [hashlib.sha256(newer.read_bytes()).hexdigest()]        # the one pin that changed
    assert cli("bundle", "verify", str(diff), env=env).returncode == 0
    # it imports only on top of the bundle it came from
    refused = cli("bundle", "import", str(diff), env=env)
    assert_one_error(refused, "is a differential bundle on top of", "import that one first")
    assert cli("bundle", "import", str(full), env=env).returncode == 0
    done = cli("bundle", "import", str(diff), env=env)
    assert done.returncode == 0, done.stderr
    # a tar or a directory names the older bundle as well as its manifest
    again = cli("bundle", "--lock", str(lock), "-o", str(tmp / "diff2"), "--since", str(full), env=env)
    assert again.returncode == 0 and len(list((tmp / "diff2" / "blobs" / "sha256").iterdir())) == 1


def test_a_tar_split_in_parts_verifies_and_a_bad_part_is_named(made):
    tmp, env = made["tmp"], made["env"]
    big = made["files"] / "musa_toolkits.tar"
    big.write_bytes(bytes(range(256)) * 12000)        # ~3 MB
    lock = _lock_of(tmp, "big.lock.json", {"musa_toolkits": big})
    tar = tmp / "parts" / "b.tar"
    done = cli("bundle", "--lock", str(lock), "-o", str(tar), "--split", "1M", env=env)
    assert done.returncode == 0, done.stderr
    parts = sorted(p.name for p in tar.parent.iterdir())
    assert parts == ["b.tar.001", "b.tar.002", "b.tar.003", "b.tar.004", "b.tar.parts.json"]
    assert all((tar.parent / p).stat().st_size <= 1_000_000 for p in parts[:-1])
    checked = cli("bundle", "verify", str(tar), env=env)
    assert checked.returncode == 0, checked.stderr
    part = tar.parent / "b.tar.002"
    data = bytearray(part.read_bytes())
    data[10] ^= 1
    part.write_bytes(bytes(data))
    assert_one_error(cli("bundle", "verify", str(tar), env=env), "b.tar.002 differs from b.tar.parts.json")
    assert_one_error(cli("bundle", "--lock", str(lock), "-o", str(tmp / "x"), "--split", "1M", env=env),
                     "--split cuts a tar")
