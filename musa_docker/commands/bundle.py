"""`musa-docker bundle`: everything a lock file names in one portable directory or tar
(fetch/bundle.py has the layout); `bundle verify` checks it file by file; `bundle import` seeds the
tool's cache with it and loads its images into the engine.

Writing a bundle brings each input the way a locked build does, checked against the lock: the
repos fetched at their locked commits into the tool's own clones (submodules too) and written as
`git bundle`s; the artifacts, the apt packages and the MUSA wheel files downloaded into the cache
with the lock's sha256 (what `lock` downloaded is there already); the images saved from the engine
(`docker save`), refused when the engine's id is not the lock's. Importing seeds the download
cache by each file's URL, as a download would have left it; keeps the git bundles in the cache,
where a locked build clones from them instead of the network; and loads the images, each checked
against the lock's id.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import threading
from pathlib import Path, PurePosixPath
from typing import Any, Dict, Mapping, TextIO

from ..defaults import default_cache_dir
from ..errors import BundleError, ConfigError, disk_errors
from ..fetch import bundle as layout
from ..fetch import cache
from ..fetch import git as repos
from ..fetch.download import Downloader
from ..options.cascade import sourced
from ..plan.plan import RepoAction, RepoStep
from ..util import expand_home, hash_file, human_size, say_to
from ..values import lockfile, validate
from ..values.locations import parse_location, redact, strip_credentials


def _home(env) -> Path:
    return Path(env.get("HOME") or Path.home())


def _cache_dir(env) -> Path:
    home = _home(env)
    return expand_home(str(default_cache_dir({**env, "HOME": str(home)})), home)


def _engine(values, env):
    from ..engine.api import Engine
    return Engine(values.get("docker_host") or None, env)


# --- writing -------------------------------------------------------------------------------------

def bundle(values, env: Mapping[str, str], out: TextIO = sys.stdout) -> int:
    """The task: `bundle --lock FILE -o DIR|FILE.tar`. Raises MusaDockerError."""
    values = sourced("bundle", values).values
    say = say_to(out)
    home = _home(env)
    if not values.get("lock"):
        raise ConfigError("bundle needs --lock FILE: the lock file (`musa-docker lock`) whose inputs it carries")
    if not values.get("output"):
        raise ConfigError("bundle needs -o DIR or -o FILE.tar: where to write the bundle")
    lock_path = expand_home(validate.path(values["lock"], "--lock"), home)
    lock = lockfile.load(lock_path, values["lock"])
    target = Path(os.path.abspath(expand_home(validate.path(values["output"], "-o/--output"), home)))
    as_tar = target.suffix == ".tar"
    if target.exists() and not (target.is_dir() and not any(target.iterdir())):
        raise BundleError(f"-o {target} exists: name a new directory (or an empty one) or a new .tar; a bundle "
                          "never overwrites what is there")
    split = _split_size(values.get("split")) if values.get("split") else None
    if split and not as_tar:
        raise ConfigError("--split cuts a tar: give -o FILE.tar with it")
    cache_dir = _cache_dir(env)
    cache_dir.mkdir(parents=True, exist_ok=True)
    since, since_sha = None, None
    if values.get("since"):
        old = expand_home(validate.path(values["since"], "--since"), home)
        since, since_sha = layout.old_manifest(old, cache_dir / "builds")
        say(f"differential: only what {values['since']} (manifest {since_sha[:12]}) does not hold")
    engine = _engine(values, env) if lock.data["images"] else None
    with disk_errors(((target.parent, "the bundle (-o)", "name a place on a writable disk with room"),
                      (cache_dir, "the cache dir", "set MUSA_DOCKER_CACHE to a writable dir with room"))):
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            writer = layout.Writer(work, layout.held(since) if since else frozenset())
            _write(writer, lock, lock_path, cache_dir, engine, values, say, since or {})
            manifest = writer.finish(lock_path.read_text(), {"manifest_sha256": since_sha} if since else None)
            own = layout.manifest_sha256(work)
            if as_tar:
                layout.write_tar(work, target)
                if split:
                    parts = layout.split(target, split)
                    say(f"split into {len(parts)} part(s) of at most {human_size(split)}: {parts[0].name} … "
                        f"{parts[-1].name}, listed in {layout.parts_file(target).name}")
            elif target.exists():
                target.rmdir()
                os.replace(work, target)
            else:
                os.replace(work, target)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
    blobs = {rel: f for rel, f in manifest["files"].items() if rel.startswith("blobs/")}
    say(f"bundle {target}: {len(manifest['files'])} files, {len(blobs)} blobs, "
        f"{human_size(sum(f['size'] for f in blobs.values()))} (each stored once), manifest sha256 {own}")
    return 0


def _split_size(value: str) -> int:
    text = str(value).strip().upper()
    units = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    if not number.isdigit() or int(number) * unit < 10**6:
        raise ConfigError(f"--split {value!r} is not a size of at least 1M, e.g. --split 4G or --split 700M")
    return int(number) * unit


def _write(writer: layout.Writer, lock, lock_path: Path, cache_dir: Path, engine, values, say,
           since: Mapping[str, Any]) -> None:
    downloader = Downloader(cache_dir, verify=not values.get("insecure"))
    # artifacts: the cache has them when this machine locked them; else downloaded, checked
    for record in lock.data["artifacts"]:
        if record["sha256"] in writer.held:
            writer.inputs["artifacts"].append({"url": record["url"], "name": record["name"],
                                               "blob": f"blobs/sha256/{record['sha256']}"})
            continue
        location = parse_location(f"{record['url']}#sha256={record['sha256']}", what=record["name"])
        got = downloader.fetch(record["name"], location)
        blob = writer.blob(got.path, record["sha256"])
        writer.inputs["artifacts"].append({"url": record["url"], "name": record["name"], "blob": blob})
    for record in lock.data["apt"]:
        key = layout.key_of(record["source"], record["runtime"], record["arch"])
        packages = _flat_repo(writer, downloader, f"apt/{key}",
                              [dict(p, url=f"{record['url']}/{p['filename']}") for p in record["packages"]])
        writer.inputs["apt"].append({"source": record["source"], "runtime": record["runtime"], "arch": record["arch"],
                                     "dir": f"apt/{key}", "packages": packages})
        say(f"apt {record['runtime']} ({record['arch']}): {len(packages)} packages in apt/{key}")
    for record in lock.data.get("os_apt", []):
        # the OS image's own packages: a flat repository per image, set and arch, as the MUSA ones
        key = layout.key_of(record["image"], record["set"], record["arch"])
        packages = _flat_repo(writer, downloader, f"apt/{key}", record["packages"])
        writer.inputs["os_apt"].append({"image": record["image"], "set": record["set"], "arch": record["arch"],
                                        "dir": f"apt/{key}", "packages": packages})
        say(f"apt {record['image']} {record['set']} ({record['arch']}): {len(packages)} packages in apt/{key}")
    pages: Dict[str, Dict[str, list]] = {}
    for record in lock.data["pip"]:
        key = layout.key_of(record["index"])
        for file in record["files"]:
            blob = _blob(writer, downloader, file["filename"], file["url"], file["sha256"])
            writer.link(blob, f"pip/{key}/files/{file['filename']}")
            project = record["name"].replace("_", "-").replace(".", "-").lower()
            pages.setdefault(key, {}).setdefault(project, []).append((file["filename"], file["sha256"]))
            writer.inputs["pip"].append({"index": record["index"], "dir": f"pip/{key}", "url": file["url"],
                                         "filename": file["filename"], "blob": blob})
    for key, projects in pages.items():
        for project, files in projects.items():
            writer.text(f"pip/{key}/simple/{project}/index.html", layout.simple_page(sorted(set(files))))
    old = since.get("inputs", {})
    bundles = {item["commit"]: item["bundle"] for r in old.get("repos", []) for item in [r, *r.get("submodules", [])]}
    images = {item["id"]: item["blob"] for item in old.get("images", [])}
    for record in lock.data["repos"]:
        _bundle_repo(writer, record, lock, cache_dir, say, bundles)
    for record in lock.data["images"]:
        if record["id"] in images:
            writer.inputs["images"].append({"ref": record["ref"], "id": record["id"], "blob": images[record["id"]]})
            continue
        _save_image(writer, record, engine, lock, say)


def _flat_repo(writer: layout.Writer, downloader, folder: str, pins) -> list:
    """The .debs of `pins` (each with its url) in `folder` as a flat repository with its own Packages,
    each a link to its blob (downloaded unless the bundle holds it); their manifest entries."""
    stanzas, packages = [], []
    for pin in pins:
        blob = _blob(writer, downloader, pin["package"], pin["url"], pin["sha256"])
        name = PurePosixPath(pin["filename"]).name
        writer.link(blob, f"{folder}/{name}")
        stanzas.append({**dict(pin.get("control") or {}), "Package": pin["package"], "Version": pin["version"],
                        "Architecture": pin.get("architecture", ""), "Filename": name,
                        "Size": str(pin.get("size", 0)), "SHA256": pin["sha256"]})
        packages.append({"package": pin["package"], "url": pin["url"], "blob": blob})
    index = layout.flat_packages(stanzas)
    writer.text(f"{folder}/Packages", index)
    writer.text(f"{folder}/Packages.gz", layout.gz(index))
    return packages


def _bundle_repo(writer: layout.Writer, record, lock, cache_dir: Path, say, held: Mapping[str, str]) -> None:
    """The repo at its locked commit, fetched into the tool's own clone, and each submodule, each
    as a `git bundle` of its checked-out commit; a commit whose bundle `held` (the older bundle's)
    has is not bundled again."""
    items = [record, *record.get("submodules", [])]
    if all(item["commit"] in held for item in items):
        entry = dict(record, bundle=held[record["commit"]],
                     submodules=[dict(s, bundle=held[s["commit"]]) for s in record.get("submodules", [])])
        writer.inputs["repos"].append(entry)
        return
    key = layout.key_of(record["url"])[:12]      # named as the tool's other clones: `cache ls` lists it
    step = RepoStep(record["name"], record["url"], record["commit"], cache_dir / "repos" / f"bundle-{record['name']}-{key}",
                    RepoAction.FETCH, flag="--lock", commit=record["commit"], lock=lock.path,
                    locked=tuple((s["path"], s["commit"]) for s in record.get("submodules", [])))
    state = repos.ensure(step, say, "--lock", locks_dir=cache_dir / "locks")
    entry = dict(record, bundle=held.get(record["commit"]) or _git_bundle(writer, state.path, record["commit"]),
                 submodules=[])
    for sub in record.get("submodules", []):
        entry["submodules"].append(dict(sub, bundle=held.get(sub["commit"]) or
                                        _git_bundle(writer, state.path / sub["path"], sub["commit"])))
    writer.inputs["repos"].append(entry)
    say(f"git {record['name']} {record['commit'][:12]} and {len(entry['submodules'])} submodule(s) as git bundles")


def _git_bundle(writer: layout.Writer, path: Path, commit: str) -> str:
    tmp = writer.root / f".{commit}.bundle"
    repos.bundle_head(path, commit, tmp)
    try:
        return writer.blob(tmp)
    finally:
        tmp.unlink(missing_ok=True)


def _save_image(writer: layout.Writer, record, engine, lock, say) -> None:
    ref = record["ref"]
    image = engine.image(ref)
    if image is None or image.id != record["id"]:
        raise BundleError(f"image {ref}: the engine at {engine.host} has {image.id[:19] if image else 'no such image'}, "
                          f"the lock {lock.path} {record['id'][:19]}: load or pull the locked one, or lock again")
    tmp = writer.root / f".image-{os.getpid()}.tar"
    try:
        with open(tmp, "wb") as f:
            engine.save(ref, f)
        blob = writer.blob(tmp)
    finally:
        tmp.unlink(missing_ok=True)
    writer.inputs["images"].append({"ref": ref, "id": record["id"], "blob": blob})
    say(f"image {ref} {record['id'][:19]} saved")


# --- verify and import ---------------------------------------------------------------------------

def _bundle_arg(values) -> str:
    if not values.get("bundle"):
        raise ConfigError("give the bundle: `musa-docker bundle verify DIR|FILE.tar` (or --bundle)")
    return values["bundle"]


def verify(values, env: Mapping[str, str], out: TextIO = sys.stdout) -> int:
    """The task: `bundle verify DIR|FILE.tar`. Raises BundleError naming the first bad file."""
    values = sourced("bundle-verify", values).values
    given = _bundle_arg(values)
    path = expand_home(validate.path(given, "the bundle"), _home(env))
    with layout.opened(path, _cache_dir(env) / "builds") as root:
        layout.verify(root, given, say_to(out))
    return 0


def import_bundle(values, env: Mapping[str, str], out: TextIO = sys.stdout) -> int:
    """The task: `bundle import DIR|FILE.tar`: verify, then seed the cache and load the images."""
    values = sourced("bundle-import", values).values
    say = say_to(out)
    given = _bundle_arg(values)
    path = expand_home(validate.path(given, "the bundle"), _home(env))
    cache_dir = _cache_dir(env)
    with disk_errors(((cache_dir, "the cache dir", "set MUSA_DOCKER_CACHE to a writable dir with room"),)):
        cache_dir.mkdir(parents=True, exist_ok=True)
        with layout.opened(path, cache_dir / "builds") as root:
            manifest = layout.verify(root, given, say)
            own = layout.manifest_sha256(root)
            imported = cache_dir / "bundles" / "imported"
            base = (manifest.get("since") or {}).get("manifest_sha256")
            if base and not (imported / base).is_file():
                raise BundleError(f"{given} is a differential bundle on top of the bundle whose manifest has sha256 "
                                  f"{base[:16]}…, which was not imported into {cache_dir}: import that one first")
            lock = lockfile.load(root / layout.LOCK, f"{given}/{layout.LOCK}")
            inputs = manifest.get("inputs", {})
            _check_inputs(inputs, given)
            engine = _engine(values, env) if inputs.get("images") else None
            seeded = 0
            # a blob a differential bundle leaves out came with the bundle it stands on
            for item in inputs.get("artifacts", []):
                seeded += _seed(cache_dir, item["url"], root / item["blob"], item["name"], say)
            for record in inputs.get("apt", []) + inputs.get("os_apt", []):
                for item in record["packages"]:
                    seeded += _seed(cache_dir, item["url"], root / item["blob"], item["package"], say)
            for item in inputs.get("pip", []):
                seeded += _seed(cache_dir, item["url"], root / item["blob"], item["filename"], say)
            kept = 0
            for record in inputs.get("repos", []):
                for item in [record, *record.get("submodules", [])]:
                    if (root / item["bundle"]).is_file():
                        kept += repos.keep_bundle(cache_dir / "git-bundles", item["commit"], root / item["bundle"])
            for item in inputs.get("images", []):
                _load_image(engine, root / item["blob"], item, lock, say)
            imported.mkdir(parents=True, exist_ok=True)
            (imported / own).write_text(f"{given}\n")
    say(f"imported {given}: {seeded} file(s) into the download cache {cache_dir}, {kept} git bundle(s), "
        f"{len(inputs.get('images', []))} image(s)")
    return 0


_BLOB = re.compile(r"^blobs/sha256/[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _check_inputs(inputs: Mapping[str, Any], shown: str) -> None:
    """What import takes from the manifest's inputs: blob paths inside the bundle, commits that name
    files. Raises BundleError."""
    blobs = [i.get("blob") for key in ("artifacts", "pip", "images") for i in inputs.get(key, [])]
    blobs += [p.get("blob") for r in inputs.get("apt", []) + inputs.get("os_apt", []) for p in r.get("packages", [])]
    items = [i for r in inputs.get("repos", []) for i in [r, *r.get("submodules", [])]]
    blobs += [i.get("bundle") for i in items]
    bad = [b for b in blobs if not isinstance(b, str) or not _BLOB.match(b)]
    bad += [i.get("commit") for i in items if not isinstance(i.get("commit"), str) or not _COMMIT.match(i["commit"])]
    if bad:
        raise BundleError(f"{shown}: the manifest names {bad[0]!r}, which is not a blob or commit of a bundle: "
                          "the bundle is damaged")


def _seed(cache_dir: Path, url: str, blob: Path, name: str, say) -> int:
    """Put `blob` in the download cache where a download of `url` would have left it, under the
    entry's lock; a file already there with the same sha256 is kept. Returns 1 when written."""
    location = parse_location(url, what=name)
    if not blob.is_file():
        return 0
    if location.scheme == "file":
        say(f"skip {name}: {location.display} is a local file, taken where it is")
        return 0
    entry = cache.Entry.of(cache_dir, location)
    cache.prepare(entry)
    sha, _ = hash_file(blob)
    with cache.locked(entry, lambda: say(f"wait for another run using the cache entry of {name}"), threading.Event()):
        found = cache.look(name, entry)
        if found is not None and found.sha256 == sha and found.recorded == sha:
            return 0
        tmp = entry.final.with_name(entry.final.name + ".import")
        shutil.copyfile(blob, tmp)
        cache.write_file(name, entry.record, f"{sha}  {entry.final.name}\n")
        os.replace(tmp, entry.final)
    say(f"cached {name} {redact(strip_credentials(url))} from the bundle")
    return 1


def _load_image(engine, archive: Path, item: Mapping[str, Any], lock, say) -> None:
    ref = item["ref"]
    image = engine.image(ref)
    if image is not None and image.id == item["id"]:
        say(f"image {ref} {item['id'][:19]} is on the engine already")
        return
    if not archive.is_file():
        raise BundleError(f"image {ref} {item['id'][:19]} came with the bundle this differential one stands on, but "
                          f"the engine at {engine.host} does not have it: import that bundle into this engine first")
    with open(archive, "rb") as f:
        engine.load_saved(iter(lambda: f.read(1 << 20), b""))
    image = engine.image(ref)
    if image is None or image.id != item["id"]:
        raise BundleError(f"image {ref}: the engine loaded {image.id[:19] if image else 'nothing under that name'}, "
                          f"the lock {lock.path} says {item['id'][:19]}")
    say(f"loaded image {ref} {item['id'][:19]} into {engine.host}")


def _blob(writer, downloader, name: str, url: str, sha256: str) -> str:
    """The blob of a locked file: the bundle's when it holds one with that sha256, else downloaded
    (checked against it) and stored."""
    if sha256 in writer.held:
        return f"blobs/sha256/{sha256}"
    got = downloader.fetch(name, parse_location(f"{url}#sha256={sha256}", what=name))
    return writer.blob(got.path, sha256)
