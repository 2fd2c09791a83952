"""Every module's ``__all__`` lists exactly its public names (as httpx tests its own).

A module's public names are those it defines at top level (``def``, ``class``,
assignment) without a leading underscore, plus any name it imports on purpose
to re-export; a module logger, type variables and route handlers (registered
on a router: the route is their interface) are not.
``__all__`` must name each of them, name nothing the module lacks, and be sorted
the way ruff sorts it, so a new public name cannot slip in unlisted.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import TypeVar

import pytest

import attendance_live

NOT_INTERFACE = {"log", "logger"}


def _modules() -> list[str]:
    names = [attendance_live.__name__]
    for info in pkgutil.walk_packages(attendance_live.__path__, prefix=f"{attendance_live.__name__}."):
        # Alembic loads the migrations by path, and __main__ runs the CLI: neither is an interface.
        if ".migrations" in info.name or info.name.endswith(".__main__"):
            continue
        names.append(info.name)
    return sorted(names)


def _defined(module: ModuleType) -> set[str]:
    """Names bound at the module's top level by def, class or assignment (not by import)."""
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
            _is_route(d) for d in node.decorator_list
        ):
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _is_route(decorator: ast.expr) -> bool:
    """``@router.get(...)`` and the like."""
    return (
        isinstance(decorator, ast.Call)
        and isinstance(decorator.func, ast.Attribute)
        and isinstance(decorator.func.value, ast.Name)
        and decorator.func.value.id == "router"
    )


MODULES = _modules()


def test_the_walk_finds_the_package() -> None:
    assert "attendance_live.service.attendance" in MODULES
    assert "attendance_live.vocabulary" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_exactly_the_public_names(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list), f"{name} has no __all__ list"
    public = {
        n
        for n in _defined(module)
        if not n.startswith("_") and n not in NOT_INTERFACE and not isinstance(getattr(module, n), TypeVar)
    }
    missing = sorted(public - set(exported))
    assert not missing, f"{name} defines public names missing from __all__: {missing}"
    absent = sorted(n for n in exported if not hasattr(module, n))
    assert not absent, f"{name}.__all__ names what the module lacks: {absent}"
    assert len(set(exported)) == len(exported), f"{name}.__all__ repeats a name"
