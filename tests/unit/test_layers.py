"""The package is a stack of folders, each importing only the folders below it, and no module
imports, directly or through others, one that imports it back."""

import ast
import importlib
from pathlib import Path

import musa_docker

PACKAGE = Path(musa_docker.__file__).parent

# Bottom to top. The root modules are the footing every folder stands on; the program (`tasks`,
# `cli`, `__main__`) sits on top. A folder imports its own modules and the folders below it.
STACK = [
    ("footing", {"errors", "util", "resources", "defaults"}),
    ("values", None),      # the grammar of what users type: paths, refs, locations, YAML, wheel names
    ("musa", None),        # archs, image kinds, components, the SDK routes, the apt repo, pins, vendor archives
    ("engine", None),      # the Docker SDK, the docker CLI and the builder choice, host facts
    ("options", None),     # flags, the cascade of values, the frozen options per task
    ("plan", None),        # the pure plan and the Dockerfile rendering
    ("fetch", None),       # downloads, the cache, HTTP, git repos, locks
    ("check", None),       # the in-image probe, the post-build check, verify
    ("pipeline", None),    # observe, the build dir, the context, the builders, prepare -> build -> check -> report
    ("commands", None),    # one module per task
    ("program", {"cli", "__main__"}),
]


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return ".".join(rel.parts)


def _modules():
    return sorted(_module_name(p) for p in PACKAGE.rglob("*.py") if "_data" not in p.parts)


def _resolve(module: str, node: ast.ImportFrom) -> list:
    """The package modules that `from . import x` / `from ..x import y` in `module` names."""
    package = module.split(".")[:-1]                  # a/b.py and a/__init__.py both sit in a
    base = package[:len(package) - (node.level - 1)]
    target = base + (node.module.split(".") if node.module else [])
    names = set(_modules())
    if ".".join(target) in names:
        return [".".join(target)]
    found = [".".join(target + [a.name]) for a in node.names if ".".join(target + [a.name]) in names]
    return found + [n for n in [".".join(target + ["__init__"])] if n in names]


def _graph():
    graph = {}
    for name in _modules():
        path = PACKAGE / (name.replace(".", "/") + ".py")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 1:
                deps.update(_resolve(name, node))
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("musa_docker"):
                raise AssertionError(f"{name} imports {node.module} absolutely: import it relatively")
        graph[name] = deps - {name}
    return graph


def _layer(module: str) -> int:
    first = module.split(".")[0]
    if module == "__init__":                           # the package's face: its version
        return 0
    for rank, (folder, members) in enumerate(STACK):
        if (members is not None and module in members) or (members is None and first == folder):
            return rank
    raise AssertionError(f"{module}: give it a folder of STACK (or a place among its root modules)")


def test_every_module_imports_on_its_own():
    for name in _modules():
        if name.endswith("__main__"):      # runs the program when imported
            continue
        parts = [p for p in name.split(".") if p != "__init__"]
        importlib.import_module(".".join(["musa_docker"] + parts))


def test_every_module_sits_in_a_folder_of_the_stack():
    for name in _modules():
        if name.split(".")[-1] == "__init__":
            continue
        _layer(name)


def test_the_folders_are_what_the_stack_names():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == {folder for folder, members in STACK if members is None}


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    state = {}

    def visit(name, trail):
        if state.get(name) == "done":
            return
        assert state.get(name) != "open", "import cycle: " + " -> ".join(trail + [name])
        state[name] = "open"
        for dep in sorted(graph[name]):
            visit(dep, trail + [name])
        state[name] = "done"

    for name in graph:
        visit(name, [])


def test_no_import_runs_back_up_the_stack():
    """A folder imports only itself and the folders below it: the steps sit above the plan, the
    commands above the steps."""
    for name, deps in _graph().items():
        if name.split(".")[-1] == "__init__":
            continue
        upward = sorted(d for d in deps if _layer(d) > _layer(name))
        assert not upward, f"{name} imports {upward} from above it"


def test_the_footing_imports_nothing_of_the_package_but_itself():
    graph = _graph()
    for name in STACK[0][1]:
        assert graph[name] <= STACK[0][1], (name, graph[name])
    assert graph["errors"] == set() and graph["util"] == set() and graph["resources"] == set()


def test_only_the_engine_api_imports_docker():
    importers = []
    for name in _modules():
        tree = ast.parse((PACKAGE / (name.replace(".", "/") + ".py")).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "docker" for a in node.names):
                importers.append(name)
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "docker":
                importers.append(name)
    assert sorted(set(importers)) == ["engine.api"]
