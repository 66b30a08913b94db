"""No value from a user becomes an option of another program: each argv the tool builds (git
clone, fetch, ls-remote, config, rev-parse; docker exec) is given a value starting with '-' and
either refuses it or takes it literally. Real git repos in tmp_path; the payloads would create a
file if git ran them, and the tests look for it."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from conftest import cli, git, make_repo
from musa_docker.commands import build as commands, shell
from musa_docker.fetch import git as repos
from musa_docker.errors import ConfigError, MusaDockerError, RepoError
from musa_docker.plan.plan import RepoStep


@pytest.fixture
def canary(tmp_path):
    """A file a payload would create: `--upload-pack=touch <canary>;` and friends."""
    path = Path("/tmp") / f"pwned-{uuid.uuid4().hex}"
    yield path
    assert not path.exists(), f"a user value ran as a command: {path} exists"


@pytest.fixture
def origin(tmp_path):
    path = tmp_path / "origin"
    make_repo(path, {"README": "origin\n"}, tag="v1.0.0")
    return path


def payloads(canary: Path):
    return [f"--upload-pack=touch {canary};", f"-u touch {canary}", f"--config=core.sshCommand=touch {canary}"]


def dev_values(**over):
    values = {"base_img": "musa-pytorch-base:latest", "musa_url": "https://vendor.example/x/musa.tar.gz",
              "mudnn_url": "https://vendor.example/x/mudnn.tar",
              "dry_run": True}
    values.update(over)
    return values


# --- options: refused before the plan, naming the flag ----------------------------------------

@pytest.mark.parametrize("flag,key", [
    ("--torch-musa-ref", "torch_musa_ref"), ("--vision-tag", "vision_tag"), ("--vision-repo", "vision_repo"),
    ("--torch-musa-repo", "torch_musa_repo"),
])
def test_dev_flags_starting_with_a_dash_are_refused_before_the_plan(env, canary, flag, key):
    for value in payloads(canary):
        out = io.StringIO()
        with pytest.raises(ConfigError) as info:
            commands.build_dev(dev_values(**{key: value}), env, out)
        assert str(info.value).startswith(f"{flag} ") and "'-" in str(info.value)
        assert out.getvalue() == ""                  # no plan printed


@pytest.mark.parametrize("name", ["kineto", "mualg", "muthrust", "audio"])
def test_component_repos_and_tags_starting_with_a_dash_are_refused_before_the_plan(env, canary, name):
    for key, value in ((f"{name}_repo", None), (f"{name}_tag", "https://example.com/x.git")):
        for payload in payloads(canary):
            values = {key: payload, **({f"{name}_repo": value} if value else {})}
            out = io.StringIO()
            with pytest.raises(ConfigError) as info:
                commands.build_dev(dev_values(**values), env, out)
            assert str(info.value).startswith(f"--{key.replace('_', '-')} ") and "'-" in str(info.value)
            assert out.getvalue() == ""


@pytest.mark.parametrize("flag,key", [("--pytorch-tag", "pytorch_tag"), ("--pytorch-repo", "pytorch_repo")])
def test_base_flags_starting_with_a_dash_are_refused_before_the_plan(env, canary, flag, key):
    for value in payloads(canary):
        with pytest.raises(ConfigError) as info:
            commands.build_base({key: value, "dry_run": True}, env, io.StringIO())
        assert str(info.value).startswith(f"{flag} ")


@pytest.mark.parametrize("value", ["ext::sh -c touch% /tmp/x", "fd::17", "ftp://example.com/r.git",
                                   "https://-oProxyCommand=x/r.git", "me@-oProxyCommand=x:r.git"])
def test_transport_helpers_and_other_schemes_are_refused(env, value):
    with pytest.raises(ConfigError) as info:
        commands.build_dev(dev_values(vision_repo=value), env, io.StringIO())
    assert str(info.value).startswith("--vision-repo ")
    with pytest.raises(ConfigError) as info:
        commands.build_dev(dev_values(torch_musa_repo=value), env, io.StringIO())
    assert str(info.value).startswith("--torch-musa-repo ")


def test_the_reported_injection_is_one_error_line_naming_the_flag(env, canary):
    for extra in ([], ["--dry-run"]):
        done = cli("build-dev", *extra, "-b", "musa-pytorch-base:latest", "-m", "/x.tar.gz", "-n", "/y.tar",
                   "--torch-musa-ref", f"--upload-pack=touch {canary};", env=env)
        assert done.returncode == 2
        assert done.stderr.startswith("error: --torch-musa-ref '--upload-pack=touch ")
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_a_build_all_entry_with_a_dashed_ref_fails_before_git_runs(tmp_path, env, canary):
    matrix = tmp_path / "all.yaml"
    matrix.write_text(f"images:\n  - name: evil\n    task: build-base\n    pytorch_tag: '--upload-pack=touch {canary};'\n"
                      f"    pytorch_root: {tmp_path / 'src'}\n")
    done = cli("build-all", "-c", str(matrix), env=env)
    assert done.returncode == 1, done.stderr
    assert "failed: --pytorch-tag '--upload-pack=touch" in done.stdout
    assert not (tmp_path / "src").exists()


# --- git argvs: the repo helpers refuse such values, and git takes them literally ---------------

def step(url, ref, path, action):
    return RepoStep("torch_musa", url, ref, path, action)


def test_clone_refuses_and_git_takes_a_dashed_ref_and_url_literally(tmp_path, origin, canary):
    for bad in payloads(canary):
        with pytest.raises(RepoError):
            repos.ensure(step(origin.as_uri(), bad, tmp_path / "a" / "r", "clone"), print, "--root",
                         locks_dir=tmp_path / "locks")
        # Past the checks (as if they were gone): git reads the values as a ref and a URL.
        for url, ref in ((origin.as_uri(), bad), (bad, "v1.0.0")):
            with pytest.raises(RepoError):
                repos._clone(step(url, ref, tmp_path / "b" / "r", "clone"), print)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_fetch_refuses_and_git_takes_a_dashed_ref_and_url_literally(tmp_path, origin, canary):
    clone = tmp_path / "cache" / "torch_musa"
    good = repos.ensure(step(origin.as_uri(), "v1.0.0", clone, "fetch"), print, "--torch-musa-repo",
                        locks_dir=tmp_path / "locks")
    for bad in payloads(canary):
        with pytest.raises(RepoError):
            repos.ensure(step(origin.as_uri(), bad, clone, "fetch"), print, "--torch-musa-repo",
                         locks_dir=tmp_path / "locks")
        for url, ref in ((origin.as_uri(), bad), (bad, "v1.0.0")):
            for path in (clone, tmp_path / "fresh"):          # the reuse path and a first clone
                with pytest.raises(RepoError):
                    repos._fetch(step(url, ref, path, "fetch"), print)
    assert git("rev-parse", "HEAD", cwd=clone) == good.commit
    assert not (tmp_path / "fresh").exists()


def test_ls_remote_takes_a_dashed_url_and_ref_literally(origin, canary):
    for bad in payloads(canary):
        assert repos._remote_commit(bad, "v1.0.0", "0" * 40) is None
        assert repos._remote_commit(origin.as_uri(), bad, "0" * 40) is None
    assert repos._remote_commit(origin.as_uri(), "v1.0.0", "0" * 40) == git("rev-parse", "v1.0.0", cwd=origin)


def test_rev_parse_never_sees_a_dashed_rev(origin):
    assert repos._rev(origin, "--all") is None
    assert repos._rev(origin, "--upload-pack=x") is None
    assert repos._rev(origin, "v1.0.0") == git("rev-parse", "v1.0.0", cwd=origin)


def test_reuse_refuses_a_dashed_ref(tmp_path, origin):
    with pytest.raises(RepoError) as info:
        repos.ensure(step(origin.as_uri(), "--all", origin, "use"), print, "--torch-musa-repo",
                     locks_dir=tmp_path / "locks")
    assert "'--all'" in str(info.value)


def test_a_local_repo_path_with_a_dash_is_taken_literally(tmp_path, monkeypatch, env):
    make_repo(tmp_path / "-repo", {"README": "mine\n"})
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    commands.build_dev(dev_values(torch_musa_repo="./-repo"), env, out)
    assert "use     torch_musa -repo @ HEAD" in out.getvalue()
    state = repos.ensure(step("-repo", "HEAD", Path("-repo"), "use"), print, "--torch-musa-repo",
                         locks_dir=tmp_path / "locks")
    assert state.commit == git("rev-parse", "HEAD", cwd=tmp_path / "-repo")


# --- docker exec ------------------------------------------------------------------------------

def test_docker_exec_argv_ends_options_before_the_container():
    argv = shell.exec_argv("docker", "-name", ["A=--privileged", "B=-v /:/host"], tty=False)
    assert argv == ["docker", "exec", "-i", "--env=A=--privileged", "--env=B=-v /:/host", "--", "-name", "bash"]


def test_shell_refuses_a_dashed_container_name_and_env_key(env):
    from musa_docker.options import shell as shellopts
    for values, flag in (({"image": "busybox:latest", "name": "--privileged"}, "--name"),
                         ({"image": "busybox:latest", "env": ["--privileged=1"]}, "-e/--env")):
        with pytest.raises(MusaDockerError) as info:
            shellopts.resolve_shell(values, env)
        assert str(info.value).startswith(flag)
