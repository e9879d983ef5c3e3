"""One fixture, both implementations: every behavioural test runs over each."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Iterator

import pytest

import csapp
from rioutil import Fds


def _required() -> bool:
    return os.environ.get("CSAPP_REQUIRE_EXTENSIONS", "").strip().lower() not in (
        "", "0", "false", "no")


def pytest_configure(config: pytest.Config) -> None:
    if _required() and "c" not in csapp.IMPLEMENTATIONS:
        raise pytest.UsageError(
            "CSAPP_REQUIRE_EXTENSIONS=1 but csapp._rio_c is not importable")


@pytest.fixture(scope="session", params=["c", "python"])
def rio(request: pytest.FixtureRequest) -> ModuleType:
    """The RIO module under test: ``csapp._rio_c`` or ``csapp._rio_py``."""
    name = request.param
    if name not in csapp.IMPLEMENTATIONS:
        pytest.skip("the compiled extension is not built here")
    return csapp.IMPLEMENTATIONS[name]


@pytest.fixture
def fds() -> Iterator[Fds]:
    """Descriptors opened by a test, closed at teardown whatever happens."""
    bag = Fds()
    try:
        yield bag
    finally:
        bag.closeall()
