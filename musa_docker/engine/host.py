"""Facts about the machine and the engine the images run on: MUSA device nodes, the engine's
mthreads runtime, the host's `render` group. `shell` and `verify` read them here."""

from __future__ import annotations

import glob
import grp
import os
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
