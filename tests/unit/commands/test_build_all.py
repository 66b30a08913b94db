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


POOL = """\
{registry}
engines:
  - {{name: a, docker_host: "unix:///nonexistent/a.sock", jobs: 2, labels: {{arch: mp_31, gpu: true}}}}
  - {{name: b, docker_host: "tcp://builder-b.example:2376", labels: {{arch: mp_31}}}}
images:
  - {{name: base, task: build-base, labels: {{arch: mp_31}}}}
  - {{name: base2, task: build-base, image: other-base, labels: {{arch: mp_31}}}}
  - name: dev
    task: build-dev
    base_img: musa-pytorch-base:latest
    musa_url: https://vendor.example/musa.tar.gz
    mudnn_url: https://vendor.example/mudnn.tar
    labels: {{gpu: {gpu}}}
"""


def _placed(stdout):
    return {line.split()[1]: line.split(" on ")[1].split()[0] for line in stdout.splitlines()
            if line.strip()[:2] in ("1.", "2.", "3.")}


def test_a_pool_places_entries_by_label_and_the_dry_run_shows_it(tmp_path, env):
    path = write(tmp_path, POOL.format(registry="registry: 127.0.0.1:5000", gpu="true"))
    done = cli("build-all", "-c", str(path), "--dry-run", "--jobs", "3", env=env)
    assert done.returncode == 0, done.stderr
    assert "engine a            unix:///nonexistent/a.sock  jobs 2  labels arch=mp_31, gpu=true" in done.stdout
    assert "registry 127.0.0.1:5000: a base built on one engine is pushed there after its check" in done.stdout
    # the two bases spread over the pool; dev needs gpu, which only a has, where its base is too
    assert _placed(done.stdout) == {"base": "a", "base2": "b", "dev": "a"}
    assert "(wants gpu=true)" in done.stdout


def test_without_a_registry_a_base_goes_where_its_dependents_can_be_built(tmp_path, env):
    path = write(tmp_path, POOL.format(registry="", gpu="true").replace("jobs: 2", "jobs: 1"))
    done = cli("build-all", "-c", str(path), "--dry-run", "--jobs", "3", env=env)
    assert done.returncode == 0, done.stderr
    assert "no registry: a base and what is built on it share one engine" in done.stdout
    assert _placed(done.stdout) == {"base": "a", "base2": "b", "dev": "a"}


@pytest.mark.parametrize("text, message", [
    (POOL.format(registry="", gpu="maybe"), ":6: 'base': no engine of the pool has arch=mp_31, gpu=maybe (a base and "
                                            "what is built on it share an engine when the file names no registry)"),
    (POOL.format(registry="registry: 127.0.0.1:5000", gpu="maybe"), ":8: 'dev': no engine of the pool has gpu=maybe"),
    (POOL.format(registry="registry: http://127.0.0.1:5000", gpu="true"), ":1: registry: --registry 'http://127.0.0.1"),
    (POOL.format(registry="", gpu="true").replace("name: b,", "name: a,"), ":4: two engines are named 'a'"),
    (POOL.format(registry="", gpu="true").replace("jobs: 2", "jobs: 0"), ":3: engine 'a': jobs 0 is not a positive"),
    (POOL.format(registry="", gpu="true").replace("jobs: 2", "cpus: 2"), ":3: unknown key 'cpus' in engines[0]"),
    (POOL.format(registry="", gpu="true").replace('"tcp://builder-b.example:2376"', '"-H x"'), ":4: engine 'b': "),
    ("registry: 127.0.0.1:5000\nimages:\n  - task: build-base\n", ":1: registry: hands bases between the engines"),
    ("images:\n  - {task: build-base, labels: {gpu: true}}\n", ":2: 'musa-pytorch-base:latest' asks for labels gpu=true"),
    (POOL.format(registry="", gpu="true").replace("labels: {gpu: true}", "docker_host: tcp://other.example:2376"),
     ":8: 'dev' names docker_host tcp://other.example:2376, which is not an engine of the pool"),
])
def test_bad_pools_are_one_error_line_with_file_and_line(tmp_path, env, text, message):
    path = write(tmp_path, text)
    done = cli("build-all", "-c", str(path), "--dry-run", env=env)
    assert done.returncode != 0 and done.stdout == "", done.stdout
    assert done.stderr.startswith(f"error: {path}") and message in done.stderr, done.stderr


def test_placement_skips_an_engine_that_is_down_and_prefers_the_base_s_engine():
    from musa_docker.commands.build_all import Entry, Matrix, PoolEngine, Unplaceable, needs, place
    a, b = PoolEngine("a", "unix:///a.sock", 1, (("arch", "mp_31"),)), PoolEngine("b", "unix:///b.sock", 2, (("arch", "mp_31"),))
    base = Entry("base", "build-base", {}, 1, "base:1", labels=(("arch", "mp_31"),))
    dev = Entry("dev", "build-dev", {"base_img": "base:1"}, 2, "dev:1", ("base",))
    with_registry = Matrix([base, dev], (a, b), "127.0.0.1:5000")
    wanted = needs(with_registry)
    assert place(dev, with_registry, wanted["dev"], {"a", "b"}, {}, {"base": "b"}) is b          # its base's engine
    assert place(dev, with_registry, wanted["dev"], {"a", "b"}, {"b": 2}, {"base": "b"}) is a    # b is full: a, through the registry
    assert place(base, with_registry, wanted["base"], {"b"}, {}, {}) is b                         # a is down
    assert place(base, with_registry, wanted["base"], {"a", "b"}, {"a": 1, "b": 2}, {}) is None   # all busy: wait
    alone = Matrix([base, dev], (a, b), None)
    assert place(dev, alone, needs(alone)["dev"], {"a", "b"}, {"b": 2}, {"base": "b"}) is None    # waits for b
    with pytest.raises(Unplaceable, match="its base was built on b, which is down"):
        place(dev, alone, needs(alone)["dev"], {"a"}, {}, {"base": "b"})
    with pytest.raises(Unplaceable, match="every engine that has arch=mp_31 is down: a, b"):
        place(base, alone, needs(alone)["base"], set(), {}, {})


def test_the_example_pool_file_is_placed_as_it_says(env):
    from conftest import REPO
    done = cli("build-all", "-c", str(REPO / "examples" / "pool.yaml"), "--dry-run", "--jobs", "3", env=env)
    assert done.returncode == 0, done.stderr
    assert _placed(done.stdout) == {"base-py310": "big", "dev-py310": "big", "release-py310": "small"}
    assert "compile-cache-remote: redis://localhost:6379" in done.stdout
