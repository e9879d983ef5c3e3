"""The echo service: CSAPP ``echo`` over a ``Rio``.

Beyond the C original: when several complete lines are already buffered,
they go back in one ``write`` instead of one per line. With the compiled
implementation the whole loop runs in C without the GIL
(``_rio_c._rio_echo``), so one thread per client scales as in C; the
pure-Python twin's ``_rio_echo`` follows the same rule (``_shared.echo_cut``)
with the same system calls.
"""

from __future__ import annotations

import errno
import os
from typing import Callable, Optional

from ._rio import Rio, rio_echo
from ._shared import ECHO_BLOCKED, ECHO_EOF

__all__ = ["echo", "echo_session"]

Received = Callable[[int], None]
KeepWaiting = Callable[[int], bool]


def echo_session(
    connfd: int, *, received: Optional[Received] = None, keep_waiting: Optional[KeepWaiting] = None
) -> int:
    """``echo`` with hooks for servers; returns the byte count at EOF.

    ``received(n)`` is called for every chunk echoed (a server's verbose log:
    the lines one read brought, written back in one write). When a read or
    write times out (``SO_RCVTIMEO``/``SO_SNDTIMEO``: ``BlockingIOError``),
    ``keep_waiting(echoed)`` decides, given the bytes echoed since it was
    last called: true waits again (a partial line stays in the ``Rio``),
    false lets the ``BlockingIOError`` propagate.
    """
    once = received is not None
    total = 0
    since_timeout = 0
    with Rio(connfd) as rp:
        while True:
            echoed, state = rio_echo(rp, connfd, once)
            total += echoed
            since_timeout += echoed
            if echoed and received is not None:
                received(echoed)
            if state == ECHO_EOF:
                return total
            if state == ECHO_BLOCKED:
                if keep_waiting is None or not keep_waiting(since_timeout):
                    raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
                since_timeout = 0


def echo(connfd: int) -> int:
    """Echo lines read from ``connfd`` back to it until EOF (CSAPP ``echo``).

    Returns the number of bytes echoed. Byte-exact for any data: NUL bytes,
    lines longer than ``MAXLINE - 1`` (they come back in pieces), a last line
    without a newline. OS errors propagate (``ConnectionResetError``, …).
    """
    return echo_session(connfd)
