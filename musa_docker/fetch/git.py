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
from typing import Optional, Sequence

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
           echo=None) -> RepoState:
    """Reuse `step.path` when it holds a repo, else clone it there; for a repo the user named,
    use it as it is; for the tool's own clone, fetch the ref into it. The repo is left under a
    shared lock (in `locks_dir`) that `held` releases, so that no other run changes it while this
    one packs it; without `held` the lock is released on return. git's own output goes to `echo`
    (stderr when None). Raises RepoError, ConfigError."""
    _check_values(step)
    if step.action == "use":
        if not (step.path / ".git").exists():
            raise RepoError(f"{flag} {step.path} is not a git repo: give the path of a {step.name} checkout, or its URL")
    elif step.action != "fetch":
        check_root(step, flag)
    lock = locks.EntryLock(locks.lock_for(locks_dir, f"repo-{step.name}", step.path),
                           f"the {step.name} repo at {step.path}", say)
    if step.action == "fetch":
        def read():
            return _fetch_current(step, say)

        def write():
            return _fetch_current(step, say) or _fetch(step, say, echo)
    else:
        def read():
            return _reuse(step, say, fix=False) if step.path.exists() else None

        def write():
            # A repo the user named is never cloned, even when it went away meanwhile.
            return (_reuse(step, say, fix=True, echo=echo) if step.action == "use" or step.path.exists()
                    else _clone(step, say, echo))
    state = locks.shared_entry(lock, read, write, still=lambda s: _rev(step.path, "HEAD") == s.commit)
    if held is not None:
        held.callback(lock.release)
    else:
        lock.release()
    return state


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


def _clean(path: Path) -> bool:
    done = _git(["status", "--porcelain", "--ignore-submodules=none"], cwd=path)
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
