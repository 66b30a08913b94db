"""--gpu-arch: every spelling normalised to mp_XY, the build args it sets, and `detect` through a
real `mthreads-gmi` executable on PATH (a stand-in that prints what the vendor's tool prints)."""

from __future__ import annotations

import os

import pytest

from musa_docker.musa import arch
from musa_docker.errors import ConfigError


@pytest.mark.parametrize("spelling, target", [
    ("qy1", "mp_21"), ("QY1", "mp_21"), ("S80", "mp_21"), ("s80", "mp_21"), ("S3000", "mp_21"), ("mp_21", "mp_21"),
    ("qy2", "mp_22"), ("S4000", "mp_22"), ("s4000", "mp_22"), ("MP_22", "mp_22"), ("MTT S4000", "mp_22"),
    ("ph1", "mp_31"), ("Ph1", "mp_31"), ("S5000", "mp_31"), ("mp_31", "mp_31"),
])
def test_every_spelling_normalises(spelling, target):
    assert arch.normalise(spelling) == target
    assert arch.parse(spelling).targets == (target,)


def test_several_are_deduplicated_and_sorted():
    sel = arch.parse("S4000, qy1,mp_22,S80")
    assert sel.targets == ("mp_21", "mp_22")
    assert sel.label == "mp_21,mp_22"
    assert sel.arch_list == "21;22"
    assert dict(sel.buildargs(mccl=False)) == {"TORCH_MUSA_ARCH_LIST": "21;22", "MTGPU_TARGET": "", "USE_MCCL": "0"}


def test_one_arch_sets_mtgpu_target():
    sel = arch.parse("S5000")
    assert dict(sel.buildargs(mccl=True)) == {"TORCH_MUSA_ARCH_LIST": "31", "MTGPU_TARGET": "mp_31", "USE_MCCL": "1"}


def test_no_arch_means_every_arch():
    sel = arch.parse(None)
    assert sel.targets == ("mp_21", "mp_22", "mp_31") and not sel.given
    assert sel.arch_list == "21;22;31"
    assert sel.without_mccl == ()              # the default build is not an explicit qy1 build


def test_qy1_has_no_mccl():
    assert arch.parse("S80,S4000").without_mccl == ("mp_21",)
    assert arch.parse("S4000").without_mccl == ()


def test_unknown_arch_lists_the_known_ones():
    with pytest.raises(ConfigError) as err:
        arch.parse("S4000,rtx4090")
    msg = str(err.value)
    assert "'rtx4090'" in msg
    for name in ("mp_21", "qy1", "S80", "S3000", "mp_22", "qy2", "S4000", "mp_31", "ph1", "S5000"):
        assert name in msg


def test_detect_stands_alone():
    assert arch.parse("detect") is None
    with pytest.raises(ConfigError, match="stands alone"):
        arch.parse("detect,S4000")


def _gmi(tmp_path, output: str, code: int = 0) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "mthreads-gmi"
    tool.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\nexit {code}\n")
    tool.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin"}


GMI_Q = """==============NVSMI LOG==============
Driver Version                  : 2.7.0
Attached GPUs                   : 2
GPU 00000000:3B:00.0
    Product Name                : MTT S4000
    Product Brand               : MTT
GPU 00000000:86:00.0
    Product Name                : MTT S4000
"""


def test_detect_reads_the_product_names(tmp_path):
    sel = arch.detect(_gmi(tmp_path, GMI_Q))
    assert sel.targets == ("mp_22",) and sel.given
    assert sel.detected == ("MTT S4000",)


def test_detect_without_mthreads_gmi(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError) as err:
        arch.detect({"PATH": str(tmp_path / "empty")})
    assert "mthreads-gmi" in str(err.value) and "not on PATH" in str(err.value)


def test_detect_of_an_unknown_gpu(tmp_path):
    with pytest.raises(ConfigError, match="'MTT X9'"):
        arch.detect(_gmi(tmp_path, "    Product Name : MTT X9"))


def test_detect_that_names_no_gpu(tmp_path):
    with pytest.raises(ConfigError, match="named no GPU"):
        arch.detect(_gmi(tmp_path, "no devices found", code=1))
