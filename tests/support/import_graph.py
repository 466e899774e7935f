"""Import graph of a package read from its source with ``ast`` (nothing is imported or run).

``scan(package_dir)`` reports cycles among the package's own modules in three views (module-level
imports; plus imports inside functions; plus ``if TYPE_CHECKING:`` imports), the own-module imports
that stand inside functions, and private names taken from another subpackage. An import inside a
module-level ``def __getattr__`` (PEP 562: a module attribute computed on first access) is reported
apart, as a lazy import; it still counts as a function import for cycles and layers. Importing
``pkg.sub.mod`` also runs ``pkg/sub/__init__.py``, so that edge counts too; the root package's own
``__init__`` is left out as a target (it is the facade). Imports of third-party modules never count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

EdgeKind = Literal["module", "function", "type-checking"]
KINDS: tuple[EdgeKind, ...] = get_args(EdgeKind)
_RANK: dict[EdgeKind, int] = {kind: rank for rank, kind in enumerate(KINDS)}

Cycle = tuple[str, ...]
Parents = Mapping[ast.AST, ast.AST]


@dataclass(frozen=True, order=True)
class Edge:
    """One own-module import: ``src`` runs ``dst`` at line ``lineno`` of ``src``."""

    src: str
    dst: str
    kind: EdgeKind
    lineno: int

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst} ({self.kind}, line {self.lineno})"


@dataclass(frozen=True)
class ImportReport:
    """What ``scan`` found; the list fields are sorted and empty when the package is clean."""

    modules: tuple[str, ...]
    packages: tuple[str, ...]
    cycles_module_level: tuple[Cycle, ...]
    cycles_with_function_imports: tuple[Cycle, ...]
    cycles_with_type_checking: tuple[Cycle, ...]
    imports_inside_functions: tuple[str, ...]
    lazy_imports: tuple[str, ...]
    private_names_across_packages: tuple[str, ...]
    edges: tuple[Edge, ...]

    def __repr__(self) -> str:
        counts = (
            f"{name}={len(getattr(self, name))}" for name in self.__dataclass_fields__ if name != "packages"
        )
        return f"ImportReport({', '.join(counts)})"


@dataclass(frozen=True)
class _Target:
    """A dotted name an import statement reaches, and the name taken by ``from ... import``."""

    full: str
    name: str | None


def module_name(root: Path, path: Path) -> str:
    """The dotted module name of ``path`` inside the package directory ``root``."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_files(package_dir: Path) -> dict[str, Path]:
    """Every ``.py`` file of the package, keyed by dotted module name."""
    root = package_dir.resolve()
    return {module_name(root, path): path for path in sorted(root.rglob("*.py"))}


def resolve_relative(current: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name of ``from <level dots><target> import ...`` written in ``current``."""
    if level == 0:
        return target or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _ancestors(node: ast.AST, parents: Parents) -> Iterator[ast.AST]:
    while node in parents:
        node = parents[node]
        yield node


def _tests_type_checking(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", "")
    return name == "TYPE_CHECKING"


def import_kind(node: ast.AST, parents: Parents) -> EdgeKind:
    """``type-checking`` under any ``if TYPE_CHECKING:``, else ``function`` inside a def, else ``module``."""
    ancestors = list(_ancestors(node, parents))
    if any(_tests_type_checking(ancestor) for ancestor in ancestors):
        return "type-checking"
    if any(isinstance(ancestor, ast.FunctionDef | ast.AsyncFunctionDef) for ancestor in ancestors):
        return "function"
    return "module"


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[_Target]:
    if isinstance(node, ast.Import):
        return [_Target(alias.name, None) for alias in node.names]
    base = resolve_relative(module, is_package, node.level, node.module)
    return [_Target(f"{base}.{alias.name}", alias.name) for alias in node.names]


def _is_own(name: str, top: str) -> bool:
    return name == top or name.startswith(top + ".")


def _parent(name: str) -> str:
    return name.rpartition(".")[0]


def _leaf(name: str) -> str:
    return name.rpartition(".")[2]


class _Package:
    """The modules of one package directory and the rules that relate their names."""

    def __init__(self, package_dir: Path) -> None:
        self.root = package_dir.resolve()
        self.top = self.root.name
        self.files = module_files(self.root)
        self.packages = frozenset(m for m, path in self.files.items() if path.name == "__init__.py")

    def known(self, name: str) -> str | None:
        """The longest prefix of ``name`` that is one of the package's modules."""
        while name:
            if name in self.files:
                return name
            name = _parent(name)
        return None

    def own_package(self, module: str) -> str:
        """The package a module belongs to (a package belongs to itself)."""
        return module if module in self.packages else _parent(module)

    def relative(self, module: str) -> str:
        return self.files[module].relative_to(self.root.parent).as_posix()

    def run_chain(self, src: str, dst: str) -> Iterator[str]:
        """``dst`` and its parent packages that importing it runs, minus the root and ``src``'s own."""
        parts = dst.split(".")
        for end in range(2, len(parts) + 1):
            name = ".".join(parts[:end])
            if name != src and name in self.files and not src.startswith(name + "."):
                yield name

    def takes_private(self, src: str, dst: str, target: _Target) -> bool:
        """A private module or name taken from a package that is not ``src``'s own or below it."""
        src_pkg, dst_pkg = self.own_package(src), self.own_package(dst)
        if dst_pkg == src_pkg or dst_pkg.startswith(src_pkg + ".") or dst_pkg == self.top:
            return False
        leaf = _leaf(dst)
        names = [target.name] if target.name and target.full != dst else []
        return (leaf.startswith("_") and leaf != "__init__") or any(n.startswith("_") for n in names)


@dataclass
class _Findings:
    edges: list[Edge]
    private: set[str]
    lazy: set[tuple[str, int]]  # (module, line) of imports inside a module-level __getattr__


def is_module_getattr_import(node: ast.AST, parents: Parents) -> bool:
    """Whether the import stands inside ``def __getattr__`` defined at the top level of its module."""
    functions = [
        a for a in _ancestors(node, parents) if isinstance(a, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    if len(functions) != 1 or functions[0].name != "__getattr__":
        return False
    return isinstance(parents.get(functions[0]), ast.Module)


def _scan_module(package: _Package, module: str, findings: _Findings) -> None:
    path = package.files[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    is_package = module in package.packages
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        kind = import_kind(node, parents)
        if kind == "function" and is_module_getattr_import(node, parents):
            findings.lazy.add((module, node.lineno))
        for target in _targets(node, module, is_package):
            dst = package.known(target.full) if _is_own(target.full, package.top) else None
            if dst is None or dst == module:
                continue
            findings.edges.extend(Edge(module, d, kind, node.lineno) for d in package.run_chain(module, dst))
            if package.takes_private(module, dst, target):
                findings.private.add(f"{package.relative(module)}:{node.lineno} {module} -> {target.full}")


def strongest_edges(edges: Iterable[Edge]) -> dict[tuple[str, str], Edge]:
    """Per (src, dst), the first edge of the strongest kind (module > function > type-checking)."""
    best: dict[tuple[str, str], Edge] = {}
    for edge in edges:
        old = best.get((edge.src, edge.dst))
        if old is None or _RANK[edge.kind] < _RANK[old.kind]:
            best[(edge.src, edge.dst)] = edge
    return best


def _graph(modules: Iterable[str], best: Iterable[Edge], kinds: set[EdgeKind]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for edge in best:
        if edge.kind in kinds:
            graph[edge.src].add(edge.dst)
    return graph


def _reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def find_cycles(graph: Mapping[str, set[str]]) -> tuple[Cycle, ...]:
    """The strongly connected components of more than one module, largest first."""
    reach = {module: _reachable(graph, module) for module in graph}
    components = {tuple(sorted(o for o in reach[m] if m in reach[o])) for m in graph}
    return tuple(sorted((c for c in components if len(c) > 1), key=lambda c: (-len(c), c)))


def _located(package: _Package, edge: Edge) -> str:
    return f"{package.relative(edge.src)}:{edge.lineno} {edge.src} -> {edge.dst}"


def scan(package_dir: Path) -> ImportReport:
    """Read every module of ``package_dir`` and report its own-module import graph."""
    package = _Package(package_dir)
    findings = _Findings(edges=[], private=set(), lazy=set())
    for module in package.files:
        _scan_module(package, module, findings)
    best = strongest_edges(findings.edges).values()
    views = [set(KINDS[: end + 1]) for end in range(len(KINDS))]
    cycles = [find_cycles(_graph(package.files, best, kinds)) for kinds in views]
    function_edges = [e for e in best if e.kind == "function"]
    lazy = [e for e in function_edges if (e.src, e.lineno) in findings.lazy]
    hidden = [e for e in function_edges if (e.src, e.lineno) not in findings.lazy]
    return ImportReport(
        modules=tuple(sorted(package.files)),
        packages=tuple(sorted(package.packages)),
        cycles_module_level=cycles[0],
        cycles_with_function_imports=cycles[1],
        cycles_with_type_checking=cycles[2],
        imports_inside_functions=tuple(sorted(_located(package, e) for e in hidden)),
        lazy_imports=tuple(sorted(_located(package, e) for e in lazy)),
        private_names_across_packages=tuple(sorted(findings.private)),
        edges=tuple(sorted(set(findings.edges))),
    )
