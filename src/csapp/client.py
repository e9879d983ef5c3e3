"""The echo client (CSAPP ``echoclient``).

Lines from an input descriptor go to the server; each reply goes to an output
descriptor. Unlike the C original it does not print its last line again when
the server closes, a last line without a newline is echoed too, and a line
longer than ``MAXLINE - 1`` cannot deadlock it: while it sends the pieces, it
passes on whatever echo already came back.
"""

from __future__ import annotations

import os
import select
import socket
from typing import Iterable, List, Union

from ._rio import MAXLINE, Rio, rio_writen
from .sockets import open_clientfd

__all__ = ["echo_client", "echo_lines"]


class _Server:
    """The client side of one echo connection."""

    def __init__(self, clientfd: int) -> None:
        self.fd = clientfd
        self.replies = Rio(clientfd)
        self.closed = False  # the server sent EOF
        self.unanswered = 0  # bytes sent whose echo has not come back in full
        self._poller = select.poll()
        self._poller.register(clientfd, select.POLLIN)

    def close(self) -> None:
        self.replies.close()

    def send(self, piece: bytes) -> bytes:
        """Send one piece of a line; return the echo that came back for it.

        A piece ending in a newline waits for the echo up to that newline; any
        other piece returns only what has already arrived, without blocking.
        """
        rio_writen(self.fd, piece)
        self.unanswered += len(piece)
        if piece.endswith(b"\n"):
            reply = self._through_newline()
            self.unanswered = 0
            return reply
        return self._arrived()

    def _through_newline(self) -> bytes:
        parts: List[bytes] = []
        while True:
            piece = self.replies.readlineb(MAXLINE)
            if not piece:
                self.closed = True
                break
            parts.append(piece)
            if piece.endswith(b"\n"):
                break
        return b"".join(parts)

    def _arrived(self) -> bytes:
        parts: List[bytes] = []
        while not self.closed and (self.replies.buffered or self._poller.poll(0)):
            data = self.replies.read1(MAXLINE)  # never blocks: data is there
            if not data:
                self.closed = True
            parts.append(data)
        return b"".join(parts)

    def finish(self) -> bytes:
        """End of input: half-close and collect the echo of unanswered bytes."""
        if not self.unanswered or self.closed:
            return b""
        sock = socket.socket(fileno=self.fd)
        try:
            sock.shutdown(socket.SHUT_WR)
        finally:
            sock.detach()
        return self.replies.read()


def echo_client(clientfd: int, infd: int = 0, outfd: int = 1) -> int:
    """Send lines from ``infd`` to the server and its replies to ``outfd``.

    Stops at end of input (after the last reply) or as soon as the server
    closes; returns the reply bytes written. A reset connection raises
    ``ConnectionResetError`` (or ``BrokenPipeError``).
    """
    written = 0
    server = _Server(clientfd)
    try:
        with Rio(infd) as source:
            while not server.closed:
                piece = source.readlineb(MAXLINE)
                if not piece:
                    break
                reply = server.send(piece)
                if reply:
                    written += rio_writen(outfd, reply)
        if not server.closed:
            written += rio_writen(outfd, server.finish())
    finally:
        server.close()
    return written


def _pieces(line: bytes) -> Iterable[bytes]:
    size = MAXLINE - 1
    return (line[i : i + size] for i in range(0, len(line), size))


def echo_lines(host: str, port: Union[int, str], lines: Iterable[bytes]) -> List[bytes]:
    """Send each line to an echo server at ``host``/``port``; return the replies.

    The library form of the echo client: one reply per line sent, until the
    server closes. A line without a newline is sent last, after which the
    client half-closes and its reply is whatever the server sends back.
    """
    replies: List[bytes] = []
    clientfd = open_clientfd(host, port)
    server = _Server(clientfd)
    try:
        for line in lines:
            reply = b"".join(server.send(piece) for piece in _pieces(line))
            if not line.endswith(b"\n"):
                replies.append(reply + server.finish())
                break
            if server.closed and not reply:
                break
            replies.append(reply)
    finally:
        server.close()
        os.close(clientfd)
    return replies
