"""The Dockerfiles and common/ scripts: ARG defaults agree with the tool's, the MUSA env block is
the one kinds.py renders, the scripts pass shellcheck, only classic-builder syntax is used, and a
new MCCL archive leaves the toolkit and muDNN layers cached (on the real engine)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

import vendor
from images import debian12_image
from musa_docker import commands, inputs, kinds, plan
from musa_docker.plan import ASSETS

DOCKERFILES = sorted((ASSETS / "ubuntu").glob("dockerfile.*"))


def arg_defaults(path: Path) -> list:
    """(name, default) of every `ARG NAME=default` of the Dockerfile, in order (one per stage)."""
    return re.findall(r"^ARG ([A-Z_]+)=(.*)$", path.read_text(), re.M)


def default_buildargs(tmp_path) -> dict:
    """The build args the tool passes with nothing but the required flags, per Dockerfile name."""
    env = {"HOME": str(tmp_path)}
    wheels = {"torch_whl_url": "/w/torch-2.0.0-cp38-cp38-linux_x86_64.whl",
              "torch_musa_whl_url": "/w/torch_musa-1.0.0-cp38-cp38-linux_x86_64.whl"}
    vendor_flags = {"musa_url": "/v/musa_toolkits.tar.gz", "mudnn_url": "/v/mudnn.tar"}
    plans = []
    for task, values in (("build_base", {}), ("build_dev", {"base_img": "base:1", **vendor_flags}),
                         ("release", {**vendor_flags, **wheels})):
        resolved, options = commands.resolve(task, values, env)     # the pins file's and arch's args too
        facts = plan.Facts(python_version="3.8" if task == "build_dev" else None)
        plans.append(inputs.extend(plan.make(options, facts, env), resolved))
    return {p.build.dockerfile.name: dict(p.build.buildargs) for p in plans}


def test_arg_defaults_agree_with_the_tools_defaults(tmp_path):
    passed = default_buildargs(tmp_path)
    assert set(passed) == {p.name for p in DOCKERFILES}
    for path in DOCKERFILES:
        found = arg_defaults(path)
        assert found, path
        for name, value in found:
            if name == "DEBIAN_FRONTEND":
                continue    # not the tool's: how apt runs inside the build
            assert name in passed[path.name], f"{path.name}: ARG {name} is not a build arg the tool passes"
            assert value == passed[path.name][name], f"{path.name}: ARG {name}={value}, the tool's default is {passed[path.name][name]!r}"


def test_the_musa_env_block_is_the_one_kinds_renders():
    holding = [p for p in DOCKERFILES if kinds.ENV_BEGIN in p.read_text()]
    assert {p.name for p in holding} == {"dockerfile.dev", "dockerfile.release"}
    for path in holding:
        text = path.read_text()
        assert kinds.with_musa_env(text) == text, f"{path.name}: run `python -m musa_docker.kinds`"
        assert text.count("ENV MUSA_HOME=") == 1
    assert ("MUSA_HOME", kinds.MUSA_HOME) in kinds.MUSA_ENV
    assert kinds.get("dev").env == {"MUSA_HOME": kinds.MUSA_HOME}


def test_the_env_block_is_rewritten_from_the_table(monkeypatch):
    monkeypatch.setattr(kinds, "MUSA_ENV", kinds.MUSA_ENV + (("MUSA_ARCH", "22"),))
    text = (ASSETS / "ubuntu" / "dockerfile.dev").read_text()
    assert "ENV MUSA_ARCH=22\n" + kinds.ENV_END in kinds.with_musa_env(text)


def test_one_step_per_component_slowest_first():
    for name in ("dockerfile.dev", "dockerfile.release"):
        text = (ASSETS / "ubuntu" / name).read_text()
        installs = re.findall(r"install_musa\.sh (\w+) ", text)
        assert installs == ["musa_toolkits", "mudnn", "mccl"], name
        copies = re.findall(r"^COPY .*artifacts/(\S+) ", text, re.M)
        # patterns: no archive is staged when the SDK comes from an apt source
        assert [c for c in copies if ".ta" in c] == ["musa_toolkits.tar.g[z]", "mudnn.ta[r]", "mccl.tar.g[z]"], name
    release = (ASSETS / "ubuntu" / "dockerfile.release").read_text()
    assert re.findall(r"install_wheels\.sh (/tmp\S+)", release) == ["/tmp/wheels/torch", "/tmp/wheels/torch_musa",
                                                                     "/tmp/wheels/extra"]
    # the dev image's components: a step each, muAlg and muThrust and kineto before torch_musa,
    # torchaudio after torchvision
    dev = (ASSETS / "ubuntu" / "dockerfile.dev").read_text()
    steps = re.findall(r"/home/build_components\.sh (\w+)|(build_torch_musa|build_torchvision)\.sh /home", dev)
    assert [a or b for a, b in steps] == ["mualg", "muthrust", "kineto", "build_torch_musa", "build_torchvision",
                                          "audio"]


def test_only_classic_builder_syntax():
    for path in DOCKERFILES:
        text = path.read_text()
        assert not re.search(r"^#\s*syntax=", text, re.M), path.name
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        assert "--mount" not in code and "--link" not in code and "<<" not in code, path.name


def test_common_scripts_pass_shellcheck():
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed: scripts/test.sh installs it (apt-get install shellcheck)"
    scripts = sorted(str(p) for p in (ASSETS / "common").glob("*.sh"))
    assert any(s.endswith("probe_image.sh") for s in scripts)
    done = subprocess.run([shellcheck, "--external-sources", *scripts], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# --- on the engine: a new MCCL archive rebuilds the MCCL layer only -------------------------------

def musa_part(dockerfile: Path) -> str:
    """The dev Dockerfile up to its MUSA env block: the vendor stages and the layers they give."""
    text = dockerfile.read_text()
    return text[:text.index(kinds.ENV_END) + len(kinds.ENV_END)] + "\n"


def context(dockerfile: str, artifacts: dict) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        tar.add(ASSETS / "common", "common")
        for name, path in artifacts.items():
            tar.add(path, f"artifacts/{name}")
    buf.seek(0)
    return buf


def build(engine, ref: str, dockerfile: str, artifacts: dict) -> tuple:
    """(the image, the build's output) of an engine build with the classic builder."""
    import docker.errors
    try:
        image, log = engine.images.build(fileobj=context(dockerfile, artifacts), custom_context=True, tag=ref,
                                         rm=True, forcerm=True, network_mode="none",
                                         buildargs={"BASE_IMAGE": debian12_image(engine)})
    except docker.errors.BuildError as err:
        raise AssertionError(f"building {ref} failed: {err}\n"
                             + "".join(str(c.get("stream", c)) for c in err.build_log)) from err
    return image, "".join(str(chunk.get("stream", "")) for chunk in log)


def run(engine, ref: str, command: str) -> str:
    return engine.containers.run(ref, ["bash", "-c", command], remove=True, network_mode="none").decode().strip()


@pytest.mark.engine
@pytest.mark.e2e
def test_a_new_mccl_archive_reuses_the_toolkit_and_mudnn_layers(engine, tmp_path):
    debian12_image(engine)
    base_layers = engine.images.get(debian12_image(engine)).attrs["RootFS"]["Layers"]
    dockerfile = musa_part(ASSETS / "ubuntu" / "dockerfile.dev")
    given = {"musa_toolkits.tar.gz": vendor.musa_toolkits_archive(tmp_path / "v"),
             "mudnn.tar": vendor.mudnn_archive(tmp_path / "v")}
    tag = uuid.uuid4().hex[:8]
    refs = [f"musa-docker-test/mccl-cache:{tag}-1", f"musa-docker-test/mccl-cache:{tag}-2"]
    try:
        first, _ = build(engine, refs[0], dockerfile,
                         {**given, "mccl.tar.gz": vendor.mccl_archive(tmp_path / "v1", "1.0.0")})
        # a version no earlier run built, so the engine's cache cannot hold its step
        new = f"1.1.{uuid.uuid4().int % 10**9}"
        second, log = build(engine, refs[1], dockerfile,
                            {**given, "mccl.tar.gz": vendor.mccl_archive(tmp_path / "v2", new)})
        one, two = first.attrs["RootFS"]["Layers"], second.attrs["RootFS"]["Layers"]
        n = len(base_layers)
        assert one[:n] == two[:n] == base_layers
        assert one[n:n + 2] == two[n:n + 2], "the toolkit and muDNN layers were rebuilt for a new MCCL"
        assert one[n + 2] != two[n + 2], "the MCCL layer is the same for two MCCL archives"
        # the installer steps of the toolkit and muDNN stages came from the cache
        steps = re.split(r"(?m)^Step \d+/\d+ : ", log)
        for component in ("musa_toolkits", "mudnn"):
            step = next(s for s in steps if s.startswith("RUN ") and f"install_musa.sh {component} " in s)
            assert "Using cache" in step, step
        mccl = next(s for s in steps if s.startswith("RUN ") and "install_musa.sh mccl " in s)
        assert "Using cache" not in mccl
        assert run(engine, refs[1], "mccl_version; musa_toolkits_version; mudnn_version") == \
            f"mccl {new}\nmusa_toolkits 1.0.0\nmudnn 1.0.0"
        assert run(engine, refs[1], "echo $MUSA_HOME; ldconfig -p | grep -c 'libm\\(usart\\|udnn\\|ccl\\)'") == \
            "/usr/local/musa\n3"
        # no archive in the image, and no layer but the toolkit's, muDNN's and MCCL's own
        assert run(engine, refs[1], "find / -xdev \\( -name '*.tar.gz' -o -name '*.tar' \\) -print | head -3") == ""
        history = " ".join(str(h.get("CreatedBy")) for h in engine.api.history(refs[1]))
        assert "musa_artifacts" not in history
    finally:
        for ref in refs:
            try:
                engine.images.remove(ref, force=True)
            except Exception:
                pass
