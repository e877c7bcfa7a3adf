"""The rules of the house (docs/architecture.md) are import-linter contracts in pyproject.toml,
run by `make lint`. These tests prove the contracts hold on the tree and that breaking a rule
breaks them: each case copies the product packages, adds one forbidden import, and expects
lint-imports to fail naming the contract."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["config", "core", "tenants", "exact", "gocardless", "reconciliation", "simulators",
            "demo"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=cwd, env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120,
    )


def test_the_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, copy / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("exact/odata.py", "import gocardless", "Exact and GoCardless never import each other"),
        ("gocardless/errors.py", "import exact.errors", "Exact and GoCardless never import"),
        ("tenants/models.py", "import exact.models", "Layers"),
        ("core/money.py", "import tenants.models", "Layers"),
        ("exact/models.py", "import reconciliation.collection.models", "Layers"),
        ("gocardless/models.py", "import config.settings", "Layers"),
        ("reconciliation/collection/models.py", "import simulators.harness",
         "never imports the simulators or the demo"),
        ("exact/odata.py", "import exact.client", "No import cycles"),
    ],
)
def test_one_forbidden_import_breaks_the_contracts(tree, module, line, contract):
    path = tree / module
    original = path.read_text()
    path.write_text(original + f"\n{line}  # injected by the test\n")
    try:
        result = lint_imports(tree)
    finally:
        path.write_text(original)
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout
