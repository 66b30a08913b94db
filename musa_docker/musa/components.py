"""The dev image's optional source components besides torch_musa and torchvision: kineto (for
torch_musa's build, USE_KINETO=1), muAlg and muThrust (built and installed before torch_musa with
their own `mt_build.sh -i`) and torchaudio (built after torchvision).

Each is in the image only when its repo is given (a flag, or the pins file's `repos` section).
kineto lives under a root on the host as torchvision does (reused if present, else cloned); the
others, like a torch_musa URL, are fetched into clones the tool owns in the cache, or used as
they are when the repo is a local path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Tuple

from .. import defaults
from ..values import validate


@dataclass(frozen=True)
class Spec:
    name: str                 # the repo's name: its context tar, its label, its dir /home/<name>
    ref_key: str              # the flag key of its tag
    root_key: Optional[str]   # the flag key of its root (cloned/reused there), None: fetched or used

    @property
    def repo_key(self) -> str:
        return f"{self.name}_repo"


SPECS: Tuple[Spec, ...] = (
    Spec("kineto", "kineto_tag", "kineto_root"),
    Spec("mualg", "mualg_tag", None),
    Spec("muthrust", "muthrust_tag", None),
    Spec("audio", "audio_tag", None),
)


@dataclass(frozen=True)
class Component:
    name: str
    url: str                  # a URL, or a local repo path (used as it is)
    ref: str
    local: bool
    root: Optional[Path]      # where its dir lives (kineto), None for the fetched ones
    flag: str                 # the flag its path came from, named in errors about it


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def resolve(values: Mapping[str, Any], env: Mapping[str, str], home: Path, *,
            url: Callable[..., str], path: Callable[[Any, Path], Optional[Path]],
            root: Callable[..., str]) -> Tuple[Component, ...]:
    """The components given, checked: `url`, `path` and `root` are options' repo URL, path and
    root checks (one check each, in one place). Raises ConfigError."""
    found = []
    for spec in SPECS:
        repo = values.get(spec.repo_key)
        if not repo:
            continue
        flag = _flag(spec.repo_key)
        ref = validate.git_ref(values.get(spec.ref_key) or defaults.default("build_dev", spec.ref_key), _flag(spec.ref_key))
        if spec.root_key:
            where = path(root(values, env, spec.root_key, "", home), home)
            found.append(Component(spec.name, url(repo, flag), ref, False, where, _flag(spec.root_key)))
        elif validate.is_url(repo):
            found.append(Component(spec.name, url(repo, flag, local_ok=False), ref, False, None, flag))
        else:
            local = str(path(validate.local_repo(repo, flag), home))
            found.append(Component(spec.name, local, ref, True, None, flag))
    return tuple(found)
