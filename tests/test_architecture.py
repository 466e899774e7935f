"""The package's layers: no import cycles, no hidden imports, each layer imports only layers below it.

The checks on the real package are grouped in ``TestRealPackage`` so they can be run alone:
``python -m pytest tests/test_architecture.py::TestRealPackage``. The scanner itself is tested on
small synthetic packages (``TestScanner``) so that these checks cannot pass by finding nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.support.import_graph import (
    KINDS,
    Edge,
    EdgeKind,
    ImportReport,
    module_files,
    scan,
    strongest_edges,
)

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "atoms_otel"
TOP = "atoms_otel"

# Layer of each module prefix, bottom up; the longest matching prefix wins.
LAYERS: dict[str, int] = {
    "atoms_otel._version": 1,
    "atoms_otel.base": 1,
    "atoms_otel.otel": 2,
    "atoms_otel.core": 3,
    "atoms_otel.producers": 4,
    "atoms_otel.plugins": 5,
    "atoms_otel.endpoints": 6,
    "atoms_otel.integrations": 7,
    "atoms_otel.demo": 8,
}
FACADE = 8
METRICS_MODULE = "atoms_otel.otel.metrics"
PRIVATE_INSTRUMENT = "_instrument._real"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_of(module: str, packages: Iterable[str] = ()) -> int | None:
    """The layer of a module: the longest listed prefix, else the facade for root modules, else None."""
    matches = [prefix for prefix in LAYERS if _under(module, prefix)]
    if matches:
        return LAYERS[max(matches, key=len)]
    is_root_module = module == TOP or (module.count(".") == 1 and module not in packages)
    return FACADE if is_root_module else None


def upward_edges(edges: Iterable[Edge], packages: Iterable[str] = ()) -> list[str]:
    """Edges whose target is in a higher layer than their source (or either has no layer)."""
    known = set(packages)
    offenders = []
    for edge in edges:
        src, dst = layer_of(edge.src, known), layer_of(edge.dst, known)
        if src is None or dst is None or dst > src:
            offenders.append(f"{edge.src} -> {edge.dst} ({edge.kind}, {edge.lineno})")
    return offenders


def _referenced_name(node: ast.Name | ast.Attribute) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr


def get_telemetry_uses(source: str) -> list[int]:
    """Lines that call or reference ``get_telemetry`` as a name or an attribute."""
    return sorted(
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Name | ast.Attribute) and _referenced_name(node) == "get_telemetry"
    )


def _cycles_message(report: ImportReport, view: str, kinds: set[EdgeKind]) -> str:
    """Each cycle's modules, then the imports between them that close it."""
    cycles = {
        "module": report.cycles_module_level,
        "function": report.cycles_with_function_imports,
        "type-checking": report.cycles_with_type_checking,
    }[max(kinds, key=KINDS.index)]
    lines = [f"{len(cycles)} import cycle(s) {view}:"]
    for cycle in cycles:
        lines.append(f"  - ({len(cycle)} modules) {', '.join(cycle)}")
        inside = strongest_edges(e for e in report.edges if e.src in cycle and e.dst in cycle)
        lines += [f"      {edge}" for edge in sorted(inside.values()) if edge.kind in kinds]
    return "\n".join(lines)


def _list_message(title: str, offenders: Iterable[str]) -> str:
    items = list(offenders)
    return f"{len(items)} {title}:\n" + "\n".join(f"  - {item}" for item in items)


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE_DIR.parent).as_posix()


@pytest.fixture(scope="module")
def report() -> ImportReport:
    """The import graph of the real package, scanned once for this module."""
    return scan(PACKAGE_DIR)


class TestRealPackage:
    """The rules on the real ``atoms_otel`` package (run alone with ``::TestRealPackage``)."""

    def test_no_cycles_among_module_level_imports(self, report: ImportReport) -> None:
        """No cycle among module-level imports of the package's own modules."""
        message = _cycles_message(report, "among module-level imports", {"module"})
        cycles = report.cycles_module_level
        assert not cycles, message

    def test_no_cycles_counting_function_imports(self, report: ImportReport) -> None:
        """No cycle once imports inside functions are counted too."""
        message = _cycles_message(report, "counting imports inside functions", {"module", "function"})
        cycles = report.cycles_with_function_imports
        assert not cycles, message

    def test_no_cycles_counting_type_checking_imports(self, report: ImportReport) -> None:
        """No cycle once ``if TYPE_CHECKING:`` imports are counted too."""
        message = _cycles_message(report, "counting TYPE_CHECKING imports", set(KINDS))
        cycles = report.cycles_with_type_checking
        assert not cycles, message

    def test_no_own_imports_inside_functions(self, report: ImportReport) -> None:
        """The package's own modules are imported at module level only (optional extras may be lazy)."""
        hidden = report.imports_inside_functions
        assert not hidden, _list_message("own-module import(s) inside functions", hidden)

    def test_lazy_imports_only_in_the_facade(self, report: ImportReport) -> None:
        """Imports inside a module-level ``__getattr__`` (PEP 562) only in facade modules, so
        ``import atoms_otel`` may leave out what a process never uses (the router and its models)."""
        known = set(report.packages)
        offenders = [entry for entry in report.lazy_imports if layer_of(entry.split(" ")[1], known) != FACADE]
        assert not offenders, _list_message("lazy import(s) below the facade", offenders)

    def test_no_private_names_across_packages(self, report: ImportReport) -> None:
        """No private module or name is taken from another subpackage."""
        private = report.private_names_across_packages
        assert not private, _list_message("private name(s) taken across packages", private)

    def test_every_module_has_a_layer(self, report: ImportReport) -> None:
        """Every module is in a listed layer or is a root module of the facade."""
        unplaced = [m for m in report.modules if layer_of(m, report.packages) is None]
        assert not unplaced, _list_message("module(s) in no layer (add them to LAYERS)", unplaced)

    def test_imports_go_to_the_same_or_a_lower_layer(self, report: ImportReport) -> None:
        """Every own-module import (all kinds) targets the same or a lower layer."""
        offenders = upward_edges(report.edges, report.packages)
        assert not offenders, _list_message("import(s) of a higher layer", offenders)

    def test_get_telemetry_only_in_the_facade(self, report: ImportReport) -> None:
        """``get_telemetry`` is used only by facade modules; lower layers are handed the Telemetry."""
        offenders = [
            f"{_relative(path)}:{line}"
            for module, path in module_files(PACKAGE_DIR).items()
            if layer_of(module, report.packages) != FACADE
            for line in get_telemetry_uses(path.read_text(encoding="utf-8"))
        ]
        assert not offenders, _list_message("use(s) of get_telemetry below the facade", offenders)

    def test_private_instrument_only_in_metrics(self) -> None:
        """``_instrument._real`` is written only inside ``atoms_otel/otel/metrics``."""
        offenders = [
            f"{_relative(path)}:{number}"
            for module, path in module_files(PACKAGE_DIR).items()
            if not _under(module, METRICS_MODULE)
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
            if PRIVATE_INSTRUMENT in line
        ]
        assert not offenders, _list_message(f"use(s) of {PRIVATE_INSTRUMENT} outside metrics", offenders)

    def test_modules_and_functions_stay_small(self) -> None:
        """No module over 400 lines, no function over 60: one job each, readable in one screen."""
        offenders = []
        for path in module_files(PACKAGE_DIR).values():
            source = path.read_text(encoding="utf-8")
            if len(source.splitlines()) > MAX_MODULE_LINES:
                offenders.append(f"{_relative(path)}: {len(source.splitlines())} lines")
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        offenders.append(f"{_relative(path)}:{node.lineno} {node.name}: {length} lines")
        assert not offenders, _list_message("oversized module(s) or function(s)", offenders)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    """Write a synthetic package ``pkg`` (paths relative to its parent) and return its directory."""
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path / "pkg"


class TestScanner:
    """The scanner and the rule helpers on synthetic packages and edges."""

    def test_module_level_cycle_is_found_in_every_view(self, tmp_path: Path) -> None:
        """Two modules importing each other at module level form a cycle in all three views."""
        pkg = _package(
            tmp_path,
            {"pkg/__init__.py": "", "pkg/a.py": "import pkg.b\n", "pkg/b.py": "from pkg.a import x\n"},
        )
        report = scan(pkg)
        assert report.modules == ("pkg", "pkg.a", "pkg.b")
        assert report.cycles_module_level == (("pkg.a", "pkg.b"),)
        assert report.cycles_with_function_imports == (("pkg.a", "pkg.b"),)
        assert report.cycles_with_type_checking == (("pkg.a", "pkg.b"),)
        assert report.imports_inside_functions == ()

    def test_function_import_cycle_only_in_second_view(self, tmp_path: Path) -> None:
        """An import inside a function closes a cycle only once function imports are counted."""
        files = {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "def f():\n    from pkg.a import x\n    import json\n    return x, json\n",
        }
        report = scan(_package(tmp_path, files))
        assert report.cycles_module_level == ()
        assert report.cycles_with_function_imports == (("pkg.a", "pkg.b"),)
        assert report.cycles_with_type_checking == (("pkg.a", "pkg.b"),)
        assert report.imports_inside_functions == ("pkg/b.py:2 pkg.b -> pkg.a",)
        assert Edge("pkg.b", "pkg.a", "function", 2) in report.edges

    @pytest.mark.parametrize(
        "guard",
        ["from typing import TYPE_CHECKING\nif TYPE_CHECKING:", "import typing\nif typing.TYPE_CHECKING:"],
    )
    def test_type_checking_cycle_only_in_third_view(self, tmp_path: Path, guard: str) -> None:
        """An ``if TYPE_CHECKING:`` import closes a cycle only in the third view."""
        files = {
            "pkg/__init__.py": "",
            "pkg/a.py": "from . import b\n",
            "pkg/b.py": f"{guard}\n    from .a import A\n",
        }
        report = scan(_package(tmp_path, files))
        assert report.cycles_module_level == ()
        assert report.cycles_with_function_imports == ()
        assert report.cycles_with_type_checking == (("pkg.a", "pkg.b"),)
        assert report.imports_inside_functions == ()
        assert Edge("pkg.b", "pkg.a", "type-checking", 3) in report.edges

    def test_imports_in_a_module_getattr_are_lazy_not_hidden(self, tmp_path: Path) -> None:
        """An import in a module-level ``__getattr__`` is a lazy import (still a function edge for
        cycles and layers); in a method or a nested function called ``__getattr__`` it is hidden."""
        files = {
            "pkg/__init__.py": "def __getattr__(name):\n    from pkg.a import x\n    return x\n",
            "pkg/a.py": "x = 1\n",
            "pkg/b.py": "class C:\n    def __getattr__(self, name):\n        from pkg import a\n",
            "pkg/c.py": "def f():\n    def __getattr__(name):\n        from pkg import a\n",
        }
        report = scan(_package(tmp_path, files))
        assert report.lazy_imports == ("pkg/__init__.py:2 pkg -> pkg.a",)
        assert report.imports_inside_functions == ("pkg/b.py:3 pkg.b -> pkg.a", "pkg/c.py:3 pkg.c -> pkg.a")
        assert Edge("pkg", "pkg.a", "function", 2) in report.edges

    def test_module_level_import_outranks_a_function_import(self, tmp_path: Path) -> None:
        """The same target imported at module level and in a function is not a hidden import."""
        files = {
            "pkg/__init__.py": "",
            "pkg/a.py": "import pkg.b\n\ndef f():\n    import pkg.b\n",
            "pkg/b.py": "",
        }
        report = scan(_package(tmp_path, files))
        assert report.imports_inside_functions == ()
        assert {e.kind for e in report.edges if e.dst == "pkg.b"} == {"module", "function"}

    def test_private_name_across_packages_is_reported(self, tmp_path: Path) -> None:
        """A private module or name taken from a sibling package is reported; within a package it is not."""
        files = {
            "pkg/__init__.py": "from pkg.two._impl import _hidden\n",
            "pkg/one/__init__.py": "from pkg.one._own import _mine\n",
            "pkg/one/_own.py": "_mine = 1\n",
            "pkg/one/x.py": "from pkg.two.y import _hidden, shown\nfrom ..two import _impl\n",
            "pkg/two/__init__.py": "",
            "pkg/two/_impl.py": "_hidden = 1\n",
            "pkg/two/y.py": "from pkg.two._impl import _hidden\nshown = 2\n",
        }
        report = scan(_package(tmp_path, files))
        assert report.private_names_across_packages == (
            "pkg/one/x.py:1 pkg.one.x -> pkg.two.y._hidden",
            "pkg/one/x.py:2 pkg.one.x -> pkg.two._impl",
        )

    def test_import_of_a_submodule_counts_its_parent_package(self, tmp_path: Path) -> None:
        """Importing ``pkg.sub.mod`` counts an edge to ``pkg.sub`` too (never to the root ``pkg``)."""
        files = {
            "pkg/__init__.py": "",
            "pkg/a.py": "import pkg.sub.mod\n",
            "pkg/sub/__init__.py": "from pkg import a\n",
            "pkg/sub/mod.py": "",
        }
        report = scan(_package(tmp_path, files))
        assert report.edges == (
            Edge("pkg.a", "pkg.sub", "module", 1),
            Edge("pkg.a", "pkg.sub.mod", "module", 1),
            Edge("pkg.sub", "pkg.a", "module", 1),
        )
        assert report.cycles_module_level == (("pkg.a", "pkg.sub"),)

    def test_layers_by_longest_prefix(self) -> None:
        """Modules map to layers by longest prefix; root modules are the facade; unknown ones have none."""
        assert layer_of("atoms_otel._version") == 1
        assert layer_of("atoms_otel.base.guard") == 1
        assert layer_of("atoms_otel.producers.http.engine") == 4
        assert layer_of("atoms_otel.integrations.fastapi") == 7
        assert layer_of("atoms_otel") == FACADE
        assert layer_of("atoms_otel.testing") == FACADE
        assert layer_of("atoms_otel.demo.runner") == FACADE
        assert layer_of("atoms_otel.newpkg", packages={"atoms_otel.newpkg"}) is None
        assert layer_of("atoms_otel.newpkg.mod") is None

    def test_upward_edges_are_reported(self) -> None:
        """An import of a higher layer is an offender; same or lower layers are not."""
        edges = [
            Edge("atoms_otel.core.telemetry", "atoms_otel.base.settings", "module", 3),
            Edge("atoms_otel.plugins.signals.live", "atoms_otel.plugins.health", "module", 4),
            Edge("atoms_otel.testing", "atoms_otel.integrations.fastapi", "function", 5),
            Edge("atoms_otel.base.settings", "atoms_otel.plugins.webhooks", "function", 145),
            Edge("atoms_otel.otel.pipeline", "atoms_otel.core", "type-checking", 9),
        ]
        assert upward_edges(edges) == [
            "atoms_otel.base.settings -> atoms_otel.plugins.webhooks (function, 145)",
            "atoms_otel.otel.pipeline -> atoms_otel.core (type-checking, 9)",
        ]

    def test_get_telemetry_uses_are_found(self) -> None:
        """Calls and references of ``get_telemetry`` by name or attribute are found; imports are not."""
        source = (
            "from atoms_otel.core.telemetry import get_telemetry\n"
            "import atoms_otel\n"
            "a = get_telemetry()\n"
            "b = atoms_otel.get_telemetry()\n"
            "c = Depends(get_telemetry)\n"
        )
        assert get_telemetry_uses(source) == [3, 4, 5]
