"""The vendor archives the MUSA SDK comes in (the other way is the apt repository, sdk.py), one row
each, read by everything that names them: the flags and their old variables (options/flags.py),
the pins file's `artifacts:` keys (pins.py), the inputs table and the pins layer
(options/inputs.py), the options (options/build.py), where the context holds each one
(plan/plan.py), and the check of each archive's shape on the host (fetch/archives.py).

Shapes as the vendor ships them: the MUSA toolkit `*.tar.gz` holds
`musa_toolkits_install/install.sh`; muDNN `*.tar` holds `mudnn/install_mudnn.sh`; MCCL `*.tar.gz`
holds an `install.sh` somewhere inside. The installers install under /usr/local/musa.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple


@dataclass(frozen=True)
class Archive:
    name: str                  # musa_toolkits: the artifact's name (pins file, cache, label, context)
    key: str                   # musa_url: the flag's key in config files and build-all entries
    names: Tuple[str, ...]     # short flags and aliases, as the old scripts spelled them
    flags: str                 # -m/--musa-url: how a message names the flag
    env: str                   # MUSA_TOOLKITS_URL: the old scripts' variable
    dest: str                  # where the build context holds it
    installer: str             # the installer's path inside the archive, or its file name (anywhere)
    anywhere: bool
    required: bool             # without --musa-apt-source
    help: str


ARCHIVES: Tuple[Archive, ...] = (
    Archive("musa_toolkits", "musa_url", ("m", "musa-toolkits-url"), "-m/--musa-url", "MUSA_TOOLKITS_URL",
            "artifacts/musa_toolkits.tar.gz", "musa_toolkits_install/install.sh", False, True,
            "MUSA toolkit archive (*.tar.gz) location [$MUSA_TOOLKITS_URL, else the pins file's for the arch] "
            "(required without --musa-apt-source)"),
    Archive("mudnn", "mudnn_url", ("n",), "-n/--mudnn-url", "MUDNN_URL",
            "artifacts/mudnn.tar", "mudnn/install_mudnn.sh", False, True,
            "muDNN archive (*.tar) location [$MUDNN_URL, else the pins file's for the arch] "
            "(required without --musa-apt-source)"),
    Archive("mccl", "mccl_url", (), "--mccl-url", "MCCL_URL",
            "artifacts/mccl.tar.gz", "install.sh", True, False,
            "MCCL archive (*.tar.gz) location [$MCCL_URL, else the pins file's for the arch] (optional)"),
)

BY_NAME: Dict[str, Archive] = {a.name: a for a in ARCHIVES}
BY_KEY: Dict[str, Archive] = {a.key: a for a in ARCHIVES}
NAMES: Tuple[str, ...] = tuple(a.name for a in ARCHIVES)
