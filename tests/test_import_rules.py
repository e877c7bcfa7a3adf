"""The dependency rule of docs/decisions.md ("Shared kernel"): exact/, gocardless/ and tenants/
import nothing from reconciliation/ (the shared kernel is core/).

Checked on the source (ast), so an import inside a function or an ``if TYPE_CHECKING:`` block
counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESTRICTED_APPS = ("exact", "gocardless", "tenants")
ALLOWED: set[str] = set()  # the shared kernel is core/ now, outside reconciliation/


def forbidden_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import from ``reconciliation`` outside ALLOWED."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "reconciliation":
                # ``from reconciliation import audit`` names the module in the alias.
                modules = [f"reconciliation.{alias.name}" for alias in node.names]
            else:
                modules = [node.module]
        else:
            continue
        for module in modules:
            top = module.split(".")[0]
            if top != "reconciliation":
                continue
            if not any(module == ok or module.startswith(f"{ok}.") for ok in ALLOWED):
                found.append((node.lineno, module))
    return found


def _python_files():
    for app in RESTRICTED_APPS:
        yield from sorted((ROOT / app).rglob("*.py"))


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("from core.audit import Actor", []),
        ("from core.money import to_minor_units", []),
        ("import core.money", []),
        ("from reconciliation import audit, money",
         ["reconciliation.audit", "reconciliation.money"]),
        ("from reconciliation.models import AuditEntry", ["reconciliation.models"]),
        ("import reconciliation.bookings.models", ["reconciliation.bookings.models"]),
        ("from reconciliation import models", ["reconciliation.models"]),
        ("import reconciliation", ["reconciliation"]),
        (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from reconciliation.collection.models import CollectionAttempt",
            ["reconciliation.collection.models"],
        ),
        ("def f():\n    from reconciliation.customers import x", ["reconciliation.customers"]),
        ("from .models import Thing\nfrom reconciliationx import y", []),
    ],
)
def test_the_checker_itself(source, bad):
    assert [module for _, module in forbidden_imports(source)] == bad


def test_exact_gocardless_and_tenants_import_only_the_shared_kernel():
    files = list(_python_files())
    assert any(path.name == "events.py" for path in files)  # the scan sees the apps
    violations = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in files
        for line, module in forbidden_imports(path.read_text())
    ]
    assert violations == [], (
        "exact/, gocardless/ and tenants/ may import only core.audit and "
        "core.money from reconciliation/ (docs/decisions.md):\n" + "\n".join(violations)
    )
