"""Workload 1 under pytest-benchmark: lines from a cached file, a pipe and a socketpair."""

from __future__ import annotations

import os
from types import ModuleType

import pytest

from bench.harness import lines_workload

SIZE = int(os.environ.get("CSAPP_BENCH_BYTES", str(16 << 20)))
CELLS = [(label, kind) for label in lines_workload.LINE_SIZES for kind in lines_workload.SOURCES]


def _run(benchmark, record, group, name, path, kind, count, reader):  # type: ignore[no-untyped-def]
    def once() -> int:
        with lines_workload.open_source(kind, path) as fd:
            return reader(fd)

    benchmark.group = group
    n = benchmark.pedantic(once, rounds=5, iterations=1, warmup_rounds=1)
    assert n == count
    record(group, name)


@pytest.mark.parametrize("label,kind", CELLS)
@pytest.mark.parametrize("how", ["iter", "readlineb"])
def test_rio(
    benchmark, record, impl: ModuleType, data_dir: str, label: str, kind: str, how: str
) -> None:  # type: ignore[no-untyped-def]
    size = lines_workload.LINE_SIZES[label]
    if how == "iter" and size >= impl.MAXLINE:
        pytest.skip("iteration returns MAXLINE-1 pieces of longer lines")
    path, count = lines_workload.make_data(data_dir, size, SIZE)
    if how == "iter":
        reader = lines_workload.rio_iter(impl)
    else:
        reader = lines_workload.rio_readlineb(impl, max(8192, size + 2))
    impl_name = "c" if impl.__name__.endswith("_c") else "python"
    name = ("for line in Rio" if how == "iter" else "Rio.readlineb() loop") + f" [{impl_name}]"
    _run(benchmark, record, f"lines {label}, {kind}", name, path, kind, count, reader)


PEERS = {
    "for line in BufferedReader": lines_workload.br_iter,
    "BufferedReader.readline() loop": lines_workload.br_readline,
    'sock.makefile("rb").readline() loop': lines_workload.makefile_readline,
}


@pytest.mark.parametrize("label,kind", CELLS)
@pytest.mark.parametrize("peer", list(PEERS))
def test_peer(benchmark, record, data_dir: str, label: str, kind: str, peer: str) -> None:  # type: ignore[no-untyped-def]
    if peer.startswith("sock.") and kind != "socketpair":
        pytest.skip("makefile needs a socket")
    path, count = lines_workload.make_data(data_dir, lines_workload.LINE_SIZES[label], SIZE)
    _run(benchmark, record, f"lines {label}, {kind}", peer, path, kind, count, PEERS[peer])
