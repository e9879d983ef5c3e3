"""Pure-Python RIO: CSAPP's robust I/O package over ``os.read``/``os.write``.

This is the fallback twin of the compiled ``csapp._rio_c``. Both follow
``docs/CONTRACT.md`` to the letter: same names, results, exception types and
messages. The tests run every behaviour against both.

C names mirrored: ``rio_readn``, ``rio_writen``, ``rio_t``/``rio_readinitb``,
``rio_readlineb``, ``rio_readnb``.
"""

from __future__ import annotations

import errno
import io
import os
import select
import sys
import threading
import time
import weakref
from functools import partial
from operator import index as _index
from typing import Any, Callable, Iterator, List, Optional, Tuple, TypeVar

from ._shared import (
    CLOSED as _CLOSED,
)
from ._shared import (
    ECHO_BLOCKED,
    ECHO_CHUNK,
    ECHO_EOF,
    MAXLINE,
    MSG_BUFSIZE,
    MSG_CONTIGUOUS,
    MSG_ECHO_NEEDS_FD,
    MSG_MAXLEN,
    MSG_NEGATIVE_N,
    MSG_READ_LENGTH,
    MSG_RECV_COUNT,
    MSG_REENTRANT,
    MSG_SCRATCH_EMPTY,
    MSG_TIMED_OUT,
    READY_MAX,
    RIO_BUFSIZE,
    TURN_BLOCKED,
    TURN_BLOCKED_EOF,
    TURN_CLOSED,
    TURN_DRAINED,
    TURN_FAILED,
    TURN_IDLE,
    TURN_NOT_SERVED,
    check_timeout,
    echo_cut,
    msg_no_pickle,
    msg_not_bytes_like,
    msg_not_dict,
    msg_not_open,
    msg_not_rio,
    msg_not_writable,
    poll_milliseconds,
    rio_repr,
)
from ._shared import (
    FIRST_CHUNK as _FIRST_CHUNK,
)
from ._shared import (
    LINE_LIMIT as _LINE_LIMIT,
)
from ._shared import (
    MAX_BUFSIZE as _MAX_BUFSIZE,
)
from ._shared import (
    MAX_CHUNK as _MAX_CHUNK,
)
from ._shared import (
    OPEN as _OPEN,
)
from ._shared import (
    UNINIT as _UNINIT,
)

__all__ = [
    "MAXLINE",
    "RIO_BUFSIZE",
    "Rio",
    "rio_readinitb",
    "rio_readinto",
    "rio_readlineb",
    "rio_readn",
    "rio_readnb",
    "rio_writen",
]

_INT_MAX = 2**31 - 1
_T = TypeVar("_T")
_get_ident = threading.get_ident
# One read(2) asks for at most this much (the C core's CSAPP_IO_MAX).
_IO_MAX = 1 << 30
_POLLOUT = select.POLLOUT  # an event mask bit: the descriptor is writable (EPOLLOUT too)


def _check_fd(fd: Any) -> int:
    """A descriptor as an int; one that cannot exist is EBADF, as the kernel says."""
    value: int = _index(fd)
    if not 0 <= value <= _INT_MAX:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    return value


def _size_or_all(n: Any) -> int:
    """``None`` → -1; other values as ``io.BufferedReader.read`` takes them."""
    if n is None:
        return -1
    value: int = _index(n)
    if value < -1:
        raise ValueError(MSG_READ_LENGTH)
    return value


def _byte_view(obj: Any, writable: bool) -> memoryview:
    """A flat unsigned-byte view of any C-contiguous bytes-like object, no copy."""
    try:
        view = memoryview(obj)
    except TypeError:
        raise TypeError(msg_not_bytes_like(obj)) from None
    if writable and view.readonly:
        raise TypeError(msg_not_writable(obj))
    if not view.c_contiguous:
        raise TypeError(MSG_CONTIGUOUS)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


# Signal safety of the Rio. CPython runs pending signal handlers only at
# certain points of the bytecode: when a function starts, at loop back-edges
# and right after a call made from bytecode returns (never after a plain
# assignment, subscript or ``+=``). So ``data = os.read(...)`` loses ``data``
# when a handler raises just as the read returns (likely when the signal
# landed on another thread). The Rio therefore reads with
# ``parts += map(os.read, (fd,), (size,))``: the list is extended by C code,
# so the bytes are stored before any handler can run, and they are moved into
# the buffer or the pending result by assignments only. Every exception path
# then puts what was taken from the kernel back in front of the buffer. (A
# result can still be dropped once committed, as the call returns: that is
# so for any call in CPython, the compiled twin included.) CPython 3.10 also
# runs pending handlers where an ``except`` or ``finally`` block starts: there,
# a second handler raising while the first one's exception unwinds can skip
# that cleanup: an owner mark left set is harmless (see ``_call_locked``), a
# lock left held by a skipped ``with`` exit is not. 3.11 and later do not run
# handlers there; the compiled twin cleans up in C.


# ---------------------------------------------------------------- unbuffered


def rio_readn(fd: int, n: int) -> bytes:
    """Read ``n`` bytes, short only at EOF (CSAPP ``rio_readn``)."""
    fd = _check_fd(fd)
    n = _index(n)
    if n < 0:
        raise ValueError(MSG_NEGATIVE_N)
    if n == 0:
        return b""
    chunks: List[bytes] = []
    got = 0
    step = _FIRST_CHUNK
    while got < n:
        try:
            data = os.read(fd, min(n - got, step))
        except BlockingIOError:
            if got:
                break
            raise
        if not data:
            break
        chunks.append(data)
        got += len(data)
        if step < _MAX_CHUNK:
            step *= 2
    if len(chunks) == 1:
        return chunks[0]
    return b"".join(chunks)


def rio_readinto(fd: int, buffer: Any) -> int:
    """Fill ``buffer`` from ``fd``; the count is short only at EOF (``rio_readn``)."""
    fd = _check_fd(fd)
    view = _byte_view(buffer, writable=True)
    with view:
        total = view.nbytes
        got = 0
        while got < total:
            try:
                count = os.readv(fd, [view[got:]])
            except BlockingIOError:
                if got:
                    break
                raise
            if count == 0:
                break
            got += count
    return got


def rio_writen(fd: int, data: Any) -> int:
    """Write every byte of ``data`` (CSAPP ``rio_writen``); returns ``len`` in bytes.

    If it raises part-way, the exception's ``characters_written`` says how many
    bytes went out.
    """
    fd = _check_fd(fd)
    view = _byte_view(data, writable=False)
    with view:
        total = view.nbytes
        # Each count is stored by C code (list.extend over map), not by
        # bytecode: CPython runs pending signal handlers as soon as a call
        # made from bytecode returns, so with ``done += os.write(...)`` a
        # handler raising right after a short write (a blocked write(2)
        # interrupted after it moved some bytes) would drop that count.
        counts: List[int] = []
        done = 0
        try:
            while done < total:
                counts.extend(map(os.write, (fd,), (view[done:],)))
                done += counts[-1]
        except BaseException as exc:
            exc.characters_written = sum(counts)  # type: ignore[attr-defined]
            raise
    return total


# ------------------------------------------------------------------ buffered

_SIZE_MAX = sys.maxsize
_bytesio_read = io.BytesIO.read
_bytesio_readinto = io.BytesIO.readinto


def _clamp(n: int) -> int:
    """Sizes beyond any possible buffer mean "as much as there is"."""
    return _SIZE_MAX if n > _SIZE_MAX else n


def _check_maxlen(maxlen: Any) -> int:
    value = _clamp(_index(maxlen))
    if value < 2:
        raise ValueError(MSG_MAXLEN)
    return value


def _raiser(state: int) -> Callable[..., bytes]:
    """The lock-free line path of a Rio that is not open: it raises."""
    message = msg_not_open(state)

    def not_open(limit: int = -1) -> bytes:
        raise ValueError(message)

    return not_open


_RAISE_CLOSED = _raiser(_CLOSED)
_RAISE_UNINIT = _raiser(_UNINIT)

# The whole-lines buffer of every Rio that holds none: never written to.
_NO_LINES = io.BytesIO()
_NO_LINES.size = 0  # type: ignore[attr-defined]


def _recv_bytes(recv_into: Callable[[Any], Any], size: int) -> bytes:
    """At most ``size`` bytes by one ``recv_into`` (a socket-like object's
    read): into a bytearray of our own, whatever the callee keeps of it."""
    buffer = bytearray(size)
    got = _index(recv_into(memoryview(buffer)))
    if not 0 <= got <= size:
        raise OSError(MSG_RECV_COUNT)
    return bytes(buffer[:got])


def _no_source(size: int) -> bytes:
    """The source of a Rio that reads nothing (not open): never reached, as
    every call checks the state first."""
    raise ValueError(msg_not_open(_UNINIT))


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _closer_at_gc(rp: Rio, fd: int) -> weakref.finalize[[int], Rio]:
    """Close ``fd`` when ``rp`` is collected unclosed (the C twin's dealloc).

    Why not ``__del__``: an exception raised in a finalizer is only reported
    ("Exception ignored in ...") and lost, and a signal handler may run, and
    raise, on any finalizer's first line. A ``__del__`` would run for every
    Rio, owning or not, closed or not: ``csapp.echo`` drops one per client, so
    a Ctrl-C landing there was lost (seen in CI). This finalizer exists only
    while an owning Rio is open; ``close()`` detaches it.
    """
    finalizer = weakref.finalize(rp, _close_quietly, fd)
    finalizer.atexit = False  # as in C: only a collected Rio closes its descriptor
    return finalizer


class Rio:
    """A read buffer bound to a descriptor (CSAPP ``rio_t``).

    ``Rio(fd)`` is ``rio_readinitb``. The descriptor is not owned unless
    ``closefd=True``. Every read method may be interleaved with the others;
    no byte is lost when a signal handler raises or a non-blocking descriptor
    would block: what was already read stays buffered for the next call.

    How the buffer is kept, so that plain Python is fast: the bytes read from
    the kernel and not yet returned are ``_lines`` (an ``io.BytesIO`` holding
    whole lines only) followed by the chunks in the list ``_parts``. A line
    that is wholly buffered comes from ``_lines.readline``: one call into C
    that no other thread can interleave with, so that path takes no lock.
    Every other path takes the lock and first moves what ``_lines`` still
    holds into ``_parts`` (a lock-free reader then finds ``_lines`` empty and
    waits for the lock). Bytes taken from the kernel or from ``_lines`` are
    stored by C code (``list += map(...)``, see the note above), results are
    computed while the Rio still holds every byte, and the new state is then
    committed with plain assignments, where no signal handler can run.

    ``_cap`` is the capacity the C core's buffer would have: the size of
    every ``read`` comes from it by the C core's rule (``_refill_size``), so
    both twins make the same system calls for the same calls.
    """

    __slots__ = (
        "__weakref__",
        "_bufsize",
        "_cap",
        "_closefd",
        "_direct",
        "_fd",
        "_finalizer",
        "_lines",
        "_lock",
        "_owner",
        "_parts",
        "_readline",
        "_sock",
        "_source",
        "_state",
        "_timeout",
    )

    _state: int
    _owner: int
    _cap: int
    _lines: Any  # an io.BytesIO of whole lines, with a ``size`` attribute
    _readline: Callable[[int], bytes]
    _lock: threading.Lock
    _parts: List[Any]
    _finalizer: Optional[weakref.finalize[[int], Rio]]
    _source: Callable[[int], bytes]
    _sock: Any

    def __new__(cls, *args: Any, **kwargs: Any) -> Rio:
        self = super().__new__(cls)
        self._lock = threading.Lock()
        self._owner = 0
        self._fd = -1
        self._bufsize = RIO_BUFSIZE
        self._closefd = False
        self._finalizer = None
        self._timeout = -1.0
        self._sock = None
        self._source = _no_source
        self._direct = True
        self._set_state(_UNINIT)
        return self

    def __init__(
        self,
        fd: int,
        bufsize: int = RIO_BUFSIZE,
        *,
        closefd: bool = False,
        timeout: Optional[float] = None,
    ) -> None:
        self._call_locked(self._init, (fd, bufsize, closefd, timeout), True)

    def _init(self, args: Tuple[Any, Any, Any, Any]) -> None:
        fd, bufsize, closefd, timeout = args
        self._set_state(_UNINIT)
        fd = _check_fd(fd)
        bufsize = _index(bufsize)
        if not 1 <= bufsize <= _MAX_BUFSIZE:
            raise ValueError(MSG_BUFSIZE)
        timeout = check_timeout(timeout)
        self._disown()  # a new __init__ forgets the old descriptor, as in C
        self._fd = fd
        self._bufsize = bufsize
        self._closefd = bool(closefd)
        self._timeout = timeout
        self._sock = None
        self._source = partial(os.read, fd)
        self._direct = True
        if closefd:
            self._finalizer = _closer_at_gc(self, fd)
        self._set_state(_OPEN)

    def _bind_socket(self, sock: Any, via_recv: bool) -> None:
        """Bind to the socket object whose descriptor this Rio reads (for
        ``csapp.makefile``): a read that would block waits up to
        ``sock.gettimeout()``; with ``via_recv`` every read is
        ``sock.recv`` (TLS, socket-like objects), never the descriptor."""
        self._call_locked(self._bind, (sock, via_recv))

    def _bind(self, args: Tuple[Any, bool]) -> None:
        sock, via_recv = args
        self._sock = sock
        if via_recv:
            self._source = partial(_recv_bytes, sock.recv_into)
            self._direct = False

    def _wait_readable(self) -> bool:
        """After EAGAIN: wait until the descriptor is readable, up to the
        timeout (the socket's, for a bound Rio). False when no wait applies
        (no timeout, or 0: the caller lets ``BlockingIOError`` go);
        ``TimeoutError`` when the time ran out."""
        sock = self._sock
        if sock is not None:
            timeout = sock.gettimeout()
            if timeout is None:
                timeout = -1.0
            elif timeout <= 0:
                return False
        else:
            timeout = self._timeout
            if timeout <= 0:
                return False
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        # poll retries EINTR itself with the time left (PEP 475).
        if not poller.poll(None if timeout < 0 else poll_milliseconds(timeout)):
            raise TimeoutError(MSG_TIMED_OUT)
        return True

    def _disown(self) -> None:
        """No close of the descriptor when this Rio is collected (any more)."""
        finalizer = self._finalizer
        if finalizer is not None:
            self._finalizer = None
            finalizer.detach()

    def _set_state(self, state: int) -> None:
        """Empty the buffer and route the lock-free path by state."""
        self._state = state
        self._parts = []
        self._cap = 0
        self._lines = _NO_LINES
        if state == _OPEN:
            self._readline = _NO_LINES.readline
        else:
            self._readline = _RAISE_CLOSED if state == _CLOSED else _RAISE_UNINIT

    # -- the lock: one call at a time; a signal handler re-entering is refused.

    def _call_locked(
        self, method: Callable[[Any], _T], arg: Any = None, any_state: bool = False
    ) -> _T:
        """``method(arg)`` holding the lock; the Rio must be open unless ``any_state``.

        The one place the lock is taken. A handler that re-enters (same
        thread) gets ``RuntimeError`` instead of a deadlock. CPython runs
        signal handlers only at certain points (after a call returns, at loop
        back-edges), never between the ``with`` acquiring the lock and the
        ``try`` inside it, so a handler that raises can never leave the lock
        held or ``_owner`` set; except on 3.10, where a second handler raising
        as the ``finally`` starts skips it (see the note at the top). So, as
        the C twin does, a call is refused only while the lock is held too: a
        mark left behind with the lock free is overwritten, not obeyed.
        """
        me = _get_ident()
        if self._owner == me and self._lock.locked():
            raise RuntimeError(MSG_REENTRANT)
        with self._lock:
            try:
                self._owner = me
                if self._state != _OPEN and not any_state:
                    raise ValueError(msg_not_open(self._state))
                return method(arg)
            finally:
                self._owner = 0

    def _check_open(self) -> None:
        if self._state != _OPEN:
            raise ValueError(msg_not_open(self._state))

    # -- the buffer (every method below runs with the lock held)

    def _refill_size(self, pending: int, want: int) -> int:
        """How many bytes the next ``read`` asks for, by the C core's rule.

        ``csapp_rio_reserve`` moves the ``pending`` bytes to the front and
        grows the buffer only when the free space is less than ``want``
        (beyond bufsize) or none at all: to bufsize, then doubling;
        ``csapp_rio_shrink`` gives it back to bufsize once no more than
        bufsize bytes are pending. ``csapp_rio_fill`` then asks for
        ``max(want, bufsize)`` bytes, but no more than the free space.
        """
        bufsize = self._bufsize
        cap = self._cap
        if cap > bufsize and pending <= bufsize:
            cap = bufsize
        room = want if want > bufsize else 1
        self._cap = cap = self._grown(cap, pending, room)
        size = want if want > bufsize else bufsize
        free = cap - pending
        return min(size, free, _IO_MAX)

    def _grown(self, cap: int, pending: int, room: int) -> int:
        """The capacity once ``csapp_rio_reserve`` made ``room`` free bytes
        after ``pending`` ones in a buffer of ``cap``: unchanged if they fit
        (and a buffer exists), else bufsize, then doubled until they do."""
        if cap - pending >= room and cap:
            return cap
        need = pending + room
        cap = max(cap, self._bufsize)
        while cap < need:
            cap *= 2
        return cap

    def _unread_capacity(self, before: int, after: int) -> None:
        """The buffer once bytes went back in front (``csapp_rio_unread``),
        ``before`` bytes pending then ``after``: the C core had shrunk it if
        ``before`` fits in bufsize; one too small grows to ``max(after, bufsize)``."""
        bufsize = self._bufsize
        if self._cap > bufsize and before <= bufsize:
            self._cap = bufsize
        if self._cap < after:
            self._cap = max(after, bufsize)

    def _gather(self) -> bytearray:
        """Everything buffered as one bytearray, which is then all of ``_parts``
        (so bytes appended to it in place stay in the Rio)."""
        lines = self._lines
        if lines.tell() < lines.size:
            head: List[Any] = []
            head += map(_bytesio_read, (lines,))  # stored by C code
            head += self._parts
            self._parts = head
        data = bytearray().join(self._parts)
        self._parts = [data]
        return data

    def _read_more(self, data: bytearray, want: int = 0, taken: int = 0) -> int:
        """One ``read`` appended to ``data`` (which is ``_parts[0]``), of the
        size ``_refill_size`` gives; returns the count, 0 at EOF. ``taken``:
        bytes at the front of ``data`` already given out by this call (the C
        core would not hold them any more)."""
        pending = len(data) - taken
        bufsize = self._bufsize
        if want <= bufsize and self._cap == bufsize and pending < bufsize:
            size = bufsize - pending  # what _refill_size gives, in the common case
        else:
            size = self._refill_size(pending, want)
        while True:
            try:
                self._parts += map(self._source, (size,))  # stored by C code
                break
            except BlockingIOError:
                if not self._wait_readable():
                    raise
        new = self._parts[-1]
        data += new
        self._parts = [data]
        return len(new)

    def _split(self, rest: Any) -> Tuple[List[bytes], Any, Any]:
        """The state that makes ``rest`` (the bytes after a result) the buffer:
        whole lines to ``_lines``, the remainder to ``_parts``. Callers commit
        it with one unpacking assignment: a handler that raises when this
        call returns finds the Rio as it was, still holding every byte."""
        cut = rest.rfind(b"\n") + 1
        if cut:
            lines = io.BytesIO(rest[:cut])
            lines.size = cut  # type: ignore[attr-defined]
        else:
            lines = _NO_LINES
        tail = bytes(rest[cut:])
        return ([tail] if tail else []), lines, lines.readline

    def _take(self, data: bytearray, n: int) -> bytes:
        """The first ``n`` bytes of ``data`` (all that is buffered); the rest
        stays buffered."""
        if n < len(data):
            result = bytes(data[:n])
            self._parts, self._lines, self._readline = self._split(data[n:])
            return result
        result = bytes(data)
        self._parts = []
        return result

    def _line(self, limit: int) -> bytes:
        """The next line of at most ``limit`` bytes (``limit < 0``: unbounded)."""
        data = self._gather()
        scan = 0
        while True:
            end = len(data) if limit < 0 or limit > len(data) else limit
            cut = data.find(b"\n", scan, end) + 1
            if not cut and 0 <= limit <= len(data):
                cut = limit
            if cut:
                return self._take(data, cut)
            scan = len(data)
            if not self._read_more(data):  # EOF
                return self._take(data, len(data))

    def _read(self, n: int) -> bytes:
        """``n`` bytes, short only at EOF; ``n < 0`` reads to EOF."""
        if n >= 0:
            got: List[bytes] = []
            got += map(_bytesio_read, (self._lines,), (n,))  # stored by C code
            if len(got[0]) == n:
                return got[0]
            self._parts = got + self._parts  # short: _lines is empty now
        data = self._gather()
        step = _FIRST_CHUNK
        while n < 0 or len(data) < n:
            need = step if n < 0 else min(n - len(data), step)
            if not self._read_more(data, need):
                break
            if step < _MAX_CHUNK:
                step *= 2
        return self._take(data, n if 0 <= n < len(data) else len(data))

    def _readinto(self, view: memoryview) -> int:
        total = view.nbytes
        counts: List[int] = []
        counts += map(_bytesio_readinto, (self._lines,), (view,))  # stored by C code
        got = counts[0]
        if got == total:
            return got
        data = self._gather()  # _lines is empty now: only _parts is left
        take = min(total - got, len(data))
        view[got : got + take] = data[:take]
        del data[:take]
        got += take
        fd = self._fd
        bufsize = self._bufsize
        try:
            while got < total:
                want = total - got
                if want >= bufsize and self._direct:  # straight into the caller's buffer
                    try:
                        counts += map(os.readv, (fd,), ([view[got:]],))
                    except BlockingIOError:
                        if self._wait_readable():
                            continue
                        raise
                    count = counts[-1]
                    got += count
                else:
                    count = self._read_more(data)
                    take = min(count, want)
                    view[got : got + take] = data[:take]
                    del data[:take]
                    got += take
                if count == 0:
                    break
            if data:
                self._parts, self._lines, self._readline = self._split(data)
            return got
        except BaseException:
            if got:  # what was read goes back in front: nothing lost
                self._parts = [bytes(view[:got]), data]
                self._unread_capacity(len(data), got + len(data))
            raise

    # -- CSAPP's buffered reads

    def readlineb(self, maxlen: int = MAXLINE) -> bytes:
        """The next line, at most ``maxlen - 1`` bytes (CSAPP ``rio_readlineb``)."""
        if maxlen is MAXLINE:
            limit = _LINE_LIMIT
        elif maxlen.__class__ is int and 2 <= maxlen <= _SIZE_MAX:
            limit = maxlen - 1
        else:
            limit = _check_maxlen(maxlen) - 1
        line = self._readline(limit)
        if line:
            return line
        return self._call_locked(self._line, limit)

    def readnb(self, n: int) -> bytes:
        """Up to ``n`` bytes, short only at EOF (CSAPP ``rio_readnb``)."""
        n = _clamp(_index(n))
        if n < 0:
            raise ValueError(MSG_NEGATIVE_N)
        return self._call_locked(self._read, n)

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer``; the count is short only at EOF (``rio_readnb``)."""
        view = _byte_view(buffer, writable=True)
        with view:
            return self._call_locked(self._readinto, view)

    # -- io.BufferedIOBase's reads

    def readline(self, size: Optional[int] = -1) -> bytes:
        """The next line, at most ``size`` bytes when ``size >= 0`` (io semantics)."""
        if size is None:
            size = -1
        elif size.__class__ is not int or size > _SIZE_MAX:
            size = _clamp(_index(size))
        if size == 0:
            self._check_open()
            return b""
        limit = size if size > 0 else -1
        line = self._readline(limit)
        if line:
            return line
        return self._call_locked(self._line, limit)

    def read(self, n: Optional[int] = -1) -> bytes:
        """``n`` bytes, short only at EOF; ``read()`` reads to EOF."""
        return self._call_locked(self._read, _clamp(_size_or_all(n)))

    def read1(self, n: Optional[int] = -1) -> bytes:
        """Up to ``n`` bytes with at most one ``read`` system call."""
        return self._call_locked(self._read1, _clamp(_size_or_all(n)))

    def _read1(self, n: int) -> bytes:
        if n == 0:
            return b""
        data = self._gather()
        if not data:
            self._read_more(data, min(n, _MAX_CHUNK) if n > 0 else 0)
        return self._take(data, n if 0 <= n < len(data) else len(data))

    def readinto1(self, buffer: Any) -> int:
        """Fill ``buffer`` with at most one ``read`` system call; the count
        (0 at EOF)."""
        view = _byte_view(buffer, writable=True)
        with view:
            data = self._call_locked(self._read1, view.nbytes)
            view[: len(data)] = data
            return len(data)

    def peek(self, n: int = 0) -> bytes:
        """The buffered bytes, after at most one ``read`` if none are; none consumed."""
        _index(n)
        return self._call_locked(self._peek)

    def _peek(self, _: None) -> bytes:
        data = self._gather()
        if not data:
            self._read_more(data)
        result = bytes(data)
        self._parts, self._lines, self._readline = self._split(result)
        return result

    def readlines(self, hint: Optional[int] = -1) -> List[bytes]:
        """Lines as iteration gives them, until their total reaches ``hint``.

        One call under the lock: if it raises part-way (EAGAIN, a signal
        handler), the lines it took go back in front of the buffer."""
        return self._call_locked(self._readlines, -1 if hint is None else _index(hint))

    def _readlines(self, hint: int) -> List[bytes]:
        """The lines are cut from one gathered bytearray and leave the Rio
        only at the end, by one assignment: ``_lines`` is not refilled
        part-way, so no lock-free reader takes a line from between two of
        this call's (the result is one contiguous stretch of the stream),
        and whatever raises part-way leaves every byte buffered."""
        data = self._gather()
        lines: List[bytes] = []
        start = scan = total = 0
        try:
            while True:
                cut = data.find(b"\n", scan) + 1
                if not cut:
                    scan = len(data)
                    if self._read_more(data, 0, start):
                        continue
                    if start == len(data):
                        break
                    cut = len(data)  # EOF: a last line without a newline (then, as
                    # in C, one more read: a terminal gives more after its EOF)
                lines.append(bytes(data[start:cut]))
                total += cut - start
                start = scan = cut
                if 0 < hint <= total:
                    break
        except BaseException:
            if start:  # the C twin puts the lines it took back (csapp_rio_unread)
                self._unread_capacity(len(data) - start, len(data))
            raise
        self._parts, self._lines, self._readline = self._split(data[start:])
        return lines

    def __iter__(self) -> Iterator[bytes]:
        self._check_open()
        return self

    def __next__(self) -> bytes:
        line = self._readline(-1)
        if line:
            return line
        line = self._call_locked(self._line, -1)
        if not line:
            raise StopIteration
        return line

    # -- CSAPP's echo loop, for csapp.echo (the twin of the C core's csapp_rio_echo)

    def _echo(self, args: Tuple[int, bool]) -> Tuple[int, int]:
        """See ``_rio_echo``. Bytes leave the buffer only once written: the
        count of each write is stored by C code and applied by assignments,
        and whatever raises leaves the unechoed rest buffered."""
        out_fd, once = args
        if not self._direct:
            raise ValueError(MSG_ECHO_NEEDS_FD)
        data = self._gather()
        counts: List[int] = []
        echoed = 0
        at_eof = False
        try:
            while True:
                cut = echo_cut(data, at_eof)
                if cut:
                    with memoryview(data) as view:
                        counts += map(os.write, (out_fd,), (view[:cut],))
                    del data[: counts[-1]]
                    echoed += counts[-1]
                    if counts[-1] == cut and once and not at_eof:
                        return echoed, ECHO_CHUNK
                elif at_eof:
                    return echoed, ECHO_EOF
                elif not self._read_more(data):
                    at_eof = True
        except (BlockingIOError, InterruptedError):
            return echoed, ECHO_BLOCKED
        finally:
            written = sum(counts)
            if written > echoed:  # a handler raised between a write and its del
                del data[: written - echoed]
            self._parts = [data] if data else []

    # -- one turn of an event server, for _rio_echo_turns (the twin of csapp_rio_echo_turn)

    def _echo_turn(self, size: int, high_water: int, writable: bool) -> Tuple[int, int, int]:
        """One turn (see ``_rio_echo_turns``) of a Rio that may hold bytes:
        (state, bytes written or the errno, bytes read). ``writable``: the
        event said POLLOUT, so after a blocked turn all that is held is owed,
        the rest of a long line's piece too. ``_cap`` follows
        what the C core's buffer does: ``csapp_rio_consume`` of what went
        out, ``rio_append`` of what must wait, freed when nothing does."""
        fd = self._fd
        parts = self._parts
        if self._lines is _NO_LINES and len(parts) == 1 and parts[0].__class__ is bytearray:
            held = parts[0]
        else:
            held = self._gather()
            self._lines = _NO_LINES
            self._readline = _NO_LINES.readline
        h = held_at_start = len(held)
        wrote = 0
        drained = False
        if h:  # 1. output that waited goes first
            cut = echo_cut(held, False)
            if writable or h - cut >= _LINE_LIMIT:  # all: owed, or a long line's piece
                cut = h
            if cut:
                try:
                    with memoryview(held) as view:
                        wrote = os.write(fd, view[:cut])
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError as exc:
                    return self._turn_failed(held, exc)
                del held[:wrote]
                h -= wrote
                self._turn_consumed(h)
                if wrote < cut:  # the socket is full: read on only below high_water
                    state = TURN_BLOCKED
                    got = 0
                    if h < high_water:
                        try:
                            new = os.read(fd, size)
                        except (BlockingIOError, InterruptedError):
                            pass
                        except OSError as exc:
                            return self._turn_failed(held, exc)
                        else:
                            got = len(new)
                            if got:
                                held += new
                                self._turn_appended(h, got)
                            else:
                                state = TURN_BLOCKED_EOF
                    self._parts = [held]
                    return state, wrote, got
                drained = True
        try:  # 2. one read
            new = os.read(fd, size)
        except (BlockingIOError, InterruptedError):
            self._turn_keep(held)
            return (TURN_DRAINED if drained else TURN_IDLE), wrote, 0
        except OSError as exc:
            return self._turn_failed(held, exc)
        # 3. the held partial line (no b"\n", shorter than LINE_LIMIT) and the new bytes
        n = len(new)
        cut = new.rfind(b"\n") + 1
        if cut:
            cut += h
        if not n or h + n - cut >= _LINE_LIMIT:
            cut = h + n  # EOF: all of it; a long line's piece goes too
        put = 0
        if cut:
            try:
                if not h:
                    put = os.write(fd, new if cut == n else memoryview(new)[:cut])
                elif not n:
                    put = os.write(fd, held)
                else:
                    put = os.writev(fd, (held, new if cut - h == n else memoryview(new)[: cut - h]))
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self._turn_consumed(h)
                if n:
                    held += new
                    self._turn_appended(h, n)
                return self._turn_failed(held, exc)
        wrote += put
        if put < h:
            del held[:put]
            h -= put
            self._turn_consumed(h)
            if n:
                held += new
                self._turn_appended(h, n)
            self._turn_keep(held)
        else:
            self._turn_consumed(0)
            rest = new[put - h :]
            if rest:
                self._turn_appended(0, len(rest))
            self._turn_keep(rest)
        if put < cut:
            return (TURN_BLOCKED if n else TURN_BLOCKED_EOF), wrote, n
        if not n:
            return TURN_CLOSED, wrote, 0
        if drained or (held_at_start and put == h + n):  # all it began holding went out
            return TURN_DRAINED, wrote, n
        return TURN_IDLE, wrote, n

    def _turn_keep(self, rest: Any) -> None:
        """What must wait (bytes or a bytearray) is the buffer; none: no buffer."""
        if rest:
            self._parts = [rest]
        else:
            self._parts = []
            self._cap = 0

    def _turn_failed(self, held: Any, exc: OSError) -> Tuple[int, int, int]:
        """A turn's read or write failed: every byte read stays; the errno."""
        self._turn_keep(held)
        return TURN_FAILED, exc.errno or 0, 0

    def _turn_consumed(self, left: int) -> None:
        """``csapp_rio_consume`` leaving ``left`` bytes: a grown buffer shrinks."""
        if self._cap > self._bufsize and left <= self._bufsize:
            self._cap = self._bufsize

    def _turn_appended(self, pending: int, room: int) -> None:
        """``csapp_rio_reserve(room)`` with ``pending`` bytes buffered (the C
        core's append of bytes that must wait)."""
        bufsize = self._bufsize
        cap = self._cap
        if cap > bufsize and room <= bufsize and pending <= bufsize - room:
            cap = bufsize
        self._cap = self._grown(cap, pending, room)

    # -- the rest of the file protocol

    @property
    def buffered(self) -> int:
        """Bytes read from the kernel and not yet returned."""
        self._check_open()
        lines = self._lines
        unread: int = lines.size - lines.tell()
        return unread + sum(map(len, self._parts))

    @property
    def closed(self) -> bool:
        if self._state == _UNINIT:
            raise ValueError(msg_not_open(_UNINIT))
        return self._state == _CLOSED

    def fileno(self) -> int:
        """The descriptor."""
        self._check_open()
        return self._fd

    @property
    def name(self) -> int:
        """The descriptor, -1 once closed (as a socket's makefile reader says)."""
        return self._fd if self._state == _OPEN else -1

    @property
    def mode(self) -> str:
        """``"rb"``: a Rio reads bytes."""
        return "rb"

    def readable(self) -> bool:
        """True: a Rio reads."""
        self._check_open()
        return True

    def writable(self) -> bool:
        """False: a Rio only reads."""
        self._check_open()
        return False

    def seekable(self) -> bool:
        """False: a Rio reads a stream."""
        self._check_open()
        return False

    def isatty(self) -> bool:
        """Whether the descriptor is a terminal."""
        self._check_open()
        return os.isatty(self._fd)

    def flush(self) -> None:
        """Nothing to flush: a Rio only reads."""
        self._check_open()

    def close(self) -> None:
        """Drop the buffer; close the descriptor only if ``closefd=True``."""
        self._call_locked(self._close, None, True)

    def _close(self, _: None) -> None:
        if self._state == _UNINIT:
            raise ValueError(msg_not_open(_UNINIT))
        if self._state == _OPEN:
            self._lines.read()  # a lock-free reader now finds it empty
            self._set_state(_CLOSED)
            self._sock = None
            self._source = _no_source
            if self._closefd:
                self._disown()
                os.close(self._fd)

    def __enter__(self) -> Rio:
        self._check_open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __sizeof__(self) -> int:
        held: int = self._lines.size
        return object.__sizeof__(self) + held + sum(map(len, self._parts))

    def __repr__(self) -> str:
        buffered = self.buffered if self._state == _OPEN else 0
        return rio_repr(self, self._state, self._fd, buffered)

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(msg_no_pickle(self))


io.BufferedIOBase.register(Rio)


# ------------------------------------------------------- CSAPP spellings


def rio_readinitb(fd: int) -> Rio:
    """A new ``Rio`` over ``fd`` (CSAPP ``rio_readinitb``)."""
    return Rio(fd)


def _check_rio(rp: Any) -> Rio:
    if not isinstance(rp, Rio):
        raise TypeError(msg_not_rio(rp))
    return rp


def rio_readlineb(rp: Rio, maxlen: int = MAXLINE) -> bytes:
    """CSAPP ``rio_readlineb``: ``rp.readlineb(maxlen)``."""
    return _check_rio(rp).readlineb(maxlen)


def rio_readnb(rp: Rio, n: int) -> bytes:
    """CSAPP ``rio_readnb``: ``rp.readnb(n)``."""
    return _check_rio(rp).readnb(n)


def _rio_echo(rp: Rio, out_fd: int, once: bool = False) -> Tuple[int, int]:
    """CSAPP echo's loop (the twin of the C core's ``csapp_rio_echo``): every
    complete line ``rp`` buffers is written back to ``out_fd``, all of them in
    one write (``csapp._shared.echo_cut``), until EOF. Returns (bytes echoed,
    ``ECHO_EOF``) at EOF; with ``once``, (bytes echoed, ``ECHO_CHUNK``) after
    the first write; (bytes echoed, ``ECHO_BLOCKED``) when a read or write
    timed out or would block. Nothing is lost then: what is not echoed yet
    stays in ``rp`` for the next call. Used by ``csapp.echo``; not public API."""
    rp = _check_rio(rp)
    out_fd = _check_fd(out_fd)
    return rp._call_locked(rp._echo, (out_fd, bool(once)))


# Locks taken by C code (list.extend over map): see _rio_echo_turns.
_lock_acquire = type(threading.Lock()).acquire


def _check_turn_rio(rp: Any, me: int, earlier: List[Any]) -> None:
    """Raise what a Rio named by an event is refused for, as the C twin
    checks, in its order; return when it is fine after all (an owner mark
    left behind with the lock free, a subclass). ``earlier``: the locks of
    the events before: the C twin, which takes them one by one, stops at
    the first Rio named twice, so such a repeat raises first."""
    error: Optional[Exception] = None
    if not isinstance(rp, Rio):
        error = TypeError(msg_not_rio(rp))
    elif not rp._direct:
        error = ValueError(MSG_ECHO_NEEDS_FD)
    elif rp._owner == me and rp._lock.locked():
        error = RuntimeError(MSG_REENTRANT)
    elif rp._state != _OPEN:
        error = ValueError(msg_not_open(rp._state))
    if error is not None:
        if len(set(earlier)) != len(earlier):
            raise RuntimeError(MSG_REENTRANT)
        raise error


def _rio_echo_turns(
    events: Any, rios: Any, scratch: Any, high_water: int, report_all: bool = False
) -> List[Tuple[int, int, int]]:
    """An event server's work for the descriptors ``epoll`` found ready (the
    twin of the C core's ``csapp_rio_echo_turn``: CSAPP echoservers'
    ``check_clients``, one ready descriptor per turn).

    ``events``: (fd, mask) pairs as ``select.epoll.poll()`` returns them;
    ``rios``: fd -> ``Rio`` over a non-blocking socket. For each pair whose
    fd is a key, one turn on that Rio's descriptor: output that waited from
    an earlier turn goes first (one write, of all the Rio holds when the
    mask has POLLOUT; if the socket does not take all of it, one read while
    the Rio holds fewer than ``high_water`` bytes, and the turn ends
    ``TURN_BLOCKED``); then one read of ``len(scratch)`` bytes, and the held
    partial line with the new bytes back in one write (``writev`` when both
    hold some), cut by ``csapp._shared.echo_cut`` as ``_rio_echo``'s loop
    applies it (a long line's piece after the last newline goes too). What
    the socket does not take stays in the Rio, in order; a Rio left with
    nothing holds no buffer. EAGAIN and EINTR end a turn; any other error
    gives (fd, ``TURN_FAILED``, errno), nothing read is lost, and the other
    turns go on.

    Returns rows (fd, state, count) in the order of events: (fd,
    ``TURN_NOT_SERVED``, mask) for an fd not in ``rios``, (fd, state, bytes
    written) for every other state but ``TURN_IDLE`` (``TURN_DRAINED``: all
    the turn began holding went out, so stop waiting for POLLOUT), and with
    ``report_all`` for an idle turn that read or wrote a byte too. Every
    argument is checked, and each served Rio's lock taken, before any turn.

    Makes exactly the system calls of the C twin (no extra read or write).
    Signal safety is the simple kind: a handler that raises between a read
    or write and its bookkeeping (Ctrl-C stopping the server) may lose the
    bytes just read or send bytes again; the locks are released whatever
    raises. Used by ``csapp.servers.event``; not public API.
    """
    if not isinstance(rios, dict):
        raise TypeError(msg_not_dict(rios))
    pairs = list(events)  # a copy: nothing can change it under the loop
    water = high_water if high_water.__class__ is int else _index(high_water)
    every = bool(report_all)
    if scratch.__class__ is bytearray:  # the server's: no view needed for its size
        size = len(scratch)
    else:
        with _byte_view(scratch, writable=True) as view:
            size = view.nbytes
    if not size:
        raise ValueError(MSG_SCRATCH_EMPTY)
    if size > _IO_MAX:
        size = _IO_MAX
    me = _get_ident()
    get = rios.get
    work: List[Tuple[Any, Any, Optional[Rio]]] = []  # per event: fd, mask, its Rio or None
    rps: List[Rio] = []  # the Rios to lock, in order
    locks: List[Any] = []
    for fd, mask in pairs:
        rp = get(fd)
        if rp is not None:
            if rp.__class__ is not Rio or rp._owner == me or rp._state != _OPEN or not rp._direct:
                _check_turn_rio(rp, me, locks)
            rps.append(rp)
            locks.append(rp._lock)
        work.append((fd, mask, rp))
    if len(locks) > 1 and len(set(locks)) != len(locks):  # one Rio twice (as re-entered)
        raise RuntimeError(MSG_REENTRANT)
    taken: List[bool] = []  # the first len(taken) of rps are locked
    try:
        if locks:
            # One C loop takes every lock (waiting for a Rio another thread is
            # in): each one taken is counted before a signal handler can run.
            taken += map(_lock_acquire, locks)
            for rp in rps:
                rp._owner = me
                if rp._state != _OPEN:  # closed by another thread meanwhile
                    raise ValueError(msg_not_open(rp._state))
        rows: List[Tuple[int, int, int]] = []
        read = os.read
        write = os.write
        no_lines = _NO_LINES
        for fd, mask, rp in work:
            if rp is None:
                rows.append((fd, TURN_NOT_SERVED, mask))
            elif rp._parts or rp._lines is not no_lines or rp._cap:
                state, count, got = rp._echo_turn(size, water, mask & _POLLOUT)
                if state != TURN_IDLE or (every and (count or got)):
                    rows.append((fd, state, count))
            else:  # the common case: the Rio holds nothing (and has no buffer)
                rfd = rp._fd
                try:
                    data = read(rfd, size)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    rows.append((fd, TURN_FAILED, exc.errno or 0))
                    continue
                n = len(data)
                if n and data[-1] == 10:  # whole lines (10: b"\n"), all of them now
                    cut = n
                else:
                    cut = echo_cut(data, not n)
                    if n - cut >= _LINE_LIMIT:  # a long line's piece after the lines
                        cut = n
                    if not cut:  # a partial line waits, or EOF
                        if n:
                            rp._turn_appended(0, n)
                            rp._parts = [data]
                            if every:
                                rows.append((fd, TURN_IDLE, 0))
                        else:
                            rows.append((fd, TURN_CLOSED, 0))
                        continue
                try:
                    put = write(rfd, data if cut == n else memoryview(data)[:cut])
                except (BlockingIOError, InterruptedError):
                    put = 0
                except OSError as exc:
                    rp._turn_appended(0, n)
                    rp._parts = [data]
                    rows.append((fd, TURN_FAILED, exc.errno or 0))
                    continue
                if put == n:
                    if every:
                        rows.append((fd, TURN_IDLE, put))
                    continue
                rp._turn_appended(0, n - put)
                rp._parts = [data[put:]]
                if put < cut:
                    rows.append((fd, TURN_BLOCKED, put))
                elif every:
                    rows.append((fd, TURN_IDLE, put))
        return rows
    finally:
        if taken:
            for rp in rps if len(taken) == len(rps) else rps[: len(taken)]:
                rp._owner = 0
                rp._lock.release()


def _rio_echo_wait(
    epoll: Any,
    rios: Any,
    scratch: Any,
    high_water: int,
    timeout: Optional[float] = None,
    report_all: bool = False,
) -> List[Tuple[int, int, int]]:
    """An event server's loop until Python is needed: ``epoll.poll(timeout)``
    and ``_rio_echo_turns`` over what it returned, again while no turn needs
    a row (the compiled twin does it in C, waiting in ``csapp_epoll_wait``).

    ``epoll`` is a ``select.epoll``, at most ``READY_MAX`` events a wait;
    the other arguments and the rows are ``_rio_echo_turns``', for the last
    wait's events. Returns no rows when ``timeout`` (seconds; ``None`` or
    negative: none) passed, or (compiled twin) when a signal interrupted a
    wait. Every argument is checked before the first wait. Used by
    ``csapp.servers.event``; not public API.
    """
    seconds = None if timeout is None else float(timeout)
    epoll.fileno()  # a closed epoll raises here, as in the compiled twin
    if not isinstance(rios, dict):
        raise TypeError(msg_not_dict(rios))
    if high_water.__class__ is not int:
        _index(high_water)
    if scratch.__class__ is not bytearray:
        with _byte_view(scratch, writable=True) as view:
            if not view.nbytes:
                raise ValueError(MSG_SCRATCH_EMPTY)
    elif not scratch:
        raise ValueError(MSG_SCRATCH_EMPTY)
    poll = epoll.poll
    if seconds is None or seconds < 0:
        while True:
            events = poll(-1, READY_MAX)
            if events:
                rows = _rio_echo_turns(events, rios, scratch, high_water, report_all)
                if rows:
                    return rows
    deadline = time.monotonic() + seconds
    wait = seconds
    while True:
        events = poll(wait, READY_MAX)
        if not events:
            return []
        rows = _rio_echo_turns(events, rios, scratch, high_water, report_all)
        if rows:
            return rows
        wait = deadline - time.monotonic()
        if wait <= 0:
            return []
