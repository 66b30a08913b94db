"""A real Redis on 127.0.0.1: Debian's redis-server on a free port, nothing kept on disk, for the
compile cache's shared remote storage (the e2e test and bench/rebuild/remote.py)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

from dockerd import free_port


def redis_cli(port: int, *args: str) -> str:
    """`redis-cli -p PORT ARGS`: its answer."""
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def serve_redis() -> Iterator[int]:
    """redis-server up and answering; its port. Stopped and its dir removed at the end."""
    assert shutil.which("redis-server"), "no redis-server on this machine: run scripts/test.sh, which installs it"
    port = free_port()
    root = Path(tempfile.mkdtemp(prefix="md-redis."))
    proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while redis_cli(port, "ping") != "PONG":
            assert proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)
