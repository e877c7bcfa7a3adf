"""The thin layers of exact/ (admin, views, tasks, commands) call services, never the client:
checked on the source, so an import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIN = [
    "exact/admin.py",
    "exact/views.py",
    "exact/tasks.py",
    *sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "exact/management/commands").glob("*.py")
    ),
]


def imported(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_checker_sees_a_lazy_import():
    assert "exact.client" in imported("def f():\n    from exact import client\n")
    assert "exact.client" in imported("import exact.client")


@pytest.mark.parametrize("module", THIN)
def test_thin_layers_do_not_use_the_client(module):
    assert "exact.client" not in imported((ROOT / module).read_text())
