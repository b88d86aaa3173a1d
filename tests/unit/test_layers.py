"""The layer table of DESIGN.md, enforced: imports flow one way,
api -> store/workers -> backends -> schemas, and the workload stands alone.

Every first-party import goes through the one installed namespace (``jobyard.*``);
a bare ``import api`` would work in the source tree and break in an installed wheel.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
OURS = ("api", "backends", "schemas", "store", "workers", "workloads", "client", "cli", "embedded")
THIRD_PARTY_FRAMEWORKS = {"flask", "flask_smorest", "celery", "kombu", "pymongo", "bson"}
# Concrete backend packages: the API reaches compute and storage only through the
# factory, the registry and the abstract interfaces.
CONCRETE_BACKENDS = (
    "jobyard.backends.process",
    "jobyard.backends.kubernetes",
    "jobyard.backends.slurm",
    "jobyard.backends.lepton",
    "jobyard.backends.storage.s3",
    "jobyard.backends.storage.file",
)

# layer -> (allowed first-party layers, forbidden third-party top-level names)
TABLE: dict[str, tuple[set[str], set[str]]] = {
    "schemas": (set(), THIRD_PARTY_FRAMEWORKS),
    "workloads": (set(), THIRD_PARTY_FRAMEWORKS),
    "backends": ({"schemas"}, THIRD_PARTY_FRAMEWORKS),
    "store": ({"schemas", "workloads"}, {"flask", "flask_smorest", "celery", "kombu"}),
    "workers": ({"schemas", "store", "backends", "workloads"}, {"flask", "flask_smorest"}),
    "api": ({"schemas", "store", "backends", "workers"}, set()),
    # the SDK and the people's CLI: a client of the REST API, nothing of the server's
    "client": ({"schemas"}, THIRD_PARTY_FRAMEWORKS),
}


def _modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "jobyard" and len(parts) > 1 else None


@pytest.mark.parametrize("layer", sorted(TABLE))
def test_each_layer_imports_only_what_the_table_allows(layer):
    allowed, forbidden_third_party = TABLE[layer]
    offenders = {}
    for path in sorted((ROOT / layer).rglob("*.py")):
        bad = set()
        for module in _modules(path):
            top = module.split(".")[0]
            target = _layer_of(module)
            if top in forbidden_third_party:
                bad.add(module)
            elif top == "jobyard" and target not in (None, layer, *allowed):
                bad.add(module)
            elif top == "jobyard" and target is None and module != "jobyard":
                bad.add(module)  # the composition root (cli, embedded) is above every layer
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert not offenders


def test_the_api_never_imports_a_concrete_backend():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in _modules(path) if m.startswith(CONCRETE_BACKENDS)
        )
        for path in sorted((ROOT / "api").rglob("*.py"))
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_first_party_code_is_imported_through_the_jobyard_namespace():
    bare = set(OURS) - {"cli", "embedded"}
    offenders = {}
    for folder in (*TABLE, "jobyard", "tests", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.is_symlink() or any(p.is_symlink() for p in path.parents):
                continue
            found = sorted(m for m in _modules(path) if m.split(".")[0] in bare)
            if found:
                offenders[str(path.relative_to(ROOT))] = found
    assert not offenders


def test_the_namespace_links_every_layer():
    for layer in TABLE:
        link = ROOT / "jobyard" / layer
        assert link.is_symlink() and link.resolve() == (ROOT / layer).resolve(), layer
