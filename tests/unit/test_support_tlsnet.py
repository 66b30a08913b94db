"""The test network itself (tests/support/tlsnet.py): pip, on the host, reaches the HTTPS index through the
CONNECT proxy with the test CA, and is refused without it or without the index's password."""

from __future__ import annotations

import os
import subprocess
import sys

from images import numpy_wheel
from tlsnet import ConnectProxy, https_index, make_ca, make_server_cert


def _pip_download(url, dest, *extra):
    # the host's pip config and PIP_* variables (find-links, extra indexes, a CA) stay out of it, and
    # so do the CA bundles requests prefers to --cert
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k not in
           ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")}
    env["PIP_CONFIG_FILE"] = os.devnull
    return subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                           "--retries", "0", "--no-cache-dir", "-d", str(dest), "--index-url", url, *extra,
                           "numpy<2"], capture_output=True, text=True, timeout=300, env=env)


def test_pip_reaches_the_https_index_through_the_proxy_with_the_ca_only(tmp_path):
    ca = make_ca(tmp_path / "ca")
    cert = make_server_cert(tmp_path / "server", ca)
    with https_index(tmp_path / "index", [numpy_wheel()], cert, auth=("alice", "pw-1")) as index, \
            ConnectProxy() as proxy:
        url = index["url"].replace("https://", "https://alice:pw-1@")
        ok = _pip_download(url, tmp_path / "ok", "--cert", str(ca[0]), "--proxy", proxy.url("pu:pp"))
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert list((tmp_path / "ok").glob("numpy-*.whl"))
        assert f"127.0.0.1:{index['port']}" in proxy.connects
        assert any(a and a.startswith("Basic ") for a in proxy.auth)
        untrusted = _pip_download(url, tmp_path / "no-ca")
        assert untrusted.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stdout + untrusted.stderr
        no_password = _pip_download(index["url"], tmp_path / "no-pw", "--cert", str(ca[0]), "--no-input")
        assert no_password.returncode != 0
        assert any(not authorized for _, authorized in index["seen"])
