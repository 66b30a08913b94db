"""A synthetic, deterministic source tree shaped like a PyTorch checkout with its submodules.

Many small text files (1-20 KB) in deep directories, about one file in 500 MB-sized (weights,
test data, archives), a `.git` with packfiles of a few tens of MB (the superproject's and the
submodules' under `.git/modules`), a few symlinks. Contents come from one seeded PRNG, so the
same parameters give the same bytes, names, modes and mtimes on every machine; text files are
random printable bytes (zlib gets them to about 80 %), binary files random bytes (incompressible).

`plan(files, size_bytes, seed)` is pure: it says what to write. `write(root, plan)` writes it.
`digests(root, name)` summarises a tree the way the benchmark's in-image check does.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

SPEC = 1                      # bump when the shape of the tree changes: a stale tree is regenerated
MTIME = 1_680_000_000         # every entry gets this mtime, so the tree's fingerprint is reproducible
KB, MB = 1024, 1024 * 1024

TOP = ["aten", "c10", "caffe2", "torch", "test", "tools", "benchmarks", "docs", "functorch",
       "scripts", "cmake", "binaries", "android", "torchgen", "third_party"]
SUBMODULES = ["pybind11", "fbgemm", "XNNPACK", "protobuf", "onnx", "googletest", "benchmark",
              "sleef", "ideep", "gloo", "kineto", "cutlass", "eigen", "flatbuffers", "fmt",
              "tensorpipe", "NNPACK", "QNNPACK", "FP16", "pthreadpool", "cpuinfo", "foxi",
              "nccl", "zstd", "pocketfft", "ittapi", "cudnn_frontend", "VulkanMemoryAllocator"]
WORDS = ["src", "native", "cuda", "cpu", "csrc", "core", "jit", "api", "include", "impl", "detail",
         "ops", "utils", "quantized", "sparse", "mps", "vulkan", "autograd", "distributed", "passes",
         "ir", "frontend", "serialization", "runtime", "kernels", "python", "lib", "common",
         "backends", "onnx", "fx", "nn", "optim", "data", "profiler", "mobile", "testing", "cpp",
         "generated", "templates", "codegen", "aarch64", "x86", "avx512", "hip", "metal", "xnnpack",
         "qnnpack", "fbgemm", "inductor", "dynamo", "export", "functional", "modules", "tensor",
         "linalg", "fft", "special", "nested", "masked", "lazy", "c10d", "rpc", "elastic", "pipeline"]
STEMS = ["Tensor", "Module", "Functions", "Ops", "kernel", "test", "utils", "Loops", "Reduce",
         "Conv", "Linear", "Pool", "Norm", "Activation", "Embedding", "Loss", "Sort", "Index",
         "Copy", "Fill", "Scan", "Math", "Blas", "Lapack", "Random", "Dispatch", "Storage",
         "Allocator", "Stream", "Event", "Graph", "Node", "Value", "Pass", "Fusion", "Quant",
         "Pack", "Unpack", "Resize", "Shape", "View", "Cast", "Compare", "Binary", "Unary"]
TEXT_EXT = [".cpp"] * 6 + [".h"] * 5 + [".py"] * 7 + [".cu", ".cuh", ".c", ".hpp", ".txt", ".md",
                                                       ".cmake", ".yaml", ".json", ".sh", ".rst",
                                                       ".pyi", ".inc", ".S", ".cc", ".mm"]
BIG_EXT = [".pt", ".onnx", ".bin", ".pb", ".png", ".tar.gz", ".zip", ".data", ".a", ".npz"]
BIG_HOMES = ("test", "third_party", "docs", "benchmarks", "caffe2")
# Random bytes mapped to printable ASCII with a newline every ~40 characters: text, not noise.
_TEXT = bytes(10 if i % 41 == 0 else 32 + i % 95 for i in range(256))
_CHUNK = 4 * MB               # Random.randbytes cannot make more than 256 MB at once


@dataclass
class Plan:
    dirs: List[str] = field(default_factory=list)                  # sorted, parents first
    files: List[Tuple[str, int, bool, int]] = field(default_factory=list)   # (path, size, text, mode)
    links: List[Tuple[str, str]] = field(default_factory=list)     # (path, relative target)

    @property
    def bytes(self) -> int:
        return sum(f[1] for f in self.files)


def _unique(taken: set, path: str) -> str:
    base, ext = os.path.splitext(path)
    if base.endswith(".tar"):
        base, ext = base[:-4], ".tar" + ext
    n, candidate = 1, path
    while candidate in taken:
        n += 1
        candidate = f"{base}_{n}{ext}"
    taken.add(candidate)
    return candidate


def _hex(rng: random.Random, n: int) -> str:
    return rng.randbytes(n // 2).hex()


def _git(rng: random.Random, taken: set, dirs: List[str], scale: float, files: int):
    """The superproject's .git and one per submodule under .git/modules, as a shallow clone has."""
    out = []

    def add(path, size, text=False, mode=0o644):
        out.append((_unique(taken, path), max(1, int(size)), text, mode))

    def repo(gitdir: str, pack: int):
        for d in ("", "/objects", "/objects/pack", "/objects/info", "/refs", "/refs/heads",
                  "/refs/tags", "/info", "/hooks", "/logs", "/logs/refs", "/logs/refs/heads", "/branches"):
            dirs.append(gitdir + d)
        add(f"{gitdir}/HEAD", 41, True)
        add(f"{gitdir}/config", 300 + rng.randrange(200), True)
        add(f"{gitdir}/description", 73, True)
        add(f"{gitdir}/packed-refs", 120 + rng.randrange(4 * KB), True)
        add(f"{gitdir}/info/exclude", 240, True)
        add(f"{gitdir}/logs/HEAD", 200 + rng.randrange(300), True)
        add(f"{gitdir}/refs/heads/main", 41, True)
        for hook in ("applypatch-msg", "commit-msg", "fsmonitor-watchman", "post-update", "pre-applypatch",
                     "pre-commit", "pre-merge-commit", "pre-push", "pre-rebase", "pre-receive",
                     "prepare-commit-msg", "push-to-checkout", "update"):
            add(f"{gitdir}/hooks/{hook}.sample", 400 + rng.randrange(4 * KB), True, 0o755)
        name = f"pack-{_hex(rng, 40)}"
        add(f"{gitdir}/objects/pack/{name}.pack", pack)
        add(f"{gitdir}/objects/pack/{name}.idx", pack // 40)

    main_pack = int(38 * MB * scale)
    repo(".git", main_pack)
    out.append((_unique(taken, ".git/index"), max(1, files * 90), False, 0o644))
    for _ in range(int(150 * scale) + 1):                  # loose objects written after the clone
        fan = _hex(rng, 2)
        if f".git/objects/{fan}" not in dirs:
            dirs.append(f".git/objects/{fan}")
        add(f".git/objects/{fan}/{_hex(rng, 38)}", 200 + rng.randrange(3 * KB))
    for sub in SUBMODULES[:8]:
        gitdir = f".git/modules/third_party/{sub}"
        dirs.extend([".git/modules", ".git/modules/third_party"])
        repo(gitdir, int(rng.uniform(1.5, 6) * MB * scale))
        add(f"third_party/{sub}/.git", 40 + len(gitdir), True)
    return out


def plan(files: int, size_bytes: int, seed: int) -> Plan:
    """What to write: `files` regular files summing to exactly `size_bytes`.
    Raises ValueError when the two cannot be met together."""
    rng = random.Random(seed)
    p = Plan()
    taken: set = set()
    dirs = list(TOP) + [f"third_party/{s}" for s in SUBMODULES]
    scale = min(1.0, size_bytes / 1.2e9)

    git = _git(rng, taken, dirs, scale, files)
    n_big = max(1, files // 500)
    n_small = files - n_big - len(git)
    if n_small < 100:
        raise ValueError(f"--files {files} is too few for the tree's shape (at least {len(git) + n_big + 100})")

    # Source dirs: each hangs under a random earlier one, so depth grows like a real tree's (up to 10).
    tree_dirs = list(dirs[: len(TOP) + len(SUBMODULES)])
    want = max(len(tree_dirs) + 1, files // 12)
    dir_set = set(tree_dirs)
    while len(tree_dirs) < want:
        parent = rng.choice(tree_dirs)
        if parent.count("/") >= 9:
            continue
        child = f"{parent}/{rng.choice(WORDS)}"
        if child in dir_set:
            child = f"{child}{rng.randrange(2, 99)}"
            if child in dir_set:
                continue
        dir_set.add(child)
        tree_dirs.append(child)

    small = []
    for _ in range(n_small):
        d = rng.choice(tree_dirs)
        ext = rng.choice(TEXT_EXT)
        path = _unique(taken, f"{d}/{rng.choice(STEMS)}{rng.choice(['', 'Impl', 'Utils', 'Kernel', 'Test', 's'])}{ext}")
        mode = 0o755 if ext == ".sh" or (ext == ".py" and rng.random() < 0.03) else 0o644
        small.append((path, rng.randint(1 * KB, 20 * KB), True, mode))

    left = size_bytes - sum(f[1] for f in small) - sum(f[1] for f in git)
    if left < n_big * MB:
        need = (size_bytes - left + n_big * MB) / 1e9
        raise ValueError(f"--size-gb {size_bytes / 1e9:g} is too small for {files} files (at least {need:.2f})")
    homes = [d for d in tree_dirs if d.split("/")[0] in BIG_HOMES]
    weights = [math.exp(rng.uniform(0, math.log(16))) for _ in range(n_big)]
    big, given = [], 0
    for i, w in enumerate(weights):
        size = left - given if i == n_big - 1 else int(left * w / sum(weights))
        given += size
        path = _unique(taken, f"{rng.choice(homes)}/{rng.choice(STEMS).lower()}_{rng.choice(['model', 'data', 'fixture', 'weights', 'assets'])}{rng.choice(BIG_EXT)}")
        big.append((path, size, False, 0o644))

    p.files = sorted(small + git + big)
    p.dirs = sorted(set(dirs) | dir_set | {os.path.dirname(f[0]) for f in p.files} - {""})

    # A few symlinks as a checkout has them: to files and to directories, always relative, never dangling.
    sources = [f[0] for f in small]
    for i in range(12):
        at = rng.choice(tree_dirs)
        target = rng.choice(tree_dirs) if i % 4 == 0 else rng.choice(sources)
        if at == target or at.startswith(target + "/"):
            target = rng.choice(sources)            # a link to its own ancestor would be a loop
        link = _unique(taken, f"{at}/link_{os.path.basename(target)}")
        p.links.append((link, os.path.relpath(target, at)))
    p.links.sort()
    return p


def write(root: Path, p: Plan, seed: int) -> None:
    """Write the planned tree under `root` (which must not exist)."""
    rng = random.Random(seed ^ 0x5EED)
    root.mkdir(parents=True)
    for d in p.dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
    for rel, size, text, mode in p.files:
        fd = os.open(root / rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            left = size
            while left:
                n = min(_CHUNK, left)
                data = rng.randbytes(n)
                os.write(fd, data.translate(_TEXT) if text else data)
                left -= n
        finally:
            os.close(fd)
        os.chmod(root / rel, mode)          # the umask must not decide a file's mode
    for rel, target in p.links:
        os.symlink(target, root / rel)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), ns=(MTIME * 10**9,) * 2, follow_symlinks=False)
    os.utime(root, ns=(MTIME * 10**9,) * 2)


_TYPES = {stat.S_IFDIR: "directory", stat.S_IFREG: "regular file", stat.S_IFLNK: "symbolic link"}


def digests(root: Path, name: str) -> Dict[str, str]:
    """Counts and digests of the tree as it would sit at `/home/<name>`, in the form the in-image
    check prints them (`sha256sum` lines, `stat -c '%a %F %n'` lines, both sorted by path)."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for n in dirnames + filenames:
            rel = n if rel_dir == "." else f"{rel_dir}/{n}"
            entries.append((f"{name}/{rel}", root / rel, os.lstat(root / rel)))
    entries.append((name, root, os.lstat(root)))
    entries.sort()
    content, links, modes = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
    count = {"files": 0, "dirs": 0, "links": 0}
    for path, full, st in entries:
        kind = stat.S_IFMT(st.st_mode)
        modes.update(f"{stat.S_IMODE(st.st_mode):o} {_TYPES[kind]} {path}\n".encode())
        if kind == stat.S_IFREG:
            count["files"] += 1
            h = hashlib.sha256()
            with open(full, "rb") as f:
                for chunk in iter(lambda: f.read(MB), b""):
                    h.update(chunk)
            content.update(f"{h.hexdigest()}  {path}\n".encode())
        elif kind == stat.S_IFDIR:
            count["dirs"] += 1
        elif kind == stat.S_IFLNK:
            count["links"] += 1
            links.update(f"{path} {os.readlink(full)}\n".encode())
    return {**{k: str(v) for k, v in count.items()}, "content": content.hexdigest(),
            "links_digest": links.hexdigest(), "modes": modes.hexdigest()}
