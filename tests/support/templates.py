"""The shipped Dockerfile templates as the tests read them: rendered for a builder as if the
usual artifacts (the vendor archives, the torch wheels, the conda installer) were staged."""

from __future__ import annotations

from musa_docker.plan import dockerfile
from musa_docker.resources import ASSETS

VENDOR = ("artifacts/musa_toolkits.tar.gz", "artifacts/mudnn.tar", "artifacts/mccl.tar.gz")
WHEELS = ("artifacts/wheels/torch/torch-2.0.0-cp38-cp38-linux_x86_64.whl",
          "artifacts/wheels/torch_musa/torch_musa-1.0.0-cp38-cp38-linux_x86_64.whl")
STAGED = (*VENDOR, *WHEELS, "artifacts/conda_installer.sh")


def rendered(name: str, builder: str, staged=STAGED) -> str:
    return dockerfile.render((ASSETS / "ubuntu" / name).read_text(), builder, staged)
