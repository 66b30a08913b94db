"""Every task's flags, declared once: the tasks are made from these tables, and build-all checks
a matrix entry's keys against them.

A row is (name, signature default, extra names, help): `name` is the Python name (`python_version`
is `--python-version`), the extra names are short flags and aliases as DESIGN.md spells them.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ..defaults import CONNECTIONS, MAX_CONNECTIONS, SYSTEMS, default
from ..errors import ConfigError
from ..defaults import PASSWORD_VAR

Flag = Tuple[str, Any, Tuple[str, ...], str]

DOCKER_HOST: Flag = ("docker_host", None, (), "engine to use [$DOCKER_HOST, else the current docker context]")

COMMON: List[Flag] = [
    ("tag", None, ("t",), f"image tag [{default('', 'tag')}]"),
    ("build_dir", None, (), "staging dir for the build context [$DOCKER_BUILD_DIR, else a fresh dir in the cache]"),
    ("keep_build_dir", False, (), "keep the staged context after the build"),
    ("no_cache", False, (), "do not use the engine's layer cache"),
    ("pull", False, (), "pull a newer version of the FROM image"),
    ("network", None, (), f"network mode of the build's RUN steps [{default('', 'network')}]"),
    ("apt_mirror", None, (), "apt mirror base URL used inside the image [the image's own sources]"),
    ("pip_index_url", None, (), "pip index used inside the image; credentials in it pass as a BuildKit secret [pip's default]"),
    ("ca_cert", [], (), "PEM file of a CA the build's apt, pip, conda, git and curl trust (a BuildKit secret, in no layer), repeatable"),
    ("no_proxy_env", False, (), "do not pass the host's HTTP_PROXY, HTTPS_PROXY, FTP_PROXY, NO_PROXY, ALL_PROXY to the build"),
    ("insecure", False, (), "turn TLS verification off for downloads (never the default)"),
    ("connections", None, (), f"connections for one large download whose server serves ranges, 1-{MAX_CONNECTIONS} [{CONNECTIONS}]"),
    ("force", False, (), "build even when the image under the tag already has the same inputs"),
    ("dry_run", False, (), "print the plan and stop: nothing is cloned, downloaded or built"),
    DOCKER_HOST,
    ("builder", None, (), f"auto, buildkit or classic [{default('', 'builder')}: BuildKit when the docker client and engine can]"),
    ("docker_cli", None, (), f"docker client that runs BuildKit builds [{default('', 'docker_cli')} on PATH]"),
    ("buildx_builder", None, (), "build on this buildx builder (`docker buildx ls`) [the engine's own BuildKit]"),
    ("cache_from", [], (), "image REF whose layers the build may reuse (e.g. pushed by another machine), repeatable"),
    ("cache_to", None, (), "export the build cache to registry REF, mode=max (needs --buildx-builder)"),
    ("verify", False, (), "after the build, verify the new image (as `verify -i`); a failing check fails the task"),
]

VENDOR: List[Flag] = [
    ("musa_url", None, ("m", "musa-toolkits-url"), "MUSA toolkit archive (*.tar.gz) location [$MUSA_TOOLKITS_URL, else the pins file's for the arch] (required without --musa-apt-source)"),
    ("mudnn_url", None, ("n",), "muDNN archive (*.tar) location [$MUDNN_URL, else the pins file's for the arch] (required without --musa-apt-source)"),
    ("mccl_url", None, (), "MCCL archive (*.tar.gz) location [$MCCL_URL, else the pins file's for the arch] (optional)"),
]

# The MUSA 5.x stack (sdk.py): the SDK from an apt repository instead of VENDOR's archives, and
# MUSA-built wheels from a MUSA pip index kept apart from --pip-index-url.
MUSA_STACK: List[Flag] = [
    ("musa_apt_source", None, (), 'the SDK from this apt source, "deb [trusted=yes] URL SUITE COMPONENT" (instead of -m/-n/--mccl-url)'),
    ("musa_runtime", None, (), "the runtime line of --musa-apt-source, X.Y (5.2 installs musa-toolkit-5-2, mtcc-5-2, ...)"),
    ("musa_pip_index_url", None, (), "the MUSA pip index: --musa-wheel requirements come from it alone, never merged with --pip-index-url"),
    ("musa_wheel", [], (), "NAME==VERSION from the MUSA index, installed --no-deps first, repeatable (e.g. torch==2.7.1+musa5.2.0)"),
]


GPU_ARCH: Flag = ("gpu_arch", None, (), "GPU arch(s) to build for, comma-separated: qy1|qy2|ph1, S80|S3000|S4000|S5000, "
                  "mp_21|mp_22|mp_31, or detect (mthreads-gmi) [every supported arch]")
PINS: Flag = ("pins", None, (), "YAML pins file: versions, repos, per-arch artifacts and wheels (see README, pins)")


def _env_flags(task: str) -> List[Flag]:
    return [
        ("python_version", None, ("v",), f"Python version of the env [{default(task, 'python_version')}]"),
        ("python_env", None, (), f"conda or venv (the distribution's python3) [{default(task, 'python_env')}]"),
        ("conda_url", None, (), "conda installer location (http(s), file:// or path, optional #sha256=) [Miniforge3]"),
    ]


BUILD_BASE: List[Flag] = [
    ("image", None, ("i",), f"image name [{default('build_base', 'image')}]"),
    ("sys", None, ("s",), f"OS image to start from: {', '.join(SYSTEMS)} [{default('build_base', 'sys')}]"),
    *_env_flags("build_base"),
    ("pytorch_tag", None, (), f"PyTorch tag to clone [{default('build_base', 'pytorch_tag')}]"),
    ("pytorch_repo", None, (), "PyTorch repo to clone from [github.com/pytorch/pytorch]"),
    ("pytorch_root", None, (), "the repo lives at DIR/pytorch: reused if present, else cloned [$PYTORCH_REPO_ROOT_PATH, else ~]"),
    PINS,
]

BUILD_DEV: List[Flag] = [
    ("image", None, ("i",), f"image name [{default('build_dev', 'image')}]"),
    ("base_img", None, ("b",), "base image made by build-base, name:tag (required)"),
    ("docker_file", None, ("f",), f"Dockerfile [{default('build_dev', 'docker_file')}]"),
    *VENDOR,
    *MUSA_STACK,
    ("vision_tag", None, (), f"torchvision tag [{default('build_dev', 'vision_tag')}]"),
    ("vision_repo", None, (), "torchvision repo to clone from [github.com/pytorch/vision]"),
    ("vision_root", None, (), "the repo lives at DIR/vision: reused if present, else cloned [$TORCH_VISION_REPO_ROOT_PATH, else ~]"),
    ("torch_musa_repo", None, (), "torch_musa URL (fetched into the cache) or local repo path (used as it is) [github.com/MooreThreads/torch_musa]"),
    ("torch_musa_ref", None, (), "branch, tag or commit of torch_musa [the repo's default branch / HEAD]"),
    ("kineto_repo", None, (), "kineto repo, made available to torch_musa's build (USE_KINETO=1) [none: USE_KINETO=0]"),
    ("kineto_tag", None, (), "kineto tag or branch [main]"),
    ("kineto_root", None, (), "the kineto repo lives at DIR/kineto: reused if present, else cloned [~]"),
    ("mualg_repo", None, (), "muAlg URL (fetched into the cache) or local repo path, built with mt_build.sh -i before torch_musa [none]"),
    ("mualg_tag", None, (), "branch, tag or commit of muAlg [HEAD]"),
    ("muthrust_repo", None, (), "muThrust URL (fetched into the cache) or local repo path, built with mt_build.sh -i before torch_musa [none]"),
    ("muthrust_tag", None, (), "branch, tag or commit of muThrust [HEAD]"),
    ("audio_repo", None, (), "torchaudio URL (fetched into the cache) or local repo path, built after torchvision [none]"),
    ("audio_tag", None, (), "branch, tag or commit of torchaudio [HEAD]"),
    ("no_compile_cache", False, (), "compile without ccache (BuildKit keeps it in a cache mount; classic has none)"),
    ("compile_cache_size", None, (), f"the compile cache's max size, e.g. 5G or 500M [{default('build_dev', 'compile_cache_size')}]"),
    GPU_ARCH,
    PINS,
]

RELEASE: List[Flag] = [
    ("image", None, ("i",), f"image name [{default('release', 'image')}]"),
    ("base_img", None, ("b",), f"OS image to start from: {', '.join(SYSTEMS)} [{default('release', 'base_img')}]"),
    ("docker_file", None, ("f",), f"Dockerfile [{default('release', 'docker_file')}]"),
    *_env_flags("release"),
    *VENDOR,
    *MUSA_STACK,
    ("torch_whl_url", None, (), "torch wheel location [$TORCH_WHL_URL, else the pins file's] (required unless --musa-wheel torch==...)"),
    ("torch_musa_whl_url", None, (), "torch_musa wheel location [$TORCH_MUSA_WHL_URL, else the pins file's] (required unless --musa-wheel torch_musa==...)"),
    ("wheel", [], (), "an extra wheel (torchvision, torchaudio, triton…) installed after torch_musa, checked for the image's Python and platform; repeatable [the pins file's]"),
    GPU_ARCH,
    PINS,
]

PINS_TASK: List[Flag] = [
    ("pins", None, (), "the pins file to check (required)"),
    ("gpu_arch", None, (), "show this arch's artifacts and wheels [the table of every arch in the file]"),
    ("python_version", None, ("v",), "show the wheels of this Python [every Python in the file]"),
    ("check_urls", False, (), "ask every URL (HEAD, else a ranged GET) and repo tag (git ls-remote); exit 1 if any fails"),
    ("musa_pip_index_url", None, (), "with --check-urls, ask this MUSA index for each requirement wheel's version [skipped]"),
]

SHELL: List[Flag] = [
    ("image", None, ("i",), "image to run (required)"),
    ("name", None, (), "container name [derived from the image]"),
    ("shm_size", None, (), f"shared memory size [{default('shell', 'shm_size')}]"),
    ("privileged", default("shell", "privileged"), (), "run privileged (--no-privileged to turn off) [on]"),
    ("env", [], ("e",), "KEY=VALUE for the container, repeatable [MTHREADS_VISIBLE_DEVICES=all]"),
    ("cmd", None, ("c",), "run this command non-interactively, stream its output, exit with its code"),
    DOCKER_HOST,
]

VERIFY: List[Flag] = [
    ("image", None, ("i",), "image to check: kind, Python, imports, MUSA toolkit, and a MUSA device when one is visible"),
    ("host", False, (), "check this host: the MUSA driver, the engine's mthreads runtime, the render group"),
    DOCKER_HOST,
]

BUILD_ALL: List[Flag] = [
    ("config", None, ("c",), "YAML file listing the images to build (required; see README, build-all)"),
    ("jobs", None, ("j",), "build up to N independent images at once [1]"),
    ("dry_run", False, (), "print the ordered plan and stop"),
    ("docker_host", None, (), "engine for entries that name none [$DOCKER_HOST, else the current docker context]"),
]

PUSH: List[Flag] = [
    ("image", None, ("i",), "local image to push, name[:tag] (required)"),
    ("registry", None, (), "registry HOST[:PORT] to push to [the image's own, else Docker Hub]"),
    ("remote_name", None, (), "name in the registry [the image's name without its registry]"),
    ("remote_tag", None, (), "tag in the registry [the image's tag]"),
    ("username", None, (), f"log in as USER, the password from --password-stdin or ${PASSWORD_VAR} [the docker config's credentials]"),
    ("password_stdin", False, (), "read the password of --username from stdin"),
    DOCKER_HOST,
]

# The build tasks, with all their flags: what a build-all entry may set.
BUILDS: Dict[str, List[Flag]] = {
    "build-base": BUILD_BASE + COMMON,
    "build-dev": BUILD_DEV + COMMON,
    "release": RELEASE + COMMON,
}


# Flags whose value is a whole number, not text.
NUMBERS = {"jobs"}
_OFF, _ON = ("0", "false", "no", "off", ""), ("1", "true", "yes", "on")


def checked(row: Flag, value: Any, where: str = "a config file") -> Any:
    """A flag's value from a config file, a build-all file or a variable, of its flag's type:
    on/off flags take YAML booleans or 1/0, true/false, yes/no, on/off; the rest take text
    (YAML reads `tag: 2026` as a number and `3.10` as 3.1, so those must be quoted).
    Raises ConfigError naming the flag and `where`; None passes (not set)."""
    name, default_value = row[0], row[1]
    flag = "--" + name.replace("_", "-")
    if value is None:
        return None
    if isinstance(default_value, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _OFF + _ON:
            return value.strip().lower() in _ON
        raise ConfigError(f"{flag} {value!r} from {where} is not on/off: give true or false (or 1/0, yes/no)")
    if isinstance(default_value, list):
        items = value if isinstance(value, list) else [value]
        return [checked((name, None) + tuple(row[2:]), item, where) for item in items]
    if name in NUMBERS and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value
    kind = {bool: "an on/off value", int: "a number", float: "a number"}.get(type(value), f"a {type(value).__name__}")
    hint, example = ("", value)
    if isinstance(value, float):
        hint, example = " (YAML reads 3.10 as 3.1)", "3.10" if name.endswith("version") else value
    raise ConfigError(
        f"{name} {value!r} came from {where} as {kind}{hint}, but {flag} takes text: "
        f"quote it, e.g. {name}: \"{example}\""
    )
