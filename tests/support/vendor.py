"""Small, working stand-ins for what the vendor and the upstream projects ship, for tests.

- `musa_toolkits_archive`, `mudnn_archive`, `mccl_archive`: archives in the vendor's shapes
  whose installers really install under /usr/local/musa: `bin/` tools that run, shared
  libraries compiled here with gcc (`libmusart.so`, `libmudnn.so`, `libmccl.so`) and headers.
  The toolkit installs into /usr/local/musa-<version> and points /usr/local/musa at it, and
  registers its lib dir with the loader, as the vendor's does. Their bytes are the same on
  every call on a machine (fixed mtimes, sorted members, gzip without a timestamp), so their
  sha256 is stable.
- `corrupt_archive`, `archive_without_installer`: the two broken archives users download.
- `fixture_wheels`: a `torch` 2.0.0 and a `torch_musa` wheel, tagged for one CPython as the
  vendor's are, written byte for byte by the wheel spec (deterministic; no `wheel` package
  needed on the host, which `pip wheel --no-build-isolation` would need).
- `torch_musa_repo`, `vision_repo`: git repos with a tag and one commit after it, buildable the
  way the dev image builds them (`bash build.sh`; `pip install --no-build-isolation .`).
  torch_musa's build.sh needs kineto's source (and its submodule) when USE_KINETO=1, and
  compiles and links against muAlg and muThrust when they are installed in MUSA_HOME.
- `mt_repo` (muAlg, muThrust), `kineto_repo` (with a submodule), `audio_repo`: the dev image's
  other components, buildable the way it builds them (`mt_build.sh -i`; `pip install`).
- `dev_index_wheels`, `release_index_wheels`: what a local index must serve, besides the numpy
  wheel of the base image, for a dev or release image built from these fixtures.

Failures raise AssertionError saying what failed.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import platform
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Optional

from images import download_wheel

MUSA_VERSION = "1.0.0"
MUDNN_VERSION = "1.0.0"
MCCL_VERSION = "1.0.0"
MUSA_HOME = "/usr/local/musa"

TORCH_VERSION = "2.0.0"
TORCH_MUSA_VERSION = "1.0.0"

TORCH_MUSA_TAG = "v1.0.0"
VISION_TAG = "v0.16.0"
VISION_VERSION = "0.16.0"
# The commit after each tag bumps the version, so an image shows which one was built.
AFTER_TAG_VERSION = {"torch_musa": "1.1.0a0", "vision": "0.17.0a0"}

# What torch_musa's requirements.txt asks for, and what the dev image's build tools need in a
# venv of Debian's python3 (setuptools 66 without `wheel`): both come from the index.
TORCH_MUSA_REQUIREMENTS = ("packaging",)
BUILD_TOOLS = ("wheel<0.46",)

_MTIME = 1_700_000_000            # fixed member mtimes: 2023-11-14, not 1970 (tar warns on that)
_ZIP_TIME = (2023, 11, 14, 0, 0, 0)
_GIT_DATE = "2023-11-14T00:00:00+00:00"
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "fixture", "GIT_AUTHOR_EMAIL": "fixture@example.invalid",
    "GIT_COMMITTER_NAME": "fixture", "GIT_COMMITTER_EMAIL": "fixture@example.invalid",
    "GIT_AUTHOR_DATE": _GIT_DATE, "GIT_COMMITTER_DATE": _GIT_DATE,
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}


# --- archives ------------------------------------------------------------------------------------

def _compile_library(name: str, source: str, cc: Optional[Callable[[Path, Path], None]] = None) -> bytes:
    """`lib<name>.so` built from C `source` with the host's gcc, or with `cc(source file, library
    file)` (another CPU's gcc, e.g. one in an arm64 image).

    The library calls nothing in libc, so it loads on every supported image (glibc 2.31 and up)
    whatever glibc built it.
    """
    if cc is not None:
        with tempfile.TemporaryDirectory(prefix="vendor-so.") as tmp:
            src, out = Path(tmp, f"{name}.c"), Path(tmp, f"lib{name}.so")
            src.write_text(source)
            cc(src, out)
            assert out.is_file(), f"the compiler given built no lib{name}.so"
            return out.read_bytes()
    gcc = shutil.which("gcc") or shutil.which("cc")
    assert gcc, "no gcc on this machine: the vendor fixtures compile small shared libraries"
    with tempfile.TemporaryDirectory(prefix="vendor-so.") as tmp:
        src, out = Path(tmp, f"{name}.c"), Path(tmp, f"lib{name}.so")
        src.write_text(source)
        done = subprocess.run(
            [gcc, "-shared", "-fPIC", "-O2", "-g0", f"-Wl,-soname,lib{name}.so", "-o", str(out), str(src)],
            capture_output=True, text=True, check=False,
        )
        assert done.returncode == 0, f"gcc could not build lib{name}.so:\n{done.stderr}"
        return out.read_bytes()


def _write_tar(path: Path, files: dict[str, tuple[bytes, int]], compress: bool) -> Path:
    """A tar of `files` (name -> (bytes, mode)) with its directories, sorted, owned by root,
    with fixed mtimes; gzipped without a name or timestamp when `compress`."""
    names = set(files)
    for name in files:
        parts = name.split("/")[:-1]
        names.update("/".join(parts[: i + 1]) + "/" for i in range(len(parts)))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(names):
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime, info.uid, info.gid, info.uname, info.gname = _MTIME, 0, 0, "root", "root"
            if name.endswith("/"):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                data, info.mode = files[name]
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    data = buf.getvalue()
    if compress:
        out = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
            gz.write(data)
        data = out.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _script(text: str) -> tuple[bytes, int]:
    return text.encode(), 0o755


def _text(text: str) -> tuple[bytes, int]:
    return text.encode(), 0o644


def _version_tool(component: str, version: str) -> tuple[bytes, int]:
    return _script(f'#!/bin/sh\necho "{component} {version}"\n')


def _library_source(prefix: str, version: str) -> str:
    return (
        f'const char *{prefix}_version(void) {{ return "{version}"; }}\n'
        f"int {prefix}_device_count(void) {{ return 0; }}\n"
    )


_TOOLKIT_INSTALL = f"""#!/bin/bash
# Installs the MUSA toolkit into /usr/local/musa-{MUSA_VERSION}, points /usr/local/musa at it and
# registers its lib dir with the loader. Copies with relative paths: run it from its directory.
set -euo pipefail
[ -f ./include/musa.h ] || {{ echo "install.sh: run me from musa_toolkits_install/" >&2; exit 1; }}
prefix=/usr/local/musa-{MUSA_VERSION}
mkdir -p "$prefix"
cp -r ./bin ./include ./lib "$prefix"/
ln -sfn "musa-{MUSA_VERSION}" {MUSA_HOME}
echo "{MUSA_HOME}/lib" > /etc/ld.so.conf.d/00-musa-toolkits.conf
echo "MUSA toolkit {MUSA_VERSION} installed in $prefix"
"""

_ADDON_INSTALL = """#!/bin/bash
# Installs {name} into the MUSA toolkit's tree. Copies with relative paths: run it from its directory.
set -euo pipefail
[ -f ./include/{header} ] || {{ echo "{script}: run me from the directory it is in" >&2; exit 1; }}
[ -d {musa_home}/lib ] || {{ echo "{script}: install the MUSA toolkit first ({musa_home}/lib is missing)" >&2; exit 1; }}
cp -r ./bin/. {musa_home}/bin/
cp -r ./lib/. {musa_home}/lib/
cp -r ./include/. {musa_home}/include/
echo "{name} {version} installed in {musa_home}"
"""


def _addon_install(name: str, script: str, header: str, version: str) -> tuple[bytes, int]:
    return _script(_ADDON_INSTALL.format(name=name, script=script, header=header, version=version,
                                         musa_home=MUSA_HOME))


def _toolkit_files(root: str = "musa_toolkits_install", cc=None) -> dict[str, tuple[bytes, int]]:
    return {
        f"{root}/install.sh": _script(_TOOLKIT_INSTALL),
        f"{root}/bin/musa_toolkits_version": _version_tool("musa_toolkits", MUSA_VERSION),
        f"{root}/include/musa.h": _text(
            "#pragma once\n#define MUSA_VERSION_STRING \"%s\"\n"
            "const char *musart_version(void);\nint musart_device_count(void);\n" % MUSA_VERSION
        ),
        f"{root}/lib/libmusart.so": (_compile_library("musart", _library_source("musart", MUSA_VERSION), cc), 0o755),
    }


def musa_toolkits_archive(dir: Path | str, cc=None) -> Path:
    """`dir/musa_toolkits_rc<version>.tar.gz` holding `musa_toolkits_install/install.sh`.

    The installer puts `bin/musa_toolkits_version` (prints "musa_toolkits <version>"),
    `lib/libmusart.so` (`musart_version()`) and `include/musa.h` under /usr/local/musa.
    """
    return _write_tar(Path(dir) / f"musa_toolkits_rc{MUSA_VERSION}.tar.gz", _toolkit_files(cc=cc), compress=True)


def mudnn_archive(dir: Path | str, cc=None) -> Path:
    """`dir/mudnn_rc<version>.tar` (uncompressed) holding `mudnn/install_mudnn.sh`, which adds
    `bin/mudnn_version`, `lib/libmudnn.so` and `include/mudnn.h` to /usr/local/musa."""
    files = {
        "mudnn/install_mudnn.sh": _addon_install("muDNN", "install_mudnn.sh", "mudnn.h", MUDNN_VERSION),
        "mudnn/bin/mudnn_version": _version_tool("mudnn", MUDNN_VERSION),
        "mudnn/include/mudnn.h": _text("#pragma once\nconst char *mudnn_version(void);\n"),
        "mudnn/lib/libmudnn.so": (_compile_library("mudnn", _library_source("mudnn", MUDNN_VERSION), cc), 0o755),
    }
    return _write_tar(Path(dir) / f"mudnn_rc{MUDNN_VERSION}.tar", files, compress=False)


def mccl_archive(dir: Path | str, version: str = MCCL_VERSION) -> Path:
    """`dir/mccl_rc<version>.tar.gz` holding `mccl_rc<version>/release/x86_64/install.sh`, which
    adds `bin/mccl_version`, `lib/libmccl.so` and `include/mccl.h` to /usr/local/musa."""
    root = f"mccl_rc{version}/release/x86_64"
    files = {
        f"mccl_rc{version}/README": _text("MCCL fixture\n"),
        f"{root}/install.sh": _addon_install("MCCL", "install.sh", "mccl.h", version),
        f"{root}/bin/mccl_version": _version_tool("mccl", version),
        f"{root}/include/mccl.h": _text("#pragma once\nconst char *mccl_version(void);\n"),
        f"{root}/lib/libmccl.so": (_compile_library("mccl", _library_source("mccl", version)), 0o755),
    }
    return _write_tar(Path(dir) / f"mccl_rc{version}.tar.gz", files, compress=True)


def corrupt_archive(dir: Path | str, name: str = "musa_toolkits_corrupt.tar.gz") -> Path:
    """A toolkit archive cut off at a third of its bytes, as an interrupted download leaves it:
    the gzip header is fine, the stream ends early."""
    with tempfile.TemporaryDirectory(prefix="vendor-corrupt.") as tmp:
        whole = musa_toolkits_archive(tmp).read_bytes()
    path = Path(dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(whole[: len(whole) // 3])
    return path


_NO_INSTALLER = {
    "musa_toolkits": ("musa_toolkits_noinstaller.tar.gz", True, "musa_toolkits_install"),
    "mudnn": ("mudnn_noinstaller.tar", False, "mudnn"),
    "mccl": ("mccl_noinstaller.tar.gz", True, "mccl_rc1"),
}


def archive_without_installer(dir: Path | str, kind: str = "musa_toolkits") -> Path:
    """A well-formed archive of `kind` (musa_toolkits | mudnn | mccl) in its vendor's layout and
    compression, with everything but the installer script."""
    name, compress, root = _NO_INSTALLER[kind]
    files = {
        f"{root}/README": _text(f"{kind} without its installer\n"),
        f"{root}/lib/lib{kind}.so": _text("not really a library\n"),
    }
    return _write_tar(Path(dir) / name, files, compress=compress)


# --- wheels --------------------------------------------------------------------------------------

def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _write_wheel(dir: Path, dist: str, version: str, tag: str, files: dict[str, str],
                 requires: tuple[str, ...] = (), summary: str = "") -> Path:
    """A wheel by the spec (PEP 427, 491): the files, METADATA, WHEEL and RECORD, deterministic."""
    info = f"{dist}-{version}.dist-info"
    contents = {name: text.encode() for name, text in files.items()}
    contents[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\nSummary: {summary}\n"
        + "".join(f"Requires-Dist: {r}\n" for r in requires)
    ).encode()
    contents[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: musa_docker-tests\nRoot-Is-Purelib: false\nTag: {tag}\n"
    ).encode()
    contents[f"{info}/top_level.txt"] = f"{dist}\n".encode()
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in sorted(contents.items()))
    contents[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = dir / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as whl:
        for name, data in contents.items():          # RECORD last, as the spec recommends
            entry = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            whl.writestr(entry, data)
    return path


# torch_musa.is_available() of both fixtures: the MUSA runtime loads through the dynamic loader.
_IS_AVAILABLE = '''

def is_available():
    try:
        ctypes.CDLL("libmusart.so")
    except OSError:
        return False
    return True
'''

_TORCH_INIT = f'''"""Fixture of torch: only a version."""
__version__ = "{TORCH_VERSION}"
'''

_TORCH_MUSA_WHEEL_INIT = f'''"""Fixture of torch_musa as its wheel ships: imports torch; the MUSA runtime is available
when libmusart.so loads through the dynamic loader."""
import ctypes

import torch

__version__ = "{TORCH_MUSA_VERSION}"
''' + _IS_AVAILABLE


def fixture_wheels(dir: Path | str, python_version: str, machine: str = "") -> tuple[Path, Path]:
    """`(torch_whl, torch_musa_whl)` in `dir`, named as the vendor's are:
    `torch-2.0.0-cpXY-cpXY-linux_<arch>.whl` and `torch_musa-1.0.0-cpXY-cpXY-linux_<arch>.whl`,
    so they install only on CPython `python_version` on `machine` (this one's, else aarch64…).
    torch_musa requires `torch==2.0.0`; torch requires nothing.
    """
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    cp = "cp" + python_version.replace(".", "")
    tag = f"{cp}-{cp}-linux_{machine or platform.machine()}"
    torch = _write_wheel(dir, "torch", TORCH_VERSION, tag, {"torch/__init__.py": _TORCH_INIT},
                         summary="torch fixture")
    torch_musa = _write_wheel(dir, "torch_musa", TORCH_MUSA_VERSION, tag,
                              {"torch_musa/__init__.py": _TORCH_MUSA_WHEEL_INIT},
                              requires=(f"torch=={TORCH_VERSION}",), summary="torch_musa fixture")
    return torch, torch_musa


def extra_wheel(dir: Path | str, python_version: str, dist: str = "torchvision", version: str = VISION_VERSION) -> Path:
    """`<dist>-<version>-cpXY-cpXY-linux_<arch>.whl` in `dir`: a package `<dist>` whose
    `__version__` is `version`, requiring `torch==2.0.0`, as the vendor's torchvision wheel does."""
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    cp = "cp" + python_version.replace(".", "")
    return _write_wheel(dir, dist, version, f"{cp}-{cp}-linux_{platform.machine()}",
                        {f"{dist}/__init__.py": f"import torch\n__version__ = {version!r}\n"},
                        requires=(f"torch=={TORCH_VERSION}",), summary=f"{dist} fixture")


# --- source repos --------------------------------------------------------------------------------

def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, env={**os.environ, **_GIT_ENV},
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)} in {repo} failed: {done.stderr}"
    return done.stdout.strip()


def _make_repo(path: Path, files: dict[str, str], tag: str, after_tag: dict[str, str],
               executable: tuple[str, ...] = ()) -> Path:
    """A git repo at `path`: `files` committed and tagged `tag`, then `after_tag` committed."""
    assert not path.exists(), f"{path} exists already: give the fixture a new directory"
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    for step, contents in ((0, files), (1, after_tag)):
        for rel, text in contents.items():
            target = path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            if rel in executable:
                target.chmod(0o755)
        _git(path, "add", "-A")
        _git(path, "commit", "-q", "-m", "release" if step == 0 else "after the release")
        if step == 0:
            _git(path, "tag", tag)
    return path


_TORCH_MUSA_SETUP = '''from setuptools import setup

setup(name="torch_musa", version=open("version.txt").read().strip(), packages=["torch_musa"])
'''

_TORCH_MUSA_SOURCE_INIT = '''"""Fixture of torch_musa built from source: imports torch when it is installed."""
import ctypes

try:
    import torch
except ImportError:
    torch = None

from torch_musa._build_info import musa_version, pytorch_repo_path
from torch_musa.version import __version__
''' + _IS_AVAILABLE

# As the real one: build PyTorch from PYTORCH_REPO_PATH (here: only checked), then torch_musa
# against the toolkit in MUSA_HOME, recording what it built with.
_TORCH_MUSA_BUILD = '''#!/bin/bash
# Fixture of torch_musa's build.sh: needs the PyTorch source, the MUSA toolkit (headers and
# musa_toolkits_version on PATH) and requirements.txt installed; installs torch_musa.
set -euo pipefail
cd "$(dirname "$0")"
PYTORCH_REPO_PATH="${PYTORCH_REPO_PATH:-$(pwd)/../pytorch}"
[ -d "${PYTORCH_REPO_PATH}" ] || { echo "build.sh: no PyTorch source at ${PYTORCH_REPO_PATH}" >&2; exit 1; }
[ -f "${MUSA_HOME:?MUSA_HOME is not set}/include/musa.h" ] || { echo "build.sh: no MUSA toolkit in ${MUSA_HOME}" >&2; exit 1; }
python -c "import packaging" || { echo "build.sh: requirements.txt is not installed" >&2; exit 1; }
musa_version="$(musa_toolkits_version)"
# kineto: its source, with its submodule, where USE_KINETO=1 says it is.
if [ "${USE_KINETO:-0}" = 1 ]; then
    [ -f "${KINETO_SOURCE_DIR:?}/libkineto/include/libkineto.h" ] || { echo "build.sh: no kineto source" >&2; exit 1; }
    [ -f "${KINETO_SOURCE_DIR}/third_party/fmt/include/fmt/core.h" ] || { echo "build.sh: kineto lacks its submodule" >&2; exit 1; }
fi
# muAlg and muThrust, when installed in MUSA_HOME: compiled against and linked with.
linked=""
for lib in mualg muthrust; do
    [ -f "${MUSA_HOME}/include/${lib}.h" ] || continue
    printf '#include <stdio.h>\\n#include <%s.h>\\nint main(void) { puts(%s_version()); return 0; }\\n' "${lib}" "${lib}" \\
        | gcc -x c - -I"${MUSA_HOME}/include" -L"${MUSA_HOME}/lib" -l"${lib}" -o "/tmp/uses_${lib}"
    linked="${linked}${lib}=$(LD_LIBRARY_PATH="${MUSA_HOME}/lib" "/tmp/uses_${lib}") "
    rm -f "/tmp/uses_${lib}"
done
python - "${musa_version}" "${PYTORCH_REPO_PATH}" "$(cat version.txt)" "${linked% }" <<'EOF'
import os, sys
with open("torch_musa/_build_info.py", "w") as f:
    f.write(f"musa_version = {sys.argv[1]!r}\\npytorch_repo_path = {sys.argv[2]!r}\\n")
    f.write(f"linked = {sys.argv[4]!r}\\n")
    # What the real build.sh compiles for: the archs, and whether MCCL and kineto are used.
    for var in ("TORCH_MUSA_ARCH_LIST", "MTGPU_TARGET", "USE_MCCL", "USE_KINETO"):
        f.write(f"{var.lower()} = {os.environ.get(var)!r}\\n")
with open("torch_musa/version.py", "w") as f:
    f.write(f"__version__ = {sys.argv[3]!r}\\n")
EOF
# C++ sources compiled as the real build compiles its own, through the `c++` on PATH (under
# ccache with the dev image's compile cache)
shopt -s nullglob
mkdir -p build/obj
for src in csrc/*.cpp; do
    c++ -O1 -c "${src}" -o "build/obj/$(basename "${src%.cpp}").o"
done
echo "build.sh: compiled $(find build/obj -name '*.o' | wc -l) C++ sources"
python -m pip install --no-build-isolation --no-deps -v .
'''

# A few deterministic C++ translation units; the commit after the tag changes one of them.
TORCH_MUSA_SOURCES = {f"csrc/op{i}.cpp": f"#include <vector>\nint op{i}(int x) {{ std::vector<int> v(x, {i}); "
                      f"int s = 0; for (int y : v) s += y; return s; }}\n" for i in range(4)}


def torch_musa_repo(dir: Path | str) -> Path:
    """`dir/torch_musa`: a git repo tagged `v1.0.0` (version 1.0.0) plus one commit after the tag
    (version 1.1.0a0), holding `requirements.txt` (packaging), `setup.py` and `build.sh`.

    `bash build.sh` checks PYTORCH_REPO_PATH, MUSA_HOME and the requirements, compiles the C++
    sources under csrc/ (the commit after the tag changes one of four) with `c++`, records the toolkit
    version and the TORCH_MUSA_ARCH_LIST, MTGPU_TARGET and USE_MCCL it was given (lower-cased
    names) in `torch_musa._build_info` and installs the package; `import torch_musa` works
    without torch, and `torch_musa.is_available()` says whether libmusart.so loads.
    """
    files = {
        "README.md": "torch_musa fixture\n",
        "requirements.txt": "".join(f"{r}\n" for r in TORCH_MUSA_REQUIREMENTS),
        "setup.py": _TORCH_MUSA_SETUP,
        "version.txt": f"{TORCH_MUSA_VERSION}\n",
        "build.sh": _TORCH_MUSA_BUILD,
        "torch_musa/__init__.py": _TORCH_MUSA_SOURCE_INIT,
        **TORCH_MUSA_SOURCES,
    }
    after = {"version.txt": f"{AFTER_TAG_VERSION['torch_musa']}\n",
             "csrc/op0.cpp": TORCH_MUSA_SOURCES["csrc/op0.cpp"].replace("return s;", "return s + 1;")}
    return _make_repo(Path(dir) / "torch_musa", files, TORCH_MUSA_TAG, after, executable=("build.sh",))


# A C extension, as torchvision has: the build needs the compilers and python3-dev of the base.
_VISION_SETUP = '''from setuptools import Extension, setup

# As torchvision's setup.py does: version.txt -> torchvision/version.py.
version = open("version.txt").read().strip()
with open("torchvision/version.py", "w") as f:
    f.write(f"__version__ = {version!r}\\n")

setup(
    name="torchvision",
    version=version,
    packages=["torchvision"],
    ext_modules=[Extension("torchvision._C", ["torchvision/csrc/vision.c"])],
    install_requires=["numpy"],
)
'''

_VISION_C = '''#include <Python.h>

static PyObject *cuda_version(PyObject *self, PyObject *args) { return PyLong_FromLong(-1); }

static PyMethodDef methods[] = {
    {"_cuda_version", cuda_version, METH_NOARGS, "No CUDA: -1."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", NULL, -1, methods};

PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&module); }
'''

_VISION_INIT = '''"""Fixture of torchvision: a compiled extension, and torch imported when it is installed."""
try:
    import torch
except ImportError:
    torch = None

from torchvision import _C
from torchvision.version import __version__
'''


def vision_repo(dir: Path | str) -> Path:
    """`dir/vision`: a git repo tagged `v0.16.0` (version 0.16.0) plus one commit after the tag
    (version 0.17.0a0), holding a `torchvision` package with a C extension, buildable with
    `pip install --no-build-isolation .` (needs setuptools, wheel and numpy in the env)."""
    files = {
        "README.md": "torchvision fixture\n",
        "setup.py": _VISION_SETUP,
        "version.txt": f"{VISION_VERSION}\n",
        "torchvision/__init__.py": _VISION_INIT,
        "torchvision/csrc/vision.c": _VISION_C,
        "MANIFEST.in": "include version.txt\n",
    }
    after = {"version.txt": f"{AFTER_TAG_VERSION['vision']}\n"}
    return _make_repo(Path(dir) / "vision", files, VISION_TAG, after)


# --- components of the dev image: kineto, muAlg, muThrust, torchaudio --------------------------

COMPONENT_TAG = "v1.0.0"
COMPONENT_VERSION = "1.0.0"

# As muAlg's and muThrust's: `mt_build.sh -i` builds the library and installs it with its header
# into MUSA_HOME.
_MT_BUILD = '''#!/bin/bash
# Fixture of {name}'s mt_build.sh: -i builds lib{name}.so and installs it and {name}.h in MUSA_HOME.
set -euo pipefail
cd "$(dirname "$0")"
[ "${{1:-}}" = -i ] || {{ echo "mt_build.sh: usage: mt_build.sh -i" >&2; exit 2; }}
[ -d "${{MUSA_HOME:?MUSA_HOME is not set}}/lib" ] || {{ echo "mt_build.sh: no MUSA toolkit in ${{MUSA_HOME}}" >&2; exit 1; }}
gcc -shared -fPIC -O2 -Iinclude -o "lib{name}.so" src/{name}.c
install -m 0644 include/{name}.h "${{MUSA_HOME}}/include/{name}.h"
install -m 0755 "lib{name}.so" "${{MUSA_HOME}}/lib/lib{name}.so"
rm -f "lib{name}.so"
echo "{name} installed in ${{MUSA_HOME}}"
'''


def mt_repo(dir: Path | str, name: str) -> Path:
    """`dir/<name>` (mualg or muthrust): a git repo tagged `v1.0.0` plus one commit after it, whose
    `mt_build.sh -i` compiles `lib<name>.so` (`<name>_version()` returns "1.0.0" at the tag,
    "1.1.0a0" after it) and installs it and `<name>.h` into MUSA_HOME."""
    files = {
        "mt_build.sh": _MT_BUILD.format(name=name),
        f"include/{name}.h": f"const char *{name}_version(void);\n",
        f"src/{name}.c": f'#include "{name}.h"\nconst char *{name}_version(void) {{ return "{COMPONENT_VERSION}"; }}\n',
    }
    after = {f"src/{name}.c": f'#include "{name}.h"\nconst char *{name}_version(void) {{ return "1.1.0a0"; }}\n'}
    return _make_repo(Path(dir) / name, files, COMPONENT_TAG, after, executable=("mt_build.sh",))


def kineto_repo(dir: Path | str) -> Path:
    """`dir/kineto`: a git repo tagged `v1.0.0` holding `libkineto/include/libkineto.h` and a
    submodule `third_party/fmt` (from `dir/kineto-fmt`), plus one commit after the tag."""
    fmt = _make_repo(Path(dir) / "kineto-fmt", {"include/fmt/core.h": "// fmt core\n"}, "v1", {"README": "fmt\n"})
    path = Path(dir) / "kineto"
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    (path / "libkineto/include").mkdir(parents=True)
    (path / "libkineto/include/libkineto.h").write_text("// libkineto\n")
    _git(path, "-c", "protocol.file.allow=always", "submodule", "add", "-q", fmt.as_uri(), "third_party/fmt")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "release")
    _git(path, "tag", COMPONENT_TAG)
    (path / "CHANGELOG").write_text("after the release\n")
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", "after the release")
    return path


def audio_repo(dir: Path | str) -> Path:
    """`dir/audio`: a git repo tagged `v1.0.0` holding a pure-Python `torchaudio` 1.0.0, built
    with `pip install --no-build-isolation .`, plus one commit after the tag."""
    files = {
        "setup.py": f'from setuptools import setup\n\nsetup(name="torchaudio", version="{COMPONENT_VERSION}", '
                    'packages=["torchaudio"])\n',
        "torchaudio/__init__.py": f'__version__ = "{COMPONENT_VERSION}"\n',
    }
    return _make_repo(Path(dir) / "audio", files, COMPONENT_TAG, {"CHANGELOG": "after the release\n"})


# --- what the local index must serve -------------------------------------------------------------

def dev_index_wheels(python_version: str = "3.11") -> list[Path]:
    """The wheels a dev build from these fixtures installs from the index (besides what the base
    image has): the build tools a Debian venv lacks and torch_musa's requirements."""
    return [download_wheel(r, python_version=python_version) for r in (*BUILD_TOOLS, *TORCH_MUSA_REQUIREMENTS)]


def release_index_wheels(python_version: str = "3.11") -> list[Path]:
    """The wheels a release build from these fixtures installs from the index: the env's numpy
    (install_python_env.sh); the fixture wheels need nothing else."""
    return [download_wheel("numpy<2", python_version=python_version)]
