"""Every default, written once.

The tasks register `DEFAULTS` with `Collection.configure`, so invoke's config system
(`invoke.yaml`, `musa_docker.yaml`, `INVOKE_*` variables) can override any of them and the
flags override that. Nothing else in the package spells a default value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from .errors import ConfigError


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


def default_cache_dir(env: Mapping[str, str]) -> Path:
    """`$MUSA_DOCKER_CACHE`, else `~/.cache/musa_docker` (home from `env["HOME"]`).

    Raises ConfigError when neither is set."""
    home = env.get("HOME", "")
    explicit = env.get("MUSA_DOCKER_CACHE", "")
    if explicit:
        if explicit == "~" or explicit.startswith("~/"):
            if not home:
                raise ConfigError(f"MUSA_DOCKER_CACHE={explicit} starts with '~' but HOME is not set")
            explicit = home + explicit[1:]
        return Path(explicit)
    if not home:
        raise ConfigError("cannot place the download cache: HOME is not set; set MUSA_DOCKER_CACHE=DIR")
    return Path(home) / ".cache" / "musa_docker"

# The defaults as invoke config: keys shared by every build task at the top, one section per
# task. `musa-docker` reads overrides from musa_docker.yaml (project: the working dir; user:
# ~/.musa_docker.yaml; system: /etc/musa_docker.yaml) and MUSA_DOCKER_* variables
# (MUSA_DOCKER_TAG, MUSA_DOCKER_BUILD_BASE_PYTHON_VERSION, ...); `invoke` in the repo root reads
# invoke.yaml and INVOKE_* variables the same way.
COMMON = {
    "tag": "latest",
    "network": "host",
    "builder": "auto",
    "docker_cli": "docker",
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


def config() -> dict:
    """The defaults as registered with invoke's config system."""
    return {**COMMON, **{task: dict(values) for task, values in TASKS.items()}}
