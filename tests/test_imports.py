"""The package's modules form a stack: no module imports, directly or through others, one
that imports it back."""

import ast
import importlib
from pathlib import Path

import musa_docker

PACKAGE = Path(musa_docker.__file__).parent


def _graph():
    graph = {}
    for path in sorted(PACKAGE.glob("*.py")):
        name = path.stem
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    deps.add(node.module.split(".")[0])
                else:
                    deps.update(alias.name for alias in node.names)
        graph[name] = deps & {p.stem for p in PACKAGE.glob("*.py")}
    return graph


def test_every_module_imports_on_its_own():
    for name in _graph():
        if name == "__main__":      # runs the program when imported
            continue
        importlib.import_module(f"musa_docker.{name}")


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


def test_the_leaves_import_nothing_of_the_package_above_them():
    graph = _graph()
    assert graph["util"] == set() and graph["assets"] == set() and graph["errors"] == set()
    assert graph["paths"] <= {"errors"}
    assert "plan" not in graph["options"] and "context" not in graph["options"]


def test_no_import_runs_back_up_the_stack():
    """A lower layer never imports a higher one: the steps sit above the plan, the task
    adapters above the steps."""
    graph = _graph()
    layers = _layers()
    rank = {name: i for i, layer in enumerate(layers) for name in layer}
    for name, deps in graph.items():
        if name not in rank:
            continue
        upward = [d for d in deps if rank.get(d, -1) > rank[name]]
        assert not upward, f"{name} imports {upward} from above it"


def _layers():
    return [
        # facts, grammar and tables: no step, no flow
        {"errors", "util", "assets", "paths", "kinds", "defaults", "locations", "refs", "validate", "yamlfile",
         "arch", "locks", "aptrepo", "network", "client", "flags", "wheelname", "dockerfile"},
        # what the inputs are: the MUSA SDK, the pins file, each input's value and source
        {"sdk", "pins", "inputs", "components"},
        {"options", "shellopts"},
        {"plan"},
        # what the steps stand on: the engine, git, the cache and HTTP, the build dir, the build log
        {"engine", "repos", "cache", "transfer", "builddir", "buildlog", "probe", "host"},
        # the steps: observe, prepare (download, archives, context), build, check
        {"observe", "stream", "parts", "download", "archives", "context", "layers", "buildkit", "build", "checks"},
        # one library function per task
        {"pipeline", "verify", "shell", "push", "matrix", "pinstask"},
        {"commands"},
        {"tasks", "cli", "__main__"},
    ]


def test_every_module_has_its_place_in_the_stack():
    """A new module is given a layer above, so an import running back up from it is caught."""
    placed = {name for layer in _layers() for name in layer}
    unplaced = sorted(set(_graph()) - placed - {"__init__"})
    assert not unplaced, f"{unplaced}: add each to a layer of test_no_import_runs_back_up_the_stack"
