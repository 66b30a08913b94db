"""Bad input to build-dev and release: one `error:` line, a non-zero exit, no traceback, nothing
built or tagged. Each fails before any image step runs, so none of them needs a real base."""

from __future__ import annotations

import io
import uuid

import pytest

import vendor
from conftest import cli
from httpserver import Server

pytestmark = pytest.mark.engine


def one_error(done, starts: str):
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    assert starts in lines[-1], lines[-1]
    return lines[-1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad-vendor")
    torch_whl, torch_musa_whl = vendor.fixture_wheels(d, "3.11")
    return {
        "musa": vendor.musa_toolkits_archive(d), "mudnn": vendor.mudnn_archive(d),
        "corrupt": vendor.corrupt_archive(d), "no_installer": vendor.archive_without_installer(d, "mudnn"),
        "torch": torch_whl, "torch_musa": torch_musa_whl,
    }


def release(env, files, **over):
    args = {"-m": str(files["musa"]), "-n": str(files["mudnn"]), "--torch-whl-url": str(files["torch"]),
            "--torch-musa-whl-url": str(files["torch_musa"]), **over}
    flat = [x for k, v in args.items() if v is not None for x in (k, v)]
    tag = uuid.uuid4().hex[:8]
    done = cli("release", "-b", "debian:12", "--python-env", "venv", "-v", "3.11", "-i", "musa-docker-test/bad",
               "-t", tag, *flat, env=env)
    return done, f"musa-docker-test/bad:{tag}"


def test_corrupt_archive_names_the_artifact_and_builds_nothing(env, files, engine):
    done, ref = release(env, files, **{"-m": str(files["corrupt"])})
    one_error(done, "error: the musa_toolkits archive from")
    assert "corrupt" in done.stderr
    assert not engine.images.list(name=ref)
    assert "build " not in done.stdout                  # no build was started


def test_archive_without_its_installer(env, files):
    done, _ = release(env, files, **{"-n": str(files["no_installer"])})
    one_error(done, "has no installer at mudnn/install_mudnn.sh")


def test_wheel_url_that_is_not_a_wheel(env, files):
    done, _ = release(env, files, **{"--torch-whl-url": str(files["musa"])})
    one_error(done, "torch_wheel from")
    assert "is not a wheel" in done.stderr


def test_404_and_checksum_mismatch_and_unresolvable_host(env, files):
    with Server() as server:
        server.add("/musa.tar.gz", files["musa"].read_bytes())
        missing, _ = release(env, files, **{"-m": server.url("/nope.tar.gz")})
        one_error(missing, "error: ")
        assert "404" in missing.stderr
        wrong, _ = release(env, files, **{"-m": server.url("/musa.tar.gz") + "#sha256=" + "0" * 64})
        one_error(wrong, "error: ")
        assert "sha256" in wrong.stderr and "0" * 64 in wrong.stderr
    nowhere, _ = release(env, files, **{"-m": "https://vendor.invalid/musa.tar.gz"})
    one_error(nowhere, "vendor.invalid")


def test_unsupported_scheme_and_missing_required_url(env, files):
    done, _ = release(env, files, **{"-m": "ftp://vendor.example/musa.tar.gz"})
    one_error(done, "error: ")
    assert "ftp" in done.stderr
    env = {k: v for k, v in env.items() if k not in ("TORCH_WHL_URL",)}
    done, _ = release(env, files, **{"--torch-whl-url": None})
    one_error(done, "error: --torch-whl-url is required")


@pytest.fixture(scope="module")
def labelled_base(engine, busybox):
    """A stand-in base: enough for build-dev to read its Python version from the label."""
    ref = f"musa-docker-test/fake-base:{uuid.uuid4().hex[:8]}"
    dockerfile = f"FROM {busybox}\nLABEL musa_docker.kind=base musa_docker.python_version=3.11\n"
    list(engine.api.build(fileobj=io.BytesIO(dockerfile.encode()), tag=ref, rm=True, decode=True))
    yield ref
    engine.images.remove(ref, force=True)


def test_base_image_the_engine_has_not_and_cannot_pull(env, files):
    done = cli("build-dev", "-b", "musa-docker-test/absent:nope", "-m", str(files["musa"]), "-n", str(files["mudnn"]), env=env)
    line = one_error(done, "error: -b/--base-img musa-docker-test/absent:nope: the engine at")
    assert "cannot pull it" in line and "build-base" in line


def test_torch_musa_path_that_is_not_a_git_repo(env, files, labelled_base, tmp_path):
    plain = tmp_path / "torch_musa"
    plain.mkdir()
    (plain / "setup.py").write_text("\n")
    done = cli("build-dev", "-b", labelled_base, "-m", str(files["musa"]), "-n", str(files["mudnn"]),
               "--torch-musa-repo", str(plain), env=env)
    one_error(done, f"error: --torch-musa-repo {plain} is not a git repo")
    assert (plain / "setup.py").exists()


def test_extra_wheel_for_another_python_fails_before_any_build(env, files, tmp_path, engine):
    other = vendor.extra_wheel(tmp_path, "3.10")
    done, ref = release(env, files, **{"--wheel": str(other)})
    one_error(done, f"error: --wheel {other.name} is built for cp310, but the image's Python is 3.11")
    assert "fetch" not in done.stdout + done.stderr.splitlines()[0]      # refused before any download
    assert not engine.images.list(name=ref)


def test_kineto_tag_that_does_not_exist(env, files, labelled_base, tmp_path):
    upstream = tmp_path / "upstream"
    torch_musa, vision, kineto = (vendor.torch_musa_repo(upstream), vendor.vision_repo(upstream),
                                  vendor.kineto_repo(upstream))
    done = cli("build-dev", "-b", labelled_base, "-m", str(files["musa"]), "-n", str(files["mudnn"]),
               "--torch-musa-repo", str(torch_musa), "--vision-repo", vision.as_uri(),
               "--vision-root", str(tmp_path / "src"), "--kineto-repo", kineto.as_uri(),
               "--kineto-tag", "v9.9.9", "--kineto-root", str(tmp_path / "src"), env=env)
    line = one_error(done, "error: ")
    assert "v9.9.9" in line and "kineto" in line, line
    assert not (tmp_path / "src" / "kineto").exists()       # no half clone left behind


def test_sigterm_cleans_up_like_ctrl_c(env, engine, busybox, tmp_path):
    import signal
    import time

    from conftest import containers_running, slow_release
    token = uuid.uuid4().hex[:12]
    proc, _ = slow_release(tmp_path, env, busybox, token, 300)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "error: terminated" and "Traceback" not in err
    assert sum(line.startswith("error:") for line in err.splitlines()) == 1
    builds = tmp_path / "cache" / "builds"
    assert not builds.exists() or list(builds.iterdir()) == []        # the build dir it made is gone
    assert not engine.images.list(name=f"musa-docker-test/slow:{token}")
    deadline = time.monotonic() + 60
    while containers_running(engine, token) and time.monotonic() < deadline:
        time.sleep(1)
    assert containers_running(engine, token) == []
