"""The pins file and --gpu-arch through the CLI: what the plan (--dry-run) shows and where each value
came from, the `pins` task's table and --check-urls against a real HTTP server on 127.0.0.1 and
real git repos, and the bad input that must end in one `error:` line."""

from __future__ import annotations

import hashlib
import textwrap
from pathlib import Path

import pytest

from conftest import cli, make_repo
from httpserver import Server
from musa_docker.musa import pins as pins_mod
from musa_docker.errors import ConfigError

SHA = {name: hashlib.sha256(name.encode()).hexdigest() for name in ("musa", "mudnn", "mccl", "musa5")}


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the first line of `path` holding `needle`."""
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


@pytest.fixture(scope="module")
def server():
    with Server() as srv:
        for name in ("musa", "mudnn", "mccl", "musa5"):
            srv.add(f"/vendor/{name}.tar.gz", name.encode())
        srv.add("/vendor/head-refused.tar", b"data", head_status=405)
        srv.add("/wheels/torch-2.7.1-cp310-cp310-linux_x86_64.whl", b"torch")
        srv.add("/wheels/torch_musa-2.7.1-cp310-cp310-linux_x86_64.whl", b"torch_musa")
        srv.add("/wheels/torchvision-0.22.1-cp310-cp310-linux_x86_64.whl", b"vision")
        yield srv


@pytest.fixture(scope="module")
def vision(tmp_path_factory):
    path = tmp_path_factory.mktemp("repos") / "vision"
    make_repo(path, {"setup.py": "\n"}, tag="v0.22.1-musa")
    return path


def write_pins(tmp_path: Path, server, vision, extra: str = "", name: str = "pins.yaml") -> Path:
    """A pins file in the issue's shape, pointing at the local server and repo."""
    text = textwrap.dedent(f"""\
        versions:
          musa: "5.2.0"
          mudnn: "2.8.0"
        repos:
          vision: {{url: {vision.as_uri()}, tag: v0.22.1-musa}}
        artifacts:
          S4000:
            musa_toolkits: {{url: {server.url('/vendor/musa.tar.gz')}, sha256: {SHA['musa']}}}
            mudnn: {{url: {server.url('/vendor/mudnn.tar.gz')}, sha256: {SHA['mudnn']}}}
            mccl: {{url: {server.url('/vendor/mccl.tar.gz')}, sha256: {SHA['mccl']}}}
          qy1:
            musa_toolkits: {{url: {server.url('/vendor/musa5.tar.gz')}}}
            mudnn: {{url: {server.url('/vendor/head-refused.tar')}}}
            mccl: {{url: {server.url('/vendor/mccl.tar.gz')}}}
        wheels:
          S4000:
            "3.10":
              torch: {server.url('/wheels/torch-2.7.1-cp310-cp310-linux_x86_64.whl')}
              torch_musa: {server.url('/wheels/torch_musa-2.7.1-cp310-cp310-linux_x86_64.whl')}
              torchvision: {server.url('/wheels/torchvision-0.22.1-cp310-cp310-linux_x86_64.whl')}
            "3.11":
              torch: "torch==2.7.1+musa5.2.0"
        """) + extra
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def pins_file(tmp_path, server, vision):
    return write_pins(tmp_path, server, vision)


def one_error(done, *words):
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr
    for word in words:
        assert word in lines[-1], lines[-1]
    return lines[-1]


def plan_of(done) -> dict:
    """The plan's `inputs:` rows (name -> (value, source)), build args and labels."""
    assert done.returncode == 0, done.stderr
    rows, args, labels, section = {}, {}, {}, None
    for line in done.stdout.splitlines():
        if not line.startswith(" "):
            section = line.rstrip(":")
            continue
        if section == "inputs":
            name, rest = line[2:21].strip(), line[22:]
            value, _, source = rest.rpartition("  (")
            rows[name] = (value, source[:-1])
        elif line.startswith("  build arg   "):
            k, _, v = line[14:].partition("=")
            args[k] = v
        elif line.startswith("  label       "):
            k, _, v = line[14:].partition("=")
            labels[k] = v
    return {"inputs": rows, "args": args, "labels": labels, "text": done.stdout}


def dev(env, *args):
    return cli("build-dev", "-b", "musa-docker-test/base:x", "--dry-run", *args, env=env)


# --- the file --------------------------------------------------------------------------------------

def test_the_issue_shape_loads_with_lines(pins_file):
    pins = pins_mod.load(pins_file)
    assert pins.versions["musa"].value == "5.2.0"
    assert pins.repos["vision"].ref.value == "v0.22.1-musa" and pins.repos["vision"].is_tag
    art = pins.artifacts["mp_22"]["musa_toolkits"]
    assert art.sha256.value == SHA["musa"] and art.url.line == line_of(pins_file, "/vendor/musa.tar.gz")
    assert set(pins.artifacts) == {"mp_21", "mp_22"}
    wheels = pins.wheels["mp_22"]
    assert wheels["3.10"]["torch"].location.filename == "torch-2.7.1-cp310-cp310-linux_x86_64.whl"
    assert wheels["3.11"]["torch"].requirement == "torch==2.7.1+musa5.2.0"   # kept for a MUSA pip index


def test_every_section_is_optional(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "versions.yaml").write_text("versions:\n  triton: '3.2.0'\n")
    assert pins_mod.load(tmp_path / "empty.yaml").artifacts == {}
    assert pins_mod.load(tmp_path / "versions.yaml").versions["triton"].value == "3.2.0"


@pytest.mark.parametrize("text, line, words", [
    ("versions:\n  musa: '4.0'\nrepo:\n  x: 1\n", 3, ("unknown key 'repo'", "versions, repos, artifacts, wheels")),
    ("artifacts:\n  S4000:\n    musa_toolkits: {url: http://h/x}\n    mudnm: {url: http://h/y}\n", 4,
     ("unknown key 'mudnm'",)),
    ("repos:\n  vision: {url: http://h/v.git, tag: v1, branch: main}\n", 2, ("unknown key 'branch'",)),
    ("versions:\n  musa: 4.10\n", 2, ("quote it",)),
    ("wheels:\n  S4000:\n    3.10: {torch: http://h/torch-1-cp310-cp310-linux_x86_64.whl}\n", 3, ("quote it",)),
    ("artifacts:\n  S4000: {}\n  qy2: {}\n", 3, ("same arch (mp_22)",)),
    ("artifacts:\n  S9000: {}\n", 2, ("not a known MUSA GPU arch", "S4000")),
    ("repos:\n  vision: {url: --upload-pack=evil, tag: v1}\n", 2, ("not a repository URL",)),
    ("repos:\n  vision: {url: http://h/v.git, tag: -x}\n", 2, ("not a tag or ref",)),
    ("wheels:\n  S4000:\n    '3.10': {torch: 'torchvision==1.0'}\n", 3, ("another package",)),
    ("wheels:\n  S4000:\n    '3.7': {torch: 'torch==2.0.0'}\n", 3, ("not a Python an image can have", "3.8")),
    ("artifacts:\n  S4000:\n    mudnn: {url: http://h/m.tar, sha256: abc}\n", 3, ("64 hex digits",)),
])
def test_bad_files_name_their_line(tmp_path, text, line, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        pins_mod.load(path)
    assert str(err.value).startswith(f"{path}:{line}: "), str(err.value)
    for word in words:
        assert word in str(err.value)


def test_not_yaml_is_one_error(tmp_path, env):
    path = tmp_path / "broken.yaml"
    path.write_text("versions:\n  musa: [4.0\n")
    one_error(cli("pins", "--pins", str(path), env=env), f"--pins {path}", "is not YAML")
    one_error(dev(env, "--pins", str(path), "--gpu-arch", "S4000"), "is not YAML")


def test_unknown_key_through_the_cli(tmp_path, env):
    path = tmp_path / "typo.yaml"
    path.write_text("versions:\n  musa: '4.0.0'\n  mudnn_version: '2.8'\n")
    one_error(dev(env, "--pins", str(path), "-m", "https://v.example/m.tar.gz", "-n", "https://v.example/n.tar"), f"{path}:3:", "unknown key 'mudnn_version'")


# --- the plan --------------------------------------------------------------------------------------

def test_dev_plan_takes_the_arch_artifacts_and_repo_from_the_pins(pins_file, env, server, vision):
    plan = plan_of(dev(env, "--pins", str(pins_file), "--gpu-arch", "s4000"))
    inputs = plan["inputs"]
    where = f"pins {pins_file}:"
    assert inputs["gpu_arch"] == ("mp_22", "flag")
    assert inputs["musa_url"] == (server.url("/vendor/musa.tar.gz") + f"#sha256={SHA['musa']}",
                                  where + str(line_of(pins_file, "/vendor/musa.tar.gz")))
    assert inputs["mccl_url"][1] == where + str(line_of(pins_file, "/vendor/mccl.tar.gz"))
    assert inputs["vision_repo"] == (vision.as_uri(), where + "5")
    assert inputs["vision_tag"] == ("v0.22.1-musa", where + "5")
    assert inputs["torch_musa_repo"][1] == "default"
    assert inputs["version musa"] == ("5.2.0", where + "2")
    assert plan["args"]["TORCH_MUSA_ARCH_LIST"] == "22"
    assert plan["args"]["MTGPU_TARGET"] == "mp_22"
    assert plan["args"]["USE_MCCL"] == "1"
    assert plan["labels"]["musa_docker.gpu_arch"] == "mp_22"
    assert plan["labels"]["musa_docker.version.musa"] == "5.2.0"
    assert plan["labels"]["musa_docker.version.mudnn"] == "2.8.0"
    assert "fetch   mccl " in plan["text"]
    assert "@ v0.22.1-musa" in plan["text"]


def test_a_flag_and_its_variable_win_over_the_pins(pins_file, env):
    env = {**env, "MUDNN_URL": "https://v.example/from/env/mudnn.tar"}
    inputs = plan_of(dev(env, "--pins", str(pins_file), "--gpu-arch", "qy2", "-m", "https://v.example/flag/musa.tar.gz",
                         "--vision-tag", "v9"))["inputs"]
    assert inputs["musa_url"] == ("https://v.example/flag/musa.tar.gz", "flag")
    assert inputs["mudnn_url"] == ("https://v.example/from/env/mudnn.tar", "env $MUDNN_URL")
    assert inputs["vision_tag"] == ("v9", "flag")
    assert inputs["mccl_url"][1].startswith(f"pins {pins_file}:")


def test_no_gpu_arch_builds_every_arch_and_says_so(env):
    plan = plan_of(dev(env, "-m", "https://v.example/m.tar.gz", "-n", "https://v.example/n.tar"))
    assert plan["inputs"]["gpu_arch"] == ("mp_21,mp_22,mp_31", "default")
    assert plan["args"]["TORCH_MUSA_ARCH_LIST"] == "21;22;31"
    assert plan["args"]["MTGPU_TARGET"] == ""
    assert plan["args"]["USE_MCCL"] == "0"                              # no MCCL given
    assert plan["labels"]["musa_docker.gpu_arch"] == "mp_21,mp_22,mp_31"
    assert "note: no --gpu-arch: built for every supported arch (mp_21,mp_22,mp_31)" in plan["text"]


def test_qy1_leaves_mccl_out_even_when_the_pins_have_it(pins_file, env):
    plan = plan_of(dev(env, "--pins", str(pins_file), "--gpu-arch", "S80"))
    assert plan["args"] == {**plan["args"], "TORCH_MUSA_ARCH_LIST": "21", "MTGPU_TARGET": "mp_21", "USE_MCCL": "0"}
    assert "fetch   mccl" not in plan["text"]
    assert "has no MCCL: MCCL is not installed" in plan["text"]


def test_mccl_url_with_qy1_is_an_error(env):
    one_error(dev(env, "-m", "https://v.example/m.tar.gz", "-n", "https://v.example/n.tar", "--mccl-url", "https://v.example/c.tar.gz", "--gpu-arch", "qy1"),
              "--mccl-url", "mp_21", "no MCCL")


def test_unknown_arch_is_one_error_listing_the_known(env):
    line = one_error(dev(env, "-m", "https://v.example/m.tar.gz", "-n", "https://v.example/n.tar", "--gpu-arch", "S4000,A100"), "'A100'")
    assert "qy1" in line and "S5000" in line and "mp_22" in line


def test_detect_without_mthreads_gmi(env, tmp_path):
    (tmp_path / "nobin").mkdir()
    env = {**env, "PATH": f"{tmp_path / 'nobin'}:/usr/bin:/bin"}
    one_error(dev(env, "-m", "https://v.example/m.tar.gz", "-n", "https://v.example/n.tar", "--gpu-arch", "detect"), "mthreads-gmi", "not on PATH")


def test_no_artifacts_for_the_arch(pins_file, env):
    one_error(dev(env, "--pins", str(pins_file), "--gpu-arch", "S5000"), "has no artifacts for mp_31", "-m and -n")


def test_per_arch_artifacts_need_a_gpu_arch(pins_file, env):
    one_error(dev(env, "--pins", str(pins_file)), "per GPU arch", "--gpu-arch")


def test_release_takes_torch_wheels_from_the_pins(pins_file, env, server):
    done = cli("release", "--dry-run", "--pins", str(pins_file), "--gpu-arch", "mp_22", "-v", "3.10", env=env)
    plan = plan_of(done)
    assert plan["inputs"]["torch_whl_url"] == (server.url("/wheels/torch-2.7.1-cp310-cp310-linux_x86_64.whl"),
                                               f"pins {pins_file}:{line_of(pins_file, '/wheels/torch-')}")
    assert plan["inputs"]["python_version"] == ("3.10", "flag")
    assert "fetch   torch_musa_wheel " in plan["text"]
    assert plan["args"]["MTGPU_TARGET"] == "mp_22"
    assert plan["labels"]["musa_docker.gpu_arch"] == "mp_22"
    # the pins file's other wheels are installed as a --wheel is, after torch_musa
    assert "fetch   torchvision_wheel " in plan["text"]
    assert "label       musa_docker.artifact.torchvision_wheel.sha256=" in plan["text"]


def test_build_dev_takes_the_components_from_the_pins(tmp_path, env):
    path = tmp_path / "dev.yaml"
    path.write_text("repos:\n  kineto: {url: https://example.com/kineto.git, tag: v0.4.0}\n"
                    "  mualg: {url: https://example.com/muAlg.git, tag: v1.2}\n")
    done = cli("build-dev", "--dry-run", "--pins", str(path), "-b", "base:1", "-m", "https://v.example/v/m.tar.gz", "-n", "https://v.example/v/d.tar",
               "--mualg-tag", "v2.0", env=env)
    plan = plan_of(done)
    assert plan["inputs"]["kineto_tag"] == ("v0.4.0", f"pins {path}:2")
    assert plan["inputs"]["mualg_tag"] == ("v2.0", "flag")                  # a flag wins over the pins file
    assert plan["args"]["USE_KINETO"] == "1"
    assert "clone   kineto https://example.com/kineto.git @ v0.4.0" in plan["text"]
    assert "fetch   mualg https://example.com/muAlg.git @ v2.0" in plan["text"]
    assert "label       musa_docker.mualg.commit=" in plan["text"]


def test_release_with_a_requirement_wheel_needs_the_musa_index(pins_file, env):
    one_error(cli("release", "--dry-run", "--pins", str(pins_file), "--gpu-arch", "S4000", "-v", "3.11", env=env),
              f"pins {pins_file}:{line_of(pins_file, 'torch==2.7.1')}: torch is the requirement 'torch==2.7.1+musa5.2.0'",
              "--musa-pip-index-url")


def test_release_takes_a_requirement_wheel_from_the_musa_index(pins_file, env, server):
    torch_musa = server.url("/wheels/torch_musa-2.7.1-cp311-cp311-linux_x86_64.whl")
    plan = plan_of(cli("release", "--dry-run", "--pins", str(pins_file), "--gpu-arch", "S4000", "-v", "3.11",
                       "--musa-pip-index-url", "http://127.0.0.1:9/simple/", "--torch-musa-whl-url", torch_musa,
                       env=env))
    assert plan["inputs"]["torch_whl_url"] == ("torch==2.7.1+musa5.2.0 from the MUSA index",
                                               f"pins {pins_file}:{line_of(pins_file, 'torch==2.7.1')}")
    assert plan["args"]["MUSA_WHEELS"] == "torch==2.7.1+musa5.2.0"
    assert "fetch   torch_wheel" not in plan["text"] and "fetch   torch_musa_wheel" in plan["text"]


def test_build_base_takes_pytorch_from_the_pins(tmp_path, env):
    path = tmp_path / "base.yaml"
    path.write_text("versions: {musa: '4.0.0'}\nrepos:\n  pytorch: {url: https://example.com/pt.git, tag: v2.5.0}\n")
    plan = plan_of(cli("build-base", "--dry-run", "--pins", str(path), env=env))
    assert plan["inputs"]["pytorch_tag"] == ("v2.5.0", f"pins {path}:3")
    assert plan["inputs"]["python_version"] == ("3.8", "default")
    assert plan["labels"]["musa_docker.version.musa"] == "4.0.0"
    assert "musa_docker.gpu_arch" not in plan["labels"]


def test_build_all_entries_take_gpu_arch_and_pins(tmp_path, env, pins_file):
    matrix = tmp_path / "matrix.yaml"
    matrix.write_text(f"images:\n  - task: build-dev\n    base_img: b:1\n    gpu_arch: S4000\n    pins: {pins_file}\n")
    done = cli("build-all", "-c", str(matrix), "--dry-run", env=env)
    assert done.returncode == 0, done.stderr
    assert "gpu-arch: S4000" in done.stdout and f"pins: {pins_file}" in done.stdout


# --- the pins task -------------------------------------------------------------------------------

def test_pins_task_shows_one_arch_and_python(pins_file, env):
    done = cli("pins", "--pins", str(pins_file), "--gpu-arch", "S4000", "-v", "3.11", env=env)
    assert done.returncode == 0, done.stderr
    assert "artifacts: mp_22 (qy2: S4000/M1000)" in done.stdout
    assert "mp_21" not in done.stdout
    assert "torch==2.7.1+musa5.2.0 from the MUSA index" in done.stdout
    assert "Python 3.10" not in done.stdout


def test_pins_task_without_arch_shows_every_arch(pins_file, env):
    done = cli("pins", "--pins", str(pins_file), env=env)
    assert done.returncode == 0, done.stderr
    assert "artifacts: mp_21 (qy1: S80/S80ES/S3000)" in done.stdout and "artifacts: mp_22" in done.stdout
    assert "Python 3.10" in done.stdout and "Python 3.11" in done.stdout


def test_check_urls_passes_and_falls_back_to_a_ranged_get(pins_file, env, server):
    done = cli("pins", "--pins", str(pins_file), "--check-urls", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FAIL" not in done.stdout
    assert "checked 10, 0 failed" in done.stdout
    assert "skip  " in done.stdout and "torch==2.7.1+musa5.2.0: a requirement" in done.stdout
    methods = [(r.method, r.headers.get("range")) for r in server.requests if r.path == "/vendor/head-refused.tar"]
    assert ("HEAD", None) in methods and ("GET", "bytes=0-0") in methods


def test_check_urls_reports_a_404_and_a_missing_tag_with_their_lines(tmp_path, env, server, vision):
    extra = f"  ph1:\n    musa_toolkits: {{url: {server.url('/vendor/gone.tar.gz')}}}\n"
    path = write_pins(tmp_path, server, vision, name="gone.yaml")
    text = path.read_text().replace("tag: v0.22.1-musa", "tag: v0.0.0-none")
    text = text.replace("wheels:\n", extra + "wheels:\n", 1)
    path.write_text(text)
    done = cli("pins", "--pins", str(path), "--check-urls", env=env)
    one_error(done, "2 pin(s)", "failed the check")
    fails = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 2, done.stdout
    assert f"{path}:5" in fails[0] and "no tag 'v0.0.0-none'" in fails[0]
    assert f"{path}:{line_of(path, '/vendor/gone.tar.gz')}" in fails[1] and "HTTP 404" in fails[1]


def test_the_shipped_example_loads_and_is_the_readme_one():
    from conftest import REPO
    example = REPO / "examples" / "pins.yaml"
    pins = pins_mod.load(example)
    assert set(pins.artifacts) == {"mp_21", "mp_22"} and pins.wheels["mp_22"]["3.10"]["torch"].location
    assert example.read_text() in (REPO / "docs" / "config-and-pins.md").read_text()


def test_check_urls_asks_the_musa_index_for_each_requirement(tmp_path, env, server, vision):
    """`INDEX/NAME/` must list a file of the pinned version; a missing version or project is a
    FAIL naming its line; without --musa-pip-index-url requirements are skipped."""
    files = ["torch-2.7.1%2Bmusa5.2.0-cp311-cp311-linux_x86_64.whl", "torch-2.6.0+musa5.1.0-cp311-cp311-linux_x86_64.whl"]
    server.add("/musa/simple/torch/", "".join(f'<a href="../../files/{f}#sha256=00">{f}</a>\n' for f in files).encode())
    path = write_pins(tmp_path, server, vision, name="reqs.yaml")
    path.write_text(path.read_text() + '    "3.12":\n      torch: "torch==9.9.9+musa5.2.0"\n'
                    '      triton: "triton==3.1.0"\n')
    done = cli("pins", "--pins", str(path), "--check-urls", "--musa-pip-index-url", server.url("/musa/simple/"),
               env=env)
    one_error(done, "2 pin(s)", "failed the check")
    assert (f"ok    {path}:{line_of(path, 'torch==2.7.1')}  wheels.mp_22.3.11.torch torch==2.7.1+musa5.2.0 "
            "on the MUSA index") in done.stdout
    fails = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert len(fails) == 2, done.stdout
    assert f"{path}:{line_of(path, 'torch==9.9.9')}" in fails[0]
    assert "on the MUSA index: the index has no torch 9.9.9+musa5.2.0 (it lists 2.6.0+musa5.1.0, 2.7.1+musa5.2.0)" in fails[0]
    assert f"{path}:{line_of(path, 'triton==')}" in fails[1] and "no project triton" in fails[1] and "404" in fails[1]
    assert "skip  " not in done.stdout
