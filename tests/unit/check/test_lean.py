"""The lean-release rules as `release` enforces them: which findings fail a build, which are the wheels'
own, and layer waste that does not count the base image's layers."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from musa_docker.check import lean
from musa_docker.check.lean import Finding
from musa_docker.errors import BuildError

SITE = "/opt/venv/lib/python3.11/site-packages"


def test_a_breach_fails_naming_each_rule_and_its_largest_offenders():
    found = [Finding("compiler", 9, "/usr/local/musa-5.2/bin/mcc"),
             Finding("header", 10, "/usr/include/a.h"), Finding("header", 30, "/usr/include/b.h"),
             Finding("header", 20, "/usr/include/c.h"), Finding("header", 5, "/usr/include/d.h"),
             Finding("header", 7, f"{SITE}/torch/include/ATen/ATen.h")]
    with pytest.raises(BuildError) as err:
        lean.enforce(found, "sha256:" + "ab" * 32)
    said = str(err.value)
    assert "breaks the lean-release rules, so it was not tagged" in said
    assert "compiler (1, 9 B): /usr/local/musa-5.2/bin/mcc" in said
    # the largest three, largest first, and a mark that there are more
    assert "header (4, 65 B): /usr/include/b.h, /usr/include/c.h, /usr/include/a.h, …" in said
    assert "torch/include" not in said            # the wheel's own header is not held against the image


def test_the_wheels_own_headers_are_reported_not_failed_but_numpys_are_not_theirs():
    torch = Finding("header", 7, f"{SITE}/torch/include/ATen/ATen.h")
    static = Finding("static library", 3, f"{SITE}/triton/_C/libtriton.a")
    assert lean.enforce([torch, static], "abc") == [torch, static]
    numpy = Finding("header", 4, f"{SITE}/numpy/core/include/numpy/ndarrayobject.h")
    with pytest.raises(BuildError, match="numpy/core/include"):
        lean.enforce([numpy], "abc")
    # only headers and static libraries: an archive under site-packages is never a wheel's to keep
    with pytest.raises(BuildError, match="archive"):
        lean.enforce([Finding("archive", 1, f"{SITE}/torch/x.whl")], "abc")
    assert lean.enforce([], "abc") == []


def _saved(layers):
    """A `docker save` stream of `layers`: each a dict of path -> bytes, or None for a whiteout."""
    out = io.BytesIO()
    names = []
    with tarfile.open(fileobj=out, mode="w") as outer:
        for i, files in enumerate(layers):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as layer:
                for path, data in files.items():
                    if data is None:
                        head, _, base = path.rpartition("/")
                        info = tarfile.TarInfo(f"{head}/.wh.{base}".lstrip("/"))
                        layer.addfile(info, io.BytesIO(b""))
                    else:
                        info = tarfile.TarInfo(path.lstrip("/"))
                        info.size = len(data)
                        layer.addfile(info, io.BytesIO(data))
            name = f"l{i}/layer.tar"
            names.append(name)
            info = tarfile.TarInfo(name)
            info.size = len(inner.getvalue())
            outer.addfile(info, io.BytesIO(inner.getvalue()))
        manifest = json.dumps([{"Config": "c.json", "Layers": names}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        outer.addfile(info, io.BytesIO(manifest))
    return [out.getvalue()]


def test_layer_waste_leaves_the_base_images_own_layers_out():
    layers = [{"/var/lib/dpkg/status": b"x" * 100},                  # the base image
              {"/var/lib/dpkg/status": b"y" * 120, "/big": b"z" * 50},  # the system step
              {"/big": None}]                                         # a later step deletes /big
    steps = ["base", "RUN install", "RUN rm /big"]
    everything = lean.layer_waste(_saved(layers), steps)
    assert sorted(f.size for f in everything) == [50, 100]
    ours = lean.layer_waste(_saved(layers), steps, base_layers=1)
    assert [(f.size, "/big" in f.what, "`RUN rm /big`" in f.what) for f in ours] == [(50, True, True)]
