"""The backend contract suite's fixtures: ``target``, one per compute backend.

Every test here takes ``target`` and runs once per target of ``TARGETS`` that declares
the test's optional scenario (``@pytest.mark.needs(...)``; tests without the mark are for
all targets): the parameter lists are built from the declarations, nothing is skipped.
A target brings its backend up from the backend folders' own fixtures, which are imported
here under names of their own (the API doubles of both Kubernetes and Lepton are ``fake``
in their folders).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jobyard.schemas.settings import Settings
from tests.contract.targets import OPTIONAL, TARGETS, Target
from tests.kubernetes.conftest import fake as kubernetes_api  # noqa: F401  (fixtures)
from tests.kubernetes.conftest import nodes  # noqa: F401  (the double's nodes)
from tests.lepton.conftest import fake as lepton_api  # noqa: F401
from tests.lepton.conftest import (
    node_groups,  # noqa: F401  (the double's node groups)
    volume,  # noqa: F401  (the shared results volume)
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "needs(scenario): run only for the contract targets declaring the scenario"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" not in metafunc.fixturenames:
        return
    needed = {m.args[0] for m in metafunc.definition.iter_markers("needs")}
    assert needed <= OPTIONAL, needed - OPTIONAL
    names = [name for name, kind in TARGETS.items() if needed <= kind.scenarios]
    metafunc.parametrize("target", names, indirect=True)


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    found = TARGETS[request.param](request)
    yield found
    found.close()


@pytest.fixture
def settings(settings: Settings, target: Target) -> Settings:
    return target.configure(settings)


@pytest.fixture
def session(target: Target, login: Any) -> Any:
    """A logged-in user with what the target's jobs need (a workspace) created."""
    s = login()
    target.prepare(s)
    return s
