"""The one-line swap for ``socketserver`` apps: ``StreamRequestHandler`` on a ``Rio``.

Change only the base class of an existing handler::

    class Handler(csapp.socketserver.StreamRequestHandler):  # was socketserver.…
        def handle(self) -> None:
            for line in self.rfile:
                self.wfile.write(line)

``rfile`` is ``csapp.makefile`` on the connection: a ``Rio`` (the buffered
reads of CSAPP's ``rio_readlineb``, with ``io.BufferedReader``'s read API)
bound to the socket object, so TLS servers work and the socket's lifetime is
makefile's. ``rbufsize``, ``wbufsize``, ``timeout`` and
``disable_nagle_algorithm`` mean what they mean in the standard library: a
``timeout`` that expires raises ``TimeoutError`` (``socket.timeout``), and a
partial line stays in ``rfile`` for the next call. A request that is not a
socket is handled as the standard handler does (``request.makefile()``).
``RioWriter`` (a writer over a bare descriptor with ``rio_writen``) is kept
for code that used it.
"""

from __future__ import annotations

import io
import socket
import socketserver
from typing import Any

from ._rio import rio_writen
from .socketfile import makefile

__all__ = ["RioWriter", "StreamRequestHandler"]


class RioWriter(io.BufferedIOBase):
    """An unbuffered binary writer over a descriptor: ``write`` sends every
    byte (CSAPP ``rio_writen``). Closing it leaves the descriptor open."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._checkClosed()
        return rio_writen(self._fd, data)

    def fileno(self) -> int:
        self._checkClosed()
        return self._fd


class StreamRequestHandler(socketserver.StreamRequestHandler):
    """``socketserver.StreamRequestHandler`` whose ``rfile`` is
    ``csapp.makefile(self.connection, "rb", self.rbufsize)``: a ``Rio`` that
    holds the socket, honours its timeout and reads TLS through the
    ``SSLSocket``. A request that is not a socket gets the standard
    ``request.makefile()``; ``wfile`` is the standard one."""

    def setup(self) -> None:
        self.connection = self.request
        if self.timeout is not None:
            self.connection.settimeout(self.timeout)
        if self.disable_nagle_algorithm:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        if isinstance(self.connection, socket.socket):
            self.rfile = makefile(self.connection, "rb", self.rbufsize)
        else:
            self.rfile = self.connection.makefile("rb", self.rbufsize)
        if self.wbufsize == 0:
            self.wfile = socketserver._SocketWriter(self.connection)  # type: ignore[attr-defined]
        else:
            self.wfile = self.connection.makefile("wb", self.wbufsize)
