"""A second Docker engine for the tests: a dockerd of its own (socket, data root, exec root,
containerd namespaces) under a directory of the test's, and the certificates a TLS engine and its
client need (conftest.py's `engine2` is one such engine)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import docker
import docker.errors


def _openssl(*args, cwd):
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"openssl {' '.join(args)} failed: {done.stderr}"


def make_certs(root: Path, name: str = "ca") -> dict:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as the docker CLI
    expects them: the client's in one dir as ca.pem, cert.pem, key.pem."""
    root.mkdir(parents=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
             "-days", "2", "-subj", f"/CN=musa-docker-test-{name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=root)
    for who, extensions in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
                            ("client", "extendedKeyUsage=clientAuth\n")):
        (root / f"{who}.ext").write_text(extensions)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}-key.pem", "-out", f"{who}.csr",
                 "-subj", f"/CN={who}", cwd=root)
        _openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
                 "-CAcreateserial", "-days", "2", "-out", f"{who}-cert.pem", "-extfile", f"{who}.ext", cwd=root)
    client = root / "client"
    client.mkdir()
    shutil.copy(root / "ca.pem", client / "ca.pem")
    shutil.copy(root / "client-cert.pem", client / "cert.pem")
    shutil.copy(root / "client-key.pem", client / "key.pem")
    return {"ca": root / "ca.pem", "cert": root / "server-cert.pem", "key": root / "server-key.pem", "client": client}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pid(path: Path):
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start_dockerd(root: Path, *extra: str):
    """A dockerd of its own under `root` (socket, data root, exec root, pidfile, log), answering on
    `unix://root/d.sock`; returns (process, client, socket address)."""
    assert shutil.which("dockerd"), "no dockerd on this machine: run the README's test command"
    sock = f"unix://{root}/d.sock"
    log_path = root / "dockerd.log"
    command = [
        "dockerd", "--iptables=false", "--bridge=none", "-H", sock, *extra,
        "--data-root", str(root / "data"), "--exec-root", str(root / "x"), "--pidfile", str(root / "d.pid"),
        # its own containerd namespaces, should it share a system containerd with the first engine
        "--containerd-namespace", "musa-docker-test", "--containerd-plugins-namespace", "musa-docker-test-plugins",
    ]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    client = None
    deadline = time.monotonic() + 60
    while client is None:
        if proc.poll() is not None:
            raise AssertionError(f"the dockerd exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            client = docker.DockerClient(base_url=sock, timeout=60)
        except docker.errors.DockerException:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"the dockerd did not answer within 60 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
    return proc, client, sock


def stop_dockerd(proc, root: Path, sig=signal.SIGTERM) -> None:
    """Stop the dockerd and the containerd it started; unmount what they left under `root`."""
    containerd = _pid(root / "x" / "containerd" / "containerd.pid")
    proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    # dockerd stops the containerd it started; should it not have, stop that one process.
    if containerd and _alive(containerd):
        os.kill(containerd, signal.SIGTERM)
        for _ in range(100):
            if not _alive(containerd):
                break
            time.sleep(0.1)
    left = [line.split()[1] for line in open("/proc/self/mounts") if f" {root}/" in line]
    for point in sorted(left, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
