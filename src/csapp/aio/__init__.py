"""csapp.aio: asyncio streams on csapp's receive buffer -- a one-line swap.

``from csapp import aio as asyncio_streams`` (or ``from csapp.aio import
open_connection, start_server``) gives the functions of ``asyncio``'s streams
with their signatures and results; the reader is ``asyncio.StreamReader``'s
API (plus CSAPP's ``readlineb``) over a buffer the event loop receives into
directly, searched in C (``csapp.aio._buffer_c``) or by its pure-Python twin;
``IMPLEMENTATION`` says which, ``IMPLEMENTATIONS`` maps the names to the twin
modules (as ``csapp.IMPLEMENTATIONS`` does for RIO). ``echo(reader, writer)``
is CSAPP's echo.
"""

from __future__ import annotations

import warnings
from asyncio import IncompleteReadError, LimitOverrunError
from typing import Any, Dict

from ._buffer import IMPLEMENTATION, IMPLEMENTATIONS
from .echo_service import echo
from .protocol import StreamReaderProtocol
from .reader import DEFAULT_LIMIT, StreamReader
from .streams import open_connection, open_unix_connection, start_server, start_unix_server

__all__ = [
    "DEFAULT_LIMIT",
    "IMPLEMENTATION",
    "IMPLEMENTATIONS",
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


def __getattr__(name: str) -> Any:
    """Deprecated names: ``BUFFERS`` (names to buffer classes) is
    ``{name: module.StreamBuffer for name, module in IMPLEMENTATIONS.items()}``."""
    if name == "BUFFERS":
        warnings.warn(
            "csapp.aio.BUFFERS is deprecated: use csapp.aio.IMPLEMENTATIONS[name].StreamBuffer",
            DeprecationWarning,
            stacklevel=2,
        )
        buffers: Dict[str, type] = {
            key: module.StreamBuffer for key, module in IMPLEMENTATIONS.items()
        }
        return buffers
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
