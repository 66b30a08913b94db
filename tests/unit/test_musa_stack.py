"""The MUSA 5.x stack in options and the plan: --musa-apt-source/--musa-runtime against the archive
flags, --musa-pip-index-url and --musa-wheel, and what a dry run shows before anything is read."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from conftest import assert_one_error, cli, user_env
from musa_docker.musa import aptrepo
from musa_docker.options import build as opts
from musa_docker.errors import ConfigError
from musa_docker.plan.plan import plan_dev, plan_release
from musa_docker.musa.sdk import parse_wheel

SOURCE = "deb [trusted=yes] https://repo.example.com/musa jammy main"
APT = {"musa_apt_source": SOURCE, "musa_runtime": "5.2"}
WHEELS = {"torch_whl_url": "/w/torch-2.0.0-cp311-cp311-linux_x86_64.whl",
          "torch_musa_whl_url": "/w/torch_musa-1.0.0-cp311-cp311-linux_x86_64.whl"}


@pytest.fixture
def env(tmp_path):
    return {"HOME": str(tmp_path / "home")}


def release(env, **values):
    return opts.resolve_release({"base_img": "debian:12", "python_env": "venv", "python_version": "3.11", **values},
                                env, machine="x86_64")


def dev(env, **values):
    return opts.resolve_dev({"base_img": "musa-pytorch-base:latest", **values}, env)


def error(call, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        call(*args, **kwargs)
    return str(info.value)


def test_an_apt_source_makes_the_archives_unnecessary(env):
    o = release(env, **APT, **WHEELS)
    assert o.vendor.musa_toolkits is None and o.vendor.mudnn is None and o.vendor.mccl is None
    assert o.stack.apt.runtime == "5.2" and o.stack.apt.source.suite == "jammy"
    assert not o.stack.apt.dev and dev(env, **APT).stack.apt.dev      # dev asks for muAlg and muThrust


@pytest.mark.parametrize("flag, key", [("-m/--musa-url", "musa_url"), ("-n/--mudnn-url", "mudnn_url"),
                                       ("--mccl-url", "mccl_url")])
def test_archive_flags_and_an_apt_source_exclude_each_other(env, flag, key):
    assert f"--musa-apt-source and {flag} both install the MUSA SDK" in error(release, env, **APT, **WHEELS,
                                                                              **{key: "/a/x.tar"})


def test_an_archive_variable_with_an_apt_source_is_named(env):
    assert "$MUSA_TOOLKITS_URL" in error(release, {**env, "MUSA_TOOLKITS_URL": "/a/m.tar.gz"}, **APT, **WHEELS)


def test_source_and_runtime_need_each_other(env):
    assert "needs --musa-runtime" in error(dev, env, musa_apt_source=SOURCE)
    assert "needs --musa-apt-source" in error(dev, env, musa_runtime="5.2")


def test_without_an_apt_source_the_archives_are_still_required(env):
    assert "-m/--musa-url is required" in error(release, env, **WHEELS)


def test_musa_wheels_need_the_musa_index_and_exact_pins(env):
    assert "needs --musa-pip-index-url" in error(release, env, **APT, **WHEELS, musa_wheel=["triton==3.1.0"])
    assert "not an exact requirement" in error(release, env, **APT, **WHEELS, musa_wheel=["torch>=2"],
                                               musa_pip_index_url="https://m.example.com/simple")
    assert "carries credentials" in error(release, env, **APT, **WHEELS,
                                          musa_pip_index_url="https://u:tok@m.example.com/simple")
    assert "not an http(s) URL" in error(release, env, **APT, **WHEELS, musa_pip_index_url="/srv/simple")


@pytest.mark.parametrize("value", ["torch==2.7.1+musa5.2.0", "torch_musa==2.1.0", "triton==3.1.0.post1"])
def test_exact_pins_parse(value):
    wheel = parse_wheel(value)
    assert wheel.requirement == value


@pytest.mark.parametrize("value", ["torch", "torch==", "-e torch==1", "torch==1 --index-url x", "torch==1;rm",
                                   "torch @ https://x/t.whl", "--extra-index-url=x"])
def test_hostile_requirements_are_refused(value):
    with pytest.raises(ConfigError):
        parse_wheel(value)


def test_torch_from_the_musa_index_replaces_the_torch_wheel_flag(env):
    index = {"musa_pip_index_url": "https://m.example.com/simple"}
    o = release(env, **APT, **index, musa_wheel=["torch==2.7.1+musa5.2.0"],
                torch_musa_whl_url=WHEELS["torch_musa_whl_url"])
    assert o.torch_whl is None and o.torch_musa_whl is not None
    assert "--torch-whl-url and --musa-wheel both give torch" in error(
        release, env, **APT, **index, **WHEELS, musa_wheel=["torch==2.7.1+musa5.2.0"])


def test_the_plan_shows_pending_versions_then_the_resolved_ones(env):
    o = release(env, **APT, **WHEELS, musa_pip_index_url="https://m.example.com/simple",
                musa_wheel=["triton==3.1.0"])
    dry = plan_release(o)
    args = dict(dry.build.buildargs)
    assert args["MUSA_SDK"] == "apt" and args["MUSA_RUNTIME"] == "5.2"
    assert args["MUSA_APT_SOURCE"] == "deb [trusted=yes] https://repo.example.com/musa/ jammy main"
    # a release gets the runtime packages only: no toolkit, no compiler, no -dev
    assert args["MUSA_APT_PACKAGES"] == ("musa-musart-5-2=<resolved at prepare> libmudnn3-musa-5-2=<resolved at "
                                         "prepare> mccl-s4000=<resolved at prepare> mccl-s5000=<resolved at prepare>")
    assert args["MUSA_PIP_INDEX_URL"] == "https://m.example.com/simple" and args["MUSA_WHEELS"] == "triton==3.1.0"
    assert ("musa_docker.apt.musa-musart-5-2", "<resolved at prepare>") in dry.build.labels
    assert not [k for k, _ in dry.build.labels if k.startswith(("musa_docker.apt.mtcc", "musa_docker.apt.musa-toolkit"))]
    text = dry.render()
    assert "one apt transaction" in text and "never merged" in text
    resolved = aptrepo.Resolution(o.stack.apt, (("musa-musart-5-2", "5.2.0-1"), ("libmudnn3-musa-5-2", "3.0.0")))
    real = plan_release(o, resolved)
    assert dict(real.build.buildargs)["MUSA_APT_PACKAGES"] == "musa-musart-5-2=5.2.0-1 libmudnn3-musa-5-2=3.0.0"
    assert ("musa_docker.apt.musa-musart-5-2", "5.2.0-1") in real.build.labels


def test_a_base_with_the_sdk_installs_nothing_and_the_plan_says_why(env):
    o = dev(env, **APT)
    assert "nothing is installed from the apt source (vllm-musa's INSTALL_MUSA_STACK=auto)" in plan_dev(o, ()).render()
    kept = plan_dev(o, (), "3.11", None, True)
    assert dict(kept.build.buildargs)["MUSA_SDK"] == "base"
    assert dict(kept.build.buildargs)["MUSA_APT_PACKAGES"] == ""
    assert not [k for k, _ in kept.build.labels if k.startswith("musa_docker.apt.")]
    assert "already has the MUSA SDK (mcc found)" in kept.render()


def test_without_the_stack_the_plan_is_as_before(env):
    o = release(env, musa_url="/a/m.tar.gz", mudnn_url="/a/d.tar", **WHEELS)
    plan = plan_release(o)
    # the stack's args are passed at their Dockerfile defaults: the archives install the SDK
    assert {k: v for k, v in plan.build.buildargs if k.startswith("MUSA_")} == {
        "MUSA_SDK": "archives", "MUSA_RUNTIME": "", "MUSA_APT_SOURCE": "", "MUSA_APT_PACKAGES": "",
        "MUSA_PIP_INDEX_URL": "", "MUSA_WHEELS": "", "MUSA_WHEEL_HASHES": ""}
    assert not [k for k, _ in plan.build.labels if k.startswith("musa_docker.apt.")]


def test_dry_run_from_the_command_line(tmp_path):
    done = cli("build-dev", "-b", "musa-pytorch-base:latest", "--musa-apt-source", SOURCE, "--musa-runtime", "5.2",
               "--dry-run", env=user_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "musa-muthrust-5-2=<resolved at prepare>" in done.stdout
    assert "label       musa_docker.apt.musa-mualg-5-2=<resolved at prepare>" in done.stdout


# --- the stack with --gpu-arch and the pins file --------------------------------------------------

def apt_dry(tmp_path, *args, task="build-dev"):
    base = ("-b", "musa-pytorch-base:latest") if task == "build-dev" else ()
    done = cli(task, *base, "--musa-apt-source", SOURCE, "--dry-run", *args,
               env=user_env(Path(tempfile.mkdtemp(dir=tmp_path))))
    assert done.returncode == 0, done.stderr
    args_ = dict(line[14:].partition("=")[::2] for line in done.stdout.splitlines() if line.startswith("  build arg   "))
    return args_, done.stdout


def test_every_arch_with_mccl_has_its_package_in_the_one_table():
    from musa_docker.musa import arch
    assert set(aptrepo.MCCL_PACKAGES) == {t for t, a in arch.ARCHS.items() if a.mccl}
    assert aptrepo.MCCL_PACKAGES["mp_31"] == "mccl-s5000"          # vllm-musa's name for S5000


@pytest.mark.parametrize("gpu_arch, mccl, use", [
    ("S5000", ["mccl-s5000"], "1"),
    ("qy2", ["mccl-s4000"], "1"),
    ("mp_22,ph1", ["mccl-s4000", "mccl-s5000"], "1"),      # several archs: each one's MCCL
    ("qy1", [], "0"),                                      # qy1 has no MCCL
    ("S3000,S5000", [], "0"),                              # an arch without MCCL leaves it out
    (None, ["mccl-s4000", "mccl-s5000"], "1"),             # every arch: those that have MCCL
])
def test_mccl_from_apt_follows_the_gpu_arch(tmp_path, gpu_arch, mccl, use):
    args, text = apt_dry(tmp_path, "--musa-runtime", "5.2", *(("--gpu-arch", gpu_arch) if gpu_arch else ()))
    installed = [spec.split("=")[0] for spec in args["MUSA_APT_PACKAGES"].split()]
    assert [name for name in installed if name.startswith("mccl")] == mccl
    assert args["USE_MCCL"] == use
    assert [f"musa_docker.apt.{n}" for n in mccl] == [
        line[14:].split("=")[0] for line in text.splitlines() if line.startswith("  label       musa_docker.apt.mccl")]


def test_a_base_image_with_the_sdk_keeps_use_mccl_by_arch(env):
    from musa_docker.musa import arch, sdk
    kept = dict(plan_dev(dev(env, **APT), (), "3.11", None, True).build.buildargs)
    assert sdk.uses_mccl(kept, (), arch.EVERY) and not sdk.uses_mccl(kept, (), arch.select(["qy1"]))


def pins(tmp_path, text: str):
    path = tmp_path / "pins.yaml"
    path.write_text(text)
    return path


ARTIFACTS = "artifacts:\n  S4000:\n    musa_toolkits: {url: https://e.example/m.tar.gz}\n    mudnn: {url: https://e.example/d.tar}\n"


@pytest.mark.parametrize("gpu_arch", [["--gpu-arch", "S4000"], []])
def test_pins_artifacts_and_an_apt_source_exclude_each_other(tmp_path, gpu_arch):
    path = pins(tmp_path, ARTIFACTS)
    done = cli("build-dev", "-b", "b:1", "--dry-run", "--pins", str(path), *gpu_arch, "--musa-apt-source", SOURCE,
               "--musa-runtime", "5.2", env=user_env(tmp_path))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"error: --musa-apt-source and the pins file's artifacts for mp_22 (pins {path}:2) both install the MUSA SDK: "
        "give the apt source or the archives, not both (drop --musa-apt-source, or that arch's artifacts from the "
        "pins file)")


def test_pins_artifacts_of_another_arch_do_not_stand_in_the_way(tmp_path):
    args, _ = apt_dry(tmp_path, "--pins", str(pins(tmp_path, ARTIFACTS)), "--gpu-arch", "S5000", "--musa-runtime", "5.2")
    assert args["MUSA_SDK"] == "apt" and "mccl-s5000=" in args["MUSA_APT_PACKAGES"]


def test_mccl_url_variable_with_an_apt_source_names_the_variable(tmp_path):
    done = cli("build-dev", "-b", "b:1", "--dry-run", "--musa-apt-source", SOURCE, "--musa-runtime", "5.2",
               env={**user_env(tmp_path), "MCCL_URL": "/a/mccl.tar.gz"})
    assert done.returncode != 0 and done.stderr.startswith("error: --musa-apt-source and $MCCL_URL both install")


def inputs_of(text: str) -> dict:
    rows, section = {}, None
    for line in text.splitlines():
        if not line.startswith(" "):
            section = line.rstrip(":")
        elif section == "inputs":
            value, _, source = line[22:].rpartition("  (")
            rows[line[2:21].strip()] = (value, source[:-1])
    return rows


def test_the_inputs_show_the_apt_source_and_runtime_with_their_sources(tmp_path):
    _, text = apt_dry(tmp_path, "--musa-runtime", "5.2", "--gpu-arch", "S5000")
    rows = inputs_of(text)
    assert rows["musa_apt_source"] == (SOURCE, "flag") and rows["musa_runtime"] == ("5.2", "flag")
    assert rows["musa_url"] == ("(none)", "none: the SDK comes from --musa-apt-source")
    path = pins(tmp_path, 'versions:\n  musa: "5.2.0"\n')
    args, text = apt_dry(tmp_path, "--pins", str(path), "--gpu-arch", "S5000")
    assert inputs_of(text)["musa_runtime"] == ("5.2", f"pins {path}:2 (versions.musa 5.2.0)")
    assert args["MUSA_RUNTIME"] == "5.2" and args["MUSA_APT_PACKAGES"].startswith("musa-toolkit-5-2=")
    # a flag naming another line than the pins file's versions.musa: an image installs one line
    done = cli("build-dev", "-b", "musa-pytorch-base:latest", "--musa-apt-source", SOURCE, "--dry-run", "--pins",
               str(path), "--gpu-arch", "S5000", "--musa-runtime", "5.3", env=user_env(tmp_path))
    assert_one_error(done, "--musa-runtime 5.3", f"pins {path}:2 (versions.musa 5.2.0)", "two MUSA SDK lines")


REQS = ('versions:\n  musa: "5.2.0"\nwheels:\n  S5000:\n    "3.11":\n      torch: "torch==2.7.1+musa5.2.0"\n'
        '      torch_musa: "torch_musa == 2.7.1+musa5.2.0"\n      triton: "triton==3.1.0"\n')
INDEX = "https://m.example.com/simple"


def test_pins_requirements_join_the_musa_wheels_and_the_checks(tmp_path, env):
    from musa_docker.commands import build as commands
    from musa_docker.musa import sdk
    path = pins(tmp_path, REQS)
    values = {"base_img": "debian:12", "python_env": "venv", "python_version": "3.11", "pins": str(path),
              "gpu_arch": "S5000", **APT, "musa_pip_index_url": INDEX, "musa_wheel": ["triton==3.2.0"]}
    resolved, o = commands.resolve("release", values, env)
    # --musa-wheel wins over the pins file's triton; torch and torch_musa need no wheel URL
    assert [w.requirement for w in o.stack.wheels] == ["triton==3.2.0", "torch==2.7.1+musa5.2.0",
                                                       "torch_musa==2.7.1+musa5.2.0"]
    assert o.torch_whl is None and o.torch_musa_whl is None
    assert sdk.expect(o.stack)["versions"] == {"triton": "3.2.0", "torch": "2.7.1+musa5.2.0",
                                               "torch_musa": "2.7.1+musa5.2.0"}
    rows = {name: (value, source) for name, value, source in resolved.sources}
    assert rows["torch_musa_whl_url"] == ("torch_musa==2.7.1+musa5.2.0 from the MUSA index", f"pins {path}:7")
    # a wheel flag wins over the pins file's requirement for the same wheel
    _, o = commands.resolve("release", {**values, **WHEELS}, env)
    assert [w.requirement for w in o.stack.wheels] == ["triton==3.2.0"]
    assert o.torch_whl.filename == "torch-2.0.0-cp311-cp311-linux_x86_64.whl"


def test_a_pins_requirement_without_the_musa_index_is_one_error(tmp_path):
    path = pins(tmp_path, REQS)
    done = cli("release", "--dry-run", "-b", "debian:12", "--python-env", "venv", "-v", "3.11", "--pins", str(path),
               "--gpu-arch", "S5000", "--musa-apt-source", SOURCE, env=user_env(tmp_path))
    assert done.returncode != 0
    assert done.stderr.strip() == (
        f"error: pins {path}:6: torch is the requirement 'torch==2.7.1+musa5.2.0', which comes from the MUSA pip "
        "index alone: give --musa-pip-index-url URL, or a wheel URL in the pins file")


def test_a_dry_run_installs_pins_requirements_from_the_musa_index(tmp_path):
    args, text = apt_dry(tmp_path, "-b", "debian:12", "--python-env", "venv", "-v", "3.11", "--pins",
                         str(pins(tmp_path, REQS)), "--gpu-arch", "S5000", "--musa-pip-index-url", INDEX,
                         task="release")
    assert args["MUSA_WHEELS"] == "torch==2.7.1+musa5.2.0 torch_musa==2.7.1+musa5.2.0 triton==3.1.0"
    assert args["MUSA_PIP_INDEX_URL"] == INDEX and args["MUSA_RUNTIME"] == "5.2"
    assert "fetch   torch" not in text
