"""What each image kind holds, written once.

The plan (where the source trees go), the post-build check (what must import, be installed, be
set and exist) and `verify` (which rows a kind promises, and why it skips the others) all read
this table. Adding a component to a kind is one edit here; the probe script
(common/probe_image.py) asks the image about whatever the table names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple

# Where the vendor installers put the MUSA toolkit, and the env that makes it usable: the
# Dockerfiles' MUSA env block is rendered from MUSA_ENV (`with_musa_env`), a test holds them equal.
MUSA_HOME = "/usr/local/musa"
MUSA_ENV: Tuple[Tuple[str, str], ...] = (
    ("MUSA_HOME", MUSA_HOME),
    ("PATH", "${MUSA_HOME}/bin:${PATH}"),
    # No trailing ':' when the image sets no LD_LIBRARY_PATH: an empty entry would search the cwd.
    ("LD_LIBRARY_PATH", "${MUSA_HOME}/lib${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"),
)
NO_TOOLKIT = "base images have no MUSA toolkit"


@dataclass(frozen=True)
class Kind:
    name: str                                   # the musa_docker.kind label
    # Modules the post-build check imports: they import in any container, without a MUSA device.
    imports: Tuple[str, ...] = ()
    # Distributions the post-build check asks to be installed, not imported: torch_musa may need
    # the MUSA driver to import, which a build machine need not have.
    installed: Tuple[str, ...] = ()
    # What `verify` imports besides those, first, in the order of its rows (it runs where the MUSA
    # stack may be, and says why an import fails).
    verified: Tuple[str, ...] = ()
    trees: Mapping[str, str] = field(default_factory=dict)   # repo name -> its directory in the image
    musa_home: Optional[str] = None             # the toolkit's home, None when the kind has none
    # Whether the kind can build with the SDK (mcc in $MUSA_HOME/bin): dev can; the lean release
    # holds the SDK's runtime libraries only (docs/tasks.md#a-lean-release-image).
    compiles: bool = False
    # Whether a build of the kind must keep the lean-release rules (check/lean.py) before it is tagged.
    lean: bool = False
    # Why this kind lacks a module another kind promises (verify's skipped rows), where
    # "<kind> images have no <module>" does not say it.
    lacks: Mapping[str, str] = field(default_factory=dict)

    @property
    def env(self) -> Dict[str, str]:
        """Variables the image must set."""
        return {"MUSA_HOME": self.musa_home} if self.musa_home else {}

    @property
    def paths(self) -> Tuple[str, ...]:
        """Paths that must exist in the image: the SDK's libraries, and its tools where it compiles."""
        if not self.musa_home:
            return ()
        return ((f"{self.musa_home}/bin",) if self.compiles else ()) + (f"{self.musa_home}/lib",)

    @property
    def modules(self) -> Tuple[str, ...]:
        """Everything `verify` imports for this kind, in order."""
        return _unique(self.verified + self.imports + self.installed)

    def describe(self, repos=None) -> str:
        """What the post-build check asks of the image, for the plan; `repos` the names of the
        trees the build puts there (None: every tree of the kind)."""
        parts = [f"import {', '.join(self.imports)}" if self.imports else "",
                 f"installed {', '.join(self.installed)}" if self.installed else "",
                 ", ".join(f"${k}={v}" for k, v in self.env.items()),
                 ", ".join(f"{path} at its commit" for name, path in self.trees.items()
                           if repos is None or name in repos)]
        return "; ".join(p for p in parts if p)

    def why_not(self, module: str) -> str:
        return self.lacks.get(module, f"{self.name} images have no {module}")


KINDS: Dict[str, Kind] = {k.name: k for k in (
    Kind("base", imports=("numpy",), trees={"pytorch": "/home/pytorch"},
         lacks={"torch": "base images hold the PyTorch source, not a build"}),
    Kind("dev", imports=("torchvision",), installed=("torch_musa",), verified=("numpy", "torch", "torchvision"),
         trees={"torch_musa": "/home/torch_musa", "vision": "/home/vision", "kineto": "/home/kineto",
                "mualg": "/home/mualg", "muthrust": "/home/muthrust", "audio": "/home/audio"}, musa_home=MUSA_HOME,
         compiles=True),
    Kind("release", imports=("torch",), installed=("torch", "torch_musa"), verified=("numpy",), musa_home=MUSA_HOME,
         lean=True,
         lacks={"torchvision": "release images install only the torch and torch_musa wheels"}),
)}


def get(name: str) -> Kind:
    return KINDS[name]


def all_modules() -> Tuple[str, ...]:
    """Every module some kind promises: the import rows of `verify`, whatever the image's kind."""
    return _unique(tuple(m for kind in KINDS.values() for m in kind.modules))


ENV_BEGIN = "# BEGIN musa env"
ENV_END = "# END musa env"


def with_musa_env(dockerfile: str) -> str:
    """`dockerfile` (text) with the lines between its ENV_BEGIN and ENV_END markers rendered from
    MUSA_ENV: the one MUSA env block of dockerfile.dev and dockerfile.release."""
    lines = dockerfile.split("\n")
    begin = next(i for i, line in enumerate(lines) if line.startswith(ENV_BEGIN))
    end = next(i for i, line in enumerate(lines) if i > begin and line.startswith(ENV_END))
    block = [f"ENV {name}={value}" for name, value in MUSA_ENV]
    return "\n".join(lines[:begin + 1] + block + lines[end:])


if __name__ == "__main__":
    # `python -m musa_docker.musa.kinds`: rewrite the MUSA env block of the Dockerfiles that hold one.
    from ..resources import DOCKERFILES
    for path in DOCKERFILES.values():
        text = path.read_text()
        if ENV_BEGIN in text:
            path.write_text(with_musa_env(text))


def _unique(names) -> Tuple[str, ...]:
    return tuple(dict.fromkeys(names))
