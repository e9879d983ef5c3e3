"""CSAPP's ``echo`` for asyncio: every line a client sends goes back, until EOF."""

from __future__ import annotations

import asyncio
from typing import Any

from .protocol import StreamReaderProtocol
from .reader import StreamReader

__all__ = ["echo"]

CHUNK = 64 * 1024


async def echo(reader: Any, writer: asyncio.StreamWriter) -> int:
    """Echo ``reader`` back through ``writer`` until EOF, then close ``writer``.

    Returns the bytes echoed; a usable ``client_connected_cb`` of
    ``start_server`` as it is. On csapp.aio streams the lines go back from the
    protocol's receive callback (no task switch per message, the framing of
    ``csapp.echo``); on any other streams, through ``read``/``write``/``drain``.
    A connection the peer reset ends the echo as EOF does (CSAPP's echo stops
    at the first failed read); cancelling it closes the writer too.
    """
    protocol = getattr(writer, "_protocol", None)
    try:
        if (
            isinstance(reader, StreamReader)
            and isinstance(protocol, StreamReaderProtocol)
            and protocol._stream_reader is reader
        ):
            done = protocol._start_echo()
            try:
                return await asyncio.shield(done)
            except asyncio.CancelledError:
                protocol._stop_echo()
                raise
            except ConnectionError:
                return protocol._echoed
        total = 0
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    return total
                writer.write(data)
                total += len(data)
                await writer.drain()
        except ConnectionError:
            return total
    finally:
        writer.close()
