"""Flag values from configuration: the config files and MUSA_DOCKER_* variables, with flags
winning over both, under `musa-docker` and `invoke` alike."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, cli


def plan_line(done):
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[0]


def test_project_file_in_the_working_dir(env, tmp_path):
    (tmp_path / "musa_docker.yaml").write_text('tag: from-file\nbuild_base:\n  python_version: "3.10"\n')
    line = plan_line(cli("build-base", "--dry-run", env=env, cwd=tmp_path))
    assert line.startswith("plan: base image musa-pytorch-base:from-file (python 3.10)")


def _archives(where):
    """The MUSA archives a dev build's dry run is given: files, as the build will read them."""
    for name in ("m.tar.gz", "n.tar"):
        (where / name).write_bytes(b"")


def test_user_file_in_home(env, tmp_path):
    _archives(tmp_path)
    (tmp_path / "home" / ".musa_docker.yaml").write_text("build_dev:\n  image: team/dev\n")
    done = cli("build-dev", "-b", "b:1", "-m", "m.tar.gz", "-n", "n.tar", "--dry-run", env=env, cwd=tmp_path)
    assert plan_line(done).startswith("plan: dev image team/dev:latest")


def test_environment_variables_override_files_and_flags_override_both(env, tmp_path):
    (tmp_path / "musa_docker.yaml").write_text('build_base:\n  python_version: "3.10"\n')
    env = {**env, "MUSA_DOCKER_BUILD_BASE_PYTHON_VERSION": "3.9", "MUSA_DOCKER_TAG": "from-env"}
    assert "(python 3.9)" in plan_line(cli("build-base", "--dry-run", env=env, cwd=tmp_path))
    line = plan_line(cli("build-base", "-v", "3.11", "-t", "flag", "--dry-run", env=env, cwd=tmp_path))
    assert line.startswith("plan: base image musa-pytorch-base:flag (python 3.11)")


def test_a_section_is_its_tasks_own(env, tmp_path):
    # release's python_version does not leak into build-base
    (tmp_path / "musa_docker.yaml").write_text('release:\n  python_version: "3.10"\n')
    assert "(python 3.8)" in plan_line(cli("build-base", "--dry-run", env=env, cwd=tmp_path))


def test_unquoted_version_in_yaml_is_a_clear_error(env, tmp_path):
    (tmp_path / "musa_docker.yaml").write_text("build_base:\n  python_version: 3.10\n")
    done = cli("build-base", "--dry-run", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("error: python_version 3.1 came from a config file as a number")
    assert 'python_version: "3.10"' in done.stderr


def test_invoke_in_the_repo_root_reads_the_same_config(env, tmp_path):
    runtime = tmp_path / "ci.yaml"
    runtime.write_text("build_base:\n  sys: debian:12\n  python_env: venv\n  python_version: '3.11'\n")
    done = subprocess.run([sys.executable, "-m", "invoke", "-f", str(runtime), "build-base", "--dry-run"],
                          cwd=REPO, env={**env, "MUSA_DOCKER_TAG": "inv"}, capture_output=True, text=True)
    assert plan_line(done).startswith("plan: base image musa-pytorch-base:inv (python 3.11)")
    assert "build arg   BASE_IMAGE=debian:12" in done.stdout


def test_shell_completion(env):
    script = cli("--print-completion-script", "bash", env=env)
    assert script.returncode == 0 and "complete -F" in script.stdout and "musa-docker" in script.stdout
    tasks = cli("--complete", "--", "musa-docker", "bui", env=env).stdout.split()
    assert {"build-base", "build-dev", "build-all", "release", "shell", "push"} <= set(tasks)
    options = cli("--complete", "--", "musa-docker", "build-base", "--py", env=env).stdout.split()
    assert "--python-version" in options and "--pytorch-tag" in options


def test_the_word_after_a_task_is_completed_and_chooses_its_flags(env):
    """`cache ls`, `bundle verify DIR`, `lock TASK FLAGS`: the words a task takes after its name are
    offered there, and after one the flags offered and the usage shown are the ones it chose."""
    def offered(*words):
        return cli("--complete", "--", "musa-docker", *words, env=env).stdout.split()
    assert offered("cache", "") == ["ls", "clean"]                       # cache alone is nothing
    assert offered("bundle", "")[:2] == ["verify", "import"] and "--lock" in offered("bundle", "")
    assert {"build-base", "build-dev", "release", "-c"} <= set(offered("lock", ""))
    locked = offered("lock", "release", "--")
    assert "--torch-musa-whl-url" in locked and "--update" in locked and "--dry-run" not in locked
    assert "--keep-logs" in offered("cache", "clean", "--")
    usage = {words: cli(*words, "--help", env=env).stdout.splitlines()[0] for words in
             [("cache",), ("cache", "ls"), ("lock",), ("lock", "release"), ("bundle", "verify"), ("sbom",)]}
    assert usage == {
        ("cache",): "usage: musa-docker cache ls|clean [FLAGS]",
        ("cache", "ls"): "usage: musa-docker cache ls [FLAGS]",
        ("lock",): "usage: musa-docker lock [build-base|build-dev|release] [FLAGS]",
        ("lock", "release"): "usage: musa-docker lock release [FLAGS]",
        ("bundle", "verify"): "usage: musa-docker bundle-verify [BUNDLE] [FLAGS]",
        ("sbom",): "usage: musa-docker sbom [IMAGE] [FLAGS]"}


# --- on/off flags and every other flag from config and variables --------------------------------

def test_on_off_flags_from_the_config_file(env, tmp_path):
    (tmp_path / "musa_docker.yaml").write_text("force: true\nbuild_base:\n  keep_build_dir: true\n  no_cache: yes\n")
    done = cli("build-base", "--dry-run", env=env, cwd=tmp_path)
    assert plan_line(done)
    assert "skip        never (--force)" in done.stdout
    assert "cache       off (--no-cache)" in done.stdout
    assert ", kept" in done.stdout


@pytest.mark.parametrize("off", ["0", "false", "no", "off", "False"])
def test_variables_turn_on_off_flags_off_over_the_file(env, tmp_path, off):
    (tmp_path / "musa_docker.yaml").write_text("force: true\n")
    done = cli("build-base", "--dry-run", env={**env, "MUSA_DOCKER_BUILD_BASE_FORCE": off}, cwd=tmp_path)
    assert plan_line(done) and "skip        when the image under that tag" in done.stdout


@pytest.mark.parametrize("var", ["MUSA_DOCKER_NO_CACHE", "MUSA_DOCKER_BUILD_BASE_NO_CACHE"])
def test_variables_turn_on_off_flags_on(env, tmp_path, var):
    done = cli("build-base", "--dry-run", env={**env, var: "1"}, cwd=tmp_path)
    assert plan_line(done) and "cache       off (--no-cache)" in done.stdout


def test_every_flag_maps_a_variable(env, tmp_path):
    _archives(tmp_path)
    done = cli("build-dev", "-b", "b:1", "-m", "m.tar.gz", "-n", "n.tar", "--dry-run", cwd=tmp_path,
               env={**env, "MUSA_DOCKER_BUILD_DEV_TORCH_MUSA_REF": "v9", "MUSA_DOCKER_APT_MIRROR": "http://m.example/u"})
    assert plan_line(done) and "torch_musa https://github.com/MooreThreads/torch_musa.git @ v9" in done.stdout


def test_the_command_line_wins_over_an_off_in_the_file(env, tmp_path):
    (tmp_path / "musa_docker.yaml").write_text("build_base:\n  force: false\n")
    done = cli("build-base", "--force", "--dry-run", env=env, cwd=tmp_path)
    assert plan_line(done) and "skip        never (--force)" in done.stdout


@pytest.mark.parametrize("text, words", [
    ("tag: 2026\n", ["tag 2026 came from a config file as a number", 'tag: "2026"']),
    ("build_base:\n  force: sometimes\n", ["--force 'sometimes'", "on/off"]),
    ("tag: [unclosed\n", ["musa_docker.yaml:2 is not YAML"]),
    ("- just\n- a list\n", ["musa_docker.yaml holds a list"]),
])
def test_a_bad_config_file_is_one_error_line(env, tmp_path, text, words):
    (tmp_path / "musa_docker.yaml").write_text(text)
    done = cli("build-base", "--dry-run", env=env, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1, done.stderr
    for word in words:
        assert word in done.stderr
