"""The command line as a user runs it: --dry-run touches nothing, bad input is one `error:` line."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import REPO, assert_one_error, cli, git

NO_ENGINE = "unix:///nonexistent.sock"


@pytest.fixture
def user(env, tmp_path):
    """The user's environment, with an engine address where nothing answers."""
    return {**env, "DOCKER_HOST": NO_ENGINE}


def listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# --- --dry-run -----------------------------------------------------------------------------------

def test_dry_run_prints_the_plan_and_touches_nothing(user, tmp_path):
    root = tmp_path / "src"
    build_dir = tmp_path / "not" / "yet" / "bd"
    cache = tmp_path / "cache"
    home_before = listing(tmp_path / "home")
    r = cli("build-base", "--dry-run", "--pytorch-root", str(root), "--build-dir", str(build_dir),
            "-v", "3.10", "-s", "ubuntu:22.04", env=user)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("plan: base image musa-pytorch-base:latest (python 3.10) on " + NO_ENGINE)
    assert f"clone   pytorch https://github.com/pytorch/pytorch.git @ v2.0.0 -> {root / 'pytorch'}" in r.stdout
    assert "fetch   conda_installer" in r.stdout
    assert f"context: {build_dir}" in r.stdout
    assert "build arg   PYTHON_VERSION=3.10" in r.stdout
    assert "build arg   BASE_IMAGE=ubuntu:22.04" in r.stdout
    assert "Traceback" not in r.stderr
    assert not root.exists()                  # no clone
    assert not (tmp_path / "not").exists()    # no build dir
    assert not cache.exists()                 # no download
    assert listing(tmp_path / "home") == home_before


def test_dry_run_reads_the_environment(user, tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in user.items() if k != "MUSA_DOCKER_CACHE"}
    env.update(PYTORCH_REPO_ROOT_PATH=str(tmp_path / "env-src"), DOCKER_BUILD_DIR=str(tmp_path / "env-bd"))
    r = cli("build-base", "--dry-run", env=env)
    assert r.returncode == 0, r.stderr
    assert f"-> {tmp_path / 'env-src' / 'pytorch'}" in r.stdout
    assert f"context: {tmp_path / 'env-bd'}" in r.stdout
    assert f"cache {home / '.cache' / 'musa_docker'}" in r.stdout
    assert not (tmp_path / "env-src").exists() and not (tmp_path / "env-bd").exists()
    assert listing(home) == []


def test_dry_run_reuses_a_present_repo_and_leaves_it_alone(user, upstream, tmp_path):
    repo = tmp_path / "src" / "pytorch"
    git("clone", "-q", upstream["url"], str(repo))       # not at the tag, submodule not fetched
    before = listing(repo)
    r = cli("build-base", "--dry-run", "--pytorch-root", str(tmp_path / "src"), env=user)
    assert r.returncode == 0, r.stderr
    assert f"reuse   pytorch https://github.com/pytorch/pytorch.git @ v2.0.0 -> {repo}" in r.stdout
    assert listing(repo) == before
    assert git("rev-parse", "HEAD", cwd=repo) == upstream["head"]


def test_dry_run_never_prints_credentials(user, tmp_path):
    r = cli("build-base", "--dry-run", "--pytorch-root", str(tmp_path / "src"),
            "--conda-url", "https://u:c0nda-s3cret@example.com/Miniforge3.sh?token=t0k-s3cret",
            "--pytorch-repo", "https://u:g1t-s3cret@example.com/pytorch.git", env=user)
    assert r.returncode == 0, r.stderr
    assert "example.com/Miniforge3.sh" in r.stdout
    for secret in ("c0nda-s3cret", "t0k-s3cret", "g1t-s3cret"):
        assert secret not in r.stdout + r.stderr


# --- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["-s", "centos:7"], ["-s/--sys", "centos:7", "ubuntu:20.04", "ubuntu:22.04", "debian:12"]),
    (["-i", "Musa Base"], ["-i/--image", "not a valid image name"]),
    (["-i", "musa-base:v1"], ["-i/--image", "-t v1"]),
    (["-v", "3"], ["-v/--python-version", "'3'"]),
    (["--python-env", "venv", "-s", "ubuntu:20.04", "-v", "3.10"], ["--python-env venv", "3.8", "3.10"]),
    (["--apt-mirror", "ftp://mirror.example.com"], ["--apt-mirror"]),
])
def test_bad_input_is_one_error_line(user, tmp_path, args, words):
    # Without --dry-run: refused before any clone, download or engine contact.
    root = tmp_path / "src"
    r = cli("build-base", "--pytorch-root", str(root), *args, env=user)
    assert_one_error(r, *words)
    assert r.stdout == ""
    assert not root.exists()
    assert not (tmp_path / "cache").exists()


def test_pip_index_credentials_are_refused_and_not_shown(user, tmp_path):
    r = cli("build-base", "--dry-run", "--pip-index-url", "https://me:p1p-s3cret@pypi.example.com/simple", env=user)
    assert_one_error(r, "--pip-index-url", "credentials")
    assert "p1p-s3cret" not in r.stdout + r.stderr


@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "real"])
def test_pytorch_root_that_is_a_file(user, tmp_path, dry):
    # Even --dry-run refuses it: its plan could never be carried out.
    root = tmp_path / "root-file"
    root.write_text("a file\n")
    r = cli("build-base", *(["--dry-run"] if dry else []), "--pytorch-root", str(root), env=user)
    assert_one_error(r, "--pytorch-root", str(root), "is a file")
    assert root.read_text() == "a file\n"


def test_build_dir_root_is_refused(user, tmp_path):
    r = cli("build-base", "--dry-run", "--pytorch-root", str(tmp_path / "src"), "--build-dir", "/", env=user)
    assert_one_error(r, "--build-dir /")
    assert not (tmp_path / "src").exists()


@pytest.mark.parametrize("spelled", ["~", "env"])
def test_build_dir_home_is_refused(user, tmp_path, spelled):
    home = tmp_path / "home"
    (home / "thesis.tex").write_text("years of work\n")
    env = dict(user)
    args = ["build-base", "--pytorch-root", str(tmp_path / "src")]
    if spelled == "env":
        env["DOCKER_BUILD_DIR"] = str(home)
    else:
        args += ["--build-dir", "~"]
    r = cli(*args, env=env)
    assert_one_error(r, "--build-dir", str(home))
    assert listing(home) == ["thesis.tex"]
    assert (home / "thesis.tex").read_text() == "years of work\n"
    assert not (tmp_path / "src").exists()


def test_unreachable_engine_names_the_host(user, upstream, tmp_path):
    repo = tmp_path / "src" / "pytorch"
    git("clone", "-q", "--recurse-submodules", "--branch", upstream["tag"], upstream["url"], str(repo))
    before = listing(repo)
    r = cli("build-base", "--pytorch-root", str(tmp_path / "src"), "--python-env", "venv",
            "-s", "debian:12", "-v", "3.11", env=user)
    assert_one_error(r, NO_ENGINE)
    assert listing(repo) == before
    assert not (tmp_path / "cache").exists()


def test_unreachable_engine_from_the_flag(env, tmp_path):
    r = cli("build-base", "--pytorch-root", str(tmp_path / "src"), "--python-env", "venv",
            "-s", "debian:12", "-v", "3.11", "--docker-host", "unix:///nowhere/docker.sock", env=env)
    assert_one_error(r, "unix:///nowhere/docker.sock")
    assert not (tmp_path / "src").exists()


def test_debug_shows_the_traceback(user):
    r = cli("--debug", "build-base", "-s", "centos:7", env=user)
    assert r.returncode != 0
    assert "Traceback" in r.stderr
    assert "error: -s/--sys 'centos:7'" in r.stderr


def test_shell_bad_env_is_one_error_line(user):
    assert_one_error(cli("shell", "-i", "musa-pytorch-dev", "-e", "NOEQUALS", env=user), "-e/--env", "NOEQUALS")


def test_shell_unreachable_engine_names_the_host(user):
    assert_one_error(cli("shell", "-i", "musa-pytorch-dev", "-c", "true", env=user), NO_ENGINE)


# --- entry points ---------------------------------------------------------------------------------

def test_invoke_lists_the_tasks_in_the_repo_root(env):
    r = subprocess.run([sys.executable, "-m", "invoke", "--list"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "build-base" in r.stdout and "shell" in r.stdout


def test_musa_docker_lists_the_tasks(env, tmp_path):
    r = cli("--list", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "build-base" in r.stdout and "shell" in r.stdout


def test_musa_docker_script_works_from_anywhere(env, tmp_path):
    script = shutil.which("musa-docker", path=env.get("PATH"))
    assert script, "musa-docker is not on PATH: run `pip install -e .` in the repo root"
    r = subprocess.run([script, "--list"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "build-base" in r.stdout and "shell" in r.stdout


def test_help_shows_the_old_short_flags(env):
    r = cli("build-base", "--help", env=env)
    assert r.returncode == 0, r.stderr
    for flag in ("-i IMAGE, --image", "-s OS, --sys", "-v X.Y, --python-version", "-t TAG, --tag",
                 "--dry-run", "--build-dir", "--pytorch-root"):
        assert flag in r.stdout, flag


def test_import_docker_in_the_repo_root_is_the_sdk(env):
    r = subprocess.run([sys.executable, "-c", "import docker; print(docker.__file__); print(docker.APIClient)"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    path = r.stdout.splitlines()[0]
    assert not path.startswith(str(REPO / "docker")), path
    assert "docker.api.client.APIClient" in r.stdout


def test_invoke_imports_the_sdk_too(env):
    """invoke puts the tasks.py folder first on sys.path: a local docker/ package would win there."""
    code = ("import sys; from invoke.loader import FilesystemLoader; FilesystemLoader(start='.').load(); "
            "import docker; print(docker.__file__)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert not r.stdout.strip().startswith(str(REPO / "docker")), r.stdout


def test_a_foreign_build_dir_is_refused_before_any_clone_or_engine_contact(tmp_path, env, upstream):
    ctx = tmp_path / "mine"
    ctx.mkdir()
    (ctx / "notes.txt").write_text("my notes\n")
    root = tmp_path / "src"
    env = {**env, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    done = cli("build-base", "-s", "debian:12", "--python-env", "venv", "-v", "3.11", "--pytorch-root", str(root),
               "--pytorch-repo", upstream["url"], "--build-dir", str(ctx), env=env)
    assert done.returncode != 0
    assert done.stderr.startswith(f"error: --build-dir {ctx} is not empty and was not made by musa-docker")
    assert "nonexistent" not in done.stderr           # refused before the engine was asked
    assert not root.exists()                          # and before anything was cloned
    assert sorted(p.name for p in ctx.iterdir()) == ["notes.txt"]
    assert (ctx / "notes.txt").read_text() == "my notes\n"


# --- --connections --------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["0", "-1", "x", "17"])
def test_bad_connections_is_one_error_line(user, tmp_path, value):
    r = cli("build-dev", "--dry-run", f"--connections={value}", "-b", "base:latest", env=user)
    assert_one_error(r, "--connections", repr(value))


def test_connections_are_shown_in_the_plan(user, tmp_path):
    r = cli("build-base", "--dry-run", "--connections", "8", "--pytorch-root", str(tmp_path / "src"), env=user)
    assert r.returncode == 0, r.stderr
    assert "8 connections for large files" in r.stdout


# --- invoke's own parse errors, and failures of the outside world -----------------------------------

@pytest.mark.parametrize("args, line", [
    (["build-base", "--bogus"], "error: build-base has no flag --bogus: see `musa-docker build-base --help`"),
    (["build-base", "--tag"], "error: --tag needs a value: see `musa-docker build-base --help`"),
    (["build-dev", "-b"], "error: --base-img needs a value: see `musa-docker build-dev --help`"),
    (["build-everything"], "error: no task named 'build-everything' (`musa-docker --list` lists them): "
                           "see `musa-docker --help`"),
])
def test_parse_errors_are_one_error_line_naming_the_flag(user, args, line):
    done = cli(*args, env=user)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == line + "\n"


def test_a_dockerfile_that_is_missing_is_refused_before_any_clone(user, tmp_path):
    done = cli("build-dev", "-b", "b:1", "-m", "m.tar.gz", "-n", "n.tar", "-f", str(tmp_path / "nope"),
               "--vision-root", str(tmp_path / "src"), env=user)
    assert_one_error(done, "-f/--docker-file", "does not exist")
    assert not (tmp_path / "src").exists() and not (tmp_path / "cache").exists()


def test_tls_settings_that_point_nowhere(user, tmp_path):
    env = {**user, "DOCKER_HOST": "tcp://127.0.0.1:9", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path / "certs")}
    done = cli("shell", "-i", "musa-pytorch-dev:latest", env=env)
    assert_one_error(done, f"DOCKER_CERT_PATH={tmp_path / 'certs'}", "ca.pem")


def test_an_engine_address_that_does_not_parse(user):
    assert_one_error(cli("shell", "-i", "x:1", "--docker-host", "tcp://[::1", env=user), "tcp://[::1",
                     "is not an engine address")


@pytest.mark.parametrize("args, words", [
    (["shell", "-i", "x:1", "--shm-size", "lots"], ["--shm-size 'lots'"]),
    (["build-dev", "-b", "b:1", "-m", "http://[::1/m.tar.gz", "-n", "n.tar", "--dry-run"], ["--musa-url", "not a valid URL"]),
    (["build-base", "-v", "3.99", "--dry-run"], ["3.99"]),
])
def test_values_checked_strictly(user, args, words):
    assert_one_error(cli(*args, env=user), *words)
