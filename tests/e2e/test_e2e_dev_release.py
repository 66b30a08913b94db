"""End to end: build-base -> build-dev, and release from debian:12, on a real engine, with vendor
archives of the real shapes served over HTTP, fixture torch_musa and vision repos, and wheels."""

from __future__ import annotations

import hashlib
import re
import time
import uuid

import pytest

import vendor
from conftest import BUILDERS, cli, git, user_env
from httpserver import Server
from images import debian12_image, local_pypi, run_in

pytestmark = [pytest.mark.engine, pytest.mark.e2e]


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def vendor_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("vendor")
    return {"musa": vendor.musa_toolkits_archive(d), "mudnn": vendor.mudnn_archive(d), "mccl": vendor.mccl_archive(d)}


@pytest.fixture(scope="module")
def server(vendor_files):
    with Server() as srv:
        for name, path in vendor_files.items():
            srv.add(f"/vendor/{path.name}", path.read_bytes())
        yield srv


@pytest.fixture(scope="module")
def dev(e2e_base, vendor_files, server, tmp_path_factory, engine):
    assert e2e_base["first"].returncode == 0, e2e_base["first"].stderr[-2000:]
    tmp = tmp_path_factory.mktemp("e2e-dev")
    env = user_env(tmp)
    torch_musa = vendor.torch_musa_repo(tmp / "upstream")
    vision = vendor.vision_repo(tmp / "upstream")
    kineto, audio = vendor.kineto_repo(tmp / "upstream"), vendor.audio_repo(tmp / "upstream")
    mualg, muthrust = vendor.mt_repo(tmp / "upstream", "mualg"), vendor.mt_repo(tmp / "upstream", "muthrust")
    tag = uuid.uuid4().hex[:8]
    musa = vendor_files["musa"]
    args = [
        "build-dev", "-b", e2e_base["ref"], "-i", "musa-docker-test/dev", "-t", tag,
        # one artifact over HTTP with a checksum, one as a file:// URL, one as a plain path
        "-m", server.url(f"/vendor/{musa.name}", userinfo="builder:t0ken") + f"#sha256={sha256(musa)}",
        "--mccl-url", vendor_files["mccl"].as_uri(),
        "-n", str(vendor_files["mudnn"]),
        "--torch-musa-repo", torch_musa.as_uri(), "--torch-musa-ref", "v1.0.0",
        "--vision-repo", vision.as_uri(), "--vision-root", str(tmp / "src"),
        # kineto cloned under its root; muAlg fetched into the cache at a tag; muThrust used as it is
        "--kineto-repo", kineto.as_uri(), "--kineto-tag", vendor.COMPONENT_TAG, "--kineto-root", str(tmp / "src"),
        "--mualg-repo", mualg.as_uri(), "--mualg-tag", vendor.COMPONENT_TAG, "--muthrust-repo", str(muthrust),
        "--audio-repo", audio.as_uri(), "--audio-tag", vendor.COMPONENT_TAG,
        "--gpu-arch", "s4000",
        *BUILDERS[e2e_base["builder"]],     # dev is built by the builder its base was
    ]
    with local_pypi(tmp / "index", vendor.dev_index_wheels("3.11")) as index:
        started = time.monotonic()
        first = cli(*args, "--pip-index-url", index, env=env)
        first_s = time.monotonic() - started
        started = time.monotonic()
        second = cli(*args, "--pip-index-url", index, env=env)
        second_s = time.monotonic() - started
        # the commit after the tag changes one of torch_musa's C++ sources
        changed_tag = f"{tag}-changed"
        at = args.index("--torch-musa-ref")         # torch_musa at its default branch: the commit after the tag
        changed = cli(*[changed_tag if a == tag else a for a in args[:at] + args[at + 2:]],
                      "--pip-index-url", index, env=env)
    print(f"\nbuild-dev: first {first_s:.1f}s, unchanged second {second_s:.1f}s")
    yield {"first": first, "second": second, "ref": f"musa-docker-test/dev:{tag}", "torch_musa": torch_musa,
           "requests": len(server.requests), "kineto": kineto, "mualg": mualg, "muthrust": muthrust, "audio": audio,
           "builder": e2e_base["builder"], "changed": changed,
           "changed_ref": f"musa-docker-test/dev:{changed_tag}"}
    for ref in (f"musa-docker-test/dev:{tag}", f"musa-docker-test/dev:{changed_tag}"):
        try:
            engine.images.remove(ref, force=True)
        except Exception:
            pass


def compile_cache(engine, ref):
    label = engine.images.get(ref).labels.get("musa_docker.compile_cache")
    m = label and re.fullmatch(r"hits=(\d+) misses=(\d+)", label)
    return (int(m.group(1)), int(m.group(2))) if m else label


def test_a_changed_source_rebuilds_from_the_compile_cache_under_buildkit(dev, engine):
    changed = dev["changed"]
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert "compiled 4 C++ sources" in changed.stdout
    if dev["builder"] == "classic":
        assert compile_cache(engine, dev["ref"]) is None and compile_cache(engine, dev["changed_ref"]) is None
        assert "compile cache: hits=" not in changed.stdout
        return
    hits, misses = compile_cache(engine, dev["ref"])
    assert hits + misses >= 4      # torch_musa's four sources went through ccache
    hits, misses = compile_cache(engine, dev["changed_ref"])
    # one source changed: the other three (and torchvision's, rebuilt on top) hit; the changed one
    # misses unless an earlier run on this engine compiled it already (the cache outlives builds)
    assert hits >= 3, (hits, misses)
    assert f"compile cache: hits={hits} misses={misses}" in changed.stderr + changed.stdout


def image_config(engine, ref) -> dict:
    """The image's config as the engine stores (and pushes) it, from `docker save`: the API's
    inspect leaves out what BuildKit adds, such as the inline cache."""
    import io
    import json
    import tarfile
    raw = io.BytesIO(b"".join(engine.api.get_image(ref)))
    with tarfile.open(fileobj=raw) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        return json.load(tar.extractfile(manifest[0]["Config"]))


def test_a_dev_image_with_the_compile_cache_keeps_its_inline_cache(dev, engine):
    """The compile-cache label is BuildKit's own: the image config still carries the inline cache
    (moby.buildkit.cache.v0), so the pushed image serves --cache-from on another engine."""
    assert dev["changed"].returncode == 0, dev["changed"].stderr[-3000:]
    config = image_config(engine, dev["changed_ref"])
    if dev["builder"] == "classic":
        assert "moby.buildkit.cache.v0" not in config
        return
    assert config["config"]["Labels"]["musa_docker.compile_cache"].startswith("hits=")
    # the labelling run took every step from the cache: no source build ran again
    labelling = dev["changed"].stdout.split("label the image: the build again with the label")[1]
    assert "compile cache: ccache in" not in labelling and " CACHED" in labelling, labelling[-3000:]
    assert config.get("moby.buildkit.cache.v0"), sorted(config)
    history = " ".join(h.get("created_by", "") for h in config["history"])
    assert "build_torch_musa.sh" in history and "build_torchvision.sh" in history


def test_dev_builds_and_the_toolkit_and_torch_musa_work(dev, engine):
    assert dev["first"].returncode == 0, dev["first"].stdout[-4000:] + dev["first"].stderr[-2000:]
    ref = dev["ref"]
    assert run_in(engine, ref, "echo $MUSA_HOME") == "/usr/local/musa"
    assert run_in(engine, ref, "musa_toolkits_version").strip()
    assert "libmusart" in run_in(engine, ref, "ldconfig -p")
    assert run_in(engine, ref, "cd / && python -c 'import torch_musa; print(torch_musa.__name__)'") == "torch_musa"
    assert run_in(engine, ref, "cd / && python -c 'import torchvision; print(torchvision.__name__)'") == "torchvision"
    assert run_in(engine, ref, "cat /home/pytorch/third_party/fmt/include/fmt/core.h") == "// fmt core"


def test_dev_labels_carry_sha256s_and_commits(dev, engine, vendor_files):
    labels = engine.images.get(dev["ref"]).labels
    assert labels["musa_docker.kind"] == "dev"
    assert labels["musa_docker.python_version"] == "3.11"
    for name, key in (("musa", "musa_toolkits"), ("mudnn", "mudnn"), ("mccl", "mccl")):
        assert labels[f"musa_docker.artifact.{key}.sha256"] == sha256(vendor_files[name])
    assert labels["musa_docker.torch_musa.commit"] == git("rev-parse", "v1.0.0^{commit}", cwd=dev["torch_musa"])
    assert re.fullmatch(r"[0-9a-f]{40}", labels["musa_docker.vision.commit"])
    assert "musa_docker.pytorch.commit" in labels                       # inherited from the base
    assert labels["musa_docker.gpu_arch"] == "mp_22"


def test_gpu_arch_build_args_reach_the_torch_musa_build(dev, engine):
    info = run_in(engine, dev["ref"], "cd / && python -c 'from torch_musa import _build_info as b; "
                                      "print(b.torch_musa_arch_list, b.mtgpu_target, b.use_mccl)'")
    assert info == "22 mp_22 1"
    # build args, not ENV: the image's environment does not carry them
    assert run_in(engine, dev["ref"], "echo ${TORCH_MUSA_ARCH_LIST:-unset} ${USE_MCCL:-unset}") == "unset unset"


def test_components_are_built_before_torch_musa_and_labelled(dev, engine):
    ref = dev["ref"]
    # torch_musa's build found kineto (with its submodule) and linked muAlg and muThrust, which
    # their mt_build.sh -i installed in MUSA_HOME: muAlg at its tag, muThrust as it is (after it)
    info = run_in(engine, ref, "cd / && python -c 'from torch_musa import _build_info as b; "
                               "print(b.use_kineto, b.linked)'")
    assert info == "1 mualg=1.0.0 muthrust=1.1.0a0"
    assert run_in(engine, ref, "ls /usr/local/musa/lib/libmualg.so /usr/local/musa/include/muthrust.h") \
        == "/usr/local/musa/include/muthrust.h\n/usr/local/musa/lib/libmualg.so"
    assert run_in(engine, ref, "cat /home/kineto/third_party/fmt/include/fmt/core.h") == "// fmt core"
    assert run_in(engine, ref, "cd / && python -c 'import torchaudio; print(torchaudio.__version__)'") == "1.0.0"
    assert run_in(engine, ref, "ls /home/build_components.sh 2>&1 || true").endswith("No such file or directory")
    labels = engine.images.get(ref).labels
    tagged = {n: git("rev-parse", f"{vendor.COMPONENT_TAG}^{{commit}}", cwd=dev[n]) for n in ("kineto", "mualg", "audio")}
    for name, commit in tagged.items():
        assert labels[f"musa_docker.{name}.commit"] == commit
    assert labels["musa_docker.muthrust.commit"] == git("rev-parse", "HEAD", cwd=dev["muthrust"])


def test_credentials_appear_in_no_output_label_or_history(dev, engine):
    out = dev["first"].stdout + dev["first"].stderr + dev["second"].stdout
    assert "t0ken" not in out
    image = engine.images.get(dev["ref"])
    assert "t0ken" not in str(image.labels)
    assert "t0ken" not in str(engine.api.history(dev["ref"]))


def test_no_archive_stays_in_the_image(dev, engine):
    assert run_in(engine, dev["ref"], "ls /tmp; find / -xdev -name '*.tar.gz' -o -xdev -name 'mudnn.tar' | head -5") == ""


def test_unchanged_dev_rebuild_is_skipped_and_downloads_nothing(dev, server):
    second = dev["second"]
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout
    assert re.search(r"cached musa_toolkits", second.stdout + second.stderr)
    assert len(server.requests) == dev["requests"]                     # nothing fetched again


@pytest.fixture(scope="module")
def release(tmp_path_factory, vendor_files, engine):
    debian12_image(engine)
    tmp = tmp_path_factory.mktemp("e2e-release")
    env = user_env(tmp)
    torch_whl, torch_musa_whl = vendor.fixture_wheels(tmp / "wheels", "3.11")
    extra = vendor.extra_wheel(tmp / "wheels", "3.11")
    tag = uuid.uuid4().hex[:8]
    with local_pypi(tmp / "index", vendor.release_index_wheels("3.11")) as index:
        done = cli("release", "-b", "debian:12", "--python-env", "venv", "-v", "3.11",
                   "-i", "musa-docker-test/release", "-t", tag,
                   "-m", str(vendor_files["musa"]), "-n", str(vendor_files["mudnn"]),
                   "--torch-whl-url", str(torch_whl), "--torch-musa-whl-url", torch_musa_whl.as_uri(),
                   "--wheel", extra.as_uri(),
                   "--gpu-arch", "S80", "--pip-index-url", index, "--sbom", str(tmp / "sbom"), *BUILDERS["buildkit"],
                   env=env)
    yield {"done": done, "ref": f"musa-docker-test/release:{tag}", "wheels": (torch_whl, torch_musa_whl, extra),
           "sbom": tmp / "sbom"}
    try:
        engine.images.remove(f"musa-docker-test/release:{tag}", force=True)
    except Exception:
        pass


def test_release_from_debian_has_the_wheels_and_musa(release, engine):
    assert release["done"].returncode == 0, release["done"].stdout[-4000:] + release["done"].stderr[-2000:]
    ref = release["ref"]
    assert run_in(engine, ref, "cd / && python -c 'import torch, torch_musa; print(torch.__version__)'") == "2.0.0"
    assert run_in(engine, ref, "echo $MUSA_HOME") == "/usr/local/musa"
    assert run_in(engine, ref, "bash -ic 'command -v python' 2>/dev/null") == "/opt/venv/bin/python"
    labels = engine.images.get(ref).labels
    assert labels["musa_docker.kind"] == "release"
    assert labels["musa_docker.gpu_arch"] == "mp_21"
    assert labels["musa_docker.artifact.torch_wheel.sha256"] == sha256(release["wheels"][0])
    assert labels["musa_docker.artifact.torch_musa_wheel.sha256"] == sha256(release["wheels"][1])


def test_the_release_from_vendor_archives_keeps_every_lean_rule(release, engine, tmp_path):
    """The archives' compilers, headers and static libraries go in the steps that install them, numpy's C
    API in the env's, and no file of the image's own layers is rewritten by a later one: `release` checked
    it before tagging, and `verify --lean` finds nothing. What running torch_musa needs stays."""
    from musa_docker.check import lean
    from musa_docker.engine.api import Engine
    done = release["done"]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "lean: none of the rules is broken" in done.stdout
    assert lean.measure(Engine(), release["ref"]) == []
    assert "lean: none of the rules is broken" in cli("verify", "-i", release["ref"], "--lean",
                                                      env=user_env(tmp_path)).stdout
    ref = release["ref"]
    assert run_in(engine, ref, "ls /usr/local/musa/lib | sort | xargs") == "libmudnn.so libmusart.so"
    assert run_in(engine, ref, "ls /usr/local/musa/bin | sort | xargs") == "mudnn_version musa_toolkits_version"
    assert "libmusart.so" in run_in(engine, ref, "ldconfig -p")


def test_release_installs_the_extra_wheel_after_torch_musa_and_labels_it(release, engine):
    assert release["done"].returncode == 0, release["done"].stderr[-2000:]
    ref = release["ref"]
    assert run_in(engine, ref, "cd / && python -c 'import torchvision; print(torchvision.__version__)'") \
        == vendor.VISION_VERSION
    labels = engine.images.get(ref).labels
    assert labels["musa_docker.artifact.torchvision_wheel.sha256"] == sha256(release["wheels"][2])
    assert run_in(engine, ref, "ls /tmp") == ""                         # no wheel file stays behind


def test_release_sbom_names_every_archive_and_wheel_with_its_sha256_and_url(release, engine, vendor_files):
    import sbomcheck
    done = release["done"]
    assert done.returncode == 0, done.stderr[-2000:]
    beside = sbomcheck.beside_the_log(done.stdout)
    docs = sbomcheck.load_valid(beside)
    for fmt, path in beside.items():        # --sbom DIR: the same documents
        copy = release["sbom"] / (release["ref"].replace("/", "_").replace(":", "_") + sbomcheck.SUFFIXES[fmt])
        assert copy.read_bytes() == path.read_bytes()
    found = sbomcheck.components(docs["cyclonedx"])
    labels = engine.images.get(release["ref"]).labels
    inputs = {k.split(".")[2] for k in labels if k.startswith("musa_docker.artifact.") and k.endswith(".sha256")}
    assert {"musa_toolkits", "mudnn", "torch_wheel", "torch_musa_wheel", "torchvision_wheel"} <= inputs
    for name in inputs:                      # no input without its hash
        assert found[f"artifact:{name}"]["hashes"] == [{"alg": "SHA-256",
                                                        "content": labels[f"musa_docker.artifact.{name}.sha256"]}]
        assert found[f"artifact:{name}"]["purl"].startswith(f"pkg:generic/{name}")
    assert found["artifact:musa_toolkits"]["hashes"][0]["content"] == sha256(vendor_files["musa"])
    assert found["artifact:mudnn"]["externalReferences"] == [{"type": "distribution",
                                                              "url": vendor_files["mudnn"].as_uri()}]
    assert found["pypi:torchvision"]["purl"].startswith(f"pkg:pypi/torchvision@{vendor.VISION_VERSION}")
    assert {d["ref"]: d["dependsOn"] for d in docs["cyclonedx"]["dependencies"]}["pypi:torch"] == ["artifact:torch_wheel"]


def test_the_sbom_labels_leave_the_buildkit_image_its_inline_cache(release, engine):
    """Built by the engine's own BuildKit, the image carries its cache inline for --cache-from; the
    SBOM labels, added after the check, must not drop it."""
    import sbomcheck
    assert release["done"].returncode == 0, release["done"].stderr[-2000:]
    config = sbomcheck.image_config(engine, release["ref"])
    assert "moby.buildkit.cache.v0" in config
    assert {"musa_docker.sbom.cyclonedx", "musa_docker.sbom.spdx"} <= set(config["config"]["Labels"])


def test_dev_sbom_names_every_source_tree_with_its_commit(dev, engine):
    import sbomcheck
    assert dev["first"].returncode == 0, dev["first"].stderr[-2000:]
    docs = sbomcheck.load_valid(sbomcheck.beside_the_log(dev["first"].stdout))
    found = sbomcheck.components(docs["cyclonedx"])
    labels = engine.images.get(dev["ref"]).labels
    trees = {k.split(".")[1]: v for k, v in labels.items() if k.endswith(".commit")}
    assert {"torch_musa", "vision", "kineto", "mualg", "muthrust", "audio"} <= set(trees)
    for name, commit in trees.items():      # no tree without its commit
        assert found[f"source:{name}"]["version"] == commit
        assert found[f"source:{name}"]["externalReferences"][0]["type"] == "vcs"
    deps = {d["ref"]: d["dependsOn"] for d in docs["cyclonedx"]["dependencies"]}
    assert "source:torch_musa" in deps["pypi:torch-musa"]
    assert docs["cyclonedx"]["metadata"]["component"]["pedigree"]["ancestors"][0]["name"] == "musa-docker-test/base"
    if dev["builder"] == "buildkit":     # the compile cache's label and the SBOM's keep the inline cache
        config = sbomcheck.image_config(engine, dev["ref"])
        assert "moby.buildkit.cache.v0" in config and "musa_docker.compile_cache" in config["config"]["Labels"]
