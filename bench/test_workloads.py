"""Workloads 2-5 under pytest-benchmark: copy, echo request/response, bulk echo,
memory. The cases are those of ``python -m bench`` (``bench.harness``); each
round measures a rate inside it, and the summary prints the medians and their
ratios to ``cat`` (copy) or to the C threaded and the C one-thread epoll echo
servers (echo). Unlike ``python -m bench``, a case's rounds run back to back,
not rotated among peers: prefer ``python -m bench`` for the published figures.

Sizes: ``CSAPP_BENCH_COPY_MIB`` (64), ``CSAPP_BENCH_ECHO_SECONDS`` (2),
``CSAPP_BENCH_BULK_MIB`` (32), ``CSAPP_BENCH_IDLE`` (1000 connections),
``CSAPP_BENCH_ROUNDS`` (5).
"""

from __future__ import annotations

import os
from typing import Dict, Tuple

import pytest

import csapp
from bench.conftest import IMPLS
from bench.harness import copy_workload, echo_workload, memory_workload
from bench.harness.core import Case
from bench.harness.server_process import C_EPOLL, C_THREADED, OUR_MODES, ServerSpec, server_specs

COPY_MIB = int(os.environ.get("CSAPP_BENCH_COPY_MIB", "64"))
ECHO_SECONDS = float(os.environ.get("CSAPP_BENCH_ECHO_SECONDS", "2"))
BULK_MIB = int(os.environ.get("CSAPP_BENCH_BULK_MIB", "32"))
IDLE = int(os.environ.get("CSAPP_BENCH_IDLE", "1000"))
ROUNDS = int(os.environ.get("CSAPP_BENCH_ROUNDS", "5"))

COPY_FAST = [f"csapp copy {method} [{impl}]" for impl in IMPLS for method in ("buffered", "fast")]
COPY_FAST += ["shutil.copyfileobj", "cat"]
COPY_SLOW = [f"csapp copy byte [{impl}]" for impl in IMPLS]
COPY_SLOW += ["os.read(fd, 1) loop, Python", "cat"]
PEER_SERVERS = [
    C_THREADED,
    C_EPOLL,
    "socketserver.ThreadingTCPServer",
    "ThreadingTCPServer + csapp handler",
    "ThreadingTCPServer, bare recv (ceiling)",
    "asyncio streams",
    "uvloop streams",
]
SERVERS = [f"csapp {mode} [{impl}]" for impl in IMPLS for mode in OUR_MODES]
SERVERS += PEER_SERVERS


@pytest.fixture(scope="session")
def copy_cases(data_dir: str) -> Tuple[Dict[str, Case], Dict[str, Case]]:
    notes: Dict[str, str] = {}
    return copy_workload.cases(
        copy_workload.make_file(data_dir, COPY_MIB << 20),
        copy_workload.make_file(data_dir, 256 << 10),
        IMPLS,
        notes,
    )


@pytest.fixture(scope="session")
def servers() -> Dict[str, ServerSpec]:
    """name -> every echo server (compiles the C server once)."""
    return {spec.name: spec for spec in server_specs(IMPLS)}


@pytest.mark.parametrize("name", COPY_FAST)
def test_copy(measure_rate, copy_cases, name: str) -> None:  # type: ignore[no-untyped-def]
    measure_rate(
        f"{copy_workload.GROUP}, {COPY_MIB} MiB", name, "MB/s", copy_cases[0][name], ROUNDS
    )


@pytest.mark.parametrize("name", COPY_SLOW)
def test_copy_one_byte_per_call(measure_rate, copy_cases, name: str) -> None:  # type: ignore[no-untyped-def]
    measure_rate(
        f"{copy_workload.GROUP}, 256 KiB, one byte per system call",
        name,
        "MB/s",
        copy_cases[1][name],
        min(ROUNDS, 3),
    )


def _server(servers: Dict[str, ServerSpec], name: str) -> ServerSpec:
    if name not in servers:
        pytest.skip(f"{name} is not available here (uvloop comes with the [bench] extra)")
    return servers[name]


@pytest.mark.parametrize("conns", [1, 10, 100])
@pytest.mark.parametrize("name", SERVERS)
def test_echo_request_response(measure_rate, servers, name: str, conns: int) -> None:  # type: ignore[no-untyped-def]
    if "iterative" in name and conns > 1:
        pytest.skip("the iterative server serves one client at a time")
    case = echo_workload.server_case(
        _server(servers, name), lambda box: echo_workload.rr_case(box, conns, ECHO_SECONDS)
    )
    measure_rate(f"echo 64 B request/response, N={conns}", name, "k req/s", case, ROUNDS)


@pytest.mark.parametrize("name", SERVERS)
def test_echo_bulk(measure_rate, servers, name: str) -> None:  # type: ignore[no-untyped-def]
    case = echo_workload.server_case(
        _server(servers, name), lambda box: echo_workload.bulk_case(box, BULK_MIB)
    )
    measure_rate(f"echo bulk, {BULK_MIB} MiB of 64 B lines", name, "MB/s", case, ROUNDS)


@pytest.mark.parametrize("impl", IMPLS)
def test_memory_per_idle_connection(measure_rate, impl: str) -> None:  # type: ignore[no-untyped-def]
    memory_workload.raise_fd_limit(IDLE + 200)
    [spec] = server_specs([impl], with_peers=False, modes=["event"])
    measure_rate(
        f"memory: event server, {IDLE} idle connections",
        spec.name,
        "KiB/conn",
        lambda: memory_workload.rss_per_connection(spec, IDLE),
        min(ROUNDS, 3),
    )


@pytest.mark.parametrize("impl", IMPLS)
def test_rio_object_size(impl: str) -> None:
    """Not timed: ``sys.getsizeof(Rio)`` stays within bufsize + 256 bytes."""
    [result] = memory_workload.rio_sizes({impl: csapp.IMPLEMENTATIONS[impl]})
    assert result.values[0] <= 256, result
