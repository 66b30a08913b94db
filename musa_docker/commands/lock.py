"""`musa-docker lock`: every input of a build, or of every image of a build-all file, resolved to
exact commits and bytes without building, in one lock file (values/lockfile.py) that `--lock`
builds from and `bundle` carries.

The plan says what the build would take; each of its inputs is then resolved the way the build
resolves it: the repos are brought as the build brings them (cloned or reused at their root, or
fetched into the tool's clone) and their commits and submodules read; the artifacts are
downloaded into the cache and hashed; the apt packages are chosen from the repository's index for
the engine's architecture, with their filename, size and sha256; the MUSA wheels' files are read
from the MUSA index's project page; the OS image's own packages (install_base.sh's set) by apt in a
container of the OS image (pipeline/osapt.py); what the image takes from the public index by the
host's pip for the image's Python and platform (fetch/piplock.py); the image the build starts from is
recorded by the id the engine has for it. `--update NAME` re-resolves only the inputs of that name and keeps the rest of
the existing file as it is.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Set, TextIO

from ..defaults import default
from ..errors import ConfigError, LockError, disk_errors
from ..fetch import git as repos
from ..fetch import piplock, pipindex
from ..fetch.download import Downloader
from ..musa import aptrepo, sdk
from ..options.cascade import Sourced, sourced
from ..pipeline import osapt
from ..pipeline.locked import from_image
from ..plan.locked import sets_of
from ..pipeline.observe import observe_disk
from ..plan import plan as plans
from ..util import expand_home, say_to
from ..values import lockfile, validate
from ..values.locations import parse_location, redact, strip_credentials
from .build import resolve


def lock(values, env: Mapping[str, str], out: TextIO = sys.stdout, build_task: Optional[str] = None,
         build: Optional[Sourced] = None) -> int:
    """The task: `lock TASK [FLAGS]` (task and build given) or `lock -c FILE`. Writes the lock
    file whole or not at all. Raises MusaDockerError."""
    own = sourced("lock", values).values
    home = Path(env.get("HOME") or Path.home())
    say = say_to(out)
    output = expand_home(validate.path(own.get("output") or default("lock", "output"), "-o/--output"), home)
    updates = list(own.get("update") or [])
    old = None
    if updates:
        if not output.is_file():
            raise ConfigError(f"--update needs the lock file to update: {output} does not exist; run `musa-docker "
                              "lock` without --update first")
        old = lockfile.load(output, str(output))
    if build_task is not None:
        items = [(build_task, build if build is not None else Sourced.of(build_task, {}))]
        made: Set[str] = set()
    else:
        if not own.get("config"):
            raise ConfigError("lock needs a build task and its flags (`musa-docker lock build-base -s debian:12 …`) "
                              "or -c FILE, a build-all file")
        from .build_all import _sourced, load
        path = expand_home(validate.path(own["config"], "-c/--config"), home)
        entries = load(path)
        items = [(e.task, _sourced(e, path, {"docker_host": own.get("docker_host")})) for e in entries]
        made = {e.ref for e in entries}
    locker = Locker(env, say, old, updates, made)
    for name, given in items:
        _, options = resolve(name, given, env)
        if not options.common.platform_given:
            # as a build does: without --platform the image is the engine's CPU's
            _, options = resolve(name, given, env, machine=locker.engine(options.common).machine())
        locker.lock(options)
    if updates:
        unknown = [n for n in updates if n not in locker.matched]
        if unknown:
            names = ", ".join(old.names()) or "none"
            raise LockError(f"--update {unknown[0]}: no input of that name in {output} (it has {names})")
    with disk_errors(((output.parent, "the lock file (-o/--output)", "name a file on a writable disk"),)):
        lockfile.write(output, locker.data)
    counts = ", ".join(f"{len(locker.data[s])} {s}" for s in lockfile.KEYS)
    say(f"lock {output}: {counts}")
    return 0


class Locker:
    """Resolves the inputs of one build after another into one lock document (`data`)."""

    def __init__(self, env: Mapping[str, str], say, old: Optional[lockfile.Lock], updates: List[str],
                 made: Set[str]):
        self.env, self.say, self.old, self.updates, self.made = env, say, old, set(updates), made
        self.data: Dict[str, Any] = lockfile.empty()
        self.matched: Set[str] = set()
        self.engines: Dict[Optional[str], Any] = {}
        self.bases: Dict[str, Any] = {}       # a base image this lock's build-all file makes -> (python, OS image)

    def _kept(self, record: Optional[dict], *names: str) -> Optional[dict]:
        """The old record of an input when --update does not name it; None: resolve it."""
        hit = self.updates.intersection(names)
        self.matched |= hit
        if self.old is None or record is None or hit:
            return None
        return record

    def engine(self, common):
        from ..engine.api import Engine
        if common.docker_host not in self.engines:
            self.engines[common.docker_host] = Engine(common.docker_host, self.env)
        return self.engines[common.docker_host]

    def lock(self, options) -> None:
        common = dataclasses.replace(options.common, lock=None)   # what is locked now, not a lock's
        options = dataclasses.replace(options, common=common)
        engine = self.engine(common)
        common.cache_dir.mkdir(parents=True, exist_ok=True)
        facts = observe_disk(options)
        stack = getattr(options, "stack", None)
        if stack is not None and stack.apt is not None:
            facts = dataclasses.replace(facts, apt=self._apt(stack, engine, common))
        plan = plans.make(options, facts)
        self.say(f"lock {plan.kind} image {plan.build.image}")
        for step in plan.repos:
            self._repo(step, plan)
        self._artifacts(plan, common)
        if stack is not None:
            for wheel in stack.wheels:
                self._wheel(stack, wheel, common)
        self._os_apt(plan, options, engine)
        self._pip_set(plan, options, common)
        if plan.kind == "base":
            self.bases[str(options.image)] = (plan.python_version, options.system.name)
        self._image(from_image(options), engine)

    def _repo(self, step, plan) -> None:
        old = self.old.repo(step.name, step.url, step.ref) if self.old else None
        record = self._kept(old, step.name)
        if record is None:
            state = repos.ensure(step, self.say, step.flag, locks_dir=plan.cache_dir / "locks")
            if not repos.is_clean(state.path):
                raise LockError(f"{step.name} at {state.path} has changes no commit holds (`git status` lists them): "
                                "a lock records commits, so commit or stash them, or lock a clean checkout")
            record = {"name": step.name, "url": lockfile.key_url(step.url), "ref": step.ref, "commit": state.commit,
                      "submodules": repos.submodules(state.path)}
            self.say(f"locked {step.name} {redact(step.url)} @ {step.ref} = {state.commit[:12]} "
                     f"({len(record['submodules'])} submodules)")
        lockfile.add(self.data, "repos", record)

    def _artifacts(self, plan, common) -> None:
        todo = []
        for step in plan.artifacts:
            old = self.old.artifact(step.location.url) if self.old else None
            record = self._kept(old, step.name)
            if record is None:
                todo.append(step)
            else:
                lockfile.add(self.data, "artifacts", record)
        downloader = Downloader(common.cache_dir, verify=not common.insecure, connections=common.connections)
        for step, got in zip(todo, downloader.fetch_all([(s.name, s.location) for s in todo]) if todo else []):
            lockfile.add(self.data, "artifacts", {"name": step.name, "url": lockfile.key_url(step.location.url),
                                                  "filename": step.location.filename, "size": got.size,
                                                  "sha256": got.sha256})
            self.say(f"locked {step.name} {step.location.display} sha256={got.sha256[:12]}… {got.size} bytes")

    def _apt(self, stack, engine, common):
        arch = common.platform.deb_arch
        src = stack.apt.source
        old = self.old.apt(src.line, stack.apt.runtime, arch) if self.old else None
        record = self._kept(old, *[name for _, name, _ in stack.apt.packages()])
        if record is not None:
            lockfile.add(self.data, "apt", record)
            return sdk.locked_apt(stack, self.old, arch)
        resolution = aptrepo.resolve(stack.apt, arch=arch, verify=not common.insecure, say=self.say)
        index = aptrepo.stanzas(src, arch, verify=not common.insecure)
        packages = []
        for name, version in resolution.pins:
            fields = index[(name, version)]
            packages.append({"package": name, "version": version, "architecture": fields.get("Architecture", ""),
                             "filename": fields.get("Filename", ""), "size": int(fields.get("Size") or 0),
                             "sha256": fields.get("SHA256", "").lower(),
                             "control": {k: fields[k] for k in osapt.CONTROL if k in fields}})
            if not fields.get("SHA256"):
                raise LockError(f"apt package {name} {version}: {src.url} lists no SHA256 for it, and the MUSA "
                                "repository is unsigned: without it nothing can check the package")
        lockfile.add(self.data, "apt", {"source": src.line, "runtime": stack.apt.runtime, "arch": arch,
                                        "url": src.url, "suite": src.suite, "packages": packages})
        self.say(f"locked {len(packages)} apt packages of MUSA {stack.apt.runtime} ({arch})")
        return resolution

    def _wheel(self, stack, wheel, common) -> None:
        old = self.old.pip(stack.pip_index_url, wheel.requirement) if self.old else None
        record = self._kept(old, wheel.name)
        if record is None:
            verify = not common.insecure
            found = pipindex.files(stack.pip_index_secret or stack.pip_index_url, wheel.name, wheel.version,
                                   verify=verify)
            if not found:
                raise LockError(f"pip {wheel.requirement}: {redact(stack.pip_index_url)} lists no file of that "
                                "version: check --musa-wheel")
            record = {"index": lockfile.key_url(stack.pip_index_url), "requirement": wheel.requirement,
                      "name": wheel.name, "version": wheel.version,
                      "files": [{"filename": f.filename, "url": strip_credentials(f.url),
                                 "sha256": pipindex.sha256_of(f, verify=verify)} for f in found]}
            self.say(f"locked pip {wheel.requirement}: {len(found)} file(s) on {redact(stack.pip_index_url)}")
        lockfile.add(self.data, "pip", record)

    def _os_apt(self, plan, options, engine) -> None:
        """The OS image's own packages of install_base.sh's set for this image (none for dev),
        resolved by apt in a container of the OS image."""
        for set_name in sets_of(plan.kind):
            self._os_apt_set(set_name, options, engine)

    def _os_apt_set(self, set_name: str, options, engine) -> None:
        image, arch = from_image(options), options.common.platform.deb_arch
        old = self.old.os_apt(image, set_name, arch) if self.old else None
        record = self._kept(old, image, *[p["package"] for p in (old or {}).get("packages", [])])
        if record is None:
            packages = osapt.resolve(engine, image, set_name, mirror=options.common.apt_mirror,
                                     network=options.common.network)
            record = {"image": image, "set": set_name, "arch": arch, "mirror": options.common.apt_mirror,
                      "packages": packages}
            self.say(f"locked {len(packages)} apt packages of {image}'s {set_name} set ({arch}), "
                     f"{sum(int(p['size']) for p in packages)} bytes")
        lockfile.add(self.data, "os_apt", record)

    def _pip_set(self, plan, options, common) -> None:
        """What the image's RUN steps take from the public index: the Python env's requirements and
        the dependencies of the wheels it installs, resolved by pip for the image's Python and platform."""
        if plan.kind == "dev":
            made = self.bases.get(options.base_img)
            if made is None:
                self.say(f"not locked: what {plan.build.image} takes from the public index, since its base "
                         f"{options.base_img} is not made by this lock's build-all file (its Python and OS unknown)")
                return
            python, system = made
        else:
            python, system = plan.python_version, from_image(options)
        index_shown = common.pip_index_url or lockfile.PUBLIC_INDEX
        image = lockfile.image_name(plan.build.image)
        old = self.old.pip_set(image, index_shown) if self.old else None
        record = self._kept(old, image, *[r.split("==")[0] for r in (old or {}).get("requirements", [])])
        if record is not None:
            lockfile.add(self.data, "pip_sets", record)
            for requirement in record["requirements"]:
                lockfile.add(self.data, "pip", self.old.pip(index_shown, requirement))
            return
        wanted = piplock.dev_requirements(plan) if plan.kind == "dev" else piplock.env_requirements(system)
        local = []
        if plan.kind == "release":
            downloader = Downloader(common.cache_dir, verify=not common.insecure)
            wheels = [a for a in plan.artifacts if a.dest.startswith("artifacts/wheels/")]
            staged = [got.path for got in downloader.fetch_all([(a.name, a.location) for a in wheels])] if wheels else []
            # the MUSA wheels are offered, not asked: the build installs them --no-deps from their own index
            wanted += [str(p) for p in staged]
            local = staged + self._musa_wheel_files(options, common)
        tags = piplock.platforms(system, common.platform.machine)
        found = piplock.resolve(common.pip_index_secret or index_shown, wanted,
                                python=python, platform_tags=tags, local=local,
                                verify=not common.insecure)
        requirements = []
        for dist in found:
            requirement = f"{dist['name']}=={dist['version']}"
            requirements.append(requirement)
            lockfile.add(self.data, "pip", {
                "index": lockfile.key_url(index_shown), "requirement": requirement, "name": dist["name"],
                "version": dist["version"],
                "files": [{"filename": dist["filename"], "url": dist["url"], "sha256": dist["sha256"]}]})
        lockfile.add(self.data, "pip_sets", {"image": image, "index": lockfile.key_url(index_shown),
                                             "python": python, "platforms": tags,
                                             "requirements": sorted(requirements)})
        self.say(f"locked {len(requirements)} distribution(s) {image} takes from {redact(index_shown)}: "
                 f"{' '.join(requirements) or 'none'}")

    def _musa_wheel_files(self, options, common) -> List[Path]:
        """The MUSA index's wheel files the lock records, in the download cache: offered to pip as
        local files, since the build installs them from the MUSA index, never the public one."""
        stack = getattr(options, "stack", None)
        if stack is None or not stack.wheels:
            return []
        downloader = Downloader(common.cache_dir, verify=not common.insecure)
        items = []
        for wheel in stack.wheels:
            record = lockfile.Lock("", self.data).pip(stack.pip_index_url, wheel.requirement)
            for file in (record or {}).get("files", []):
                items.append((file["filename"], parse_location(f"{file['url']}#sha256={file['sha256']}",
                                                               what=file["filename"])))
        return [got.path for got in downloader.fetch_all(items)] if items else []

    def _image(self, ref: str, engine) -> None:
        if ref in self.made:
            self.say(f"not locked: {ref}, which the build-all file makes")
            return
        old = self.old.image(ref) if self.old else None
        record = self._kept(old, ref)
        if record is None:
            image = engine.image(ref)
            if image is None:
                self.say(f"not locked: {ref}, which the engine at {engine.host} does not have (pull or build it "
                         "and lock again to pin it)")
                return
            digests = sorted(engine.inspect(ref).get("RepoDigests") or [])
            record = {"ref": ref, "id": image.id, "digests": digests}
            self.say(f"locked image {ref} = {image.id[:19]}")
        lockfile.add(self.data, "images", record)
