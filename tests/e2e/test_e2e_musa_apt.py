"""End to end, on the real engine: a release image from debian:12 whose MUSA SDK comes from a local
apt repository (tests/support/musa_apt.py) and whose torch comes from a MUSA pip index kept apart from the
public stand-in, which holds a higher torch that pulls a CUDA distribution."""

from __future__ import annotations

import platform
import re
import socket
import uuid

import pytest

import musa_apt
import vendor
from conftest import cli, user_env
from images import debian12_image, run_in, serve_directory, write_simple_index

pytestmark = [pytest.mark.engine, pytest.mark.e2e]

MUSA_TORCH = "2.0.0+musa5.2.0"
MUSA_TORCH_MUSA = "1.0.0+musa5.2.0"


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """The apt repository, the MUSA index and the public index, each on 127.0.0.1."""
    tmp = tmp_path_factory.mktemp("musa-apt")
    tag = f"cp311-cp311-linux_{platform.machine()}"
    for name in ("musa-wheels", "public-wheels", "greedy"):
        (tmp / name).mkdir()
    torch_file, torch_musa = vendor.fixture_wheels(tmp / "wheels", "3.11")
    musa_torch = vendor._write_wheel(tmp / "musa-wheels", "torch", MUSA_TORCH, tag,
                                     {"torch/__init__.py": vendor._TORCH_INIT}, summary="MUSA torch stand-in")
    public = tmp / "public-wheels"
    # the public stand-in: a higher torch that, like a CUDA build, pulls nvidia-* distributions
    public_torch = vendor._write_wheel(public, "torch", "2.1.0", tag, {"torch/__init__.py": vendor._TORCH_INIT},
                                       requires=("nvidia-cublas-cu12",), summary="public torch stand-in")
    cublas = vendor._write_wheel(public, "nvidia_cublas_cu12", "12.1.0", "py3-none-any",
                                 {"nvidia_cublas_cu12/__init__.py": ""}, summary="CUDA stand-in")
    # a torch_musa that asks for torch>=2.1: the public index then replaces the MUSA torch
    greedy = vendor._write_wheel(tmp / "greedy", "torch_musa", "1.0.0", tag, {"torch_musa/__init__.py": ""},
                                 requires=("torch>=2.1",), summary="torch_musa asking for a newer torch")
    musa_torch_musa = vendor._write_wheel(tmp / "musa-wheels", "torch_musa", MUSA_TORCH_MUSA, tag,
                                          {"torch_musa/__init__.py": vendor._TORCH_MUSA_WHEEL_INIT},
                                          requires=("torch==2.0.0",), summary="MUSA torch_musa stand-in")
    write_simple_index(tmp / "musa-index", [musa_torch, musa_torch_musa])
    write_simple_index(tmp / "public-index", [public_torch, cublas, *vendor.release_index_wheels("3.11")])
    repo = musa_apt.write_repo(tmp / "apt")
    with serve_directory(repo) as apt, serve_directory(tmp / "musa-index") as musa, \
            serve_directory(tmp / "public-index") as pub:
        yield {"apt": apt.rstrip("/"), "musa": musa + "simple/", "public": pub + "simple/",
               "torch_musa": torch_musa, "greedy": greedy, "tmp": tmp, "torch_file": torch_file}


def release_args(servers, tag, *, suite="good", torch=MUSA_TORCH, torch_musa=None):
    return ["release", "-b", "debian:12", "--python-env", "venv", "-v", "3.11", "-i", "musa-docker-test/apt-release",
            "-t", tag, "--musa-apt-source", f"deb [trusted=yes] {servers['apt']} {suite} main", "--musa-runtime", "5.2",
            "--musa-pip-index-url", servers["musa"], "--musa-wheel", f"torch=={torch}",
            "--torch-musa-whl-url", str(torch_musa or servers["torch_musa"]), "--pip-index-url", servers["public"]]


def remove(engine, ref):
    try:
        engine.images.remove(ref, force=True)
    except Exception:
        pass


@pytest.fixture(scope="module")
def release(servers, engine, tmp_path_factory):
    debian12_image(engine)
    tag = uuid.uuid4().hex[:8]
    done = cli(*release_args(servers, tag), env=user_env(tmp_path_factory.mktemp("user")))
    yield {"done": done, "ref": f"musa-docker-test/apt-release:{tag}"}
    remove(engine, f"musa-docker-test/apt-release:{tag}")


def test_release_gets_the_sdk_from_apt_and_torch_from_the_musa_index(release, engine):
    done = release["done"]
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    ref = release["ref"]
    # the runtime packages only: no toolkit, no compiler (mtcc), no -dev package
    assert "apt pins: musa-musart-5-2=5.2.0-1 libmudnn3-musa-5-2=3.0.0+musa5.2.0 mccl-s4000=2.4.0-1" in done.stdout
    assert run_in(engine, ref, "readlink /usr/local/musa; command -v mcc || echo no mcc; "
                               "dpkg-query -W -f='${Version}\\n' musa-musart-5-2") == "musa-5.2\nno mcc\n5.2.0-1"
    assert run_in(engine, ref, "dpkg-query -W -f='${Package}\\n' | grep -e mtcc -e musa-toolkit -e -dev || true") == ""
    assert "libmusart.so" in run_in(engine, ref, "ldconfig -p")
    # the MUSA build, not the public index's higher version, and nothing of CUDA
    assert run_in(engine, ref, "cd / && python -c 'import torch; print(torch.__version__)'") == "2.0.0"
    # torch from the MUSA index; torch_musa is the wheel file --torch-musa-whl-url names
    assert run_in(engine, ref, "python -c 'from importlib.metadata import version as v; print(v(\"torch\"), v(\"torch_musa\"))'") \
        == f"{MUSA_TORCH} 1.0.0"
    assert "nvidia" not in run_in(engine, ref, "python -m pip list 2>/dev/null")


def test_the_apt_source_does_not_stay_in_the_image(release, engine):
    ref = release["ref"]
    assert run_in(engine, ref, "ls /etc/apt/sources.list.d/ /var/lib/apt/lists | grep -v -e '^lock$' -e '^partial$' -e ':$' -e '^$' || true") == ""
    labels = engine.images.get(ref).labels
    assert labels["musa_docker.apt.musa-musart-5-2"] == "5.2.0-1"
    assert labels["musa_docker.apt.libmudnn3-musa-5-2"] == "3.0.0+musa5.2.0"
    assert labels["musa_docker.apt.mccl-s5000"] == "2.4.0-1"


def _no_image(engine, tag):
    assert not engine.images.list(name=f"musa-docker-test/apt-release:{tag}")


@pytest.mark.parametrize("suite, says", [
    ("mixed", "mixes runtime lines: musa-musart-5-2 is 5.1.0-1"),
    ("noruntime", "suite noruntime (main) of"),
])
def test_a_bad_suite_is_refused_before_any_build_step(servers, engine, tmp_path, suite, says):
    tag = uuid.uuid4().hex[:8]
    done = cli(*release_args(servers, tag, suite=suite), env=user_env(tmp_path))
    assert done.returncode != 0
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and says in err[0], done.stderr
    assert "Traceback" not in done.stderr and "build musa-docker-test" not in done.stdout
    _no_image(engine, tag)


def test_an_apt_source_that_does_not_answer(servers, engine, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tag = uuid.uuid4().hex[:8]
    args = release_args(servers, tag)
    args[args.index("--musa-apt-source") + 1] = f"deb [trusted=yes] http://127.0.0.1:{port}/musa good main"
    done = cli(*args, env=user_env(tmp_path))
    assert done.returncode != 0 and done.stderr.startswith("error: ") and "does not answer" in done.stderr
    _no_image(engine, tag)


def test_tarball_flags_with_an_apt_source_are_refused(servers, tmp_path):
    done = cli(*release_args(servers, "x"), "-n", "/tmp/mudnn.tar", env=user_env(tmp_path))
    assert done.returncode != 0
    assert done.stderr.strip() == ("error: --musa-apt-source and -n/--mudnn-url both install the MUSA SDK: give the "
                                   "apt source or the archives, not both (unset the variables when they come from "
                                   "the environment)")


def test_a_requirement_the_musa_index_cannot_satisfy(release, servers, engine, tmp_path):
    assert release["done"].returncode == 0     # the layers before the failing step are cached
    tag = uuid.uuid4().hex[:8]
    done = cli(*release_args(servers, tag, torch="9.9.9+musa5.2.0"), env=user_env(tmp_path))
    assert done.returncode != 0
    # asked of the index from the host before the build: one line naming it, no build step ran
    assert done.stderr.startswith("error: --musa-wheel torch==9.9.9+musa5.2.0: the index has no torch "
                                  "9.9.9+musa5.2.0 (it lists 2.0.0+musa5.2.0)"), done.stderr
    assert len(done.stderr.splitlines()) == 1 and "install_musa_wheels" not in done.stdout + done.stderr
    _no_image(engine, tag)


def test_an_installed_version_that_differs_from_its_requirement(release, servers, engine, tmp_path):
    assert release["done"].returncode == 0
    tag = uuid.uuid4().hex[:8]
    done = cli(*release_args(servers, tag, torch_musa=servers["greedy"]), env=user_env(tmp_path))
    assert done.returncode != 0
    err = done.stderr.strip().splitlines()[-1]
    assert err.startswith("error: the new image") and "was not tagged" in err, done.stderr
    # Under the classic builder each wheel is its own captured layer, which cannot delete the MUSA
    # torch's dist-info: the replaced torch may still read as the pinned version, so the CUDA build
    # the public index brought along is what names the replacement for certain.
    assert "CUDA distributions are installed (nvidia-cublas-cu12)" in err or \
           "CUDA distributions are installed (nvidia_cublas_cu12)" in err
    _no_image(engine, tag)


def test_a_base_image_with_the_sdk_is_recognised(release, busybox, engine):
    """build-dev's observation (vllm-musa's INSTALL_MUSA_STACK=auto): mcc in the image keeps its SDK. A lean
    release holds the SDK's runtime only, so it is not such a base."""
    from conftest import remove_images, tar_context
    from musa_docker.engine.api import Engine
    from musa_docker.musa.sdk import base_has_sdk
    assert release["done"].returncode == 0
    ref = f"musa-docker-test/with-mcc:{uuid.uuid4().hex[:8]}"
    engine.images.build(fileobj=tar_context(f"FROM {busybox}\nCOPY mcc /usr/local/musa/bin/mcc\n",
                                            {"mcc": "#!/bin/sh\necho mcc\n"}),
                        custom_context=True, tag=ref, rm=True)
    try:
        said = []
        assert base_has_sdk(Engine(), ref, said.append)
        assert said == [f"keep the MUSA SDK of {ref}: mcc is there, so nothing is installed from the apt source"]
        assert not base_has_sdk(Engine(), busybox, said.append)
        assert not base_has_sdk(Engine(), release["ref"], said.append)
    finally:
        remove_images(engine, ref)


def test_every_arch_gets_each_mccl_package(release, engine):
    """No --gpu-arch: the archs that have MCCL get theirs, each pinned and labelled."""
    labels = engine.images.get(release["ref"]).labels
    assert labels["musa_docker.apt.mccl-s4000"] == "2.4.0-1"
    assert "ii  mccl-s4000" in run_in(engine, release["ref"], "dpkg -l mccl-s4000 mccl-s5000")


@pytest.fixture(scope="module")
def pins_release(servers, engine, tmp_path_factory):
    """The runtime line, torch and torch_musa from a pins file, for qy1 (no MCCL): no wheel URL."""
    debian12_image(engine)
    tmp = tmp_path_factory.mktemp("pins-release")
    pins = tmp / "pins.yaml"
    pins.write_text(f'versions:\n  musa: "5.2.0"\nwheels:\n  S80:\n    "3.11":\n      torch: "torch=={MUSA_TORCH}"\n'
                    f'      torch_musa: "torch_musa=={MUSA_TORCH_MUSA}"\n')
    tag = uuid.uuid4().hex[:8]
    args = release_args(servers, tag)
    for flag in ("--musa-runtime", "--musa-wheel", "--torch-musa-whl-url"):
        del args[args.index(flag):args.index(flag) + 2]
    args += ["--pins", str(pins), "--gpu-arch", "qy1"]
    env = user_env(tmp_path_factory.mktemp("pins-user"))
    done = cli(*args, env=env)
    yield {"done": done, "ref": f"musa-docker-test/apt-release:{tag}", "pins": pins,
           "plan": cli(*args, "--dry-run", env=env)}
    remove(engine, f"musa-docker-test/apt-release:{tag}")


def test_a_release_from_a_pins_file_for_an_arch_without_mccl(pins_release, engine):
    done, ref, pins = pins_release["done"], pins_release["ref"], pins_release["pins"]
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    plan = pins_release["plan"].stdout
    assert f"musa_runtime        5.2  (pins {pins}:2 (versions.musa 5.2.0))" in plan
    assert f"torch_whl_url       torch=={MUSA_TORCH} from the MUSA index  (pins {pins}:6)" in plan
    assert "build arg   USE_MCCL=0" in plan and "fetch   torch" not in plan
    labels = engine.images.get(ref).labels
    assert labels["musa_docker.gpu_arch"] == "mp_21"
    assert labels["musa_docker.apt.musa-musart-5-2"] == "5.2.0-1"
    assert not [k for k in labels if k.startswith("musa_docker.apt.mccl")]
    assert run_in(engine, ref, "dpkg -l 'mccl*' >/dev/null 2>&1 && echo mccl || echo none") == "none"
    assert run_in(engine, ref, "python -c 'from importlib.metadata import version as v; print(v(\"torch\"), v(\"torch_musa\"))'") \
        == f"{MUSA_TORCH} {MUSA_TORCH_MUSA}"


# --- what is in the image: its SBOM, its sizes, the budget -----------------------------------------

def test_sbom_lists_the_apt_sdk_the_musa_index_torch_and_what_the_image_holds(release, engine, servers):
    import sbomcheck
    done = release["done"]
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    paths = sbomcheck.beside_the_log(done.stdout)
    docs = sbomcheck.load_valid(paths)
    labels = engine.images.get(release["ref"]).labels
    for fmt, path in paths.items():
        assert labels[f"musa_docker.sbom.{fmt}"] == sbomcheck.sha256(path)
    found = sbomcheck.components(docs["cyclonedx"])
    # the dpkg and pip lists are what the image holds
    dpkg = set(run_in(engine, release["ref"], "dpkg-query -W -f '${Package} ${Version} ${Architecture}\\n'").splitlines())
    assert {f"{c['name']} {c['version']} {ref.rsplit(':', 1)[1]}" for ref, c in found.items()
            if ref.startswith("deb:")} == dpkg
    pip = run_in(engine, release["ref"], "python -c 'from importlib import metadata as m; "
                 "print(\"\\n\".join(sorted(d.metadata[\"Name\"] + \" \" + d.version for d in m.distributions())))'")
    assert {f"{c['name']} {c['version']}" for ref, c in found.items() if ref.startswith("pypi:")} == set(pip.splitlines())
    assert all("distro=debian-12" in c["purl"] for ref, c in found.items() if ref.startswith("deb:"))
    # the MUSA index's torch carries the index, so that no scanner takes it for PyPI's
    torch = found["pypi:torch"]
    assert torch["purl"].startswith(f"pkg:pypi/torch@{MUSA_TORCH.replace('+', '%2B')}?")
    assert f"repository_url={servers['musa']}" in torch["purl"]
    served = next((servers["tmp"] / "musa-wheels").glob("torch-*.whl"))       # the wheel pip got, by its hash
    assert torch["hashes"] == [{"alg": "SHA-256", "content": sbomcheck.sha256(served)}]
    # each apt SDK package with its repository, each downloaded input with its sha256
    pins = {k[len("musa_docker.apt."):]: v for k, v in labels.items()
            if k.startswith("musa_docker.apt.") and not k.endswith(".sha256")}
    assert pins
    for name, version in pins.items():
        sdk = next(c for ref, c in found.items() if ref.startswith(f"deb:{name}:"))
        assert sdk["version"] == version and f"repository_url={servers['apt']}" in sdk["purl"]
        assert sdk["hashes"] == [{"alg": "SHA-256", "content": labels[f"musa_docker.apt.{name}.sha256"]}]
    wheel = found["artifact:torch_musa_wheel"]
    assert wheel["hashes"][0]["content"] == sbomcheck.sha256(servers["torch_musa"])
    assert found["os"]["type"] == "operating-system" and found["os"]["name"] == "debian"


def test_report_and_verify_show_sizes_and_a_budget_below_the_image_fails_before_tagging(release, engine, servers,
                                                                                        tmp_path):
    done = release["done"]
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"^size: [0-9.]+ [kMG]?B unpacked in \d+ layers", done.stdout, re.M), done.stdout[-3000:]
    assert re.search(r"^ +[0-9.]+ [kMG]?B  RUN ", done.stdout, re.M)
    env = user_env(tmp_path)
    checked = cli("verify", "-i", release["ref"], env=env)
    assert re.search(r"^size: .* unpacked", checked.stdout, re.M), checked.stdout
    tag = uuid.uuid4().hex[:8]
    over = cli(*release_args(servers, tag), "--size-budget", "20M", env=env)
    assert over.returncode == 1, over.stdout[-3000:] + over.stderr
    assert "over --size-budget 20.0 MB" in over.stderr and "not tagged" in over.stderr, over.stderr
    assert re.search(r"its largest layers: [^:]+: [0-9.]+ [kMG]?B", over.stderr)
    with pytest.raises(Exception):
        engine.images.get(f"musa-docker-test/apt-release:{tag}")


def test_sbom_task_writes_the_documents_of_an_image_built_earlier(release, tmp_path):
    import sbomcheck
    assert release["done"].returncode == 0
    stem = release["ref"].replace("/", "_").replace(":", "_")
    env = user_env(tmp_path)
    done = cli("sbom", release["ref"], "-o", str(tmp_path / "out"), env=env)
    assert done.returncode == 0, done.stderr
    docs = sbomcheck.load_valid({fmt: tmp_path / "out" / (stem + suffix) for fmt, suffix in sbomcheck.SUFFIXES.items()})
    assert docs["cyclonedx"]["metadata"]["component"]["description"].startswith("image sha256:")
    assert "the one written at build time has sha256" in done.stdout
    only = cli("sbom", "-i", release["ref"], "--format", "spdx", "-o", str(tmp_path / "spdx"), env=env)
    assert only.returncode == 0, only.stderr
    assert sorted(p.name for p in (tmp_path / "spdx").iterdir()) == [stem + ".spdx.json"]


def test_an_up_to_date_build_still_writes_the_sbom_to_its_sbom_dir(release, servers, tmp_path):
    import sbomcheck
    assert release["done"].returncode == 0
    tag = release["ref"].rpartition(":")[2]
    again = cli(*release_args(servers, tag), "--sbom", str(tmp_path / "sboms"), env=user_env(tmp_path))
    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stdout
    stem = release["ref"].replace("/", "_").replace(":", "_")
    sbomcheck.load_valid({fmt: tmp_path / "sboms" / (stem + suffix) for fmt, suffix in sbomcheck.SUFFIXES.items()})


def test_the_release_image_keeps_every_lean_rule(release, engine, tmp_path):
    """The release image under the lean-release rules (check/lean.py): `release` held it to them before
    tagging, and `verify --lean` finds nothing either: no compiler, header, static library, -dev package,
    apt list, pip cache, archive, and no file of its own layers rewritten by a later one."""
    from musa_docker.check import lean
    from musa_docker.engine.api import Engine
    done = release["done"]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "lean: none of the rules is broken" in done.stdout
    assert lean.measure(Engine(), release["ref"]) == []
    shown = cli("verify", "-i", release["ref"], "--lean", env=user_env(tmp_path))
    assert "lean: none of the rules is broken" in shown.stdout
    # what running torch_musa needs is there: the SDK's runtime library, numpy without its C API
    assert "libmusart.so" in run_in(engine, release["ref"], "ldconfig -p")
    assert run_in(engine, release["ref"], "cd / && python -c 'import numpy, torch; print(torch.__version__)'") == "2.0.0"


def test_a_release_that_breaks_a_lean_rule_fails_before_tagging_and_names_it(servers, engine, tmp_path):
    """A release Dockerfile (-f) that leaves a header behind and chowns a file an earlier layer wrote: the
    build fails with one error line naming both rules and the offending files, and no image is tagged."""
    from musa_docker.resources import DOCKERFILES
    dockerfile = tmp_path / "dockerfile.release"
    dockerfile.write_text(DOCKERFILES["release"].read_text()
                          + "RUN mkdir -p /usr/local/include && printf '#pragma once\\n' > /usr/local/include/extra.h\n"
                          + "RUN chown 1:1 /etc/profile.d/python_env.sh\n")
    tag = uuid.uuid4().hex[:8]
    done = cli(*release_args(servers, tag), "-f", str(dockerfile), env=user_env(tmp_path))
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    assert "breaks the lean-release rules, so it was not tagged" in errors[0]
    assert "header (1, 13 B): /usr/local/include/extra.h" in errors[0]
    assert "layer waste (1, " in errors[0] and "/etc/profile.d/python_env.sh" in errors[0]
    assert "RUN chown 1:1 /etc/profile.d/python_env.sh" in errors[0]
    _no_image(engine, tag)


def test_after_a_push_the_sbom_names_the_image_by_its_registry_digest(release, engine, tmp_path):
    import sbomcheck
    from registry import serve_registry
    assert release["done"].returncode == 0
    env = user_env(tmp_path)
    with serve_registry(tmp_path / "registry") as host:
        pushed = cli("push", "-i", release["ref"], "--registry", host, env=env)
        assert pushed.returncode == 0, pushed.stderr
        remote = f"{host}/{release['ref']}"
        try:
            done = cli("sbom", remote, "--format", "cyclonedx", "-o", str(tmp_path / "out"), env=env)
            assert done.returncode == 0, done.stderr
            stem = remote.replace("/", "_").replace(":", "_")
            docs = sbomcheck.load_valid({"cyclonedx": tmp_path / "out" / (stem + ".cdx.json")})
            digest = engine.images.get(remote).attrs["RepoDigests"][0].partition("@")[2]
            image = docs["cyclonedx"]["metadata"]["component"]
            assert image["purl"].startswith(f"pkg:oci/apt-release@{digest.replace(':', '%3A')}?repository_url={host}/")
        finally:
            remove(engine, remote)
