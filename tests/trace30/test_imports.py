"""The ``trace30`` package imports without a cycle, and each of its modules on its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "trace30"
MODULES = sorted(f"trace30.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def imports_of(module: str) -> set[str]:
    """The package's own modules that ``module`` imports, anywhere in it (at the top, in a
    function, under ``TYPE_CHECKING``): a lazy import hides a cycle, it does not remove it."""
    path = PACKAGE / f"{module.rpartition('.')[2]}.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in MODULES and name != module}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle of ``graph`` found by a depth-first search (each from where it closes).

    >>> cycles({"a": {"b"}, "b": {"a"}, "c": set()})
    [['a', 'b', 'a']]
    >>> cycles({"a": {"b"}, "b": {"c"}, "c": set()})
    []
    """
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            found.append([*path[path.index(node):], node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return found


def test_the_package_has_no_import_cycle() -> None:
    graph = {module: imports_of(module) for module in MODULES}
    assert {"trace30.keys", "trace30.jobs", "trace30.retention", "trace30.batch"} <= set(graph)
    assert "trace30.keys" in graph["trace30.retention"]  # the graph sees the imports
    assert cycles(graph) == []


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_in_a_fresh_interpreter(module: str) -> None:
    done = subprocess.run([sys.executable, "-W", "error", "-c", f"import {module}"],
                          capture_output=True, text=True, timeout=60,
                          cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr
