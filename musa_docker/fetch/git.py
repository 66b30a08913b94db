"""Source repos on the host, through the git CLI: reuse what is there, clone what is not.

A clone is shallow at the tag, and its submodules (recursively) really arrive: the old
scripts ran the submodule update in the wrong directory and shipped empty third_party/ dirs.

Every value from a user reaches git after `--end-of-options` (git 2.24+), so it is never read as
an option, and is checked (`validate`) before that. A repo is read under a shared lock and
changed under an exclusive one (`locks`); a clone is made under a private name beside its place
and renamed into it, so a run never sees another run's half-made clone.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence

from . import locks
from ..values import validate
from ..errors import ConfigError, RepoError
from ..values.locations import redact, strip_credentials
from ..plan.plan import Checkout, RepoStep
from ..util import Say


@dataclass(frozen=True)
class RepoState:
    name: str
    path: Path
    commit: str
    ref: str
    reused: bool
    at_ref: bool              # HEAD is the commit the requested ref names


# No prompts; and no opportunistic index refresh by read-only commands (status), which would
# rewrite .git/index and make an unchanged tree look changed to the inputs digest.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}
# Everything after it is an argument, never an option, whatever it starts with.
END = "--end-of-options"


def _not_started(cwd: Optional[Path]) -> RepoError:
    if cwd is not None and not Path(cwd).is_dir():
        return RepoError(f"{cwd} went away while git was to run in it (another program removed it): run again")
    return RepoError("git is not installed: install it (e.g. apt-get install git) and run again")


def _argv(args: Sequence[str]) -> list:
    if any("\x00" in a for a in args):
        # No program can be given a NUL; this is a value no check let through before.
        raise RepoError(f"a value for `git {args[0]}` holds a NUL character, which no program can be given")
    return ["git", *args]


def _git(args: Sequence[str], cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            # git echoes what it was given (and may cut a message mid-character): never fail decoding it
            _argv(args), cwd=cwd, capture_output=True, text=True, errors="replace", env={**os.environ, **GIT_ENV},
        )
    except FileNotFoundError:
        raise _not_started(cwd) from None


def _git_streamed(args: Sequence[str], cwd: Optional[Path] = None, echo=None) -> tuple:
    """Run git with its output shown as it comes; return (code, last lines of output). Progress
    meters are asked for only on a terminal, where their carriage returns redraw one line."""
    echo = echo or sys.stderr
    tty = echo.isatty()
    cut = args.index(END) if END in args else len(args)     # only the tool's own options are dropped
    args = [a for a in args[:cut] if a != "--progress" or tty] + list(args[cut:])
    tail = collections.deque(maxlen=20)
    env = {**os.environ, **GIT_ENV}
    try:
        proc = subprocess.Popen(_argv(args), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except FileNotFoundError:
        raise _not_started(cwd) from None
    pending = ""
    for chunk in iter(lambda: proc.stdout.read1(65536), b""):
        text = chunk.decode("utf-8", "replace")
        echo.write(redact(text))
        echo.flush()
        *done, pending = re.split(r"[\r\n]", pending + text)
        tail.extend(line for line in done if line.strip())
    if pending.strip():
        tail.append(pending)
    return proc.wait(), [redact(t) for t in tail]


def _rev(path: Path, rev: str) -> Optional[str]:
    if rev.startswith("-"):
        # rev-parse takes --end-of-options only from git 2.30; no rev starts with '-' anyway.
        return None
    out = _git(["rev-parse", "--verify", "-q", f"{rev}^{{commit}}"], cwd=path)
    return out.stdout.strip() if out.returncode == 0 else None


def head(path: Path) -> str:
    commit = _rev(path, "HEAD")
    if not commit:
        raise RepoError(f"{path} is a git repo without a commit checked out; check it out and run again")
    return commit


def look(path: Path, ref: str) -> Optional[Checkout]:
    """The checkout at `path`, or None when it is no git repo (the build says so)."""
    if not (path / ".git").exists():
        return None
    remote = _git(["config", "--get", "remote.origin.url"], cwd=path)
    commit = _rev(path, "HEAD")
    wanted = _rev(path, ref)
    status = _git(["status", "--porcelain", "--untracked-files=no", "--ignore-submodules=dirty"], cwd=path)
    return Checkout(remote=strip_credentials(remote.stdout.strip()) if remote.returncode == 0 else None,
                    head=commit, at_ref=bool(commit) and wanted == commit,
                    dirty=status.returncode == 0 and bool(status.stdout.strip()))


def check_root(step: RepoStep, flag: str) -> None:
    """Refuse, before anything is done, a repo root that can never work."""
    root = step.path.parent
    if root.exists() and not root.is_dir():
        raise RepoError(f"{flag} {root} is a file, not a directory: point it at the directory that holds {step.name}/")
    if step.path.exists() and not step.path.is_dir():
        raise RepoError(f"{step.path} is a file, not a {step.name} repo: move it away or choose another {flag}")


def ensure(step: RepoStep, say: Say, flag: str, *, locks_dir: Path, held: Optional[ExitStack] = None,
           echo=None, bundles: Optional[Path] = None) -> RepoState:
    """Reuse `step.path` when it holds a repo, else clone it there; for a repo the user named,
    use it as it is; for the tool's own clone, fetch the ref into it. Under --lock, a repo to
    clone or fetch whose locked commit (and every submodule's) has a git bundle in `bundles`
    (`bundle import` put it there) is made from those bundles, with no network. The repo is left
    under a shared lock (in `locks_dir`) that `held` releases, so that no other run changes it
    while this one packs it; without `held` the lock is released on return. git's own output goes
    to `echo` (stderr when None). Raises RepoError, ConfigError."""
    _check_values(step)
    bundled = _bundled(step, bundles)
    if step.commit and step.action in ("clone", "fetch") and not (step.path / ".git").exists() and not bundled:
        _check_remote(step)
    if step.action == "use":
        if not (step.path / ".git").exists():
            raise RepoError(f"{flag} {step.path} is not a git repo: give the path of a {step.name} checkout, or its URL")
    elif step.action != "fetch":
        check_root(step, flag)
    lock = locks.EntryLock(locks.lock_for(locks_dir, f"repo-{step.name}", step.path),
                           f"the {step.name} repo at {step.path}", say)
    if step.action == "fetch" and bundled:
        def read():
            current = _rev(step.path, "HEAD") if (step.path / ".git").exists() else None
            if current == step.commit and _clean(step.path):
                say(f"reuse {step.name} clone at {step.path}: at the locked {step.commit[:10]}")
                return RepoState(step.name, step.path, current, step.ref, reused=True, at_ref=True)
            return None

        def write():
            return read() or _from_bundles(step, bundled, say)
    elif step.action == "fetch":
        def read():
            return _fetch_current(step, say)

        def write():
            return _fetch_current(step, say) or _fetch(step, say, echo)
    else:
        def read():
            return _reuse(step, say, fix=False) if step.path.exists() else None

        def write():
            # A repo the user named is never cloned, even when it went away meanwhile.
            if step.action == "use" or step.path.exists():
                return _reuse(step, say, fix=True, echo=echo)
            return _from_bundles(step, bundled, say) if bundled else _clone(step, say, echo)
    state = locks.shared_entry(lock, read, write, still=lambda s: _rev(step.path, "HEAD") == s.commit)
    if held is not None:
        held.callback(lock.release)
    else:
        lock.release()
    if step.commit:
        _check_locked(step, state)
    return state


def _moved(step: RepoStep, now: str, where: str) -> RepoError:
    return RepoError(f"{step.name} {step.ref}: the lock {step.lock} has commit {step.commit[:12]}, but {where} "
                     f"has {now[:12]} (the ref moved): bring the locked commit from a bundle, or lock again with "
                     f"`musa-docker lock --update {step.name}`")


def _check_remote(step: RepoStep) -> None:
    """Before cloning under --lock: the ref must still name the locked commit upstream."""
    now = _remote_commit(step.url, step.ref, "")
    if now is not None and now != step.commit:
        raise _moved(step, now, redact(step.url))


def _check_locked(step: RepoStep, state: RepoState) -> None:
    """Under --lock: the repo, and every submodule, at the commit the lock records. Raises RepoError."""
    if state.commit != step.commit:
        raise _moved(step, state.commit, str(state.path))
    have = {s["path"]: s["commit"] for s in submodules(state.path)}
    for path, commit in step.locked:
        if have.get(path) != commit:
            now = have.get(path)
            raise RepoError(f"{step.name} submodule {path}: the lock {step.lock} has commit {commit[:12]}, but "
                            f"{state.path / path} {'has ' + now[:12] if now else 'is missing'}: bring the locked "
                            f"commit from a bundle, or lock again with `musa-docker lock --update {step.name}`")


def bundle_path(bundles: Path, commit: str) -> Path:
    return Path(bundles) / f"{commit}.bundle"


def _bundled(step: RepoStep, bundles: Optional[Path]) -> Optional[Path]:
    """`bundles` when it has the locked commit of the repo and of each submodule."""
    if not bundles or not step.commit or step.action not in ("clone", "fetch"):
        return None
    commits = [step.commit] + [c for _, c in step.locked]
    return bundles if all(bundle_path(bundles, c).is_file() for c in commits) else None


def has_bundles(step: RepoStep, bundles: Path) -> bool:
    return _bundled(step, bundles) is not None


def bundle_head(path: Path, commit: str, target: Path) -> None:
    """`git bundle` of the repo at `path`'s checked-out commit (which must be `commit`): a shallow
    clone gives a bundle of that commit alone, which `_from_bundles` takes into a shallow repo."""
    if head(path) != commit:
        raise RepoError(f"{path} is at {head(path)[:12]}, not at {commit[:12]}: it cannot be bundled as locked")
    _checked(_git(["bundle", "create", "-q", END, str(target), "HEAD"], cwd=path), f"bundling {path}")


def keep_bundle(bundles: Path, commit: str, source: Path) -> int:
    """Keep a git bundle of `commit` where a locked build finds it; 1 when written, 0 when there."""
    target = bundle_path(bundles, commit)
    if target.is_file():
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    return 1


def _unbundle(path: Path, commit: str, bundles: Path) -> None:
    """A repo at `path` holding `commit` from its bundle, checked out: shallow at that commit."""
    path.mkdir(parents=True, exist_ok=True)
    _checked(_git(["init", "-q", END, str(path)]), f"creating {path}")
    (path / ".git" / "shallow").write_text(commit + "\n")
    _checked(_git(["fetch", "-q", "--no-tags", END, str(bundle_path(bundles, commit)), "HEAD"], cwd=path),
             f"taking {commit[:12]} from its bundle")
    _checked(_git(["checkout", "-q", "--force", "--detach", commit], cwd=path), f"checking out {commit[:12]}")


def _from_bundles(step: RepoStep, bundles: Path, say: Say) -> RepoState:
    """The repo and its submodules at their locked commits from the git bundles `bundle import`
    kept; made under a private name and renamed into place. No network."""
    path = step.path
    say(f"clone {step.name} @ {step.ref} = {step.commit[:12]} from its git bundle -> {path} "
        f"({len(step.locked)} submodule(s) from theirs)")
    made_dirs = [p for p in path.parents if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    work = _beside(path)
    try:
        _unbundle(work, step.commit, bundles)
        _checked(_git(["config", END, "remote.origin.url", strip_credentials(step.url) if "://" in step.url
                       else step.url], cwd=work), "configuring the clone")
        for sub, commit in sorted(step.locked):
            target = work / sub
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()
            _unbundle(target, commit, bundles)
        for repo in [work] + [work / sub for sub, _ in sorted(step.locked)]:
            if (repo / ".gitmodules").is_file():
                _checked(_git(["submodule", "init", "-q"], cwd=repo), f"registering the submodules of {repo}")
        if path.exists():
            shutil.rmtree(path)       # the tool's own clone (fetch), replaced by the locked one
        os.rename(work, path)
    except BaseException:
        _remove_own(work, made_dirs)
        raise
    return RepoState(step.name, path, step.commit, step.ref, reused=False, at_ref=True)


def submodules(path: Path) -> list:
    """Every submodule of the repo at `path`, recursively, checked out: path (from the top), url
    (as .gitmodules gives it, without credentials), commit; sorted by path. Raises RepoError."""
    done = _git(["submodule", "status", "--recursive"], cwd=path)
    _checked(done, f"listing the submodules of {path}")
    modules = {"": _gitmodules(Path(path))}     # a repo's path from the top -> its .gitmodules
    out = []
    for line in done.stdout.splitlines():
        if len(line) < 42:
            continue
        commit, rel = line[1:41], line[42:].rsplit(" (", 1)[0]
        parent = max((p for p in modules if p == "" or rel.startswith(p + "/")), key=len)
        url = modules[parent].get(rel[len(parent) + 1:] if parent else rel, "")
        out.append({"path": rel, "url": strip_credentials(url) if "://" in url else url, "commit": commit})
        if (Path(path) / rel / ".gitmodules").is_file():
            modules[rel] = _gitmodules(Path(path) / rel)
    return sorted(out, key=lambda s: s["path"])


def _gitmodules(path: Path) -> dict:
    """path -> url (without credentials) of the submodules `path/.gitmodules` names."""
    return {sub: url for _, sub, url in _gitmodule_names(path)}


def _check_values(step: RepoStep) -> None:
    """What reaches git's argv, checked again here for callers that did not go through options."""
    try:
        validate.git_ref(step.ref, f"the {step.name} ref")
        if step.action in ("clone", "fetch"):
            validate.repo_url(step.url, f"the {step.name} repo")
    except ConfigError as err:
        raise RepoError(str(err)) from None


def _reuse(step: RepoStep, say: Say, fix: bool, echo=None) -> Optional[RepoState]:
    """The repo as it is; None when submodules are missing and `fix` is off (fetching them is a
    change, made under the exclusive lock)."""
    path = step.path
    if not (path / ".git").exists():
        raise RepoError(
            f"{path} exists but is not a git repo: remove or move it, or point the root elsewhere "
            f"so {step.name} can be cloned"
        )
    missing = []
    if step.submodules:
        status = _git(["submodule", "status", "--recursive"], cwd=path)
        missing = [ln for ln in status.stdout.splitlines() if ln.startswith("-")]
        if missing and not fix:
            return None
    commit = head(path)
    wanted = _rev(path, step.ref)
    at_ref = wanted == commit
    say(f"reuse {step.name} ({commit[:10]}, {step.ref if at_ref else 'not at ' + step.ref}) at {path}")
    if not at_ref:
        say(
            f"warning: {path} is at {commit[:10]}, not at {step.ref}"
            f"{'' if wanted else ' (no such ref in that repo)'}; the image gets what is checked out"
        )
    if missing:
        say(f"fetch {len(missing)} missing submodule(s) of {step.name}")
        _update_submodules(path, echo)
    return RepoState(step.name, path, commit, step.ref, reused=True, at_ref=at_ref)


def _beside(path: Path) -> Path:
    """A private name beside `path` (same file system, so the rename into place is atomic)."""
    return path.with_name(f".{path.name}.part-{os.getpid()}-{os.urandom(4).hex()}")


def _clone(step: RepoStep, say: Say, echo=None) -> RepoState:
    path = step.path
    shown = redact(step.url)
    say(f"clone {step.name} {shown} @ {step.ref} -> {path} (shallow, submodules recursive)")
    made_dirs = [p for p in path.parents if not p.exists()]    # deepest first
    path.parent.mkdir(parents=True, exist_ok=True)
    work = _beside(path)
    try:
        code, tail = _git_streamed(
            ["clone", "--depth", "1", "--branch", step.ref, "--progress", END, step.url, str(work)], echo=echo
        )
        if code != 0:
            text = "\n".join(tail)
            if "not found in upstream" in text or "Remote branch" in text:
                raise RepoError(
                    f"{step.ref!r} is not a tag or branch of {shown}: check the tag "
                    f"(git ls-remote --tags {shown})"
                )
            last = tail[-1] if tail else "no output"
            raise RepoError(f"cloning {step.name} from {shown} failed: {last}")
        _update_submodules(work, echo)
        commit = head(work)
        os.rename(work, path)
    except BaseException:
        _remove_own(work, made_dirs)
        raise
    return RepoState(step.name, path, commit, step.ref, reused=False, at_ref=True)


def _fetch_current(step: RepoStep, say: Say) -> Optional[RepoState]:
    """The tool's own clone when it is clean and at the commit `step.ref` names upstream, else None."""
    path = step.path
    if not (path / ".git").exists():
        return None
    current = _rev(path, "HEAD")
    if current and current == _remote_commit(step.url, step.ref, current) and _clean(path):
        # Fetching rewrites FETCH_HEAD, objects and the index: the tree would look changed.
        say(f"reuse {step.name} clone at {path}: {step.ref} is still {current[:10]} at {redact(step.url)}")
        return RepoState(step.name, path, current, step.ref, reused=True, at_ref=True)
    return None


def _fetch(step: RepoStep, say: Say, echo=None) -> RepoState:
    """Bring the tool's own clone (in the cache) to `step.ref`: one shallow fetch, a forced
    checkout, untracked files cleaned; a first clone is made under a private name and renamed
    into place. The URL is passed to git, never stored in .git/config, so a token in it stays
    out of the cache."""
    path, shown = step.path, redact(step.url)
    fresh = not (path / ".git").exists()
    say(f"fetch {step.name} {shown} @ {step.ref} into {'a new' if fresh else 'the'} clone at {path}")
    where = _beside(path) if fresh else path
    try:
        if fresh:
            path.parent.mkdir(parents=True, exist_ok=True)
            _checked(_git(["init", "-q", END, str(where)]), f"creating {path}")
        _checked(_git(["config", END, "remote.origin.url", strip_credentials(step.url)], cwd=where),
                 "configuring the clone")
        code, tail = _git_streamed(["fetch", "--depth", "1", "--progress", "--no-tags", END, step.url, step.ref],
                                   cwd=where, echo=echo)
        if code != 0:
            text = "\n".join(tail)
            if "couldn't find remote ref" in text or "not our ref" in text or "unadvertised" in text:
                raise RepoError(f"{step.ref!r} is not a branch, tag or commit of {shown}: check --torch-musa-ref")
            raise RepoError(f"fetching {step.name} from {shown} failed: {tail[-1] if tail else 'no output'}")
        _checked(_git(["checkout", "-q", "--force", "--detach", "FETCH_HEAD"], cwd=where), f"checking out {step.ref}")
        _checked(_git(["clean", "-q", "-ffdx"], cwd=where), "cleaning the clone")
        _update_submodules(where, echo)
        commit = head(where)
        if fresh:
            if path.exists():
                shutil.rmtree(path)      # the tool's own, left without .git by a run that died
            os.rename(where, path)
    except BaseException:
        if fresh:
            shutil.rmtree(where, ignore_errors=True)
        raise
    return RepoState(step.name, path, commit, step.ref, reused=not fresh, at_ref=True)


def _remote_commit(url: str, ref: str, head_commit: str) -> Optional[str]:
    """The commit `ref` names at `url` (a tag peeled), or None when the remote cannot say."""
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return ref
    done = _git(["ls-remote", END, url, ref, f"{ref}^{{}}"])
    if done.returncode != 0:
        return None
    found = dict(reversed(line.split("\t", 1)) for line in done.stdout.splitlines() if "\t" in line)
    for name in (f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", f"refs/heads/{ref}", ref):
        if name in found:
            return found[name]
    return None


def is_clean(path: Path, ignored: bool = False) -> bool:
    """No change, untracked file or moved submodule in the repo at `path` (nor, with `ignored`,
    a file .gitignore hides: it is in the tree all the same)."""
    return _clean(path, ignored)


def _clean(path: Path, ignored: bool = False) -> bool:
    done = _git(["status", "--porcelain", "--ignore-submodules=none", *(["--ignored"] if ignored else [])], cwd=path)
    return done.returncode == 0 and not done.stdout.strip()


def _checked(done: subprocess.CompletedProcess, what: str) -> None:
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RepoError(f"{what} failed: {redact(last[0])}")


def _update_submodules(path: Path, echo=None) -> None:
    code, tail = _git_streamed(
        ["submodule", "update", "--init", "--recursive", "--depth", "1", "--jobs", "4", "--progress"], cwd=path,
        echo=echo)
    if code != 0:
        # Some servers refuse a shallow fetch of a commit that is not a branch tip; a full
        # fetch of the submodule always works.
        code, tail = _git_streamed(["submodule", "update", "--init", "--recursive", "--jobs", "4"], cwd=path,
                                   echo=echo)
    if code != 0:
        raise RepoError(f"fetching the submodules of {path} failed: {tail[-1] if tail else 'no output'}")


def _remove_own(path: Path, made_dirs: Sequence[Path]) -> None:
    """Remove a half-made clone: the clone dir is ours (it did not exist), and so are the
    parent dirs made for it (`made_dirs`, deepest first), when nothing else landed in them."""
    shutil.rmtree(path, ignore_errors=True)
    for parent in made_dirs:
        try:
            parent.rmdir()
        except OSError:
            break


# --- a checkout's .git as a function of its commits ------------------------------------------------

@dataclass(frozen=True)
class CanonicalGit:
    """The `.git` dirs a locked checkout gets in its image layer, made by `canonical_git`."""

    time: int                  # the top commit's committer time: every entry of the layer gets it
    gits: Dict[str, Path]      # repo dir from the top ("" the top itself) -> the .git dir made for it


# Read by nothing but these commands: the user's own git config (index.version, feature.manyFiles,
# pack.compression…) must not change what is written.
_NO_USER_CONFIG = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def canonical_git(path: Path, url: str, into: Path) -> CanonicalGit:
    """For the clean checkout at `path` (its submodules checked out), a `.git` dir per repo (the
    top and each submodule, recursively) under `into`, whose bytes depend only on the commits and
    the URLs: HEAD detached at the commit, shallow at it, its objects in one pack without deltas,
    an index read from its tree, `remote.origin.url` (`url` for the top, `.gitmodules`' for a
    submodule) and each direct submodule active. No reflog, FETCH_HEAD, hooks or remote refs,
    whether the checkout was cloned from a remote or restored from git bundles; so a layer made of it
    is the same bytes either way. Raises RepoError."""
    top = head(path)
    done = _git(["show", "-s", "--format=%ct", top], cwd=path)
    _checked(done, f"reading the time of {top[:12]} in {path}")
    repos = {"": (top, strip_credentials(url) if "://" in url else url)}
    for sub in submodules(path):
        repos[sub["path"]] = (sub["commit"], sub["url"])
    gits = {}
    for n, rel in enumerate(sorted(repos)):
        commit, origin = repos[rel]
        work = path / rel if rel else path
        gits[rel] = _canonical_one(work, commit, origin, _gitmodule_names(work), into / str(n))
    return CanonicalGit(int(done.stdout.strip()), gits)


def _canonical_one(work: Path, commit: str, origin: str, children, git_dir: Path) -> Path:
    for sub in ("objects/pack", "refs/heads", "refs/tags"):
        (git_dir / sub).mkdir(parents=True)
    (git_dir / "HEAD").write_text(commit + "\n")
    (git_dir / "shallow").write_text(commit + "\n")
    config = git_dir / "config"
    entries = [("core.repositoryformatversion", "0"), ("core.filemode", "true"), ("core.bare", "false"),
               ("core.logallrefupdates", "true"), ("remote.origin.url", origin),
               ("remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*")]
    for name, _, url in sorted(children):
        entries += [(f"submodule.{name}.active", "true"), (f"submodule.{name}.url", url)]
    config.write_text("")
    for key, value in entries:
        _checked(_git_env(["config", "-f", str(config), END, key, value], None, _NO_USER_CONFIG), f"writing {config}")
    # One pack of the commit's objects (shallow there: nothing older), each compressed anew and none
    # a delta, packed in this new repo (the checkout's objects borrowed for it) whose lack of refs
    # and packs leaves git's write order to the commit alone: the checkout's own tags would change it.
    done = _git(["rev-parse", "--git-path", "objects"], cwd=work)
    _checked(done, f"finding the objects of {work}")
    objects = (work / done.stdout.strip()).resolve()
    if "\n" in str(objects):
        raise RepoError(f"the objects of {work} are in a dir whose name holds a newline ({objects!r}): move the repo")
    borrowed = git_dir / "objects" / "info" / "alternates"
    borrowed.parent.mkdir()
    borrowed.write_text(f"{objects}\n")
    env = {**_NO_USER_CONFIG, "GIT_DIR": str(git_dir)}
    _checked(_git_env(["-c", "pack.writeReverseIndex=false", "pack-objects", "-q", "--revs", "--threads=1",
                       "--window=0", "--depth=0", "--no-reuse-delta", "--no-reuse-object",
                       str(git_dir / "objects" / "pack" / "pack")], git_dir, env, stdin=commit + "\n"),
             f"packing {commit[:12]} of {work}")
    borrowed.unlink()
    borrowed.parent.rmdir()
    # stat data all zero: git in the image compares the files by content once, and finds them clean
    _checked(_git_env(["read-tree", commit], git_dir, {**env, "GIT_INDEX_FILE": str(git_dir / "index")}),
             f"writing the index of {commit[:12]} of {work}")
    return git_dir


def _git_env(args: Sequence[str], cwd: Optional[Path], env: Dict[str, str], stdin: Optional[str] = None):
    try:
        return subprocess.run(_argv(args), cwd=cwd, input=stdin, capture_output=True, text=True, errors="replace",
                              env={**os.environ, **GIT_ENV, **env})
    except FileNotFoundError:
        raise _not_started(cwd) from None


def _gitmodule_names(path: Path) -> list:
    """(name, path, url) of each submodule `path/.gitmodules` names, sorted."""
    done = _git(["config", "-f", ".gitmodules", "--get-regexp", r"^submodule\..*\.(path|url)$"], cwd=path)
    names: dict = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        name, _, field = key[len("submodule."):].rpartition(".")
        names.setdefault(name, {})[field] = value
    urls = {name: v.get("url", "") for name, v in names.items()}
    return sorted((name, v["path"], strip_credentials(urls[name]) if "://" in urls[name] else urls[name])
                  for name, v in names.items() if "path" in v)
