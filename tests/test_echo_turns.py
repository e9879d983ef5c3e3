"""``_rio_echo_turns``: an event server's turns (CSAPP echoservers'
``check_clients``), under both RIO twins.

Each turn serves one ready connection: output that waited goes first, then
one read into the caller's scratch, and every complete line back in one
write (``writev`` with a held partial line). The tests drive it over
non-blocking socketpairs (a reset over TCP), with a peer that reads or does
not; a model checks random scripts byte for byte; strace shows that both
twins make the system calls the spec lists, and the same ones.
"""

from __future__ import annotations

import errno
import json
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import csapp
from csapp._shared import (
    LINE_LIMIT,
    MSG_CLOSED,
    MSG_ECHO_NEEDS_FD,
    MSG_REENTRANT,
    MSG_SCRATCH_EMPTY,
    MSG_UNINIT,
    TURN_BLOCKED,
    TURN_BLOCKED_EOF,
    TURN_CLOSED,
    TURN_DRAINED,
    TURN_FAILED,
    TURN_IDLE,
    TURN_NOT_SERVED,
    echo_cut,
    msg_not_bytes_like,
    msg_not_dict,
    msg_not_rio,
    msg_not_writable,
)
from support.rioutil import Fds, Watchdog, blocked_on, exactly, pending, strace_argv

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="epoll masks, Linux sockets"),
    pytest.mark.usefixtures("watchdog"),
]

TIMEOUT = 10.0
IN = getattr(select, "EPOLLIN", 1)
OUT = getattr(select, "EPOLLOUT", 4)
HUP = getattr(select, "EPOLLHUP", 16)
HIGH = 1 << 20  # a high-water mark no test reaches unless it means to
SCRATCH = 4096
Rows = List[Tuple[Any, int, Any]]
Turns = Callable[..., Rows]


@pytest.fixture
def turns(rio: ModuleType) -> Turns:
    """``_rio_echo_turns`` of the twin under test."""
    return rio._rio_echo_turns  # type: ignore[no-any-return]


class Conn:
    """One connection: the server's non-blocking end, its Rio, the peer (a client)."""

    def __init__(self, rio: ModuleType, srv: socket.socket, peer: socket.socket) -> None:
        srv.setblocking(False)
        peer.settimeout(TIMEOUT)
        self.srv, self.peer = srv, peer
        self.fd = srv.fileno()
        self.rp = rio.Rio(self.fd)
        self.rios = {self.fd: self.rp}


def connection(rio: ModuleType, fds: Fds, small: bool = False) -> Conn:
    """A socketpair; ``small``: the server's send and the peer's receive buffers
    at their least, so a peer that does not read soon blocks the echo."""
    srv, peer = fds.socketpair()
    if small:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return Conn(rio, srv, peer)


def one_turn(
    turns: Turns,
    conn: Conn,
    mask: int = IN,
    scratch: Optional[bytearray] = None,
    high_water: int = HIGH,
    report_all: bool = False,
) -> Rows:
    """One call serving ``conn`` alone."""
    return turns(
        [(conn.fd, mask)],
        conn.rios,
        bytearray(SCRATCH) if scratch is None else scratch,
        high_water,
        report_all,
    )


def take(sock: socket.socket) -> bytes:
    """Everything waiting in ``sock`` now, without waiting."""
    parts = []
    timeout = sock.gettimeout()
    sock.setblocking(False)  # a socket with a timeout would wait for it, MSG_DONTWAIT or not
    try:
        while data := sock.recv(1 << 16):
            parts.append(data)
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(timeout)
    return b"".join(parts)


def offer(sock: socket.socket, data: bytes) -> int:
    """Send what of ``data`` the kernel takes now (a send that would wait stops):
    how many bytes."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    done = 0
    try:
        while done < len(data):
            done += sock.send(data[done:])
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(timeout)
    return done


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """``n`` bytes from ``sock`` (its timeout bounds every wait)."""
    got = bytearray()
    while len(got) < n:
        data = sock.recv(n - len(got))
        if not data:
            break
        got += data
    return bytes(got)


def lines(first: int, count: int) -> bytes:
    """Numbered 100-byte lines: a loss or a reordering shows."""
    return b"".join(b"%07d %s\n" % (i, b"y" * 91) for i in range(first, first + count))


def turn_cut(data: bytes, at_eof: bool, writable: bool = False) -> int:
    """What a turn writes of ``data``: the echo rule as ``csapp_rio_echo``'s
    loop applies it in one write (through the last newline, and a long line's
    piece after it too; everything at EOF); writable, everything held."""
    cut = echo_cut(data, at_eof)
    return len(data) if writable or len(data) - cut >= LINE_LIMIT else cut


class Model:
    """The spec's turn, given how many bytes the socket took (``written``, a
    row's count; ``None``: all it was given): the bytes waiting in the
    kernel, the Rio's held bytes, what was echoed, in order."""

    def __init__(self, size: int, high_water: int = HIGH) -> None:
        self.size = size
        self.high_water = high_water
        self.kernel = b""
        self.held = b""
        self.eof = False
        self.echoed = b""
        self.held_at_start = 0

    def _read(self) -> Optional[bytes]:
        """One read: the bytes, b"" at EOF, None when it would block."""
        if self.kernel:
            new, self.kernel = self.kernel[: self.size], self.kernel[self.size :]
            return new
        return b"" if self.eof else None

    def turn(
        self, written: Optional[int] = None, writable: bool = False
    ) -> Optional[Tuple[int, int]]:
        """(state, bytes written) of the next turn; ``None`` when it moves
        nothing (no row even with report_all). ``writable``: the event had
        POLLOUT, so all that is held is owed (the rest of a piece too)."""
        held, wrote, drained = self.held, 0, False
        self.held_at_start = len(held)
        first = turn_cut(held, at_eof=False, writable=writable)
        if first:  # 1. output that waited
            wrote = first if written is None else min(written, first)
            self.echoed += held[:wrote]
            held = held[wrote:]
            if wrote < first:
                state = TURN_BLOCKED
                if len(held) < self.high_water:
                    new = self._read()
                    if new == b"":
                        state = TURN_BLOCKED_EOF
                    elif new:
                        held += new
                self.held = held
                return state, wrote
            drained = True
        new = self._read()  # 2. one read
        if new is None:
            self.held = held
            return (TURN_DRAINED, wrote) if drained else None
        data = held + new  # 3. one write
        cut = turn_cut(data, at_eof=not new)
        put = cut if written is None else written - wrote
        assert 0 <= put <= cut, (put, cut)
        self.echoed += data[:put]
        self.held = data[put:]
        if put < cut:
            return (TURN_BLOCKED if new else TURN_BLOCKED_EOF), wrote + put
        if not new:
            return TURN_CLOSED, wrote + put
        drained = drained or bool(self.held_at_start and not self.held)
        return (TURN_DRAINED if drained else TURN_IDLE), wrote + put


# ---------------------------------------------------------------- the turn


def test_whole_lines_go_back_in_one_idle_turn(rio: ModuleType, turns: Turns, fds: Fds) -> None:
    conn = connection(rio, fds)
    data = b"one\ntwo\n" + b"x" * 3000 + b"\n"
    conn.peer.sendall(data)
    assert one_turn(turns, conn) == []  # TURN_IDLE: no row
    assert recv_exactly(conn.peer, len(data)) == data
    assert conn.rp.buffered == 0
    assert pending(conn.fd) == 0
    assert one_turn(turns, conn) == []  # the read would block: nothing to say
    assert one_turn(turns, conn, report_all=True) == []  # nor when every turn is asked for
    conn.peer.sendall(b"again\n")
    assert one_turn(turns, conn, report_all=True) == [(conn.fd, TURN_IDLE, 6)]
    assert recv_exactly(conn.peer, 6) == b"again\n"
    assert pending(conn.peer.fileno()) == 0


def test_a_partial_line_is_held_then_goes_back_with_the_rest(
    rio: ModuleType, turns: Turns, fds: Fds
) -> None:
    conn = connection(rio, fds)
    conn.peer.sendall(b"par")
    assert one_turn(turns, conn, report_all=True) == [(conn.fd, TURN_IDLE, 0)]
    assert conn.rp.buffered == 3
    assert pending(conn.peer.fileno()) == 0  # nothing went back yet
    conn.peer.sendall(b"tial\nrest")
    assert one_turn(turns, conn, report_all=True) == [(conn.fd, TURN_IDLE, 8)]
    assert recv_exactly(conn.peer, 8) == b"partial\n"  # held + new, in one writev
    assert conn.rp.buffered == 4
    conn.peer.sendall(b" of it\n")
    # All it held went out: DRAINED (a server waiting for EPOLLOUT stops).
    assert one_turn(turns, conn) == [(conn.fd, TURN_DRAINED, 11)]
    assert recv_exactly(conn.peer, 11) == b"rest of it\n"
    assert conn.rp.buffered == 0


def test_a_line_longer_than_the_limit_goes_back_in_pieces(
    rio: ModuleType, turns: Turns, fds: Fds
) -> None:
    conn = connection(rio, fds)
    scratch = bytearray(SCRATCH)
    data = b"a" * 20_000  # no newline: a piece goes once LINE_LIMIT bytes wait
    conn.peer.sendall(data)
    model = Model(SCRATCH)
    model.kernel = data
    seen = []
    for _ in range(10):
        expected = model.turn()
        assert one_turn(turns, conn, scratch=scratch, report_all=True) == (
            [] if expected is None else [(conn.fd, *expected)]
        )
        assert conn.rp.buffered == len(model.held)
        assert pending(conn.peer.fileno()) == len(model.echoed)
        seen.append(len(model.echoed))
    assert seen[:2] == [0, 2 * SCRATCH]  # 8192 >= LINE_LIMIT: the first piece
    assert conn.rp.buffered == 20_000 % (2 * SCRATCH) < LINE_LIMIT
    conn.peer.sendall(b"b\n")
    rest = 20_000 % (2 * SCRATCH) + 2  # all it held goes out: DRAINED
    assert one_turn(turns, conn, scratch=scratch) == [(conn.fd, TURN_DRAINED, rest)]
    assert recv_exactly(conn.peer, 20_002) == data + b"b\n"
    assert conn.rp.buffered == 0


def test_eof_sends_the_last_partial_line_and_closes(
    rio: ModuleType, turns: Turns, fds: Fds
) -> None:
    conn = connection(rio, fds)
    conn.peer.sendall(b"a\nlast")
    conn.peer.shutdown(socket.SHUT_WR)
    assert one_turn(turns, conn) == []  # "a\n" goes back; "last" waits for more
    assert conn.rp.buffered == 4
    assert one_turn(turns, conn) == [(conn.fd, TURN_CLOSED, 4)]
    assert recv_exactly(conn.peer, 6) == b"a\nlast"
    assert conn.rp.buffered == 0
    assert one_turn(turns, conn) == [(conn.fd, TURN_CLOSED, 0)]  # EOF stays EOF

    other = connection(rio, fds)
    other.peer.shutdown(socket.SHUT_WR)
    assert one_turn(turns, other) == [(other.fd, TURN_CLOSED, 0)]


def block(turns: Turns, conn: Conn, sent: bytearray, high_water: int = HIGH) -> Rows:
    """Send lines to a server whose peer does not read, a turn after each
    send, until a turn reports ``TURN_BLOCKED``; its rows."""
    for i in range(0, 100_000, 10):
        chunk = lines(i, 10)
        conn.peer.sendall(chunk)
        sent += chunk
        rows = one_turn(turns, conn, high_water=high_water)
        if rows:
            return rows
    raise AssertionError("the echo never blocked")


def test_a_peer_that_does_not_read_blocks_the_echo_and_loses_nothing(
    rio: ModuleType, turns: Turns, fds: Fds
) -> None:
    conn = connection(rio, fds, small=True)
    high = 32 * 1024
    sent = bytearray()
    rows = block(turns, conn, sent, high)
    assert rows == [(conn.fd, TURN_BLOCKED, rows[0][2])]
    assert conn.rp.buffered > 0
    # Input is still read below the high-water mark...
    for i in range(10_000, 100_000, 30):
        if conn.rp.buffered >= high:
            break
        chunk = lines(i, 30)
        conn.peer.sendall(chunk)
        sent += chunk
        assert one_turn(turns, conn, high_water=high) == [(conn.fd, TURN_BLOCKED, 0)]
    assert conn.rp.buffered >= high
    # ...and not above it: what comes next stays in the kernel.
    extra = lines(200_000, 50)
    conn.peer.sendall(extra)
    sent += extra
    buffered, waiting = conn.rp.buffered, pending(conn.fd)
    assert waiting >= len(extra)
    for _ in range(3):
        assert one_turn(turns, conn, high_water=high) == [(conn.fd, TURN_BLOCKED, 0)]
        assert (conn.rp.buffered, pending(conn.fd)) == (buffered, waiting)
    # The mark is "fewer than": at it, no read; one byte over, one read.
    assert one_turn(turns, conn, high_water=buffered) == [(conn.fd, TURN_BLOCKED, 0)]
    assert (conn.rp.buffered, pending(conn.fd)) == (buffered, waiting)
    assert one_turn(turns, conn, high_water=buffered + 1) == [(conn.fd, TURN_BLOCKED, 0)]
    assert conn.rp.buffered == buffered + SCRATCH
    assert pending(conn.fd) == waiting - SCRATCH
    # The peer reads: the output drains, input flows again, every byte once, in order.
    received = bytearray()
    states = []
    for _ in range(10_000):
        received += take(conn.peer)
        assert sent.startswith(received)
        if len(received) == len(sent):
            break
        rows = one_turn(turns, conn, mask=IN | OUT, high_water=high)
        states += [state for _fd, state, _count in rows]
        assert all(row[0] == conn.fd for row in rows)
    assert received == sent
    assert TURN_DRAINED in states
    assert set(states) <= {TURN_BLOCKED, TURN_DRAINED}
    assert conn.rp.buffered == 0 and pending(conn.fd) == 0
    assert one_turn(turns, conn) == []


def test_eof_while_blocked_then_closed_with_every_byte_delivered(
    rio: ModuleType, turns: Turns, fds: Fds
) -> None:
    conn = connection(rio, fds, small=True)
    sent = bytearray()
    block(turns, conn, sent)
    conn.peer.sendall(b"tail")  # a last line without a newline
    sent += b"tail"
    conn.peer.shutdown(socket.SHUT_WR)
    for _ in range(10_000):  # the peer still does not read: the rest is read in
        rows = one_turn(turns, conn)
        assert rows in ([(conn.fd, TURN_BLOCKED, 0)], [(conn.fd, TURN_BLOCKED_EOF, 0)])
        if rows[0][1] == TURN_BLOCKED_EOF:
            break
    else:
        raise AssertionError("EOF never seen")
    assert pending(conn.fd) == 0
    received = bytearray()
    states = []
    for _ in range(10_000):
        received += take(conn.peer)
        assert sent.startswith(received)
        rows = one_turn(turns, conn, mask=OUT)
        assert len(rows) == 1 and rows[0][0] == conn.fd
        states.append(rows[0][1])
        if rows[0][1] == TURN_CLOSED:
            break
    assert states[-1] == TURN_CLOSED
    assert set(states[:-1]) <= {TURN_BLOCKED_EOF}
    received += take(conn.peer)
    assert received == sent
    assert conn.rp.buffered == 0


# ------------------------------------------------------------ failures


def test_a_reset_peer_fails_its_turn_and_the_others_go_on(
    rio: ModuleType, turns: Turns, fds: Fds
) -> None:
    listener = fds.track(socket.create_server(("127.0.0.1", 0)))
    client = socket.create_connection(listener.getsockname(), timeout=TIMEOUT)
    conn = Conn(rio, fds.track(listener.accept()[0]), fds.track(client))
    healthy = connection(rio, fds)
    rios = {conn.fd: conn.rp, healthy.fd: healthy.rp}
    scratch = bytearray(SCRATCH)
    client.sendall(b"x\n" * 1000)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # a RST, not a FIN
    for _ in range(1000):
        healthy.peer.sendall(b"ok\n")
        rows = turns([(conn.fd, IN), (healthy.fd, IN)], rios, scratch, HIGH)
        assert recv_exactly(healthy.peer, 3) == b"ok\n"
        if rows:
            break
        time.sleep(0.005)  # the reset is still on its way
    assert len(rows) == 1 and rows[0][:2] == (conn.fd, TURN_FAILED)
    assert rows[0][2] in (errno.ECONNRESET, errno.EPIPE)
    assert conn.rp.buffered in (0, 2000)  # a failed write keeps what was read


def test_a_failed_write_keeps_what_was_read(rio: ModuleType, turns: Turns, fds: Fds) -> None:
    conn = connection(rio, fds)
    conn.peer.sendall(b"abc\n")
    conn.peer.shutdown(socket.SHUT_RD)  # the server's writes now fail with EPIPE
    assert one_turn(turns, conn) == [(conn.fd, TURN_FAILED, errno.EPIPE)]
    assert conn.rp.buffered == 4
    assert one_turn(turns, conn) == [(conn.fd, TURN_FAILED, errno.EPIPE)]  # held output first
    assert conn.rp.buffered == 4


def test_a_bad_descriptor_fails_its_turn_and_keeps_the_held_bytes(
    rio: ModuleType, turns: Turns, fds: Fds
) -> None:
    srv, peer = fds.socketpair()
    fd = os.dup(srv.fileno())  # closed below, under the Rio
    rp = rio.Rio(fd)
    os.set_blocking(fd, False)
    peer.sendall(b"held")
    assert turns([(fd, IN)], {fd: rp}, bytearray(SCRATCH), HIGH) == []
    assert rp.buffered == 4
    healthy = connection(rio, fds)  # before the close: it must not get fd's number
    healthy.peer.sendall(b"fine\n")
    os.close(fd)
    rows = turns([(fd, IN), (healthy.fd, IN)], {fd: rp, healthy.fd: healthy.rp}, bytearray(9), 1)
    assert rows == [(fd, TURN_FAILED, errno.EBADF)]
    assert rp.buffered == 4
    assert recv_exactly(healthy.peer, 5) == b"fine\n"


# ------------------------------------------------------------ rows


def test_rows_in_event_order_with_not_served_masks_and_report_all(
    rio: ModuleType, turns: Turns, fds: Fds
) -> None:
    for report_all in (False, True):
        whole, quiet, partial, closing = (connection(rio, fds) for _ in range(4))
        whole.peer.sendall(b"whole\n")
        partial.peer.sendall(b"part")
        closing.peer.shutdown(socket.SHUT_WR)
        rios = {c.fd: c.rp for c in (whole, quiet, partial, closing)}
        unserved = max(rios) + 1000
        events = [
            (unserved, IN | HUP),
            (closing.fd, IN | HUP),
            (whole.fd, IN),
            (quiet.fd, OUT),
            (-1, 0x2019),
            (partial.fd, IN),
        ]
        rows = turns(events, rios, bytearray(SCRATCH), HIGH, report_all)
        expected = [
            (unserved, TURN_NOT_SERVED, IN | HUP),
            (closing.fd, TURN_CLOSED, 0),
            (whole.fd, TURN_IDLE, 6),
            (-1, TURN_NOT_SERVED, 0x2019),
            (partial.fd, TURN_IDLE, 0),
        ]
        if not report_all:
            del expected[4], expected[2]
        assert rows == expected
        assert recv_exactly(whole.peer, 6) == b"whole\n"
        assert turns([], rios, bytearray(1), HIGH, report_all) == []
        assert turns([(7, 1)], {}, bytearray(1), HIGH) == [(7, TURN_NOT_SERVED, 1)]


def test_a_long_lines_piece_after_the_last_newline_goes_in_the_same_write(
    rio: ModuleType, turns: Turns, fds: Fds
) -> None:
    """Whole lines, then LINE_LIMIT bytes of a line without its newline: the
    piece goes back with the lines (nothing waits for a newline that may
    never come), as csapp_rio_echo's loop sends it."""
    conn = connection(rio, fds)
    data = b"a\n" + b"x" * LINE_LIMIT
    conn.peer.sendall(data)
    assert one_turn(turns, conn, scratch=bytearray(1 << 16), report_all=True) == [
        (conn.fd, TURN_IDLE, len(data))
    ]
    assert recv_exactly(conn.peer, len(data)) == data
    assert conn.rp.buffered == 0


def test_a_rio_that_holds_nothing_gives_its_buffer_back(
    rio: ModuleType, turns: Turns, fds: Fds
) -> None:
    conn = connection(rio, fds)
    conn.peer.sendall(b"first\nsecond\nthird")
    assert conn.rp.readline() == b"first\n"  # the Rio's own buffer holds the rest
    # "second\n" waited in the Rio: it goes first, and the turn says so; "third" stays.
    assert one_turn(turns, conn) == [(conn.fd, TURN_DRAINED, 7)]
    assert recv_exactly(conn.peer, 7) == b"second\n"
    assert conn.rp.buffered == 5
    conn.peer.sendall(b"\n")
    assert one_turn(turns, conn) == [(conn.fd, TURN_DRAINED, 6)]
    assert recv_exactly(conn.peer, 6) == b"third\n"
    assert conn.rp.buffered == 0
    assert conn.rp.__sizeof__() == object.__sizeof__(conn.rp)  # no buffer kept
    if rio.__name__.endswith("_py"):
        assert conn.rp._parts == [] and conn.rp._cap == 0


def test_a_lock_held_by_another_thread_is_waited_for(
    rio: ModuleType, turns: Turns, fds: Fds
) -> None:
    srv, peer = fds.socketpair()
    peer.settimeout(TIMEOUT)
    rp = rio.Rio(srv.fileno())
    got: List[bytes] = []
    reader = threading.Thread(target=lambda: got.append(rp.readnb(5)), daemon=True)
    reader.start()  # blocks in read(2) holding the Rio's lock
    assert reader.native_id is not None
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        asleep = blocked_on(reader.native_id, srv.fileno())
        if asleep:
            break
        if asleep is None:  # /proc cannot tell: give the reader time to get there
            time.sleep(0.2)
            break
        time.sleep(0.001)
    srv.setblocking(False)  # for the turn; the read under way still waits
    rows: List[Rows] = []
    server = threading.Thread(
        target=lambda: rows.append(
            turns([(srv.fileno(), IN)], {srv.fileno(): rp}, bytearray(SCRATCH), HIGH)
        ),
        daemon=True,
    )
    server.start()
    server.join(0.2)
    assert server.is_alive(), "the turn did not wait for the lock"
    peer.sendall(b"abcdexy\n")
    reader.join(TIMEOUT)
    server.join(TIMEOUT)
    assert got == [b"abcde"]
    assert rows == [[(srv.fileno(), TURN_DRAINED, 3)]]  # "xy\n" waited in the Rio
    assert recv_exactly(peer, 3) == b"xy\n"


# ------------------------------------------------------------ arguments


def _bad_arguments(rio: ModuleType, conn: Conn, fds: Fds) -> Dict[str, Any]:
    """name -> ((events, rios, scratch, high_water), exception, message or None)."""
    fd, rp = conn.fd, conn.rp
    good = (bytearray(SCRATCH), HIGH)
    other_fd = fds.socketpair()[0].fileno()
    closed = rio.Rio(other_fd)
    closed.close()
    blank = rio.Rio.__new__(rio.Rio)
    bound = rio.Rio(other_fd)
    bound._bind_socket(conn.srv, True)  # reads through recv_into, as csapp.makefile's over TLS
    events = [(fd, IN), (other_fd, IN)]  # the good Rio first: its lock is taken, then given back
    twins = [m for m in csapp.IMPLEMENTATIONS.values() if m is not rio]
    cases: Dict[str, Any] = {
        "rios a list": (([(fd, IN)], [(fd, rp)], *good), TypeError, msg_not_dict([])),
        "rios a mapping": (
            ([(fd, IN)], types.MappingProxyType({fd: rp}), *good),
            TypeError,
            msg_not_dict(types.MappingProxyType({})),
        ),
        "a value not a Rio": (
            (events, {fd: rp, other_fd: "rio"}, *good),
            TypeError,
            msg_not_rio("rio"),
        ),
        "a closed Rio": ((events, {fd: rp, other_fd: closed}, *good), ValueError, MSG_CLOSED),
        "an uninitialized Rio": (
            (events, {fd: rp, other_fd: blank}, *good),
            ValueError,
            MSG_UNINIT,
        ),
        "a socket-bound Rio": (
            (events, {fd: rp, other_fd: bound}, *good),
            ValueError,
            MSG_ECHO_NEEDS_FD,
        ),
        "scratch bytes": (
            ([(fd, IN)], conn.rios, b"x" * 10, HIGH),
            TypeError,
            msg_not_writable(b""),
        ),
        "scratch str": (([(fd, IN)], conn.rios, "x" * 10, HIGH), TypeError, msg_not_bytes_like("")),
        "scratch None": (([(fd, IN)], conn.rios, None, HIGH), TypeError, msg_not_bytes_like(None)),
        "scratch strided": (
            ([(fd, IN)], conn.rios, memoryview(bytearray(20))[::2], HIGH),
            TypeError,
            None,
        ),
        "scratch empty": (
            ([(fd, IN)], conn.rios, bytearray(), HIGH),
            ValueError,
            MSG_SCRATCH_EMPTY,
        ),
        "high_water not a number": (([(fd, IN)], conn.rios, bytearray(9), "1"), TypeError, None),
        "one descriptor twice": (
            ([(fd, IN), (fd, OUT)], conn.rios, *good),
            RuntimeError,
            MSG_REENTRANT,
        ),
        "one Rio under two descriptors": (
            (events, {fd: rp, other_fd: rp}, *good),
            RuntimeError,
            MSG_REENTRANT,
        ),
    }
    if twins:
        cases["the other twin's Rio"] = (
            (events, {fd: rp, other_fd: twins[0].Rio(other_fd)}, *good),
            TypeError,
            msg_not_rio(twins[0].Rio(other_fd)),
        )
    return cases


BAD_ARGUMENTS = [
    "rios a list",
    "rios a mapping",
    "a value not a Rio",
    "a closed Rio",
    "an uninitialized Rio",
    "a socket-bound Rio",
    "scratch bytes",
    "scratch str",
    "scratch None",
    "scratch strided",
    "scratch empty",
    "high_water not a number",
    "one descriptor twice",
    "one Rio under two descriptors",
    "the other twin's Rio",
]


@pytest.mark.parametrize("name", BAD_ARGUMENTS)
def test_bad_arguments_raise_before_any_turn(
    rio: ModuleType, turns: Turns, fds: Fds, name: str
) -> None:
    conn = connection(rio, fds)
    conn.peer.sendall(b"line\n")
    cases = _bad_arguments(rio, conn, fds)
    if name not in cases:
        pytest.skip("needs both twins")
    args, kind, message = cases[name]
    with pytest.raises(kind, match=None if message is None else exactly(message)):
        turns(*args)
    assert pending(conn.fd) == 5  # nothing read
    assert conn.rp.buffered == 0
    assert pending(conn.peer.fileno()) == 0  # nothing written
    # The lock is free again (a lock left held would raise or hang here).
    assert one_turn(turns, conn) == []
    assert recv_exactly(conn.peer, 5) == b"line\n"


ORDERS = {  # events (names of _several_bad's Rios) -> what the first bad one raises
    "good good-again not-a-rio": (RuntimeError, MSG_REENTRANT),
    "good not-a-rio good-again": (TypeError, msg_not_rio("rio")),
    "closed not-a-rio": (ValueError, MSG_CLOSED),
    "bound closed": (ValueError, MSG_ECHO_NEEDS_FD),
    "good closed good-again": (ValueError, MSG_CLOSED),
    "good good-again closed": (RuntimeError, MSG_REENTRANT),
}


@pytest.mark.parametrize("order", list(ORDERS))
def test_the_first_bad_event_decides_the_error(
    rio: ModuleType, turns: Turns, fds: Fds, order: str
) -> None:
    """Several bad events: both twins raise for the first, as the C twin,
    which takes the locks one event at a time, meets them."""
    conn = connection(rio, fds)
    conn.peer.sendall(b"line\n")
    closed_fd, bound_fd, other_fd = (fds.socketpair()[0].fileno() for _ in range(3))
    closed = rio.Rio(closed_fd)
    closed.close()
    bound = rio.Rio(bound_fd)
    bound._bind_socket(conn.srv, True)
    fd_of = {
        "good": conn.fd,
        "good-again": other_fd,
        "not-a-rio": 10_001,
        "closed": closed_fd,
        "bound": bound_fd,
    }
    rios = {conn.fd: conn.rp, other_fd: conn.rp, 10_001: "rio", closed_fd: closed, bound_fd: bound}
    kind, message = ORDERS[order]
    with pytest.raises(kind, match=exactly(message)):
        turns([(fd_of[name], IN) for name in order.split()], rios, bytearray(SCRATCH), HIGH)
    assert pending(conn.fd) == 5 and conn.rp.buffered == 0
    assert one_turn(turns, conn) == []
    assert recv_exactly(conn.peer, 5) == b"line\n"


def test_the_rest_of_a_long_lines_piece_goes_out_when_the_socket_drains(
    rio: ModuleType, turns: Turns, fds: Fds
) -> None:
    """A piece of a long line the socket took only part of is owed: the
    writable turn sends its rest, though the rule alone would wait for more."""
    conn = connection(rio, fds, small=True)
    conn.peer.sendall(b"a" * 12_000)  # one line longer than LINE_LIMIT: all of it is a piece
    scratch = bytearray(1 << 16)
    rows = one_turn(turns, conn, scratch=scratch)
    assert rows == [(conn.fd, TURN_BLOCKED, rows[0][2])]
    held = conn.rp.buffered
    assert 0 < held < LINE_LIMIT
    received = take(conn.peer)
    assert len(received) + held == 12_000
    # Writable again: the rest of the piece goes, and the turn says so (else an
    # event server would wait for EPOLLOUT for ever, woken on every poll).
    assert one_turn(turns, conn, mask=OUT, scratch=scratch) == [(conn.fd, TURN_DRAINED, held)]
    assert received + recv_exactly(conn.peer, held) == b"a" * 12_000


# ------------------------------------------------------------ the model


CHUNKS = st.one_of(
    st.binary(min_size=1, max_size=300),
    st.builds(
        lambda n, newline: b"z" * n + (b"\n" if newline else b""),
        st.integers(0, LINE_LIMIT + LINE_LIMIT // 2),
        st.booleans(),
    ),
    st.integers(1, 150).map(lambda n: b"".join(b"%05d %s\n" % (i, b"l" * 50) for i in range(n))),
    st.lists(
        st.sampled_from([b"a\n", b"bc\n", b"\n", b"a longer line " * 20 + b"\n"]), max_size=40
    ).map(b"".join),
)
SEND = st.tuples(st.just("send"), CHUNKS)
TURN = st.tuples(st.just("turn"), st.sampled_from([IN, OUT, IN | OUT]))
FLOOD = st.tuples(st.just("flood"), st.integers(2, 12))  # sends and turns, no read between
OPS = st.lists(
    st.one_of(SEND, TURN, SEND, TURN, FLOOD, st.tuples(st.just("read"), st.none())),
    min_size=10,
    max_size=40,
)
BUDGET = 40_000  # bytes sent per example at most: small scratches make many turns


@settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(
    ops=OPS,
    size=st.sampled_from([7, 100, SCRATCH, 65536]),
    small=st.sampled_from([True, True, True, False]),  # mostly a socket that fills
    high_water=st.sampled_from([1, 3000, HIGH]),
    eof_at=st.integers(5, 80),
    read_every=st.sampled_from([1, 3, 10]),
)
def test_any_script_echoes_every_byte_in_order(
    rio: ModuleType,
    turns: Turns,
    watchdog: Watchdog,
    ops: List[Tuple[str, Any]],
    size: int,
    small: bool,
    high_water: int,
    eof_at: int,
    read_every: int,
) -> None:
    """Every turn is the model's (its state, the bytes left in the kernel and
    in the Rio, the echoed stream), given how much the socket took; with room
    for every write, the socket takes all. After EOF everything arrives."""
    watchdog(15.0)  # per example
    bag = Fds()
    try:
        conn = connection(rio, bag, small=small)
        scratch = bytearray(size)
        model = Model(size, high_water)
        sent = bytearray()
        received = bytearray()
        closed = False

        def check(rows: Rows, mask: int) -> None:
            nonlocal received, closed
            assert len(rows) <= 1 and all(row[0] == conn.fd for row in rows), rows
            expected = model.turn(rows[0][2] if rows else 0, bool(mask & OUT))
            assert rows == ([] if expected is None else [(conn.fd, *expected)])
            if not small:  # room for every write: the socket took all
                assert not rows or rows[0][1] not in (TURN_BLOCKED, TURN_BLOCKED_EOF), rows
                received += take(conn.peer)
            assert (conn.rp.buffered, pending(conn.fd)) == (len(model.held), len(model.kernel))
            assert len(received) + pending(conn.peer.fileno()) == len(model.echoed)
            assert model.echoed.startswith(received)
            closed = bool(rows) and rows[0][1] == TURN_CLOSED

        def send(data: bytes) -> None:
            if not model.eof and len(sent) + len(data) <= BUDGET:
                # What the kernel takes now: a server that does not read blocks the peer.
                data = data[: offer(conn.peer, data)]
                sent.extend(data)
                model.kernel += data

        for number, (op, arg) in enumerate(ops):
            if number == eof_at:
                conn.peer.shutdown(socket.SHUT_WR)
                model.eof = True
            if op == "send":
                send(arg)
            elif op == "flood":
                for i in range(arg):
                    send(lines(number * 100 + i * 20, 20))
                    check(one_turn(turns, conn, IN, scratch, high_water, report_all=True), IN)
            elif op == "read":
                received += take(conn.peer)
                assert model.echoed.startswith(received)
            elif op == "turn":
                check(one_turn(turns, conn, arg, scratch, high_water, report_all=True), arg)
        if not model.eof:
            conn.peer.shutdown(socket.SHUT_WR)
            model.eof = True
        for number in range(2 * BUDGET // size + 1000):
            if closed:
                break
            if number % read_every == 0:  # a peer that reads late makes the output wait
                received += take(conn.peer)
            check(one_turn(turns, conn, IN | OUT, scratch, high_water, report_all=True), IN | OUT)
        assert closed
        received += take(conn.peer)
        assert received == model.echoed == sent
        assert conn.rp.buffered == 0
    finally:
        bag.closeall()


# ------------------------------------------------------------ system calls

# A child runs one fixed script with one twin, under strace. Before each
# call it stats a marker path naming the call and the descriptors it
# serves, so each call's read/write/writev of those descriptors are told
# apart. It prints every call's rows (fds as the script's names) and what
# each peer received.
CHILD = r"""
import importlib, json, os, socket, sys
twin = importlib.import_module(sys.argv[1])
scratch = bytearray(4096)
names, log, received = {}, [], {}

def pair(name, small=False):
    a, b = socket.socketpair()
    a.setblocking(False)
    b.settimeout(10)
    if small:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    names[a.fileno()] = name
    received[name] = b""
    return a, b, twin.Rio(a.fileno()), name

def turn(pairs, mask=1, high=1 << 20, report_all=False, extra=()):
    events = [(a.fileno(), mask) for a, _, _, _ in pairs] + list(extra)
    rios = {a.fileno(): rp for a, _, rp, _ in pairs}
    fds = ",".join(str(fd) for fd in rios) or "none"
    try:
        os.stat(f"/csapp-turn-{len(log)}-fds-{fds}")
    except OSError:
        pass
    rows = twin._rio_echo_turns(events, rios, scratch, high, report_all)
    log.append([[names.get(fd, fd), state, count] for fd, state, count in rows])

def take(p):
    a, b, rp, name = p
    b.setblocking(False)
    try:
        while data := b.recv(65536):
            received[name] += data
    except BlockingIOError:
        pass
    b.settimeout(10)

# 1. Fixed outcomes (the expected list in the test).
p = pair("p")
p[1].sendall(b"one\ntwo\n"); turn([p])
turn([p])
p[1].sendall(b"par"); turn([p], report_all=True)
p[1].sendall(b"tial\nrest"); turn([p])
p[1].sendall(b"x" * 9000); turn([p]); turn([p]); turn([p])
p[1].shutdown(socket.SHUT_WR); turn([p]); turn([p])
q = pair("q")
q[1].sendall(b"abc\n"); q[1].shutdown(socket.SHUT_RD); turn([q]); turn([q])
turn([], extra=[(999, 5)])
take(p)
# 2. A peer that reads late (counts the kernel decides: compared between the twins).
s = pair("s", small=True)
sent = b""
for i in range(12):  # the server reads up to 12000 bytes; the rest waits in the kernel
    chunk = b"".join(b"%06d %s\n" % (i * 30 + j, b"y" * 92) for j in range(30))
    s[1].sendall(chunk); sent += chunk
    turn([s], high=12000)
for i in range(3):
    turn([s], high=12000)
for i in range(60):  # the peer reads: BLOCKED, then DRAINED, until nothing is left
    take(s); turn([s], mask=4, high=12000)
    if not log[-1]:
        break
take(s)
# 3. EOF while the output waits.
t = pair("t", small=True)
sent_t = b""
for i in range(6):
    chunk = b"".join(b"%06d %s\n" % (i * 30 + j, b"z" * 92) for j in range(30))
    t[1].sendall(chunk); sent_t += chunk
    turn([t])
t[1].sendall(b"end"); sent_t += b"end"; t[1].shutdown(socket.SHUT_WR)
for i in range(10):  # the peer does not read: the rest is read in, then EOF
    turn([t])
    if log[-1] and log[-1][0][1] == 3:
        break
for i in range(60):
    take(t); turn([t, p], mask=5)
    if log[-1] and log[-1][0][1] == 4:
        break
take(t)
# 4. A Rio read by its own methods too: their reads' sizes follow the buffer the turns left.
u = pair("u")
u[1].sendall(b"first\nsecond\nthi"); u[2].readline(); turn([u])
u[1].sendall(b"rd\n" + b"w" * 10000); turn([u]); turn([u])
u[1].sendall(b"v" * 5 + b"\n" + b"y" * 30); u[2].readline(); turn([u])
u[1].sendall(b"z" * 9000); turn([u]); turn([u]); turn([u]); u[2].read1(5000)
u[1].sendall(b"x" * 20000 + b"\n" + b"y" * 30); u[2].readline(); turn([u]); u[2].read1(5)
take(u)
# 5. Output held beyond bufsize (a grown buffer), then the Rio's own read.
w = pair("w", small=True)
for i in range(8):
    w[1].sendall(b"".join(b"%06d %s\n" % (i * 30 + j, b"w" * 92) for j in range(30)))
    turn([w])
w[1].sendall(b"q" * 500); w[2].read(w[2].buffered + 200); turn([w], mask=4)
take(w); turn([w], mask=4); take(w)
print(json.dumps({"log": log, "received": {k: v.decode("latin-1") for k, v in received.items()},
                  "delivered": [received["s"] == sent, received["t"] == sent_t]}))
"""

TRACE_LINE = re.compile(
    r'^(?:stat|newfstatat|statx)\((?:AT_FDCWD, )?"/csapp-turn-(\d+)-fds-([\d,]+|none)"'
    r"|^(read|write|writev)\((\d+), (.*)\) += (-?\d+)(?: (E[A-Z]+))?"
)

Call = Tuple[str, List[int], Any]  # (system call, sizes asked, count or errno name)


def strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    try:
        probe = subprocess.run(
            ["strace", "-qq", "-o", os.devnull, "true"], capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


_TRACES: Dict[str, Tuple[List[List[Call]], Dict[str, Any]]] = {}


def traced(module: str, tmp: Path) -> Tuple[List[List[Call]], Dict[str, Any]]:
    """The child's system calls per turn call, and its report, for one twin."""
    if module in _TRACES:
        return _TRACES[module]
    if not strace_works():
        pytest.skip("strace is missing or cannot trace here (apt-get install strace)")
    trace = tmp / f"trace-{module}"
    src = str(Path(csapp.__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        strace_argv("read,write,writev", str(trace)) + [sys.executable, "-c", CHILD, module],
        capture_output=True,
        timeout=120,
        env=env,
        check=False,
    )
    if done.returncode != 0 and not done.stdout:
        if b"strace" in done.stderr and b"Traceback" not in done.stderr:
            pytest.skip(f"strace cannot trace here: {done.stderr.decode()[-200:]}")
        raise AssertionError(done.stderr.decode())
    calls: List[List[Call]] = []
    fds: List[int] = []
    for line in trace.read_text().splitlines():
        line = re.sub(r"^\d+ +", "", line)  # -f prefixes the pid
        m = TRACE_LINE.match(line)
        if not m:
            continue
        if m.group(1) is not None:
            assert int(m.group(1)) == len(calls)
            calls.append([])
            fds = [] if m.group(2) == "none" else [int(fd) for fd in m.group(2).split(",")]
        elif calls and int(m.group(4)) in fds:
            name, args = m.group(3), m.group(5)
            if name == "writev":
                sizes = [int(n) for n in re.findall(r"iov_len=(\d+)", args)]
            else:
                sizes = [int(args.rsplit(",", 1)[1])]
            result: Any = m.group(7) if m.group(7) else int(m.group(6))
            calls[-1].append((name, sizes, result))
    _TRACES[module] = (calls, json.loads(done.stdout))
    return _TRACES[module]


EPIPE = errno.EPIPE
# Part 1 of CHILD: (the calls on the served descriptors, the rows) of each turn call.
EXPECTED: List[Tuple[List[Call], List[List[Any]]]] = [
    ([("read", [4096], 8), ("write", [8], 8)], []),  # whole lines: one read, one write
    ([("read", [4096], "EAGAIN")], []),  # nothing ready: no row
    ([("read", [4096], 3)], [["p", TURN_IDLE, 0]]),  # a partial line is held
    ([("read", [4096], 9), ("writev", [3, 5], 8)], []),  # held + new in one writev
    ([("read", [4096], 4096)], []),  # "rest" + 4096 bytes: no newline, under the limit
    # Over it: one piece, all it held with it (DRAINED).
    ([("read", [4096], 4096), ("writev", [4100, 4096], 8196)], [["p", TURN_DRAINED, 8196]]),
    ([("read", [4096], 808)], []),
    ([("read", [4096], 0), ("write", [808], 808)], [["p", TURN_CLOSED, 808]]),  # EOF
    ([("read", [4096], 0)], [["p", TURN_CLOSED, 0]]),
    ([("read", [4096], 4), ("write", [4], "EPIPE")], [["q", TURN_FAILED, EPIPE]]),
    ([("write", [4], "EPIPE")], [["q", TURN_FAILED, EPIPE]]),  # the held output first
    ([], [[999, TURN_NOT_SERVED, 5]]),  # no system call for a descriptor not served
]


def test_the_system_calls_of_a_fixed_script(
    rio: ModuleType, turns: Turns, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Exactly the reads and writes the spec lists, no more (strace)."""
    calls, report = traced(rio.__name__, tmp_path_factory.mktemp("strace"))
    for number, (expected_calls, expected_rows) in enumerate(EXPECTED):
        assert (calls[number], report["log"][number]) == (expected_calls, expected_rows), number
    assert report["received"]["p"] == "one\ntwo\npartial\nrest" + "x" * 9000
    assert report["delivered"] == [True, True]
    states = {row[1] for rows in report["log"][len(EXPECTED) :] for row in rows}
    assert {TURN_BLOCKED, TURN_DRAINED, TURN_BLOCKED_EOF, TURN_CLOSED} <= states


def test_both_twins_make_the_same_system_calls(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The whole script, a late reader included: the same calls, counts and rows."""
    twins = [
        module for module in csapp.IMPLEMENTATIONS.values() if hasattr(module, "_rio_echo_turns")
    ]
    if len(twins) < 2:
        pytest.skip("needs both twins with _rio_echo_turns (build the extension)")
    tmp = tmp_path_factory.mktemp("strace")
    (c_calls, c_report), (py_calls, py_report) = (traced(m.__name__, tmp) for m in twins)
    assert len(c_calls) == len(py_calls) > len(EXPECTED)
    for number, (c, py) in enumerate(zip(c_calls, py_calls)):
        assert c == py, number
    assert c_report == py_report
