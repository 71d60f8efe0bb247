"""The import graph keeps the layers (STYLE.md: data flows one way, io → models/methods →
flowapps → evaluations).

Every ``.py`` under ``flownet2_core``, ``flowapps`` and ``evaluations`` is parsed (nothing is
imported), and every import is read wherever it sits: at module level, inside functions (lazy
imports), under ``if TYPE_CHECKING:``, and ``importlib.import_module("literal")`` calls. Then:

* ``flownet2_core`` never imports ``flowapps`` or ``evaluations``; ``flowapps`` never imports
  ``evaluations`` (upper layers reach the core through entry points: ``flownet2.commands``,
  ``flownet2.demos``, ``flownet2.flow_methods``);
* no import cycles between modules. Imports under ``if TYPE_CHECKING:`` are left out of this
  check only: they never run, and naming a type from a module that imports you is what they
  are for;
* no module imports another module's private names (``from x import _y``), and private
  modules (``_files``, ``_compiled``) are imported only from inside their own package.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("flownet2_core", "flowapps", "evaluations")  # lower to upper

# Known exceptions, each with the reason and the change that removes it. The test fails
# when an entry no longer matches anything, so the list cannot go stale.
ALLOWED_PRIVATE: set[tuple[str, str, str]] = set()
ALLOWED_CYCLES: set[frozenset[str]] = set()


@dataclass(frozen=True)
class Import:
    importer: str      # module doing the import
    target: str        # the project module it loads (most specific existing one)
    name: str | None   # the name taken from it (``from target import name``), if any
    line: int
    type_checking: bool

    def where(self) -> str:
        return f"{self.importer}:{self.line}"


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in LAYERS:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _existing(name: str) -> str | None:
    """The longest prefix of dotted ``name`` that is a project module."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports_of(module: str, path: Path) -> list[Import]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def add(dotted: str, name: str | None, line: int, tc: bool) -> None:
        target = _existing(dotted)
        if target is not None:
            found.append(Import(module, target, name, line, tc))

    def visit(node: ast.AST, tc: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, tc)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, None, node.lineno, tc)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in MODULES:  # `from pkg import submodule`
                    add(sub, None, node.lineno, tc)
                else:
                    add(source, alias.name, node.lineno, tc)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Name) and node.func.id == "import_module")
                   or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module"))):
            add(node.args[0].value, None, node.lineno, tc)
        for child in ast.iter_child_nodes(node):
            visit(child, tc)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return [imp for imp in found if imp.target != module]


IMPORTS = [imp for mod, path in MODULES.items() for imp in _imports_of(mod, path)]


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def test_the_parser_sees_lazy_and_relative_imports():
    """Guards the scanner itself: a lazy relative import and a module-level one are found."""
    edges = {(i.importer, i.target) for i in IMPORTS}
    assert ("flowapps.stacks.mini_ucf101", "flowapps.stacks.extract") in edges      # inside a function
    assert ("flownet2_core.models.flownet_c", "flownet2_core.models.flownet_s") in edges
    assert ("flowapps.stacks.extract", "flownet2_core.methods") in edges
    assert len(MODULES) > 50


def test_layers_import_only_downwards():
    bad = [f"{i.where()} imports {i.target} (layer {LAYERS[_layer(i.target)]} is above "
           f"{LAYERS[_layer(i.importer)]})" for i in IMPORTS if _layer(i.target) > _layer(i.importer)]
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def _cycle_path(comp: list[str], edges: dict[str, set[str]]) -> list[str]:
    """One concrete cycle through the component's first module (breadth-first)."""
    start, members = comp[0], set(comp)
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, v, start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


def _runtime_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for i in IMPORTS:
        if not i.type_checking:
            edges[i.importer].add(i.target)
    return edges


def test_no_import_cycles():
    edges = _runtime_edges()
    comps = [c for c in _cycles(edges) if frozenset(c) not in ALLOWED_CYCLES]
    lines = []
    for comp in comps:
        path = _cycle_path(comp, edges)
        steps = []
        for a, b in zip(path, path[1:]):
            where = min(i.line for i in IMPORTS if i.importer == a and i.target == b and not i.type_checking)
            steps.append(f"{a}:{where} → {b}")
        lines.append(f"cycle among {comp}:\n    " + "\n    ".join(steps))
    assert not comps, "import cycles:\n" + "\n".join(lines)


def test_allowed_cycles_are_still_there():
    present = {frozenset(c) for c in _cycles(_runtime_edges())}
    stale = [sorted(c) for c in ALLOWED_CYCLES if c not in present]
    assert not stale, f"these cycles are gone: remove them from ALLOWED_CYCLES: {stale}"


def _private_violations() -> set[tuple[str, str, str]]:
    out = set()
    for i in IMPORTS:
        if i.name and i.name.startswith("_") and not i.name.startswith("__"):
            out.add((i.importer, i.target, i.name))
        parts = i.target.split(".")
        for k, part in enumerate(parts):
            if part.startswith("_") and not part.startswith("__"):
                owner = ".".join(parts[:k])  # the package the private module belongs to
                if not (i.importer == owner or i.importer.startswith(owner + ".")):
                    out.add((i.importer, i.target, part))
    return out


def test_no_private_names_across_modules():
    bad = sorted(_private_violations() - ALLOWED_PRIVATE)
    assert not bad, "private names imported from other modules (importer, module, name):\n" + "\n".join(
        map(str, bad))


def test_allowed_private_imports_are_still_there():
    stale = sorted(ALLOWED_PRIVATE - _private_violations())
    assert not stale, f"fixed: remove these from ALLOWED_PRIVATE (and their aliases): {stale}"


@pytest.mark.parametrize("layer", LAYERS)
def test_every_layer_is_scanned(layer):
    assert any(m.split(".")[0] == layer for m in MODULES)
