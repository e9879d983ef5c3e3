"""Workloads 2-5 under pytest-benchmark: copy, echo request/response, bulk echo,
memory. The cases are those of ``csapp bench`` (``csapp.benchmarks``); each
round measures a rate inside it, and the summary prints the medians and their
ratios to ``cat`` (copy) or the C threaded echo server (echo). Unlike
``csapp bench``, a case's rounds run back to back, not rotated among peers:
prefer ``csapp bench`` for the published figures.

Sizes: ``CSAPP_BENCH_COPY_MIB`` (64), ``CSAPP_BENCH_ECHO_SECONDS`` (2),
``CSAPP_BENCH_BULK_MIB`` (32), ``CSAPP_BENCH_IDLE`` (1000 connections),
``CSAPP_BENCH_ROUNDS`` (5).
"""

from __future__ import annotations

import os
from typing import Dict, List, Tuple

import pytest

import csapp
from csapp.benchmarks import copy, echo, memory
from csapp.benchmarks.core import Case

from conftest import IMPLS

COPY_MIB = int(os.environ.get("CSAPP_BENCH_COPY_MIB", "64"))
ECHO_SECONDS = float(os.environ.get("CSAPP_BENCH_ECHO_SECONDS", "2"))
BULK_MIB = int(os.environ.get("CSAPP_BENCH_BULK_MIB", "32"))
IDLE = int(os.environ.get("CSAPP_BENCH_IDLE", "1000"))
ROUNDS = int(os.environ.get("CSAPP_BENCH_ROUNDS", "5"))

COPY_FAST = [f"csapp copy {method} [{impl}]" for impl in IMPLS for method in ("buffered", "fast")]
COPY_FAST += ["shutil.copyfileobj", "cat"]
COPY_SLOW = [f"csapp copy byte [{impl}]" for impl in IMPLS]
COPY_SLOW += ["os.read(fd, 1) loop, Python", "cat"]
PEER_SERVERS = ["C threaded echo (memchr RIO)", "socketserver.ThreadingTCPServer",
                "asyncio streams", "uvloop streams"]
SERVERS = [f"csapp {mode} [{impl}]" for impl in IMPLS for mode in echo.OUR_MODES]
SERVERS += PEER_SERVERS


@pytest.fixture(scope="session")
def copy_cases(data_dir: str) -> Tuple[Dict[str, Case], Dict[str, Case]]:
    notes: Dict[str, str] = {}
    return copy.cases(copy.make_file(data_dir, COPY_MIB << 20),
                      copy.make_file(data_dir, 256 << 10), IMPLS, notes)


@pytest.fixture(scope="session")
def server_argv() -> Dict[str, List[str]]:
    """name -> argv of every echo server (compiles the C server once)."""
    return echo.server_commands(IMPLS)


@pytest.mark.parametrize("name", COPY_FAST)
def test_copy(measure_rate, copy_cases, name: str) -> None:  # type: ignore[no-untyped-def]
    measure_rate(f"{copy.GROUP}, {COPY_MIB} MiB", name, "MB/s", copy_cases[0][name], ROUNDS)


@pytest.mark.parametrize("name", COPY_SLOW)
def test_copy_one_byte_per_call(measure_rate, copy_cases, name: str) -> None:  # type: ignore[no-untyped-def]
    measure_rate(f"{copy.GROUP}, 256 KiB, one byte per system call", name, "MB/s",
                 copy_cases[1][name], min(ROUNDS, 3))


def _server(server_argv: Dict[str, List[str]], name: str) -> List[str]:
    if name not in server_argv:
        pytest.skip(f"{name} is not available here (uvloop comes with the [bench] extra)")
    return server_argv[name]


@pytest.mark.parametrize("conns", [1, 10, 100])
@pytest.mark.parametrize("name", SERVERS)
def test_echo_request_response(measure_rate, server_argv, name: str, conns: int) -> None:  # type: ignore[no-untyped-def]
    if "iterative" in name and conns > 1:
        pytest.skip("the iterative server serves one client at a time")
    case = echo.server_case(_server(server_argv, name),
                            lambda box: echo.rr_case(box, conns, ECHO_SECONDS))
    measure_rate(f"echo 64 B request/response, N={conns}", name, "k req/s", case, ROUNDS)


@pytest.mark.parametrize("name", SERVERS)
def test_echo_bulk(measure_rate, server_argv, name: str) -> None:  # type: ignore[no-untyped-def]
    case = echo.server_case(_server(server_argv, name),
                            lambda box: echo.bulk_case(box, BULK_MIB))
    measure_rate(f"echo bulk, {BULK_MIB} MiB of 64 B lines", name, "MB/s", case, ROUNDS)


@pytest.mark.parametrize("impl", IMPLS)
def test_memory_per_idle_connection(measure_rate, impl: str) -> None:  # type: ignore[no-untyped-def]
    memory.raise_fd_limit(IDLE + 200)
    argv = echo.server_commands([impl], peers=False, modes=["event"])[f"csapp event [{impl}]"]
    measure_rate(f"memory: event server, {IDLE} idle connections", f"csapp event [{impl}]",
                 "KiB/conn", lambda: memory.rss_per_connection(argv, IDLE), min(ROUNDS, 3))


@pytest.mark.parametrize("impl", IMPLS)
def test_rio_object_size(impl: str) -> None:
    """Not timed: ``sys.getsizeof(Rio)`` stays within bufsize + 256 bytes."""
    [result] = memory.rio_sizes({impl: csapp.IMPLEMENTATIONS[impl]})
    assert result.values[0] <= 256, result
