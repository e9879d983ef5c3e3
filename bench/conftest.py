"""pytest-benchmark harness: ``pytest bench --benchmark-only``.

Every row exists for the ``c`` and ``python`` implementations; peers sit in
the same benchmark group, and the summary at the end prints each row's ratio
to the group's reference (the standard library's reader)."""

from __future__ import annotations

import os
import statistics
from types import ModuleType
from typing import Dict, List, Tuple

import pytest

import csapp
from csapp.benchmarks.core import pin_to_one_cpu

# group -> [(name, median seconds)]
_MEDIANS: Dict[str, List[Tuple[str, float]]] = {}
REFERENCE = "BufferedReader.readline() loop"


def pytest_configure(config: pytest.Config) -> None:
    pin_to_one_cpu()  # sender and reader on the same CPU, as the anchors


@pytest.fixture(scope="session", params=["c", "python"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    if request.param not in csapp.IMPLEMENTATIONS:
        pytest.skip("the compiled extension is not built here")
    return csapp.IMPLEMENTATIONS[request.param]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("bench-data"))


@pytest.fixture
def record(benchmark):  # type: ignore[no-untyped-def]
    """Call with (group, name) after the benchmark ran, to feed the ratio summary."""
    def done(group: str, name: str) -> None:
        stats = benchmark.stats
        if stats is not None:
            _MEDIANS.setdefault(group, []).append((name, stats.stats.median))
    return done


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if not _MEDIANS:
        return
    tr = terminalreporter
    tr.section("csapp: ratios to the standard library (higher is faster)")
    for group, rows in _MEDIANS.items():
        ref = next((t for n, t in rows if n == REFERENCE), None)
        tr.write_line(f"{group}")
        for name, seconds in rows:
            ratio = f"{ref / seconds:6.2f}×" if ref else "   n/a"
            tr.write_line(f"  {name:45} {seconds * 1e3:10.2f} ms  {ratio}")
