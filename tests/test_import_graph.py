"""The core's packages import one another without cycles, and the API does not import the daemon.

grimp builds the graph of every import inside ``hodei``; modules are collapsed to hodei's
second-level packages and modules (``hodei.api``, ``hodei.cli``, ``hodei.daemon``, ``hodei.store``,
... whatever exists when this runs, discovered, not listed here), and that graph must have no cycle.

What counts as an import:

* Every import grimp sees: at the top of a module, inside a function (the CLI defers heavy imports
  that way, but calling the function still needs the other package), and under ``if TYPE_CHECKING:``
  (an annotation naming ``Daemon`` still ties the API to the daemon's design; a ``Protocol`` in the
  package that needs it is the way out).
* The root ``hodei/__init__.py`` is a facade: it re-exports, for plugin authors, names defined in
  other modules (``from hodei import ProviderType, hookimpl``). It is not a node of the graph. An
  import of the root from inside the core counts as an import of the module each name comes from
  (``from hodei import ProviderType`` is an edge to ``hodei.domain``), so going through the facade
  neither hides a dependency nor invents one; ``__version__``, a constant the root defines itself,
  is no edge at all. A plain ``import hodei`` (names unknown) counts as an import of everything
  the facade imports.
"""

from __future__ import annotations

import ast
from collections import defaultdict, deque
from collections.abc import Iterator
from pathlib import Path

import grimp
import hodei
import pytest

ROOT = "hodei"
SOURCE = Path(hodei.__file__).resolve().parent


def unit(module: str) -> str:
    """``hodei.api.server`` -> ``hodei.api``; the root stays the root."""
    return ".".join(module.split(".")[:2])


def source_of(module: str) -> Path:
    parts = module.split(".")[1:]
    package = SOURCE.joinpath(*parts, "__init__.py")
    return package if package.is_file() or not parts else SOURCE.joinpath(*parts[:-1], f"{parts[-1]}.py")


def absolute(module: str, node: ast.ImportFrom) -> str:
    """The module an ``ImportFrom`` in ``module`` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = module.split(".")
    if source_of(module).name != "__init__.py":
        package = package[:-1]
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def facade() -> tuple[dict[str, str], set[str]]:
    """The root's re-exports (name -> the module it comes from) and the names it defines itself."""
    tree = ast.parse(source_of(ROOT).read_text(encoding="utf-8"))
    exported: dict[str, str] = {}
    own: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            source = absolute(ROOT, node)
            for alias in node.names:
                exported[alias.asname or alias.name] = source
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            own |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
    return exported, own


def names_taken_from_root(module: str) -> Iterator[tuple[str | None, int]]:
    """Each name ``module`` imports from the root, with its line; ``(None, line)`` for ``import hodei``."""
    tree = ast.parse(source_of(module).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and absolute(module, node) == ROOT:
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == ROOT:
                    yield None, node.lineno


Edges = dict[tuple[str, str], list[str]]  # (unit, unit) -> the imports behind it, as "module:line text"


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # cache_dir=None: nothing written into the working tree.
    return grimp.build_graph(ROOT, include_external_packages=False, cache_dir=None)


def through_facade(graph: grimp.ImportGraph, name: str | None) -> set[str]:
    """The modules an import of ``name`` from the root really depends on (``None``: ``import hodei``)."""
    exported, own = facade()
    if name is None:
        return set(exported.values())
    if name in exported:
        return {exported[name]}
    if f"{ROOT}.{name}" in graph.modules:
        return {f"{ROOT}.{name}"}  # a submodule, imported through its parent
    if name in own:
        return set()  # __version__: a constant of the root itself
    return set(exported.values())  # unknown to the facade: assume the worst


@pytest.fixture(scope="module")
def edges(graph: grimp.ImportGraph) -> Edges:
    found: Edges = defaultdict(list)

    def add(importer: str, imported: str, why: str) -> None:
        a, b = unit(importer), unit(imported)
        if a != b and ROOT not in (a, b):
            found[(a, b)].append(why)

    for importer in sorted(graph.modules - {ROOT}):  # the facade itself is no node
        imports = graph.find_modules_directly_imported_by(importer)
        for imported in sorted(imports - {ROOT}):
            for detail in graph.get_import_details(importer=importer, imported=imported) or [{}]:
                add(importer, imported, f"{importer}:{detail.get('line_number', '?')} "
                                        f"{detail.get('line_contents', '')}".rstrip())
        if ROOT in imports:  # resolved name by name
            for name, line in names_taken_from_root(importer):
                why = f"{importer}:{line} from {ROOT} import {name or '*'} (through the facade)"
                for target in through_facade(graph, name):
                    add(importer, target, why)
    return dict(found)


def cycles(nodes: set[str], edges: Edges) -> list[list[str]]:
    """The strongly connected components of more than one node (each holds at least one cycle)."""
    successors: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        successors[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the graph has a few dozen nodes
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(successors[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return components


def shortest_cycle(component: list[str], edges: Edges) -> list[str]:
    """One shortest cycle through the component's first node: [a, b, ..., a]."""
    start, members = component[0], set(component)
    successors = {a: sorted(b for (x, b) in edges if x == a and b in members) for a in members}
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for successor in successors[node]:
            if successor == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if successor not in previous:
                previous[successor] = node
                queue.append(successor)
    return [*component, component[0]]


def describe(components: list[list[str]], edges: Edges) -> str:
    lines = []
    for component in components:
        path = shortest_cycle(component, edges)
        lines.append(f"cycle between {', '.join(component)}: {' -> '.join(path)}")
        for a in component:
            for b in component:
                for why in edges.get((a, b), [])[:5]:
                    lines.append(f"    {a} -> {b}: {why}")
                if len(edges.get((a, b), [])) > 5:
                    lines.append(f"    {a} -> {b}: ... and {len(edges[(a, b)]) - 5} more")
    return "\n".join(lines)


def units(graph: grimp.ImportGraph) -> set[str]:
    return {unit(m) for m in graph.modules} - {ROOT}


def test_the_packages_are_discovered(graph: grimp.ImportGraph) -> None:
    found = units(graph)
    # Not a list to keep in step: only a check that discovery sees the core's main parts.
    assert {"hodei.api", "hodei.cli", "hodei.daemon", "hodei.selection", "hodei.workers"} <= found, sorted(found)


def test_the_package_level_import_graph_has_no_cycle(graph: grimp.ImportGraph, edges: Edges) -> None:
    found = cycles(units(graph), edges)
    assert not found, "the packages of hodei import one another in a cycle:\n" + describe(found, edges)


def test_the_api_does_not_import_the_daemon(graph: grimp.ImportGraph, edges: Edges) -> None:
    assert {"hodei.api", "hodei.daemon"} <= units(graph), "renamed? say here what the API must not depend on"
    imports = edges.get(("hodei.api", "hodei.daemon"), [])
    assert not imports, ("hodei.api imports hodei.daemon (the API's servicers should depend on the services, "
                         "not on the daemon):\n" + "\n".join(f"    {why}" for why in imports))
