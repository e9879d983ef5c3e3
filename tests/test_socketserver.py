"""csapp.socketserver.StreamRequestHandler: the standard library's handler with
only the base class changed, over both twins; the standard library's own
handler is the control of every behavioural case."""

from __future__ import annotations

import os
import socket
import socketserver
import threading
from functools import partial
from types import ModuleType
from typing import Any, Callable, Iterator, List, Type

import pytest

import csapp.socketserver as csapp_socketserver
from csapp import socketfile
from support.netutil import HANG_GUARD

TIMEOUT = 10.0


@pytest.fixture
def twin(rio: ModuleType, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """csapp.socketserver over the implementation under test."""
    monkeypatch.setattr(
        csapp_socketserver, "makefile", partial(socketfile.makefile, implementation=rio)
    )
    return rio


BASES = {
    "stdlib": socketserver.StreamRequestHandler,
    "csapp": csapp_socketserver.StreamRequestHandler,
}


@pytest.fixture(params=list(BASES))
def base(request: pytest.FixtureRequest, twin: ModuleType) -> Type[Any]:
    return BASES[request.param]


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    block_on_close = True


@pytest.fixture
def serve() -> Iterator[Callable[[Type[Any]], Server]]:
    """Start a ThreadingTCPServer on 127.0.0.1 with a handler class; shut down after."""
    started: List[Server] = []

    def start(handler: Type[Any]) -> Server:
        server = Server(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def talk(server: Server, data: bytes, half_close: bool = True) -> bytes:
    """Send ``data``, half-close, and return everything until the server closes."""
    with socket.create_connection(server.server_address[:2], timeout=TIMEOUT) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)


def test_the_documentation_example_switched_by_its_base_class(
    base: Type[Any], serve: Callable[[Type[Any]], Server]
) -> None:
    """The socketserver documentation's MyTCPHandler, its base class swapped."""

    class MyTCPHandler(base):  # type: ignore[misc, valid-type]
        def handle(self) -> None:
            self.data = self.rfile.readline().strip()
            self.wfile.write(self.data.upper())

    server = serve(MyTCPHandler)
    assert talk(server, b"hello world with socketserver\n") == b"HELLO WORLD WITH SOCKETSERVER"


SCRIPT_INPUT = b"first line\nsecond\n" + b"x" * 20_000 + b"\nlast without newline"


class ScriptedReads:
    """A handler body that reads in every way a handler does, and reports it."""

    def handle(self) -> None:
        rfile = self.rfile  # type: ignore[attr-defined]
        results = [
            rfile.readline(),
            rfile.read(3),
            rfile.readline(2),
            rfile.readline(),
            len(rfile.readline(100)),
            len(rfile.readline()),
            list(rfile),
            rfile.read(),
            rfile.readline(),
        ]
        self.wfile.write(repr(results).encode())  # type: ignore[attr-defined]


def test_reads_match_the_standard_librarys_handler(
    twin: ModuleType, serve: Callable[[Type[Any]], Server]
) -> None:
    replies = {}
    for name, base in BASES.items():
        handler = type(f"Scripted{name}", (ScriptedReads, base), {})
        replies[name] = talk(serve(handler), SCRIPT_INPUT)
    assert replies["csapp"] == replies["stdlib"]
    assert b"last without newline" in replies["csapp"]


@pytest.mark.parametrize("wbufsize", [0, 8192])
def test_every_byte_of_a_large_write_arrives(
    base: Type[Any], serve: Callable[[Type[Any]], Server], wbufsize: int
) -> None:
    payload = bytes(range(256)) * (32 * 1024)  # 8 MiB, one write, no explicit flush

    class Bulk(base):  # type: ignore[misc, valid-type]
        def handle(self) -> None:
            self.rfile.readline()
            self.wfile.write(payload)

    Bulk.wbufsize = wbufsize
    assert talk(serve(Bulk), b"go\n") == payload


def test_the_reader_is_a_rio_holding_the_socket(
    twin: ModuleType, serve: Callable[[Type[Any]], Server]
) -> None:
    seen: List[Any] = []

    class Look(csapp_socketserver.StreamRequestHandler):
        def handle(self) -> None:
            refs = self.connection._io_refs
            seen.extend([self.rfile, self.wfile, self.wfile.writable(), refs])

    talk(serve(Look), b"")
    rfile, wfile, writable, refs = seen
    assert isinstance(rfile, twin.Rio)
    assert rfile.mode == "rb"
    assert writable
    assert refs == 1  # the reader holds the socket, as makefile's does
    assert wfile.closed and rfile.closed  # finish() closed both


def test_rbufsize_zero_reads_no_further_than_asked(
    base: Type[Any], serve: Callable[[Type[Any]], Server]
) -> None:
    """Unbuffered as in the standard library: after one line the rest is
    still in the socket, so the handler may pass the descriptor on."""

    class HandOff(base):  # type: ignore[misc, valid-type]
        rbufsize = 0

        def handle(self) -> None:
            line = self.rfile.readline()
            rest = os.read(self.connection.fileno(), 100)
            self.wfile.write(line.upper() + rest)

    assert talk(serve(HandOff), b"one\ntwo\n") == b"ONE\ntwo\n"


def test_disable_nagle_algorithm_sets_tcp_nodelay(
    base: Type[Any], serve: Callable[[Type[Any]], Server]
) -> None:
    class NoDelay(base):  # type: ignore[misc, valid-type]
        disable_nagle_algorithm = True

        def handle(self) -> None:
            on = self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            self.wfile.write(b"%d" % bool(on))

    assert talk(serve(NoDelay), b"") == b"1"


def test_a_timeout_raises_timeout_error_and_keeps_the_partial_line(
    twin: ModuleType, serve: Callable[[Type[Any]], Server]
) -> None:
    """TimeoutError, as the standard library's handler raises; unlike its
    reader (unusable after a timeout), the partial line stays for the next call.

    The client sends the rest of the line only once it has the "timed out"
    reply, so the first timeout must fire; the handler then waits through
    as many more as the round trip takes on a loaded machine."""

    class Slow(csapp_socketserver.StreamRequestHandler):
        timeout = 0.2

        def handle(self) -> None:
            try:
                self.rfile.readline()
            except TimeoutError:
                self.wfile.write(b"timed out; ")
            for _ in range(int(HANG_GUARD / self.timeout)):
                try:
                    self.wfile.write(self.rfile.readline())
                    return
                except TimeoutError:
                    continue

    server = serve(Slow)
    with socket.create_connection(server.server_address[:2], timeout=HANG_GUARD) as sock:
        sock.sendall(b"part")
        assert sock.recv(100) == b"timed out; "
        sock.sendall(b"ial\n")
        reply = b""
        while chunk := sock.recv(100):
            reply += chunk
    assert reply == b"partial\n"
