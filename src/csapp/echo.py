"""The echo service: CSAPP ``echo`` over ``Rio`` and ``rio_writen``.

Beyond the C original: when several complete lines are already buffered,
they go back in one ``write`` instead of one per line. With the compiled
implementation the whole loop runs in C without the GIL
(``_rio_c._echo_lines``), so one thread per client scales as in C.
"""

from __future__ import annotations

import errno
import os
from typing import Callable, Optional

from ._rio import MAXLINE, Rio, echo_lines, rio_writen

__all__ = ["echo", "echo_session", "next_echo_chunk"]

Received = Callable[[int], None]
KeepWaiting = Callable[[int], bool]


def next_echo_chunk(rp: Rio) -> bytes:
    """The next line (``rio_readlineb``) plus every complete line buffered behind it.

    ``b""`` at EOF. The extra lines cost no system call: ``peek`` shows the
    buffer, ``readnb`` takes it up to its last newline.
    """
    chunk = rp.readlineb(MAXLINE)
    if chunk and rp.buffered:
        cut = rp.peek().rfind(b"\n") + 1
        if cut:
            chunk += rp.readnb(cut)
    return chunk


def _write_all(fd: int, data: bytes, keep_waiting: Optional[KeepWaiting]) -> None:
    """``rio_writen``, resuming after a send timeout while ``keep_waiting(0)``."""
    view = memoryview(data)
    done = 0
    while True:
        try:
            rio_writen(fd, view[done:])
            return
        except BlockingIOError as exc:
            done += getattr(exc, "characters_written", 0)
            if keep_waiting is None or not keep_waiting(0):
                raise


def echo_session(connfd: int, *, received: Optional[Received] = None,
                 keep_waiting: Optional[KeepWaiting] = None) -> int:
    """``echo`` with hooks for servers; returns the byte count at EOF.

    ``received(n)`` is called for every chunk read (a server's verbose log).
    When a read or write times out (``SO_RCVTIMEO``/``SO_SNDTIMEO``:
    ``BlockingIOError``), ``keep_waiting(echoed)`` decides, given the bytes
    echoed since it was last called: true waits again (a partial line stays
    in the ``Rio``), false lets the ``BlockingIOError`` propagate.
    """
    with Rio(connfd) as rp:
        if received is None and echo_lines is not None:
            return _compiled_session(rp, connfd, keep_waiting)
        return _python_session(rp, connfd, received, keep_waiting)


def _compiled_session(rp: Rio, connfd: int, keep_waiting: Optional[KeepWaiting]) -> int:
    """The loop in C (``echo_lines``), back in Python only at a timeout."""
    assert echo_lines is not None
    total = 0
    while True:
        echoed, at_eof = echo_lines(rp, connfd)
        total += echoed
        if at_eof:
            return total
        if keep_waiting is None or not keep_waiting(echoed):
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))


def _python_session(rp: Rio, connfd: int, received: Optional[Received],
                    keep_waiting: Optional[KeepWaiting]) -> int:
    """The loop in Python: a chunk of whole lines per read, written back."""
    total = 0
    since_timeout = 0
    while True:
        try:
            chunk = next_echo_chunk(rp)
        except BlockingIOError:
            if keep_waiting is not None and keep_waiting(since_timeout):
                since_timeout = 0
                continue
            raise
        if not chunk:
            return total
        if received is not None:
            received(len(chunk))
        _write_all(connfd, chunk, keep_waiting)
        total += len(chunk)
        since_timeout += len(chunk)


def echo(connfd: int) -> int:
    """Echo lines read from ``connfd`` back to it until EOF (CSAPP ``echo``).

    Returns the number of bytes echoed. Byte-exact for any data: NUL bytes,
    lines longer than ``MAXLINE - 1`` (they come back in pieces), a last line
    without a newline. OS errors propagate (``ConnectionResetError``, …).
    """
    return echo_session(connfd)
