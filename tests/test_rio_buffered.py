"""The buffered ``Rio`` (CSAPP ``rio_t`` plus the ``io.BufferedIOBase`` read API).

Every test runs over both implementations through the ``rio`` fixture. The
last section adapts the read side of CPython's ``Lib/test/test_io.py``
``BufferedReaderTest``, rewritten for RIO semantics.
"""

from __future__ import annotations

import array
import errno
import gc
import io
import itertools
import os
import pickle
import socket
import threading
import time
from types import ModuleType
from typing import Any, Callable, List, Optional, Tuple

import pytest

from csapp._shared import (
    MSG_BUFSIZE,
    MSG_CLOSED,
    MSG_MAXLEN,
    MSG_NEGATIVE_N,
    MSG_READ_LENGTH,
    MSG_UNINIT,
    msg_no_pickle,
)
from support.rioutil import Fds, Watchdog, Writer, exactly

pytestmark = [
    pytest.mark.skipif(os.name != "posix", reason="POSIX descriptors"),
    pytest.mark.usefixtures("watchdog"),
]

EBADF_TEXT = str(OSError(errno.EBADF, os.strerror(errno.EBADF)))


# ------------------------------------------------------------------ helpers


def split(data: bytes, size: int) -> List[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def fed(
    rio: ModuleType, fds: Fds, data: bytes, bufsize: Optional[int] = None, eof: bool = True
) -> Tuple[Any, int]:
    """A ``Rio`` over a pipe already holding ``data`` (closed after it if ``eof``)."""
    assert len(data) <= 65536
    r, w = fds.pipe()
    if data:
        os.write(w, data)
    if eof:
        fds.close(w)
    rp = rio.Rio(r) if bufsize is None else rio.Rio(r, bufsize)
    return rp, w


def threaded(
    rio: ModuleType, fds: Fds, data: bytes, bufsize: int, chunk: int, pause: float = 0.0
) -> Tuple[Any, Writer]:
    """A ``Rio`` over a pipe that a thread fills in ``chunk``-byte writes."""
    r, w = fds.pipe()
    writer = Writer(fds, w, split(data, chunk), pause=pause)
    writer.start()
    return rio.Rio(r, bufsize), writer


def pieces(call: Callable[[], bytes], limit: int = 100000) -> List[bytes]:
    """Results of ``call`` until it returns ``b""`` (bounded)."""
    out: List[bytes] = []
    for _ in range(limit):
        piece = call()
        if not piece:
            return out
        out.append(piece)
    raise AssertionError("no EOF")


# -------------------------------------------------------------- readlineb


@pytest.mark.parametrize("bufsize", [1, 2, 3, 7, 8192])
def test_readlineb_lines_and_eof(rio: ModuleType, fds: Fds, bufsize: int) -> None:
    rp, _ = fed(rio, fds, b"ab\ncd\n\nlast without newline", bufsize)
    assert rp.readlineb() == b"ab\n"
    assert rp.readlineb() == b"cd\n"
    assert rp.readlineb() == b"\n"
    assert rp.readlineb() == b"last without newline"
    assert rp.readlineb() == b""
    assert rp.readlineb() == b""


def test_readlineb_eof_with_nothing(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"")
    assert rp.readlineb() == b""
    assert rp.readlineb(2) == b""


@pytest.mark.parametrize("bufsize", [1, 3, 16, 8192])
@pytest.mark.parametrize("maxlen", [2, 3, 5, 21, 22, 23, 100])
def test_readlineb_maxlen(rio: ModuleType, fds: Fds, bufsize: int, maxlen: int) -> None:
    """At most ``maxlen - 1`` bytes; a longer line comes in pieces, nothing lost."""
    line = bytes(range(48, 48 + 21)) + b"\n"  # 22 bytes with the newline
    data = line + b"second\n"
    rp, _ = fed(rio, fds, data, bufsize)
    first = []
    for _ in range(100):
        piece = rp.readlineb(maxlen)
        assert 0 < len(piece) <= maxlen - 1
        assert b"\n" not in piece[:-1]
        first.append(piece)
        if piece.endswith(b"\n"):
            break
    assert b"".join(first) == line
    assert [len(p) for p in first[:-1]] == [maxlen - 1] * (len(first) - 1)
    rest = pieces(lambda: rp.readlineb(maxlen))
    assert b"".join(rest) == b"second\n"


def test_readlineb_maxlen_exact_fit(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"abcd\nabcd\n", 4)
    assert rp.readlineb(6) == b"abcd\n"  # 5 bytes fit in maxlen - 1
    assert rp.readlineb(5) == b"abcd"  # the newline would be byte 5
    assert rp.readlineb(5) == b"\n"
    assert rp.readlineb(5) == b""


def test_readlineb_maxlen_two_is_one_byte(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"ab\n\nc")
    assert pieces(lambda: rp.readlineb(2)) == [b"a", b"b", b"\n", b"\n", b"c"]


@pytest.mark.parametrize("maxlen", [1, 0, -1, -(1 << 70)])
def test_readlineb_maxlen_too_small(rio: ModuleType, fds: Fds, maxlen: int) -> None:
    rp, _ = fed(rio, fds, b"abc\n")
    assert rp.peek() == b"abc\n"
    with pytest.raises(ValueError, match=exactly(MSG_MAXLEN)):
        rp.readlineb(maxlen)
    with pytest.raises(ValueError, match=exactly(MSG_MAXLEN)):
        rio.rio_readlineb(rp, maxlen)
    assert rp.buffered == 4
    assert rp.readlineb() == b"abc\n"


def test_readlineb_huge_maxlen(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"x" * 20000 + b"\nz")
    assert rp.readlineb(1 << 70) == b"x" * 20000 + b"\n"
    assert rp.readlineb(2**63 - 1) == b"z"


def test_readlineb_default_is_maxline(rio: ModuleType, fds: Fds) -> None:
    assert rio.MAXLINE == 8192 and rio.RIO_BUFSIZE == 8192
    rp, _ = fed(rio, fds, b"y" * 10000 + b"\n")
    assert rp.readlineb() == b"y" * (rio.MAXLINE - 1)
    assert rp.readlineb() == b"y" * (10000 - rio.MAXLINE + 1) + b"\n"
    assert rp.readlineb() == b""


def test_readlineb_binary_and_nul(rio: ModuleType, fds: Fds) -> None:
    data = b"\x00\x01\r\n\xff\x00\n\r\r\x00"
    rp, _ = fed(rio, fds, data, 3)
    assert pieces(rp.readlineb) == [b"\x00\x01\r\n", b"\xff\x00\n", b"\r\r\x00"]


@pytest.mark.parametrize("maxlen", ["3", 3.0, None, b"3"])
def test_readlineb_wrong_type(rio: ModuleType, fds: Fds, maxlen: Any) -> None:
    rp, _ = fed(rio, fds, b"abc\n")
    with pytest.raises(TypeError):
        rp.readlineb(maxlen)
    assert rp.readlineb() == b"abc\n"


def test_csapp_spellings(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    os.write(w, b"one\ntwo\nthree")
    fds.close(w)
    rp = rio.rio_readinitb(r)
    assert isinstance(rp, rio.Rio)
    assert rp.fileno() == r
    assert rio.rio_readlineb(rp) == b"one\n"
    assert rio.rio_readlineb(rp, 3) == b"tw"
    assert rio.rio_readnb(rp, 3) == b"o\nt"
    assert rio.rio_readnb(rp, 100) == b"hree"
    assert rio.rio_readnb(rp, 100) == b""
    assert rio.rio_readlineb(rp) == b""


@pytest.mark.parametrize("obj", [None, 3, "rio", io.BytesIO(b"x\n")])
def test_csapp_spellings_need_a_rio(rio: ModuleType, obj: Any) -> None:
    with pytest.raises(TypeError):
        rio.rio_readlineb(obj)
    with pytest.raises(TypeError):
        rio.rio_readlineb(obj, 10)
    with pytest.raises(TypeError):
        rio.rio_readnb(obj, 1)


# ---------------------------------------------------------- readnb, readinto


@pytest.mark.parametrize("bufsize", [1, 4, 8192])
def test_readnb(rio: ModuleType, fds: Fds, bufsize: int) -> None:
    data = bytes(range(256)) * 40
    rp, _ = fed(rio, fds, data, bufsize)
    assert rp.readnb(0) == b""
    assert rp.readnb(3) == data[:3]
    assert rp.readnb(5000) == data[3:5003]
    assert rp.readnb(1) == data[5003:5004]
    assert rp.readnb(100000) == data[5004:]
    assert rp.readnb(10) == b""
    assert rp.readnb(0) == b""


def test_readnb_blocks_until_n(rio: ModuleType, fds: Fds) -> None:
    """Short counts only at EOF, even with a slow trickle (unlike ``read1``)."""
    data = os.urandom(3000)
    rp, writer = threaded(rio, fds, data, 64, 11, pause=0.0002)
    assert rp.readnb(1000) == data[:1000]
    assert rp.readnb(1999) == data[1000:2999]
    assert rp.readnb(2) == data[2999:]
    assert rp.readnb(2) == b""
    writer.finish()


@pytest.mark.parametrize("n", [-1, -2, -(1 << 70)])
def test_readnb_negative(rio: ModuleType, fds: Fds, n: int) -> None:
    rp, _ = fed(rio, fds, b"abc")
    with pytest.raises(ValueError, match=exactly(MSG_NEGATIVE_N)):
        rp.readnb(n)
    with pytest.raises(ValueError, match=exactly(MSG_NEGATIVE_N)):
        rio.rio_readnb(rp, n)
    assert rp.readnb(3) == b"abc"


@pytest.mark.parametrize("n", [1 << 50, 2**63 - 1, 1 << 70])
def test_readnb_huge_n(rio: ModuleType, fds: Fds, n: int) -> None:
    """Memory follows the data, not ``n``: no MemoryError or OverflowError (work
    following ``n`` would hang: the watchdog fails it)."""
    rp, _ = fed(rio, fds, b"abc\ndef")
    assert rp.readlineb() == b"abc\n"
    assert rp.readnb(n) == b"def"


@pytest.mark.parametrize("n", ["1", 1.0, None])
def test_readnb_wrong_type(rio: ModuleType, fds: Fds, n: Any) -> None:
    rp, _ = fed(rio, fds, b"abc")
    with pytest.raises(TypeError):
        rp.readnb(n)
    assert rp.readnb(3) == b"abc"


@pytest.mark.parametrize("bufsize", [1, 5, 8192])
def test_readinto_buffers(rio: ModuleType, fds: Fds, bufsize: int) -> None:
    data = bytes(range(200))
    rp, _ = fed(rio, fds, data, bufsize)
    ba = bytearray(10)
    assert rp.readinto(ba) == 10 and ba == data[:10]
    store = bytearray(b"." * 30)
    assert rp.readinto(memoryview(store)[5:25]) == 20
    assert store == b"." * 5 + data[10:30] + b"." * 5
    arr = array.array("i", [0] * 10)
    assert rp.readinto(arr) == 40
    assert arr.tobytes() == data[30:70]
    assert rp.readinto(bytearray()) == 0
    big = bytearray(b"\xee" * 200)
    assert rp.readinto(big) == 130  # short only at EOF
    assert big[:130] == data[70:] and big[130:] == b"\xee" * 70
    assert rp.readinto(big) == 0


@pytest.mark.parametrize(
    "make",
    [
        lambda: b"readonly",
        lambda: memoryview(b"readonly"),
        lambda: memoryview(bytearray(8)).toreadonly(),
        lambda: "text",
        lambda: None,
        lambda: 8,
        lambda: memoryview(bytearray(8))[::2],
    ],
)
def test_readinto_rejects(rio: ModuleType, fds: Fds, make: Callable[[], Any]) -> None:
    rp, _ = fed(rio, fds, b"abcdefgh")
    assert rp.peek() == b"abcdefgh"
    with pytest.raises(TypeError):
        rp.readinto(make())
    assert rp.buffered == 8
    assert rp.read() == b"abcdefgh"


# ----------------------------------------------------------------- readline


def test_readline_size(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"abcdef\nxy\n", 4)
    assert rp.readline(0) == b""
    assert rp.buffered == 0  # readline(0) reads nothing
    assert rp.readline(3) == b"abc"
    assert rp.readline(4) == b"def\n"
    assert rp.readline(0) == b""
    assert rp.readline(1) == b"x"
    assert rp.readline(100) == b"y\n"
    assert rp.readline(5) == b""


@pytest.mark.parametrize("size", [-1, None, -2, -(1 << 70)])
def test_readline_unbounded(rio: ModuleType, fds: Fds, size: Optional[int]) -> None:
    """A negative size (or None) is unbounded, far beyond bufsize and MAXLINE."""
    long_line = os.urandom(200000).replace(b"\n", b"n") + b"\n"
    data = long_line + b"short\n" + b"end"
    rp, writer = threaded(rio, fds, data, 16, 65536)
    assert rp.readline(size) == long_line
    assert rp.readline(size) == b"short\n"
    assert rp.readline(size) == b"end"
    assert rp.readline(size) == b""
    assert rp.readline() == b""
    writer.finish()


@pytest.mark.parametrize("size", ["1", 1.5])
def test_readline_wrong_type(rio: ModuleType, fds: Fds, size: Any) -> None:
    rp, _ = fed(rio, fds, b"abc\n")
    with pytest.raises(TypeError):
        rp.readline(size)
    assert rp.readline() == b"abc\n"


# --------------------------------------------------------------------- read


@pytest.mark.parametrize("bufsize", [1, 3, 8192])
def test_read_sizes(rio: ModuleType, fds: Fds, bufsize: int) -> None:
    rp, _ = fed(rio, fds, b"0123456789" * 5, bufsize)
    assert rp.read(0) == b""
    assert rp.read(3) == b"012"
    assert rp.read(10) == b"3456789012"
    assert rp.read() == b"3456789" + b"0123456789" * 3
    assert rp.read() == b""
    assert rp.read(5) == b""


@pytest.mark.parametrize("arg", [(), (-1,), (None,)])
def test_read_to_eof(rio: ModuleType, fds: Fds, arg: tuple) -> None:
    data = os.urandom(300000)
    rp, writer = threaded(rio, fds, data, 64, 30000)
    assert rp.read(5) == data[:5]
    assert rp.read(*arg) == data[5:]
    assert rp.read(*arg) == b""
    writer.finish()


@pytest.mark.parametrize("n", [-2, -3, -(1 << 70)])
def test_read_below_minus_one(rio: ModuleType, fds: Fds, n: int) -> None:
    rp, _ = fed(rio, fds, b"abc")
    with pytest.raises(ValueError, match=exactly(MSG_READ_LENGTH)):
        rp.read(n)
    with pytest.raises(ValueError, match=exactly(MSG_READ_LENGTH)):
        rp.read1(n)
    assert rp.read() == b"abc"


@pytest.mark.parametrize("n", ["1", 1.0, b"1"])
def test_read_wrong_type(rio: ModuleType, fds: Fds, n: Any) -> None:
    rp, _ = fed(rio, fds, b"abc")
    for method in (rp.read, rp.read1, rp.peek):
        with pytest.raises(TypeError):
            method(n)
    assert rp.read() == b"abc"


# --------------------------------------------------------------- read1, peek


def test_read1_at_most_one_read(rio: ModuleType, fds: Fds) -> None:
    """On a non-blocking pipe a second read would raise, so none happens."""
    r, w = fds.pipe()
    rp = rio.Rio(r, 8)
    os.set_blocking(r, False)
    os.write(w, b"abc")
    assert rp.read1(0) == b""
    assert rp.read1(100) == b"abc"
    os.write(w, b"defghijklmnop")
    assert rp.read1(2) == b"de"  # one read of bufsize bytes
    assert rp.buffered == 6
    assert rp.read1() == b"fghijk"  # the buffer, no read
    assert rp.read1(-1) == b"lmnop"  # one read
    os.write(w, b"q" * 100)
    assert rp.read1(50) == b"q" * 50  # larger than bufsize: one read
    assert rp.buffered == 0
    assert rp.read1(None) == b"q" * 8  # one read of bufsize
    assert rp.read1(100) == b"q" * 42
    with pytest.raises(BlockingIOError):
        rp.read1(1)
    fds.close(w)
    assert rp.read1(1) == b""


def test_read1_eof(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"xyz", 1)
    assert rp.read1(1) == b"x"
    assert rp.read1() == b"y"  # one read of bufsize
    assert rp.read1(5) == b"z"  # n > bufsize: one read of n
    assert rp.read1(5) == b""
    assert rp.read1() == b""


def test_read1_never_more_than_n(rio: ModuleType, fds: Fds) -> None:
    data = bytes(range(256)) * 20
    rp, _ = fed(rio, fds, data, 100)
    got = []
    for n in itertools.islice(itertools.cycle([1, 7, 99, 100, 101, 1000]), 1000):
        piece = rp.read1(n)
        if not piece:
            break
        assert 1 <= len(piece) <= n
        got.append(piece)
    assert b"".join(got) == data


def test_peek(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    rp = rio.Rio(r, 4)
    os.set_blocking(r, False)
    os.write(w, b"abcdefg")
    assert rp.peek() == b"abcd"  # one read of bufsize
    assert rp.peek(1) == b"abcd"  # nothing consumed, no read
    assert rp.peek(100) == b"abcd"
    assert rp.buffered == 4
    assert rp.read(1) == b"a"
    assert rp.peek() == b"bcd"  # buffered bytes only
    assert rp.read(3) == b"bcd"
    assert rp.peek(0) == b"efg"
    with pytest.raises(BlockingIOError):
        rp.readlineb()  # no newline yet: it would block
    assert rp.buffered == 3  # ... and kept what it had
    fds.close(w)
    assert rp.readlineb() == b"efg"


def test_peek_eof(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"ab", 8)
    assert rp.peek() == b"ab"
    assert rp.read(2) == b"ab"
    assert rp.peek() == b""
    assert rp.peek(10) == b""
    assert rp.buffered == 0


def test_peek_none_is_type_error(rio: ModuleType, fds: Fds) -> None:
    """As ``io.BufferedReader.peek(None)``: the contract's None→-1 is for sizes."""
    rp, _ = fed(rio, fds, b"ab", 8)
    with pytest.raises(TypeError):
        rp.peek(None)
    assert rp.read() == b"ab"


# ------------------------------------------------- iteration and readlines


def test_iteration(rio: ModuleType, fds: Fds) -> None:
    data = b"a\n\nbb\n" + b"L" * 9000 + b"\ntail"
    rp, _ = fed(rio, fds, data, 5)
    assert iter(rp) is rp
    lines = list(rp)
    # Whole lines, however long, as iterating sock.makefile("rb") gives them.
    assert lines == [b"a\n", b"\n", b"bb\n", b"L" * 9000 + b"\n", b"tail"]
    with pytest.raises(StopIteration):
        next(rp)
    assert list(rp) == []


def test_readlines(rio: ModuleType, fds: Fds) -> None:
    data = b"ab\ncd\nef\n" + b"g" * 9000
    for hint, expected in [
        (-1, [b"ab\n", b"cd\n", b"ef\n", b"g" * 9000]),
        (None, [b"ab\n", b"cd\n", b"ef\n", b"g" * 9000]),
        (0, [b"ab\n", b"cd\n", b"ef\n", b"g" * 9000]),
        (1, [b"ab\n"]),
        (3, [b"ab\n"]),  # the total reached the hint
        (4, [b"ab\n", b"cd\n"]),
        (7, [b"ab\n", b"cd\n", b"ef\n"]),
        (10, [b"ab\n", b"cd\n", b"ef\n", b"g" * 9000]),
    ]:
        rp, _ = fed(rio, fds, data, 4)
        assert rp.readlines(hint) == expected, hint
        rest = b"".join(expected)
        assert rp.read() == data[len(rest) :]


def test_readlines_wrong_type(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"a\n")
    with pytest.raises(TypeError):
        rp.readlines("1")
    assert rp.readlines() == [b"a\n"]


# ------------------------------------------------------- the file protocol


def test_file_protocol(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"abc\ndef", 4)
    assert issubclass(type(rp), io.BufferedIOBase)  # (no type narrowing)
    assert issubclass(type(rp), io.IOBase)
    assert rp.readable() is True
    assert rp.writable() is False
    assert rp.seekable() is False
    assert rp.isatty() is False
    assert rp.flush() is None
    assert rp.closed is False
    assert isinstance(rp.fileno(), int)
    assert rp.buffered == 0
    assert rp.readlineb(2) == b"a"
    assert rp.buffered == 3
    assert rp.readline() == b"bc\n"
    assert rp.buffered == 0


def test_buffered_and_closed_are_read_only(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"abc")
    with pytest.raises(AttributeError):
        rp.buffered = 5
    with pytest.raises(AttributeError):
        rp.closed = True
    assert rp.read() == b"abc"


def test_close_idempotent_and_drops_buffer(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    os.write(w, b"abcdef")
    rp = rio.Rio(r, 4)
    assert rp.read(1) == b"a"
    assert rp.close() is None
    assert rp.closed is True
    rp.close()
    assert rp.closed is True
    os.fstat(r)  # closefd=False: still open
    assert os.read(r, 10) == b"ef"  # the buffer "bcd" was dropped


def closed_calls(rp: Any, rio: ModuleType) -> List[Tuple[str, Callable[[], Any]]]:
    """Every operation of the contract, as (name, thunk)."""

    def enter() -> None:
        with rp:
            raise AssertionError("entered")

    return [
        ("readlineb", lambda: rp.readlineb()),
        ("readlineb(10)", lambda: rp.readlineb(10)),
        ("readnb", lambda: rp.readnb(1)),
        ("readnb(0)", lambda: rp.readnb(0)),
        ("readinto", lambda: rp.readinto(bytearray(4))),
        ("readline", lambda: rp.readline()),
        ("readline(0)", lambda: rp.readline(0)),
        ("read", lambda: rp.read()),
        ("read(0)", lambda: rp.read(0)),
        ("read(3)", lambda: rp.read(3)),
        ("read1", lambda: rp.read1()),
        ("read1(0)", lambda: rp.read1(0)),
        ("peek", lambda: rp.peek()),
        ("readlines", lambda: rp.readlines()),
        ("iter", lambda: iter(rp)),
        ("next", lambda: next(rp)),
        ("for", lambda: list(rp)),
        ("buffered", lambda: rp.buffered),
        ("fileno", lambda: rp.fileno()),
        ("readable", lambda: rp.readable()),
        ("writable", lambda: rp.writable()),
        ("seekable", lambda: rp.seekable()),
        ("isatty", lambda: rp.isatty()),
        ("flush", lambda: rp.flush()),
        ("with", enter),
        ("rio_readlineb", lambda: rio.rio_readlineb(rp)),
        ("rio_readnb", lambda: rio.rio_readnb(rp, 1)),
    ]


def test_every_call_after_close(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"data\n")
    assert rp.peek() == b"data\n"
    rp.close()
    for _name, call in closed_calls(rp, rio):
        with pytest.raises(ValueError, match=exactly(MSG_CLOSED)):
            call()
    rp.close()
    assert rp.closed is True
    assert "closed" in repr(rp)


def test_with_statement(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    os.write(w, b"line\n")
    with rio.Rio(r) as rp:
        assert rp.readlineb() == b"line\n"
        assert rp.closed is False
    assert rp.closed is True
    os.fstat(r)
    with pytest.raises(ValueError, match=exactly(MSG_CLOSED)):
        with rp:
            pass


def test_with_statement_closes_on_error(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"x")
    with pytest.raises(KeyError):
        with rp:
            raise KeyError("boom")
    assert rp.closed is True


def test_closefd(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    rp = rio.Rio(r, closefd=False)
    rp.close()
    os.fstat(r)  # still open
    r2, w2 = fds.pipe()
    fds.forget(r2)
    with rio.Rio(r2, closefd=True) as rp2:
        os.write(w2, b"ok\n")
        assert rp2.readlineb() == b"ok\n"
    with pytest.raises(OSError) as info:
        os.fstat(r2)
    assert info.value.errno == errno.EBADF
    rp2.close()  # idempotent: no second close


def test_closefd_on_garbage_collection(rio: ModuleType, fds: Fds) -> None:
    """Like ``io.FileIO``: an owned descriptor is closed when the Rio dies."""
    r, w = fds.pipe()
    rp = rio.Rio(r)
    del rp
    gc.collect()
    os.fstat(r)  # not owned: still open
    r2, w2 = fds.pipe()
    fds.forget(r2)
    rp = rio.Rio(r2, closefd=True)
    del rp
    gc.collect()
    with pytest.raises(OSError):
        os.fstat(r2)


def test_closefd_is_keyword_only(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    with pytest.raises(TypeError):
        rio.Rio(r, 8, True)
    with pytest.raises(TypeError):
        rio.Rio()
    with pytest.raises(TypeError):
        rio.Rio(r, bufsize=8, nosuch=1)


# --------------------------------------------------------- construction


@pytest.mark.parametrize("bufsize", [0, -1, 2**30 + 1, 1 << 70, -(1 << 70)])
def test_bufsize_out_of_range(rio: ModuleType, fds: Fds, bufsize: int) -> None:
    r, w = fds.pipe()
    with pytest.raises(ValueError, match=exactly(MSG_BUFSIZE)):
        rio.Rio(r, bufsize)
    with pytest.raises(ValueError, match=exactly(MSG_BUFSIZE)):
        rio.Rio(r, bufsize=bufsize, closefd=True)
    os.fstat(r)  # a failed Rio closes nothing


@pytest.mark.parametrize("bufsize", ["8", 8.0, None])
def test_bufsize_wrong_type(rio: ModuleType, fds: Fds, bufsize: Any) -> None:
    r, w = fds.pipe()
    with pytest.raises(TypeError):
        rio.Rio(r, bufsize)


def test_bufsize_limits_accepted(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    rio.Rio(r, 2**30).close()  # allowed (nothing read)
    os.write(w, b"one\ntwo\n")
    fds.close(w)
    rp = rio.Rio(r, 1)
    assert rp.readlineb() == b"one\n"
    assert rp.buffered == 0  # bufsize 1: no read-ahead
    assert rp.read() == b"two\n"


@pytest.mark.parametrize("fd", ["0", 0.0, None])
def test_fd_wrong_type(rio: ModuleType, fd: Any) -> None:
    with pytest.raises(TypeError):
        rio.Rio(fd)


@pytest.mark.parametrize("fd", [-1, 2**31, 1 << 70])
def test_impossible_fd(rio: ModuleType, fd: int) -> None:
    with pytest.raises(OSError) as info:
        rio.Rio(fd)
    assert info.value.errno == errno.EBADF
    assert str(info.value) == EBADF_TEXT


def test_closed_fd_fails_on_read(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    fds.close(r)
    rp = rio.Rio(r)  # no system call yet
    for call in (
        rp.readlineb,
        rp.read,
        rp.read1,
        rp.peek,
        lambda: rp.readnb(1),
        lambda: rp.readinto(bytearray(1)),
        lambda: next(rp),
    ):
        with pytest.raises(OSError) as info:
            call()
        assert type(info.value) is OSError
        assert info.value.errno == errno.EBADF
        assert str(info.value) == EBADF_TEXT
    rp.close()


def assert_unusable(rp: Any, rio: ModuleType) -> None:
    for _name, call in closed_calls(rp, rio):
        with pytest.raises(ValueError, match=exactly(MSG_UNINIT)):
            call()
    with pytest.raises(ValueError, match=exactly(MSG_UNINIT)):
        rp.closed  # noqa: B018  (the property raises)
    with pytest.raises(ValueError, match=exactly(MSG_UNINIT)):
        rp.close()
    repr(rp)


@pytest.mark.parametrize(
    "args, exc",
    [
        (("r", 0), ValueError),
        (("r", 2**30 + 1), ValueError),
        (("r", "8"), TypeError),
        ((-1,), OSError),
        (("fd",), TypeError),
        ((None,), TypeError),
        (("r", 8, "extra"), TypeError),
    ],
)
def test_failed_reinit_is_unusable(rio: ModuleType, fds: Fds, args: tuple, exc: type) -> None:
    r, w = fds.pipe()
    os.write(w, b"abcdef\n")
    rp = rio.Rio(r, 4)
    assert rp.read(2) == b"ab"
    with pytest.raises(exc):
        rp.__init__(*(r if a == "r" else a for a in args))
    if exc is not TypeError or args[0] != "r" or len(args) == 2:
        assert_unusable(rp, rio)
    rp.__init__(r, 4)  # a good __init__ revives it
    assert rp.closed is False
    assert rp.buffered == 0  # ... with a fresh buffer
    assert rp.read(3) == b"ef\n"
    os.fstat(r)


def test_reinit_resets(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    os.write(w, b"0123456789")
    fds.close(w)
    rp = rio.Rio(r, 4)
    assert rp.read(1) == b"0"
    rp.__init__(r, 2)
    assert rp.buffered == 0
    assert rp.read1() == b"45"  # "123" was dropped; bufsize is 2
    rp.close()
    rp.__init__(r)  # re-opening a closed Rio
    assert rp.closed is False
    assert rp.read() == b"6789"


def test_new_without_init(rio: ModuleType) -> None:
    rp = rio.Rio.__new__(rio.Rio)
    assert_unusable(rp, rio)
    with pytest.raises(ValueError, match=exactly(MSG_UNINIT)):
        rp.__exit__(None, None, None)
    del rp
    gc.collect()
    rp = rio.Rio.__new__(rio.Rio)
    del rp  # dealloc without init: no crash
    gc.collect()


def test_pickle_refused(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"x")
    with pytest.raises(TypeError, match=exactly(msg_no_pickle(rp))):
        pickle.dumps(rp)


# ------------------------------------------------------------ TextIOWrapper


TEXT = "héllo wörld\n€uro 𝄞 ünïcödé\nплюс 中文\n" * 3 + "no newline ✓"


@pytest.mark.parametrize("bufsize", [1, 2, 3, 5, 8192])
def test_text_wrapper(rio: ModuleType, fds: Fds, bufsize: int) -> None:
    """Multi-byte UTF-8 split across reads (and across writes) decodes whole."""
    data = TEXT.encode("utf-8")
    rp, writer = threaded(rio, fds, data, bufsize, 1 if bufsize < 8192 else 7)
    text = io.TextIOWrapper(rp, encoding="utf-8")
    assert text.readline() == "héllo wörld\n"
    assert text.readline() == "€uro 𝄞 ünïcödé\n"
    assert text.read(4) == "плюс"
    assert list(text) == [" 中文\n"] + TEXT.splitlines(keepends=True)[3:]
    assert text.read() == ""
    fd = rp.fileno()
    text.close()
    assert rp.closed is True
    writer.finish()
    os.fstat(fd)  # closefd=False: still open


def test_text_wrapper_newline_modes(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"a\r\nb\rc\n", 2)
    text = io.TextIOWrapper(rp, encoding="utf-8", newline=None)
    assert text.read() == "a\nb\nc\n"


# ------------------------------------------------------------- interleaving


def test_interleave_every_method(rio: ModuleType, fds: Fds) -> None:
    """All read methods on one Rio over a socketpair fed 3 bytes at a time."""
    data = b"alpha\nbeta\n" + b"g" * 40 + b"\n" + b"delta\nepsilon\nzeta\n" + b"eta"
    a, b = fds.socketpair()

    def feed() -> None:
        try:
            for piece in split(data, 3):
                time.sleep(0.0005)
                b.sendall(piece)
        finally:
            b.shutdown(socket.SHUT_WR)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    rp = rio.Rio(a.fileno(), 8)
    first = rp.peek()
    assert first and data.startswith(first)
    assert rp.readlineb(4) == b"alp"
    assert rp.readline(2) == b"ha"
    assert next(rp) == b"\n"
    x = rp.read1(2)
    assert x in (b"b", b"be")
    if x == b"b":
        assert rp.read(1) == b"e"
    assert rp.readnb(3) == b"ta\n"
    buf = bytearray(10)
    assert rp.readinto(buf) == 10 and buf == b"g" * 10
    assert rp.readlineb(20) == b"g" * 19
    assert rp.readline() == b"g" * 11 + b"\n"
    assert rp.read(3) == b"del"
    assert rp.peek()[:1] == b"t"
    assert list(itertools.islice(rp, 2)) == [b"ta\n", b"epsilon\n"]
    assert rp.buffered <= len(b"zeta\neta")
    assert rp.readlines() == [b"zeta\n", b"eta"]
    assert rp.read() == b""
    assert rp.readlineb() == b""
    assert rp.readline() == b""
    assert rp.read1() == b""
    assert rp.peek() == b""
    assert rp.readnb(1) == b""
    assert rp.readinto(buf) == 0
    with pytest.raises(StopIteration):
        next(rp)
    writer.join(5)
    assert not writer.is_alive()


def test_mixing_with_unbuffered_loses_read_ahead(rio: ModuleType, fds: Fds) -> None:
    """Documented as in C: the read-ahead is the Rio's, not the descriptor's."""
    r, w = fds.pipe()
    os.write(w, b"one\ntwo\nthree\n")
    fds.close(w)
    rp = rio.Rio(r, 6)
    assert rp.readlineb() == b"one\n"
    assert rp.buffered == 2  # "tw" read ahead
    assert rio.rio_readn(r, 100) == b"o\nthree\n"
    assert rp.readlineb() == b"tw"


# ------------------------------------- adapted from CPython test_io.py
#
# BufferedReaderTest uses a MockRawIO returning scripted chunks; here the
# chunks are written to a pipe (by a thread where the reader must block, or
# just before the call where the order must be exact). Where RIO differs from
# io.BufferedReader, the test says so.


def test_io_constructor(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    os.write(w, b"abc")
    fds.close(w)
    rp = rio.Rio(r)
    rp.__init__(r)
    rp.__init__(r, bufsize=1024)
    rp.__init__(r, bufsize=16)
    assert rp.read() == b"abc"
    for bad in (0, -16, -1):
        with pytest.raises(ValueError, match=exactly(MSG_BUFSIZE)):
            rp.__init__(r, bufsize=bad)
    r2, w2 = fds.pipe()
    os.write(w2, b"abc")
    fds.close(w2)
    rp.__init__(r2)
    assert rp.read() == b"abc"


def test_io_uninitialized(rio: ModuleType, fds: Fds) -> None:
    rp = rio.Rio.__new__(rio.Rio)
    del rp
    rp = rio.Rio.__new__(rio.Rio)
    with pytest.raises(ValueError, match=exactly(MSG_UNINIT)):
        rp.read(0)
    r, w = fds.pipe()
    rp.__init__(r)
    assert rp.read(0) == b""


def test_io_read(rio: ModuleType, fds: Fds) -> None:
    """read(arg) collects scripted chunks; ours blocks for n as io does."""
    for arg in (None, 7, -1):
        rp, writer = threaded(rio, fds, b"abcdefg", 8192, 3, pause=0.005)
        assert rp.read(arg) == b"abcdefg"
        writer.finish()
    r, w = fds.pipe()
    writer = Writer(fds, w, [b"abc", b"d", b"efg"], pause=0.005, close=False)
    writer.start()
    rp = rio.Rio(r)
    assert rp.read(6) == b"abcdef"  # blocks until 6 bytes, no EOF
    writer.finish()
    assert rp.read(1) == b"g"
    with pytest.raises(ValueError, match=exactly(MSG_READ_LENGTH)):
        rp.read(-2)


def test_io_read1(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    rp = rio.Rio(r)
    os.write(w, b"abc")
    assert rp.read(1) == b"a"
    assert rp.read1(1) == b"b"
    assert rp.read1(0) == b""
    assert rp.read1(100) == b"c"
    os.write(w, b"d")
    assert rp.read1(100) == b"d"
    os.write(w, b"efg")
    assert rp.read1(100) == b"efg"
    fds.close(w)
    assert rp.read1(100) == b""
    with pytest.raises(ValueError, match=exactly(MSG_READ_LENGTH)):
        rp.read1(-2)


def test_io_read1_arbitrary(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    rp = rio.Rio(r)
    os.write(w, b"abc")
    assert rp.read(1) == b"a"
    assert rp.read1() == b"bc"
    os.write(w, b"d")
    assert rp.read1() == b"d"
    os.write(w, b"efg")
    assert rp.read1(-1) == b"efg"
    fds.close(w)
    assert rp.read1() == b""


def test_io_readinto(rio: ModuleType, fds: Fds) -> None:
    rp, writer = threaded(rio, fds, b"abcdefg", 8192, 3, pause=0.002)
    b = bytearray(2)
    for expected in (b"ab", b"cd", b"ef"):
        assert rp.readinto(b) == 2
        assert b == expected
    assert rp.readinto(b) == 1
    assert b == b"gf"
    assert rp.readinto(b) == 0
    assert b == b"gf"
    writer.finish()


def test_io_readinto_array(rio: ModuleType, fds: Fds) -> None:
    """As many *bytes* as fit, not items; the rest of the array untouched."""
    data = b"a" * 26
    rp, _ = fed(rio, fds, data, 60)
    b = array.array("i", b"x" * 32)
    assert len(b) != 16
    n = rp.readinto(b)
    assert n > len(b)
    bm = memoryview(b).cast("B")
    assert n < len(bm)
    assert n == 26  # ours: exactly what was there
    assert bm[:n] == data
    assert bm[n:] == b"x" * (len(bm) - n)


def test_io_readlines(rio: ModuleType, fds: Fds) -> None:
    def reader() -> Any:
        return fed(rio, fds, b"abc\nd\nef")[0]

    assert reader().readlines() == [b"abc\n", b"d\n", b"ef"]
    assert reader().readlines(5) == [b"abc\n", b"d\n"]
    assert reader().readlines(None) == [b"abc\n", b"d\n", b"ef"]


def test_io_read_past_eof(rio: ModuleType, fds: Fds) -> None:
    rp, writer = threaded(rio, fds, b"abcdefg", 8192, 3, pause=0.002)
    assert rp.read(9000) == b"abcdefg"
    writer.finish()


def test_io_read_all(rio: ModuleType, fds: Fds) -> None:
    rp, writer = threaded(rio, fds, b"abcdefg", 8192, 3, pause=0.002)
    assert rp.read() == b"abcdefg"
    writer.finish()


@pytest.mark.parametrize("n", [2, 15, 16, 17, 32])
def test_io_no_extraneous_read(rio: ModuleType, fds: Fds, n: int) -> None:
    """Issue #9550: a satisfied request must not read again (it may block).

    The pipe is non-blocking, so an extra read would raise BlockingIOError.
    """
    bufsize = 16
    for method in ("read", "readnb", "readinto", "readlineb", "readline"):
        r, w = fds.pipe()
        os.write(w, b"x" * (n - 1) + b"\n")
        os.set_blocking(r, False)
        rp = rio.Rio(r, bufsize)
        if method == "read":
            assert rp.read(n) == b"x" * (n - 1) + b"\n"
        elif method == "readnb":
            assert rp.readnb(n) == b"x" * (n - 1) + b"\n"
        elif method == "readinto":
            assert rp.readinto(bytearray(n)) == n
        elif method == "readlineb":
            assert rp.readlineb(n + 1) == b"x" * (n - 1) + b"\n"
        else:
            assert rp.readline() == b"x" * (n - 1) + b"\n"
        assert rp.buffered == 0
        fds.close(r)
        fds.close(w)


@pytest.mark.parametrize("n", [2, 16, 17])
def test_io_no_extraneous_read_two_chunks(
    rio: ModuleType, fds: Fds, watchdog: Watchdog, n: int
) -> None:
    """The request is met by a second chunk written later; no third read."""
    r, w = fds.pipe()
    writer = Writer(fds, w, [b"x" * (n - 1), b"x"], pause=0.01, close=False)
    writer.start()
    rp = rio.Rio(r, 16)
    watchdog(5.0)
    assert rp.read(n) == b"x" * n  # an extra read would hang
    writer.finish()


def test_io_read_non_blocking(rio: ModuleType, fds: Fds) -> None:
    """Differs from io: a would-block raises BlockingIOError (io returns
    None or a short result) and keeps the partial data for the next call."""
    r, w = fds.pipe()
    os.set_blocking(r, False)
    rp = rio.Rio(r)
    os.write(w, b"abc")
    os.write(w, b"d")
    with pytest.raises(BlockingIOError):
        rp.read(6)  # io: b"abcd"
    assert rp.buffered == 4
    os.write(w, b"efg")
    assert rp.read(6) == b"abcdef"
    assert rp.read(1) == b"g"
    with pytest.raises(BlockingIOError):
        rp.peek(1)  # io: b""
    with pytest.raises(BlockingIOError):
        rp.read()  # io: None
    fds.close(w)
    assert rp.read() == b""


def test_io_readinto_non_blocking(rio: ModuleType, fds: Fds) -> None:
    """io returns a short count; ours raises and keeps the byte it got."""
    r, w = fds.pipe()
    os.set_blocking(r, False)
    rp = rio.Rio(r)
    os.write(w, b"abc")
    b = bytearray(2)
    assert rp.readinto(b) == 2 and b == b"ab"
    with pytest.raises(BlockingIOError):
        rp.readinto(b)  # io: 1, b == b"cb"
    os.write(w, b"d")
    assert rp.readinto(b) == 2 and b == b"cd"


def test_io_read_on_closed(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"12")
    assert rp.read(1) == b"1"
    rp.close()
    with pytest.raises(ValueError, match=exactly(MSG_CLOSED)):
        rp.peek()
    with pytest.raises(ValueError, match=exactly(MSG_CLOSED)):
        rp.read1(1)


def test_io_context_manager(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"")

    def _with() -> None:
        with rp:
            pass

    _with()
    with pytest.raises(ValueError, match=exactly(MSG_CLOSED)):
        _with()


def test_io_readline_keeps_newline_and_limit(rio: ModuleType, fds: Fds) -> None:
    rp, _ = fed(rio, fds, b"abc\ndef\nxyzzy\nfoo\x00bar\nanother line", 4)
    assert rp.readline() == b"abc\n"
    assert rp.readline(10) == b"def\n"
    assert rp.readline(2) == b"xy"
    assert rp.readline(4) == b"zzy\n"
    assert rp.readline() == b"foo\x00bar\n"
    assert rp.readline(None) == b"another line"
    assert rp.readline() == b""
