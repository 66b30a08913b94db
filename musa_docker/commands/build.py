"""build-base, build-dev and release: options -> observe -> plan -> (dry run: print, stop) ->
execute -> report. Each is a short adapter: its options and what its image must hold.

Each takes the task's values (a cascade.Sourced, or plain flag values) and the environment, and
returns the build's Report (None after a dry run). Errors are raised as MusaDockerError; the task
boundary prints them.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Optional, TextIO, Union

from ..options import build as opts
from ..plan import plan as plans
from ..musa import sdk
from ..options.cascade import Sourced, sourced
from ..fetch.cache import make_root
from ..pipeline.builddir import BuildDir
from ..errors import disk_errors
from ..pipeline.observe import check_local_files, observe_disk, observe_engine
from ..util import is_terminal, say_to, write_atomic
from ..values.refs import split_reference

Values = Union[Sourced, Mapping[str, Any]]


def build_base(values: Values, env: Mapping[str, str], out: TextIO = sys.stdout, echo: bool = True):
    return _run("build-base", values, env, out, echo)


def build_dev(values: Values, env: Mapping[str, str], out: TextIO = sys.stdout, echo: bool = True):
    return _run("build-dev", values, env, out, echo)


def release(values: Values, env: Mapping[str, str], out: TextIO = sys.stdout, echo: bool = True):
    return _run("release", values, env, out, echo)


RESOLVERS = {"build-base": opts.resolve_base, "build-dev": opts.resolve_dev, "release": opts.resolve_release}


def resolve(task: str, values: Values, env: Mapping[str, str], machine: Optional[str] = None):
    """A build task's options: the pins file under the cascade's values, then checked; `machine`
    is the engine's CPU once asked (the platform without --platform). Returns (the resolved inputs
    with their sources, the options). Raises ConfigError."""
    task = task.replace("_", "-")
    options = RESOLVERS[task](sourced(task, values), env, machine=machine)
    return options.inputs, options


def _run(task: str, values: Values, env, out: TextIO, echo: bool):
    """What every build shares: options, observe, plan; a dry run prints the plan and stops;
    otherwise execute, report, --verify, --push and --metadata-file. With -q only the image id
    reaches `out`. Returns the Report, None after a dry run."""
    _, options = resolve(task, values, env)
    common = options.common
    facts = observe_disk(options)
    if common.dry_run:
        out.write(preflight(options, facts).render() + "\n")
        return None
    shown = showing(common, out, echo)
    told = open(os.devnull, "w") if common.quiet else out    # where lines for people go
    try:
        report, digests = _build(task, values, options, facts, env, told, shown)
    finally:
        if told is not out:
            told.close()
    if common.quiet:
        out.write(report.image_id + "\n")
    return replace(report, digests=digests)


def preflight(options, facts=None):
    """The plan a dry run prints, after what the build would refuse before it starts is refused
    here too (a foreign --build-dir, a local input that is not a file): read only, nothing made."""
    common = options.common
    BuildDir.check(common.build_dir, common.home)
    plan = plans.make(options, facts if facts is not None else observe_disk(options))
    check_local_files(plan)
    return plan


def _build(task: str, values: Values, options, facts, env, told: TextIO, shown):
    say = say_to(told)
    common = options.common
    with disk_errors(disk_places(common)):
        engine = _engine(common, env)
        if not common.platform_given:
            # without --platform the image is the engine's CPU's, which only the engine can say
            _, options = resolve(task, values, env, machine=engine.machine())
            common = options.common
        expect = sdk.expect(options.stack) if hasattr(options, "stack") else {}
        make_root(common.cache_dir)     # after the engine: a refused run leaves no trace
        plan = plans.make(options, observe_engine(options, facts, engine, say))
        check_local_files(plan)
        say(plan.render().splitlines()[0])
        from ..pipeline import execute as pipeline    # loads the Docker SDK: only past the dry run
        report = pipeline.execute(plan, engine=engine, home=common.home, say=say, expect=expect, shown=shown)
    told.write(report.render() + "\n")
    if common.verify:
        # the smoke checks of `verify -i` on the new image; a failing check fails the task
        from ..check.verify import verify_after_build
        verify_after_build(engine, report.image, told)
    digests = push_all(engine, plan.build.refs, say, env) if plan.build.push else {}
    if plan.build.attest:
        digests = attest_all(engine, digests, report, say)
    if common.metadata_file is not None:
        with disk_errors(((common.metadata_file.parent, "the metadata file (--metadata-file)",
                           "name a file on a writable disk"),)):
            write_metadata(common.metadata_file, plan, report, digests)
        say(f"metadata {common.metadata_file}")
    return report, digests


def showing(common: opts.Common, out: TextIO, echo: bool):
    """How the build shows itself (--progress, -q): `auto` is tty on a terminal, plain elsewhere."""
    from ..pipeline.execute import Shown
    if common.quiet:
        return Shown(echo=None, quiet=True)
    mode = common.progress
    if mode == "auto":
        mode = "tty" if is_terminal(out) else "plain"
    return Shown(echo=out if echo else None, steps=mode == "tty", bars=mode == "tty")


def push_all(engine, refs, say, env: Mapping[str, str]) -> dict:
    """--push: every reference of the new image to its registry, with the docker config's
    credentials; returns {reference: digest}. Raises PushError naming the one that failed."""
    from .push import PushOptions, run as push
    digests = {}
    for ref in refs:
        digests[ref] = push(engine, PushOptions(image=ref, target=ref, registry=split_reference(ref)[0],
                                                username=None), say, env)
        say(f"pushed {ref} digest {digests[ref]}")
    return digests


def attest_all(engine, digests: Mapping[str, str], report, say) -> dict:
    """--attest: the SBOM documents the build wrote, attached beside each pushed reference in its
    registry (check/attest.py); returns {reference: digest of the index the tag names now}. An
    up-to-date skip wrote none, and its push replaced what the tag named: its documents are made
    again from the image, as `sbom IMAGE` makes them."""
    from ..check import attest, sbom
    from ..fetch.registry import Registry
    if report.sbom:
        docs = {fmt: Path(path).read_bytes() for fmt, path in report.sbom.items()}
    else:
        docs = sbom.documents(sbom.subject(engine, report.image_id, report.image),
                              sbom.contents(engine, report.image_id))
    out = {}
    for ref, pushed in digests.items():
        host, name, tag = split_reference(ref)
        registry = Registry(host, name, engine.registry_login(host), insecure=engine.insecure_registry(host))
        out[ref] = attest.attach(registry, ref, tag, docs)
        say(f"attested {ref}: {', '.join(sorted(docs))} SBOM beside image {pushed}, index {out[ref]}")
    return out


def _engine(options: opts.Common, env):
    """Connect to the engine, once the build dir is known to be usable. Imported here so that a
    dry run, --help and bad flags never load the Docker SDK."""
    from ..engine.api import Engine
    BuildDir.check(options.build_dir, options.home)
    return Engine(options.docker_host, env)


def disk_places(common: opts.Common) -> tuple:
    """Where a build writes, most specific first, with what to do when that disk refuses."""
    cache_fix = "set MUSA_DOCKER_CACHE to a writable dir with room, or free space there"
    return (
        (common.build_dir, "the build dir (--build-dir)", "name a --build-dir on a writable disk with room"),
        (common.sbom_dir, "the SBOM dir (--sbom)", "name a --sbom dir on a writable disk with room"),
        (common.cache_dir / "builds", "the build dir", f"{cache_fix}, or name a --build-dir elsewhere"),
        (common.cache_dir / "trees", "the cache of packed source trees", cache_fix),
        (common.cache_dir, "the cache dir", cache_fix),
    )


def write_metadata(path: Path, plan, report, digests: Mapping[str, str] = {}) -> None:
    """The build's result as JSON for CI, written whole or not at all (a temp file renamed into
    place). Raises DiskError through the caller's disk_errors."""
    labels = report.labels or {}
    data = {
        "image": report.image,
        "tags": list(plan.build.refs),
        "digests": dict(digests),
        "image_id": report.image_id,
        "size": report.size,
        "kind": plan.kind,
        "python_version": plan.python_version,
        "inputs_digest": labels.get("musa_docker.inputs"),
        "up_to_date": report.skipped,
        "seconds": round(report.seconds, 1),
        "builder": plan.build.builder.kind,
        "compile_cache": labels.get("musa_docker.compile_cache"),
        "build_log": str(report.log) if report.log else None,
        "largest_layers": [{"step": layer.step, "size": layer.size} for layer in report.sizes.largest()]
        if report.sizes else [],
        "sbom": dict(report.sbom),
    }
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
