"""End to end, behind a corporate network made on 127.0.0.1 (tests/support/tlsnet.py): `build-base` with
BuildKit installs numpy from an HTTPS index whose certificate comes from the test's own CA, behind
basic auth, through an HTTP CONNECT proxy that needs a password too.

Two builds: without `--ca-cert` pip's certificate check fails the build (first, so that the failing
step is not served by the layer cache of the second: a secret is not part of a step's cache key);
with `--ca-cert` it succeeds. Then neither the CA, nor the index's password, nor the proxy's is in
any layer, the history, the labels, the tool's output or its log."""

from __future__ import annotations

import base64
import json
import re
import tarfile
import uuid
from pathlib import Path

import pytest

from conftest import BUILDERS, cli, remove_images, user_env

pytestmark = [pytest.mark.engine, pytest.mark.e2e]

IMAGE = "musa-docker-test/net-base"
INDEX_PASSWORD = "idx-pw-" + uuid.uuid4().hex[:10]
PROXY_PASSWORD = "proxy-pw-" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def net(tmp_path_factory, upstream, engine):
    from images import debian12_image, numpy_wheel
    from tlsnet import ConnectProxy, https_index, make_ca, make_server_cert
    debian12_image(engine)
    tmp = tmp_path_factory.mktemp("e2e-net")
    ca = make_ca(tmp / "ca")
    cert = make_server_cert(tmp / "server", ca)
    tag, again = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    env = user_env(tmp)
    args = ["build-base", "-s", "debian:12", "--python-env", "venv", "-v", "3.11", "-i", IMAGE,
            "--pytorch-root", str(tmp / "src"), "--pytorch-repo", upstream["url"], *BUILDERS["buildkit"]]
    with https_index(tmp / "index", [numpy_wheel()], cert, auth=("alice", INDEX_PASSWORD)) as index, \
            ConnectProxy() as proxy:
        env["HTTPS_PROXY"] = proxy.url(f"bob:{PROXY_PASSWORD}")
        env["NO_PROXY"] = "example.invalid"
        url = index["url"].replace("https://", f"https://alice:{INDEX_PASSWORD}@")
        untrusted = cli(*args, "-t", tag, "--pip-index-url", url, env=env)
        connects_before = list(proxy.connects)
        trusted = cli(*args, "-t", tag, "--pip-index-url", url, "--ca-cert", str(ca[0]), env=env)
        # without the CA and the proxies, under another tag: the same steps, served by the layer cache
        plain = {k: v for k, v in env.items() if k not in ("HTTPS_PROXY", "NO_PROXY")}
        cached = cli(*args, "-t", again, "--pip-index-url", url, env=plain)
        yield {"untrusted": untrusted, "trusted": trusted, "cached": cached, "ref": f"{IMAGE}:{tag}", "ca": ca[0],
               "index": index, "proxy": proxy, "connects_before": connects_before, "tmp": tmp}
    remove_images(engine, f"{IMAGE}:{tag}", f"{IMAGE}:{again}")


def _error_lines(r) -> list:
    return [line for line in r.stderr.splitlines() if line.startswith("error:")]


def _log(r) -> str:
    found = re.search(r"build log: (\S+)", r.stdout) or re.search(r"the whole build log: (\S+)", r.stderr)
    assert found, r.stdout[-2000:] + r.stderr[-2000:]
    return Path(found.group(1)).read_text()


def test_without_the_ca_pip_fails_on_the_certificate_with_one_error_line(net):
    r = net["untrusted"]
    assert r.returncode != 0, r.stdout[-3000:]
    assert len(_error_lines(r)) == 1, r.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in r.stderr or "certificate verify failed" in r.stderr, r.stderr
    assert "install_python_env" in r.stderr


def test_with_the_ca_pip_installs_numpy_from_the_https_index(net, engine):
    r = net["trusted"]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = engine.containers.run(net["ref"], ["python", "-c", "import numpy; print(numpy.__version__)"],
                                remove=True, network_mode="none").decode()
    assert out.strip().startswith("1.")
    # the index saw the build's requests with the password, as the secret gave it
    assert any(path.startswith("/simple/numpy") and ok for path, ok in net["index"]["seen"])
    assert "net_env: apt, pip, conda, git and curl trust the CAs of --ca-cert" in _log(r)


def test_the_proxy_carried_the_builds_pip_traffic(net):
    target = f"127.0.0.1:{net['index']['port']}"
    assert target in net["connects_before"], net["connects_before"]      # the failing build's pip
    assert net["proxy"].connects.count(target) > net["connects_before"].count(target)
    assert f"Basic {base64.b64encode(f'bob:{PROXY_PASSWORD}'.encode()).decode()}" in net["proxy"].auth


def _ca_body(path: Path) -> bytes:
    """A line from the middle of the CA's base64: bytes that are in no file but a copy of it."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("-----")]
    return lines[len(lines) // 2].encode()


def test_no_secret_is_in_any_layer_history_label_output_or_log(net, engine, tmp_path):
    r = net["trusted"]
    assert r.returncode == 0, r.stderr[-3000:]
    needles = {"the CA": _ca_body(net["ca"]), "the index password": INDEX_PASSWORD.encode(),
               "the proxy password": PROXY_PASSWORD.encode()}
    history = json.dumps(engine.api.history(net["ref"]))
    config = json.dumps(engine.api.inspect_image(net["ref"]))
    texts = {"history": history, "image config and labels": config, "stdout": r.stdout, "stderr": r.stderr,
             "build log": _log(r), "failed stdout": net["untrusted"].stdout,
             "failed stderr": net["untrusted"].stderr, "failed build log": _log(net["untrusted"])}
    for where, text in texts.items():
        for what, needle in needles.items():
            assert needle.decode() not in text, f"{what} is in the {where}"
    assert "HTTPS_PROXY" not in history and "PROXY" not in history.upper()
    # every layer of the image, as `docker save` gives it
    saved = tmp_path / "image.tar"
    with open(saved, "wb") as f:
        for chunk in engine.images.get(net["ref"]).save(named=False):
            f.write(chunk)
    layers = 0
    with tarfile.open(saved) as outer:
        for member in outer:
            if not member.isfile():
                continue
            layers += member.name.endswith("layer.tar")
            found = _search(outer.extractfile(member), needles)
            assert not found, f"{', '.join(found)} in {member.name} of the saved image"
    assert layers >= 3
    # what the build wrote for the secrets was removed with the build dir
    assert not list((net["tmp"] / "cache" / "builds").iterdir())


def _search(stream, needles: dict) -> list:
    """The names of the needles found in `stream`, read in chunks that overlap by the longest."""
    keep = max(len(n) for n in needles.values())
    tail, found = b"", set()
    while chunk := stream.read(1 << 20):
        data = tail + chunk
        found.update(what for what, needle in needles.items() if needle in data)
        tail = data[-keep:]
    return sorted(found)


def test_adding_or_removing_a_ca_or_a_proxy_changes_no_cache_key(net):
    r = net["cached"]
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    log = _log(r)
    steps = set(re.findall(r"^#(\d+) \[[^\]]*\] RUN .*install_(?:base|python_env)\.sh", log, re.M))
    assert len(steps) == 2, log[:3000]
    for number in steps:
        assert re.search(rf"^#{number} CACHED$", log, re.M), f"step #{number} ran again:\n{log[-3000:]}"
