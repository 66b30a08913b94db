"""plan: pure data from options; `render()` is what --dry-run shows."""

from __future__ import annotations


import pytest

from musa_docker.options import build as opts
from musa_docker.plan.plan import RepoAction, plan_base, plan_dev, plan_release
from musa_docker.resources import ASSETS


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def make(home, present=(), env=None, machine="x86_64", **values):
    env = {"HOME": str(home)} if env is None else env
    return plan_base(opts.resolve_base(values, env, machine=machine), present)


def test_repo_absent_is_cloned(home):
    (step,) = make(home).repos
    assert step.name == "pytorch"
    assert step.action == "clone"
    assert step.path == home / "pytorch"
    assert step.ref == "v2.0.0"
    assert step.url == "https://github.com/pytorch/pytorch.git"


def test_repo_present_is_reused(home):
    (step,) = make(home, present={"pytorch"}).repos
    assert step.action == "reuse"


def test_plan_reads_no_disk(home, tmp_path):
    """The dir exists, but only `present` decides: the caller observes the disk, not the plan."""
    (home / "pytorch").mkdir(parents=True)
    assert make(home).repos[0].action == "clone"


def test_repo_flags_reach_the_step(home, tmp_path):
    (step,) = make(home, pytorch_tag="v2.1.0", pytorch_repo="https://example.com/pt.git",
                   pytorch_root=str(tmp_path / "src")).repos
    assert (step.ref, step.url, step.path) == ("v2.1.0", "https://example.com/pt.git", tmp_path / "src" / "pytorch")


def test_conda_installer_is_an_artifact_for_conda(home):
    (art,) = make(home).artifacts
    assert art.name == "conda_installer"
    assert art.dest == "artifacts/conda_installer.sh"
    assert art.location.filename == "Miniforge3-Linux-x86_64.sh"


def test_venv_downloads_nothing(home):
    assert make(home, python_env="venv", sys="ubuntu:22.04", python_version="3.10").artifacts == ()


def test_build_args_carry_the_requested_python(home):
    args = dict(make(home, python_version="3.10", sys="ubuntu:22.04").build.buildargs)
    # The old build_base.sh took -v and then ignored it.
    assert args["PYTHON_VERSION"] == "3.10"
    assert args["PYTHON_PREFIX"] == "/opt/conda/envs/py310"
    assert args["PYTHON_ENV"] == "conda"
    assert args["BASE_IMAGE"] == "ubuntu:22.04"
    assert args["RENDER_GID"] == "109"
    assert args["APT_MIRROR"] == ""
    assert args["PIP_INDEX_URL"] == ""


def test_build_args_carry_mirrors_and_venv(home):
    args = dict(make(home, python_env="venv", sys="debian:12", python_version="3.11",
                     apt_mirror="http://mirror.example.com/debian/",
                     pip_index_url="https://pypi.example.com/simple").build.buildargs)
    assert args["PYTHON_ENV"] == "venv"
    assert args["PYTHON_PREFIX"] == "/opt/venv"
    assert args["PYTHON_VERSION"] == "3.11"
    assert args["BASE_IMAGE"] == "debian:12"
    assert args["APT_MIRROR"] == "http://mirror.example.com/debian"
    assert args["PIP_INDEX_URL"] == "https://pypi.example.com/simple"


def test_labels_say_what_the_image_is(home):
    labels = dict(make(home, python_version="3.9", sys="ubuntu:22.04").build.labels)
    assert labels["musa_docker.kind"] == "base"
    assert labels["musa_docker.python_version"] == "3.9"
    assert labels["musa_docker.python_env"] == "conda"
    assert labels["musa_docker.system"] == "ubuntu:22.04"


def test_build_step(home, tmp_path):
    b = make(home, image="my/base", tag="v7", network="bridge", no_cache=True, pull=True, force=True,
             env={"HOME": str(home), "DOCKER_HOST": "tcp://builder.example.com:2376"}).build
    assert b.image == "my/base:v7"
    assert b.dockerfile == ASSETS / "ubuntu" / "dockerfile.base"
    assert b.dockerfile.is_file()
    assert (b.network, b.nocache, b.pull, b.force) == ("bridge", True, True, True)
    assert b.engine == "tcp://builder.example.com:2376"


def test_docker_host_flag_wins_over_the_environment(home):
    b = make(home, docker_host="ssh://me@box", env={"HOME": str(home), "DOCKER_HOST": "tcp://x:2375"}).build
    assert b.engine == "ssh://me@box"


def test_scripts_are_the_files_of_common(home):
    p = make(home)
    assert p.scripts == tuple(sorted(f.name for f in (ASSETS / "common").iterdir() if f.is_file()))
    assert "install_base.sh" in p.scripts


def test_render_lists_everything(home, tmp_path):
    text = make(home, build_dir=str(tmp_path / "bd"), python_version="3.10", sys="ubuntu:22.04").render()
    assert text.splitlines()[0].startswith("plan: base image musa-pytorch-base:latest (python 3.10)")
    assert f"clone   pytorch https://github.com/pytorch/pytorch.git @ v2.0.0 -> {home / 'pytorch'}" in text
    assert "fetch   conda_installer https://github.com/conda-forge/miniforge/" in text
    assert f"cache {home / '.cache' / 'musa_docker'}" in text
    assert f"context: {tmp_path / 'bd'}, removed after the build" in text
    assert "Dockerfile        <- ubuntu/dockerfile.base" in text
    assert "conda_installer.sh" in text
    assert "pytorch tree from" in text and "appended as one layer at /home/pytorch" in text
    for arg in ("BASE_IMAGE=ubuntu:22.04", "PYTHON_VERSION=3.10", "PYTHON_ENV=conda",
                "PYTHON_PREFIX=/opt/conda/envs/py310", "RENDER_GID=109"):
        assert f"build arg   {arg}" in text
    for label in ("musa_docker.kind=base", "musa_docker.python_version=3.10",
                  "musa_docker.pytorch.commit=", "musa_docker.artifact.conda_installer.sha256=",
                  "musa_docker.inputs=", "org.opencontainers.image.created="):
        assert f"label       {label}" in text


def test_render_says_reuse_and_kept(home):
    made = make(home, present={"pytorch"}, keep_build_dir=True)
    text = made.render()
    assert "reuse   pytorch" in text
    assert f"context: a fresh dir under {made.cache_dir / 'builds'}, kept" in text


def test_render_without_artifacts(home):
    text = make(home, python_env="venv", sys="debian:12", python_version="3.11").render()
    assert "conda_installer" not in text
    assert "artifacts: (cache" in text and "  (none)" in text


def test_render_flags_insecure_and_no_cache_and_force(home):
    text = make(home, insecure=True, no_cache=True, force=True).render()
    assert "TLS verification OFF" in text
    assert "off (--no-cache)" in text
    assert "never (--force)" in text


def test_render_shows_the_checksum_prefix(home):
    sha = "0123456789abcdef" * 4
    assert "sha256=0123456789ab" in make(home, conda_url=f"/srv/conda.sh#sha256={sha}").render()


@pytest.mark.parametrize("url", [
    "https://alice:t0p-s3cret@artifacts.example.com/Miniforge3.sh",
    "https://artifacts.example.com/Miniforge3.sh?token=t0p-s3cret",
    "https://artifacts.example.com/Miniforge3.sh?X-Amz-Signature=t0p-s3cret&X-Amz-Credential=t0p-s3cret",
])
def test_render_never_shows_conda_credentials(home, url):
    p = make(home, conda_url=url)
    text = p.render()
    assert "t0p-s3cret" not in text
    assert "artifacts.example.com/Miniforge3.sh" in text
    assert "t0p-s3cret" not in repr(p)


def test_render_never_shows_repo_credentials(home):
    text = make(home, pytorch_repo="https://bob:ghp_s3cretvalue@git.example.com/pytorch.git").render()
    assert "ghp_s3cretvalue" not in text
    assert "git.example.com/pytorch.git" in text


def test_plan_is_frozen(home):
    p = make(home)
    with pytest.raises(Exception):
        p.kind = "dev"
    assert isinstance(p.build.buildargs, tuple)


def test_the_plan_is_made_from_observed_facts_and_a_step_names_its_flag(home, tmp_path):
    from musa_docker.pipeline.observe import observe_disk
    from musa_docker.plan.plan import Facts, RepoAction, make as make_plan
    env = {"HOME": str(home)}
    options = opts.resolve_base({"pytorch_root": str(tmp_path / "src")}, env)
    assert observe_disk(options) == Facts(present=frozenset())
    (tmp_path / "src" / "pytorch").mkdir(parents=True)
    facts = observe_disk(options)
    assert facts.present == {"pytorch"}
    (step,) = make_plan(options, facts).repos
    assert (step.action, step.flag) == (RepoAction.REUSE, "--pytorch-root")
    assert "  reuse   pytorch " in make_plan(options, facts).render()


VENDOR = {"musa_url": "/v/musa_toolkits.tar.gz", "mudnn_url": "/v/mudnn.tar"}


def dev(home, present=(), python_version=None, **values):
    env = {"HOME": str(home)}
    options = opts.resolve_dev({"base_img": "musa-pytorch-base:1", **VENDOR, **values}, env)
    return plan_dev(options, present, python_version)


def release(home, **values):
    env = {"HOME": str(home)}
    options = opts.resolve_release({"base_img": "debian:12", "python_env": "venv", "python_version": "3.11",
                                    **VENDOR, "torch_whl_url": "/w/torch-2.0.0-cp311-cp311-linux_x86_64.whl",
                                    "torch_musa_whl_url": "/w/torch_musa-2.0.0-cp311-cp311-linux_x86_64.whl",
                                    **values}, env, machine="x86_64")
    return plan_release(options)


def test_plan_dev_fetches_torch_musa_and_clones_vision(home):
    p = dev(home)
    assert p.kind == "dev"
    steps = {r.name: r for r in p.repos}
    assert steps["torch_musa"].action is RepoAction.FETCH
    assert steps["vision"].action is RepoAction.CLONE


def test_plan_dev_reuses_a_present_vision_and_uses_a_local_torch_musa(home, tmp_path):
    local = tmp_path / "torch_musa"
    local.mkdir()
    p = dev(home, present={"vision"}, torch_musa_repo=str(local))
    steps = {r.name: r for r in p.repos}
    assert steps["torch_musa"].action is RepoAction.USE and steps["torch_musa"].path == local
    assert steps["vision"].action is RepoAction.REUSE


def test_plan_dev_builds_on_its_base_and_says_so_in_labels(home):
    p = dev(home, python_version="3.11")
    assert ("BASE_IMAGE", "musa-pytorch-base:1") in p.build.buildargs
    labels = dict(p.build.labels)
    assert labels["musa_docker.kind"] == "dev"
    assert labels["musa_docker.base_image"] == "musa-pytorch-base:1"
    assert labels["musa_docker.python_version"] == "3.11"
    assert [a.name for a in p.artifacts][:2] == ["musa_toolkits", "mudnn"]


def test_plan_dev_before_the_engine_is_asked_takes_python_from_the_base(home):
    p = dev(home)
    assert p.python_version == dict(p.build.labels)["musa_docker.python_version"]
    assert "3." not in p.python_version


def test_plan_release_has_no_repos_and_a_wheel_dir_each(home):
    p = release(home)
    assert p.kind == "release" and p.repos == ()
    dests = {a.name: a.dest for a in p.artifacts}
    assert dests["torch_wheel"] == "artifacts/wheels/torch/torch-2.0.0-cp311-cp311-linux_x86_64.whl"
    assert dests["torch_musa_wheel"].startswith("artifacts/wheels/torch_musa/")
    assert dict(p.build.labels)["musa_docker.kind"] == "release"
    assert p.python_version == "3.11"


def test_plan_release_renders_every_artifact(home):
    text = release(home).render()
    assert text.startswith("plan: release image ")
    for name in ("musa_toolkits", "mudnn", "torch_wheel", "torch_musa_wheel"):
        assert f"fetch   {name} " in text
    assert "repos:\n  (none)" in text
