"""The stand-in's catalog entries (``entries.yaml``), ready to import: the stand-in copied
where every user can read it (a SLURM node runs it as the cluster's user, who cannot read
a checkout under /root), ``@STANDIN@`` replaced by that copy's path."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobyard.schemas.catalog import load_entries

HERE = Path(__file__).parent


def entries(standin: Path) -> list[dict[str, Any]]:
    text = (HERE / "entries.yaml").read_text().replace("@STANDIN@", str(standin))
    found: list[dict[str, Any]] = yaml.safe_load(text)["base_experiments"]
    return found


def install(store: Any, standin: Path) -> dict[str, str]:
    """Import the entries as global ones; network_arch -> entry id."""
    ids = {}
    for entry in load_entries({"base_experiments": entries(standin)}):
        doc, _ = store.catalog.put(entry)
        ids[entry.network_arch] = str(doc["_id"])
    return ids


@pytest.fixture(scope="session")
def tao_standin() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="jy-tao-"))
    base.chmod(0o755)
    copy = base / "standin.py"
    shutil.copy2(HERE / "standin.py", copy)
    copy.chmod(0o755)
    yield copy
    shutil.rmtree(base, ignore_errors=True)
