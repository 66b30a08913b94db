"""The front door, driven through the installed `musa-docker` command: the program takes only its
own options and each task only its own flags; a typo, a prefix or another tool's habit is one
`error:` line and never starts anything; `invoke` in the repo root says the same."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from conftest import REPO


def tool(*args, env, cwd, input=None):
    script = shutil.which("musa-docker", path=env.get("PATH"))
    assert script, "musa-docker is not on PATH: run `pip install -e .` in the repo root"
    return subprocess.run([script, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
                          input=input)


def refused(done, *words):
    """Exit 2, nothing on stdout (no plan, no build), one `error:` line holding `words`."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("args, words", [
    (["build-base", "--dry"], ["build-base has no flag --dry", "did you mean --dry-run?"]),
    (["build-base", "--dry-ru"], ["has no flag --dry-ru", "--dry-run"]),
    (["build-base", "--version"], ["build-base has no flag --version"]),
    (["build-base", "-V"], ["build-base has no flag -V"]),
    (["build-base", "-f", "Dockerfile"], ["build-base has no flag -f"]),
    (["build-base", "--echo"], ["build-base has no flag --echo"]),
    (["build-bse", "--dry-run"], ["no task named 'build-bse'", "did you mean build-base?"]),
    (["--dry", "build-base"], ["musa-docker has no option --dry"]),
    (["--echo", "build-base", "--dry-run"], ["musa-docker has no option --echo"]),
])
def test_only_the_tools_own_flags(env, tmp_path, args, words):
    refused(tool(*args, env=env, cwd=tmp_path), *words)
    assert not (tmp_path / "cache").exists()


def test_a_missing_config_file_is_refused(env, tmp_path):
    refused(tool("-f", "missing.yaml", "build-base", "--dry-run", env=env, cwd=tmp_path),
            "--config missing.yaml does not exist")


def test_the_help_lists_only_the_tools_options(env, tmp_path):
    done = tool("--help", env=env, cwd=tmp_path)
    assert done.returncode == 0
    for word in ("--prompt-for-sudo-password", "--write-pyc", "--echo", "--pty", "--hide", "--warn-only"):
        assert word not in done.stdout, word
    for word in ("--version", "--list", "--debug", "--config FILE", "build-base", "build-dev"):
        assert word in done.stdout, word


def test_a_flag_given_twice_says_so(env, tmp_path):
    refused(tool("build-base", "-i", "a", "-i", "b", "--dry-run", env=env, cwd=tmp_path),
            "-i is given twice ('a', then 'b')")


@pytest.mark.parametrize("args", [["help"], ["help", "build-dev"], ["build-dev", "--help"]])
def test_help_for_people(env, tmp_path, args):
    done = tool(*args, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    assert "Docstring" not in done.stdout and "[other tasks here" not in done.stdout
    if "build-dev" in args:
        text = done.stdout
        assert text.index("required:") < text.index("build-dev flags:") < text.index("network:")
        for flag in ("-b IMAGE, --base-img IMAGE", "-m URL, --musa-url URL", "--pins FILE", "--connections N",
                     "--no-cache, --cache"):
            assert flag in text, flag


def test_a_closed_pipe_ends_quietly(env, tmp_path):
    script = shutil.which("musa-docker", path=env.get("PATH"))
    done = subprocess.run(f"'{script}' build-dev --help | head -n 1", shell=True, env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("usage: musa-docker build-dev")
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_the_command_line_undoes_an_on_off_value_of_the_config(env, tmp_path):
    (tmp_path / "musa_docker.yaml").write_text("no_cache: true\nforce: true\n")
    done = tool("build-base", "--dry-run", env=env, cwd=tmp_path)
    assert "cache       off (--no-cache)" in done.stdout and "skip        never (--force)" in done.stdout
    done = tool("build-base", "--dry-run", "--cache", "--no-force", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "cache       on" in done.stdout and "skip        when the image" in done.stdout


def test_a_python_file_is_never_run_as_config(env, tmp_path):
    canary = tmp_path / "ran"
    (tmp_path / "musa_docker.py").write_text(f"open({str(canary)!r}, 'w').write('ran')\n")
    done = tool("build-base", "--dry-run", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not canary.exists()
    refused(tool("-f", str(tmp_path / "musa_docker.py"), "build-base", "--dry-run", env=env, cwd=tmp_path),
            "is YAML")
    assert not canary.exists()


def test_invoke_in_the_repo_root_says_the_same(env):
    done = subprocess.run([sys.executable, "-m", "invoke", "build-base", "--dry"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    line = refused(done, "build-base has no flag --dry", "did you mean --dry-run?")
    assert line.endswith("see `invoke build-base --help`")
    listed = subprocess.run([sys.executable, "-m", "invoke", "--list"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0 and "build-base" in listed.stdout


def test_version(env, tmp_path):
    done = tool("--version", env=env, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("musa-docker ")


# --- bad input left from the last round ------------------------------------------------------------

def test_shell_and_push_have_a_dry_run_and_shell_passes_a_host_variable(env, tmp_path):
    env = {**env, "DOCKER_HOST": "unix:///nonexistent.sock", "FOO": "s3cret-value"}
    done = tool("shell", "-i", "musa-pytorch-dev", "-e", "FOO", "-e", "A=1", "--dry-run", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "env         MTHREADS_VISIBLE_DEVICES, FOO, A" in done.stdout
    assert "s3cret-value" not in done.stdout + done.stderr
    done = tool("push", "-i", "app:1", "--registry", "127.0.0.1:5000", "--dry-run", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("plan: push app:1 as 127.0.0.1:5000/app:1")


def test_pins_check_urls_asks_only_the_arch_and_says_what_failed(env, tmp_path):
    pins = tmp_path / "pins.yaml"
    pins.write_text("artifacts:\n"
                    "  S4000:\n    musa_toolkits: {url: https://vendor.invalid/s4000/musa.tar.gz}\n"
                    "  S80:\n    musa_toolkits: {url: https://vendor.invalid/s80/musa.tar.gz}\n")
    done = tool("pins", "--pins", str(pins), "--gpu-arch", "S4000", "--check-urls", env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert "s4000/musa.tar.gz: cannot resolve vendor.invalid" in done.stdout
    assert not [line for line in done.stdout.splitlines() if line.startswith(("ok", "FAIL")) and "s80/" in line]
    assert "HTTPSConnectionPool" not in done.stdout and "checked 1, 1 failed" in done.stdout


def test_config_shows_every_value_and_its_source(env, tmp_path):
    (tmp_path / "musa_docker.yaml").write_text("tag: nightly\nbuild_dev:\n  vision_tag: v0.17.0\n")
    env = {**env, "MUSA_DOCKER_BUILD_DEV_GPU_ARCH": "S4000", "MUDNN_URL": "/v/mudnn.tar"}
    done = tool("config", "--task", "build-dev", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    config = tmp_path / "musa_docker.yaml"
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  ")}
    assert done.stdout.startswith(f"config files: {config}\nbuild-dev:\n")
    assert rows["tag"].endswith(f"nightly  ({config}:1)")
    assert rows["vision_tag"].endswith(f"v0.17.0  ({config}:3)")
    assert rows["gpu_arch"].endswith("S4000  (env $MUSA_DOCKER_BUILD_DEV_GPU_ARCH)")
    assert rows["mudnn_url"].endswith("/v/mudnn.tar  (env $MUDNN_URL)")
    assert rows["image"].endswith("musa-pytorch-dev  (default)")
    plan = tool("build-base", "--dry-run", env=env, cwd=tmp_path)
    assert f"config: {config}" in plan.stdout.splitlines()


def test_tag_follows_docker(env, tmp_path):
    done = tool("build-base", "--dry-run", "-t", "a", "-t", "team/base:2026", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("plan: base image musa-pytorch-base:a ")
    assert "  tag         team/base:2026 (the same image)" in done.stdout
    done = tool("build-base", "--dry-run", "-t", "musa-pytorch-base:2026", env=env, cwd=tmp_path)
    assert done.stdout.startswith("plan: base image musa-pytorch-base:2026 ")


@pytest.mark.parametrize("args, words", [
    (["--build-arg", "PYTHON_VERSION=3.9"], ["--build-arg PYTHON_VERSION", "sets itself"]),
    (["--label", "musa_docker.kind=dev"], ["--label musa_docker.kind", "sets itself"]),
    (["--build-arg", "=x"], ["--build-arg '=x' is not KEY=VALUE"]),
])
def test_build_args_and_labels_the_tool_sets_are_refused(env, tmp_path, args, words):
    done = tool("build-base", "--dry-run", *args, env=env, cwd=tmp_path)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.startswith("error: ") and all(w in done.stderr for w in words), done.stderr


def test_build_args_and_labels_reach_the_plan(env, tmp_path):
    done = tool("build-base", "--dry-run", "--build-arg", "FOO=1", "--label", "team=ml", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "  build arg   FOO=1" in done.stdout and "  label       team=ml" in done.stdout


def test_doctor_says_what_a_build_lacks(env, tmp_path):
    env = {**env, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    done = tool("doctor", env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = {line.split("  ")[0].strip(): line for line in done.stdout.splitlines()}
    assert " fail " in rows["Docker engine"] and "/nonexistent/docker.sock" in rows["Docker engine"]
    assert " pass " in rows["git"]
    assert "docker client" in rows and "free space: cache" in rows
    assert done.stdout.rstrip().endswith("1 check a build needs failed")


def test_the_inputs_show_the_python_a_venv_gets(env, tmp_path):
    done = tool("build-base", "--dry-run", "-s", "debian:12", "--python-env", "venv", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "  python_version      3.11  (default)" in done.stdout.splitlines()


def test_push_quiet_and_progress_as_docker_has_them(env, tmp_path):
    """--push shows in the plan where each tag goes; -q and --progress come from the command line, the
    config file and the environment alike; a progress mode that does not exist is one error line."""
    done = tool("build-base", "--dry-run", "-q", "--push", "-t", "127.0.0.1:5000/team/base:1", "-t", "base:2",
                env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("  push        127.0.0.1:5000/team/base:1 to 127.0.0.1:5000 ") for line in lines)
    assert any(line.startswith("  push        base:2 to Docker Hub ") for line in lines)
    refused(tool("build-base", "--dry-run", "--progress", "fancy", env=env, cwd=tmp_path),
            "--progress 'fancy'", "auto, plain, tty")
    (tmp_path / "musa_docker.yaml").write_text("progress: fancy\n")
    assert "--progress 'fancy'" in tool("build-base", "--dry-run", env=env, cwd=tmp_path).stderr
    (tmp_path / "musa_docker.yaml").write_text("build_base:\n  push: true\n")
    assert "  push        musa-pytorch-base:latest to Docker Hub" in tool(
        "build-base", "--dry-run", env=env, cwd=tmp_path).stdout
    assert "  push  " not in tool("build-base", "--dry-run", "--no-push", env=env, cwd=tmp_path).stdout
    shown = tool("config", "--task", "build-base", env={**env, "MUSA_DOCKER_PROGRESS": "plain",
                                                        "MUSA_DOCKER_QUIET": "1"}, cwd=tmp_path).stdout
    assert "plain  (env $MUSA_DOCKER_PROGRESS)" in shown and "True  (env $MUSA_DOCKER_QUIET)" in shown, shown


def test_attest_goes_with_push_from_the_command_line_config_and_env(env, tmp_path):
    """--attest attaches the SBOM in the registry a push reaches: without --push it is one error line
    (from the config file too); with it the plan says what the tag will name."""
    refused(tool("build-base", "--dry-run", "--attest", env=env, cwd=tmp_path), "--attest", "give --push too")
    (tmp_path / "musa_docker.yaml").write_text("attest: true\n")
    refused(tool("release", "--dry-run", env=env, cwd=tmp_path), "--attest", "give --push too")
    (tmp_path / "musa_docker.yaml").write_text("attest: true\nbuild_base:\n  push: true\n")
    shown = tool("build-base", "--dry-run", "-t", "127.0.0.1:5000/team/base:1", env=env, cwd=tmp_path).stdout
    assert "  attest      the SBOM beside each pushed tag: SPDX and CycloneDX in-toto statements" in shown
    (tmp_path / "musa_docker.yaml").unlink()
    shown = tool("build-base", "--dry-run", "--push", env={**env, "MUSA_DOCKER_BUILD_BASE_ATTEST": "1"},
                 cwd=tmp_path).stdout
    assert "  attest      " in shown
    assert "  attest      " not in tool("build-base", "--dry-run", "--push", "--attest", "--no-attest",
                                        env=env, cwd=tmp_path).stdout


def test_a_dry_run_refuses_what_the_build_would(env, tmp_path):
    """Each of these passed a dry run before, then failed the real run; now the dry run says it."""
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("someone's\n")
    wheels = {}
    for name in ("torch-2.0.0-cp38-cp38-linux_x86_64.whl", "torch_musa-1.0.0-cp38-cp38-linux_x86_64.whl",
                 "musa.tar.gz", "mudnn.tar", "mccl.tar"):
        wheels[name] = tmp_path / name
        wheels[name].write_bytes(b"x")
    cases = [
        (["build-base", "--build-dir", str(foreign)], "was not made by musa-docker"),
        (["build-base", "--conda-url", str(tmp_path / "nope.sh")], f"no such file: {tmp_path / 'nope.sh'}"),
        (["build-base", "--docker-host", "tcp://"], "--docker-host 'tcp://' is not an engine address"),
        (["build-base", "--builder", "buildkit", "--docker-cli", "/usr/bin/docker", "--network", "mynet"],
         "a BuildKit build runs its steps on default, host, none only"),
        (["build-base", "--builder", "classic", "--network", "my net"], "--network 'my net' is not a network"),
        (["release", "-v", "3.10", "-m", str(wheels["musa.tar.gz"]), "-n", str(wheels["mudnn.tar"]),
          "--mccl-url", str(wheels["mccl.tar"]),
          "--torch-whl-url", str(wheels["torch-2.0.0-cp38-cp38-linux_x86_64.whl"]),
          "--torch-musa-whl-url", str(wheels["torch_musa-1.0.0-cp38-cp38-linux_x86_64.whl"])],
         "is built for cp38, but the image's Python is 3.10"),
        (["shell", "-i", "x", "--docker-host", "nowhere"], "--docker-host 'nowhere' is not an engine address"),
    ]
    for args, words in cases:
        done = tool(*args, "--dry-run", env=env, cwd=tmp_path)
        assert done.returncode != 0 and done.stdout == "", (args, done.stdout)
        assert done.stderr.startswith("error: ") and words in done.stderr, (args, done.stderr)
    assert (foreign / "notes.txt").exists() and sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_the_plan_names_a_reused_checkout_that_is_not_what_was_asked(env, tmp_path):
    repo = tmp_path / "src" / "pytorch"
    repo.mkdir(parents=True)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "setup.py").write_text("one\n")
    subprocess.run(git + ["add", "setup.py"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-qm", "one"], cwd=repo, check=True)
    subprocess.run(["git", "remote", "add", "origin", "https://token@example.com/fork/pytorch.git"], cwd=repo,
                   check=True)
    (repo / "setup.py").write_text("two\n")
    done = tool("build-base", "--dry-run", "--pytorch-root", str(tmp_path / "src"), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    note = next(line for line in done.stdout.splitlines() if line.startswith(f"note: pytorch at {repo}"))
    assert "its origin is https://example.com/fork/pytorch.git, not https://github.com/pytorch/pytorch" in note
    assert "is not v2.0.0" in note and "uncommitted changes" in note and "--pytorch-root" in note
    assert "token" not in done.stdout
    # the asked origin at the asked ref, unchanged: nothing to say
    subprocess.run(["git", "checkout", "-q", "setup.py"], cwd=repo, check=True)
    subprocess.run(["git", "tag", "v2.0.0"], cwd=repo, check=True)
    subprocess.run(["git", "remote", "set-url", "origin", "https://github.com/pytorch/pytorch"], cwd=repo, check=True)
    done = tool("build-base", "--dry-run", "--pytorch-root", str(tmp_path / "src"), env=env, cwd=tmp_path)
    assert not any(line.startswith("note: pytorch at") for line in done.stdout.splitlines()), done.stdout


def test_size_budget_per_kind_from_the_config_file_reaches_the_plan(env, tmp_path):
    (tmp_path / "musa_docker.yaml").write_text("size_budget: 30G\nbuild_base:\n  size_budget: 12GB\n")
    done = tool("build-base", "--dry-run", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "  size budget 12.0 GB unpacked (checked before tagging)" in done.stdout
    done = tool("build-base", "--dry-run", "--size-budget", "500M", env=env, cwd=tmp_path)
    assert "  size budget 500.0 MB unpacked (checked before tagging)" in done.stdout
    refused(tool("build-base", "--dry-run", "--size-budget", "big", env=env, cwd=tmp_path), "--size-budget", "20G")
    assert "  lean  " not in done.stdout     # a base is for building: only a release is held to the lean rules
    release = tool("release", "--dry-run", "-m", "https://vendor.example/musa.tar.gz", "-n",
                   "https://vendor.example/mudnn.tar", "--torch-whl-url",
                   "https://vendor.example/torch-2.0.0-cp38-cp38-linux_x86_64.whl", "--torch-musa-whl-url",
                   "https://vendor.example/torch_musa-1.0.0-cp38-cp38-linux_x86_64.whl", env=env, cwd=tmp_path)
    assert release.returncode == 0, release.stderr
    assert "  lean        no compiler, headers, static libraries, -dev packages" in release.stdout


def test_sbom_takes_the_image_as_its_one_word_and_checks_its_flags_first(env, tmp_path):
    done = tool("sbom", "team/release:1", "--format", "xml", env=env, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith("error: --format 'xml' is not one this tool writes"), done.stderr
    refused(tool("sbom", "team/release:1", "other", env=env, cwd=tmp_path), "takes no argument 'other'")
    done = tool("sbom", env=env, cwd=tmp_path)
    assert done.returncode == 2 and "sbom needs -i IMAGE" in done.stderr
