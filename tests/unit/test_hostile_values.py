"""Generated hostile strings (leading dashes, transport helpers, shell syntax, control characters,
NULs, unicode, very long) thrown at every string flag of every task, with `--dry-run` where the
task has it and at the options where it has not, and at the repo helpers against a real repo.

Each must end in success or a MusaDockerError: never a traceback, and never a file made outside
the run's own HOME and cache (the payloads would touch a file in a canary dir if a program ran
them; `/`, the canary dir and the working dir are compared before and after)."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO, make_repo
from musa_docker.commands import build as commands, push
from musa_docker.commands.build_all import build_all
from musa_docker.options import flags, shell as shellopts
from musa_docker.values import refs, validate
from musa_docker.fetch import git as repos
from musa_docker.errors import MusaDockerError
from musa_docker.plan.plan import RepoStep

CANARY = Path(tempfile.gettempdir()) / f"musa-docker-canary-{uuid.uuid4().hex}"
TOUCH = f"touch {CANARY}/pwned"

PREFIXES = ["-", "--", "--upload-pack=", "-u", "-o", "ext::", "fd::", "$(", "`", ";", "|", "&&", "\n", "\r",
            "\x00", "\x7f", "../", "~", "~root/", "/", "file://", "ssh://-oProxyCommand=", "https://", "git@-x:",
            "@{", "\u202e", "\ufeff", "ü", "\U0001f600", " "]
SUFFIXES = ["", f" {TOUCH}", f";{TOUCH};", f"$({TOUCH})", "\n", "\x00", ".lock", "/", "..", ":", "#sha256=" + "0" * 64]
FIXED = [f"--upload-pack={TOUCH};", f"ext::sh -c {TOUCH}", f"$({TOUCH})", f"`{TOUCH}`", f";{TOUCH}", "-", "--",
         "\x00", "a\nb", "x" * 5000, "-" * 300, "HEAD", "@", ".", "..", "~", ""]

hostile = st.one_of(
    st.sampled_from(FIXED),
    st.tuples(st.sampled_from(PREFIXES), st.text(max_size=20), st.sampled_from(SUFFIXES)).map("".join),
    st.text(max_size=40),
    st.text(min_size=1, max_size=50).map(lambda s: s * 100),          # very long
)

BUILD_REQUIRED = {
    "build-base": {},
    "build-dev": {"base_img": "musa-pytorch-base:latest", "musa_url": "/x/musa.tar.gz", "mudnn_url": "/x/mudnn.tar"},
    "release": {"musa_url": "/x/musa.tar.gz", "mudnn_url": "/x/mudnn.tar", "torch_whl_url": "/x/torch.whl",
                "torch_musa_whl_url": "/x/torch_musa.whl"},
}
BUILDERS = {"build-base": commands.build_base, "build-dev": commands.build_dev, "release": commands.release}


def string_flags(table):
    """The flags that take a value: None (text) or [] (repeatable) by default."""
    return [row[0] for row in table if row[1] is None or row[1] == []]


FLAG_CASES = [(task, name) for task in BUILDERS for name in string_flags(flags.BUILDS[task]) if name != "dry_run"]
ENV_VARS = ["DOCKER_BUILD_DIR", "PYTORCH_REPO_ROOT_PATH", "TORCH_VISION_REPO_ROOT_PATH", "MUSA_TOOLKITS_URL",
            "MUDNN_URL", "MCCL_URL", "TORCH_WHL_URL", "TORCH_MUSA_WHL_URL", "DOCKER_HOST", "DOCKER_CONTEXT"]

SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def listing(path: Path) -> set:
    try:
        return set(os.listdir(path))
    except OSError:
        return set()


class Sandbox:
    """A fresh HOME and cache per example, and what must not change outside them."""

    def __enter__(self):
        CANARY.mkdir(exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="musa-docker-hostile-"))
        (self.dir / "home").mkdir()
        self.env = {"PATH": os.environ["PATH"], "HOME": str(self.dir / "home"),
                    "MUSA_DOCKER_CACHE": str(self.dir / "cache"), "DOCKER_HOST": "unix:///nonexistent.sock"}
        self.before = (listing(Path("/")), listing(REPO), listing(Path.cwd()))
        return self

    def __exit__(self, *exc):
        try:
            assert listing(CANARY) == set(), f"a value ran as a command: {listing(CANARY)}"
            assert (listing(Path("/")), listing(REPO), listing(Path.cwd())) == self.before, "a file appeared outside"
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def call(self, fn, *args):
        """`fn(*args)`: only success or a MusaDockerError is allowed; the message is one clean line or more
        of text, never a repr of a Python object."""
        try:
            return fn(*args)
        except MusaDockerError as err:
            assert str(err).strip(), "an empty error message"
            return None


@pytest.fixture(scope="module", autouse=True)
def canary_dir():
    CANARY.mkdir(exist_ok=True)
    yield
    try:
        assert listing(CANARY) == set()
    finally:
        shutil.rmtree(CANARY, ignore_errors=True)


@SETTINGS
@given(case=st.sampled_from(FLAG_CASES), value=hostile, data=st.data())
def test_every_string_flag_of_every_build_task_in_a_dry_run(case, value, data):
    task, name = case
    values = {**BUILD_REQUIRED[task], "dry_run": True, name: [value] if name == "env" else value}
    with Sandbox() as box:
        env = dict(box.env)
        if data.draw(st.booleans(), label="also an environment variable"):
            var = data.draw(st.sampled_from(ENV_VARS), label="variable")
            if "\x00" not in value:
                env[var] = value
        out = io.StringIO()
        box.call(BUILDERS[task], values, env, out)
        assert listing(box.dir / "home") == set() and not (box.dir / "cache").exists(), "a dry run wrote files"


@SETTINGS
@given(task=st.sampled_from(list(BUILDERS)), key=st.sampled_from(sorted({n for t in BUILDERS for n in
                                                                           string_flags(flags.BUILDS[t])})),
       value=hostile, name=hostile, jobs=st.one_of(st.none(), hostile), host=st.one_of(st.none(), hostile))
def test_build_all_files_and_flags_in_a_dry_run(task, key, value, name, jobs, host):
    with Sandbox() as box:
        matrix = box.dir / "all.yaml"
        matrix.write_text(yaml.safe_dump({"images": [{"name": name, "task": task, key: value}]}))
        values = {"config": str(matrix), "dry_run": True, "jobs": jobs, "docker_host": host}
        box.call(build_all, values, box.env, io.StringIO())
        box.call(build_all, {**values, "config": value}, box.env, io.StringIO())


@SETTINGS
@given(key=st.sampled_from(string_flags(flags.SHELL) + string_flags(flags.PUSH) + string_flags(flags.VERIFY)),
       value=hostile)
def test_shell_push_and_verify_flags_are_checked_or_refused(key, value):
    with Sandbox() as box:
        shell_values = {"image": "busybox:latest", key: [value] if key == "env" else value}
        box.call(shellopts.resolve_shell, shell_values, box.env)
        push_values = {"image": "busybox:latest", key: value}
        box.call(push.resolve, push_values, {**box.env, push.PASSWORD_VAR: "pw"}, io.StringIO())
        if key == "image":
            box.call(refs.image_reference, value, "-i/--image")


@pytest.fixture(scope="module")
def origin(tmp_path_factory):
    path = tmp_path_factory.mktemp("origin") / "repo"
    make_repo(path, {"README": "origin\n"}, tag="v1.0.0")
    return path


@SETTINGS
@given(url=st.one_of(hostile, st.just("ORIGIN")), ref=st.one_of(hostile, st.just("v1.0.0")),
       action=st.sampled_from(["clone", "fetch", "reuse", "use"]))
def test_the_repo_helpers(origin, url, ref, action):
    url = origin.as_uri() if url == "ORIGIN" else url
    with Sandbox() as box:
        path = box.dir / "home" / "root" / "repo"
        if action in ("reuse", "use"):
            path = origin
        step = RepoStep("torch_musa", url, ref, path, action)
        box.call(lambda: repos.ensure(step, lambda line: None, "--root", locks_dir=box.dir / "cache" / "locks"))
        # and git's own guards, with the checks out of the way
        box.call(repos._remote_commit, url, ref, "0" * 40)
        if "\x00" not in ref:
            assert repos._rev(origin, ref) in (None, repos._rev(origin, "v1.0.0"), repos._rev(origin, "HEAD"))


@settings(max_examples=150, deadline=None, database=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=30)
       .filter(lambda s: not s.startswith("-")))
def test_refs_are_checked_as_git_check_ref_format_does(value):
    git = subprocess.run(["git", "check-ref-format", "--allow-onelevel", value], capture_output=True)
    try:
        validate.git_ref(value, "--ref")
        ours = True
    except MusaDockerError:
        ours = False
    assert ours == (git.returncode == 0), f"git says {git.returncode} for {value!r}"
