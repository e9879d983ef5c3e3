"""What the twins share at run time, written once: sizes, messages, the echo
framing rule, ``repr``.

``csapp._rio_py``, ``csapp._rio_c`` (the ``.pyx`` imports it at load), the
``csapp.aio`` buffer twins, the event server and the tests import it. The
``CSAPP_*`` build and import switches are ``csapp._switches``.
"""

from __future__ import annotations

from typing import Any, Optional, Union

# -- the public names of each RIO twin, written once: ``_rio_c`` exports
# exactly these and ``csapp._rio`` takes them from the chosen twin; the static
# lists that type checkers read (``_rio_py.__all__``, ``_rio_c.pyi``, the
# imports of ``csapp/__init__.py``) are held to this one by tests/test_twins.py.

RIO_NAMES = (
    "MAXLINE",
    "RIO_BUFSIZE",
    "Rio",
    "rio_readinitb",
    "rio_readinto",
    "rio_readlineb",
    "rio_readn",
    "rio_readnb",
    "rio_writen",
)

# -- sizes (CSAPP's csapp.h: RIO_BUFSIZE and MAXLINE)

RIO_BUFSIZE = 8192
MAXLINE = 8192
# The longest line iteration and echo hand out in one piece (C's MAXLINE counts the NUL).
LINE_LIMIT = MAXLINE - 1
MAX_BUFSIZE = 1 << 30
# Reads of a large n start at FIRST_CHUNK and double up to MAX_CHUNK: memory
# grows with the data that arrives, never with n itself.
FIRST_CHUNK = 64 * 1024
MAX_CHUNK = 16 * 1024 * 1024

# csapp.aio's buffer: the free space handed to the event loop for one recv_into
# starts at AIO_FIRST_FREE and doubles, up to AIO_MAX_FREE, each time a receive
# fills all of it. An idle or request/response connection holds one page; a
# bulk one soon reads 64 KiB per call. Storage past AIO_MAX_FREE (a burst read
# through feed_data, a long line) is given back once drained.
AIO_FIRST_FREE = 4 * 1024
AIO_MAX_FREE = 64 * 1024

# -- messages, word for word the same in both twins

MSG_CLOSED = "I/O operation on closed Rio"
MSG_UNINIT = "I/O operation on uninitialized Rio"
MSG_REENTRANT = "reentrant call inside Rio"
MSG_NEGATIVE_N = "n must be non-negative"
MSG_READ_LENGTH = "read length must be non-negative or -1"
MSG_MAXLEN = "maxlen must be at least 2"
MSG_BUFSIZE = "bufsize must be between 1 and 2**30"
MSG_CONTIGUOUS = "argument must be a C-contiguous buffer"
MSG_NBYTES = "nbytes is more than the free space handed out by get_buffer()"
# A read that waited its whole timeout: the words of socket.timeout's message.
MSG_TIMED_OUT = "timed out"
MSG_TIMEOUT_RANGE = "Timeout value out of range"
MSG_RECV_COUNT = "recv_into() returned a count outside the buffer it was given"
MSG_SCRATCH_EMPTY = "scratch must hold at least one byte"
MSG_ECHO_NEEDS_FD = "echo reads a descriptor: this Rio reads through its socket's recv_into"


def check_timeout(timeout: Any) -> float:
    """A Rio's ``timeout`` as seconds, -1.0 for ``None`` (no wait: EAGAIN
    raises ``BlockingIOError``); as ``socket.settimeout`` takes it."""
    if timeout is None:
        return -1.0
    kind = type(timeout)
    if not (hasattr(kind, "__float__") or hasattr(kind, "__index__")) or kind is complex:
        raise TypeError(f"timeout must be a non-negative number or None, not '{kind.__name__}'")
    value = float(timeout)
    if not value >= 0.0:  # negative or NaN
        raise ValueError(MSG_TIMEOUT_RANGE)
    return value


def poll_milliseconds(seconds: float) -> int:
    """A wait of ``seconds`` (> 0) as poll(2)'s whole milliseconds, rounded
    up (a wait never ends early) and capped at its int range."""
    ms = int(seconds * 1000.0)
    if ms < seconds * 1000.0:
        ms += 1
    return min(ms, 2**31 - 1)


def msg_not_bytes_like(obj: Any) -> str:
    return f"a bytes-like object is required, not '{type(obj).__name__}'"


def msg_not_writable(obj: Any) -> str:
    return f"argument must be a writable bytes-like object, not '{type(obj).__name__}'"


def msg_not_rio(obj: Any) -> str:
    return f"rp must be a Rio, not '{type(obj).__name__}'"


def msg_not_dict(obj: Any) -> str:
    return f"rios must be a dict, not '{type(obj).__name__}'"


def msg_no_pickle(obj: Any) -> str:
    return f"cannot pickle '{type(obj).__name__}' object"


# -- the Rio's states and its repr

UNINIT, OPEN, CLOSED = 0, 1, 2


def msg_not_open(state: int) -> str:
    """The message of a call on a Rio that is not open."""
    return MSG_CLOSED if state == CLOSED else MSG_UNINIT


def rio_repr(rio: Any, state: int, fd: int, buffered: int) -> str:
    """``<csapp._rio_c.Rio fd=3 buffered=0>``, ``<… closed>``, ``<… uninitialized>``."""
    name = f"{type(rio).__module__}.{type(rio).__qualname__}"
    if state == OPEN:
        return f"<{name} fd={fd} buffered={buffered}>"
    return f"<{name} {'closed' if state == CLOSED else 'uninitialized'}>"


# -- echo (CSAPP's echo loop): what of the buffered input goes back now

# What one call of ``_rio_echo`` ended with.
ECHO_EOF = 0  # end of file, everything echoed
ECHO_CHUNK = 1  # (once=True) one read's worth of lines went back
ECHO_BLOCKED = 2  # a read or write timed out or would block; nothing lost

# What one echo turn (``_rio_echo_turns``: an event server's work for one
# ready connection) ended with: the second field of each row it returns.
TURN_IDLE = 0  # everything complete went back; wait for input (no row unless asked)
TURN_DRAINED = 1  # output that waited from an earlier turn went out: wait for input again
TURN_BLOCKED = 2  # output waits for the socket to take it (EPOLLOUT); input still read
TURN_BLOCKED_EOF = 3  # output waits, and the client has closed: wait for EPOLLOUT only
TURN_CLOSED = 4  # the client closed and everything was echoed: close the connection
TURN_FAILED = 5  # a read or write failed: the row's count is the errno
TURN_NOT_SERVED = 6  # the descriptor is not a connection's: the row's count is the event mask
# The most events one ``_rio_echo_wait`` serves (``select.epoll.poll``'s default
# maxevents, FD_SETSIZE - 1; the C core's CSAPP_READY_MAX).
READY_MAX = 1023


def echo_cut(
    data: Union[bytes, bytearray],
    at_eof: bool,
    limit: int = LINE_LIMIT,
    start: int = 0,
    end: Optional[int] = None,
) -> int:
    """How many bytes of ``data[start:end]`` (from ``start``) an echo server writes back now.

    Every complete line (through the last ``\\n``); with none, a piece of an
    over-long line once ``limit`` bytes are waiting, or the rest at EOF. The
    C core's ``csapp_echo_cut`` applies the same rule.
    """
    end = len(data) if end is None else end
    cut = data.rfind(b"\n", start, end) + 1
    if not cut and (at_eof or end - start >= limit):
        return end - start
    return cut - start if cut else 0
