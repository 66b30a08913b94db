"""The torch_musa stand-in of bench/rebuild: a git repo whose build.sh configures and builds, with
CMake and Ninja, a shared library of N generated C++ translation units, then installs a
`torch_musa` package holding it.

Everything is deterministic: one seeded PRNG gives every unit's constants and shapes, commits have
fixed authors and dates, so the same flags give the same repo (and commit ids) on every machine.
Each unit instantiates templates over several types and uses the STL (maps, strings, sort,
streams), so compiling dominates the step as it does in torch_musa's build.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

SPEC = 1                                  # bump when the generated sources change shape
GIT_DATE = "2023-11-14T00:00:00+00:00"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_AUTHOR_DATE": GIT_DATE, "GIT_COMMITTER_DATE": GIT_DATE,
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}

HEADER = """#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace stand_in {
// Shared by every unit, as torch_musa's headers are: a small tensor-ish container and a fold.
template <typename T>
struct Buffer {
  std::vector<T> data;
  std::map<std::string, T> stats;
  explicit Buffer(std::size_t n, T fill) : data(n, fill) {}
  T sum() const { T s{}; for (const T& x : data) s += x; return s; }
};

template <typename T, int N>
struct Fold {
  static T apply(const std::vector<T>& v, T a) {
    return Fold<T, N - 1>::apply(v, a) * a + (v.empty() ? T(0) : v[N % v.size()]);
  }
};
template <typename T>
struct Fold<T, 0> {
  static T apply(const std::vector<T>&, T) { return T(1); }
};
}  // namespace stand_in
"""

UNIT = """// unit {i}: generated (seed {seed}); edit the generator, not this file
#include "stand_in/kernels.h"

#include <algorithm>
#include <functional>
#include <numeric>
#include <sstream>
#include <unordered_map>

namespace stand_in {{
namespace {{
template <typename T>
std::map<long, std::vector<T>> group_{i}(const std::vector<T>& xs) {{
  std::map<long, std::vector<T>> out;
  for (const T& x : xs) out[static_cast<long>(x) % {mod}].push_back(x);
  for (auto& kv : out) std::sort(kv.second.begin(), kv.second.end(), std::greater<T>());
  return out;
}}

template <typename T>
T kernel_{i}(std::size_t n) {{
  Buffer<T> b(n, T({fill}));
  std::iota(b.data.begin(), b.data.end(), T({start}));
  std::unordered_map<std::string, T> named;
  std::ostringstream os;
  for (const auto& kv : group_{i}(b.data)) {{
    os << kv.first << ':' << kv.second.size() << ';';
    named[os.str()] = std::accumulate(kv.second.begin(), kv.second.end(), T(0));
  }}
  b.stats["groups"] = static_cast<T>(named.size());
  return Fold<T, {depth}>::apply(b.data, T({scale})) + b.sum() + b.stats["groups"];
}}
}}  // namespace

double unit_{i}(long n) {{
  const long salt = {salt}L;
  return static_cast<double>(kernel_{i}<long>(n) + salt);
}}
}}  // namespace stand_in
"""

CMAKELISTS = """cmake_minimum_required(VERSION 3.18)
project(torch_musa_stand_in CXX)
set(CMAKE_CXX_STANDARD 17)
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE Release)
endif()
file(GLOB UNITS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/csrc/*.cpp)
add_library(torch_musa_stand_in SHARED ${UNITS})
target_include_directories(torch_musa_stand_in PRIVATE ${CMAKE_SOURCE_DIR}/include)
"""

# As torch_musa's: needs the PyTorch source and the MUSA toolkit; builds the C++ library with
# CMake (configure, then build with every core), then installs the package that holds it.
BUILD_SH = """#!/bin/bash
set -euo pipefail
cd "$(dirname "$0")"
[ -d "${PYTORCH_REPO_PATH:?PYTORCH_REPO_PATH is not set}" ] || { echo "build.sh: no PyTorch source" >&2; exit 1; }
[ -d "${MUSA_HOME:?MUSA_HOME is not set}" ] || { echo "build.sh: no MUSA toolkit" >&2; exit 1; }
# the CPU time of the compile and link: bash's `times` (its second line: the user and system time of
# every child it has waited for, ninja, the compilers, ccache), run in this shell: in a subshell
# its children's times would start at zero
jobs="$(nproc)"
t0=$(date +%s.%N)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >build-configure.log
times >build-times.txt
t1=$(date +%s.%N)
cmake --build build -j "${jobs}" | tail -n 1
t2=$(date +%s.%N)
times >>build-times.txt
cp build/libtorch_musa_stand_in.so torch_musa/
python -m pip install --no-build-isolation --no-deps -q .
t3=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" \\
    'BEGIN { printf "build.sh: configure %.1fs, compile and link %.1fs, pip install %.1fs\\n", b - a, c - b, d - c }'
awk -v j="${jobs}" 'NR % 2 == 0 { split($1, u, "m"); split($2, s, "m"); cu[NR] = u[1] * 60 + u[2]; cs[NR] = s[1] * 60 + s[2] }
    END { printf "build.sh: compile and link cpu user %.1fs system %.1fs, %d jobs\\n", cu[4] - cu[2], cs[4] - cs[2], j }' build-times.txt
echo "build.sh: $(ls csrc/*.cpp | wc -l) C++ units built"
"""

SETUP = """from setuptools import setup

setup(name="torch_musa", version=open("version.txt").read().strip(), packages=["torch_musa"],
      package_data={"torch_musa": ["*.so"]})
"""

INIT = '"""torch_musa stand-in: a package holding the library build.sh built."""\n__version__ = "1.0.0"\n'


def unit(i: int, seed: int, salt: int = 0) -> str:
    """The source of unit `i`: its constants from the PRNG seeded by (seed, i); `salt` changes it."""
    rng = random.Random(f"{seed}:{i}")
    return UNIT.format(i=i, seed=seed, mod=rng.randint(3, 17), fill=rng.randint(1, 9),
                       start=rng.randint(0, 99), depth=rng.randint(6, 12), scale=rng.randint(2, 5),
                       salt=salt)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV},
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: git {' '.join(args)} in {repo} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def create(path: Path, files: int, seed: int) -> Path:
    """`path`: a git repo (branch main) of the stand-in with `files` units, one commit."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    tree = {
        "README.md": "torch_musa stand-in for bench/rebuild\n",
        "requirements.txt": "packaging\n",
        "version.txt": "1.0.0\n",
        "setup.py": SETUP,
        "build.sh": BUILD_SH,
        "CMakeLists.txt": CMAKELISTS,
        ".gitignore": "build/\nbuild-configure.log\nbuild-times.txt\n*.so\n",
        "torch_musa/__init__.py": INIT,
        "include/stand_in/kernels.h": HEADER,
        **{f"csrc/unit{i:04d}.cpp": unit(i, seed) for i in range(files)},
    }
    for rel, text in tree.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    (path / "build.sh").chmod(0o755)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", f"stand-in: {files} units, seed {seed}")
    return path


def change(path: Path, files: int, seed: int, run: int, salt: int) -> str:
    """Commit a change to one unit (chosen by the PRNG for `run`): its salt constant becomes
    `salt`, a change of code (not a comment), so the unit's object really differs. Returns the
    unit's name."""
    i = random.Random(f"{seed}:change:{run}").randrange(files)
    rel = f"csrc/unit{i:04d}.cpp"
    (path / rel).write_text(unit(i, seed, salt))
    git(path, "commit", "-q", "-am", f"change {rel} (run {run})")
    return rel
