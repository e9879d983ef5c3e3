"""A TCP proxy that damages what it forwards, for the fault tests (issue 13).

The faults are toxiproxy's "toxics", written here in asyncio: the proxy runs
its own event loop in a daemon thread, listens on 127.0.0.1, and forwards each
connection to a target, applying a ``Faults`` to each direction:

- ``slices=1``: one byte per segment (TCP_NODELAY, one send per byte);
  ``slices=n``: random pieces of 1..n bytes (split points anywhere);
- ``latency`` with ``jitter``: every piece held back, order kept;
- ``rate``: a bandwidth cap in bytes per second;
- ``reset_after=k``: after k bytes, both sides get a reset (SO_LINGER 0);
- ``stall_after=k``: after k bytes, nothing more moves and nothing closes;
- ``close_after=k``: after k bytes, a half-close towards the destination
  (toxiproxy's limit_data); what the source sends later is dropped.

An end of input from either side is passed on as a half-close (``SHUT_WR``),
so a client's half-close reaches the server and the server's reply still
flows back. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Any, Coroutine, Iterator, List, Optional, Set, Tuple

RECV_SIZE = 1 << 16
SETUP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Faults:
    """What one direction of the proxy does to the bytes it forwards."""

    slices: int = 0
    latency: float = 0.0
    jitter: float = 0.0
    rate: float = 0.0
    reset_after: Optional[int] = None
    stall_after: Optional[int] = None
    close_after: Optional[int] = None
    seed: int = 1

    def limit(self) -> Optional[int]:
        """Bytes forwarded before the one ending fault (reset, stall, close) strikes."""
        ends = [k for k in (self.reset_after, self.stall_after, self.close_after) if k is not None]
        return min(ends) if ends else None


NO_FAULTS = Faults()


def pieces(data: bytes, slices: int, rng: random.Random) -> Iterator[bytes]:
    """``data`` cut as ``slices`` says: whole (0), by bytes (1), or at random points."""
    if slices <= 0:
        yield data
        return
    at = 0
    while at < len(data):
        size = 1 if slices == 1 else rng.randint(1, slices)
        yield data[at : at + size]
        at += size


def reset_socket(sock: socket.socket) -> None:
    """Close ``sock`` so that its peer gets a reset, not an end of file."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Link:
    """One proxied connection: the client's socket, the target's, two pumps."""

    def __init__(self, client: socket.socket, server: socket.socket, number: int) -> None:
        self.client = client
        self.server = server
        self.number = number
        self.tasks: List[asyncio.Task[None]] = []
        self.ended = False

    def abort(self) -> None:
        """Reset both sides now (the reset fault, or a reset passed on)."""
        if self.ended:
            return
        self.ended = True
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        loop = asyncio.get_running_loop()
        for sock in (self.client, self.server):
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(sock)
                loop.remove_writer(sock)
            reset_socket(sock)

    def close(self) -> None:
        if not self.ended:
            self.ended = True
            self.client.close()
            self.server.close()


class FaultProxy:
    """``with FaultProxy(port, downstream=Faults(slices=1)) as proxy:`` connect to
    ``proxy.port`` instead of ``port``. ``upstream`` damages what clients send,
    ``downstream`` what the target sends back. Counters: ``accepted``, ``pieces``
    (sends made), ``resets`` and ``stalls`` struck, ``passed_on`` (resets or errors
    of one side passed on to the other as a reset), ``open_links``."""

    def __init__(
        self,
        target_port: int,
        *,
        upstream: Faults = NO_FAULTS,
        downstream: Faults = NO_FAULTS,
        target_host: str = "127.0.0.1",
    ) -> None:
        self.target = (target_host, target_port)
        self.upstream = upstream
        self.downstream = downstream
        self.accepted = 0
        self.pieces = 0
        self.resets = 0
        self.passed_on = 0
        self.stalls = 0
        self._links: Set[_Link] = set()
        self._openers: Set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._accepting: Optional[asyncio.Future[None]] = None

    @property
    def open_links(self) -> int:
        return sum(1 for link in list(self._links) if not link.ended)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(SETUP_TIMEOUT)
        if not self._thread.is_alive():
            self._loop.close()

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(SETUP_TIMEOUT)

    async def _start(self) -> None:
        self._accepting = asyncio.ensure_future(self._accept_loop())

    async def _stop(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
        self._listener.close()
        tasks = [task for link in self._links for task in link.tasks] + list(self._openers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for link in self._links:
            link.close()

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            client, _ = await loop.sock_accept(self._listener)
            self.accepted += 1
            opener = loop.create_task(self._open_link(client, self.accepted))
            self._openers.add(opener)
            opener.add_done_callback(self._openers.discard)

    async def _open_link(self, client: socket.socket, number: int) -> None:
        loop = asyncio.get_running_loop()
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        for sock in (client, server):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await loop.sock_connect(server, self.target)
        except OSError:
            server.close()
            reset_socket(client)
            return
        link = _Link(client, server, number)
        self._links.add(link)
        link.tasks = [
            loop.create_task(self._pump(link, client, server, self.upstream)),
            loop.create_task(self._pump(link, server, client, self.downstream)),
        ]
        await asyncio.gather(*link.tasks, return_exceptions=True)
        link.close()

    async def _pump(
        self, link: _Link, source: socket.socket, dest: socket.socket, faults: Faults
    ) -> None:
        """Forward source -> dest with ``faults`` until an end of file or a fault."""
        loop = asyncio.get_running_loop()
        rng = random.Random(faults.seed * 1_000_003 + link.number)
        limit = faults.limit()
        forwarded = 0
        free_at = loop.time()  # when the bandwidth cap lets the next piece go
        try:
            while True:
                data = await loop.sock_recv(source, RECV_SIZE)
                if not data:
                    with contextlib.suppress(OSError):
                        dest.shutdown(socket.SHUT_WR)
                    return
                if limit is not None:
                    data = data[: limit - forwarded]
                for piece in pieces(data, faults.slices, rng):
                    if faults.latency or faults.jitter:
                        hold = faults.latency + rng.uniform(-faults.jitter, faults.jitter)
                        await asyncio.sleep(max(hold, 0.0))
                    if faults.rate:
                        free_at = max(free_at, loop.time()) + len(piece) / faults.rate
                        await asyncio.sleep(max(free_at - loop.time(), 0.0))
                    await loop.sock_sendall(dest, piece)
                    self.pieces += 1
                    forwarded += len(piece)
                if limit is not None and forwarded >= limit:
                    await self._strike(link, source, dest, faults)
                    return
        except (ConnectionError, OSError):
            self.passed_on += 1
            link.abort()  # a reset on one side is passed on to the other

    async def _strike(
        self, link: _Link, source: socket.socket, dest: socket.socket, faults: Faults
    ) -> None:
        """The ending fault, once ``faults.limit()`` bytes went through."""
        loop = asyncio.get_running_loop()
        if faults.limit() == faults.reset_after:
            self.resets += 1
            link.abort()
        elif faults.limit() == faults.stall_after:
            self.stalls += 1
            await asyncio.Event().wait()  # until the proxy closes
        else:
            with contextlib.suppress(OSError):
                dest.shutdown(socket.SHUT_WR)
            while await loop.sock_recv(source, RECV_SIZE):
                pass  # dropped, as toxiproxy's limit_data does


@contextlib.contextmanager
def served_bytes(
    data: bytes, *, after_request: bool = False
) -> Iterator[Tuple[int, List[BaseException]]]:
    """A one-connection server on 127.0.0.1 that sends ``data`` and half-closes.

    With ``after_request`` it first waits for one byte from the client, so
    that no fault can strike before the client has seen its connect complete
    (an event loop that polls for the connect would else report the reset
    as a failed connect). Yields ``(port, errors)``; errors of the sending
    thread (other than the reset or stall a fault test provokes) land in
    ``errors``.
    """
    errors: List[BaseException] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(SETUP_TIMEOUT)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(SETUP_TIMEOUT)
                if after_request and not conn.recv(1):
                    return
                conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(RECV_SIZE):
                    pass
        except (TimeoutError, ConnectionError):
            pass  # the fault under test (a reset, a stall)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], errors
    finally:
        listener.close()
        thread.join(SETUP_TIMEOUT + 5)
