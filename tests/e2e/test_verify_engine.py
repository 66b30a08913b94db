"""`verify` on a real engine: images made for it (busybox without python; Debian 12 with python3,
a venv layout and stand-in modules), pass, fail and skipped rows, exit codes, the host checks."""

from __future__ import annotations

import dataclasses
import io
import os
import uuid

import docker.errors
import pytest

from conftest import cli, remove_images, tar_context
from images import _locked, debian12_image
from musa_docker.check import image as checks, probe, verify
from musa_docker.commands.verify import verify as verify_task
from musa_docker.engine import host
from musa_docker.musa import kinds
from musa_docker.engine.api import Engine
from musa_docker.errors import ConfigError, ImageMismatchError, VerifyError

pytestmark = pytest.mark.engine

PYTHON_IMAGE = "musa-docker-test/verify-python:1"
# A device node for a container that has none: /dev/null, where the MUSA node would be.
FAKE_DEVICE = ["/dev/null:/dev/mtgpu0"]

FAKE_GMI = "#!/bin/sh\necho 'mthreads-gmi (test stand-in)'\necho 'GPU 0  MTT S4000  /dev/mtgpu0'\n"
FAKE_MCC = r"""#!/bin/sh
# stand-in for mcc: "builds" a .mu that asks the MUSA runtime for the device count
out= src=
while [ $# -gt 0 ]; do
    case $1 in -o) out=$2; shift ;; *.mu) src=$1 ;; esac
    shift
done
grep -q musaGetDeviceCount "$src" || { echo "$src: no musaGetDeviceCount" >&2; exit 1; }
grep -q 'musa_runtime.h' "$src" || { echo "$src: no musa_runtime.h" >&2; exit 1; }
printf '#!/bin/sh\necho "musa devices: 1"\n' >"$out"
chmod +x "$out"
"""
BROKEN_MCC = "#!/bin/sh\necho \"probe.mu:2:10: fatal error: 'musa_runtime.h' file not found\" >&2\nexit 1\n"


def build_image(client, ref: str, dockerfile: str, files: dict = None, network: str = "none") -> str:
    try:
        client.images.build(fileobj=tar_context(dockerfile, files or {}), custom_context=True, tag=ref,
                            rm=True, forcerm=True, network_mode=network)
    except docker.errors.BuildError as err:
        log = "".join(str(chunk.get("stream", chunk)) for chunk in err.build_log)
        raise AssertionError(f"building {ref} failed: {err}\n{log}") from err
    return ref


def labels(**given) -> str:
    return "".join(f'LABEL musa_docker.{k}="{v}"\n' for k, v in given.items())


@pytest.fixture(scope="module")
def made(engine):
    """Tags of the images a test builds; removed at the end of the module."""
    refs = []
    yield refs
    remove_images(engine, *refs)


@pytest.fixture(scope="module")
def image(engine, busybox, made):
    """build(name, dockerfile, files) -> a throwaway image reference."""
    tag = uuid.uuid4().hex[:8]

    def make(name: str, dockerfile: str, files: dict = None) -> str:
        ref = f"musa-docker-test/verify-{name}:{tag}"
        made.append(ref)
        return build_image(engine, ref, dockerfile, files)
    return make


def rows(checks) -> dict:
    return {c.name: c for c in checks}


def run_verify(ref, **values):
    out = io.StringIO()
    code = verify_task({"image": ref, **values}, os.environ, out)
    return code, out.getvalue()


# --- images without python: quick ---------------------------------------------------------------

def test_an_image_without_python_fails_the_python_row_and_exits_1(busybox):
    code, shown = run_verify(busybox)
    assert code == 1
    table = shown.splitlines()
    header = next(line for line in table if line.startswith("check"))
    python = next(line for line in table if line.startswith("python runs"))
    assert python.index("fail") == header.index("status")              # aligned columns
    assert "`python` does not run (exit 127" in python
    checks = rows(verify.verify_image(Engine(), busybox, io.StringIO()))
    assert checks["kind"].status == "skipped" and "no musa_docker.kind label" in checks["kind"].detail
    assert checks["python version"].status == "skipped"
    assert checks["import torch"].status == "skipped"                 # unknown kind: nothing required
    assert checks["mthreads-gmi"] == verify.Check("mthreads-gmi", "skipped", "no MUSA device visible")
    assert checks["musa program"].status == "skipped"
    assert "1 check failed" in shown


def test_a_dev_image_without_python_fails_every_row_it_promises(image, busybox):
    ref = image("nopython", f"FROM {busybox}\n{labels(kind='dev', python_version='3.11')}")
    checks = rows(verify.verify_image(Engine(), ref, io.StringIO()))
    assert checks["kind"].status == "pass" and checks["kind"].detail.startswith("dev")
    assert checks["python runs"].status == "fail"
    for name in ("numpy", "torch", "torchvision", "torch_musa"):
        assert checks[f"import {name}"] == verify.Check(f"import {name}", "fail", "python does not run")
    assert checks["MUSA_HOME"] == verify.Check("MUSA_HOME", "fail", "MUSA_HOME is not set")


def test_a_kind_label_of_no_known_kind_fails(image, busybox):
    ref = image("oddkind", f"FROM {busybox}\n{labels(kind='devel')}")
    checks = rows(verify.verify_image(Engine(), ref, io.StringIO()))
    assert checks["kind"].status == "fail"
    assert "'devel'" in checks["kind"].detail and "base, dev, release" in checks["kind"].detail


def test_a_visible_device_runs_mthreads_gmi_and_a_musa_program_built_with_mcc(image, busybox):
    ref = image("device", f"FROM {busybox}\n{labels(kind='dev')}ENV MUSA_HOME=/usr/local/musa\n"
                          "COPY mthreads-gmi /bin/\nCOPY mcc /usr/local/musa/bin/\n",
                {"mthreads-gmi": FAKE_GMI, "mcc": FAKE_MCC})
    out = io.StringIO()
    checks = rows(verify.verify_image(Engine(), ref, out, devices=FAKE_DEVICE))
    assert "devices /dev/null:/dev/mtgpu0" in out.getvalue()
    assert checks["MUSA_HOME"].status == "pass"
    assert checks["mthreads-gmi"].status == "pass" and "/dev/mtgpu0" in checks["mthreads-gmi"].detail
    assert checks["musa program"] == verify.Check("musa program", "pass", "built with mcc, ran: musa devices: 1")


def test_a_device_without_mthreads_gmi_or_a_working_mcc_fails_both_rows(image, busybox):
    ref = image("device-broken", f"FROM {busybox}\n{labels(kind='dev')}ENV MUSA_HOME=/usr/local/musa\n"
                                 "COPY mcc /usr/local/musa/bin/\n", {"mcc": BROKEN_MCC})
    checks = rows(verify.verify_image(Engine(), ref, io.StringIO(), devices=FAKE_DEVICE))
    assert checks["mthreads-gmi"].status == "fail"
    assert "not on PATH" in checks["mthreads-gmi"].detail and "mt-container-toolkit" in checks["mthreads-gmi"].detail
    assert checks["musa program"].status == "fail"
    assert "mcc cannot build it (exit 1)" in checks["musa program"].detail
    assert "musa_runtime.h" in checks["musa program"].detail


def test_a_release_image_with_a_device_compiles_nothing_and_needs_the_sdk_libraries(image, busybox):
    """A release is lean: no mcc to build a MUSA program with, and $MUSA_HOME/lib, not bin/, is what it holds."""
    ref = image("device-release", f"FROM {busybox}\n{labels(kind='release')}ENV MUSA_HOME=/usr/local/musa\n"
                                  "COPY mthreads-gmi /bin/\nCOPY libmusart.so /usr/local/musa/lib/\n",
                {"mthreads-gmi": FAKE_GMI, "libmusart.so": ""})
    checks = rows(verify.verify_image(Engine(), ref, io.StringIO(), devices=FAKE_DEVICE))
    assert checks["MUSA_HOME"] == verify.Check("MUSA_HOME", "pass", "/usr/local/musa ($MUSA_HOME/lib present)")
    assert checks["musa program"] == verify.Check("musa program", "skipped",
                                                  "release images have no compiler (mcc): they are lean")


def test_a_base_image_with_a_device_skips_the_musa_program(image, busybox):
    ref = image("device-base", f"FROM {busybox}\n{labels(kind='base')}COPY mthreads-gmi /bin/\n",
                {"mthreads-gmi": FAKE_GMI})
    checks = rows(verify.verify_image(Engine(), ref, io.StringIO(), devices=FAKE_DEVICE))
    assert checks["mthreads-gmi"].status == "pass"
    assert checks["musa program"] == verify.Check("musa program", "skipped", "base images have no MUSA toolkit")
    assert checks["MUSA_HOME"] == verify.Check("MUSA_HOME", "skipped", "base images have no MUSA toolkit")


def test_an_image_that_does_not_exist_is_one_error():
    with pytest.raises(VerifyError) as caught:
        verify_task({"image": "musa-docker-test/no-such-image:nope"}, os.environ, io.StringIO())
    assert "musa-docker-test/no-such-image:nope does not exist on" in str(caught.value)


def test_verify_needs_an_image_or_the_host():
    with pytest.raises(ConfigError):
        verify_task({}, os.environ, io.StringIO())
    with pytest.raises(ConfigError):
        verify_task({"image": "Not A Ref"}, os.environ, io.StringIO())


def test_verify_after_build_raises_naming_the_failing_rows(busybox):
    out = io.StringIO()
    with pytest.raises(VerifyError) as caught:
        verify.verify_after_build(Engine(), busybox, out)
    assert f"{busybox} fails --verify: python runs: `python` does not run" in str(caught.value)
    assert "python runs" in out.getvalue()                           # the table was shown


def test_render_table_aligns_the_columns():
    table = verify.render_table([verify.Check("a", "pass", "x"), verify.Check("longer name", "skipped", "why")])
    assert table.splitlines() == [
        "check        status   detail",
        "a            pass     x",
        "longer name  skipped  why",
    ]


def test_a_crash_inside_an_import_names_the_import():
    output = ("\n@@musa_docker_verify begin python\n"
              '@@py info {"version": "3.11.2", "prefix": "/opt/venv", "executable": "/opt/venv/bin/python"}\n'
              '@@py importing "numpy"\n@@py import {"name": "numpy", "ok": true, "version": "1.26.4"}\n'
              '@@py importing "torch"\nFatal Python error: Segmentation fault\n'
              "\n@@musa_docker_verify end python 139\n")
    section = verify.parse_sections(output)["python"]
    py = probe.parse(section.lines, section.code)
    assert py.imports["numpy"]["ok"]
    assert py.imports["torch"]["error"] == "python died (exit 139) while importing it: Fatal Python error: Segmentation fault"


def test_the_musa_runtime_is_found_in_docker_info():
    assert host.musa_runtime({"Runtimes": {"runc": {}, "mthreads": {}}, "DefaultRuntime": "mthreads"}) == ("mthreads", True)
    assert host.musa_runtime({"Runtimes": {"runc": {}, "mthreads": {}}, "DefaultRuntime": "runc"}) == ("mthreads", False)
    assert host.musa_runtime({"Runtimes": {"runc": {}}, "DefaultRuntime": "runc"}) == (None, False)


# --- the host ----------------------------------------------------------------------------------

def _fake_gmi(tmp_path, script: str) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "mthreads-gmi").write_text(script)
    (bin_dir / "mthreads-gmi").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin"}


def test_host_driver_row_follows_mthreads_gmi(tmp_path):
    engine = Engine()
    missing = rows(verify.verify_host(engine, io.StringIO(), {"PATH": str(tmp_path)}))["MUSA driver"]
    assert missing.status == "fail" and "install the MUSA driver" in missing.detail

    answering = _fake_gmi(tmp_path, "#!/bin/sh\necho 'Driver Version: 2.7.0'\n")
    ok = rows(verify.verify_host(engine, io.StringIO(), answering))["MUSA driver"]
    assert ok.status == "pass" and "Driver Version: 2.7.0" in ok.detail


def test_host_driver_row_fails_when_mthreads_gmi_fails(tmp_path):
    env = _fake_gmi(tmp_path, "#!/bin/sh\necho 'no device found' >&2\nexit 3\n")
    row = rows(verify.verify_host(Engine(), io.StringIO(), env))["MUSA driver"]
    assert row.status == "fail" and "exits 3: no device found" in row.detail and "mtgpu" in row.detail


def test_host_runtime_row_follows_docker_info(engine):
    row = rows(verify.verify_host(Engine(), io.StringIO(), {"PATH": ""}))["MUSA container runtime"]
    name, default = host.musa_runtime(engine.api.info())
    if name and default:
        assert row.status == "pass"
    else:
        assert row.status == "fail" and "mt-container-toolkit" in row.detail


def test_host_render_row_passes_with_the_group(host_render_group):
    row = rows(verify.verify_host(Engine(), io.StringIO(), {"PATH": ""}))["render group"]
    assert row == verify.Check("render group", "pass", f"gid {host_render_group} (`shell` adds it to its containers)")


def test_host_render_row_without_the_group_explains_why_it_matters():
    row = rows(verify.verify_host(Engine(), io.StringIO(), {"PATH": ""}))["render group"]
    if host.render_gid() is None:
        assert row.status == "fail"
        assert "groupadd" in row.detail and "/dev/dri/renderD" in row.detail
    else:
        assert row.status == "pass"


def test_host_hints_name_each_failing_host_check(tmp_path):
    hints = verify.host_hints(Engine(), {"PATH": str(tmp_path)})
    assert any(h.startswith("hint: MUSA driver: mthreads-gmi is not on PATH") for h in hints)
    assert all(h.startswith("hint: ") for h in hints)
    fixed = verify.host_hints(Engine(), _fake_gmi(tmp_path, "#!/bin/sh\necho ok\n"))
    assert not any(h.startswith("hint: MUSA driver:") for h in fixed)


# --- through the CLI -------------------------------------------------------------------------------

def test_cli_verify_of_an_image_without_python_prints_the_table_and_exits_1(busybox):
    done = cli("verify", "-i", busybox)
    assert done.returncode == 1, done.stderr
    assert "python runs" in done.stdout and "fail" in done.stdout
    assert "no MUSA device visible" in done.stdout
    assert "Traceback" not in done.stderr


def test_cli_verify_of_a_missing_image_is_one_error_line():
    done = cli("verify", "-i", "musa-docker-test/no-such-image:nope")
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "musa-docker-test/no-such-image:nope does not exist" in lines[0]


def test_cli_verify_host_prints_the_host_table(tmp_path):
    env = _fake_gmi(tmp_path, "#!/bin/sh\necho 'Driver Version: 2.7.0'\n")
    done = cli("verify", "--host", env=env)
    assert done.returncode in (0, 1), done.stderr
    assert "MUSA driver" in done.stdout and "Driver Version: 2.7.0" in done.stdout
    assert "MUSA container runtime" in done.stdout and "render group" in done.stdout
    failed = [line for line in done.stdout.splitlines() if "  fail  " in line]
    assert done.returncode == (1 if failed else 0)


def test_cli_verify_without_an_image_or_host_is_an_error():
    done = cli("verify")
    assert done.returncode != 0
    assert done.stderr.strip().startswith("error: ") and "--host" in done.stderr


# --- images with python: Debian 12, python3, a venv layout, stand-in modules -------------------------

@pytest.fixture(scope="module")
def python_image(engine):
    """`debian:12` with python3 (no venv module: the venv is laid out by hand), built once and kept."""
    debian12_image(engine)
    with _locked("verify-python"):
        try:
            engine.images.get(PYTHON_IMAGE)
        except docker.errors.ImageNotFound:
            build_image(engine, PYTHON_IMAGE, (
                "FROM debian:12\n"
                "RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 >/dev/null"
                " && rm -rf /var/lib/apt/lists/*\n"
            ), network="host")
    return PYTHON_IMAGE


VENV = (
    "RUN mkdir -p /opt/venv/bin /opt/venv/lib/python3.11/site-packages"
    " && ln -s /usr/bin/python3 /opt/venv/bin/python"
    " && printf 'home = /usr/bin\\ninclude-system-site-packages = false\\n' >/opt/venv/pyvenv.cfg\n"
    "ENV PATH=/opt/venv/bin:$PATH\n"
)


def module(version: str) -> str:
    return f"__version__ = {version!r}\n"


def python_made(image, python_image, name: str, label_text: str, modules: dict, musa_home: bool) -> str:
    files = {f"site/{m}/__init__.py": text for m, text in modules.items()}
    dockerfile = f"FROM {python_image}\n{VENV}"
    if files:
        dockerfile += "COPY site/ /opt/venv/lib/python3.11/site-packages/\n"
    if musa_home:
        dockerfile += "ENV MUSA_HOME=/usr/local/musa\nRUN mkdir -p /usr/local/musa/bin /usr/local/musa/lib\n"
    return image(name, dockerfile + label_text, files)


ALL_MODULES = {"numpy": module("1.26.4"), "torch": module("2.0.0"), "torchvision": module("0.16.0"),
               "torch_musa": module("1.1.0")}


@pytest.mark.e2e
def test_a_dev_image_that_holds_what_it_promises_passes(image, python_image):
    ref = python_made(image, python_image, "dev-ok", labels(kind="dev", python_version="3.11", python_env="venv"),
                      ALL_MODULES, musa_home=True)
    code, shown = run_verify(ref)
    assert code == 0, shown
    checks = rows(verify.verify_image(Engine(), ref, io.StringIO()))
    assert checks["python runs"].detail.startswith("Python 3.11.") and "/opt/venv/bin/python" in checks["python runs"].detail
    assert checks["python version"].status == "pass"
    assert checks["python env"] == verify.Check("python env", "pass", "venv /opt/venv (label musa_docker.python_env venv)")
    assert checks["import torch"] == verify.Check("import torch", "pass", "torch 2.0.0")
    assert checks["import torch_musa"] == verify.Check("import torch_musa", "pass", "torch_musa 1.1.0")
    assert checks["MUSA_HOME"] == verify.Check("MUSA_HOME", "pass", "/usr/local/musa ($MUSA_HOME/bin present)")
    assert checks["musa program"] == verify.Check("musa program", "skipped", "no MUSA device visible")
    verify.verify_after_build(Engine(), ref, io.StringIO())     # nothing raised

    done = cli("verify", "-i", ref)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "import torch_musa" in done.stdout and "all checks passed or were skipped" in done.stdout


@pytest.mark.e2e
def test_a_dev_image_that_differs_from_its_labels_fails_those_rows(image, python_image):
    broken = {**ALL_MODULES, "torch_musa": "raise ImportError('libmusa.so.1: cannot open shared object file')\n"}
    ref = python_made(image, python_image, "dev-bad", labels(kind="dev", python_version="3.10", python_env="conda"),
                      broken, musa_home=False)
    code, shown = run_verify(ref)
    assert code == 1
    checks = rows(verify.verify_image(Engine(), ref, io.StringIO()))
    assert {c.name for c in checks.values() if c.status == "fail"} == {
        "python version", "python env", "import torch_musa", "MUSA_HOME"}
    assert "python is 3.11." in checks["python version"].detail and "says 3.10" in checks["python version"].detail
    assert "sys.prefix is /opt/venv, expected /opt/conda/envs/py310" in checks["python env"].detail
    assert checks["import torch_musa"].detail == "ImportError: libmusa.so.1: cannot open shared object file"
    with pytest.raises(VerifyError) as caught:
        verify.verify_after_build(Engine(), ref, io.StringIO())
    assert "import torch_musa: ImportError" in str(caught.value)

    done = cli("verify", "-i", ref)
    assert done.returncode == 1
    assert "4 checks failed" in done.stdout


@pytest.mark.e2e
def test_a_base_image_skips_what_base_images_do_not_have(image, python_image):
    ref = python_made(image, python_image, "base-ok", labels(kind="base", python_version="3.11", python_env="venv"),
                      {"numpy": module("1.26.4")}, musa_home=False)
    code, shown = run_verify(ref)
    assert code == 0, shown
    checks = rows(verify.verify_image(Engine(), ref, io.StringIO()))
    assert checks["import numpy"].status == "pass"
    assert checks["import torch"] == verify.Check("import torch", "skipped", "base images hold the PyTorch source, not a build")
    assert checks["import torch_musa"].status == "skipped"
    assert checks["MUSA_HOME"] == verify.Check("MUSA_HOME", "skipped", "base images have no MUSA toolkit")
    assert checks["mthreads-gmi"] == verify.Check("mthreads-gmi", "skipped", "no MUSA device visible")
    assert checks["musa program"] == verify.Check("musa program", "skipped", "base images have no MUSA toolkit")


@pytest.mark.e2e
def test_a_module_added_to_a_kind_is_asked_of_the_image(image, python_image, monkeypatch):
    """One edit of the kinds table: the post-build check and `verify` both ask for the module."""
    base = kinds.KINDS["base"]
    monkeypatch.setitem(kinds.KINDS, "base", dataclasses.replace(base, imports=base.imports + ("musa_extra",)))
    label_text = labels(kind="base", python_version="3.11", python_env="venv")
    lacking = python_made(image, python_image, "base-lacking", label_text, {"numpy": module("1.26.4")}, musa_home=False)
    with pytest.raises(ImageMismatchError) as caught:
        checks.check_image(Engine(), Engine().image(lacking).id, checks.Expect.of("base", "3.11", {}, {}))
    assert "`import musa_extra` fails: ModuleNotFoundError" in str(caught.value)
    assert rows(verify.verify_image(Engine(), lacking, io.StringIO()))["import musa_extra"].status == "fail"

    holding = python_made(image, python_image, "base-holding", label_text,
                          {"numpy": module("1.26.4"), "musa_extra": module("0.1")}, musa_home=False)
    seen = checks.check_image(Engine(), Engine().image(holding).id, checks.Expect.of("base", "3.11", {}, {}))
    assert seen.imports["musa_extra"]["ok"]
    row = rows(verify.verify_image(Engine(), holding, io.StringIO()))["import musa_extra"]
    assert row == verify.Check("import musa_extra", "pass", "musa_extra 0.1")


@pytest.mark.e2e
def test_a_crash_while_importing_is_reported_on_that_import(image, python_image):
    crashing = {**ALL_MODULES, "torch_musa": "import os\nos.abort()\n"}
    ref = python_made(image, python_image, "release-crash",
                      labels(kind="release", python_version="3.11", python_env="venv"), crashing, musa_home=True)
    checks = rows(verify.verify_image(Engine(), ref, io.StringIO()))
    assert checks["import torch"].status == "pass"
    assert checks["import torchvision"].status == "skipped" and "release images" in checks["import torchvision"].detail
    assert checks["import torch_musa"].status == "fail"
    assert checks["import torch_musa"].detail.startswith("python died (exit 134) while importing it")
