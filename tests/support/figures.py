"""A pytest plugin that collects the figures reliability tests measure.

A test takes the ``figures`` fixture and calls it with one line, e.g.
``figures("10,000 idle connections, event server: 1.9 KiB each")``. The lines
are printed in a "csapp figures" section at the end of the run (also under
``-q``), and appended to the file named by ``CSAPP_FIGURES_FILE`` when set, so
CI's log and the README's reliability table can quote the last run.
"""

from __future__ import annotations

import os
from typing import Callable, List

import pytest

FIGURES = pytest.StashKey[List[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES] = []


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record one line of measured figures under this test's name."""
    lines = request.config.stash[FIGURES]

    def record(line: str) -> None:
        entry = f"{request.node.nodeid}: {line}"
        lines.append(entry)
        path = os.environ.get("CSAPP_FIGURES_FILE")
        if path:
            with open(path, "a", encoding="utf-8") as out:
                out.write(entry + "\n")

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = terminalreporter.config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("csapp figures")
        for line in lines:
            terminalreporter.write_line(line)
