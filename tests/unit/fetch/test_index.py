"""The MUSA index asked from the host, as a build does before its first step: a real PEP 503 index
served on 127.0.0.1 answers whether it has the pinned version, and a wheel of it for the image's
Python."""

from __future__ import annotations

import requests

from images import serve_directory, write_simple_index
from musa_docker.fetch.index import missing
from vendor import _write_wheel


def test_the_index_has_the_version_for_the_python_or_says_what_it_has(tmp_path):
    (tmp_path / "w").mkdir()
    wheels = [_write_wheel(tmp_path / "w", "torch", "2.7.1+musa5.2.0", "cp310-cp310-linux_x86_64", {"torch/x.py": ""}),
              _write_wheel(tmp_path / "w", "torch", "2.7.1+musa5.2.0", "cp311-cp311-linux_x86_64", {"torch/x.py": ""}),
              _write_wheel(tmp_path / "w", "torch_musa", "2.7.1+musa5.2.0", "cp311-abi3-linux_x86_64", {"t/x.py": ""}),
              _write_wheel(tmp_path / "w", "triton_musa", "3.1.0", "py3-none-any", {"t/y.py": ""})]
    write_simple_index(tmp_path / "index", wheels)
    with serve_directory(tmp_path / "index") as root, requests.Session() as session:
        index = root + "simple/"
        assert missing(index, "torch==2.7.1+musa5.2.0", session, "3.10") is None
        assert missing(index, "torch==2.7.1+musa5.2.0", session) is None
        assert missing(index, "torch==9.9.9+musa5.2.0", session, "3.10") == \
            "the MUSA index has no torch 9.9.9+musa5.2.0 (it lists 2.7.1+musa5.2.0)"
        assert missing(index, "torch==2.7.1+musa5.2.0", session, "3.9") == \
            "the MUSA index has torch 2.7.1+musa5.2.0 only for cp310, cp311, not for Python 3.9 (cp39)"
        assert missing(index, "torch_musa==2.7.1+musa5.2.0", session, "3.12") is None      # abi3 from 3.11 on
        assert "only for cp311" in missing(index, "torch_musa==2.7.1+musa5.2.0", session, "3.10")
        assert missing(index, "triton-musa==3.1.0", session, "3.8") is None
        assert missing(index, "vllm==1.0", session).startswith("the MUSA index has no project vllm (")
    with requests.Session() as session:
        assert missing(index, "torch==2.7.1+musa5.2.0", session).startswith("the MUSA index does not answer (")
