"""The import graph of ``nbdistill/``: no cycle, and ``core/`` imports nothing above it.

Every ``import`` and ``from … import`` of every module is read with :mod:`ast` (module level and
inside functions; relative imports resolved; ``from pkg import sub`` counts as importing the
submodule ``pkg.sub`` when it is one), and so is ``importlib.import_module("literal")``, the way
the registries' entry points reach the layers above core. Imports under ``if TYPE_CHECKING:`` are
left out: they never run. Implicit imports of parent packages are not edges (a package's
``__init__`` importing its own submodules would otherwise be a cycle every time).

The layers (DESIGN.md, "Layers"): ``core/`` is below ``data/``, ``models/``, ``families/``,
``widgets/``, ``server/`` and the package's facade (``nbdistill/__init__.py``). Those register
into core's registries (methods, views, the drawer), and core reaches them only through the entry
points named in :data:`ENTRY_POINTS`. An entry point is a loader called after both sides are
imported (``methods()`` importing the families that import the registry), so its edges are left
out of the cycle check: they are the one sanctioned way up, listed here by name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "nbdistill"
ABOVE_CORE = ("nbdistill.widgets", "nbdistill.families", "nbdistill.server", "nbdistill.data", "nbdistill.models")
FACADE = "nbdistill"  # the package itself: its ``__init__`` reaches every layer

#: (module, function) of core allowed to import a layer above core, and what it imports: the
#: registries' entry points, which load the layers that register themselves into core.
ENTRY_POINTS = {
    ("nbdistill.core.registry", "_load_families"): {"nbdistill.families", "nbdistill.data"},
    ("nbdistill.core.views", "_load_views"): {"nbdistill.families", "nbdistill.widgets.views"},
    ("nbdistill.core.views", "default_drawer"): {"nbdistill.widgets.views"},
}

#: Upward imports of core that remain, each with the reason and the fix. Keep this short: an
#: entry here is debt (issue 11), not a second list of allowed imports. Like the entry points, they
#: are left out of the cycle check; the last test fails once one is fixed, to take it off the list.
KNOWN_UPWARD = {}


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, function: str | None) -> Iterator[tuple[ast.AST, str | None]]:
    """Every node under ``node`` with its outermost enclosing function, skipping ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield other, function
                yield from _walk(other, function)
            continue
        inner = function
        if function is None and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner = child.name
        yield child, inner
        yield from _walk(child, inner)


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    if not level:
        return name or ""
    base = module.split(".")
    base = base[: len(base) - level + (1 if is_package else 0)]
    return ".".join(base + ([name] if name else []))


def imports_of(module: str, path: Path, known: set[str]) -> list[tuple[str, str | None]]:
    """``(imported nbdistill module, enclosing function or None)`` for each import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: list[tuple[str, str | None]] = []

    def add(target: str, function: str | None) -> None:
        # the longest known module that ``target`` names (``nbdistill.core.run.EventLog`` -> ``nbdistill.core.run``)
        parts = target.split(".")
        while parts and ".".join(parts) not in known:
            parts.pop()
        if parts:
            found.append((".".join(parts), function))

    for node, function in _walk(tree, None):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, function)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                add(submodule if submodule in known else base, function)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, (ast.Attribute, ast.Name))
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            target = node.args[0].value
            if target.startswith("."):
                level = len(target) - len(target.lstrip("."))
                target = _resolve(module, is_package, level, target.lstrip(".") or None)
            add(target, function)
    return found


def import_graph(root: Path = PACKAGE) -> dict[str, dict[str, set[str | None]]]:
    """``{module: {imported module: {enclosing functions (None: module level)}}}`` over the package at ``root``."""
    modules = all_modules(root)
    known = set(modules)
    graph: dict[str, dict[str, set[str | None]]] = {}
    for name, path in modules.items():
        edges: dict[str, set[str | None]] = {}
        for target, function in imports_of(name, path, known):
            if target != name:
                edges.setdefault(target, set()).add(function)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, set]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
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


def upward_imports(graph: dict[str, dict[str, set[str | None]]]) -> dict[tuple[str, str | None], set[str]]:
    """``{(core module, function): {modules above core it imports}}``."""
    found: dict[tuple[str, str | None], set[str]] = {}
    for module, edges in graph.items():
        if module != "nbdistill.core" and not module.startswith("nbdistill.core."):
            continue
        for target, functions in edges.items():
            if target == FACADE or any(target == layer or target.startswith(layer + ".") for layer in ABOVE_CORE):
                for function in functions:
                    found.setdefault((module, function), set()).add(target)
    return found


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def without(graph: dict[str, dict[str, set]], edges: dict[tuple[str, str | None], set[str]]) -> dict[str, dict[str, set]]:
    """``graph`` less the imports ``{(module, function): {targets}}``."""
    kept: dict[str, dict[str, set]] = {}
    for module, targets in graph.items():
        kept[module] = {}
        for target, functions in targets.items():
            left = {f for f in functions if target not in edges.get((module, f), set())}
            if left:
                kept[module][target] = left
    return kept


def test_the_import_graph_of_nbdistill_has_no_cycle(graph):
    found = cycles(without(graph, {**ENTRY_POINTS, **KNOWN_UPWARD}))
    assert not found, "import cycles among nbdistill modules:\n" + "\n".join(" -> ".join(c) for c in found)


def test_core_imports_nothing_above_it_but_through_the_registry_entry_points(graph):
    found = upward_imports(graph)
    allowed = {**ENTRY_POINTS, **KNOWN_UPWARD}
    bad = {where: targets - allowed.get(where, set()) for where, targets in found.items()}
    bad = {where: targets for where, targets in bad.items() if targets}
    assert not bad, "core imports a layer above it: " + "; ".join(
        f"{module}{'.' + function if function else ' (module level)'} imports {sorted(targets)}"
        for (module, function), targets in sorted(bad.items(), key=str)
    )


def test_the_listed_entry_points_and_exceptions_exist(graph):
    """A fixed exception or a renamed entry point is taken off the lists, which stay true."""
    found = upward_imports(graph)
    stale = {
        where: targets for where, targets in {**ENTRY_POINTS, **KNOWN_UPWARD}.items() if not targets <= found.get(where, set())
    }
    assert not stale, f"listed upward imports that no longer happen (remove them from the lists): {stale}"


# -- the walker itself ----------------------------------------------------------------------------


def _graph_of(tmp_path: Path, files: dict[str, str]) -> dict:
    root = tmp_path / "nbdistill"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return import_graph(root)


def test_the_walker_sees_relative_function_level_and_importlib_imports_and_skips_type_checking(tmp_path):
    graph = _graph_of(
        tmp_path,
        {
            "__init__.py": "",
            "core/__init__.py": "",
            "core/a.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from ..widgets import w\n"
                "def f():\n    from ..families import fam\n"
                "def g():\n    import importlib\n    importlib.import_module('nbdistill.widgets.w')\n"
            ),
            "core/b.py": "from . import a\nfrom .a import f\n",
            "widgets/__init__.py": "",
            "widgets/w.py": "from ..core.b import x\n",
            "families/__init__.py": "",
            "families/fam.py": "import nbdistill.core.a\n",
        },
    )
    assert graph["nbdistill.core.a"] == {"nbdistill.families.fam": {"f"}, "nbdistill.widgets.w": {"g"}}
    assert graph["nbdistill.core.b"] == {"nbdistill.core.a": {None}}
    assert cycles(graph) == [["nbdistill.core.a", "nbdistill.core.b", "nbdistill.families.fam", "nbdistill.widgets.w"]]
    assert upward_imports(graph) == {
        ("nbdistill.core.a", "f"): {"nbdistill.families.fam"},
        ("nbdistill.core.a", "g"): {"nbdistill.widgets.w"},
    }
