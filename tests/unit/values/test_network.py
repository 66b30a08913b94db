"""Builds behind a corporate network, without an engine: --ca-cert and credentialed indexes are
checked before the plan and refused with the classic builder; the plan shows the secrets (never a
value) and the host's proxies (never a password); the templates mount the secrets in every step
that reaches the network; the secret files are private and hold only certificates."""

from __future__ import annotations

import re
import stat

import pytest

from conftest import assert_one_error, cli
from musa_docker.plan import dockerfile
from musa_docker.values import network
from musa_docker.resources import ASSETS

DEBIAN_CLI = ("--docker-cli", "/usr/bin/docker")
BUILDKIT = ("--builder", "buildkit", *DEBIAN_CLI)
SECRET = "s3cr3t-Pw"
BEGIN = "-----BEGIN CERTIFICATE-----"


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    from tlsnet import make_ca
    return make_ca(tmp_path_factory.mktemp("ca"))[0]


def dry(env, *args, task="build-base"):
    return cli(task, "--dry-run", "-i", "musa-docker-test/net", *args, env=env)


def _not_pem(tmp_path):
    path = tmp_path / "key.pem"
    path.write_text("-----BEGIN PRIVATE KEY-----\nMIGHAgEA\n-----END PRIVATE KEY-----\n")
    return path


def _broken_pem(tmp_path):
    path = tmp_path / "broken.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    return path


@pytest.mark.parametrize("make, words", [
    (lambda tmp: tmp / "missing.pem", ["does not exist"]),
    (lambda tmp: tmp, ["is a directory"]),
    (_not_pem, ["holds no '-----BEGIN CERTIFICATE-----' block"]),
    (_broken_pem, ["does not parse"]),
], ids=["missing", "a-dir", "not-pem", "broken-pem"])
def test_a_bad_ca_cert_is_one_error_line_even_in_a_dry_run(env, tmp_path, make, words):
    path = make(tmp_path)
    r = dry(env, *BUILDKIT, "--ca-cert", str(path))
    assert_one_error(r, "--ca-cert", str(path), *words)
    assert r.stdout == ""


@pytest.mark.parametrize("task, extra", [
    ("build-base", ()),
    ("build-dev", ("-b", "musa-docker-test/base:1", "-m", "/tmp/none.tar.gz", "-n", "/tmp/none.tar")),
    ("release", ("--torch-whl-url", "/tmp/t.whl", "--torch-musa-whl-url", "/tmp/tm.whl",
                 "-m", "/tmp/none.tar.gz", "-n", "/tmp/none.tar")),
])
def test_ca_cert_with_the_classic_builder_names_buildkit(env, ca, task, extra):
    r = dry(env, "--builder", "classic", "--ca-cert", str(ca), *extra, task=task)
    assert_one_error(r, "--ca-cert", "--builder buildkit")


def test_a_credentialed_index_with_the_classic_builder_names_buildkit_and_hides_the_password(env):
    r = dry(env, "--builder", "classic", "--pip-index-url", f"https://me:{SECRET}@pypi.example.com/simple")
    assert_one_error(r, "--pip-index-url", "credentials", "--builder buildkit")
    assert SECRET not in r.stdout + r.stderr


def test_the_plan_shows_secrets_without_values_and_proxies_masked(env, ca):
    env = {**env, "HTTPS_PROXY": f"http://bob:{SECRET}@proxy.example.com:3128", "no_proxy": "localhost,.corp",
           "ftp_proxy": f"bob:{SECRET}@ftp-proxy:21"}
    r = dry(env, *BUILDKIT, "--ca-cert", str(ca), "--ca-cert", str(ca),
            "--pip-index-url", f"https://me:{SECRET}@pypi.example.com/simple?token={SECRET}")
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout + r.stderr
    out = r.stdout
    assert f"secret      musa_docker_ca <- {ca} (" in out                  # a path given twice, once
    assert "secret      musa_docker_pip_index <- --pip-index-url https://***@pypi.example.com/simple?token=***" in out
    assert "build arg   PIP_INDEX_URL=https://pypi.example.com/simple\n" in out     # no credentials: a build arg
    assert "proxy arg   HTTPS_PROXY=http://***@proxy.example.com:3128" in out
    assert "proxy arg   ftp_proxy=***@ftp-proxy:21" in out
    assert "proxy arg   no_proxy=localhost,.corp" in out
    command = next(line for line in out.splitlines() if line.startswith("  command"))
    assert "--secret=id=musa_docker_ca,src=<secrets dir>/musa_docker_ca" in command
    assert "--secret=id=musa_docker_pip_index,src=<secrets dir>/musa_docker_pip_index" in command
    assert "'--build-arg=HTTPS_PROXY=http://***@proxy.example.com:3128'" in command
    assert BEGIN not in out


def test_no_proxy_env_keeps_the_hosts_proxies_out(env):
    env = {**env, "HTTP_PROXY": "http://proxy.example.com:3128", "all_proxy": "socks5://p:1080"}
    shown = dry(env, *BUILDKIT)
    assert "proxy arg   HTTP_PROXY=http://proxy.example.com:3128" in shown.stdout
    assert "proxy arg   all_proxy=socks5://p:1080" in shown.stdout
    off = dry(env, *BUILDKIT, "--no-proxy-env")
    assert off.returncode == 0, off.stderr
    assert "proxy arg" not in off.stdout and "proxy.example.com" not in off.stdout and "socks5" not in off.stdout


def test_ca_cert_from_a_variable_and_an_index_without_credentials_stays_a_build_arg(env, ca):
    r = dry({**env, "MUSA_DOCKER_CA_CERT": str(ca)}, *BUILDKIT, "--pip-index-url", "https://pypi.example.com/simple")
    assert r.returncode == 0, r.stderr
    assert f"secret      musa_docker_ca <- {ca}" in r.stdout
    assert "musa_docker_pip_index" not in r.stdout
    assert "build arg   PIP_INDEX_URL=https://pypi.example.com/simple" in r.stdout


def test_every_step_that_reaches_the_network_mounts_the_secrets_under_buildkit_only():
    for name, scripts in {"dockerfile.base": ("install_base.sh", "install_python_env.sh"),
                          "dockerfile.dev": ("install_musa_apt.sh", "install_musa_wheels.sh", "install_build_tools.sh",
                                             "build_components.sh", "build_torch_musa.sh", "build_torchvision.sh"),
                          "dockerfile.release": ("install_base.sh", "install_python_env.sh", "install_musa_wheels.sh",
                                                 "install_wheels.sh", "install_musa_apt.sh")}.items():
        template = (ASSETS / "ubuntu" / name).read_text()
        buildkit = dockerfile.render(template, "buildkit", ["artifacts/conda_installer.sh"])
        classic = dockerfile.render(template, "classic")
        code = [line for line in (buildkit + classic).splitlines() if not line.startswith("#")]
        assert not [line for line in code if "@net" in line] and "type=secret" not in classic
        steps = re.findall(r"^RUN (?:.*\\\n)*.*$", buildkit, re.M)
        for script in scripts:
            using = [s for s in steps if script in s]
            assert using, (name, script)
            for step in using:
                assert dockerfile.NET_MOUNTS in step, (name, script, step)


def test_every_script_that_reaches_the_network_sources_net_env():
    common = ASSETS / "common"
    for script in ("install_base.sh", "install_python_env.sh", "install_musa_apt.sh", "install_musa_wheels.sh",
                   "install_build_tools.sh", "install_wheels.sh", "build_components.sh", "build_torch_musa.sh",
                   "build_torchvision.sh"):
        text = (common / script).read_text()
        assert '. "$(dirname "${BASH_SOURCE[0]}")/net_env.sh"' in text, script
        assert "${PIP_INDEX_URL:-the default index}" not in text, script   # logs name PIP_INDEX_SHOWN


def test_secret_files_are_private_and_hold_only_the_certificates(tmp_path, ca):
    mixed = tmp_path / "mixed.pem"
    mixed.write_text("a comment\n" + ca.read_text() + "-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n")
    secrets = network.secrets([mixed, ca], f"https://me:{SECRET}@pypi.example.com/simple")
    assert SECRET not in repr(secrets)
    written = dict(network.write(secrets, tmp_path))
    bundle = (tmp_path / "musa_docker_ca").read_text()
    assert bundle.count(BEGIN) == 2 and "PRIVATE KEY" not in bundle and "comment" not in bundle
    assert (tmp_path / "musa_docker_pip_index").read_text() == f"https://me:{SECRET}@pypi.example.com/simple"
    for path in written.values():
        assert stat.S_IMODE((tmp_path / path).stat().st_mode) == 0o600
    assert network.secret_flag("x", "/a,b/c") == '--secret=id=x,"src=/a,b/c"'



def test_a_credentialed_musa_index_is_a_secret_of_its_own_under_buildkit(env, ca):
    args = ("--musa-apt-source", "deb [trusted=yes] http://apt.example.com/musa stable main", "--musa-runtime", "5.2",
            "--musa-wheel", "torch==2.7.1+musa5.2.0", "--torch-musa-whl-url", "https://vendor.example/torch_musa-2.7.1-cp311-cp311-linux_x86_64.whl",
            "--musa-pip-index-url", f"https://me:{SECRET}@musa.example.com/simple", "-b", "debian:12",
            "--python-env", "venv")
    r = dry(env, *BUILDKIT, *args, task="release")
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout + r.stderr
    assert "secret      musa_docker_musa_pip_index <- --musa-pip-index-url https://***@musa.example.com/simple" in r.stdout
    assert "build arg   MUSA_PIP_INDEX_URL=https://musa.example.com/simple\n" in r.stdout
    classic = dry(env, "--builder", "classic", *args, task="release")
    assert_one_error(classic, "--musa-pip-index-url", "--builder buildkit")
    assert SECRET not in classic.stdout + classic.stderr
