"""The package's shape stays easy to live in: small modules, no import cycle, no upward import.

Three checks, read from the source files with ``ast`` (nothing is imported):

* every module under ``src/attendance_live`` has at most ``MAX_LINES`` lines;
* the module-level imports between modules of ``attendance_live`` form no cycle;
* no layer imports one above it (requests flow down): nothing in ``service/`` imports
  ``realtime/`` or ``api/``, the transport imports nothing else of the package, and so on
  (``FORBIDDEN``; here every import counts, inside functions too).

The import graph has an edge from a module to each ``attendance_live`` module it
imports at module level: ``import a.b``, ``from a import b`` (to the submodule
``a.b`` when there is one, else to ``a``), and relative imports resolved against
the importing module's package. Imports inside functions are not edges (they run
later, not at import time). Imports under ``if TYPE_CHECKING:`` are edges too: an
annotation that names a module above is still a dependency a reader must follow.
The implicit import of a parent package's ``__init__`` is not an edge, so a
package that re-exports its submodules does not count as a cycle with them.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import attendance_live

MAX_LINES = 500
ROOT = Path(attendance_live.__file__).parent
PACKAGE = attendance_live.__name__
# What each layer must not import (a layer is a subpackage or a top-level module).
ABOVE_SERVICE = ("api", "realtime", "lti", "app", "cli", "term", "context", "demo")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "service": (*ABOVE_SERVICE, "transport"),
    "payloads": (*ABOVE_SERVICE, "transport"),
    "db": (*ABOVE_SERVICE, "service", "payloads", "transport", "auth"),
    "realtime": ("api", "lti", "app", "cli", "term"),
    "transport": (*ABOVE_SERVICE, "service", "payloads", "db", "auth", "config", "vocabulary"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in sorted(ROOT.rglob("*.py"))
        # Alembic loads the migrations by path: they are scripts, not modules of the package.
        if "migrations" not in path.relative_to(ROOT).parts
    }


SOURCES = _sources()


def _top_level(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports a module runs when it is imported (also under ``if``/``try`` at top level)."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            yield from _top_level(node.body)
            yield from _top_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _top_level(block)


def _imports(name: str, path: Path, nodes: list[ast.stmt] | None = None) -> set[str]:
    """The ``attendance_live`` modules ``name`` imports at module level (or in ``nodes``)."""
    if nodes is None:
        nodes = list(_top_level(ast.parse(path.read_text(encoding="utf-8")).body))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in nodes:
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            targets = [
                f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in SOURCES else origin
                for alias in node.names
            ]
        found.update(t for t in targets if t in SOURCES and t != name)
    return found


GRAPH = {name: _imports(name, path) for name, path in SOURCES.items()}


def test_the_walk_finds_the_package() -> None:
    assert "attendance_live.service.attendance" in SOURCES
    assert "attendance_live.service.views" in GRAPH["attendance_live.service.attendance"]


def test_every_module_is_at_most_500_lines() -> None:
    lengths = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in SOURCES.items()}
    too_long = {name: n for name, n in sorted(lengths.items()) if n > MAX_LINES}
    assert not too_long, f"split these modules by concern (at most {MAX_LINES} lines each): {too_long}"


def test_no_import_cycle() -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles (make the lower module not know the upper one): " + "; ".join(
        " -> ".join(cycle) for cycle in cycles
    )


def _all_imports(name: str, path: Path) -> set[str]:
    """Every ``attendance_live`` module ``name`` imports, at module level or inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body: list[ast.stmt] = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    return _imports(name, path, body)


def test_no_upward_import() -> None:
    wrong = []
    for layer, above in FORBIDDEN.items():
        prefix = f"{PACKAGE}.{layer}"
        for name, path in sorted(SOURCES.items()):
            if name == prefix or name.startswith(prefix + "."):
                wrong += [
                    f"{name} -> {t}"
                    for t in sorted(_all_imports(name, path))
                    if any(t == f"{PACKAGE}.{a}" or t.startswith(f"{PACKAGE}.{a}.") for a in above)
                ]
    assert not wrong, f"a layer imports one above it (move the shared part below): {wrong}"
