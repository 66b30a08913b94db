"""No value from a user becomes an option of another program, on the real engine: the docker CLI
takes a container name starting with '-' literally."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from musa_docker.commands import shell


@pytest.mark.engine
def test_the_docker_cli_takes_a_dashed_container_name_literally(engine):
    name = f"--privileged-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(shell.exec_argv("docker", name, ["X=1"], tty=False), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode != 0
    assert f"No such container: {name}" in done.stderr
