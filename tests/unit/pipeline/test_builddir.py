"""builddir: only what the tool made is removed; a dir holding anything else is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import snapshot, stage_something
from musa_docker.pipeline.builddir import MARKER, BuildDir
from musa_docker.errors import BuildDirError


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "home"
    path.mkdir()
    return path


# --- BuildDir: what it refuses ------------------------------------------------------------------

@pytest.mark.parametrize("where", ["/", "/usr", "/etc", "/tmp", "/home", "/var"])
def test_refuses_root_and_system_dirs(home, where):
    with pytest.raises(BuildDirError) as info:
        BuildDir.acquire(Path(where), home)
    assert "--build-dir" in str(info.value)
    assert not (Path(where) / MARKER).exists()


def test_refuses_home(home):
    (home / "precious").write_text("x")
    with pytest.raises(BuildDirError) as info:
        BuildDir.acquire(home, home)
    assert "home" in str(info.value)
    assert sorted(os.listdir(home)) == ["precious"]


def test_refuses_home_spelled_relatively(home, monkeypatch):
    monkeypatch.chdir(home)
    with pytest.raises(BuildDirError):
        BuildDir.acquire(Path("."), home)
    with pytest.raises(BuildDirError):
        BuildDir.acquire(Path("sub/.."), home)


def test_refuses_a_file(tmp_path, home):
    f = tmp_path / "afile"
    f.write_text("data\n")
    with pytest.raises(BuildDirError) as info:
        BuildDir.acquire(f, home)
    assert "is a file" in str(info.value)
    assert f.read_text() == "data\n"


def test_refuses_a_non_empty_dir_it_did_not_make(tmp_path, home):
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("keep me\n")
    (mine / "sub" / "x.bin").write_bytes(b"\x00\xff")
    (mine / ".hidden").write_text("h")
    before = snapshot(mine)
    with pytest.raises(BuildDirError) as info:
        BuildDir.acquire(mine, home)
    assert "not empty" in str(info.value) and "untouched" in str(info.value)
    assert snapshot(mine) == before


# --- BuildDir: what it removes ------------------------------------------------------------------

def test_a_temp_dir_is_made_and_removed(tmp_path, home):
    bd = BuildDir.acquire(None, home)
    try:
        assert bd.made_dir and bd.path.is_dir()
        stage_something(bd, tmp_path)
    finally:
        bd.remove()
    assert not bd.path.exists()


def test_a_dir_it_made_is_removed(tmp_path, home):
    path = tmp_path / "new" / "bd"
    bd = BuildDir.acquire(path, home)
    assert bd.made_dir and path.is_dir()
    stage_something(bd, tmp_path)
    bd.remove()
    assert not path.exists()


def test_an_existing_empty_dir_is_kept_and_emptied(tmp_path, home):
    path = tmp_path / "empty"
    path.mkdir()
    bd = BuildDir.acquire(path, home)
    assert not bd.made_dir
    stage_something(bd, tmp_path)
    assert (path / "Dockerfile").exists()
    bd.remove()
    assert path.is_dir()
    assert os.listdir(path) == []


def test_a_file_written_into_its_dir_by_someone_else_survives_remove(tmp_path, home):
    path = tmp_path / "bd"
    bd = BuildDir.acquire(path, home)
    stage_something(bd, tmp_path)
    (path / "theirs.txt").write_text("not the tool's\n")
    bd.remove()
    assert (path / "theirs.txt").read_text() == "not the tool's\n"
    assert sorted(os.listdir(path)) == ["theirs.txt"]


def test_a_kept_build_dir_is_reusable(tmp_path, home):
    path = tmp_path / "kept"
    first = BuildDir.acquire(path, home)
    stage_something(first, tmp_path)               # --keep-build-dir: no remove()
    second = BuildDir.acquire(path, home)
    assert second.made_dir                         # still the tool's own dir
    assert sorted(os.listdir(path)) == [MARKER]    # the earlier build's staging is cleared
    stage_something(second, tmp_path)
    second.remove()
    assert not path.exists()


def test_a_file_added_under_a_staged_dir_of_a_kept_dir_is_never_lost(tmp_path, home):
    path = tmp_path / "kept"
    stage_something(BuildDir.acquire(path, home), tmp_path)     # --keep-build-dir
    (path / "common" / "mine.sh").write_text("the user's own\n")
    before = snapshot(path)
    with pytest.raises(BuildDirError) as info:
        BuildDir.acquire(path, home)
    assert "common/mine.sh" in str(info.value) and "left untouched" in str(info.value)
    assert snapshot(path) == before
    assert (path / "common" / "mine.sh").read_text() == "the user's own\n"


def test_a_staged_file_the_user_changed_in_a_kept_dir_is_refused(tmp_path, home):
    path = tmp_path / "kept"
    stage_something(BuildDir.acquire(path, home), tmp_path)
    dockerfile = path / "Dockerfile"
    dockerfile.unlink()                                         # a new file under a staged name
    dockerfile.write_text("FROM scratch\nRUN my own step\n")
    with pytest.raises(BuildDirError) as info:
        BuildDir.acquire(path, home)
    assert "Dockerfile" in str(info.value)
    assert dockerfile.read_text() == "FROM scratch\nRUN my own step\n"


def test_a_file_added_under_a_staged_dir_during_the_build_survives_remove(tmp_path, home):
    path = tmp_path / "bd"
    bd = BuildDir.acquire(path, home)
    stage_something(bd, tmp_path)
    (path / "common" / "mine.sh").write_text("the user's own\n")
    bd.remove()
    assert (path / "common" / "mine.sh").read_text() == "the user's own\n"
    assert not (path / "common" / "a.sh").exists() and not (path / "Dockerfile").exists()


def test_the_marker_lists_every_file_written(tmp_path, home):
    bd = BuildDir.acquire(tmp_path / "bd", home)
    stage_something(bd, tmp_path)
    record = json.loads((bd.path / MARKER).read_text())
    assert sorted(record["files"]) == [".dockerignore", "Dockerfile", "common/a.sh"]
    assert all(isinstance(v, list) and len(v) == 3 for v in record["files"].values())
    assert record["dirs"] == ["common"]


def test_a_foreign_file_in_a_marked_dir_is_refused(tmp_path, home):
    path = tmp_path / "kept"
    bd = BuildDir.acquire(path, home)
    stage_something(bd, tmp_path)
    (path / "user.txt").write_text("mine\n")
    before = snapshot(path)
    with pytest.raises(BuildDirError) as info:
        BuildDir.acquire(path, home)
    assert "user.txt" in str(info.value)
    assert snapshot(path) == before


def test_a_marker_never_steers_a_removal_outside_the_dir(tmp_path, home):
    outer = tmp_path / "outer"
    path = outer / "bd"
    path.mkdir(parents=True)
    (outer / "precious.txt").write_text("keep\n")
    (path / MARKER).write_text(json.dumps({"made_dir": True, "staged": ["..", "../precious.txt", "/"]}))
    bd = BuildDir.acquire(path, home)
    bd.remove()
    assert (outer / "precious.txt").read_text() == "keep\n"


def test_an_unreadable_marker_is_refused_and_untouched(tmp_path, home):
    path = tmp_path / "bd"
    path.mkdir()
    (path / MARKER).write_text("{not json")
    (path / "Dockerfile").write_text("FROM x\n")
    before = snapshot(path)
    with pytest.raises(BuildDirError):
        BuildDir.acquire(path, home)
    assert snapshot(path) == before
