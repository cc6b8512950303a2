"""The import graph of src/desta: every arrow points down the layers, and no module imports itself back.

Read from the source (ast), not by importing: every ``import`` counts, including those inside functions
(a lazy import is still an arrow). Only imports under ``if TYPE_CHECKING:`` are left out (they never run).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "desta"

# From the bottom up; a module may import its own floor or any floor below it, never one above.
LAYERS: list[tuple[str, ...]] = [
    ("desta.errors",),
    ("desta.audio", "desta.endpoints", "desta.rules"),
    ("desta.messages",),
    ("desta.model",),
    ("desta.data", "desta.infer", "desta"),  # "desta": the package's lazy public API (desta/__init__.py)
    ("desta.train",),
    ("desta.serve", "desta.eval"),
    ("desta.recipes",),
    ("desta.cli", "desta.__main__"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> tuple[int, str]:
    """(floor, the layer's name) of a module: the longest layer name that is the module or its package."""
    best: tuple[int, str] | None = None
    for floor, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (best is None or len(name) > len(best[1])):
                best = (floor, name)
    assert best is not None, f"{module} is in no layer of tests/test_layers.py: place it in LAYERS"
    return best


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _Imports(ast.NodeVisitor):
    """Every import of a ``desta`` module in one file, with its line; ``if TYPE_CHECKING:`` bodies skipped."""

    def __init__(self, module: str, is_package: bool, known: set[str]) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.known = known
        self.found: list[tuple[str, int]] = []

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            for child in node.orelse:
                self.visit(child)
        else:
            self.generic_visit(node)

    def _add(self, target: str, line: int) -> None:
        if target == "desta" or target.startswith("desta."):
            # the longest known module that the name is or lies in (``desta.model.load.load_model`` -> ``desta.model.load``)
            while target not in self.known and "." in target:
                target = target.rpartition(".")[0]
            self.found.append((target, line))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:
            full = f"{source}.{alias.name}"
            self._add(full if full in self.known else source, node.lineno)


def import_graph() -> dict[str, list[tuple[str, str]]]:
    """module -> [(imported module, "path:line")], imports of the module itself left out."""
    files = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    known = set(files)
    graph: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for module, path in files.items():
        visitor = _Imports(module, path.name == "__init__.py", known)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        where = path.relative_to(SRC.parent)
        for target, line in visitor.found:
            edge = (target, f"{where}:{line}")
            if target != module and edge not in graph[module]:
                graph[module].append(edge)
        graph.setdefault(module, [])
    return dict(graph)


def _is_ancestor(package: str, module: str) -> bool:
    return module.startswith(package + ".")


def cycles(graph: dict[str, list[tuple[str, str]]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative).

    A module naming its own package (``desta.x.y`` importing ``desta.x``) adds no arrow: Python runs a
    package's ``__init__`` before any of its modules anyway, and a package that imports its own modules
    lazily is no circle.
    """
    graph = {m: [(t, w) for t, w in edges if not _is_ancestor(t, m)] for m, edges in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted({t for t, _ in graph[root]})))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted({t for t, _ in graph[child]}))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_every_module_has_a_layer():
    for module in import_graph():
        layer_of(module)


def test_no_import_points_up_a_layer():
    order = " < ".join("/".join(n.removeprefix("desta.") for n in names) for names in LAYERS)
    wrong = []
    for module, imports in sorted(import_graph().items()):
        floor, name = layer_of(module)
        for target, where in imports:
            target_floor, target_name = layer_of(target)
            if target_floor > floor:
                wrong.append(f"{where}: {module} ({name}) imports {target} ({target_name}), a higher layer")
    assert not wrong, f"imports against the layer order ({order}):\n" + "\n".join(wrong)


def test_no_import_cycles():
    graph = import_graph()
    messages = []
    for component in cycles(graph):
        members = set(component)
        edges = [f"  {where}: {m} imports {t}" for m in component for t, where in graph[m] if t in members]
        messages.append(f"a cycle of {len(component)} modules ({', '.join(component)}):\n" + "\n".join(edges))
    assert not messages, "import cycles (lazy imports count; only `if TYPE_CHECKING:` is left out):\n" + "\n".join(
        messages
    )


def test_the_checker_sees_lazy_imports_and_skips_type_checking(tmp_path):
    code = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from desta.infer import options\n"
        "def f():\n    from desta.model.load import load_model\n    import desta.serve\n"
        "from . import config\n"
    )
    visitor = _Imports("desta.model.x", False, {"desta.model.load", "desta.serve", "desta.model.config"})
    visitor.visit(ast.parse(code))
    assert visitor.found == [("desta.model.load", 5), ("desta.serve", 6), ("desta.model.config", 7)]
    graph = {"a": [("b", "a.py:1")], "b": [("c", "b.py:1")], "c": [("a", "c.py:1")], "d": [("a", "d.py:1")]}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"p": [("p.m", "p.py:1")], "p.m": [("p", "p/m.py:1")]}) == []
