"""Imports flow one way: api -> store/workers -> backends -> schemas (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
# package -> top-level packages it must never import
FORBIDDEN = {
    "schemas": {"api", "store", "workers", "backends", "jobyard", "flask", "celery", "pymongo"},
    "backends": {"api", "store", "workers", "jobyard", "flask", "celery", "pymongo"},
    "store": {"api", "workers", "jobyard", "flask", "celery"},
    "workers": {"api", "jobyard", "flask"},
    "api": {"jobyard"},
    "workloads": {"api", "store", "workers", "backends", "jobyard", "flask", "celery", "pymongo"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downward(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders
