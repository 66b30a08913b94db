"""Every task and its flags, declared once: the invoke tasks, the cascade of values (command
line, environment, config file), build-all's entries and the docs' tables are made from these.

A `Flag` is a row: `name` is the Python name (`python_version` is `--python-version`), `default`
the signature default (False for an on/off flag, [] for a repeatable one, None otherwise: the
values themselves are in defaults.py), `names` the short flags and aliases as the old scripts
spelled them, `help`, and `old_env`, the old scripts' variable that still sets it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

from ..defaults import CONNECTIONS, MAX_CONNECTIONS, PASSWORD_VAR, SYSTEMS, default
from ..errors import ConfigError
from ..musa import vendor
from ..values.yamlfile import number_hint


class Flag(NamedTuple):
    name: str
    default: Any
    names: Tuple[str, ...]
    help: str
    old_env: Optional[str] = None

    @property
    def spelled(self) -> str:
        """`--python-version`, as a message names it."""
        return "--" + self.name.replace("_", "-")

    @property
    def on_off(self) -> bool:
        return isinstance(self.default, bool)

    @property
    def repeatable(self) -> bool:
        return isinstance(self.default, list)

    @property
    def spellings(self) -> Tuple[str, ...]:
        """Every way to type it: its short flags (`-v`), `--python-version`, then its aliases."""
        shorts = tuple(f"-{n}" for n in self.names if len(n) == 1)
        return shorts + (self.spelled,) + tuple(f"--{n}" for n in self.names if len(n) > 1)

    @property
    def opposite(self) -> Optional[str]:
        """An on/off flag's other spelling, so the command line can undo a config file:
        `--no-cache` / `--cache`, `--force` / `--no-force`, `--privileged` / `--no-privileged`."""
        if not self.on_off:
            return None
        return "--" + (self.name[3:] if self.name.startswith("no_") else "no_" + self.name).replace("_", "-")

    @property
    def placeholder(self) -> str:
        """What its value is, for help: FILE, URL, DIR, N, REF…"""
        return _PLACEHOLDERS.get(self.name) or next(
            (word for end, word in _ENDINGS if self.name.endswith(end)), "VALUE")

DOCKER_HOST = Flag("docker_host", None, (), "engine to use [$DOCKER_HOST, else the current docker context]")

COMMON: List[Flag] = [
    Flag("tag", [], ("t",), f"image tag, or NAME:TAG as docker takes it; repeatable: every tag gets the same image [{default('', 'tag')}]"),
    Flag("build_dir", None, (), "staging dir for the build context [$DOCKER_BUILD_DIR, else a fresh dir in the cache]", "DOCKER_BUILD_DIR"),
    Flag("keep_build_dir", False, (), "keep the staged context after the build"),
    Flag("no_cache", False, (), "do not use the engine's layer cache"),
    Flag("pull", False, (), "pull a newer version of the FROM image"),
    Flag("network", None, (), f"network mode of the build's RUN steps [{default('', 'network')}]"),
    Flag("apt_mirror", None, (), "apt mirror base URL used inside the image [the image's own sources]"),
    Flag("pip_index_url", None, (), "pip index used inside the image; credentials in it pass as a BuildKit secret [pip's default]"),
    Flag("ca_cert", [], (), "PEM file of a CA the build's apt, pip, conda, git and curl trust (a BuildKit secret, in no layer), repeatable"),
    Flag("no_proxy_env", False, (), "do not pass the host's HTTP_PROXY, HTTPS_PROXY, FTP_PROXY, NO_PROXY, ALL_PROXY to the build"),
    Flag("insecure", False, (), "turn TLS verification off for downloads (never the default)"),
    Flag("connections", None, (), f"connections for one large download whose server serves ranges, 1-{MAX_CONNECTIONS} [{CONNECTIONS}]"),
    Flag("force", False, (), "build even when the image under the tag already has the same inputs"),
    Flag("dry_run", False, (), "print the plan and stop: nothing is cloned, downloaded or built"),
    DOCKER_HOST,
    Flag("platform", None, (), "linux/amd64 or linux/arm64: the base image's platform, the conda installer's CPU, "
         "the wheels' platform tag and the build's platform; another CPU than the engine's runs through QEMU "
         "[the engine's own]"),
    Flag("builder", None, (), f"auto, buildkit or classic [{default('', 'builder')}: BuildKit when the docker client and engine can]"),
    Flag("docker_cli", None, (), f"docker client that runs BuildKit builds [{default('', 'docker_cli')} on PATH]"),
    Flag("buildx_builder", None, (), "build on this buildx builder (`docker buildx ls`) [the engine's own BuildKit]"),
    Flag("cache_from", [], (), "image REF whose layers the build may reuse (e.g. pushed by another machine), repeatable"),
    Flag("cache_to", None, (), "export the build cache to registry REF, mode=max (needs --buildx-builder)"),
    Flag("verify", False, (), "after the build, verify the new image (as `verify -i`); a failing check fails the task"),
    Flag("build_arg", [], (), "KEY=VALUE passed to the build, repeatable; a name the tool sets itself is refused"),
    Flag("label", [], (), "KEY=VALUE labelled on the image, repeatable; musa_docker.* and the OCI created time are the tool's"),
    Flag("metadata_file", None, (), "write the build's result as JSON here: image id, tags, digests after --push, "
         "inputs digest, seconds, builder, compile cache, the SBOM's files, the largest layers"),
    Flag("push", False, (), "push every tag after the image checks out (and --verify passes); a tag names its "
         "registry, e.g. -t registry.example.com:5000/musa-dev:2026, else it goes to Docker Hub"),
    Flag("attest", False, (), "with --push: attach the image's SBOM (SPDX and CycloneDX in-toto statements) beside "
         "each pushed tag, stored as BuildKit stores attestations, so scanners read it instead of scanning"),
    Flag("quiet", False, ("q",), "print only the image id on stdout; errors still go to stderr"),
    Flag("progress", None, (), f"auto, plain or tty: on a terminal a bar per download and one line per build "
         f"step, else the whole log [{default('', 'progress')}: tty on a terminal, else plain]"),
    Flag("lock", None, (), "build exactly the commits and bytes this lock file records (`musa-docker lock`); "
         "anything that moved is an error"),
    Flag("offline", False, (), "with --lock: fetch nothing; repos, artifacts and images from what `bundle import` "
         "brought; an input that is not here is an error before anything is built"),
    Flag("sbom", None, (), "write the image's SBOM (CycloneDX 1.6 and SPDX 2.3 JSON) here too [beside the build log only]"),
    Flag("size_budget", None, (), "fail before tagging when the image is larger than SIZE unpacked (e.g. 20G, 500M), "
         "naming its largest layers [none]"),
]

VENDOR: List[Flag] = [Flag(a.key, None, a.names, a.help, a.env) for a in vendor.ARCHIVES]

# The MUSA 5.x stack (sdk.py): the SDK from an apt repository instead of VENDOR's archives, and
# MUSA-built wheels from a MUSA pip index kept apart from --pip-index-url.
MUSA_STACK: List[Flag] = [
    Flag("musa_apt_source", None, (), 'the SDK from this apt source, "deb [trusted=yes] URL SUITE COMPONENT" (instead of -m/-n/--mccl-url)'),
    Flag("musa_runtime", None, (), "the runtime line of --musa-apt-source, X.Y (5.2 installs musa-toolkit-5-2, mtcc-5-2, ...)"),
    Flag("musa_pip_index_url", None, (), "the MUSA pip index: --musa-wheel requirements come from it alone, never merged with --pip-index-url"),
    Flag("musa_wheel", [], (), "NAME==VERSION from the MUSA index, installed --no-deps first, repeatable (e.g. torch==2.7.1+musa5.2.0)"),
]


GPU_ARCH = Flag("gpu_arch", None, (), "GPU arch(s) to build for, comma-separated: qy1|qy2|ph1, S80|S3000|S4000|S5000, "
                  "mp_21|mp_22|mp_31, or detect (mthreads-gmi) [every supported arch]")
PINS = Flag("pins", None, (), "YAML pins file: versions, repos, per-arch artifacts and wheels (see docs/config-and-pins.md)")


def _env_flags(task: str) -> List[Flag]:
    return [
        Flag("python_version", None, ("v",), f"Python version of the env [{default(task, 'python_version')}]"),
        Flag("python_env", None, (), f"conda or venv (the distribution's python3) [{default(task, 'python_env')}]"),
        Flag("conda_url", None, (), "conda installer location (http(s), file:// or path, optional #sha256=) [Miniforge3]"),
    ]


BUILD_BASE: List[Flag] = [
    Flag("image", None, ("i",), f"image name [{default('build_base', 'image')}]"),
    Flag("sys", None, ("s",), f"OS image to start from: {', '.join(SYSTEMS)} [{default('build_base', 'sys')}]"),
    *_env_flags("build_base"),
    Flag("pytorch_tag", None, (), f"PyTorch tag to clone [{default('build_base', 'pytorch_tag')}]"),
    Flag("pytorch_repo", None, (), "PyTorch repo to clone from [github.com/pytorch/pytorch]"),
    Flag("pytorch_root", None, (), "the repo lives at DIR/pytorch: reused if present, else cloned [$PYTORCH_REPO_ROOT_PATH, else ~]", "PYTORCH_REPO_ROOT_PATH"),
    PINS,
]

BUILD_DEV: List[Flag] = [
    Flag("image", None, ("i",), f"image name [{default('build_dev', 'image')}]"),
    Flag("base_img", None, ("b",), "base image made by build-base, name:tag (required)"),
    Flag("docker_file", None, ("f",), f"Dockerfile [{default('build_dev', 'docker_file')}]"),
    *VENDOR,
    *MUSA_STACK,
    Flag("vision_tag", None, (), f"torchvision tag [{default('build_dev', 'vision_tag')}]"),
    Flag("vision_repo", None, (), "torchvision repo to clone from [github.com/pytorch/vision]"),
    Flag("vision_root", None, (), "the repo lives at DIR/vision: reused if present, else cloned [$TORCH_VISION_REPO_ROOT_PATH, else ~]", "TORCH_VISION_REPO_ROOT_PATH"),
    Flag("torch_musa_repo", None, (), "torch_musa URL (fetched into the cache) or local repo path (used as it is) [github.com/MooreThreads/torch_musa]"),
    Flag("torch_musa_ref", None, (), "branch, tag or commit of torch_musa [the repo's default branch / HEAD]"),
    Flag("kineto_repo", None, (), "kineto repo, made available to torch_musa's build (USE_KINETO=1) [none: USE_KINETO=0]"),
    Flag("kineto_tag", None, (), "kineto tag or branch [main]"),
    Flag("kineto_root", None, (), "the kineto repo lives at DIR/kineto: reused if present, else cloned [~]"),
    Flag("mualg_repo", None, (), "muAlg URL (fetched into the cache) or local repo path, built with mt_build.sh -i before torch_musa [none]"),
    Flag("mualg_tag", None, (), "branch, tag or commit of muAlg [HEAD]"),
    Flag("muthrust_repo", None, (), "muThrust URL (fetched into the cache) or local repo path, built with mt_build.sh -i before torch_musa [none]"),
    Flag("muthrust_tag", None, (), "branch, tag or commit of muThrust [HEAD]"),
    Flag("audio_repo", None, (), "torchaudio URL (fetched into the cache) or local repo path, built after torchvision [none]"),
    Flag("audio_tag", None, (), "branch, tag or commit of torchaudio [HEAD]"),
    Flag("no_compile_cache", False, (), "compile without ccache (BuildKit keeps it in a cache mount; classic has none)"),
    Flag("compile_cache_size", None, (), f"the compile cache's max size, e.g. 5G or 500M [{default('build_dev', 'compile_cache_size')}]"),
    Flag("compile_cache_remote", None, (), "ccache's remote storage shared by every builder, read and written behind the local cache: a redis://, rediss://, http:// or https:// URL (its credentials pass as a secret) [none]"),
    Flag("compile_cache_remote_only_read", False, (), "read the remote compile cache, never write to it (e.g. CI)"),
    GPU_ARCH,
    PINS,
]

RELEASE: List[Flag] = [
    Flag("image", None, ("i",), f"image name [{default('release', 'image')}]"),
    Flag("base_img", None, ("b",), f"OS image to start from: {', '.join(SYSTEMS)} [{default('release', 'base_img')}]"),
    Flag("docker_file", None, ("f",), f"Dockerfile [{default('release', 'docker_file')}]"),
    *_env_flags("release"),
    *VENDOR,
    *MUSA_STACK,
    Flag("torch_whl_url", None, (), "torch wheel location [$TORCH_WHL_URL, else the pins file's] (required unless --musa-wheel torch==...)", "TORCH_WHL_URL"),
    Flag("torch_musa_whl_url", None, (), "torch_musa wheel location [$TORCH_MUSA_WHL_URL, else the pins file's] (required unless --musa-wheel torch_musa==...)", "TORCH_MUSA_WHL_URL"),
    Flag("wheel", [], (), "an extra wheel (torchvision, torchaudio, triton…) installed after torch_musa, checked for the image's Python and platform; repeatable [the pins file's]"),
    GPU_ARCH,
    PINS,
]

PINS_TASK: List[Flag] = [
    Flag("pins", None, (), "the pins file to check (required)"),
    Flag("gpu_arch", None, (), "show this arch's artifacts and wheels [the table of every arch in the file]"),
    Flag("platform", None, (), "show the file as a build for linux/amd64 or linux/arm64 reads it: each arch's "
         "entries for that platform over its own [every entry as written]"),
    Flag("python_version", None, ("v",), "show the wheels of this Python [every Python in the file]"),
    Flag("check_urls", False, (), "ask every URL (HEAD, else a ranged GET) and repo tag (git ls-remote); exit 1 if any fails"),
    Flag("musa_pip_index_url", None, (), "with --check-urls, ask this MUSA index for each requirement wheel's version [skipped]"),
]

HOST_PINS = Flag("pins", None, (), "a pins file whose compatibility section says what each SDK line needs of the "
                 "host's driver and container toolkit [the image's musa_docker.needs.* labels]")

SHELL: List[Flag] = [
    Flag("image", None, ("i",), "image to run (required)"),
    Flag("name", None, (), "container name [derived from the image]"),
    Flag("shm_size", None, (), f"shared memory size [{default('shell', 'shm_size')}]"),
    Flag("privileged", default("shell", "privileged"), (), "run privileged (--no-privileged to turn off) [on]"),
    Flag("env", [], ("e",), "KEY=VALUE for the container, repeatable [MTHREADS_VISIBLE_DEVICES=all]"),
    Flag("cmd", None, ("c",), "run this command non-interactively, stream its output, exit with its code"),
    Flag("dry_run", False, (), "say what would be created and run, and stop: the engine is not contacted"),
    HOST_PINS,
    DOCKER_HOST,
]

VERIFY: List[Flag] = [
    Flag("image", None, ("i",), "image to check: platform, the host against its SDK line, kind, Python, imports, "
         "MUSA toolkit, and a MUSA device when one is visible"),
    Flag("host", False, (), "check this host: the MUSA driver, the engine's mthreads runtime, the render group"),
    HOST_PINS,
    Flag("lean", False, (), "also hold the image to the lean-release rules (no compiler, headers, static libraries, "
         "-dev packages, apt lists, pip cache, archives, or bytes a later layer deletes); reads every layer"),
    DOCKER_HOST,
]

BUILD_ALL: List[Flag] = [
    Flag("config", None, ("c",), "YAML file listing the images to build (required; see docs/tasks.md, build-all)"),
    Flag("jobs", None, ("j",), "build up to N independent images at once [1]"),
    Flag("dry_run", False, (), "print the ordered plan and stop"),
    Flag("docker_host", None, (), "engine for entries that name none [$DOCKER_HOST, else the current docker context]"),
    Flag("lock", None, (), "build every entry from this lock file (`musa-docker lock -c FILE`), for entries that name none"),
    Flag("offline", False, (), "with --lock: every entry offline (see build-base --offline)"),
    Flag("metadata_file", None, (), "after the builds, each entry's result as JSON: engine, time, result, image id, compile-cache counts [none]"),
]

PUSH: List[Flag] = [
    Flag("image", None, ("i",), "local image to push, name[:tag] (required)"),
    Flag("registry", None, (), "registry HOST[:PORT] to push to [the image's own, else Docker Hub]"),
    Flag("remote_name", None, (), "name in the registry [the image's name without its registry]"),
    Flag("remote_tag", None, (), "tag in the registry [the image's tag]"),
    Flag("username", None, (), f"log in as USER, the password from --password-stdin or ${PASSWORD_VAR} [the docker config's credentials]"),
    Flag("password_stdin", False, (), "read the password of --username from stdin"),
    Flag("dry_run", False, (), "say what would be pushed where, and stop: no engine or registry is contacted"),
    DOCKER_HOST,
]

SBOM: List[Flag] = [
    Flag("image", None, ("i",), "image the tool built, name[:tag] or id (required)"),
    Flag("format", None, (), "cyclonedx or spdx [both]"),
    Flag("output_dir", None, ("o", "output"), "directory the documents are written to [the working directory]"),
    DOCKER_HOST,
]

DOCTOR: List[Flag] = [
    Flag("docker_cli", None, (), f"the docker client to try for BuildKit builds [{default('', 'docker_cli')} on PATH]"),
    HOST_PINS,
    DOCKER_HOST,
]

LOCK_TASK: List[Flag] = [
    Flag("config", None, ("c",), "lock every image of this build-all file (instead of TASK and its flags)"),
    Flag("output", None, ("o",), f"the lock file to write [{default('lock', 'output')}]"),
    Flag("update", [], (), "re-resolve only this input of the existing lock file (a repo, artifact, apt package, "
         "pip distribution or image name), keep the rest; repeatable"),
    Flag("docker_host", None, (), "engine whose architecture and base images are locked, for entries that name "
         "none [$DOCKER_HOST, else the current docker context]"),
]

BUNDLE_TASK: List[Flag] = [
    Flag("lock", None, (), "the lock file whose inputs the bundle carries (`musa-docker lock`) (required)"),
    Flag("output", None, ("o",), "the bundle to write: a new directory, or FILE.tar (required)"),
    Flag("since", None, (), "write a differential bundle: only what OLD (a bundle directory, tar or its "
         "manifest.json) does not hold; it imports on top of OLD"),
    Flag("split", None, (), "with -o FILE.tar: cut it into parts of at most SIZE (e.g. 4G, 700M), FILE.tar.001… "
         "and FILE.tar.parts.json"),
    Flag("insecure", False, (), "turn TLS verification off for downloads (never the default)"),
    DOCKER_HOST,
]

BUNDLE_READ: List[Flag] = [
    Flag("bundle", None, (), "the bundle, a directory or FILE.tar (also the word after `bundle verify`/`bundle import`)"),
    DOCKER_HOST,
]

CACHE: List[Flag] = [
    Flag("older_than", None, (), "only entries last used more than DAYS days ago [every entry]"),
    Flag("keep_logs", False, (), "clean: keep the build logs"),
    Flag("dry_run", False, (), "clean: say what would be removed, and remove nothing"),
    Flag("docker_host", None, (), "ls: the engine whose BuildKit cache mounts to list [$DOCKER_HOST, else the "
         "current docker context]"),
]

CONFIG_TASK: List[Flag] = [
    Flag("task", None, (), "show this task's values [every task's]"),
]

@dataclass(frozen=True)
class TaskSpec:
    """A task: its name as typed, what it does in one line, its flags, whether it builds an image
    (then it takes COMMON too, and a build-all entry may name it), the flag a bare word gives, and
    whether it runs only with a word after its name (WORDS: `cache ls`)."""

    name: str                     # "build-base"
    summary: str
    own: Tuple[Flag, ...]
    builds: bool = False
    positional: Optional[str] = None   # the flag one bare word on the command line gives (`sbom IMAGE`)
    needs_word: bool = False           # `cache` alone does nothing: `cache ls` or `cache clean`
    word: Optional[str] = None         # on a spec WORDS gives: the word that chose it, told to the command

    @property
    def typed(self) -> str:
        """How it is typed: `build-base`, `cache ls`, `lock release`."""
        return f"{self.name} {self.word}" if self.word else self.name

    @property
    def section(self) -> str:
        """Its config section and variable infix: build_base, MUSA_DOCKER_BUILD_BASE_…"""
        return self.name.replace("-", "_")

    @property
    def rows(self) -> Tuple[Flag, ...]:
        return self.own + (tuple(COMMON) if self.builds else ())

    def row(self, name: str) -> Flag:
        return next(r for r in self.rows if r.name == name)


# Every task, once; the order is the one --list and the docs use.
TASKS: Dict[str, TaskSpec] = {spec.name: spec for spec in (
    TaskSpec("build-base", "Build the base image: OS, build tools, a Python env, numpy, the PyTorch source at "
             "/home/pytorch.", tuple(BUILD_BASE), builds=True),
    TaskSpec("build-dev", "Build the dev image: MUSA toolkit, muDNN, MCCL, torch_musa and torchvision built from "
             "source, on a base image.", tuple(BUILD_DEV), builds=True),
    TaskSpec("release", "Build the release image: an OS image with the MUSA libraries, a Python env and the "
             "torch + torch_musa wheels.", tuple(RELEASE), builds=True),
    TaskSpec("shell", "Open bash in a dev container of IMAGE (created, started or reused), or run --cmd in it.",
             tuple(SHELL)),
    TaskSpec("build-all", "Build the images a YAML file lists, in dependency order, independent ones at once "
             "with --jobs.", tuple(BUILD_ALL)),
    TaskSpec("push", "Tag IMAGE as [REGISTRY/]NAME:TAG and push it: one line per layer state, the digest at the "
             "end.", tuple(PUSH)),
    TaskSpec("verify", "Check an image (-i) or this host (--host) for torch_musa work: a pass/fail/skipped table, "
             "exit 1 when a check fails.", tuple(VERIFY)),
    TaskSpec("sbom", "Write the SBOM of an image the tool built (CycloneDX 1.6 and SPDX 2.3 JSON), from its labels "
             "and a probe inside it, without rebuilding.", tuple(SBOM), positional="image"),
    TaskSpec("doctor", "Check what a build and a MUSA shell need, before they need it: git, the engine, a docker "
             "client with BuildKit, free space, the MUSA host runtime; one row each, exit 1 when a build would fail.",
             tuple(DOCTOR)),
    TaskSpec("lock", "Resolve every input of a build without building: `lock TASK [FLAGS]` or `lock -c FILE`; "
             "commits with submodules, artifact, apt and pip sha256s, base image ids, in one lock file for --lock.",
             tuple(LOCK_TASK)),
    TaskSpec("bundle", "Write everything a lock file names into one portable directory or tar: git bundles, "
             "artifacts, a flat apt repository, a wheelhouse per index, the base images, a manifest; then "
             "`bundle verify DIR` and `bundle import DIR`.", tuple(BUNDLE_TASK)),
    TaskSpec("bundle-verify", "Check every file of a bundle against its manifest (`bundle verify DIR|FILE.tar`); "
             "a file that differs, is missing or is not listed is named, and it fails.", tuple(BUNDLE_READ),
             positional="bundle"),
    TaskSpec("bundle-import", "Verify a bundle, then seed the tool's cache with it and load its images into the "
             "engine (`bundle import DIR|FILE.tar`).", tuple(BUNDLE_READ), positional="bundle"),
    TaskSpec("config", "Show every value each task would take, and where it comes from: flag, variable, config "
             "file:line or default.", tuple(CONFIG_TASK)),
    TaskSpec("cache", "List what the tool's cache holds, with sizes and last use (`cache ls`), or remove what "
             "the tool made there (`cache clean`), as pip cache and conda clean do.", tuple(CACHE),
             needs_word=True),
    TaskSpec("pins", "Show what a pins file resolves to (for --gpu-arch and -v); --check-urls asks every URL and "
             "repo tag in it.", tuple(PINS_TASK)),
)}

# The build tasks, with all their flags: what a build-all entry may set.
BUILDS: Dict[str, List[Flag]] = {name: list(spec.rows) for name, spec in TASKS.items() if spec.builds}

# What `lock TASK` leaves out of the build task's flags: it builds nothing and writes a lock.
NOT_LOCKED = ("lock", "dry_run", "offline", "push", "attest", "quiet", "progress", "verify", "metadata_file")


def lock_of(task: str) -> TaskSpec:
    """`lock TASK`: the build task's flags (but NOT_LOCKED) and lock's own but -c, one parser."""
    built, lock = TASKS[task], TASKS["lock"]
    rows = tuple(r for r in built.rows if r.name not in NOT_LOCKED)
    taken = {r.name for r in rows}
    own = rows + tuple(r for r in lock.own if r.name != "config" and r.name not in taken)
    return TaskSpec(f"lock {task}", f"Lock every input of `{task}` without building it.", own)


def lock_own(spec: TaskSpec) -> Tuple[str, ...]:
    """The keys of `lock TASK`'s values that are lock's own (-o, --update), not the build task's."""
    built = {r.name for r in TASKS[spec.name.split()[1]].rows}
    return tuple(r.name for r in TASKS["lock"].own if r.name not in built and r.name != "config")


# The words that may follow a task's name, each choosing the spec the rest of the line is parsed
# with and run by: `cache ls` (cache, told "ls"), `bundle verify DIR` (the task bundle-verify, DIR
# its --bundle), `lock build-base FLAGS` (build-base's flags and lock's own, in one parser).
WORDS: Dict[Tuple[str, str], TaskSpec] = {
    **{("cache", word): replace(TASKS["cache"], word=word, needs_word=False) for word in ("ls", "clean")},
    **{("bundle", word): TASKS[f"bundle-{word}"] for word in ("verify", "import")},
    **{("lock", task): lock_of(task) for task in BUILDS},
}


def words_of(task: str) -> List[str]:
    """The words that may follow `task`'s name, in WORDS' order."""
    return [word for name, word in WORDS if name == task]


# The value each flag takes, as help shows it: by name, else by the name's ending.
_PLACEHOLDERS = {
    "tag": "TAG", "image": "IMAGE", "base_img": "IMAGE", "sys": "OS", "python_version": "X.Y",
    "python_env": "conda|venv", "network": "MODE", "builder": "auto|buildkit|classic", "docker_cli": "PATH",
    "buildx_builder": "NAME", "cache_from": "REF", "cache_to": "REF", "gpu_arch": "ARCH[,ARCH]",
    "musa_apt_source": '"deb URL SUITE COMP"', "musa_runtime": "X.Y", "musa_wheel": "NAME==VERSION",
    "compile_cache_size": "SIZE", "compile_cache_remote": "URL", "shm_size": "SIZE", "size_budget": "SIZE",
    "sbom": "DIR", "env": "KEY=VALUE", "cmd": "COMMAND", "name": "NAME",
    "registry": "HOST[:PORT]", "remote_name": "NAME", "remote_tag": "TAG", "username": "USER", "wheel": "URL",
    "docker_host": "URL", "format": "cyclonedx|spdx", "apt_mirror": "URL", "torch_musa_repo": "URL|PATH", "mualg_repo": "URL|PATH", "muthrust_repo": "URL|PATH",
    "audio_repo": "URL|PATH", "build_arg": "KEY=VALUE", "platform": "linux/amd64|linux/arm64", "label": "KEY=VALUE", "metadata_file": "FILE",
    "lock": "FILE", "output": "FILE", "update": "NAME", "bundle": "DIR|FILE", "since": "OLD", "split": "SIZE",
    "progress": "auto|plain|tty",
}
_ENDINGS = (("_url", "URL"), ("_repo", "URL"), ("_root", "DIR"), ("_dir", "DIR"), ("_tag", "REF"), ("_ref", "REF"),
            ("_file", "FILE"), ("pins", "FILE"), ("config", "FILE"), ("ca_cert", "FILE"), ("connections", "N"),
            ("jobs", "N"), ("older_than", "DAYS"))

# Help shows a build task's flags in these groups, after the required ones and the task's own.
NETWORK = ("network", "apt_mirror", "pip_index_url", "ca_cert", "no_proxy_env", "insecure", "connections")
OUTPUT = ("verify", "push", "attest", "metadata_file", "label", "quiet", "progress", "sbom", "size_budget")
ENGINE = ("docker_host", "platform", "builder", "docker_cli", "buildx_builder", "cache_from", "cache_to", "no_cache", "pull")


# Flags whose value is a whole number, not text.
NUMBERS = {"jobs"}
_OFF, _ON = ("0", "false", "no", "off", ""), ("1", "true", "yes", "on")


def checked(row: Flag, value: Any, where: str = "a config file", at: str = "", text: str = "") -> Any:
    """A flag's value from a config file, a build-all file or a variable, of its flag's type:
    on/off flags take YAML booleans or 1/0, true/false, yes/no, on/off; the rest take text
    (YAML reads `tag: 2026` as a number and `3.10` as 3.1, so those must be quoted). `at` is
    the FILE:LINE a message ends with, `text` the value as written (3.10, not 3.1).
    Raises ConfigError naming the flag and `where`; None passes (not set)."""
    name = row.name
    suffix = f" ({at})" if at else ""
    if value is None:
        return None
    if row.on_off:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _OFF + _ON:
            return value.strip().lower() in _ON
        raise ConfigError(f"{row.spelled} {value!r} from {where} is not on/off: give true or false "
                          f"(or 1/0, yes/no){suffix}")
    if row.repeatable:
        items = value if isinstance(value, list) else [value]
        return [checked(row._replace(default=None), item, where, at) for item in items]
    if name in NUMBERS and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value
    kind = {bool: "an on/off value", int: "a number", float: "a number"}.get(type(value), f"a {type(value).__name__}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        example = text or ("3.10" if isinstance(value, float) and name.endswith("version") else str(value))
        hint = " (YAML reads 3.10 as 3.1)" if isinstance(value, float) else ""
        raise ConfigError(f"{name} {value!r} came from {where} as {kind}{hint}, but {row.spelled} takes text: "
                          f"{number_hint(name, example)}{suffix}")
    raise ConfigError(f"{name} {value!r} came from {where} as {kind}, but {row.spelled} takes text: "
                      f"give one value, e.g. {name}: \"…\"{suffix}")
