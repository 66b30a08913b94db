"""The invoke tasks: adapters that parse flags, call one function of `commands`, and turn the
project's errors into one `error: ...` line and an exit code.

Defaults live in `defaults`, registered with `Collection.configure`: the keys every build task
shares at the top, one section per task. invoke's config system lets `musa_docker.yaml` /
`invoke.yaml` and `MUSA_DOCKER_*` / `INVOKE_*` variables override them; a flag given on the
command line wins over both.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import traceback
from typing import Any, Callable, Dict, List, Tuple

from invoke import Collection, Exit, Task

from . import commands
from .defaults import SYSTEMS, config as default_config, default
from .errors import MusaDockerError


class MusaTask(Task):
    """A Task whose short flags and extra long names are given explicitly, as DESIGN.md spells them."""

    def __init__(self, *args, names: Dict[str, Tuple[str, ...]] = None, **kwargs):
        self.names = names or {}
        kwargs["auto_shortflags"] = False
        super().__init__(*args, **kwargs)

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, taken_names)
        opts["names"] = list(opts["names"]) + list(self.names.get(name, ()))
        return opts


# (name, signature default, extra names, help): the flags every build task has.
COMMON: List[Tuple[str, Any, Tuple[str, ...], str]] = [
    ("tag", None, ("t",), f"image tag [{default('', 'tag')}]"),
    ("build_dir", None, (), "staging dir for the build context [$DOCKER_BUILD_DIR, else a fresh temp dir]"),
    ("keep_build_dir", False, (), "keep the staged context after the build"),
    ("no_cache", False, (), "do not use the engine's layer cache"),
    ("pull", False, (), "pull a newer version of the FROM image"),
    ("network", None, (), f"network mode of the build's RUN steps [{default('', 'network')}]"),
    ("apt_mirror", None, (), "apt mirror base URL used inside the image [the image's own sources]"),
    ("pip_index_url", None, (), "pip index used inside the image [pip's default]"),
    ("insecure", False, (), "turn TLS verification off for downloads (never the default)"),
    ("force", False, (), "build even when the image under the tag already has the same inputs"),
    ("dry_run", False, (), "print the plan and stop: nothing is cloned, downloaded or built"),
    ("docker_host", None, (), "engine to use [$DOCKER_HOST, else the current docker context]"),
]


def _signature(params) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature(
        [inspect.Parameter("c", kind)] + [inspect.Parameter(p[0], kind, default=p[1]) for p in params]
    )


def musa_task(name: str, doc: str, params, run: Callable[[Dict[str, Any]], int], common: bool = True):
    """Make a task from a flag table; its body only collects the values and calls `run`."""
    params = list(params) + (COMMON if common else [])

    section = name.replace("-", "_")

    def body(c, **given):
        values = {k: (v if v not in (None, []) else configured(c.config, section, k, v)) for k, v in given.items()}
        return boundary(lambda: run(values))

    body.__name__ = name.replace("-", "_")
    body.__doc__ = doc
    body.__signature__ = _signature(params)
    return MusaTask(
        body, name=name,
        names={p[0]: p[2] for p in params},
        help={p[0]: p[3] for p in params},
        iterable=[p[0] for p in params if p[1] == []],
    )


def configured(config, section: str, key: str, fallback):
    """A flag's value from config: the task's own section first, then the shared keys."""
    own = config.get(section, {})
    if key in own:
        return own[key]
    return config.get(key, fallback) if key in COMMON_KEYS else fallback


COMMON_KEYS = {p[0] for p in COMMON}


def boundary(call: Callable[[], int]) -> None:
    """Run a command; a MusaDockerError becomes `error: ...` on stderr and its exit code."""
    try:
        code = call()
    except MusaDockerError as err:
        if os.environ.get("MUSA_DOCKER_DEBUG") or logging.getLogger().isEnabledFor(logging.DEBUG):
            traceback.print_exc()
        raise Exit(f"error: {err}", code=err.exit_code) from None
    except KeyboardInterrupt:
        raise Exit("error: interrupted; nothing was tagged", code=130) from None
    if isinstance(code, int) and code:
        raise Exit(code=code)


build_base = musa_task(
    "build-base",
    "Build the base image: OS, build tools, a Python env, numpy, the PyTorch source at /home/pytorch.",
    [
        ("image", None, ("i",), f"image name [{default('build_base', 'image')}]"),
        ("sys", None, ("s",), f"OS image to start from: {', '.join(SYSTEMS)} [{default('build_base', 'sys')}]"),
        ("python_version", None, ("v",), f"Python version of the env [{default('build_base', 'python_version')}]"),
        ("python_env", None, (), f"conda or venv (the distribution's python3) [{default('build_base', 'python_env')}]"),
        ("conda_url", None, (), "conda installer location (http(s), file:// or path, optional #sha256=) [Miniforge3]"),
        ("pytorch_tag", None, (), f"PyTorch tag to clone [{default('build_base', 'pytorch_tag')}]"),
        ("pytorch_repo", None, (), "PyTorch repo to clone from [github.com/pytorch/pytorch]"),
        ("pytorch_root", None, (), "the repo lives at DIR/pytorch: reused if present, else cloned [$PYTORCH_REPO_ROOT_PATH, else ~]"),
    ],
    lambda values: commands.build_base(values, os.environ),
)

VENDOR = [
    ("musa_url", None, ("m", "musa-toolkits-url"), "MUSA toolkit archive (*.tar.gz) location [$MUSA_TOOLKITS_URL] (required)"),
    ("mudnn_url", None, ("n",), "muDNN archive (*.tar) location [$MUDNN_URL] (required)"),
    ("mccl_url", None, (), "MCCL archive (*.tar.gz) location [$MCCL_URL] (optional)"),
]

build_dev = musa_task(
    "build-dev",
    "Build the dev image: MUSA toolkit, muDNN, MCCL, torch_musa and torchvision built from source, on a base image.",
    [
        ("image", None, ("i",), f"image name [{default('build_dev', 'image')}]"),
        ("base_img", None, ("b",), "base image made by build-base, name:tag (required)"),
        ("docker_file", None, ("f",), f"Dockerfile [{default('build_dev', 'docker_file')}]"),
        *VENDOR,
        ("vision_tag", None, (), f"torchvision tag [{default('build_dev', 'vision_tag')}]"),
        ("vision_repo", None, (), "torchvision repo to clone from [github.com/pytorch/vision]"),
        ("vision_root", None, (), "the repo lives at DIR/vision: reused if present, else cloned [$TORCH_VISION_REPO_ROOT_PATH, else ~]"),
        ("torch_musa_repo", None, (), "torch_musa URL (fetched into the cache) or local repo path (used as it is) [github.com/MooreThreads/torch_musa]"),
        ("torch_musa_ref", None, (), "branch, tag or commit of torch_musa [the repo's default branch / HEAD]"),
    ],
    lambda values: commands.build_dev(values, os.environ),
)

release = musa_task(
    "release",
    "Build the release image: an OS image with the MUSA libraries, a Python env and the torch + torch_musa wheels.",
    [
        ("image", None, ("i",), f"image name [{default('release', 'image')}]"),
        ("base_img", None, ("b",), f"OS image to start from: {', '.join(SYSTEMS)} [{default('release', 'base_img')}]"),
        ("docker_file", None, ("f",), f"Dockerfile [{default('release', 'docker_file')}]"),
        ("python_version", None, ("v",), f"Python version of the env [{default('release', 'python_version')}]"),
        ("python_env", None, (), f"conda or venv (the distribution's python3) [{default('release', 'python_env')}]"),
        ("conda_url", None, (), "conda installer location [Miniforge3]"),
        *VENDOR,
        ("torch_whl_url", None, (), "torch wheel location [$TORCH_WHL_URL] (required)"),
        ("torch_musa_whl_url", None, (), "torch_musa wheel location [$TORCH_MUSA_WHL_URL] (required)"),
    ],
    lambda values: commands.release(values, os.environ),
)

shell = musa_task(
    "shell",
    "Open bash in a dev container of IMAGE (created, started or reused), or run --cmd in it.",
    [
        ("image", None, ("i",), "image to run (required)"),
        ("name", None, (), "container name [derived from the image]"),
        ("shm_size", None, (), f"shared memory size [{default('shell', 'shm_size')}]"),
        ("privileged", default("shell", "privileged"), (), "run privileged (--no-privileged to turn off) [on]"),
        ("env", [], ("e",), "KEY=VALUE for the container, repeatable [MTHREADS_VISIBLE_DEVICES=all]"),
        ("cmd", None, ("c",), "run this command non-interactively, stream its output, exit with its code"),
        ("docker_host", None, (), "engine to use [$DOCKER_HOST, else the current docker context]"),
    ],
    lambda values: commands.shell(values, os.environ),
    common=False,
)

ns = Collection(build_base, build_dev, release, shell)
ns.configure(default_config())
