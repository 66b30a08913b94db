"""The Dockerfile templates and common/ scripts: ARG defaults agree with the tool's, the MUSA env
block is the one kinds.py renders, the scripts pass shellcheck, the classic rendering uses only
classic-builder syntax and the BuildKit one mounts what it reads, and under either builder a new
MCCL archive leaves the toolkit and muDNN layers cached (on the real engine, in
test_dockerfile_engine.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from musa_docker.commands import build as commands
from musa_docker.plan import dockerfile, plan
from musa_docker.musa import kinds
from musa_docker.errors import ConfigError
from musa_docker.resources import ASSETS
from templates import VENDOR, rendered

DOCKERFILES = sorted((ASSETS / "ubuntu").glob("dockerfile.*"))


def code(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def arg_defaults(path: Path) -> list:
    """(name, default) of every `ARG NAME=default` of the Dockerfile, in order (one per stage)."""
    return re.findall(r"^ARG ([A-Z_]+)=(.*)$", path.read_text(), re.M)


def default_buildargs(tmp_path) -> dict:
    """The build args the tool passes with nothing but the required flags, per Dockerfile name."""
    env = {"HOME": str(tmp_path)}
    wheels = {"torch_whl_url": "/w/torch-2.0.0-cp38-cp38-linux_x86_64.whl",
              "torch_musa_whl_url": "/w/torch_musa-1.0.0-cp38-cp38-linux_x86_64.whl"}
    vendor_flags = {"musa_url": "/v/musa_toolkits.tar.gz", "mudnn_url": "/v/mudnn.tar"}
    plans = []
    for task, values in (("build_base", {}), ("build_dev", {"base_img": "base:1", **vendor_flags}),
                         ("release", {**vendor_flags, **wheels})):
        resolved, options = commands.resolve(task, values, env)     # the pins file's and arch's args too
        facts = plan.Facts(python_version="3.8" if task == "build_dev" else None)
        plans.append(plan.make(options, facts))
    return {p.build.dockerfile.name: dict(p.build.buildargs) for p in plans}


def test_arg_defaults_agree_with_the_tools_defaults(tmp_path):
    passed = default_buildargs(tmp_path)
    assert set(passed) == {p.name for p in DOCKERFILES}
    for path in DOCKERFILES:
        found = arg_defaults(path)
        assert found, path
        for name, value in found:
            if name == "DEBIAN_FRONTEND":
                continue    # not the tool's: how apt runs inside the build
            assert name in passed[path.name], f"{path.name}: ARG {name} is not a build arg the tool passes"
            assert value == passed[path.name][name], f"{path.name}: ARG {name}={value}, the tool's default is {passed[path.name][name]!r}"


def test_the_musa_env_block_is_the_one_kinds_renders():
    holding = [p for p in DOCKERFILES if kinds.ENV_BEGIN in p.read_text()]
    assert {p.name for p in holding} == {"dockerfile.dev", "dockerfile.release"}
    for path in holding:
        text = path.read_text()
        assert kinds.with_musa_env(text) == text, f"{path.name}: run `python -m musa_docker.kinds`"
        assert text.count("ENV MUSA_HOME=") == 1
    assert ("MUSA_HOME", kinds.MUSA_HOME) in kinds.MUSA_ENV
    assert kinds.get("dev").env == {"MUSA_HOME": kinds.MUSA_HOME}


def test_the_env_block_is_rewritten_from_the_table(monkeypatch):
    monkeypatch.setattr(kinds, "MUSA_ENV", kinds.MUSA_ENV + (("MUSA_ARCH", "22"),))
    text = (ASSETS / "ubuntu" / "dockerfile.dev").read_text()
    assert "ENV MUSA_ARCH=22\n" + kinds.ENV_END in kinds.with_musa_env(text)


def test_one_step_per_component_slowest_first():
    for name in ("dockerfile.dev", "dockerfile.release"):
        for builder in dockerfile.KINDS:
            text = rendered(name, builder)
            installs = re.findall(r"install_musa\.sh (\w+) ", text)
            assert installs == ["musa_toolkits", "mudnn", "mccl"], (name, builder)
        copies = re.findall(r"^COPY .*artifacts/(\S+) ", rendered(name, "classic"), re.M)
        # patterns: no archive is staged when the SDK comes from an apt source
        assert [c for c in copies if ".ta" in c] == ["musa_toolkits.tar.g[z]", "mudnn.ta[r]", "mccl.tar.g[z]"], name
    release = rendered("dockerfile.release", "classic")
    assert re.findall(r"install_wheels\.sh (/tmp\S+)", release) == ["/tmp/wheels/torch", "/tmp/wheels/torch_musa",
                                                                     "/tmp/wheels/extra"]
    # the dev image's components: a step each, muAlg and muThrust and kineto before torch_musa,
    # torchaudio after torchvision
    dev = rendered("dockerfile.dev", "classic")
    steps = re.findall(r"/home/build_components\.sh (\w+)|(build_torch_musa|build_torchvision)\.sh /home", dev)
    assert [a or b for a, b in steps] == ["mualg", "muthrust", "kineto", "build_torch_musa", "build_torchvision",
                                          "audio"]


def test_the_classic_rendering_has_classic_builder_syntax_only():
    for path in DOCKERFILES:
        text = rendered(path.name, "classic")
        assert not re.search(r"^#\s*syntax=", text, re.M), path.name
        assert "--mount" not in code(text) and "--link" not in code(text) and "<<" not in code(text), path.name
        assert "@bind" not in text and not re.search(r"^# \[", text, re.M), path.name


def test_the_buildkit_rendering_mounts_what_it_reads_and_copies_no_artifact():
    for path in DOCKERFILES:
        text = rendered(path.name, "buildkit")
        # the engine's built-in frontend: no `# syntax=` line that would fetch another one
        assert not re.search(r"^#\s*syntax=", text, re.M), path.name
        assert not re.search(r"^(COPY|ADD) .*artifacts", code(text), re.M), path.name
        assert "@bind" not in text and not re.search(r"^# \[", text, re.M), path.name
        # the vendor components install in the image's own steps (release keeps its wheel stages)
        assert "capture.sh" not in code(text) or path.name == "dockerfile.release", path.name
        assert "--mount=type=cache,id=musa-docker-apt-cache,target=/var/cache/apt,sharing=locked" in text \
            or path.name == "dockerfile.dev", path.name
    dev = rendered("dockerfile.dev", "buildkit")
    for dest in VENDOR:
        # straight under /tmp: the mount point BuildKit makes for a file leaves no dir behind
        assert f"--mount=type=bind,source={dest},target=/tmp/{dest[len('artifacts/'):]}" in dev
    assert "--mount=type=bind,source=artifacts/conda_installer.sh," in rendered("dockerfile.base", "buildkit")
    release = rendered("dockerfile.release", "buildkit")
    for folder in ("torch", "torch_musa"):
        assert f"--mount=type=bind,source=artifacts/wheels/{folder},target=/tmp/wheels/{folder}" in release


def test_an_artifact_not_staged_is_not_mounted():
    dev = rendered("dockerfile.dev", "buildkit", staged=VENDOR[:2])
    assert "source=artifacts/mccl.tar.gz" not in dev
    assert "install_musa.sh mccl /tmp/mccl.tar.gz" in dev    # it skips a missing archive
    assert "source=artifacts/" not in rendered("dockerfile.dev", "buildkit", staged=())


def test_render_blocks_and_pass_through():
    template = "FROM a\n# [classic]\nRUN one\n# [buildkit]\nRUN @bind(common/x,/x) two\n# [end]\nRUN three\n"
    assert dockerfile.render(template, "classic") == "FROM a\nRUN one\nRUN three\n"
    assert dockerfile.render(template, "buildkit") == \
        "FROM a\nRUN --mount=type=bind,source=common/x,target=/x two\nRUN three\n"
    plain = "FROM a\nRUN x\n"
    assert dockerfile.render(plain, "buildkit") == dockerfile.render(plain, "classic") == plain
    for broken in ("FROM a\n# [classic]\nRUN x\n", "FROM a\n# [end]\n", "# [classic]\n# [classic]\n# [end]\n"):
        with pytest.raises(ConfigError):
            dockerfile.render(broken, "classic")


def test_common_scripts_pass_shellcheck():
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed: scripts/test.sh installs it (apt-get install shellcheck)"
    scripts = sorted(str(p) for p in (ASSETS / "common").glob("*.sh"))
    assert any(s.endswith("probe_image.sh") for s in scripts)
    done = subprocess.run([shellcheck, "--external-sources", *scripts], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr



def test_the_plan_names_the_rendering_and_the_inputs_digest_covers_it(env):
    from conftest import cli
    for args, kind in ((("--builder", "buildkit", "--docker-cli", "/usr/bin/docker"), "buildkit"),
                       (("--builder", "classic"), "classic")):
        done = cli("build-base", "--dry-run", "-i", "musa-docker-test/render", *args, env=env)
        assert done.returncode == 0, done.stderr
        assert f"Dockerfile        <- ubuntu/dockerfile.base, its {kind} rendering" in done.stdout


def test_the_inputs_digest_covers_the_rendered_dockerfile(tmp_path):
    import dataclasses
    from musa_docker.engine import docker_cli as client
    from musa_docker.pipeline import execute as pipeline
    resolved, options = commands.resolve("build_base", {}, {"HOME": str(tmp_path)})
    classic = plan.make(options, plan.Facts())
    buildkit = dataclasses.replace(classic, build=dataclasses.replace(
        classic.build, builder=client.Builder("buildkit", "test")))
    texts = [dockerfile.for_plan(p) for p in (classic, buildkit)]
    assert texts[0] != texts[1] and "--mount=type=cache" in texts[1]
    digests = [pipeline.inputs_digest(p, [], [], {}) for p in (classic, buildkit)]
    assert digests[0] != digests[1]


def test_the_compile_cache_counts_are_read_from_either_builders_log():
    from musa_docker.pipeline import build
    log = ("#14 12.3 compile cache: ccache in /root/.ccache/py3.11-22, max 20G\n"
           "#14 40.1 compile cache: hits=3 misses=1\n"
           "#16 9.8 compile cache: hits=12 misses=0\n"
           "compile cache: hits=bogus misses=1\n")
    assert build.compile_cache_counts(log) == (15, None, 1)
    assert build.compile_cache_counts("#14 CACHED\n") == (0, None, 0)
    assert build.compile_cache_value(15, None, 1) == "hits=15 misses=1"
    # with a remote storage: R of the N hits came from it
    remote = "#14 40.1 compile cache: hits=3 remote_hits=2 misses=1\n#16 9.8 compile cache: hits=4 remote_hits=4 misses=0\n"
    assert build.compile_cache_counts(remote) == (7, 6, 1)
    assert build.compile_cache_value(7, 6, 1) == "hits=7 remote_hits=6 misses=1"


def test_the_remote_compile_cache_is_a_secret_shown_redacted(env):
    from conftest import assert_one_error, cli
    dev = ("build-dev", "--dry-run", "-b", "base:1", "-m", "https://vendor.example/v/musa_toolkits.tar.gz", "-n",
           "https://vendor.example/v/mudnn.tar", "--builder", "buildkit", "--docker-cli", "/usr/bin/docker")
    done = cli(*dev, "--compile-cache-remote", "redis://ci:s3cret@cache.example:6380/2",
               "--compile-cache-remote-only-read", env=env)
    assert done.returncode == 0, done.stderr
    assert "s3cret" not in done.stdout + done.stderr
    assert "secret      musa_docker_compile_cache_remote <- --compile-cache-remote redis://***@cache.example:6380/2 " \
           "(read only)" in done.stdout
    assert "--secret=id=musa_docker_compile_cache_remote," in done.stdout
    assert "note: compile cache: remote storage --compile-cache-remote redis://***@cache.example:6380/2 (read only) " \
           "behind the local cache, read only" in done.stdout
    # from the environment too, as every flag; where no compile cache runs, it is said to be unused
    plain = cli(*dev[:-4], "--builder", "classic", env={**env, "MUSA_DOCKER_COMPILE_CACHE_REMOTE": "http://cache.example/cc"})
    assert plain.returncode == 0, plain.stderr
    assert "the classic builder has no cache mounts (--builder buildkit keeps one); --compile-cache-remote " \
           "http://cache.example/cc is not used" in plain.stdout
    assert "musa_docker_compile_cache_remote" not in plain.stdout
    for bad, said in (("ftp://cache.example/", "is not a redis://, rediss://, http:// or https:// URL"),
                      ("redis://cache.example:port", "is not a valid URL"),
                      ("redis://a|read-only=false", "holds a space, a control character or '|'"),
                      ("redis://", "is not a redis://")):
        assert_one_error(cli(*dev, "--compile-cache-remote", bad, env=env), "--compile-cache-remote", said)
    assert_one_error(cli(*dev, "--compile-cache-remote-only-read", env=env), "--compile-cache-remote URL")


def test_the_remote_compile_cache_changes_no_cache_key():
    from musa_docker.values import network
    secret = network.compile_cache_remote("redis://u:p@cache.example", only_read=True)
    assert secret.content() == b"redis://u:p@cache.example|read-only=true\nredis://cache.example:6379\n"
    assert "p@" not in repr(secret)
    text = rendered("dockerfile.dev", "buildkit")
    # mounted only in the two compile steps, and never a build arg
    assert text.count("--mount=type=secret,id=musa_docker_compile_cache_remote") == 2
    assert "ARG COMPILE_CACHE_REMOTE" not in text


def test_the_plan_says_which_compile_cache_a_dev_build_gets(env):
    from conftest import cli
    dev = ("build-dev", "--dry-run", "-b", "base:1", "-m", "https://vendor.example/v/musa_toolkits.tar.gz", "-n",
           "https://vendor.example/v/mudnn.tar")
    buildkit = ("--builder", "buildkit", "--docker-cli", "/usr/bin/docker")
    cases = [(buildkit, "compile cache: ccache (max 20G per Python and GPU arch list)"),
             ((*buildkit, "--compile-cache-size", "5G"), "compile cache: ccache (max 5G "),
             ((*buildkit, "--no-compile-cache"), "compile cache: off (--no-compile-cache)"),
             (("--builder", "classic"), "compile cache: none: the classic builder has no cache mounts")]
    for args, said in cases:
        done = cli(*dev, *args, env=env)
        assert done.returncode == 0, done.stderr
        assert f"note: {said}" in done.stdout
    done = cli(*dev, *buildkit, "--compile-cache-size", "lots", env=env)
    assert done.returncode != 0 and done.stderr.strip().splitlines() == [
        "error: --compile-cache-size 'lots' is not a size such as 20G or 500M"]


def test_each_installer_reads_the_archive_its_builder_put_there():
    for name in ("dockerfile.dev", "dockerfile.release"):
        classic, buildkit = rendered(name, "classic"), rendered(name, "buildkit")
        for path in re.findall(r"install_musa\.sh \w+ (\S+)", classic):
            assert path.startswith("/tmp/musa_artifacts/"), (name, path)    # where the stage's COPY put it
        for path in re.findall(r"install_musa\.sh \w+ (\S+)", buildkit):
            assert f",target={path} " in buildkit, (name, path)                # where the bind mount put it
