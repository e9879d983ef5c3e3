"""The one-line swap for ``socketserver`` apps: ``StreamRequestHandler`` on a ``Rio``.

Change only the base class of an existing handler::

    class Handler(csapp.socketserver.StreamRequestHandler):  # was socketserver.…
        def handle(self) -> None:
            for line in self.rfile:
                self.wfile.write(line)

``rfile`` is a ``Rio`` on the connection (the buffered reads of CSAPP's
``rio_readlineb``, with ``io.BufferedReader``'s read API); ``wfile`` writes
with ``rio_writen``: every byte, resumed after short writes and signals.
``rbufsize``, ``wbufsize``, ``timeout`` and ``disable_nagle_algorithm`` mean
what they mean in the standard library, with one difference: a ``timeout``
that expires raises ``BlockingIOError`` (EAGAIN, from ``SO_RCVTIMEO`` /
``SO_SNDTIMEO``), not ``TimeoutError``; a partial line stays in ``rfile``.
"""

from __future__ import annotations

import io
import os
import socket
import socketserver
from typing import Any

from ._rio import RIO_BUFSIZE, Rio, rio_writen
from .sockets import set_kernel_timeouts

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
    """``socketserver.StreamRequestHandler`` whose ``rfile`` is a ``Rio`` and
    whose ``wfile`` (with ``wbufsize == 0``, the default) is a ``RioWriter``."""

    def setup(self) -> None:
        self.connection = self.request
        fd = self.connection.fileno()
        if self.timeout is not None:
            # settimeout() would make the descriptor non-blocking under the
            # Rio; the kernel's own timeouts keep it blocking.
            if self.timeout <= 0:
                os.set_blocking(fd, False)
            else:
                set_kernel_timeouts(fd, self.timeout)
        if self.disable_nagle_algorithm:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        bufsize = RIO_BUFSIZE if self.rbufsize < 0 else max(self.rbufsize, 1)
        self.rfile = Rio(fd, bufsize)  # type: ignore[assignment]
        if self.wbufsize == 0:
            self.wfile = RioWriter(fd)
        else:
            self.wfile = self.connection.makefile("wb", self.wbufsize)
