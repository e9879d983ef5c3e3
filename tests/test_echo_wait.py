"""``_rio_echo_wait``: the event server's loop until Python is needed, under
both RIO twins.

One call waits on an ``epoll``, serves every ready connection's turn
(``_rio_echo_turns``, tested on its own in ``test_echo_turns``), and waits
again while no turn needs Python; it returns the rows of the wait that
needed it, or no rows at the timeout. The tests drive it over socketpairs
registered in a real ``select.epoll``, with peer threads that send and read.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from types import ModuleType
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest

from csapp._shared import (
    MSG_SCRATCH_EMPTY,
    TURN_CLOSED,
    TURN_IDLE,
    TURN_NOT_SERVED,
    msg_not_dict,
    msg_not_writable,
)
from support.rioutil import Fds, exactly

pytestmark = [
    pytest.mark.skipif(not hasattr(select, "epoll"), reason="select.epoll is Linux's"),
    pytest.mark.usefixtures("watchdog"),
]

TIMEOUT = 10.0  # every peer's socket timeout, and the hang guard of a wait
IN = getattr(select, "EPOLLIN", 1)
HIGH = 1 << 20
Rows = List[Tuple[Any, int, Any]]
Wait = Callable[..., Rows]


@pytest.fixture
def wait(rio: ModuleType) -> Wait:
    """``_rio_echo_wait`` of the twin under test."""
    return rio._rio_echo_wait  # type: ignore[no-any-return]


@pytest.fixture
def epoll() -> Iterator[Any]:
    poller = select.epoll()
    try:
        yield poller
    finally:
        poller.close()


class Server:
    """What an event server passes: connections registered for EPOLLIN, each
    with its Rio, and a stop pipe registered but not a connection."""

    def __init__(self, rio: ModuleType, epoll: Any, fds: Fds) -> None:
        self.rio, self.epoll, self.fds = rio, epoll, fds
        self.rios: dict = {}
        self.peers: List[socket.socket] = []
        self.stop_r, self.stop_w = fds.pipe()
        epoll.register(self.stop_r, IN)
        self.scratch = bytearray(4096)

    def connect(self) -> socket.socket:
        srv, peer = self.fds.socketpair()
        srv.setblocking(False)
        peer.settimeout(TIMEOUT)
        self.rios[srv.fileno()] = self.rio.Rio(srv.fileno())
        self.epoll.register(srv.fileno(), IN)
        self.peers.append(peer)
        return peer

    def stop(self) -> None:
        os.write(self.stop_w, b"x")


def in_thread(work: Callable[[], None]) -> Tuple[threading.Thread, Callable[[], None]]:
    """Run ``work`` in a thread: the thread, and a join that re-raises what it raised."""
    errors: List[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> None:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "the peer thread hung"
        if errors:
            raise errors[0]

    return thread, join


def recv_line_echo(peer: socket.socket, line: bytes) -> None:
    peer.sendall(line)
    got = b""
    while len(got) < len(line):
        data = peer.recv(len(line) - len(got))
        assert data, "the server closed"
        got += data
    assert got == line


def test_turns_that_need_no_python_keep_the_call_waiting(
    rio: ModuleType, wait: Wait, epoll: Any, fds: Fds
) -> None:
    """Request after request on three connections, each echo awaited: every
    one goes back while the call keeps waiting; it returns only for the stop
    pipe, which is not a connection (its row carries the event mask)."""
    server = Server(rio, epoll, fds)
    peers = [server.connect() for _ in range(3)]

    def clients() -> None:
        for i in range(50):
            for n, peer in enumerate(peers):
                recv_line_echo(peer, b"request %d from %d\n" % (i, n))
        server.stop()

    _, join = in_thread(clients)
    rows = wait(epoll, server.rios, server.scratch, HIGH, TIMEOUT)
    join()
    assert rows == [(server.stop_r, TURN_NOT_SERVED, IN)]
    assert all(rp.buffered == 0 for rp in server.rios.values())


def test_a_row_ends_the_call_with_the_rows_of_that_wait(
    rio: ModuleType, wait: Wait, epoll: Any, fds: Fds
) -> None:
    """A line, a partial line and the end of file, all sent before the call:
    the first turn echoes the line and keeps the partial one (no row, so the
    call waits again); the next reads the EOF, sends the rest, and its
    TURN_CLOSED row (count: the bytes that turn wrote) ends the call."""
    server = Server(rio, epoll, fds)
    peer = server.connect()
    fd = next(iter(server.rios))
    peer.sendall(b"one line\nlast, no newline")
    peer.shutdown(socket.SHUT_WR)
    rows = wait(epoll, server.rios, server.scratch, HIGH, TIMEOUT)
    assert rows == [(fd, TURN_CLOSED, len(b"last, no newline"))]
    assert peer.recv(100) == b"one line\nlast, no newline"


def test_report_all_returns_after_a_turn_that_moved_bytes(
    rio: ModuleType, wait: Wait, epoll: Any, fds: Fds
) -> None:
    """With report_all (the server's log and idle clock), an idle turn that
    read or wrote is a row: the call returns after that wait."""
    server = Server(rio, epoll, fds)
    peer = server.connect()
    fd = next(iter(server.rios))
    peer.sendall(b"hello\n")
    rows = wait(epoll, server.rios, server.scratch, HIGH, TIMEOUT, True)
    assert rows == [(fd, TURN_IDLE, 6)]
    assert peer.recv(100) == b"hello\n"


def test_the_timeout_ends_the_call_though_turns_keep_coming(
    rio: ModuleType, wait: Wait, epoll: Any, fds: Fds
) -> None:
    """A client sends line after line, for up to TIMEOUT seconds: the call
    still returns no rows once its own timeout has passed (never earlier),
    while the client is still sending; served turns do not restart its clock."""
    server = Server(rio, epoll, fds)
    peer = server.connect()
    timeout = 0.3
    stop = threading.Event()
    echoed: List[int] = []

    def client() -> None:
        deadline = time.monotonic() + TIMEOUT
        while not stop.is_set() and time.monotonic() < deadline:
            recv_line_echo(peer, b"line %d\n" % len(echoed))
            echoed.append(1)
            time.sleep(0.01)

    sender, join = in_thread(client)
    start = time.monotonic()
    rows = wait(epoll, server.rios, server.scratch, HIGH, timeout)
    elapsed = time.monotonic() - start
    still_sending = not stop.is_set() and sender.is_alive()
    stop.set()
    while sender.is_alive():  # serve the line the client may still wait on
        wait(epoll, server.rios, server.scratch, HIGH, 0.05)
    join()
    assert rows == [] and elapsed >= timeout
    assert still_sending, "the call outlasted a client that sent for TIMEOUT seconds"
    assert echoed, "no turn was served during the wait"


@pytest.mark.parametrize("timeout", [None, -1, -0.5])
def test_none_or_a_negative_timeout_waits_for_a_row(
    rio: ModuleType, wait: Wait, epoll: Any, fds: Fds, timeout: Optional[float]
) -> None:
    """No deadline (as select.epoll.poll reads None and negative timeouts):
    lines are served and the call returns only for the row a thread's stop
    write makes, after them."""
    server = Server(rio, epoll, fds)
    peer = server.connect()

    def client() -> None:
        recv_line_echo(peer, b"before the stop\n")
        server.stop()

    _, join = in_thread(client)
    rows = wait(epoll, server.rios, server.scratch, HIGH, timeout)
    join()
    assert rows == [(server.stop_r, TURN_NOT_SERVED, IN)]


@pytest.mark.parametrize("timeout", [0, 0.0])
def test_a_zero_timeout_serves_what_is_ready_and_returns(
    rio: ModuleType, wait: Wait, epoll: Any, fds: Fds, timeout: float
) -> None:
    server = Server(rio, epoll, fds)
    peer = server.connect()
    assert wait(epoll, server.rios, server.scratch, HIGH, timeout) == []  # nothing ready
    peer.sendall(b"ready\n")
    assert wait(epoll, server.rios, server.scratch, HIGH, timeout) == []
    assert peer.recv(100) == b"ready\n"


def test_a_signal_handler_that_raises_ends_the_wait(
    rio: ModuleType, wait: Wait, epoll: Any, fds: Fds
) -> None:
    """Ctrl-C reaches a server waiting in the call: the handler's exception
    comes out of it (the compiled twin runs handlers after every wait)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread")
    server = Server(rio, epoll, fds)
    server.connect()

    class Interrupted(Exception):
        pass

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted

    old = signal.signal(signal.SIGUSR1, handler)
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(0.1, signal.pthread_kill, (main, signal.SIGUSR1))
    try:
        timer.start()
        with pytest.raises(Interrupted):
            wait(epoll, server.rios, server.scratch, HIGH, TIMEOUT)
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, old)


def test_a_signal_handler_that_returns_leaves_no_row(
    rio: ModuleType, wait: Wait, epoll: Any, fds: Fds
) -> None:
    """A signal whose handler returns: no rows, and nothing is lost (the
    compiled twin returns at once, the pure one waits on to the timeout)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread")
    server = Server(rio, epoll, fds)
    peer = server.connect()
    seen: List[int] = []
    old = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(0.05, signal.pthread_kill, (main, signal.SIGUSR1))
    try:
        timer.start()
        assert wait(epoll, server.rios, server.scratch, HIGH, 1.0) == []
        timer.join(TIMEOUT)  # on a loaded machine the signal may come after the wait
        for _ in range(1000):  # its handler runs at the next bytecode
            if seen:
                break
            time.sleep(0.01)
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, old)
    assert seen == [signal.SIGUSR1]
    peer.sendall(b"after\n")
    assert wait(epoll, server.rios, server.scratch, HIGH, 0) == []
    assert peer.recv(100) == b"after\n"


def bad_arguments(epoll: Any, server: Server) -> List[Tuple[str, Tuple[Any, ...], type, str]]:
    """(id, the arguments, the exception, its message or "") of calls that
    must fail before any wait."""
    closed = select.epoll()
    closed.close()
    rios, scratch = server.rios, server.scratch
    return [
        ("rios not a dict", (epoll, [], scratch, HIGH), TypeError, msg_not_dict([])),
        ("scratch empty", (epoll, rios, bytearray(), HIGH), ValueError, MSG_SCRATCH_EMPTY),
        ("scratch read-only", (epoll, rios, b"x" * 10, HIGH), TypeError, msg_not_writable(b"")),
        ("high_water not an int", (epoll, rios, scratch, "1"), TypeError, ""),
        ("timeout not a number", (epoll, rios, scratch, HIGH, "soon"), ValueError, ""),
        ("epoll closed", (closed, rios, scratch, HIGH), ValueError, ""),
        ("epoll not an epoll", (7, rios, scratch, HIGH), AttributeError, ""),
    ]


@pytest.mark.parametrize("case", range(7))
def test_bad_arguments_raise_before_any_wait(
    rio: ModuleType, wait: Wait, epoll: Any, fds: Fds, case: int
) -> None:
    """Each bad argument: the same exception and message in both twins,
    raised before the wait, so the ready line is still unread."""
    server = Server(rio, epoll, fds)
    peer = server.connect()
    peer.sendall(b"unread\n")
    name, args, kind, message = bad_arguments(epoll, server)[case]
    with pytest.raises(kind, match=exactly(message) if message else None):
        wait(*args)
    assert wait(epoll, server.rios, server.scratch, HIGH, 0) == [], name
    assert peer.recv(100) == b"unread\n", name


def test_both_twins_raise_the_same_for_bad_arguments(epoll: Any, fds: Fds) -> None:
    """The messages the parametrized test leaves open are the twins' own,
    and the same in both."""
    from csapp import IMPLEMENTATIONS

    if len(IMPLEMENTATIONS) < 2:
        pytest.skip("the compiled extension is not built here")
    seen = {}
    for name, module in IMPLEMENTATIONS.items():
        server = Server(module, epoll, fds)
        messages = []
        for _, args, kind, _ in bad_arguments(epoll, server):
            with pytest.raises(kind) as info:
                module._rio_echo_wait(*args)
            messages.append(str(info.value))
        seen[name] = messages
    assert seen["c"] == seen["python"]
