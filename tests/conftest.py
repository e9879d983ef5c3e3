"""One fixture, both implementations: every behavioural test runs over each."""

from __future__ import annotations

import signal
from types import ModuleType
from typing import Iterator

import pytest

import csapp
from csapp._switches import REQUIRE_EXTENSIONS, env_flag
from support.rioutil import TWINS, Fds, Watchdog

# The helper modules are plugins: their fixtures (``impl``, ``start_server``,
# ``shared_servers``) reach every test without an import.
pytest_plugins = ["support.netutil", "support.aioutil", "support.figures", "support.tlsutil"]


def pytest_configure(config: pytest.Config) -> None:
    if env_flag(REQUIRE_EXTENSIONS) and "c" not in csapp.IMPLEMENTATIONS:
        raise pytest.UsageError(f"{REQUIRE_EXTENSIONS}=1 but csapp._rio_c is not importable")
    # A shell starts its background jobs with SIGINT ignored, and Python then
    # leaves it ignored: Ctrl-C would reach neither this process nor the
    # servers and children the tests start (an ignored signal stays ignored
    # across exec; a handled one is reset to the default there).
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", params=TWINS)
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


@pytest.fixture
def watchdog() -> Iterator[Watchdog]:
    """A hung test fails with ``Hung`` after 30 s (call the value to re-arm
    shorter). Modules that block on descriptors use it for every test:
    ``pytestmark = pytest.mark.usefixtures("watchdog")``."""
    dog = Watchdog()
    old = dog.install()
    dog(dog.seconds)
    try:
        yield dog
    finally:
        dog.remove(old)


@pytest.fixture(scope="module")
def example_watchdog() -> Iterator[Watchdog]:
    """The watchdog for Hypothesis tests: armed per example (``start``/``stop``)."""
    dog = Watchdog()
    old = dog.install()
    try:
        yield dog
    finally:
        dog.remove(old)
