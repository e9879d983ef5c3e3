"""csapp.makefile: a Rio bound to a socket object, the drop-in for
``sock.makefile("rb")``: timeouts, the socket's lifetime, TLS and socket-like
objects, over both twins; ``Rio(fd, timeout=...)`` for bare descriptors."""

from __future__ import annotations

import gc
import io
import os
import re
import socket
import threading
import time
from types import ModuleType
from typing import Any, Callable, List, Tuple

import pytest

from csapp import socketfile
from csapp._shared import MSG_ECHO_NEEDS_FD, MSG_RECV_COUNT, MSG_TIMED_OUT, MSG_TIMEOUT_RANGE
from support.rioutil import Fds, fd_is_open
from support.tlsutil import TlsPair

pytestmark = pytest.mark.usefixtures("watchdog")

Make = Callable[..., Any]


@pytest.fixture
def makefile(rio: ModuleType) -> Make:
    """csapp.makefile over the twin under test."""

    def make(sock: Any, mode: str = "rb", buffering: Any = None, **kwargs: Any) -> Any:
        return socketfile.makefile(sock, mode, buffering, implementation=rio, **kwargs)

    return make


@pytest.fixture
def pair(fds: Fds) -> Tuple[socket.socket, socket.socket]:
    """A connected socketpair, closed at teardown."""
    return fds.socketpair()


# ---------------------------------------------------------------- timeouts


def test_a_timeout_keeps_the_partial_line(makefile: Make, pair: Any) -> None:
    a, b = pair
    a.settimeout(0.2)
    f = makefile(a)
    b.sendall(b"part")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=MSG_TIMED_OUT):
        f.readline()
    assert time.monotonic() - started >= 0.2  # waited, did not give up early
    assert f.buffered == 4  # unlike makefile's reader: nothing lost, still usable
    b.sendall(b"ial\nnext\n")
    assert f.readline() == b"partial\n"
    assert list(f.peek()) and f.readline() == b"next\n"
    f.close()


def test_every_read_method_waits_then_times_out(makefile: Make, pair: Any) -> None:
    a, b = pair
    a.settimeout(0.05)
    f = makefile(a, buffering=16)
    calls: List[Callable[[], Any]] = [
        f.readline,
        f.readlineb,
        lambda: f.read(5),
        lambda: f.readnb(5),
        f.read1,
        f.peek,
        lambda: f.readinto(bytearray(100)),  # straight into the caller's buffer
        lambda: f.readinto1(bytearray(4)),
        lambda: next(f),
        f.readlines,
    ]
    for call in calls:
        with pytest.raises(TimeoutError):
            call()
    b.sendall(b"abc\n")
    assert f.read(4) == b"abc\n"
    f.close()


def test_the_timeout_is_the_sockets_of_the_moment(makefile: Make, pair: Any) -> None:
    a, b = pair
    f = makefile(a)  # made while the socket blocks
    a.settimeout(0.05)
    with pytest.raises(TimeoutError):
        f.readline()
    a.setblocking(False)  # timeout 0: would block, as a bare Rio says
    with pytest.raises(BlockingIOError):
        f.readline()
    a.settimeout(None)
    b.sendall(b"line\n")
    assert f.readline() == b"line\n"
    f.close()


def test_data_arriving_during_the_wait_is_read(makefile: Make, pair: Any) -> None:
    a, b = pair
    a.settimeout(30)
    f = makefile(a)
    payload = b"x" * 100_000 + b"\n"
    sender = threading.Timer(0.05, b.sendall, (payload,))
    sender.start()
    try:
        assert f.readline() == payload
    finally:
        sender.join()
    f.close()


def test_bare_rio_timeout(rio: ModuleType, fds: Fds) -> None:
    r, w = fds.pipe()
    os.set_blocking(r, False)
    rp = rio.Rio(r, timeout=0.05)
    os.write(w, b"half")
    with pytest.raises(TimeoutError, match=MSG_TIMED_OUT):
        rp.readlineb()
    os.write(w, b" line\n")
    assert rp.readlineb() == b"half line\n"
    for timeout in (None, 0, 0.0):
        with pytest.raises(BlockingIOError):
            rio.Rio(r, timeout=timeout).readline()


@pytest.mark.parametrize("bad", [-1, -0.5, float("nan")])
def test_a_timeout_out_of_range_is_refused(rio: ModuleType, fds: Fds, bad: float) -> None:
    r, _ = fds.pipe()
    with pytest.raises(ValueError, match=MSG_TIMEOUT_RANGE):
        rio.Rio(r, timeout=bad)
    with pytest.raises(TypeError):
        rio.Rio(r, timeout="1")


# ---------------------------------------------------------------- lifetime


@pytest.mark.parametrize("reader", ["csapp", "stdlib"])
def test_closing_the_socket_while_a_reader_is_open_defers_the_close(
    makefile: Make, pair: Any, reader: str
) -> None:
    """The reader holds the descriptor, as makefile's does: the number is not
    reused by the files opened next, and the reader reads the socket, never
    one of them."""
    a, b = pair
    f = makefile(a) if reader == "csapp" else a.makefile("rb")
    fd = a.fileno()
    a.close()
    opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(16)]
    try:
        assert fd not in opened
        b.sendall(b"from the socket\n")
        assert f.readline() == b"from the socket\n"
        f.close()
        assert not fd_is_open(fd) or fd in opened  # the real close happened now
        assert a.fileno() == -1
    finally:
        for each in opened:
            os.close(each)


def test_a_reader_closed_first_leaves_the_socket_open(makefile: Make, pair: Any) -> None:
    a, b = pair
    f = makefile(a)
    assert a._io_refs == 1
    f.close()
    f.close()  # idempotent: the reference goes back once
    assert a._io_refs == 0
    b.sendall(b"still here")
    assert a.recv(100) == b"still here"


def test_a_reader_collected_unclosed_gives_the_socket_back(makefile: Make, pair: Any) -> None:
    a, _ = pair
    f = makefile(a)
    fd = a.fileno()
    a.close()
    assert fd_is_open(fd)
    del f
    gc.collect()
    assert not fd_is_open(fd)


# ------------------------------------------------------------ the file API


def test_whole_lines_as_makefile_gives_them(makefile: Make, pair: Any) -> None:
    a, b = pair
    data = b"short\n" + b"L" * 20_000 + b"\n\nno newline"
    b.sendall(data)
    b.shutdown(socket.SHUT_WR)
    f = makefile(a, buffering=64)
    assert (f.mode, f.name) == ("rb", a.fileno())
    assert list(f) == data.splitlines(keepends=True)
    f.close()
    assert f.name == -1


def test_readinto1_makes_at_most_one_read(makefile: Make, pair: Any) -> None:
    a, b = pair
    f = makefile(a, buffering=8)
    b.sendall(b"0123456789")
    buffer = bytearray(100)
    got = f.readinto1(buffer)
    assert 1 <= got <= 10 and buffer[:got] == b"0123456789"[:got]
    assert buffer[:got] + f.read(10 - got) == b"0123456789"
    assert f.readinto1(bytearray(0)) == 0
    f.close()


def test_text_and_write_modes(makefile: Make, pair: Any) -> None:
    a, b = pair
    b.sendall("héllo\nwörld\n".encode())
    text = makefile(a, "r", encoding="utf-8")
    assert isinstance(text, io.TextIOWrapper) and text.mode == "r"
    assert text.readline() == "héllo\n"
    writer = makefile(a, "wb")  # the socket's own writer
    writer.write(b"out")
    writer.flush()
    assert b.recv(10) == b"out"
    assert text.readline() == "wörld\n"
    text.close()
    writer.close()
    with pytest.raises(ValueError):
        makefile(a, "rx")


class Wrapped:
    """A socket-like object that is not a socket: reads go through recv_into."""

    def __init__(
        self, sock: socket.socket, counts: Callable[[int, int], int] = lambda got, size: got
    ) -> None:
        self.sock = sock
        self.calls = 0
        self.counts = counts

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv_into(self, view: Any) -> Any:
        self.calls += 1
        got = self.sock.recv_into(view)
        return self.counts(got, len(view))


def test_a_socket_like_object_is_read_through_recv_into(
    rio: ModuleType, makefile: Make, pair: Any
) -> None:
    a, b = pair
    wrapped = Wrapped(a)
    f = makefile(wrapped)
    b.sendall(b"one\ntwo\n")
    assert f.readline() == b"one\n" and f.readline() == b"two\n"
    assert wrapped.calls >= 1
    b.close()
    assert f.read() == b""
    with pytest.raises(ValueError, match=MSG_ECHO_NEEDS_FD):
        rio._rio_echo(f, a.fileno())  # would write what it read from the descriptor
    f.close()


@pytest.mark.parametrize(
    "count", [lambda got, size: size + 1, lambda got, size: -1, lambda got, size: 1 << 70]
)
def test_a_recv_into_that_lies_about_its_count_is_an_error(
    makefile: Make, pair: Any, count: Callable[[int, int], int]
) -> None:
    a, b = pair
    b.sendall(b"data\n")
    f = makefile(Wrapped(a, counts=count))
    with pytest.raises(OSError, match=re.escape(MSG_RECV_COUNT)):
        f.readline()
    f.close()


def test_a_recv_into_that_keeps_the_view_cannot_touch_the_buffer(makefile: Make, pair: Any) -> None:
    """What recv_into sees is the reader's scratch bytearray, never its buffer:
    writing through a kept view later changes no byte the reader returns."""
    a, b = pair
    kept: List[Any] = []

    class Keeper(Wrapped):
        def recv_into(self, view: Any) -> Any:
            kept.append(view)
            return self.sock.recv_into(view)

    f = makefile(Keeper(a), buffering=16)
    b.sendall(b"abcdefgh\n" * 4)
    first = f.readline()
    for view in kept:
        try:
            view[:] = b"Z" * len(view)
        except (ValueError, TypeError):
            pass  # a released view
    assert first == b"abcdefgh\n"
    assert f.read(27) == b"abcdefgh\n" * 3
    f.close()
    gc.collect()


def test_an_object_without_recv_into_is_refused(makefile: Make) -> None:
    with pytest.raises(TypeError):
        makefile(io.BytesIO(b"x"))


# --------------------------------------------------------------------- TLS


def test_tls_lines_and_a_large_body(makefile: Make, tls_pair: TlsPair) -> None:
    payload = b"hello\n" + bytes(range(256)) * 4096 + b"\nbye"
    client = tls_pair(lambda server: server.sendall(payload))
    f = makefile(client)
    assert f.readline() == b"hello\n"
    assert f.read() == payload[6:]
    f.close()


def test_tls_timeout_keeps_the_partial_line(makefile: Make, tls_pair: TlsPair) -> None:
    go = threading.Event()

    def serve(server: Any) -> None:
        server.sendall(b"part")
        go.wait(30)
        server.sendall(b"ial\n")

    client = tls_pair(serve)
    client.settimeout(0.1)
    f = makefile(client)
    with pytest.raises(TimeoutError):
        f.readline()
    go.set()
    client.settimeout(30)
    assert f.readline() == b"partial\n"
    f.close()
