"""kinds: one table says what each image kind holds; the plan, the post-build check and `verify`
read it, so adding a component to a kind is one edit there."""

from __future__ import annotations

import dataclasses

import pytest

from musa_docker.check import image as checks, probe, verify
from musa_docker.musa import kinds
from musa_docker.options import build as opts
from musa_docker.plan.plan import plan_dev


@pytest.fixture
def dev_with_scipy(monkeypatch):
    """The dev kind with one more module: the one edit a new component takes."""
    dev = kinds.KINDS["dev"]
    monkeypatch.setitem(kinds.KINDS, "dev", dataclasses.replace(dev, imports=dev.imports + ("scipy",)))


def seen(imports: dict) -> probe.Seen:
    return probe.Seen(0, info={"version": "3.11.2", "prefix": "/opt/venv", "executable": "/opt/venv/bin/python"},
                      imports={n: {"name": n, "ok": ok, "version": "1", "error": "ModuleNotFoundError"}
                               for n, ok in imports.items()}, done=True)


def test_what_each_kind_promises():
    assert kinds.all_modules() == ("numpy", "torch", "torchvision", "torch_musa")
    assert kinds.get("base").modules == ("numpy",)
    assert kinds.get("dev").modules == ("numpy", "torch", "torchvision", "torch_musa")
    assert kinds.get("release").modules == ("numpy", "torch", "torch_musa")
    assert kinds.get("base").trees == {"pytorch": "/home/pytorch"}
    assert kinds.get("dev").paths == ("/usr/local/musa/bin", "/usr/local/musa/lib")
    assert kinds.get("base").env == {} and kinds.get("release").env == {"MUSA_HOME": "/usr/local/musa"}


def test_the_post_build_check_asks_what_the_kind_holds():
    expect = checks.Expect.of("dev", "3.11", {"musa_docker.kind": "dev"}, {"vision": "abc", "torch_musa": "def"})
    assert expect.imports == ("torchvision",)
    assert expect.installed == ("torch_musa",)
    assert expect.env == {"MUSA_HOME": "/usr/local/musa"}
    assert expect.trees == {"vision": ("/home/vision", "abc"), "torch_musa": ("/home/torch_musa", "def")}


def test_a_module_added_to_a_kind_is_checked_planned_and_verified(dev_with_scipy, tmp_path):
    assert "scipy" in checks.Expect.of("dev", "3.11", {}, {}).imports
    env = {"HOME": str(tmp_path)}
    options = opts.resolve_dev({"base_img": "base:1", "musa_url": "/v/m.tar.gz", "mudnn_url": "/v/d.tar"}, env)
    check = next(line for line in plan_dev(options, (), "3.11").render().splitlines() if "check " in line)
    assert "torchvision, scipy;" in check
    assert "scipy" in kinds.all_modules()
    rows = {c.name: c for c in verify._import_rows(seen({m: m != "scipy" for m in kinds.all_modules()}),
                                                    kinds.get("dev"))}
    assert rows["import scipy"] == verify.Check("import scipy", "fail", "ModuleNotFoundError")
    # a kind that does not promise it skips the row, saying so
    base_rows = {c.name: c for c in verify._import_rows(seen({"numpy": True}), kinds.get("base"))}
    assert base_rows["import scipy"] == verify.Check("import scipy", "skipped", "base images have no scipy")


def test_check_status_is_an_enum_that_prints_its_value():
    assert verify.Status("fail") is verify.FAIL
    assert f"{verify.PASS:<8}|" == "pass    |" and str(verify.SKIPPED) == "skipped"
