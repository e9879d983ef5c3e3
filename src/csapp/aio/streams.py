"""``open_connection``, ``start_server`` and the Unix-socket pair: asyncio's stream
functions, with the same signatures and results, over ``csapp.aio``'s reader.

The writer is ``asyncio.StreamWriter`` itself; the server is the loop's
``asyncio.Server``.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Optional, Tuple

from .protocol import ClientConnected, StreamReaderProtocol
from .reader import DEFAULT_LIMIT, StreamReader

__all__ = ["open_connection", "open_unix_connection", "start_server", "start_unix_server"]

Streams = Tuple[StreamReader, asyncio.StreamWriter]


def _writer(
    transport: asyncio.BaseTransport,
    protocol: StreamReaderProtocol,
    reader: StreamReader,
    loop: asyncio.AbstractEventLoop,
) -> asyncio.StreamWriter:
    return asyncio.StreamWriter(transport, protocol, reader, loop)  # type: ignore[arg-type]


async def open_connection(
    host: Optional[str] = None,
    port: Optional[int] = None,
    *,
    limit: int = DEFAULT_LIMIT,
    **kwds: Any,
) -> Streams:
    """``asyncio.open_connection``: a (reader, writer) pair; ``kwds`` go to create_connection."""
    loop = asyncio.get_running_loop()
    reader = StreamReader(limit=limit, loop=loop)
    protocol = StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.create_connection(
        lambda: protocol,
        host,  # type: ignore[arg-type]  # None with sock=, as in asyncio
        port,  # type: ignore[arg-type]
        **kwds,
    )
    return reader, _writer(transport, protocol, reader, loop)


async def start_server(
    client_connected_cb: ClientConnected,
    host: Any = None,
    port: Optional[int] = None,
    *,
    limit: int = DEFAULT_LIMIT,
    **kwds: Any,
) -> asyncio.Server:
    """``asyncio.start_server``: ``client_connected_cb(reader, writer)`` per client
    (a coroutine runs as a task); ``kwds`` go to create_server."""
    loop = asyncio.get_running_loop()

    def factory() -> StreamReaderProtocol:
        reader = StreamReader(limit=limit, loop=loop)
        return StreamReaderProtocol(reader, client_connected_cb, loop=loop)

    return await loop.create_server(factory, host, port, **kwds)


if hasattr(socket, "AF_UNIX"):

    async def open_unix_connection(
        path: Optional[str] = None, *, limit: int = DEFAULT_LIMIT, **kwds: Any
    ) -> Streams:
        """``asyncio.open_unix_connection`` over csapp's reader."""
        loop = asyncio.get_running_loop()
        reader = StreamReader(limit=limit, loop=loop)
        protocol = StreamReaderProtocol(reader, loop=loop)
        transport, _ = await loop.create_unix_connection(lambda: protocol, path, **kwds)
        return reader, _writer(transport, protocol, reader, loop)

    async def start_unix_server(
        client_connected_cb: ClientConnected,
        path: Optional[str] = None,
        *,
        limit: int = DEFAULT_LIMIT,
        **kwds: Any,
    ) -> asyncio.Server:
        """``asyncio.start_unix_server`` over csapp's reader."""
        loop = asyncio.get_running_loop()

        def factory() -> StreamReaderProtocol:
            reader = StreamReader(limit=limit, loop=loop)
            return StreamReaderProtocol(reader, client_connected_cb, loop=loop)

        return await loop.create_unix_server(factory, path, **kwds)
