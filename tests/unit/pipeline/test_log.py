"""The build log as a person sees it: --progress tty cuts what the engine says to one line per
build step; the file keeps every line."""

from __future__ import annotations

import io

from musa_docker.pipeline.log import BuildLog

BUILDKIT = """#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 2.31kB done
#1 DONE 0.0s
#5 [stage-0 1/4] FROM docker.io/library/debian:12
#5 DONE 0.1s
#6 [stage-0 2/4] COPY common/ /opt/common/
#6 DONE 0.2s
#7 [stage-0 3/4] RUN /opt/common/install_base.sh
#7 0.512 Reading package lists...
#7 [stage-0 3/4] RUN /opt/common/install_base.sh
#7 3.101 Setting up git (1:2.39.5-0+deb12u1) ...
#7 DONE 12.3s
#8 [4/4] RUN python -m venv /opt/venv
#8 DONE 2.0s
"""

CLASSIC = """Step 1/3 : FROM debian:12
 ---> 1a2b3c4d5e6f
Step 2/3 : RUN echo hi
 ---> Running in 0f9e8d7c6b5a
hi
Step 3/3 : LABEL a=b
Successfully built 0123456789ab
"""


def _written(text, tmp_path, steps, pieces=7):
    out = io.StringIO()
    log = BuildLog(tmp_path / "b.log", echo=out, steps=steps)
    for i in range(0, len(text), pieces):       # the engine's chunks end anywhere, mid-line too
        log.write(text[i:i + pieces])
    log.close()
    return out.getvalue(), (tmp_path / "b.log").read_text()


def test_tty_shows_each_buildkit_step_once_and_the_file_keeps_all(tmp_path):
    shown, kept = _written(BUILDKIT, tmp_path, steps=True)
    assert shown.splitlines() == [
        "#5 [stage-0 1/4] FROM docker.io/library/debian:12",
        "#6 [stage-0 2/4] COPY common/ /opt/common/",
        "#7 [stage-0 3/4] RUN /opt/common/install_base.sh",
        "#8 [4/4] RUN python -m venv /opt/venv",
    ]
    assert kept == BUILDKIT


def test_tty_shows_the_classic_builders_steps(tmp_path):
    shown, _ = _written(CLASSIC, tmp_path, steps=True)
    assert shown.splitlines() == ["Step 1/3 : FROM debian:12", "Step 2/3 : RUN echo hi", "Step 3/3 : LABEL a=b"]


def test_plain_shows_everything(tmp_path):
    shown, kept = _written(BUILDKIT, tmp_path, steps=False)
    assert shown == kept == BUILDKIT
