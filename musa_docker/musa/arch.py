"""MUSA GPU architectures: every spelling users know, normalised to the compute target `mp_XY`.

The names follow what Moore Threads' own image tooling uses:
- torch_musa's `docker/build_dev.sh` (the last one in the public repo, commit 0d1d3e1) reads the
  product name from `mthreads-gmi -q` ("MTT S80", "MTT S3000", "MTT S4000", …) and maps
  S80/S80ES/S3000 to `qy1`, S4000 to `qy2` and anything else to `ph1`; its per-GPU table gives
  qy1 no MCCL archive.
- torch_musa's `build.sh` takes `TORCH_MUSA_ARCH_LIST="21;22"`, and its README asks S80/S3000
  builds for `USE_MCCL=0` ("the MCCL library is not provided for such architectures").
- MooreThreads/vllm-musa `docker/musa.Dockerfile` sets `MTGPU_TARGET=mp_31` with
  `TORCH_MUSA_ARCH_LIST=31` for a single-arch (S5000) image.

Unlike build_dev.sh, an unknown product name is an error here, never a silent `ph1`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Tuple

from ..errors import ConfigError


@dataclass(frozen=True)
class Arch:
    target: str               # mp_21
    codename: str             # qy1
    products: Tuple[str, ...]
    mccl: bool                # the vendor ships MCCL for it

    @property
    def number(self) -> str:  # "21", as TORCH_MUSA_ARCH_LIST spells it
        return self.target[3:]


ARCHS = {
    a.target: a
    for a in (
        Arch("mp_21", "qy1", ("S80", "S80ES", "S3000"), mccl=False),
        Arch("mp_22", "qy2", ("S4000", "M1000"), mccl=True),   # M1000: on aarch64 hosts
        Arch("mp_31", "ph1", ("S5000",), mccl=True),
    )
}

ALIASES = {
    **{a.target: a.target for a in ARCHS.values()},
    **{a.codename: a.target for a in ARCHS.values()},
    **{p.lower(): a.target for a in ARCHS.values() for p in a.products},
}

DETECT = "detect"
GMI = "mthreads-gmi"


def known() -> str:
    """The spellings, for messages."""
    return "; ".join(f"{a.target} = {a.codename} = {'/'.join(a.products)}" for a in ARCHS.values())


def normalise(name, what: str = "--gpu-arch") -> str:
    """One arch name in any spelling (case-insensitive, `MTT S4000` too) -> `mp_XY`. Raises ConfigError."""
    key = re.sub(r"\s+", "", str(name)).lower()
    key = key[3:] if key.startswith("mtts") else key          # "MTT S4000", as mthreads-gmi names it
    if key in ALIASES:
        return ALIASES[key]
    raise ConfigError(f"{what} {name!r} is not a known MUSA GPU arch; known: {known()}")


@dataclass(frozen=True)
class Selection:
    """The archs an image is built for. `given` is False for the default (every arch)."""

    targets: Tuple[str, ...]
    given: bool
    detected: Tuple[str, ...] = ()   # product names mthreads-gmi reported, for --gpu-arch detect

    @property
    def arch_list(self) -> str:
        return ";".join(ARCHS[t].number for t in self.targets)

    @property
    def label(self) -> str:
        return ",".join(self.targets)

    @property
    def without_mccl(self) -> Tuple[str, ...]:
        """Archs asked for explicitly that have no MCCL: then MCCL is left out of the image."""
        return tuple(t for t in self.targets if not ARCHS[t].mccl) if self.given else ()

    def buildargs(self, mccl: bool) -> Tuple[Tuple[str, str], ...]:
        # MTGPU_TARGET names one target; with several it is passed empty (build_torch_musa.sh unsets it)
        return (("TORCH_MUSA_ARCH_LIST", self.arch_list),
                ("MTGPU_TARGET", self.targets[0] if len(self.targets) == 1 else ""),
                ("USE_MCCL", "1" if mccl else "0"))


def select(names: Iterable[str]) -> Selection:
    targets = sorted({normalise(n) for n in names})
    return Selection(tuple(targets), True)


EVERY = Selection(tuple(sorted(ARCHS)), False)


def parse(value: Optional[str]) -> Optional[Selection]:
    """`--gpu-arch` as given: None for detect (resolved later by `detect`), EVERY when absent."""
    if value in (None, "", []):
        return EVERY
    names = [n.strip() for n in str(value).split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--gpu-arch {value!r} names no arch; known: {known()}, or detect")
    if any(n.lower() == DETECT for n in names):
        if len(names) > 1:
            raise ConfigError("--gpu-arch detect stands alone: drop the other names, or drop detect")
        return None
    return select(names)


def detect(env: Mapping[str, str]) -> Selection:
    """Run `mthreads-gmi -q` on this host, as torch_musa's build_dev.sh did, and map each GPU's
    product name. Raises ConfigError when the tool is missing, fails or names no known GPU."""
    tool = shutil.which(GMI, path=env.get("PATH"))
    if not tool:
        raise ConfigError(
            f"--gpu-arch detect runs {GMI}, which is not on PATH on this host (no MUSA driver here?): "
            "name the arch instead, e.g. --gpu-arch S4000"
        )
    try:
        done = subprocess.run([tool, "-q"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ConfigError(f"--gpu-arch detect: {GMI} -q could not run ({err}); name the arch instead") from None
    products = re.findall(r"^\s*Product Name\s*:\s*(.+?)\s*$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not products:
        said = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(
            f"--gpu-arch detect: {GMI} -q named no GPU (exit {done.returncode}: {said[0]}); "
            "name the arch instead, e.g. --gpu-arch S4000"
        )
    targets = set()
    for product in products:
        try:
            targets.add(normalise(product))
        except ConfigError:
            raise ConfigError(
                f"--gpu-arch detect: {GMI} reports {product!r}, not a GPU this tool knows ({known()}); "
                "name the arch instead"
            ) from None
    return Selection(tuple(sorted(targets)), True, tuple(dict.fromkeys(products)))


def choose(value, env: Mapping[str, str]) -> Tuple[Selection, str]:
    """The archs `--gpu-arch` names (a list from a config file too), and how they were chosen for
    the plan's inputs: `flag` (named), `default` (every arch), or what detect saw."""
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    selection = parse(value)
    if selection is None:
        selection = detect(env)
        return selection, f"detect: {GMI} reports {', '.join(selection.detected)}"
    return selection, "flag" if selection.given else "default"
