"""chain's internal import graph, from the source (ast, nothing imported): print it, fail on a circle or an upward import.

    python tools/import_graph.py [--root REPO] [--quiet]

Every ``import`` of a module of ``chain`` or ``models`` is an edge, wherever it stands: at the
top of a file (eager), inside a function (lazy, marked ``~``) or under ``if TYPE_CHECKING:``
(typing only, marked ``?``; never run, so not part of the circle check). ``from pkg import name``
is an edge to ``pkg.name`` when that is a module, else to ``pkg``. A package's ``__init__``
running before its submodules is Python's doing, not an import the code wrote, so it is no edge.

The floors are those of ``pyproject.toml``'s import-linter ``layers`` contract, top first; the
package's face (``chain/__init__.py``, and ``chain/__main__.py``, which is ``python -m chain``)
stands above them all. An import is upward when it reaches a module on a higher floor than its own
(lazy and typing-only imports included: a lazy import is still a dependency, only a later one;
import-linter skips typing-only imports, so this tool is the one that sees them), and sideways
when it reaches a neighbour on the same floor (``a | b``) outside its own package. Modules on no
floor (a package named on none) are not judged.

Exit status: 0 when the graph has no circle (lazy imports included), no upward or sideways
import, and ``models`` imports nothing of ``chain``; 1 otherwise, after naming each of them.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (pyproject allows it): import-linter's own TOML reader
    import tomli as tomllib

PACKAGES = ("chain", "models")
EAGER, LAZY, TYPING = "", "~", "?"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    kind: str  # EAGER, LAZY or TYPING


def find_modules(root: Path) -> dict[str, Path]:
    """Module name -> file for every ``.py`` file of the packages under ``root``."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(node: ast.AST, kind: str = EAGER) -> Iterator[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement below ``node`` with its kind (a function body makes it lazy)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, kind
        elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            yield from _imports(child, LAZY if kind == EAGER else kind)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for statement in child.body:
                yield from _imports(ast.Module(body=[statement], type_ignores=[]), TYPING)
            for statement in child.orelse:
                yield from _imports(ast.Module(body=[statement], type_ignores=[]), kind)
        else:
            yield from _imports(child, kind)


def _internal(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` or its longest prefix that is one of ``modules``; None for a foreign module."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def module_edges(module: str, path: Path, modules: dict[str, Path]) -> set[Edge]:
    """The internal imports ``module`` (the file at ``path``) makes."""
    is_package = path.name == "__init__.py"
    edges = set()
    for statement, kind in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        targets = []
        if isinstance(statement, ast.Import):
            targets = [alias.name for alias in statement.names]
        else:
            base = statement.module or ""
            if statement.level:  # relative: from the package holding this module
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[:len(package) - statement.level + 1]
                base = ".".join(package + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in statement.names]
        for target in targets:
            internal = _internal(target, modules)
            if internal is not None and internal != module:
                edges.add(Edge(module, internal, kind))
    return edges


def build_graph(root: Path) -> tuple[dict[str, Path], set[Edge]]:
    """The packages' modules and every internal import edge between them."""
    modules = find_modules(root)
    edges: set[Edge] = set()
    for module, path in modules.items():
        edges |= module_edges(module, path, modules)
    return modules, edges


def find_cycles(modules: dict[str, Path], edges: set[Edge]) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a circle (Tarjan's strongly
    connected components of the runtime edges: eager and lazy, not typing-only)."""
    graph: dict[str, list[str]] = {module: [] for module in modules}
    for edge in edges:
        if edge.kind != TYPING:
            graph[edge.source].append(edge.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # recursion depth is bounded by the module count (~100)
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(cycles)


def layer_violations(edges: set[Edge]) -> list[Edge]:
    """Imports of ``chain`` from ``models`` (networks are pure torch and never import chain)."""
    return sorted((edge for edge in edges if edge.source.split(".")[0] == "models"
                   and edge.target.split(".")[0] == "chain"), key=lambda edge: (edge.source, edge.target))


def read_floors(root: Path) -> list[list[str]]:
    """The floors of ``root``'s ``pyproject.toml`` (its import-linter ``layers`` contract), top
    first, each a list of the packages or modules on it; [] without such a contract."""
    path = root / "pyproject.toml"
    if not path.is_file():
        return []
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    for contract in config.get("tool", {}).get("importlinter", {}).get("contracts", []):
        if contract.get("type") == "layers":
            # "(name)" is import-linter's optional layer; "a | b" neighbours that may not import each other
            return [[name.strip().strip("()") for name in layer.split("|")] for layer in contract["layers"]]
    return []


def floor_of(module: str, floors: list[list[str]]) -> tuple[int, str] | None:
    """``module``'s floor (0 the top) and the name on that floor it falls under; the package's face
    (a root package and its ``__main__``) is floor -1, above the top. None for a module on no floor."""
    if not floors:
        return None
    for number, floor in enumerate(floors):
        for name in floor:
            if module == name or module.startswith(name + "."):
                return number, name
    parts = module.split(".")
    floored_roots = {name.split(".")[0] for floor in floors for name in floor}
    if parts[0] in floored_roots and (len(parts) == 1 or parts[1:] == ["__main__"]):
        return -1, parts[0]
    return None


def floor_violations(edges: set[Edge], floors: list[list[str]]) -> list[tuple[Edge, str]]:
    """Each import that reaches a higher floor than its module's (``"upward"``) or a neighbour on
    the same floor under another name (``"sideways"``), typing-only and lazy imports included."""
    found = []
    for edge in sorted(edges, key=lambda edge: (edge.source, edge.target)):
        source, target = floor_of(edge.source, floors), floor_of(edge.target, floors)
        if source is None or target is None:
            continue
        if target[0] < source[0]:
            found.append((edge, "upward"))
        elif target[0] == source[0] and target[1] != source[1]:
            found.append((edge, "sideways"))
    return found


def render(modules: dict[str, Path], edges: set[Edge]) -> str:
    """One line per module: ``module -> target, ~lazy_target, ?typing_target``."""
    lines = []
    for module in sorted(modules):
        targets = sorted((edge.target, edge.kind) for edge in edges if edge.source == module)
        lines.append(f"{module} -> {', '.join(kind + target for target, kind in targets) or '(nothing internal)'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="the repository")
    parser.add_argument("--quiet", action="store_true", help="print only the verdict")
    args = parser.parse_args(argv)
    modules, edges = build_graph(args.root)
    if not args.quiet:
        print(render(modules, edges))
        print()
    cycles, violations = find_cycles(modules, edges), layer_violations(edges)
    floors = read_floors(args.root)
    misplaced = floor_violations(edges, floors)
    for cycle in cycles:
        print(f"import circle among {len(cycle)} modules: {', '.join(cycle)}")
    for edge in violations:
        print(f"layer violation: {edge.source} imports {edge.target} (models must never import chain)")
    for edge, direction in misplaced:
        (source_floor, _), (target_floor, _) = floor_of(edge.source, floors), floor_of(edge.target, floors)
        how = {EAGER: "", LAZY: "lazily ", TYPING: "for typing "}[edge.kind]
        print(f"{direction} import: {edge.source} (floor {source_floor}) {how}imports {edge.target} (floor {target_floor})")
    if misplaced:
        print(f"{len(misplaced)} imports leave their floor (pyproject.toml's layers: imports only go down)")
    lazy = sum(edge.kind == LAZY for edge in edges)
    if not cycles and not violations:
        print(f"no import circle: {len(modules)} modules, {len(edges)} internal imports ({lazy} lazy)")
    if floors and not misplaced:
        print(f"no upward import: {len(floors)} floors, every import goes down")
    return 1 if cycles or violations or misplaced else 0


if __name__ == "__main__":
    sys.exit(main())
