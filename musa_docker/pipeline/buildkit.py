"""The BuildKit build through the docker client (docker-py speaks only the classic builder,
docker/docker-py#2230).

`run` has the classic build's shape: the staged context dir, the Dockerfile, build args, labels;
the log streams (`--progress=plain`) into the same BuildLog; a failing step raises the same
BuildError; the image id comes from `--iidfile`; nothing is tagged.
"""

from __future__ import annotations

import collections
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence, Tuple

from .log import TAIL, Built, failure
from ..engine.docker_cli import Builder, BuildSettings, command
from ..errors import BuildError, EngineError
from ..values.locations import redact
from ..util import Say

_STEP = re.compile(r"^#(\d+) (\[.*)$")
_LINE = re.compile(r"^#(\d+) (\d+\.\d+) (.*)$")
_ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")
_CACHE = re.compile(r"^#(\d+) importing cache manifest from (\S+)")
_CODE = re.compile(r"exit code: (\d+)")



def run(builder: Builder, context_dir: Path, log, settings: BuildSettings, *, say: Say,
        secrets: Sequence[Tuple[str, str]] = ()):
    """One BuildKit build through the docker client; returns build.Built. Raises BuildError."""
    steps, tails, errors, caches = {}, collections.defaultdict(lambda: collections.deque(maxlen=TAIL)), {}, {}
    last = collections.deque(maxlen=TAIL)
    with tempfile.TemporaryDirectory(prefix="musa-docker-iid-") as tmp:
        iidfile = Path(tmp) / "iid"
        argv, extra = command(builder, settings, context=str(context_dir), iidfile=str(iidfile), secrets=secrets)
        try:
            proc = subprocess.Popen(argv, env={**dict(builder.env), **extra}, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    encoding="utf-8", errors="replace", bufsize=1)
        except OSError as err:
            raise EngineError(f"the docker client {builder.cli} cannot be run: {err}") from err
        with proc:
            for line in proc.stdout:
                log.write(line)
                line = line.rstrip("\n")
                if line.strip():
                    last.append(line)
                if m := _CACHE.match(line):
                    caches[m.group(1)] = m.group(2)
                elif m := _STEP.match(line):
                    steps[m.group(1)] = m.group(2)
                elif m := _LINE.match(line):
                    tails[m.group(1)].append(m.group(3))
                elif m := _ERROR.match(line):
                    if m.group(1) in caches:
                        say(f"warning: --cache-from {caches[m.group(1)]} cannot be used "
                            f"({redact(m.group(2))[:200]}); building without it")
                    else:
                        errors[m.group(1)] = m.group(2)
        code = proc.returncode
        image_id = iidfile.read_text().strip() if iidfile.exists() else ""
    if code != 0 or not image_id:
        if errors:
            num, message = list(errors.items())[-1]
            match = _CODE.search(message)
            raise BuildError(failure(steps.get(num, f"#{num}"), match and int(match.group(1)), message,
                                     tails[num], log.path))
        raise BuildError(failure(f"{Path(argv[0]).name} {' '.join(argv[1:3])}", None,
                                 f"the docker client exited with code {code} without an image id",
                                 last, log.path))
    return Built(image_id, log.path)
