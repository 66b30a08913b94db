"""repos: reuse or clone real git repos (the `upstream` fixture), submodules included."""

from __future__ import annotations

import pytest

from conftest import git
from musa_docker.fetch import git as repos
from musa_docker.errors import RepoError
from musa_docker.plan.plan import RepoStep


LOCKS = None


@pytest.fixture(autouse=True)
def _locks_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setitem(globals(), "LOCKS", tmp_path_factory.mktemp("locks"))


def ensure(step, say, flag, **kw):
    """repos.ensure with its lock files outside the dirs the tests look at."""
    return repos.ensure(step, say, flag, locks_dir=LOCKS, **kw)


def step(upstream, path, ref=None, action="clone"):
    return RepoStep(name="pytorch", url=upstream["url"], ref=ref or upstream["tag"], path=path, action=action)


class Said(list):
    def __call__(self, line):
        self.append(line)

    @property
    def text(self):
        return "\n".join(self)


def snapshot(root):
    """The working tree (git's own bookkeeping under .git/ aside): path -> bytes, None for a dir."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))
            if ".git" not in p.relative_to(root).parts[:1]}


def test_clone_lands_the_tag_and_the_submodules(upstream, tmp_path):
    said = Said()
    path = tmp_path / "root" / "pytorch"
    state = ensure(step(upstream, path), said, "--pytorch-root")
    assert (path / "third_party" / "fmt" / "include" / "fmt" / "core.h").read_text() == "// fmt core\n"
    assert git("rev-parse", "HEAD", cwd=path) == upstream["tagged"]
    assert not (path / "CHANGELOG").exists()          # the commit after the tag is not there
    assert state.commit == upstream["tagged"]
    assert (state.reused, state.at_ref, state.name, state.path) == (False, True, "pytorch", path)
    assert said[0].startswith(f"clone pytorch {upstream['url']} @ v2.0.0 -> {path}")


def test_clone_is_shallow(upstream, tmp_path):
    path = tmp_path / "pytorch"
    ensure(step(upstream, path), Said(), "--pytorch-root")
    assert git("rev-parse", "--is-shallow-repository", cwd=path) == "true"
    assert git("rev-list", "--count", "HEAD", cwd=path) == "1"


@pytest.fixture(scope="module")
def cloned(upstream, tmp_path_factory):
    """One clone at the tag, with its submodule, shared by the tests that only reuse it."""
    path = tmp_path_factory.mktemp("cloned") / "pytorch"
    git("clone", "-q", "--recurse-submodules", "--branch", upstream["tag"], upstream["url"], str(path))
    return path


def test_reuse_reports_head_at_the_tag(upstream, cloned):
    path = cloned
    before = snapshot(path)
    said = Said()
    state = ensure(step(upstream, path, action="reuse"), said, "--pytorch-root")
    assert state.reused and state.at_ref
    assert state.commit == upstream["tagged"]
    assert said[0] == f"reuse pytorch ({upstream['tagged'][:10]}, v2.0.0) at {path}"
    assert "warning" not in said.text
    assert "fetch" not in said.text
    assert snapshot(path) == before
    assert git("rev-parse", "HEAD", cwd=path) == upstream["tagged"]


def test_reuse_warns_when_not_at_the_tag(upstream, tmp_path):
    path = tmp_path / "pytorch"
    git("clone", "-q", "--recurse-submodules", upstream["url"], str(path))
    said = Said()
    state = ensure(step(upstream, path, action="reuse"), said, "--pytorch-root")
    assert state.commit == upstream["head"]
    assert not state.at_ref
    assert upstream["head"][:10] in said[0] and "not at v2.0.0" in said[0]
    assert any(line.startswith("warning:") and "not at v2.0.0" in line for line in said)
    # A reuse never moves the user's checkout.
    assert git("rev-parse", "HEAD", cwd=path) == upstream["head"]


def test_reuse_with_a_ref_the_repo_lacks_says_so(upstream, cloned):
    path = cloned
    said = Said()
    state = ensure(step(upstream, path, ref="v9.9.9", action="reuse"), said, "--pytorch-root")
    assert not state.at_ref
    assert "no such ref" in said.text


def test_reuse_fetches_submodules_never_initialised(upstream, tmp_path):
    path = tmp_path / "pytorch"
    git("clone", "-q", upstream["url"], str(path))
    git("checkout", "-q", "v2.0.0", cwd=path)
    core = path / "third_party" / "fmt" / "include" / "fmt" / "core.h"
    assert not core.exists()
    said = Said()
    state = ensure(step(upstream, path, action="reuse"), said, "--pytorch-root")
    assert core.read_text() == "// fmt core\n"
    assert state.at_ref
    assert "fetch 1 missing submodule(s) of pytorch" in said.text


def test_missing_tag_names_the_tag_and_leaves_nothing(upstream, tmp_path):
    root = tmp_path / "made" / "by" / "tool"
    path = root / "pytorch"
    with pytest.raises(RepoError) as info:
        ensure(step(upstream, path, ref="v9.9.9"), Said(), "--pytorch-root")
    assert "'v9.9.9'" in str(info.value)
    assert not path.exists()
    assert not (tmp_path / "made").exists()         # every parent the tool made is gone
    assert list(tmp_path.iterdir()) == []


def test_missing_tag_keeps_a_parent_that_existed(upstream, tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "keep.txt").write_text("user data\n")
    with pytest.raises(RepoError):
        ensure(step(upstream, root / "pytorch", ref="v9.9.9"), Said(), "--pytorch-root")
    assert root.is_dir()
    assert sorted(p.name for p in root.iterdir()) == ["keep.txt"]
    assert (root / "keep.txt").read_text() == "user data\n"


def test_missing_tag_keeps_an_empty_parent_that_existed(upstream, tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(RepoError):
        ensure(step(upstream, root / "pytorch", ref="v9.9.9"), Said(), "--pytorch-root")
    assert root.is_dir() and list(root.iterdir()) == []


def test_unreachable_repo_is_a_repo_error(tmp_path):
    bad = RepoStep("pytorch", (tmp_path / "nothing-here").as_uri(), "v2.0.0", tmp_path / "r" / "pytorch", "clone")
    with pytest.raises(RepoError) as info:
        ensure(bad, Said(), "--pytorch-root")
    assert "pytorch" in str(info.value)
    assert not (tmp_path / "r").exists()


def test_root_that_is_a_file_is_refused(upstream, tmp_path):
    root = tmp_path / "root"
    root.write_text("not a dir\n")
    with pytest.raises(RepoError) as info:
        ensure(step(upstream, root / "pytorch"), Said(), "--pytorch-root")
    assert "--pytorch-root" in str(info.value) and "is a file" in str(info.value)
    assert root.read_text() == "not a dir\n"


def test_repo_path_that_is_a_file_is_refused(upstream, tmp_path):
    (tmp_path / "pytorch").write_text("x\n")
    with pytest.raises(RepoError) as info:
        repos.check_root(step(upstream, tmp_path / "pytorch"), "--pytorch-root")
    assert "is a file" in str(info.value)
    assert (tmp_path / "pytorch").read_text() == "x\n"


def test_existing_dir_that_is_not_a_repo_is_refused_and_untouched(upstream, tmp_path):
    path = tmp_path / "pytorch"
    (path / "sub").mkdir(parents=True)
    (path / "notes.txt").write_text("mine\n")
    (path / "sub" / "data.bin").write_bytes(b"\x00\x01")
    before = snapshot(path)
    with pytest.raises(RepoError) as info:
        ensure(step(upstream, path, action="reuse"), Said(), "--pytorch-root")
    assert "not a git repo" in str(info.value) and str(path) in str(info.value)
    assert snapshot(path) == before


def test_clone_hides_credentials_in_what_it_says(upstream, tmp_path):
    said = Said()
    bad = RepoStep("pytorch", "https://alice:tok-s3cret@127.0.0.1:9/pytorch.git", "v2.0.0",
                   tmp_path / "pytorch", "clone")
    with pytest.raises(RepoError) as info:
        ensure(bad, said, "--pytorch-root")
    assert "tok-s3cret" not in said.text
    assert "tok-s3cret" not in str(info.value)
    assert "127.0.0.1" in said.text


def test_the_tools_own_clone_is_left_alone_while_its_ref_has_not_moved(tmp_path, upstream):
    """Fetching rewrites .git files; an unchanged clone must keep its fingerprint, or every
    rebuild would look changed to the inputs digest."""
    from musa_docker.pipeline import context
    from musa_docker.plan.plan import RepoStep
    step = RepoStep("torch_musa", upstream["url"], "main", tmp_path / "clone", "fetch")
    said = []
    first = ensure(step, said.append, "--torch-musa-repo")
    before = context.fingerprint(step.path)
    again = ensure(step, said.append, "--torch-musa-repo")
    assert again.commit == first.commit == upstream["head"]
    assert said[-1].startswith("reuse torch_musa clone") and "is still" in said[-1]
    assert context.fingerprint(step.path) == before
    # the branch moves upstream: the clone follows
    (upstream["path"] / "NEWS").write_text("moved\n")
    git("add", "NEWS", cwd=upstream["path"])
    git("commit", "-q", "-m", "move", cwd=upstream["path"])
    try:
        moved = ensure(step, said.append, "--torch-musa-repo")
        assert said[-1].startswith("fetch torch_musa")
        assert moved.commit == git("rev-parse", "HEAD", cwd=upstream["path"])
        assert (step.path / "NEWS").read_text() == "moved\n"
    finally:
        git("reset", "-q", "--hard", upstream["head"], cwd=upstream["path"])


def test_reusing_a_repo_changes_nothing_in_it(tmp_path, upstream):
    from musa_docker.pipeline import context
    from musa_docker.plan.plan import RepoStep
    step = RepoStep("pytorch", upstream["url"], "v2.0.0", tmp_path / "pytorch", "clone")
    ensure(step, lambda _: None, "--pytorch-root")
    before = context.fingerprint(step.path)
    reuse = RepoStep("pytorch", upstream["url"], "v2.0.0", tmp_path / "pytorch", "reuse")
    ensure(reuse, lambda _: None, "--pytorch-root")
    assert context.fingerprint(step.path) == before
