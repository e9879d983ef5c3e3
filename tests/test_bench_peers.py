"""The benchmarks' peer servers echo what they are sent, byte for byte: a ratio
against a peer that drops or mangles bytes would mean nothing. The Python
peers (``bench/harness/peers.py``) always run; the C peers (``bench/csrc/``)
are compiled here first and skip when there is no C compiler."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from contextlib import ExitStack, contextmanager
from typing import Iterator, List, Tuple

import pytest

from bench.harness import cprogs
from bench.harness.server_process import (
    C_EPOLL,
    C_THREADED,
    ServerSpec,
    c_peers,
    python_peers,
    running,
)
from support.netutil import (
    TIMEOUT,
    connect,
    cpu_ticks,
    exchange,
    recv_exactly,
    recv_until_eof,
    reset,
    sample_data,
    wait_until,
)

PYTHON_PEERS = python_peers()
C_PEERS = [C_THREADED, C_EPOLL]
BUFSIZE = 64 * 1024  # echo_epoll.c's buffer per connection


def c_peer(name: str) -> ServerSpec:
    """The C peer ``name``, compiled if needed; skips without a C compiler."""
    try:
        specs = {spec.name: spec for spec in c_peers()}
    except cprogs.NoCompiler as exc:
        pytest.skip(str(exc))
    return specs[name]


@pytest.fixture
def epoll_server() -> ServerSpec:
    return c_peer(C_EPOLL)


@contextmanager
def started(spec: ServerSpec) -> Iterator[Tuple[subprocess.Popen[str], int]]:
    """``spec`` running: (its process, its port); killed at the end if still running."""
    proc = subprocess.Popen(
        spec.argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on port "), line
        yield proc, int(line.split()[-1])
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=TIMEOUT)


def test_every_socketserver_peer_is_measured() -> None:
    names = {spec.name for spec in PYTHON_PEERS}
    assert {
        "socketserver.ThreadingTCPServer",
        "ThreadingTCPServer + csapp handler",
        "ThreadingTCPServer, bare recv (ceiling)",
        "asyncio streams",
    } <= names


def echoes_requests_and_a_burst(spec: ServerSpec) -> None:
    with running(spec) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            for number in range(20):  # request/response, as the load generator does
                line = b"%02d:" % number + b"x" * 60 + b"\n"
                sock.sendall(line)
                assert recv_exactly(sock, len(line)) == line
            burst = b"".join(b"%d:" % i + b"y" * (i % 300) + b"\n" for i in range(2000))
            # Sent from a thread: the echo flows back while the burst goes out.
            sender = threading.Thread(target=sock.sendall, args=(burst,), daemon=True)
            sender.start()
            assert recv_exactly(sock, len(burst)) == burst
            sender.join(10)


@pytest.mark.parametrize("spec", PYTHON_PEERS, ids=lambda spec: spec.name)
def test_peer_echoes_requests_and_a_burst_byte_for_byte(spec: ServerSpec) -> None:
    echoes_requests_and_a_burst(spec)


@pytest.mark.parametrize("name", C_PEERS)
def test_c_peer_echoes_requests_and_a_burst_byte_for_byte(name: str) -> None:
    echoes_requests_and_a_burst(c_peer(name))


# ------------------------------------------------ the C one-thread epoll server


def test_epoll_server_echoes_every_byte_value_and_the_last_partial_line(
    epoll_server: ServerSpec,
) -> None:
    """Binary lines, a line longer than MAXLINE, a last line without a newline
    (it goes back at end of file, as csapp's echo rule has it)."""
    data = sample_data(1 << 20)
    with running(epoll_server) as port:
        assert exchange(port, data) == data


@pytest.mark.parametrize("size", [BUFSIZE - 1, BUFSIZE, BUFSIZE + 1, 3 * BUFSIZE + 5, 1 << 20])
def test_epoll_server_echoes_a_line_longer_than_its_buffer(
    epoll_server: ServerSpec, size: int
) -> None:
    """A line that fills the buffer goes back in pieces, so it cannot wedge the
    connection; the client gets the line whole, and the next one after it."""
    line = bytes(48 + i % 75 for i in range(size - 1)) + b"\n"  # one newline, at the end
    with running(epoll_server) as port, connect(port) as sock:
        sender = threading.Thread(target=sock.sendall, args=(line,), daemon=True)
        sender.start()
        assert recv_exactly(sock, size) == line
        sender.join(TIMEOUT)
        sock.sendall(b"after\n")
        assert recv_exactly(sock, 6) == b"after\n"


def test_epoll_server_echoes_many_lines_sent_in_one_write(epoll_server: ServerSpec) -> None:
    lines = b"".join(b"%d " % i + b"z" * (i % 97) + b"\n" for i in range(50_000))
    cut = lines.index(b"\n", 4000) + 1  # about 80 lines in one small write, the rest in one
    with running(epoll_server) as port, connect(port) as sock:
        sock.sendall(lines[:cut])
        assert recv_exactly(sock, cut) == lines[:cut]
        sender = threading.Thread(target=sock.sendall, args=(lines[cut:],), daemon=True)
        sender.start()
        assert recv_exactly(sock, len(lines) - cut) == lines[cut:]
        sender.join(TIMEOUT)


def numbered_lines(block: int) -> bytes:
    """The ``block``-th 64 KiB of a stream of numbered 64 B lines."""
    return b"".join(b"%010d" % n + b"q" * 53 + b"\n" for n in range(block << 10, (block + 1) << 10))


def test_epoll_server_waits_for_a_client_that_does_not_read(epoll_server: ServerSpec) -> None:
    """A client sends numbered lines and reads nothing until its sends stall:
    the server's output waits for EPOLLOUT and it stops reading that client,
    spends no CPU while it waits, serves other clients meanwhile, and loses
    no byte once the client reads."""
    blocks = [0]  # 64 KiB blocks sent
    stop = threading.Event()

    def send(sock: socket.socket) -> None:
        while not stop.is_set():  # as much as it takes to fill every buffer
            sock.sendall(numbered_lines(blocks[0]))
            blocks[0] += 1
        sock.shutdown(socket.SHUT_WR)

    def stalled() -> bool:  # no block went out for 2 s (a loaded machine is slow, not that slow)
        before = blocks[0]
        time.sleep(2.0)
        return blocks[0] == before

    with started(epoll_server) as (proc, port), connect(port, timeout=60) as sock:
        sender = threading.Thread(target=send, args=(sock,), daemon=True)
        sender.start()
        assert wait_until(stalled, timeout=60), blocks[0]
        before, ticks = blocks[0], cpu_ticks(proc.pid)
        time.sleep(2.0)
        assert blocks[0] == before  # the server reads nothing more from it
        # A busy loop would burn up to 200 ticks in those 2 s; a wait, none.
        assert cpu_ticks(proc.pid) - ticks < 30
        with connect(port) as other:  # the one thread still serves everyone else
            other.sendall(b"hello\n")
            assert recv_exactly(other, 6) == b"hello\n"
        stop.set()
        received = 0
        pending = b""
        while True:
            data = sock.recv(1 << 16)
            if not data:
                break
            pending += data
            while len(pending) >= 1 << 16:
                assert pending[: 1 << 16] == numbered_lines(received), received
                pending = pending[1 << 16 :]
                received += 1
        sender.join(TIMEOUT)
        assert not sender.is_alive()
        assert (received, pending) == (blocks[0], b"")


def test_epoll_server_serves_100_concurrent_clients(epoll_server: ServerSpec) -> None:
    """100 clients connected at once, lines interleaved among them: each gets
    exactly its own bytes back, in order."""
    rounds = 50
    with running(epoll_server) as port, ExitStack() as stack:
        socks = [stack.enter_context(connect(port)) for _ in range(100)]
        got: List[bytearray] = [bytearray() for _ in socks]
        for r in range(rounds):
            for i, sock in enumerate(socks):  # each sends before any reads
                sock.sendall(b"client %03d line %02d " % (i, r) + b"w" * (i + r) + b"\n")
            for i, sock in enumerate(socks):
                expect = b"client %03d line %02d " % (i, r) + b"w" * (i + r) + b"\n"
                got[i] += recv_exactly(sock, len(expect))
        for i, sock in enumerate(socks):
            sock.shutdown(socket.SHUT_WR)
            assert recv_until_eof(sock) == b""
            expect = b"".join(
                b"client %03d line %02d " % (i, r) + b"w" * (i + r) + b"\n" for r in range(rounds)
            )
            assert bytes(got[i]) == expect


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_epoll_server_stops_cleanly_on_signal(epoll_server: ServerSpec, signum: int) -> None:
    """With clients connected (one idle, one mid-line, one whose output waits),
    the signal ends the server with status 0, nothing on standard error, and
    every client sees its connection closed."""
    with started(epoll_server) as (proc, port), ExitStack() as stack:
        idle, partial, stuck = (stack.enter_context(connect(port)) for _ in range(3))
        partial.sendall(b"no newline yet")
        stuck.setblocking(False)
        try:  # fill the socket buffers: the server's output to it waits
            for block in range(1 << 12):
                stuck.send(numbered_lines(block))
        except BlockingIOError:
            pass
        idle.sendall(b"ping\n")
        assert recv_exactly(idle, 5) == b"ping\n"
        proc.send_signal(signum)
        assert proc.wait(TIMEOUT) == 0
        assert proc.stderr is not None and proc.stderr.read() == ""
        assert recv_until_eof(idle) == b""
        assert recv_until_eof(partial) == b""


def test_epoll_server_closes_on_a_reset_and_serves_on(epoll_server: ServerSpec) -> None:
    """A client that resets its connection mid-line is dropped, no one else is."""
    with started(epoll_server) as (proc, port):
        with connect(port) as first:
            first.sendall(b"half a li")
            reset(first)
        with connect(port) as second:
            second.sendall(b"still here\n")
            assert recv_exactly(second, 11) == b"still here\n"
        assert proc.poll() is None
