"""Every default, written once.

The tasks register `DEFAULTS` with `Collection.configure`, so invoke's config system
(`invoke.yaml`, `musa_docker.yaml`, `INVOKE_*` variables) can override any of them and the
flags override that. Nothing else in the package spells a default value.
"""

from __future__ import annotations

from dataclasses import dataclass


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

DEFAULTS = {
    # every build task
    "tag": "latest",
    "network": "host",
    "docker_file_base": "ubuntu/dockerfile.base",
    "docker_file_dev": "ubuntu/dockerfile.dev",
    "docker_file_release": "ubuntu/dockerfile.release",
    # build-base
    "image_base": "musa-pytorch-base",
    "sys": "ubuntu:20.04",
    "python_version": "3.8",
    "python_env": "conda",
    "pytorch_tag": "v2.0.0",
    "pytorch_repo": PYTORCH_REPO,
    # build-dev
    "image_dev": "musa-pytorch-dev",
    "vision_tag": "v0.16.0",
    "vision_repo": VISION_REPO,
    "torch_musa_repo": TORCH_MUSA_REPO,
    # release
    "image_release": "musa-pytorch-release",
    "release_base_img": "ubuntu:20.04",
    # shell
    "shm_size": "80G",
    "privileged": True,
    "visible_devices": "all",
}
