"""The package's import structure as a contract: no import cycles, layers that import only downward, and reading
a model that reaches no training code. Read from the source with `ast`, so nothing is imported to check it.

Every import counts, at module level or inside a function (a lazy import is still a dependency, only a later
one). `from imcaption.x import y` is an import of the module `imcaption.x.y` where that is a module, else of
`imcaption.x`. Importing `imcaption.x.y` also runs the packages above it, but that is Python's machinery, not a
dependency of the importer: it is not an edge here (the package roots are kept empty or lazy, and
test_reading_imports.py checks what importing really loads). Modules imported by name through importlib (the
export commands of cli/) are not seen; they are named only from the top layer.
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "imcaption"

# The layers, low to high: a module may import modules of its own layer or of a lower one, never of a higher one.
# A group is a top-level module or subpackage of imcaption (a subpackage's modules share its layer); "__init__"
# is the package root itself.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # Utilities that know no model and no task: the version, atomic files, locks, the one image decode path,
    # tokenizers, manifests, plots, which extra installs a missing module. visualize sits here because the training
    # loop draws its curves with it.
    ("foundation", ("version", "files", "locks", "images", "manifest", "text", "visualize", "extras")),
    # Task-agnostic machinery: the training loop, checkpoints, devices, precision, searches. It serves every
    # task, so it never names one, nor a model.
    ("engine", ("engine",)),
    # Pure nn.Modules; they decode with engine.search and never know which task trains them.
    ("models", ("models",)),
    # The two tasks, each with its training task and its PyTorch reader; they share the layers below only.
    ("tasks", ("captcha", "captioning")),
    # ONNX export and the ONNX Runtime readers of both tasks, built on the tasks' reading types.
    ("deploy", ("deploy",)),
    # The one place that picks a backend for a model file; the package root re-exports it lazily.
    ("api", ("api", "__init__")),
    # The HTTP service serves a model through the API; it knows nothing of argument parsing.
    ("serve", ("serve",)),
    # The command line parses arguments and calls everything below, the service included.
    ("cli", ("cli", "__main__")),
]

# Groups in one layer that must not import each other: a task neither knows nor needs the other.
INDEPENDENT: list[tuple[str, str]] = [("captcha", "captioning")]

# Reading a model (everything `imcaption.api` reaches, lazily or not) must never reach the training code: the
# loop, the training tasks and what only they use. visualize imports matplotlib, which switches to the Agg backend
# on import and costs a second; augment and image_cache are training's input pipeline.
READING_ENTRY = "imcaption.api"
TRAINING_MODULES = frozenset(
    {
        "imcaption.engine.loop",
        "imcaption.engine.task",
        "imcaption.engine.records",
        "imcaption.engine.training_state",
        "imcaption.engine.run",
        "imcaption.engine.distributed",
        "imcaption.captcha.task",
        "imcaption.captcha.augment",
        "imcaption.captcha.image_cache",
        "imcaption.captioning.task",
        "imcaption.visualize",
    }
)

Edge = tuple[str, str]  # (importer, imported)


def module_files(src: Path) -> dict[str, Path]:
    """Every module of the package by dotted name, with its file relative to `src`; a package by its own name
    (its __init__.py)."""
    modules = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path.relative_to(src)
    return modules


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a `from ... import` names, relative imports resolved against the importer's package."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    anchor = package[: len(package) - node.level + 1]
    return ".".join(anchor + ([node.module] if node.module else []))


def imported_modules(module: str, source: Path, modules: dict[str, Path]) -> dict[str, int]:
    """The package's modules `module` imports anywhere in its source, each with the line of its first import."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, source, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                found.setdefault(target, node.lineno)
    return found


def import_graph(src: Path = SRC) -> tuple[dict[str, dict[str, int]], dict[str, Path]]:
    """module -> {imported module: line}, and each module's file relative to `src`."""
    modules = module_files(src)
    graph = {name: imported_modules(name, src / path, modules) for name, path in modules.items()}
    return graph, modules


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None; depth first, in name order, so the report is stable."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done or node not in graph:
            return None
        for target in sorted(graph[node]):
            cycle = visit(target, path + [node])
            if cycle:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle:
            return cycle
    return None


def group(module: str) -> str:
    """The layer table's name for a module: its top-level module or subpackage under imcaption."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer_violations(graph: dict[str, dict[str, int]], modules: dict[str, Path]) -> list[str]:
    """Each import that goes up a layer or between independent groups, as 'file:line: what is wrong'."""
    rank = {name: (level, layer) for level, (layer, names) in enumerate(LAYERS) for name in names}
    apart = {frozenset(pair) for pair in INDEPENDENT}
    problems = []
    for importer, targets in sorted(graph.items()):
        for target, line in sorted(targets.items()):
            where = f"{modules[importer]}:{line}: {importer}"
            if group(importer) not in rank or group(target) not in rank:
                continue  # reported by test_every_module_has_a_layer
            (mine, my_layer), (theirs, their_layer) = rank[group(importer)], rank[group(target)]
            pair = frozenset((group(importer), group(target)))
            if theirs > mine:
                problems.append(f"{where} (layer {my_layer}) imports {target} (layer {their_layer})")
            elif pair in apart:
                problems.append(f"{where} imports {target}: {' and '.join(sorted(pair))} must not import each other")
    return problems


def path_to(graph: dict[str, dict[str, int]], start: str, goals: frozenset[str]) -> list[str] | None:
    """The shortest import chain from `start` to any of `goals`, or None (breadth first)."""
    came_from: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node in goals:
            chain = [node]
            while (parent := came_from[chain[-1]]) is not None:
                chain.append(parent)
            return chain[::-1]
        for target in sorted(graph.get(node, {})):
            if target not in came_from:
                came_from[target] = node
                queue.append(target)
    return None


@pytest.fixture(scope="module")
def package() -> tuple[dict[str, dict[str, int]], dict[str, Path]]:
    return import_graph()


def test_every_import_names_a_module_of_the_package(package: tuple[dict, dict]) -> None:
    graph, modules = package
    unknown = [f"{importer} imports {t}" for importer, targets in graph.items() for t in targets if t not in modules]
    assert not unknown, f"imports of names that are no module of {PACKAGE}: {unknown}"


def test_the_graph_sees_module_level_and_function_level_imports(package: tuple[dict, dict]) -> None:
    """A guard on the reader itself: an empty or shallow graph would pass every rule below."""
    graph, _ = package
    assert "imcaption.captcha.recognizer" in graph["imcaption.api"]  # module level, `from x.y import Name`
    assert "imcaption.models.mobilenet_v2" in graph["imcaption.captioning.captioner"]  # inside a method
    assert "imcaption.api" in graph["imcaption"]  # inside the root's __getattr__, `from imcaption import api`
    assert sum(map(len, graph.values())) > 150


def test_there_is_no_import_cycle(package: tuple[dict, dict]) -> None:
    graph, _ = package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_module_has_a_layer(package: tuple[dict, dict]) -> None:
    _, modules = package
    placed = {name for _, names in LAYERS for name in names}
    missing = sorted({group(module) for module in modules} - placed)
    assert not missing, f"{missing}: in no layer of tests/test_imports.py's LAYERS; add each where it belongs"


def test_no_layer_imports_a_higher_one_and_the_tasks_stay_apart(package: tuple[dict, dict]) -> None:
    graph, modules = package
    problems = layer_violations(graph, modules)
    assert not problems, "imports against the layers (LAYERS in tests/test_imports.py):\n" + "\n".join(problems)


def test_reading_reaches_no_training_code(package: tuple[dict, dict]) -> None:
    graph, _ = package
    chain = path_to(graph, READING_ENTRY, TRAINING_MODULES)
    assert chain is None, "reading imports training code: " + " -> ".join(chain or [])


def _write_package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checks_catch_a_lazy_cycle_an_upward_import_and_a_task_importing_the_other(tmp_path: Path) -> None:
    """The rules above, on a made-up package that breaks each of them, so that they are known to bite."""
    _write_package(
        tmp_path,
        {
            "__init__.py": "",
            "api.py": "from imcaption.captcha import recognizer\n",
            "captcha/__init__.py": "",
            "captcha/recognizer.py": "def load():\n    from .task import FORMAT\n",
            "captcha/task.py": "import imcaption.engine.loop\nfrom imcaption.captioning.task import X\n",
            "captioning/__init__.py": "",
            "captioning/task.py": "X = 1\n",
            "engine/__init__.py": "",
            "engine/loop.py": "def run():\n    from imcaption import api\n",
        },
    )
    graph, modules = import_graph(tmp_path)
    assert graph["imcaption.api"] == {"imcaption.captcha.recognizer": 1}  # the submodule, not the package
    assert graph["imcaption.captcha.recognizer"] == {"imcaption.captcha.task": 2}  # relative, in a function
    assert find_cycle(graph) == [
        "imcaption.api",
        "imcaption.captcha.recognizer",
        "imcaption.captcha.task",
        "imcaption.engine.loop",
        "imcaption.api",
    ]
    problems = layer_violations(graph, modules)
    assert problems == [
        "imcaption/captcha/task.py:2: imcaption.captcha.task imports imcaption.captioning.task: captcha and "
        "captioning must not import each other",
        "imcaption/engine/loop.py:2: imcaption.engine.loop (layer engine) imports imcaption.api (layer api)",
    ]
    chain = path_to(graph, "imcaption.api", TRAINING_MODULES)
    assert chain == ["imcaption.api", "imcaption.captcha.recognizer", "imcaption.captcha.task"]
