"""Workload 1: reading lines from a cached file, a pipe and a socketpair.

Peers: ``io.BufferedReader(io.FileIO(fd), 8192)`` with ``readline()`` and with
``for line in f``, ``sock.makefile("rb")`` (socketpair only), the lecture's
byte-at-a-time ``rio_readlineb`` in C, and a memchr loop in C (the floor).
For a cached file, ``io.BytesIO`` over the same bytes already in memory is a
reference with no system call at all: the standard library's own in-memory
line reader.
Rates are million lines per second; every reader must see every line.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import time
from contextlib import contextmanager
from types import ModuleType
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from . import cprogs
from .core import Case, Result, run_group

LINE_SIZES = {"16 B": 16, "64 B": 64, "1 KiB": 1024, "20 KiB": 20480}
SOURCES = ("file", "pipe", "socketpair")
Reader = Callable[[int], int]


def make_data(directory: str, line_size: int, total: int) -> Tuple[str, int]:
    """A file of lines of exactly ``line_size`` bytes (newline included)."""
    count = max(1, total // line_size)
    path = os.path.join(directory, f"lines-{line_size}-{count}")
    if not os.path.exists(path):
        body = bytes((97 + i % 26) for i in range(line_size - 1)) + b"\n"
        with open(path, "wb") as f:
            chunk = body * max(1, (1 << 20) // line_size)
            left = count
            per = len(chunk) // line_size
            while left > 0:
                n = min(per, left)
                f.write(chunk[: n * line_size])
                left -= n
    with open(path, "rb") as f:  # warm the page cache
        while f.read(1 << 20):
            pass
    return path, count


def _writer(path: str, out_fd: int) -> int:
    """Fork a child that streams the file into ``out_fd`` (kernel copy)."""
    pid = os.fork()
    if pid == 0:  # child: only system calls, then _exit
        try:
            src = os.open(path, os.O_RDONLY)
            size = os.fstat(src).st_size
            offset = 0
            while offset < size:
                offset += os.sendfile(out_fd, src, offset, size - offset)
        finally:
            os._exit(0)
    return pid


@contextmanager
def open_source(kind: str, path: str) -> Iterator[int]:
    """A readable descriptor delivering the file's bytes by ``kind``."""
    if kind == "file":
        fd = os.open(path, os.O_RDONLY)
        try:
            yield fd
        finally:
            os.close(fd)
        return
    if kind == "pipe":
        rfd, wfd = os.pipe()
    else:
        a, b = socket.socketpair()
        rfd, wfd = a.detach(), b.detach()
    pid = _writer(path, wfd)
    os.close(wfd)
    try:
        yield rfd
    finally:
        os.close(rfd)
        os.waitpid(pid, 0)


# ------------------------------------------------------------------ readers


def count_lines(readline: Callable[[], bytes]) -> int:
    """Call ``readline()`` until it returns ``b""``: the loop every readline row times."""
    n = 0
    while readline():
        n += 1
    return n


def rio_iter(mod: ModuleType) -> Reader:
    def read(fd: int) -> int:
        n = 0
        for _ in mod.Rio(fd):
            n += 1
        return n

    return read


def rio_readlineb(mod: ModuleType, maxlen: int) -> Reader:
    """``readlineb()`` as a user calls it: no argument while lines fit MAXLINE."""
    if maxlen <= mod.MAXLINE:

        def read(fd: int) -> int:
            return count_lines(mod.Rio(fd).readlineb)

        return read

    def read_long(fd: int) -> int:
        readlineb = mod.Rio(fd).readlineb
        n = 0
        while readlineb(maxlen):
            n += 1
        return n

    return read_long


def br_iter(fd: int) -> int:
    n = 0
    for _ in io.BufferedReader(io.FileIO(fd, closefd=False), 8192):
        n += 1
    return n


def br_readline(fd: int) -> int:
    return count_lines(io.BufferedReader(io.FileIO(fd, closefd=False), 8192).readline)


def makefile_readline(fd: int) -> int:
    sock = socket.socket(fileno=os.dup(fd))
    f = sock.makefile("rb")
    n = count_lines(f.readline)
    f.close()
    sock.close()
    return n


def _rate(count: int, reader: Callable[[object], int], source: object) -> float:
    """Million lines per second of ``reader(source)``, which must see ``count`` lines."""
    t0 = time.perf_counter()
    n = reader(source)
    dt = time.perf_counter() - t0
    if n != count:
        raise RuntimeError(f"read {n} lines, expected {count}")
    return n / dt / 1e6


def _python_case(path: str, kind: str, count: int, reader: Reader) -> Case:
    def case() -> float:
        with open_source(kind, path) as fd:
            return _rate(count, reader, fd)  # type: ignore[arg-type]

    return case


def bytesio_iter(data: bytes) -> int:
    n = 0
    for _ in io.BytesIO(data):
        n += 1
    return n


def bytesio_readline(data: bytes) -> int:
    return count_lines(io.BytesIO(data).readline)


def _memory_case(path: str, count: int, reader: Callable[[bytes], int]) -> Case:
    """The file's bytes already in memory: no system call is timed."""

    def case() -> float:
        with open(path, "rb") as f:
            data = f.read()
        return _rate(count, reader, data)  # type: ignore[arg-type]

    return case


def _c_case(path: str, kind: str, count: int, prog: str, maxlen: int) -> Case:
    binary = cprogs.program(prog)

    def case() -> float:
        with open_source(kind, path) as fd:
            out = subprocess.run(
                [binary, str(maxlen)], stdin=fd, capture_output=True, check=True, text=True
            ).stdout.split()
        n, seconds = int(out[0]), float(out[2])
        if n != count:
            raise RuntimeError(f"read {n} lines, expected {count}")
        return n / seconds / 1e6

    return case


def cases_for(
    path: str,
    kind: str,
    line_size: int,
    count: int,
    impls: Dict[str, ModuleType],
    with_c: bool = True,
) -> Dict[str, Case]:
    """Every reader of one (line size, source) cell, ours first."""
    maxlen = max(8192, line_size + 2)  # MAXLINE unless a line needs more
    cases: Dict[str, Case] = {}
    for name, mod in impls.items():
        if line_size < mod.MAXLINE:
            cases[f"for line in Rio [{name}]"] = _python_case(path, kind, count, rio_iter(mod))
        cases[f"Rio.readlineb() loop [{name}]"] = _python_case(
            path, kind, count, rio_readlineb(mod, maxlen)
        )
    cases["for line in BufferedReader"] = _python_case(path, kind, count, br_iter)
    cases["BufferedReader.readline() loop"] = _python_case(path, kind, count, br_readline)
    if kind == "socketpair":
        cases['sock.makefile("rb").readline() loop'] = _python_case(
            path, kind, count, makefile_readline
        )
    if kind == "file" and line_size < 8192:
        cases["for line in BytesIO (bytes in memory)"] = _memory_case(path, count, bytesio_iter)
        cases["BytesIO.readline() loop (bytes in memory)"] = _memory_case(
            path, count, bytesio_readline
        )
    if with_c:
        cases["C memchr loop (floor)"] = _c_case(path, kind, count, "lines_floor", maxlen)
        cases["C CSAPP byte-at-a-time rio_readlineb"] = _c_case(
            path, kind, count, "lines_byte", maxlen
        )
    return cases


def run(
    directory: str,
    impls: Dict[str, ModuleType],
    rounds: int,
    total_bytes: int,
    sizes: Optional[List[str]] = None,
    sources: Optional[List[str]] = None,
    progress: Optional[Callable[[str], None]] = None,
) -> List[Result]:
    results: List[Result] = []
    for label in sizes or list(LINE_SIZES):
        line_size = LINE_SIZES[label]
        path, count = make_data(directory, line_size, total_bytes)
        for kind in sources or list(SOURCES):
            group = f"lines {label}, {kind}"
            results += run_group(
                group, "M lines/s", cases_for(path, kind, line_size, count, impls), rounds, progress
            )
    return results
