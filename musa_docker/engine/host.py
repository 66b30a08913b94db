"""Facts about the machine and the engine the images run on: MUSA device nodes, the engine's
mthreads runtime, the host's `render` group, the MUSA driver's and the container toolkit's
versions. `shell`, `verify` and `doctor` read them here."""

from __future__ import annotations

import glob
import grp
import os
import re
import shutil
import subprocess
from typing import List, Mapping, Optional, Tuple

from .api import Engine

MUSA_RUNTIME = "mthreads"
MTGPU_DRIVER = "mtgpu"   # the kernel driver of Moore Threads GPUs, as /sys names it


def render_gid() -> Optional[int]:
    """The host's `render` gid (it differs from host to host: 104, 109, 110…), if it has one."""
    try:
        return grp.getgrnam("render").gr_gid
    except KeyError:
        return None


def device_nodes(dev: str = "/dev", sys_drm: str = "/sys/class/drm") -> List[str]:
    """This machine's MUSA device nodes: /dev/mtgpu*, and the DRI nodes the mtgpu driver owns."""
    nodes = sorted(glob.glob(os.path.join(dev, "mtgpu*")))
    for node in sorted(glob.glob(os.path.join(dev, "dri", "card*")) + glob.glob(os.path.join(dev, "dri", "renderD*"))):
        driver = os.path.realpath(os.path.join(sys_drm, os.path.basename(node), "device", "driver"))
        if os.path.basename(driver).startswith(MTGPU_DRIVER):
            nodes.append(node)
    return nodes


def is_local(engine: Engine) -> bool:
    """Whether the engine runs on this machine, so that this machine's devices and groups are its."""
    host = engine.host
    if host.startswith(("unix://", "npipe://", "/")):
        return True
    address = host.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return address in ("127.0.0.1", "localhost", "::1")


def musa_runtime(info: Mapping) -> Tuple[Optional[str], bool]:
    """(the name of the engine's mthreads runtime or None, whether it is the default runtime),
    from the engine's `info`."""
    names = list((info.get("Runtimes") or {}).keys())
    name = MUSA_RUNTIME if MUSA_RUNTIME in names else next((n for n in names if MUSA_RUNTIME in n), None)
    return name, name is not None and info.get("DefaultRuntime") == name


GMI = "mthreads-gmi"
_DRIVER_RE = re.compile(r"Driver\s+Version\s*:\s*v?([0-9][0-9A-Za-z.+~-]*)", re.IGNORECASE)
_TOOL_VERSION_RE = re.compile(r"version\s*:?\s*v?([0-9]+(?:\.[0-9]+)+)", re.IGNORECASE)


def _ask(argv: List[str], env: Mapping[str, str]) -> Optional[str]:
    """What a host program prints (stdout and stderr), or None when it cannot run or fails."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                              env=dict(env))
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout + done.stderr if done.returncode == 0 else None


def driver_version(env: Mapping[str, str]) -> Optional[str]:
    """The MUSA driver's version as `mthreads-gmi -q` reports it (`Driver Version : 2.7.0`), or None
    where there is no mthreads-gmi on PATH or it does not answer."""
    tool = shutil.which(GMI, path=env.get("PATH"))
    said = _ask([tool, "-q"], env) if tool else None
    found = _DRIVER_RE.search(said or "")
    return found.group(1) if found else None


def toolkit_version(info: Mapping, env: Mapping[str, str]) -> Tuple[Optional[str], Optional[str]]:
    """(the version of the container toolkit behind the engine's mthreads runtime, asked of the
    runtime's program with `--version`, or None; that program's path, or None when the engine
    names no mthreads runtime)."""
    name, _ = musa_runtime(info)
    if name is None:
        return None, None
    path = str(((info.get("Runtimes") or {}).get(name) or {}).get("path") or "")
    program = path if os.path.isabs(path) else shutil.which(path or name, path=env.get("PATH"))
    said = _ask([program, "--version"], env) if program else None
    found = _TOOL_VERSION_RE.search(said or "")
    return (found.group(1) if found else None), (program or path or name)
