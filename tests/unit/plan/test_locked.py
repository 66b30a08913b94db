"""A plan under --lock: each input at what the lock records, the lock named as its source, and an
input the lock lacks refused before anything is fetched. Pure: a lock file and options, no network."""

from __future__ import annotations

import json

import pytest

from musa_docker.errors import LockError
from musa_docker.options import build as opts
from musa_docker.plan.plan import Facts, make
from musa_docker.values import lockfile

COMMIT = "a" * 40
SUB = "b" * 40
SHA = "c" * 64
CONDA = "https://example.com/Miniforge3-Linux-x86_64.sh"


def _lock(tmp_path, **changes):
    data = lockfile.empty()
    lockfile.add(data, "repos", {"name": "pytorch", "url": "https://github.com/pytorch/pytorch.git", "ref": "v2.0.0",
                                 "commit": COMMIT, "submodules": [{"path": "third_party/fmt", "url": "u",
                                                                   "commit": SUB}]})
    lockfile.add(data, "artifacts", {"name": "conda_installer", "url": CONDA, "filename": "Miniforge3-Linux-x86_64.sh",
                                     "size": 10, "sha256": SHA})
    lockfile.add(data, "images", {"ref": "ubuntu:20.04", "id": "sha256:" + "d" * 64, "digests": []})
    data.update(changes)
    path = tmp_path / "lock.json"
    lockfile.write(path, data)
    return path


def _plan(tmp_path, lock, **values):
    env = {"HOME": str(tmp_path)}
    options = opts.resolve_base({"lock": str(lock), "conda_url": CONDA, **values}, env, machine="x86_64")
    return make(options, Facts())


def test_repos_and_artifacts_take_the_locked_commit_and_sha256(tmp_path):
    lock = _lock(tmp_path)
    plan = _plan(tmp_path, lock)
    (repo,) = plan.repos
    assert (repo.commit, repo.locked, repo.lock) == (COMMIT, (("third_party/fmt", SUB),), str(lock))
    (artifact,) = plan.artifacts
    assert artifact.location.sha256 == SHA
    assert ("pytorch commit", COMMIT, f"lock {lock}") in plan.inputs
    assert ("conda_installer sha256", SHA, f"lock {lock}") in plan.inputs
    text = plan.render()
    assert f"@ v2.0.0 = {COMMIT[:12]} (lock {lock})" in text
    assert f"image ubuntu:20.04  sha256:{'d' * 64}  (lock {lock})" in text


def test_a_tag_the_lock_does_not_record_is_refused(tmp_path):
    with pytest.raises(LockError) as caught:
        _plan(tmp_path, _lock(tmp_path), pytorch_tag="v2.1.0")
    assert "has no pytorch https://github.com/pytorch/pytorch.git @ v2.1.0" in str(caught.value)


def test_a_sha256_that_disagrees_with_the_lock_is_refused(tmp_path):
    with pytest.raises(LockError) as caught:
        _plan(tmp_path, _lock(tmp_path), conda_url=f"{CONDA}#sha256={'e' * 64}")
    assert "records cccccccccccccccc" in str(caught.value)


def test_credentials_in_a_url_find_the_record_without_them(tmp_path):
    plan = _plan(tmp_path, _lock(tmp_path), conda_url="https://user:tok@example.com/Miniforge3-Linux-x86_64.sh")
    assert plan.artifacts[0].location.sha256 == SHA


def test_an_image_the_lock_does_not_record_is_a_note(tmp_path):
    plan = _plan(tmp_path, _lock(tmp_path, images=[]))
    assert any("does not record ubuntu:20.04" in n for n in plan.notes)


@pytest.mark.parametrize("text, says", [
    ("{", "is not a lock file (not JSON"),
    ("[]", "not a lock file of format 1"),
    (json.dumps({"musa_docker_lock": 1, "repos": [{"name": "x", "url": "u", "ref": "r", "commit": "zz"}]}),
     "repo x has no 40-hex commit"),
    (json.dumps({"musa_docker_lock": 1, "artifacts": [{"url": "u", "sha256": "x"}]}), "artifact u has no sha256"),
])
def test_a_file_that_is_no_lock_is_one_clear_error(tmp_path, text, says):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(LockError) as caught:
        lockfile.load(path)
    assert says in str(caught.value)


def test_a_missing_lock_file_says_how_to_make_one(tmp_path):
    with pytest.raises(LockError) as caught:
        lockfile.load(tmp_path / "none.json")
    assert "no such file; write it with `musa-docker lock`" in str(caught.value)


def test_the_file_is_written_with_sorted_keys_and_sections(tmp_path):
    data = lockfile.empty()
    lockfile.add(data, "images", {"ref": "b", "id": "2"})
    lockfile.add(data, "images", {"ref": "a", "id": "1"})
    lockfile.add(data, "images", {"ref": "b", "id": "3"})      # the same key: replaced, not added
    text = lockfile.dumps(data)
    assert [r["ref"] for r in json.loads(text)["images"]] == ["a", "b"]
    assert json.loads(text)["images"][1]["id"] == "3"
    assert text == lockfile.dumps(json.loads(text))


def test_offline_needs_a_lock_and_pulls_nothing(tmp_path):
    from musa_docker.errors import ConfigError
    env = {"HOME": str(tmp_path)}
    with pytest.raises(ConfigError) as caught:
        opts.resolve_base({"offline": True}, env, machine="x86_64")
    assert "--offline needs --lock FILE" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        opts.resolve_base({"offline": True, "pull": True, "lock": str(_lock(tmp_path))}, env, machine="x86_64")
    assert "an offline build pulls nothing" in str(caught.value)


OS_APT = {"image": "ubuntu:20.04", "set": "build", "arch": "amd64", "mirror": "", "packages": [
    {"package": "gcc", "version": "4:9.3.0-1ubuntu2", "architecture": "amd64", "size": 5,
     "filename": "pool/main/g/gcc-defaults/gcc_9.3.0-1ubuntu2_amd64.deb", "sha256": "e" * 64,
     "url": "http://archive.ubuntu.com/ubuntu/pool/main/g/gcc-defaults/gcc_9.3.0-1ubuntu2_amd64.deb"}]}
NUMPY = {"index": lockfile.PUBLIC_INDEX, "requirement": "numpy==1.24.4", "name": "numpy", "version": "1.24.4",
         "files": [{"filename": "numpy-1.24.4-cp38-cp38-manylinux_2_17_x86_64.whl", "sha256": "f" * 64,
                    "url": "https://files.example/numpy-1.24.4-cp38-cp38-manylinux_2_17_x86_64.whl"}]}
PIP_SET = {"image": "musa-pytorch-base", "index": lockfile.PUBLIC_INDEX, "python": "3.8",
           "platforms": ["manylinux_2_31_x86_64", "linux_x86_64"], "requirements": ["numpy==1.24.4"]}


def _full_lock(tmp_path):
    return _lock(tmp_path, os_apt=[OS_APT], pip=[NUMPY], pip_sets=[PIP_SET])


def test_the_os_packages_and_the_public_distributions_are_build_args_and_inputs(tmp_path):
    lock = _full_lock(tmp_path)
    plan = _plan(tmp_path, lock)
    args = dict(plan.build.buildargs)
    assert args["OS_APT_PACKAGES"] == "gcc=4:9.3.0-1ubuntu2" and args["PIP_LOCKED"] == "numpy==1.24.4"
    assert ("apt ubuntu:20.04 build", "1 packages (sha256 each)", f"lock {lock}") in plan.inputs
    assert not plan.offline_files                  # online: nothing is staged for them


def test_an_offline_plan_says_so_and_stages_every_deb_and_wheel(tmp_path):
    plan = _plan(tmp_path, _full_lock(tmp_path), offline=True, builder="buildkit", docker_cli="/usr/bin/docker")
    assert plan.offline and any(n.startswith("offline: nothing is fetched") for n in plan.notes)
    assert plan.build.network == "none"
    assert [f[0] for f in plan.offline_files] == ["offline/apt/gcc_9.3.0-1ubuntu2_amd64.deb",
                                                  "offline/pip/public/numpy-1.24.4-cp38-cp38-manylinux_2_17_x86_64.whl"]
    assert plan.offline_apt[0][:4] == ("gcc", "4:9.3.0-1ubuntu2", "amd64", "gcc_9.3.0-1ubuntu2_amd64.deb")


def test_an_offline_plan_needs_the_os_packages_in_the_lock(tmp_path):
    with pytest.raises(LockError) as caught:
        _plan(tmp_path, _lock(tmp_path), offline=True)
    assert "has no os_apt record of ubuntu:20.04's build packages" in str(caught.value)


def test_a_lock_written_before_the_os_packages_were_locked_is_a_note_online(tmp_path):
    plan = _plan(tmp_path, _lock(tmp_path))
    assert dict(plan.build.buildargs)["OS_APT_PACKAGES"] == ""
    assert any("records no apt packages of the OS image" in n for n in plan.notes)
