"""Every default, written once.

options applies them to every value that neither a flag nor invoke's config system (`invoke.yaml`,
`musa_docker.yaml`, `MUSA_DOCKER_*` / `INVOKE_*` variables) set. Nothing else in the package spells
a default value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .errors import ConfigError
from .util import expand_home


@dataclass(frozen=True)
class System:
    """An OS image the base and release images can start from."""

    name: str          # the image reference, e.g. "ubuntu:20.04"
    distro: str        # "ubuntu" | "debian"
    codename: str      # the apt suite
    python: str        # the distribution's own python3, used by --python-env venv


SYSTEMS = {
    s.name: s
    for s in (
        System("ubuntu:20.04", "ubuntu", "focal", "3.8"),
        System("ubuntu:22.04", "ubuntu", "jammy", "3.10"),
        System("debian:12", "debian", "bookworm", "3.11"),
    )
}

PYTHON_ENVS = ("conda", "venv")

# The Python versions an env can have: what conda-forge ships and what the systems above carry.
# A version outside this set (3.99) could never be built, so it is refused before any work.
PYTHON_VERSIONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")

# Where the Python env lives inside the images; the Dockerfiles take it as a build arg.
CONDA_ROOT = "/opt/conda"
VENV_ROOT = "/opt/venv"

# Miniforge: conda-forge's installer, free of the Anaconda channel's terms of service.
CONDA_URL = "https://github.com/conda-forge/miniforge/releases/latest/download/Miniforge3-Linux-{arch}.sh"

PYTORCH_REPO = "https://github.com/pytorch/pytorch.git"
VISION_REPO = "https://github.com/pytorch/vision.git"
TORCH_MUSA_REPO = "https://github.com/MooreThreads/torch_musa.git"

RENDER_GID = 109

# Connections for one large download whose server serves byte ranges (--connections); more
# than MAX_CONNECTIONS looks like abuse to most servers.
CONNECTIONS = 4
MAX_CONNECTIONS = 16

# The variable `push --username` reads the password from (never a flag: it would show in `ps`).
PASSWORD_VAR = "MUSA_DOCKER_REGISTRY_PASSWORD"


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """`$MUSA_DOCKER_CACHE`, else `~/.cache/musa_docker` (home from `env["HOME"]`).

    Raises ConfigError when neither is set."""
    home = env.get("HOME", "")
    explicit = env.get("MUSA_DOCKER_CACHE", "")
    if explicit:
        if (explicit == "~" or explicit.startswith("~/")) and not home:
            raise ConfigError(f"MUSA_DOCKER_CACHE={explicit} starts with '~' but HOME is not set")
        return expand_home(explicit, home)
    if not home:
        raise ConfigError("cannot place the download cache: HOME is not set; set MUSA_DOCKER_CACHE=DIR")
    return Path(home) / ".cache" / "musa_docker"

# The defaults: keys shared by every build task, and one section per task. options applies them
# to whatever a flag, musa_docker.yaml / invoke.yaml or a MUSA_DOCKER_* / INVOKE_* variable did
# not set (tasks.py declares every flag's key to invoke's config system).
COMMON = {
    "tag": "latest",
    "network": "host",
    "builder": "auto",
    "docker_cli": "docker",
    "progress": "auto",
}

TASKS = {
    "build_base": {
        "image": "musa-pytorch-base",
        "sys": "ubuntu:20.04",
        "python_version": "3.8",
        "python_env": "conda",
        "pytorch_tag": "v2.0.0",
        "pytorch_repo": PYTORCH_REPO,
    },
    "build_dev": {
        "image": "musa-pytorch-dev",
        "docker_file": "ubuntu/dockerfile.dev",
        "vision_tag": "v0.16.0",
        "vision_repo": VISION_REPO,
        "torch_musa_repo": TORCH_MUSA_REPO,
        # taken when the component's repo is given without a tag (see components.py)
        "kineto_tag": "main",
        "mualg_tag": "HEAD",
        "muthrust_tag": "HEAD",
        "audio_tag": "HEAD",
        "compile_cache_size": "20G",      # ccache's max size (CCACHE_MAXSIZE), per Python and GPU arch list
    },
    "release": {
        "image": "musa-pytorch-release",
        "base_img": "ubuntu:20.04",
        "docker_file": "ubuntu/dockerfile.release",
        "python_version": "3.8",
        "python_env": "conda",
    },
    "shell": {
        "shm_size": "80G",
        "privileged": True,
        "visible_devices": "all",
    },
}


def default(task: str, key: str):
    """The default of `key` for `task` ("build_base", ...), falling back to the shared keys."""
    section = TASKS.get(task, {})
    return section[key] if key in section else COMMON.get(key)
