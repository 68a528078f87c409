"""The layer contract, checked on the source with ``ast`` (nothing is imported).

Layers, high to low::

    cli
    eval, web                 (independent of each other)
    app                       (the use cases, export among them)
    exporter                  (the writers: folders, index.json, pages, thumbnails, XMP)
    store, grouping, detect   (independent of each other)
    core, version

A module may import its own package and any lower layer, never a higher or a sibling one;
``core`` imports nothing from photocluster outside ``core``, and ``photocluster.version``
nothing at all. ``photocluster/__init__.py`` and ``__main__.py`` are the public API and may
import anything; no layer imports the root package. Every ``import`` counts, at module level,
inside functions and under ``if TYPE_CHECKING:``.

No import cycle between photocluster modules, counting every import that can run: at module
level and inside functions (a lazy import closes a cycle as surely, only later), not those
under ``TYPE_CHECKING``. No private name (``_name``) is imported from another module: what
two modules share is public. ``sqlite3`` is imported only in ``photocluster.store``, ``dlib``
only in ``photocluster.detect``; so never by the CLI.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = "photocluster"
SOURCE = Path(__file__).resolve().parents[1] / ROOT

LAYERS: dict[str, int] = {
    "core": 0,
    "version": 0,  # photocluster/version.py: __version__, which every layer may read
    "store": 1,
    "grouping": 1,
    "detect": 1,
    "exporter": 2,
    "app": 3,
    "eval": 4,
    "web": 4,
    "cli": 5,
}
PUBLIC_API = frozenset({ROOT, f"{ROOT}.__main__"})
# Third-party modules only one package may import.
CONFINED = {"sqlite3": "store", "dlib": "detect"}


@dataclass(frozen=True)
class Import:
    target: str  # the module imported ("photocluster.store.database", "sqlite3"), resolved
    line: int = 0
    runtime: bool = True  # runs when the importing module is imported (module level, not TYPE_CHECKING)
    name: str | None = None  # `from target import name`, where name is not a module
    typing: bool = False  # under TYPE_CHECKING: never runs

    def describe(self) -> str:
        what = self.target if self.name is None else f"{self.name} from {self.target}"
        return f"line {self.line}: imports {what}" if self.line else f"imports {what}"


Graph = Mapping[str, Sequence[Import]]


# --- reading the source ------------------------------------------------------------------


def module_files(source: Path = SOURCE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    modules = {}
    for path in sorted(source.rglob("*.py")):
        parts = path.relative_to(source.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _base(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The module a ``from`` import names, relative imports resolved."""
    if level == 0:
        return name or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, name] if name else parts)


def parse_imports(module: str, source: str, known: frozenset[str], is_package: bool = False) -> list[Import]:
    """All imports of one module's source: statements anywhere (functions, TYPE_CHECKING
    blocks, try/except) and ``importlib.import_module``/``__import__`` of a literal name.
    ``from package import name`` is an import of ``package.name`` when that is a module."""
    found: list[Import] = []

    def visit(node: ast.AST, runtime: bool, typing: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(a.name, child.lineno, runtime, typing=typing) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _base(module, is_package, child.level, child.module)
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    if sub in known:
                        found.append(Import(sub, child.lineno, runtime, typing=typing))
                    else:
                        name = None if alias.name == "*" else alias.name
                        found.append(Import(base, child.lineno, runtime, name, typing))
            elif isinstance(child, ast.Call) and _dynamic_import(child):
                arg = child.args[0]
                assert isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                found.append(Import(arg.value, child.lineno, False, typing=typing))
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, False, typing)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), False, True)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), runtime, typing)
            else:
                visit(child, runtime, typing)

    visit(ast.parse(source), True, False)
    return found


def _dynamic_import(call: ast.Call) -> bool:
    func = call.func
    called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return (
        called in {"import_module", "__import__"}
        and bool(call.args)
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    )


def package_imports(source: Path = SOURCE) -> dict[str, list[Import]]:
    files = module_files(source)
    known = frozenset(files)
    return {
        module: parse_imports(module, path.read_text(encoding="utf-8"), known, path.name == "__init__.py")
        for module, path in files.items()
    }


# --- the rules ---------------------------------------------------------------------------


def _package(module: str) -> str | None:
    """The layer package of a photocluster module (``store`` for photocluster.store.database)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == ROOT else None


def _allowed(package: str) -> str:
    lower = sorted(p for p, layer in LAYERS.items() if layer < LAYERS[package])
    return ", ".join([package, *lower])


def layer_violations(graph: Graph) -> list[str]:
    """Imports that point up or sideways between layers, and modules in no layer."""
    found = []
    for module, imports in sorted(graph.items()):
        if module in PUBLIC_API or not module.startswith(ROOT + "."):
            continue
        own = _package(module)
        if own not in LAYERS:
            found.append(f"{module}: is in no layer (layers: {', '.join(LAYERS)})")
            continue
        for imp in imports:
            if imp.target != ROOT and not imp.target.startswith(ROOT + "."):
                continue
            if imp.target == ROOT:
                found.append(
                    f"{module}: {imp.describe()}: the public API (photocluster/__init__.py) imports every "
                    f"layer; import from the module that defines it"
                )
                continue
            target = _package(imp.target)
            if target == own:
                continue
            if target not in LAYERS or LAYERS[target] >= LAYERS[own]:
                found.append(f"{module}: {imp.describe()}: {own} may import only {_allowed(own)}")
    return found


def confined_violations(graph: Graph) -> list[str]:
    """sqlite3 outside photocluster.store, dlib outside photocluster.detect."""
    found = []
    for module, imports in sorted(graph.items()):
        for imp in imports:
            top = imp.target.split(".")[0]
            home = CONFINED.get(top)
            if home is not None and _package(module) != home:
                found.append(f"{module}: {imp.describe()}: only {ROOT}.{home} may import {top}")
    return found


def _components(edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    result: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges.get(nxt, ()))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
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
                    result.append(sorted(component))
    return result


def _cycle_path(start: str, members: set[str], edges: Mapping[str, Sequence[str]]) -> list[str]:
    """One cycle through ``start`` inside a strongly connected component (breadth first)."""
    parents: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in edges.get(node, ()):
            if nxt not in members or nxt in parents:
                continue
            parents[nxt] = node
            if nxt == start:
                path = [start]
                while path[-1] != start or len(path) == 1:
                    path.append(parents[path[-1]])
                return path[::-1]
            queue.append(nxt)
    return [start]


def cycles(graph: Graph) -> list[str]:
    """Import cycles between photocluster modules, from every import that can run: at
    module level and inside functions (lazy), not under TYPE_CHECKING."""
    edges: dict[str, list[str]] = {}
    lines: dict[tuple[str, str], int] = {}
    for module, imports in graph.items():
        targets = edges.setdefault(module, [])
        for imp in imports:
            if imp.typing or imp.target not in graph or imp.target == module or imp.target in targets:
                continue
            targets.append(imp.target)
            lines[module, imp.target] = imp.line
    found = []
    for component in _components(edges):
        if len(component) > 1:
            path = _cycle_path(component[0], set(component), edges)
            steps = " -> ".join(
                f"{a} (line {lines[a, b]})" if lines.get((a, b)) else a for a, b in itertools.pairwise(path)
            )
            found.append(f"import cycle among {', '.join(component)}: {steps} -> {path[-1]}")
    return found


def _private(name: str | None) -> bool:
    return name is not None and name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(graph: Graph) -> list[str]:
    """``from x import _y`` where x is another photocluster module: what two modules share
    is public (named without the underscore) in the module that defines it."""
    found = []
    for module, imports in sorted(graph.items()):
        for imp in imports:
            private = _private(imp.name) or _private(imp.target.rsplit(".", 1)[-1])
            if imp.target.startswith(ROOT + ".") and imp.target != module and private:
                found.append(f"{module}: {imp.describe()}: a private name of another module; make it public there")
    return found


# --- the contract, on photocluster -------------------------------------------------------


def _report(problems: list[str]) -> str:
    return f"{len(problems)} violation(s) of the layer contract:\n  " + "\n  ".join(problems)


def test_the_walk_sees_every_layer() -> None:
    graph = package_imports()
    packages = {_package(m) for m in graph}
    assert set(LAYERS) <= packages, f"layer packages not found under {SOURCE}: {set(LAYERS) - packages}"
    assert sum(len(imports) for imports in graph.values()) > 50


def test_layers_import_only_downwards() -> None:
    problems = layer_violations(package_imports())
    assert not problems, _report(problems)


def test_no_import_cycles() -> None:
    problems = cycles(package_imports())
    assert not problems, _report(problems)


def test_no_private_name_is_imported_from_another_module() -> None:
    problems = private_imports(package_imports())
    assert not problems, _report(problems)


def test_sqlite3_only_in_store_and_dlib_only_in_detect() -> None:
    problems = confined_violations(package_imports())
    assert not problems, _report(problems)


# --- the checker, on made-up modules (so the contract cannot pass by seeing nothing) -----


def test_checker_reports_wrong_way_imports_cycles_private_names_and_confined_modules() -> None:
    graph: dict[str, list[Import]] = {
        "photocluster": [Import("photocluster.cli.application"), Import("photocluster.app.a")],
        "photocluster.version": [],
        "photocluster.core.types": [Import("numpy")],
        "photocluster.core.config": [Import("photocluster.core.types"), Import("photocluster.store.db", 7)],
        "photocluster.store.db": [
            Import("sqlite3"),
            Import("photocluster.core.types"),
            Import("photocluster.version", name="__version__"),
            Import("photocluster.store.rows", 5, runtime=False),  # lazy, inside a function
        ],
        "photocluster.store.rows": [Import("photocluster.store.db", 6, name="connect")],
        "photocluster.grouping.graph": [Import("photocluster.detect.faces", 3, runtime=False)],
        "photocluster.detect.faces": [
            Import("dlib", runtime=False),
            Import("photocluster.detect.boxes", 8, name="_scale"),
        ],
        "photocluster.detect.boxes": [Import("photocluster", name="__version__")],
        "photocluster.app.a": [Import("photocluster.app.b", 4)],
        "photocluster.app.b": [Import("photocluster.app.a", 9)],
        "photocluster.app.c": [
            Import("photocluster.app.d", runtime=False, typing=True),
            Import("photocluster", name="scan"),
        ],
        "photocluster.app.d": [Import("photocluster.app.c")],
        "photocluster.cli.application": [Import("photocluster.eval.run"), Import("sqlite3", 12)],
        "photocluster.eval.run": [
            Import("photocluster.exporter.run", 2),
            Import("photocluster.web.app", 3),
            Import("dlib.cuda", runtime=False),
        ],
        "photocluster.exporter.run": [Import("photocluster.app.a", 5)],
        "photocluster.web.app": [],
        "photocluster.utils": [],
    }
    assert layer_violations(graph) == [
        "photocluster.app.c: imports scan from photocluster: the public API (photocluster/__init__.py) imports "
        "every layer; import from the module that defines it",
        "photocluster.core.config: line 7: imports photocluster.store.db: core may import only core",
        "photocluster.detect.boxes: imports __version__ from photocluster: the public API "
        "(photocluster/__init__.py) imports every layer; import from the module that defines it",
        "photocluster.eval.run: line 3: imports photocluster.web.app: eval may import only eval, app, core, "
        "detect, exporter, grouping, store, version",
        "photocluster.exporter.run: line 5: imports photocluster.app.a: exporter may import only exporter, core, "
        "detect, grouping, store, version",
        "photocluster.grouping.graph: line 3: imports photocluster.detect.faces: grouping may import only "
        "grouping, core, version",
        f"photocluster.utils: is in no layer (layers: {', '.join(LAYERS)})",
    ]
    # app.c -> app.d runs only under TYPE_CHECKING: not a cycle; store.db -> store.rows runs
    # later (inside a function), and is one.
    assert cycles(graph) == [
        "import cycle among photocluster.app.a, photocluster.app.b: "
        "photocluster.app.a (line 4) -> photocluster.app.b (line 9) -> photocluster.app.a",
        "import cycle among photocluster.store.db, photocluster.store.rows: "
        "photocluster.store.db (line 5) -> photocluster.store.rows (line 6) -> photocluster.store.db",
    ]
    assert private_imports(graph) == [
        "photocluster.detect.faces: line 8: imports _scale from photocluster.detect.boxes: a private name of "
        "another module; make it public there",
    ]
    assert confined_violations(graph) == [
        "photocluster.cli.application: line 12: imports sqlite3: only photocluster.store may import sqlite3",
        "photocluster.eval.run: imports dlib.cuda: only photocluster.detect may import dlib",
    ]


def test_checker_reads_every_kind_of_import() -> None:
    source = """
from __future__ import annotations
import os, sqlite3 as db
from typing import TYPE_CHECKING
from . import helpers
from .helpers import tool
from ..core import config, MISSING
if TYPE_CHECKING:
    from photocluster.store.db import Store
else:
    import json
try:
    import dlib
except ImportError:
    dlib = None
class Thing:
    import math
def later():
    from photocluster.app import a
    import importlib
    return importlib.import_module("photocluster.eval.run")
"""
    known = frozenset({"photocluster.cli.helpers", "photocluster.core.config", "photocluster.app.a"})
    imports = parse_imports("photocluster.cli.scan", source, known)
    got = {(i.target, i.name, i.runtime, i.typing) for i in imports}
    assert got == {
        ("__future__", "annotations", True, False),
        ("os", None, True, False),
        ("sqlite3", None, True, False),
        ("typing", "TYPE_CHECKING", True, False),
        ("photocluster.cli.helpers", None, True, False),
        ("photocluster.cli.helpers", "tool", True, False),
        ("photocluster.core.config", None, True, False),
        ("photocluster.core", "MISSING", True, False),
        ("photocluster.store.db", "Store", False, True),  # under TYPE_CHECKING: never runs
        ("json", None, True, False),
        ("dlib", None, True, False),
        ("math", None, True, False),
        ("photocluster.app.a", None, False, False),
        ("importlib", None, False, False),
        ("photocluster.eval.run", None, False, False),
    }
    # In a package's __init__, `from . import x` is relative to the package itself.
    assert parse_imports("photocluster.cli", "from . import helpers", known, is_package=True) == [
        Import("photocluster.cli.helpers", 1)
    ]
