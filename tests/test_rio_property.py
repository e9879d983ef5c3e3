"""Property test: any interleaving of ``Rio`` reads equals a plain model.

A random byte stream (long and short lines, empty lines, lines of exactly
``bufsize``, lines longer than ``MAXLINE``, NUL bytes, maybe no final newline)
goes through a socketpair in random chunks from a writer thread; the reader
applies a random sequence of every read method with a small random
``bufsize``, and each result is checked against ``Model``.
"""

from __future__ import annotations

import array
import os
import socket
import threading
import time
from types import ModuleType
from typing import Any, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.rioutil import Watchdog

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX descriptors")

MAXLINE = 8192  # docs/CONTRACT.md; checked against the module below


# -------------------------------------------------------------------- model


class Model:
    """The contract's semantics over a plain ``bytes`` and a position."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def rest(self) -> bytes:
        return self.data[self.pos :]

    def take(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += len(out)
        return out

    def line(self, limit: int) -> bytes:
        """Up to and including b"\\n", at most ``limit`` bytes (< 0: unbounded)."""
        end = self.data.find(b"\n", self.pos)
        end = len(self.data) if end < 0 else end + 1
        if limit >= 0:
            end = min(end, self.pos + limit)
        return self.take(end - self.pos)

    def readlineb(self, maxlen: int) -> bytes:
        return self.line(maxlen - 1)

    def readline(self, size: Optional[int]) -> bytes:
        if size is None or size < 0:
            return self.line(-1)
        return self.line(size)

    def read(self, n: Optional[int]) -> bytes:
        if n is None or n < 0:
            return self.take(len(self.data))
        return self.take(n)

    readnb = read


# --------------------------------------------------------------- strategies


@st.composite
def scenarios(draw: Any) -> Tuple[int, bytes, List[int], List[Tuple[Any, ...]]]:
    """(bufsize, stream, chunk sizes, operations)."""
    bufsize = draw(st.integers(1, 24))
    body = st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"."))
    line = st.one_of(
        body.map(lambda b: b + b"\n"),
        st.just(b"\n"),
        st.just(b"\r\n"),
        st.binary(max_size=4),  # bytes, maybe newlines
        st.just(b"B" * (bufsize - 1) + b"\n"),  # exactly bufsize
        st.just(b"b" * bufsize),  # bufsize, no newline
        st.just(b"\x00" * bufsize + b"\n"),  # NUL bytes
    )
    lines = draw(st.lists(line, max_size=25))
    longs = draw(
        st.lists(
            st.tuples(
                st.integers(0, len(lines)),
                st.integers(-2, 40),
                st.sampled_from([b"L", b"\x00", b"\r"]),
            ),
            max_size=2,
        )
    )
    for where, extra, fill in longs:  # around and beyond MAXLINE
        lines.insert(where, fill * (MAXLINE + extra) + b"\n")
    tail = draw(st.sampled_from([b"", b"", b"no newline at end", b"\x00"]))
    stream = b"".join(lines) + tail
    chunks = draw(st.lists(st.integers(1, 3 * bufsize + 50), min_size=1, max_size=12))
    small = st.integers(0, 3 * bufsize + 2)
    big = st.sampled_from([MAXLINE - 1, MAXLINE, MAXLINE + 1, 100000])
    size = st.one_of(small, small, small, big)
    op = st.one_of(
        st.tuples(
            st.just("readlineb"), st.one_of(st.integers(2, 3 * bufsize + 3), st.just(MAXLINE), big)
        ),
        st.tuples(st.just("readnb"), size),
        st.tuples(st.just("readinto"), size, st.sampled_from(["B", "i"])),
        st.tuples(st.just("readline"), st.one_of(size, st.just(-1), st.just(None), st.just(-7))),
        st.tuples(st.just("read"), st.one_of(size, size, st.just(-1), st.just(None))),
        st.tuples(st.just("read1"), st.one_of(size, st.just(-1), st.just(None))),
        st.tuples(st.just("peek"), st.integers(0, 10)),
        st.tuples(st.just("next")),
        st.tuples(st.just("buffered")),
    )
    ops = draw(st.lists(op, max_size=40))
    return bufsize, stream, chunks, ops


# --------------------------------------------------------------------- test


def _writer(
    sock: socket.socket, data: bytes, chunks: List[int], errors: List[BaseException]
) -> None:
    """Send ``data`` in the given chunk sizes (cycled), then half-close.

    Chunks are at least 1/1000 of the stream: at most ~1000 sends per example.
    """
    floor = len(data) // 1000
    try:
        pos = 0
        i = 0
        while pos < len(data):
            size = max(chunks[i % len(chunks)], floor)
            sock.sendall(data[pos : pos + size])
            pos += size
            i += 1
            if i % 3 == 0:
                time.sleep(0)  # let the reader run
        sock.shutdown(socket.SHUT_WR)
    except OSError as exc:  # the reader failed and closed its end
        errors.append(exc)


def _check_op(rp: Any, model: Model, op: Tuple[Any, ...]) -> None:
    name = op[0]
    if name == "readlineb":
        assert rp.readlineb(op[1]) == model.readlineb(op[1]), op
    elif name == "readnb":
        assert rp.readnb(op[1]) == model.readnb(op[1]), op
    elif name == "readinto":
        n, fmt = op[1], op[2]
        if fmt == "B":
            buf: Any = bytearray(b"\xa5" * n)
            nbytes = n
        else:
            buf = array.array("i", [0x5A5A5A5A]) * (n // 4 + 1)
            nbytes = len(buf) * 4
        expected = model.read(nbytes)
        assert rp.readinto(buf) == len(expected), op
        raw = memoryview(buf).cast("B")
        assert raw[: len(expected)] == expected, op
        assert raw[len(expected) :] == (b"\xa5" if fmt == "B" else b"\x5a") * (
            nbytes - len(expected)
        ), op
    elif name == "readline":
        assert rp.readline(op[1]) == model.readline(op[1]), op
    elif name == "read":
        assert rp.read(op[1]) == model.read(op[1]), op
    elif name == "read1":
        n = op[1]
        got = rp.read1(n)
        if n == 0:
            assert got == b"", op
        elif model.rest:
            assert len(got) >= 1, op  # blocks for >= 1 byte
            assert n is None or n < 0 or len(got) <= n, op
        assert got == model.take(len(got)), op
    elif name == "peek":
        got = rp.peek(op[1])
        assert model.rest.startswith(got), op
        assert bool(got) == bool(model.rest), op
        assert rp.buffered == len(got), op
    elif name == "next":
        expected = model.readline(-1)  # whole lines, as io's iteration
        if expected:
            assert next(rp) == expected, op
        else:
            with pytest.raises(StopIteration):
                next(rp)
    elif name == "buffered":
        assert 0 <= rp.buffered <= len(model.rest), op
    else:  # pragma: no cover
        raise AssertionError(op)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario=scenarios())
def test_any_interleaving_matches_model(
    rio: ModuleType, example_watchdog: Watchdog, scenario: Any
) -> None:
    """Every result equals the model's; the rest of the stream arrives intact."""
    assert rio.MAXLINE == MAXLINE
    bufsize, stream, chunks, ops = scenario
    a, b = socket.socketpair()
    errors: List[BaseException] = []
    writer = threading.Thread(target=_writer, args=(b, stream, chunks, errors), daemon=True)
    try:
        example_watchdog.start(rio.__name__)
        writer.start()
        rp = rio.Rio(a.fileno(), bufsize)
        model = Model(stream)
        for op in ops:
            _check_op(rp, model, op)
            assert rp.buffered <= len(model.rest)
        assert rp.read() == model.rest
        assert rp.readlineb() == b"" and rp.read1() == b"" and rp.peek() == b""
        rp.close()
    finally:
        example_watchdog.stop()
        a.close()  # a failed reader unblocks the writer (EPIPE)
        writer.join(10)
        b.close()
    assert not writer.is_alive()
    assert not errors, errors
