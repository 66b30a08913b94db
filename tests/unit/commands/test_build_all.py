"""build-all: a matrix file, checked with file and line; built in dependency order (on the engine,
in test_matrix_engine.py)."""

from __future__ import annotations

import pytest

from conftest import cli


def write(tmp_path, text):
    path = tmp_path / "matrix.yaml"
    path.write_text(text)
    return path


def test_dry_run_prints_the_ordered_plan_with_secrets_redacted(tmp_path, env):
    path = write(tmp_path, """\
defaults:
  tag: "2026.11"
images:
  - name: dev
    task: build-dev
    base_img: musa-pytorch-base:2026.11
    musa-url: https://user:s3cret@vendor.example/musa.tar.gz
    mudnn_url: https://vendor.example/mudnn.tar
  - name: base
    task: build-base
    python_version: "3.10"
  - name: rel
    task: release
    musa_url: https://vendor.example/m.tar.gz
    mudnn_url: https://vendor.example/n.tar
    torch_whl_url: https://v.example/torch-2.0.0-cp38-cp38-linux_x86_64.whl
    torch_musa_whl_url: https://v.example/torch_musa-1.0.0-cp38-cp38-linux_x86_64.whl
""")
    done = cli("build-all", "-c", str(path), "--dry-run", env={**env, "DOCKER_HOST": "unix:///nonexistent.sock"})
    assert done.returncode == 0, done.stderr
    steps = [line.split()[1] for line in done.stdout.splitlines() if line[:5].strip().rstrip(".").isdigit()]
    assert steps == ["base", "dev", "rel"]                 # dev after the base it names
    assert "(after base)" in done.stdout
    assert "python-version: 3.10" in done.stdout
    assert "s3cret" not in done.stdout and "https://***@vendor.example/musa.tar.gz" in done.stdout


@pytest.mark.parametrize("text,message", [
    ("images: [\n", ":2 is not YAML"),
    ("images:\n  - task: build-base\n    pyton_version: '3.9'\n", ":3: unknown key 'pyton_version' in images[0] (build-base)"),
    ("images:\n  - task: build-base\n    torch_whl_url: x.whl\n", ":3: unknown key 'torch_whl_url' in images[0] (build-base)"),
    ("images:\n  - task: build-everything\n", ":2: images[0] has task 'build-everything'"),
    ("imagez:\n  - task: build-base\n", ":1: unknown key 'imagez'"),
    ("images:\n  - {name: a, task: build-dev, image: x, base_img: 'y:latest', musa_url: m, mudnn_url: n}\n"
     "  - {name: b, task: build-dev, image: y, base_img: 'x:latest', musa_url: m, mudnn_url: n}\n", "cycle: a -> b -> a"),
    ("images:\n  - {name: a, task: build-base}\n  - {name: a, task: release}\n", "two images are named 'a'"),
    ("", "is empty"),
    ("images:\n  - task: build-base\n    tag: 2026\n", ":3: images[0] (build-base): tag 2026 came from this file as a number"),
    ("defaults:\n  no_cache: maybe\nimages:\n  - task: build-base\n", ":2: defaults: --no-cache 'maybe'"),
    ("images:\n  - {name: ok, task: build-base, tag: t1}\n  - {name: py399, task: build-base, tag: t2,"
     " python_version: '3.99'}\n", ":3: py399 (build-base): -v/--python-version 3.99 is not a Python"),
    ("images:\n  - name: nl\n    task: build-base\n    tag: \"a\\n\"\n", ":2: nl (build-base): -t/--tag 'a\\n' is not a valid tag"),
])
def test_bad_matrix_files_are_one_error_line_with_file_and_line(tmp_path, env, text, message):
    path = write(tmp_path, text)
    done = cli("build-all", "-c", str(path), "--dry-run", env=env)
    assert done.returncode == 2, done.stdout
    assert done.stderr.startswith(f"error: {path}")
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_bad_jobs_and_missing_file(tmp_path, env):
    path = write(tmp_path, "images:\n  - task: build-base\n")
    assert cli("build-all", "-c", str(path), "--jobs", "0", env=env).stderr.startswith("error: --jobs '0'")
    assert cli("build-all", env=env).stderr.startswith("error: -c/--config FILE is required")
    missing = cli("build-all", "-c", str(tmp_path / "nope.yaml"), env=env)
    assert missing.returncode == 2 and "cannot be read" in missing.stderr


def test_an_entry_may_name_its_engine(tmp_path, env):
    path = write(tmp_path, "images:\n  - name: remote\n    task: build-base\n    docker_host: tcp://builder.example:2376\n"
                           "  - name: local\n    task: build-base\n    image: other\n")
    done = cli("build-all", "-c", str(path), "--dry-run", env=env)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if line.strip()[:2] in ("1.", "2.")}
    assert "on tcp://builder.example:2376" in lines["remote"]
    assert " on " not in lines["local"]


CROSS = """\
images:
  - name: base
    task: build-base
{base}
  - name: dev
    task: build-dev
    base_img: {ref}
    musa_url: https://vendor.example/musa.tar.gz
    mudnn_url: https://vendor.example/mudnn.tar
    docker_host: ssh://builder@gpu-host
"""


@pytest.mark.parametrize("base, ref, words", [
    ("    image: musa-pytorch-base", "musa-pytorch-base:latest",
     ["'dev' builds on ssh://builder@gpu-host from musa-pytorch-base:latest, which 'base' builds on the local engine",
      "only through a registry", "with push: true"]),
    ("    image: 127.0.0.1:5000/musa-pytorch-base", "127.0.0.1:5000/musa-pytorch-base:latest",
     ["add push: true to 'base'"]),
])
def test_a_base_on_another_engine_must_come_through_a_registry(tmp_path, env, base, ref, words):
    path = write(tmp_path, CROSS.format(base=base, ref=ref))
    done = cli("build-all", "-c", str(path), "--dry-run", env=env)
    assert done.returncode != 0 and done.stdout == "", done.stdout
    assert done.stderr.startswith(f"error: {path}:5: ") and all(w in done.stderr for w in words), done.stderr


def test_a_base_pushed_to_a_registry_reaches_another_engine(tmp_path, env):
    path = write(tmp_path, CROSS.format(base="    image: 127.0.0.1:5000/musa-pytorch-base\n    push: true",
                                       ref="127.0.0.1:5000/musa-pytorch-base:latest"))
    done = cli("build-all", "-c", str(path), "--dry-run", env=env)
    assert done.returncode == 0, done.stderr
    assert "(after base)" in done.stdout and "push: true" in done.stdout
    # on one engine (the entries' own, or build-all's --docker-host for both) no registry is needed
    path = write(tmp_path, CROSS.format(base="    docker_host: ssh://builder@gpu-host", ref="musa-pytorch-base:latest"))
    assert cli("build-all", "-c", str(path), "--dry-run", env=env).returncode == 0


def test_a_dry_run_refuses_an_entry_whose_local_archive_is_missing(tmp_path, env):
    path = write(tmp_path, f"""\
images:
  - name: base
    task: build-base
  - name: dev
    task: build-dev
    base_img: musa-pytorch-base:latest
    musa_url: {tmp_path / 'gone.tar.gz'}
    mudnn_url: https://vendor.example/mudnn.tar
""")
    done = cli("build-all", "-c", str(path), "--dry-run", env=env)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.startswith(f"error: {path}:4: dev (build-dev): ") and \
        f"no such file: {tmp_path / 'gone.tar.gz'}" in done.stderr, done.stderr
