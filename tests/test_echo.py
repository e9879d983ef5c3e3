"""csapp.echo over a socketpair, under both RIO implementations.

The echo module's ``Rio`` and ``rio_echo`` are swapped for the
implementation under test (the ``rio`` fixture of conftest.py); write(2)
calls are counted, which shows that buffered lines go back in one write.
"""

from __future__ import annotations

import importlib
import itertools
import socket
import struct
import threading
import time
from types import ModuleType
from typing import List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import csapp
from csapp._shared import MSG_CLOSED

echo_module = importlib.import_module("csapp.echo_service")
TIMEOUT = 10.0


def _write_calls() -> int:
    """write(2) calls this process made so far (``syscw``; ``send`` is not one)."""
    with open("/proc/self/io") as f:
        for line in f:
            if line.startswith("syscw:"):
                return int(line.split()[1])
    raise AssertionError("no syscw in /proc/self/io")


class CountingWrites:
    """Counts the write(2) calls echo makes (the tests send with ``send``)."""

    def __init__(self) -> None:
        self.start = _write_calls()

    @property
    def calls(self) -> int:
        return _write_calls() - self.start


@pytest.fixture
def writes(rio: ModuleType, monkeypatch: pytest.MonkeyPatch) -> CountingWrites:
    """echo over the implementation under test: the loop in C for "c"."""
    monkeypatch.setattr(echo_module, "Rio", rio.Rio)
    monkeypatch.setattr(echo_module, "rio_echo", rio._rio_echo)
    return CountingWrites()


def run_echo(
    pieces: List[bytes], pause: float = 0.0, send_before_echo: bool = False
) -> Tuple[bytes, int]:
    """Echo ``pieces`` (sent one ``send`` each) through ``echo``; (echoed, its result)."""
    ours, theirs = socket.socketpair()
    ours.settimeout(TIMEOUT)
    result: List[int] = []

    def serve() -> None:
        result.append(csapp.echo(theirs.fileno()))
        theirs.shutdown(socket.SHUT_WR)  # as the server's close would

    def send() -> None:
        for piece in pieces:
            ours.sendall(piece)
            if pause:
                time.sleep(pause)
        ours.shutdown(socket.SHUT_WR)

    server = threading.Thread(target=serve, daemon=True)
    sender = threading.Thread(target=send, daemon=True)
    with ours, theirs:
        if send_before_echo:
            send()  # everything is buffered in the socket before echo reads
        else:
            sender.start()
        server.start()
        received = []
        while data := ours.recv(1 << 16):
            received.append(data)
        if not send_before_echo:
            sender.join(TIMEOUT)
        server.join(TIMEOUT)
    assert result, "echo did not return"
    return b"".join(received), result[0]


SAMPLES = {
    "empty": b"",
    "one line": b"hello\n",
    "nul bytes": b"\0\0\0\n\0a\0\n",
    "every byte value": bytes(range(256)) * 40,
    "last line without newline": b"one\ntwo\nthree",
    "lines longer than MAXLINE": b"a" * (csapp.MAXLINE - 1)
    + b"\n"
    + b"b" * csapp.MAXLINE
    + b"\n"
    + b"c" * (5 * csapp.MAXLINE + 3),
    "only newlines": b"\n" * 10_000,
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_echo_is_byte_exact(writes: CountingWrites, name: str) -> None:
    data = SAMPLES[name]
    echoed, count = run_echo([data])
    assert echoed == data
    assert count == len(data)


def test_echo_handles_lines_split_across_sends(writes: CountingWrites) -> None:
    pieces = [b"par", b"tial\nli", b"ne two\n", b"x" * 10_000, b"\nend"]
    echoed, count = run_echo(pieces, pause=0.01)
    assert echoed == b"".join(pieces)
    assert count == len(echoed)


def test_buffered_lines_go_back_in_one_write(writes: CountingWrites) -> None:
    lines = b"".join(b"line %d\n" % i for i in range(500))  # ~4.4 KB, one buffer
    echoed, _count = run_echo([lines], send_before_echo=True)
    assert echoed == lines
    assert writes.calls == 1  # one write per line would be 500


def test_writes_stay_few_for_many_buffers_of_lines(writes: CountingWrites) -> None:
    lines = b"".join(b"%06d short line\n" % i for i in range(20_000))  # 340 KB
    echoed, _count = run_echo([lines], send_before_echo=False)
    assert echoed == lines
    # About one write per 8 KiB read; one per line would be 20 000.
    assert writes.calls <= 3 * len(lines) // csapp.RIO_BUFSIZE + 5


def test_partial_line_survives_receive_timeouts(writes: CountingWrites) -> None:
    """echo_session resumes after SO_RCVTIMEO without losing the partial line."""
    ours, theirs = socket.socketpair()
    timeouts = []
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 20_000))

    def keep_waiting(echoed: int) -> bool:
        timeouts.append(echoed)
        return len(timeouts) < 500

    result: List[int] = []

    def serve() -> None:
        result.append(echo_module.echo_session(theirs.fileno(), keep_waiting=keep_waiting))
        theirs.shutdown(socket.SHUT_WR)

    server = threading.Thread(target=serve, daemon=True)
    with ours, theirs:
        server.start()
        ours.sendall(b"abc")
        time.sleep(0.15)
        ours.sendall(b"def\nlast")
        ours.shutdown(socket.SHUT_WR)
        ours.settimeout(TIMEOUT)
        echoed = b""
        while data := ours.recv(100):
            echoed += data
        server.join(TIMEOUT)
    assert echoed == b"abcdef\nlast"
    assert result == [len(echoed)]
    assert timeouts, "the receive timeout never fired"


def test_echo_resumes_a_write_after_send_timeouts(writes: CountingWrites) -> None:
    """A reader that pauses: writes time out part-way (SO_SNDTIMEO) and resume exactly."""
    ours, theirs = socket.socketpair()
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 0, 20_000))
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # 8 KiB writes: partial
    data = b"".join(b"%07d %s\n" % (i, b"y" * 100) for i in range(10_000))  # 1.1 MB
    timeouts = []

    def keep_waiting(echoed: int) -> bool:
        timeouts.append(echoed)
        return len(timeouts) < 2000

    result: List[int] = []

    def serve() -> None:
        result.append(echo_module.echo_session(theirs.fileno(), keep_waiting=keep_waiting))
        theirs.shutdown(socket.SHUT_WR)

    def send() -> None:
        ours.sendall(data)
        ours.shutdown(socket.SHUT_WR)

    server = threading.Thread(target=serve, daemon=True)
    sender = threading.Thread(target=send, daemon=True)
    with ours, theirs:
        server.start()
        sender.start()
        time.sleep(0.2)  # let the echo fill our receive buffer: its writes time out
        ours.settimeout(TIMEOUT)
        received = []
        while chunk := ours.recv(1 << 16):
            received.append(chunk)
        sender.join(TIMEOUT)
        server.join(TIMEOUT)
    assert b"".join(received) == data
    assert result == [len(data)]
    assert timeouts, "no write ever timed out"


def test_echo_raises_on_a_reset(writes: CountingWrites) -> None:
    with socket.socket(fileno=csapp.open_listenfd(0, "127.0.0.1")) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as client:
            conn, _address = listener.accept()
            with conn:
                client.sendall(b"x\n" * 1000)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()  # a RST, not a FIN
                with pytest.raises((ConnectionResetError, BrokenPipeError)):
                    csapp.echo(conn.fileno())


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.binary(max_size=30_000),
    cuts=st.lists(st.integers(0, 30_000), max_size=6),
    newline_every=st.integers(1, 200),
)
def test_echo_is_byte_exact_for_any_bytes(
    writes: CountingWrites, data: bytes, cuts: List[int], newline_every: int
) -> None:
    data = b"\n".join(data[i : i + newline_every] for i in range(0, len(data), newline_every))
    points = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    pieces = [data[a:b] for a, b in itertools.pairwise(points)] or [b""]
    echoed, count = run_echo(pieces)
    assert echoed == data
    assert count == len(data)


def test_echo_survives_a_signal_storm(writes: CountingWrites) -> None:
    """echo in the main thread under SIGALRM every millisecond: every byte once."""
    import signal

    data = b"".join(b"%08d %s\n" % (i, b"z" * (i % 300)) for i in range(40_000))  # ~6 MB
    ours, theirs = socket.socketpair()
    received: List[bytes] = []
    fired = [0]

    def send() -> None:
        ours.sendall(data)
        ours.shutdown(socket.SHUT_WR)

    def collect() -> None:
        while chunk := ours.recv(1 << 16):
            received.append(chunk)

    def tick(signum: int, frame: object) -> None:
        fired[0] += 1

    old = signal.signal(signal.SIGALRM, tick)
    threads = [
        threading.Thread(target=send, daemon=True),
        threading.Thread(target=collect, daemon=True),
    ]
    with ours, theirs:
        ours.settimeout(TIMEOUT)
        signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
        try:
            for thread in threads:
                thread.start()
            count = csapp.echo(theirs.fileno())
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)
        theirs.shutdown(socket.SHUT_WR)
        for thread in threads:
            thread.join(TIMEOUT)
    assert b"".join(received) == data
    assert count == len(data)
    assert fired[0] > 0


@pytest.mark.c_extension
def test_the_compiled_echo_loop_checks_its_arguments() -> None:
    rio_c = pytest.importorskip("csapp._rio_c")
    with pytest.raises(TypeError):
        rio_c._rio_echo(object(), 1)
    a, b = socket.socketpair()
    with a, b:
        rp = rio_c.Rio(a.fileno())
        with pytest.raises(OSError):
            rio_c._rio_echo(rp, -1)
        rp.close()
        with pytest.raises(ValueError, match=MSG_CLOSED):
            rio_c._rio_echo(rp, a.fileno())
