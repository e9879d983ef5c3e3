"""Peer echo servers the benchmarks compare ours with, each as a user would
write it with the standard library or uvloop: line in, same line out.

Run one: ``python bench/harness/peers.py KIND PORT`` with KIND one of
``socketserver``, ``csapp-socketserver`` (the same handler on csapp's base
class), ``socketserver-ceiling`` (no ``rfile``: one ``recv`` per request, the
most any handler could gain), ``asyncio``, ``uvloop``, ``csapp-aio`` and ``csapp-aio-uvloop`` (the
asyncio handler with ``asyncio.start_server`` swapped for ``csapp.aio``'s).
It prints ``listening on port N`` and serves until SIGTERM/SIGINT. TCP_NODELAY
is left off on every accepted connection (asyncio turns it on by default; we
turn it off), so all servers compared, ours and the C one included, use the
kernel default.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import socketserver
import sys
from typing import Any


def _line_echo(base: Any) -> Any:
    """The handler a user writes: line in, same line out, on ``base``."""

    class LineEcho(base):  # type: ignore[misc]
        def handle(self) -> None:
            readline = self.rfile.readline
            sendall = self.request.sendall
            try:
                while True:
                    line = readline(8192)
                    if not line:
                        return
                    sendall(line)
            except (ConnectionError, OSError):
                return

    return LineEcho


_LineEcho = _line_echo(socketserver.StreamRequestHandler)


class _ThreadingServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 1024


def serve_socketserver(port: int, handler: Any = _LineEcho) -> None:
    with _ThreadingServer(("127.0.0.1", port), handler) as server:
        print(f"listening on port {server.server_address[1]}", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass


async def _asyncio_main(port: int, streams: Any = asyncio) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock: Any = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                writer.write(line)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await streams.start_server(handle, "127.0.0.1", port, backlog=1024)
    print(f"listening on port {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    async with server:
        await stop


def serve_asyncio(port: int) -> None:
    asyncio.run(_asyncio_main(port))


def serve_uvloop(port: int) -> None:
    import uvloop  # the [bench] extra

    uvloop.install()
    asyncio.run(_asyncio_main(port))


def serve_csapp_aio(port: int) -> None:
    import csapp.aio

    asyncio.run(_asyncio_main(port, csapp.aio))


def serve_csapp_aio_uvloop(port: int) -> None:
    import uvloop

    import csapp.aio

    uvloop.install()
    asyncio.run(_asyncio_main(port, csapp.aio))


class _BareRecvEcho(socketserver.BaseRequestHandler):
    """The bound on any handler swap: no ``rfile`` at all, one ``recv`` and one
    ``sendall`` per request. It frames nothing (a request/response load sends
    one line per ``recv``), so it is a ceiling to measure against, not a peer."""

    def handle(self) -> None:
        recv = self.request.recv
        sendall = self.request.sendall
        try:
            while True:
                data = recv(8192)
                if not data:
                    return
                sendall(data)
        except (ConnectionError, OSError):
            return


def serve_socketserver_ceiling(port: int) -> None:
    serve_socketserver(port, _BareRecvEcho)


def serve_csapp_socketserver(port: int) -> None:
    """The same server and handler, the handler's base class swapped for csapp's."""
    from csapp.socketserver import StreamRequestHandler

    serve_socketserver(port, _line_echo(StreamRequestHandler))


SERVERS = {
    "socketserver": serve_socketserver,
    "csapp-socketserver": serve_csapp_socketserver,
    "socketserver-ceiling": serve_socketserver_ceiling,
    "asyncio": serve_asyncio,
    "uvloop": serve_uvloop,
    "csapp-aio": serve_csapp_aio,
    "csapp-aio-uvloop": serve_csapp_aio_uvloop,
}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in SERVERS:
        print(
            f"usage: python bench/harness/peers.py {{{'|'.join(SERVERS)}}} PORT",
            file=sys.stderr,
        )
        return 2
    SERVERS[argv[0]](int(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
