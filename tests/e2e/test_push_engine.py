"""`push` against real registries on 127.0.0.1 (Debian's `docker-registry`): one open, one behind
htpasswd auth. The engine treats 127.0.0.0/8 registries as insecure, so plain http works.

The `test_cli_*` tests run `musa-docker push` as a user would; the others call `push.push`.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import shutil
import subprocess
import tarfile
import uuid

import docker.errors
import pytest

from conftest import cli
from musa_docker.commands import push as push_mod
from musa_docker.errors import ConfigError, EngineError, PushError
from registry import free_port, serve_registry

pytestmark = pytest.mark.engine

USER = "pusher"
# Unique per run, so that "the password appears nowhere" cannot pass by luck.
PASSWORD = f"pw-{uuid.uuid4().hex}"
LAYER_LINE = re.compile(r"^  [0-9a-f]{12}: (.+)$")


# --- registries ----------------------------------------------------------------------------------

def htpasswd_line(user: str, password: str) -> str:
    """`user:bcrypt-hash`, the only hash docker-registry's htpasswd accepts."""
    try:
        import bcrypt
        return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}"
    except ImportError:
        pass
    tool = shutil.which("htpasswd")
    if tool:
        done = subprocess.run([tool, "-niB", user], input=password, capture_output=True, text=True, check=True)
        return done.stdout.strip()
    pytest.fail("no bcrypt to write the registry's htpasswd: `pip install -e '.[test]'` (bcrypt) or install apache2-utils")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with serve_registry(tmp_path_factory.mktemp("registry")) as host:
        yield host


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("auth-registry")
    htpasswd = root / "htpasswd"
    htpasswd.write_text(htpasswd_line(USER, PASSWORD) + "\n")
    with serve_registry(root, htpasswd) as host:
        yield host


@pytest.fixture
def down_registry():
    """A registry address where nothing listens."""
    return f"127.0.0.1:{free_port()}"


# --- images and the user ---------------------------------------------------------------------------

@pytest.fixture
def image(engine, busybox):
    """A fresh image of this test only (busybox plus a layer of its own), removed with every tag
    it got at the end. Its own layer makes a pull from the registry the only way to get it back."""
    ref = f"musa-docker-test/push-{uuid.uuid4().hex[:10]}:src"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", f"FROM {busybox}\nCOPY stamp /stamp\n".encode()),
                           ("stamp", ref.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    built, _ = engine.images.build(fileobj=context, custom_context=True, tag=ref, rm=True)
    yield ref
    with contextlib.suppress(docker.errors.NotFound):
        engine.images.remove(built.id, force=True)


@pytest.fixture
def user(env):
    """The user's environment: an empty HOME (no docker config), no password variable."""
    return {k: v for k, v in env.items() if k not in ("DOCKER_CONFIG", push_mod.PASSWORD_VAR)}


def values(image, **given) -> dict:
    base = {"image": image, "registry": None, "remote_name": None, "remote_tag": None,
            "username": None, "password_stdin": False, "docker_host": None}
    return {**base, **given}


def run_push(env, stdin: str = "", **given):
    """`push.push` as the task calls it; return (exit code, output)."""
    out = io.StringIO()
    code = push_mod.push(values(**given), env, out=out, stdin=io.StringIO(stdin))
    return code, out.getvalue()


def target_of(image: str, registry: str) -> str:
    return f"{registry}/{image}"


def layer_lines(output: str) -> list:
    return [m.groups() for m in map(LAYER_LINE.match, output.splitlines()) if m]


def assert_progress_by_state(output: str) -> None:
    """One line per layer state change, never a line per byte count."""
    lines = [line for line in output.splitlines() if LAYER_LINE.match(line)]
    assert lines, output
    assert len(lines) == len(set(lines)), output
    assert "MB/" not in output and "kB/" not in output and "[=" not in output, output


def gone(engine, ref: str) -> bool:
    try:
        engine.images.get(ref)
        return False
    except docker.errors.ImageNotFound:
        return True


# --- push, through the library function -----------------------------------------------------------

def test_push_then_pull_back_gives_the_same_image(engine, image, registry, user):
    source_id = engine.images.get(image).id
    code, output = run_push(user, image=image, registry=registry)
    assert code == 0
    target = target_of(image, registry)
    assert f"tag {image} ({source_id[7:19]}) as {target}" in output
    states = [line.split(": ", 1)[1] for line in output.splitlines() if LAYER_LINE.match(line)]
    assert "Preparing" in states and "Pushing" in states and any(s.startswith("Pushed") for s in states), output
    assert_progress_by_state(output)
    digest = re.search(rf"^pushed {re.escape(target)} digest (sha256:[0-9a-f]{{64}})$", output, re.M)
    assert digest, output

    engine.images.remove(source_id, force=True)
    assert gone(engine, image) and gone(engine, target)
    name, tag = target.rsplit(":", 1)
    pulled = engine.images.pull(name, tag=tag)
    assert pulled.id == source_id
    assert digest.group(1) in engine.api.inspect_image(target)["RepoDigests"][0]

    again_code, again = run_push(user, image=target)
    assert again_code == 0
    assert f"tag {target}: already" in again
    assert {state for (state,) in layer_lines(again)} <= {"Preparing", "Layer already exists", "Waiting"}
    assert "Layer already exists" in again
    assert f"digest {digest.group(1)}" in again


def test_remote_name_and_tag(engine, image, registry, user):
    code, output = run_push(user, image=image, registry=registry, remote_name="team/app", remote_tag="v1.2")
    assert code == 0
    target = f"{registry}/team/app:v1.2"
    assert f"pushed {target} digest sha256:" in output
    assert engine.images.get(target).id == engine.images.get(image).id


def test_registry_down_is_an_error_naming_it_and_leaves_no_tag(engine, image, down_registry, user):
    with pytest.raises(PushError) as err:
        run_push(user, image=image, registry=down_registry)
    assert f"cannot reach registry {down_registry}" in str(err.value)
    assert "--registry" in str(err.value)
    assert gone(engine, target_of(image, down_registry))


def test_good_credentials_from_stdin(engine, image, auth_registry, user, capfd):
    code, output = run_push(user, stdin=PASSWORD + "\n", image=image, registry=auth_registry, username=USER,
                            password_stdin=True)
    assert code == 0
    assert f"login to {auth_registry} as {USER}" in output
    assert f"pushed {target_of(image, auth_registry)} digest sha256:" in output
    captured = capfd.readouterr()
    assert PASSWORD not in output + captured.out + captured.err


def test_password_from_the_environment(engine, image, auth_registry, user):
    code, output = run_push({**user, push_mod.PASSWORD_VAR: PASSWORD}, image=image, registry=auth_registry,
                            username=USER)
    assert code == 0
    assert f"pushed {target_of(image, auth_registry)} digest sha256:" in output
    assert PASSWORD not in output


def test_bad_credentials_are_refused_naming_the_registry(engine, image, auth_registry, user, capfd):
    wrong = f"wrong-{uuid.uuid4().hex}"
    out = io.StringIO()
    with pytest.raises(PushError) as err:
        push_mod.push(values(image, registry=auth_registry, username=USER, password_stdin=True), user,
                      out=out, stdin=io.StringIO(wrong))
    assert f"registry {auth_registry} refused the credentials" in str(err.value)
    captured = capfd.readouterr()
    for text in (str(err.value), repr(err.value), out.getvalue(), captured.out, captured.err):
        assert wrong not in text
    assert gone(engine, target_of(image, auth_registry))


def test_no_credentials_for_an_auth_registry_says_how_to_log_in(image, auth_registry, user):
    with pytest.raises(PushError) as err:
        run_push(user, image=image, registry=auth_registry)
    assert f"registry {auth_registry} needs credentials" in str(err.value)
    assert "--username" in str(err.value) and "docker login" in str(err.value)


def test_credentials_saved_by_docker_login_are_used(image, auth_registry, user, tmp_path):
    config = tmp_path / "docker-config"
    config.mkdir()
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {auth_registry: {"auth": token}}}))
    code, output = run_push({**user, "DOCKER_CONFIG": str(config)}, image=image, registry=auth_registry)
    assert code == 0
    assert "login to" not in output
    assert f"pushed {target_of(image, auth_registry)} digest sha256:" in output
    assert PASSWORD not in output


def test_missing_image(engine, registry, user):
    missing = f"musa-docker-test/absent-{uuid.uuid4().hex[:8]}"
    with pytest.raises(PushError) as err:
        run_push(user, image=missing, registry=registry)
    assert f"image {missing}:latest does not exist on" in str(err.value)
    assert "build it first" in str(err.value)


def test_unreachable_engine(image, registry, user):
    with pytest.raises(EngineError) as err:
        run_push(user, image=image, registry=registry, docker_host="unix:///nonexistent.sock")
    assert "unix:///nonexistent.sock" in str(err.value)


# --- flags, refused before the engine is contacted -----------------------------------------------

@pytest.mark.parametrize("given, words", [
    ({"image": "Not/Valid"}, ["-i/--image", "Not/Valid"]),
    ({"image": "ok:bad tag"}, ["-i/--image"]),
    ({"image": ""}, ["-i/--image is required"]),
    ({"registry": "http://127.0.0.1:5000"}, ["--registry", "not a URL", "--registry 127.0.0.1:5000"]),
    ({"registry": "myregistry"}, ["--registry", "Docker Hub account"]),
    ({"registry": "bad host:5000"}, ["--registry", "not a registry host"]),
    ({"remote_name": "UPPER"}, ["--remote-name", "UPPER"]),
    ({"remote_name": "reg.example.com/app"}, ["--remote-name", "--registry reg.example.com"]),
    ({"remote_tag": ".hidden"}, ["--remote-tag", ".hidden"]),
    ({"password_stdin": True}, ["--password-stdin needs --username"]),
    ({"username": USER}, ["--username", "--password-stdin", push_mod.PASSWORD_VAR]),
    ({"username": USER, "password_stdin": True}, ["--password-stdin read an empty password"]),
])
def test_bad_flags_are_config_errors(given, words, user):
    given = {"image": "musa-docker-test/app:1", "docker_host": "unix:///nonexistent.sock", **given}
    with pytest.raises(ConfigError) as err:
        run_push(user, **given)
    for word in words:
        assert word in str(err.value)


def test_password_is_not_in_the_options_repr(user):
    options = push_mod.resolve(values("app", username=USER, password_stdin=True), user, io.StringIO(PASSWORD))
    assert options.password == PASSWORD
    assert PASSWORD not in repr(options)


# --- the command line (the `push` task) ----------------------------------------------------------

def assert_one_error(result, *words) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[0] == errors[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def test_cli_push_and_pull_back(engine, image, registry, user):
    source_id = engine.images.get(image).id
    done = cli("push", "-i", image, "--registry", registry, "--remote-tag", "cli", env=user, timeout=120)
    assert done.returncode == 0, done.stderr
    target = f"{registry}/{image.rsplit(':', 1)[0]}:cli"
    assert f"tag {image}" in done.stdout and f"as {target}" in done.stdout
    assert_progress_by_state(done.stdout)
    assert re.search(rf"^pushed {re.escape(target)} digest sha256:[0-9a-f]{{64}}$", done.stdout, re.M), done.stdout
    engine.images.remove(source_id, force=True)
    name, tag = target.rsplit(":", 1)
    assert engine.images.pull(name, tag=tag).id == source_id


def test_cli_push_registry_down(image, down_registry, user):
    done = cli("push", "-i", image, "--registry", down_registry, env=user, timeout=120)
    assert_one_error(done, f"cannot reach registry {down_registry}")


def test_cli_push_auth_registry_password_from_stdin(image, auth_registry, user):
    good = cli("push", "-i", image, "--registry", auth_registry, "--username", USER, "--password-stdin",
               env=user, input=PASSWORD + "\n", timeout=120)
    assert good.returncode == 0, good.stderr
    assert f"pushed {auth_registry}/" in good.stdout
    assert PASSWORD not in good.stdout + good.stderr

    wrong = f"wrong-{uuid.uuid4().hex}"
    bad = cli("push", "-i", image, "--registry", auth_registry, "--username", USER, "--password-stdin",
              env=user, input=wrong + "\n", timeout=120)
    assert_one_error(bad, f"registry {auth_registry} refused the credentials")
    assert wrong not in bad.stdout + bad.stderr


def test_cli_push_debug_traceback_holds_no_password(image, auth_registry, user):
    wrong = f"wrong-{uuid.uuid4().hex}"
    bad = cli("push", "-i", image, "--registry", auth_registry, "--username", USER, "--password-stdin",
              env={**user, "MUSA_DOCKER_DEBUG": "1"}, input=wrong + "\n", timeout=120)
    assert bad.returncode != 0
    assert "Traceback" in bad.stderr
    assert f"error: registry {auth_registry} refused the credentials" in bad.stderr
    assert wrong not in bad.stdout + bad.stderr


def test_cli_push_username_without_password(image, auth_registry, user):
    done = cli("push", "-i", image, "--registry", auth_registry, "--username", USER, env=user, timeout=120)
    assert_one_error(done, "--username", "--password-stdin", push_mod.PASSWORD_VAR)
    assert done.returncode == ConfigError.exit_code


def test_cli_push_missing_image(registry, user):
    missing = f"musa-docker-test/absent-{uuid.uuid4().hex[:8]}"
    done = cli("push", "-i", missing, "--registry", registry, env=user, timeout=120)
    assert_one_error(done, f"image {missing}:latest does not exist", "build it first")


def test_cli_push_help_offers_no_password_flag(user):
    done = cli("push", "--help", env=user, timeout=120)
    assert done.returncode == 0, done.stderr
    for flag in ("--image", "--registry", "--remote-name", "--remote-tag", "--username", "--password-stdin",
                 "--docker-host"):
        assert flag in done.stdout
    assert not re.search(r"^\s*(-\w \S+, )?--password(=|\s|$)", done.stdout, re.M), done.stdout
