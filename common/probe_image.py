# Asks an image what it holds. musa_docker sends this file to the image's own `python` (2 or 3)
# as `python -c TEXT SPEC`, since the image need not contain it; SPEC is JSON:
#   {"imports": [module...], "installed": [distribution...], "trees": {name: dir},
#    "env": [variable...], "paths": [path...], "dists": true, "contents": true}   (every key
#    optional; dists: list the names of every installed distribution; contents: the OS, every dpkg
#    package and every distribution with its version, for the image's SBOM)
# Each answer is one line `@@py TAG JSON`, flushed at once, so that a crash inside an import still
# leaves what came before and names the import it died in. Tags, in order: info, then importing
# and import per module, then installed, commits, env, paths, os, dpkg, distributions, musa_wheels,
# dists, done.
import importlib
import json
import os
import sys


def emit(tag, data):
    sys.stdout.write("\n@@py %s %s\n" % (tag, json.dumps(data)))
    sys.stdout.flush()


def commit(path):
    """The commit the tree at `path` is at, read from .git, so the image needs no git for it."""
    git = os.path.join(path, ".git")
    try:
        if os.path.isfile(git):
            git = os.path.join(path, open(git).read().split(":", 1)[1].strip())
        head = open(os.path.join(git, "HEAD")).read().strip()
    except (OSError, IOError, IndexError):
        return None
    if not head.startswith("ref: "):
        return head
    ref = head[5:]
    try:
        return open(os.path.join(git, ref)).read().strip()
    except (OSError, IOError):
        pass
    try:
        for line in open(os.path.join(git, "packed-refs")):
            if line.strip().endswith(" " + ref):
                return line.split()[0]
    except (OSError, IOError):
        pass
    return None


def installed(name):
    try:
        from importlib import metadata
        return metadata.version(name)
    except Exception:
        return None


def os_release():
    """/etc/os-release (else /usr/lib/os-release) as a dict: ID, VERSION_ID, PRETTY_NAME..."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            found = {}
            for line in open(path):
                key, sep, value = line.strip().partition("=")
                if sep and key:
                    found[key] = value.strip().strip("\"'")
            return found
        except (OSError, IOError):
            continue
    return {}


def dpkg_packages():
    """[name, version, architecture] of every package dpkg's database marks installed, read from
    its status file, so the image needs no dpkg-query."""
    found = []
    try:
        text = open("/var/lib/dpkg/status").read()
    except (OSError, IOError):
        return found
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line[:1] not in (" ", "\t") and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields.get("Package") and fields.get("Status", "").endswith(" installed"):
            found.append([fields["Package"], fields.get("Version", ""), fields.get("Architecture", "")])
    return sorted(found)


def distributions():
    """[name, version] of every distribution the image's python sees."""
    try:
        from importlib import metadata
        return sorted(set((d.metadata["Name"] or "", d.version or "") for d in metadata.distributions()
                          if d.metadata["Name"]))
    except Exception:
        pass
    try:
        import pkg_resources
        return sorted(set((d.project_name, d.version) for d in pkg_resources.working_set))
    except Exception:
        return []


def musa_wheels():
    """[name, version, sha256, file] of each wheel install_musa_wheels.sh installed from the MUSA index."""
    try:
        lines = open(os.path.join(sys.prefix, "musa-docker-musa-wheels.tsv")).read().splitlines()
    except (OSError, IOError):
        return []
    return [line.split("\t") for line in lines if line.count("\t") == 3]


spec = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
emit("info", {"version": "%d.%d.%d" % tuple(sys.version_info[:3]), "prefix": sys.prefix,
              "executable": sys.executable})
for name in spec.get("imports", ()):
    emit("importing", name)
    try:
        module = importlib.import_module(name)
        emit("import", {"name": name, "ok": True, "version": str(getattr(module, "__version__", "") or "")})
    except BaseException as err:
        emit("import", {"name": name, "ok": False, "error": "%s: %s" % (type(err).__name__, err)})
emit("installed", dict((name, installed(name)) for name in spec.get("installed", ())))
emit("commits", dict((name, commit(path)) for name, path in spec.get("trees", {}).items()))
emit("env", dict((name, os.environ.get(name)) for name in spec.get("env", ())))
emit("paths", dict((path, os.path.exists(path)) for path in spec.get("paths", ())))
if spec.get("contents"):
    emit("os", os_release())
    emit("dpkg", dpkg_packages())
    emit("distributions", distributions())
    emit("musa_wheels", musa_wheels())
if spec.get("dists"):
    try:
        from importlib import metadata
        emit("dists", sorted(set(d.metadata["Name"] or "" for d in metadata.distributions())))
    except Exception:
        emit("dists", [])
emit("done", True)
