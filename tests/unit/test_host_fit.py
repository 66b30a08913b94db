"""The host against the image: this host's MUSA driver (read from a real `mthreads-gmi` program on PATH,
a stand-in printing what the vendor's tool prints) and container toolkit (the engine's mthreads runtime
program, asked `--version`), held against what the image's SDK line needs (its labels, or a pins file's
compatibility section)."""

from __future__ import annotations

import os

from musa_docker.check.verify import FAIL, PASS, SKIPPED, fit_rows, image_needs, version_key
from musa_docker.engine import host
from musa_docker.musa import pins as pins_mod

GMI_Q = """==============NVSMI LOG==============
Timestamp                       : Mon Dec  7 23:00:00 2026
Driver Version                  : {driver}
Attached GPUs                   : 1
GPU 00000000:3B:00.0
    Product Name                : MTT S4000
    Product Brand               : MTT
"""


def program(bin_dir, name: str, output: str, code: int = 0):
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}\nEOF\nexit {code}\n")
    path.chmod(0o755)
    return path


def path_env(bin_dir) -> dict:
    return {"PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin"}


def test_the_driver_version_is_what_mthreads_gmi_says(tmp_path):
    program(tmp_path / "bin", "mthreads-gmi", GMI_Q.format(driver="2.7.0"))
    assert host.driver_version(path_env(tmp_path / "bin")) == "2.7.0"


def test_no_driver_version_without_mthreads_gmi_or_when_it_fails(tmp_path):
    assert host.driver_version(path_env(tmp_path / "none")) is None
    program(tmp_path / "bin", "mthreads-gmi", "failed to initialize: no device", code=9)
    assert host.driver_version(path_env(tmp_path / "bin")) is None


def test_the_toolkit_version_is_asked_of_the_engines_mthreads_runtime(tmp_path):
    runtime = program(tmp_path / "bin", "mthreads-container-runtime",
                      "mthreads-container-runtime version 1.9.2\ncommit: 0123abc\nrunc version 1.1.12")
    info = {"Runtimes": {"runc": {"path": "runc"}, "mthreads": {"path": str(runtime)}}, "DefaultRuntime": "mthreads"}
    assert host.toolkit_version(info, path_env(tmp_path / "bin")) == ("1.9.2", str(runtime))
    assert host.toolkit_version({"Runtimes": {"runc": {"path": "runc"}}}, path_env(tmp_path / "bin")) == (None, None)


def test_versions_compare_number_by_number():
    assert version_key("2.10.0") > version_key("2.9.1")
    assert version_key("3.0.0") == version_key("3.0.0-rc1+build7")
    assert version_key("2.7") < version_key("2.7.1")


def needs(driver="3.0.0", toolkit="2.0.0"):
    return {"driver": (driver, "label musa_docker.needs.driver"),
            "container_toolkit": (toolkit, "label musa_docker.needs.container_toolkit")}


def test_a_host_too_old_for_the_image_is_a_failing_row_naming_both_versions_and_the_upgrade():
    rows = {r.name: r for r in fit_rows("5.2", needs(), {"driver": "2.7.0", "container_toolkit": "2.1.0"})}
    driver = rows["host MUSA driver"]
    assert driver.status == FAIL
    assert "this host's MUSA driver 2.7.0 is older than the 3.0.0 the image's SDK 5.2 needs" in driver.detail
    assert "(label musa_docker.needs.driver)" in driver.detail and "upgrade the MUSA driver" in driver.detail
    assert rows["host container toolkit"].status == PASS


def test_what_cannot_be_compared_is_skipped_with_why():
    rows = fit_rows("5.2", needs(), {"driver": None, "container_toolkit": None})
    assert all(r.status == SKIPPED for r in rows) and "no MUSA driver version on this host" in rows[0].detail
    rows = fit_rows("5.2", {}, {"driver": "3.1.0", "container_toolkit": None})
    assert rows[0].status == SKIPPED and "--pins FILE with a compatibility section" in rows[0].detail
    rows = fit_rows(None, {}, {"driver": "3.1.0", "container_toolkit": None})
    assert "no musa_docker.sdk_line label" in rows[0].detail


def test_the_pins_files_compatibility_goes_over_the_labels(tmp_path):
    path = tmp_path / "pins.yaml"
    path.write_text("compatibility:\n  '5.2': {driver: '3.2.0'}\n")
    labels = {"musa_docker.sdk_line": "5.2", "musa_docker.needs.driver": "3.0.0",
              "musa_docker.needs.container_toolkit": "2.0.0"}
    line, found = image_needs(labels, pins_mod.load(path))
    assert line == "5.2"
    assert found["driver"] == ("3.2.0", f"pins {path}:2")
    assert found["container_toolkit"] == ("2.0.0", "label musa_docker.needs.container_toolkit")
    assert image_needs({}, None) == (None, {})
