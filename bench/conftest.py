"""pytest-benchmark harness: ``pytest bench --benchmark-only``.

Every row exists for the ``c`` and ``python`` implementations; peers sit in
the same benchmark group, and the summary at the end prints each row's ratio
to the group's reference. Line reading is timed by pytest-benchmark itself;
the other workloads (copy, echo, memory) measure a rate inside each round
(a child's own clock, the load generator's count), kept in ``extra_info``
and summarised as medians of rates."""

from __future__ import annotations

import statistics
from types import ModuleType
from typing import Dict, List, Tuple

import pytest

import csapp
from bench.harness.core import pin_to_one_cpu
from bench.harness.server_process import C_EPOLL, C_THREADED

# group -> [(name, median seconds)]
_MEDIANS: Dict[str, List[Tuple[str, float]]] = {}
REFERENCE = "BufferedReader.readline() loop"
# group -> (unit, [(name, median rate)])
_RATES: Dict[str, Tuple[str, List[Tuple[str, float]]]] = {}
RATE_REFERENCES = {"copy": "cat", "echo": C_THREADED}
RATE_LIMITS = {"echo": C_EPOLL}  # a second ratio column: the one-thread limit
IMPLS = [name for name in ("c", "python") if name in csapp.IMPLEMENTATIONS]


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


@pytest.fixture
def measure_rate(benchmark):  # type: ignore[no-untyped-def]
    """Run a case returning a rate for some rounds; record the median rate."""

    def run(group: str, name: str, unit: str, case, rounds: int = 5) -> float:  # type: ignore[no-untyped-def]
        rates: List[float] = []
        benchmark.group = group
        benchmark.pedantic(lambda: rates.append(case()), rounds=rounds, iterations=1)
        median = statistics.median(rates)
        benchmark.extra_info[unit] = median
        _RATES.setdefault(group, (unit, []))[1].append((name, median))
        return median

    return run


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    _rate_summary(terminalreporter)
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


def _rate_summary(tr) -> None:  # type: ignore[no-untyped-def]
    if not _RATES:
        return
    tr.section("csapp: rates measured in each round (medians) and their ratios")
    for group, (unit, rows) in _RATES.items():
        refs = []  # (name, rate) of each reference measured in this group
        for references in (RATE_REFERENCES, RATE_LIMITS):
            ref_name = next((r for p, r in references.items() if group.startswith(p)), None)
            ref = next((v for n, v in rows if n == ref_name), None)
            if ref_name and ref:
                refs.append((ref_name, ref))
        tr.write_line(f"{group}  ({unit}{''.join('; ÷ ' + n for n, _ in refs)})")
        for name, value in rows:
            ratios = "  ".join(f"{value / ref:6.2f}×" for _, ref in refs)
            tr.write_line(f"  {name:40} {value:12.3f}  {ratios}")
