"""The dev image's compile cache caches MUSA sources: common/compile_cache.sh's `mcc` wrapper under
Debian 12's ccache (4.8, in the e2e base image, with g++ and python), in front of a stand-in mcc
that compiles `.mu` and `.cu` sources as C++ with g++, as mcc is a clang that takes CUDA-like
sources (and, like clang, knows no language `cu`)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = [pytest.mark.engine, pytest.mark.e2e]

FAKE_MCC = r"""#!/bin/bash
# stand-in for the toolkit's mcc: .mu and .cu sources compiled as C++ by g++; every call logged
echo "mcc $*" >>/tmp/mcc.calls
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --version) echo "mcc stand-in (g++ $(g++ -dumpversion))"; exit 0 ;;
        -x) case "$2" in
                musa) args+=(-x c++) ;;
                cu) echo "mcc: error: language not recognized: 'cu'" >&2; exit 1 ;;
                *) args+=(-x "$2") ;;
            esac
            shift ;;
        *.mu | *.cu) args+=(-x c++ "$1" -x none) ;;
        *) args+=("$1") ;;
    esac
    shift
done
exec g++ "${args[@]}"
"""

PROJECT = {
    # a quoted include beside the source: found only if the source keeps its own path
    "kernels/scale.h": "#pragma once\ninline int scale_factor() { return 7; }\n",
    "kernels/scale.mu": '#include "scale.h"\n#include <vector>\n'
                        "int scale(int x) { std::vector<int> v(x, scale_factor()); int s = 0;\n"
                        "  for (int y : v) s += y; return s; }\n",
    "main.cpp": "#include <cstdio>\nint scale(int);\nint main() { std::printf(\"scale(6)=%d\\n\", scale(6)); }\n",
}

SCRIPT = r"""
set -euo pipefail
mkdir -p /opt/musa/bin && install -m 0755 /mnt/mcc /opt/musa/bin/mcc
cp -r /mnt/proj /home/proj && cd /home/proj
export PATH=/opt/musa/bin:$PATH COMPILE_CACHE=1G
. /mnt/compile_cache.sh
for build in first second; do
    : >/tmp/mcc.calls
    compile_cache_start >/dev/null
    mcc -O1 -c kernels/scale.mu -o scale-$build.o
    compile_cache_report >/tmp/report
    echo "$build $(cat /tmp/report)"
    sed "s/^/$build call: /" /tmp/mcc.calls
done
cmp scale-first.o scale-second.o && echo "objects: same"
# not a compile of one .mu source: mcc gets them as they are
compile_cache_start >/dev/null
: >/tmp/mcc.calls
mcc --version
mcc -c main.cpp -o main.o
mcc scale-second.o main.o -o app && ./app
mcc -O1 kernels/scale.mu main.cpp -o app2 && ./app2
sed "s/^/other call: /" /tmp/mcc.calls
compile_cache_report
"""


def test_a_mu_source_is_a_ccache_hit_the_second_time(e2e_base, engine, tmp_path):
    assert e2e_base["first"].returncode == 0, e2e_base["first"].stderr[-2000:]
    for rel, text in PROJECT.items():
        (tmp_path / "proj" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "proj" / rel).write_text(text)
    (tmp_path / "mcc").write_text(FAKE_MCC)
    shutil.copyfile(Path(REPO) / "common" / "compile_cache.sh", tmp_path / "compile_cache.sh")
    out = engine.containers.run(e2e_base["ref"], ["bash", "-c", SCRIPT], remove=True, network_mode="none",
                                volumes={str(tmp_path): {"bind": "/mnt", "mode": "ro"}}).decode()
    # the first build compiles the .mu source through ccache (a miss, not "unsupported"), the
    # second is a hit: mcc is not even called, and the object is the same
    assert "first compile cache: hits=0 misses=1" in out, out
    assert "second compile cache: hits=1 misses=0" in out, out
    assert re.search(r"^first call: mcc .*-c .*kernels/scale\.mu$", out, re.M), out
    assert "-x" not in out, out         # ccache's `-x cu` never reaches mcc
    assert "second call:" not in out, out
    assert "objects: same" in out, out
    # the object works; the rest reached mcc unchanged: --version, linking, and compiling and
    # linking a .mu and a .cpp in one call; a .cpp compile went through ccache (which orders -o first)
    assert out.count("scale(6)=42") == 2, out
    assert "mcc stand-in (g++" in out, out
    for call in ("mcc --version", "mcc scale-second.o main.o -o app", "mcc -O1 kernels/scale.mu main.cpp -o app2"):
        assert f"other call: {call}\n" in out, out
    assert "other call: mcc -c -o main.o main.cpp\n" in out, out
