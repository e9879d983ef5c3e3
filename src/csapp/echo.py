"""The echo service: CSAPP ``echo`` over ``Rio`` and ``rio_writen``.

Beyond the C original: when several complete lines are already buffered,
they go back in one ``write`` instead of one per line.
"""

from __future__ import annotations

from typing import Callable, Optional

from ._rio import MAXLINE, Rio, rio_writen

__all__ = ["echo", "echo_session", "next_echo_chunk"]

Received = Callable[[int], None]
KeepWaiting = Callable[[], bool]


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
    """``rio_writen``, resuming after a send timeout while ``keep_waiting()``."""
    view = memoryview(data)
    done = 0
    while True:
        try:
            rio_writen(fd, view[done:])
            return
        except BlockingIOError as exc:
            done += getattr(exc, "characters_written", 0)
            if keep_waiting is None or not keep_waiting():
                raise


def echo_session(connfd: int, *, received: Optional[Received] = None,
                 keep_waiting: Optional[KeepWaiting] = None) -> int:
    """``echo`` with hooks for servers; returns the byte count at EOF.

    ``received(n)`` is called for every chunk read. When a read or write times
    out (``SO_RCVTIMEO``/``SO_SNDTIMEO``: ``BlockingIOError``), ``keep_waiting()``
    decides: true waits again (a partial line stays in the ``Rio``), false lets
    the ``BlockingIOError`` propagate.
    """
    total = 0
    with Rio(connfd) as rp:
        while True:
            try:
                chunk = next_echo_chunk(rp)
            except BlockingIOError:
                if keep_waiting is not None and keep_waiting():
                    continue
                raise
            if not chunk:
                return total
            if received is not None:
                received(len(chunk))
            _write_all(connfd, chunk, keep_waiting)
            total += len(chunk)


def echo(connfd: int) -> int:
    """Echo lines read from ``connfd`` back to it until EOF (CSAPP ``echo``).

    Returns the number of bytes echoed. Byte-exact for any data: NUL bytes,
    lines longer than ``MAXLINE - 1`` (they come back in pieces), a last line
    without a newline. OS errors propagate (``ConnectionResetError``, …).
    """
    return echo_session(connfd)
