"""Helpers for the asyncio tests: which streams, which loop, and a reader on a real socket.

Every asyncio test runs over three stream implementations -- ``asyncio`` itself
(the control), ``csapp.aio`` on the compiled buffer (``c``) and on the
pure-Python one (``python``) -- and over the default loop and uvloop. A plugin
(``pytest_plugins`` in conftest): the fixtures ``streams`` and ``loop_factory``
reach every test without an import.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Awaitable, Callable, Optional, Tuple

import pytest

import csapp.aio
import csapp.aio.reader

STREAM_KINDS = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param("c", marks=pytest.mark.c_extension, id="c"),
    pytest.param("python", marks=pytest.mark.fallback, id="python"),
]

LOOP_KINDS = [pytest.param("asyncio", id="loop-asyncio"), pytest.param("uvloop", id="loop-uvloop")]

TIMEOUT = 20.0  # below the watchdog's 30 s, so the loop's own timeout reports first

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def new_loop_factory(kind: str) -> LoopFactory:
    """A factory of fresh event loops of ``kind`` (skips when uvloop is missing)."""
    if kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.new_event_loop  # type: ignore[no-any-return]
    return asyncio.new_event_loop


def run(
    loop_factory: LoopFactory, main: Callable[[], Awaitable[Any]], timeout: float = TIMEOUT
) -> Any:
    """Run ``main()`` on a fresh loop; fail (not hang) after ``timeout`` seconds."""
    loop = loop_factory()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(asyncio.wait_for(main(), timeout))
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def stream_api(kind: str) -> SimpleNamespace:
    """The module-like namespace of one stream implementation."""
    module: Any = asyncio if kind == "asyncio" else csapp.aio
    return SimpleNamespace(
        kind=kind,
        StreamReader=module.StreamReader,
        StreamReaderProtocol=module.StreamReaderProtocol,
        open_connection=module.open_connection,
        start_server=module.start_server,
        open_unix_connection=module.open_unix_connection,
        start_unix_server=module.start_unix_server,
    )


@pytest.fixture(params=STREAM_KINDS)
def streams(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """asyncio's streams (control) or csapp.aio over one buffer twin."""
    kind = request.param
    if kind != "asyncio":
        if kind not in csapp.aio.IMPLEMENTATIONS:
            pytest.skip("the compiled extension is not built here")
        monkeypatch.setattr(
            csapp.aio.reader, "StreamBuffer", csapp.aio.IMPLEMENTATIONS[kind].StreamBuffer
        )
    return stream_api(kind)


@pytest.fixture(params=LOOP_KINDS)
def loop_factory(request: pytest.FixtureRequest) -> LoopFactory:
    """A factory of fresh event loops: the default loop, or uvloop."""
    return new_loop_factory(request.param)


@dataclass
class SocketReader:
    """A reader fed by a real socket: ``peer`` is the other end (blocking)."""

    reader: Any
    writer: asyncio.StreamWriter
    peer: socket.socket
    protocol: Any
    sent: int = 0

    async def feed(self, data: bytes) -> None:
        """Send ``data`` from the peer; return once the reader's protocol has it all."""
        self.peer.sendall(data)
        self.sent += len(data)
        await self._until(lambda: self.protocol.received >= self.sent)

    async def feed_eof(self) -> None:
        """Half-close from the peer; return once the reader has seen EOF."""
        self.peer.shutdown(socket.SHUT_WR)
        await self._until(lambda: self.protocol.eof_seen)

    async def _until(self, condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError("the data never reached the reader")
            await asyncio.sleep(0.001)

    def close(self) -> None:
        self.writer.close()
        self.peer.close()


def counting_protocol(streams: SimpleNamespace) -> type:
    """A subclass of the implementation's protocol that counts what arrives."""
    base = streams.StreamReaderProtocol

    class Counting(base):  # type: ignore[misc, valid-type]
        received = 0
        eof_seen = False

        def data_received(self, data: bytes) -> None:
            self.received += len(data)
            super().data_received(data)

        def buffer_updated(self, nbytes: int) -> None:
            self.received += nbytes
            super().buffer_updated(nbytes)

        def eof_received(self) -> Optional[bool]:
            self.eof_seen = True
            return super().eof_received()  # type: ignore[no-any-return]

        def connection_lost(self, exc: Optional[BaseException]) -> None:
            self.eof_seen = True
            super().connection_lost(exc)

    return Counting


async def socket_reader(streams: SimpleNamespace, limit: int = 2**16) -> SocketReader:
    """A reader of ``streams`` on one end of a socket pair (call inside a running loop)."""
    loop = asyncio.get_running_loop()
    ours, peer = socket.socketpair()
    reader = streams.StreamReader(limit=limit, loop=loop)
    protocol = counting_protocol(streams)(reader, loop=loop)
    transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock=ours)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return SocketReader(reader, writer, peer, protocol)


def tcp_pair() -> Tuple[socket.socket, socket.socket]:
    """A connected TCP pair over 127.0.0.1."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return client, server
