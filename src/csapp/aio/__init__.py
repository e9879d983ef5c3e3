"""csapp.aio: asyncio streams on csapp's receive buffer -- a one-line swap.

``from csapp import aio as asyncio_streams`` (or ``from csapp.aio import
open_connection, start_server``) gives the functions of ``asyncio``'s streams
with their signatures and results; the reader is ``asyncio.StreamReader``'s
API (plus CSAPP's ``readlineb``) over a buffer the event loop receives into
directly, searched in C (``csapp._aiobuf_c``) or by its pure-Python twin;
``IMPLEMENTATION`` says which. ``echo(reader, writer)`` is CSAPP's echo.
"""

from __future__ import annotations

from asyncio import IncompleteReadError, LimitOverrunError

from .buffers import BUFFERS, IMPLEMENTATION
from .echo import echo
from .protocol import StreamReaderProtocol
from .reader import DEFAULT_LIMIT, StreamReader
from .streams import open_connection, open_unix_connection, start_server, start_unix_server

__all__ = [
    "BUFFERS",
    "DEFAULT_LIMIT",
    "IMPLEMENTATION",
    "IncompleteReadError",
    "LimitOverrunError",
    "StreamReader",
    "StreamReaderProtocol",
    "echo",
    "open_connection",
    "open_unix_connection",
    "start_server",
    "start_unix_server",
]
