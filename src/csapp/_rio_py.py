"""Pure-Python RIO: CSAPP's robust I/O package over ``os.read``/``os.write``.

This is the fallback twin of the compiled ``csapp._rio_c``. Both follow
``CONTRACT.md`` to the letter: same names, results, exception types and
messages. The tests run every behaviour against both.

C names mirrored: ``rio_readn``, ``rio_writen``, ``rio_t``/``rio_readinitb``,
``rio_readlineb``, ``rio_readnb``.
"""

from __future__ import annotations

import errno
import io
import os
import threading
from operator import index as _index
from typing import Any, Iterator, List, Optional

__all__ = [
    "LISTENQ",
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

RIO_BUFSIZE = 8192
MAXLINE = 8192
LISTENQ = 1024

_INT_MAX = 2**31 - 1
_MAX_BUFSIZE = 1 << 30
# Unbuffered reads of a large ``n`` start at this size and double, so memory
# grows with the data that arrives, never with ``n`` itself.
_FIRST_CHUNK = 64 * 1024
_MAX_CHUNK = 16 * 1024 * 1024

_UNINIT, _OPEN, _CLOSED = 0, 1, 2

# Messages shared word for word with the compiled twin.
MSG_CLOSED = "I/O operation on closed Rio"
MSG_UNINIT = "I/O operation on uninitialized Rio"
MSG_REENTRANT = "reentrant call inside Rio"
MSG_NEGATIVE_N = "n must be non-negative"
MSG_READ_LENGTH = "read length must be non-negative or -1"
MSG_MAXLEN = "maxlen must be at least 2"
MSG_BUFSIZE = "bufsize must be between 1 and 2**30"


def _check_fd(fd: Any) -> int:
    """A descriptor as an int; one that cannot exist is EBADF, as the kernel says."""
    fd = _index(fd)
    if not 0 <= fd <= _INT_MAX:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    return fd


def _size_or_all(n: Any) -> int:
    """``None`` → -1; other values as ``io.BufferedReader.read`` takes them."""
    if n is None:
        return -1
    n = _index(n)
    if n < -1:
        raise ValueError(MSG_READ_LENGTH)
    return n


def _byte_view(obj: Any, writable: bool) -> memoryview:
    """A flat unsigned-byte view of any C-contiguous bytes-like object, no copy."""
    try:
        view = memoryview(obj)
    except TypeError:
        raise TypeError(
            f"a bytes-like object is required, not '{type(obj).__name__}'"
        ) from None
    if writable and view.readonly:
        raise TypeError(
            f"argument must be a writable bytes-like object, not '{type(obj).__name__}'"
        )
    if not view.c_contiguous:
        raise TypeError("argument must be a C-contiguous buffer")
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
# so for any call in CPython, the compiled twin included.)


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
            exc.characters_written = sum(counts)
            raise
    return total


# ------------------------------------------------------------------ buffered


class Rio:
    """A read buffer bound to a descriptor (CSAPP ``rio_t``).

    ``Rio(fd)`` is ``rio_readinitb``. The descriptor is not owned unless
    ``closefd=True``. Every read method may be interleaved with the others;
    no byte is lost when a signal handler raises or a non-blocking descriptor
    would block: what was already read stays buffered for the next call.
    """

    __slots__ = ("_fd", "_bufsize", "_buf", "_pos", "_closefd", "_state",
                 "_lock", "_owner", "__weakref__")

    _state: int
    _owner: int
    _lock: threading.Lock

    def __new__(cls, *args: Any, **kwargs: Any) -> "Rio":
        self = super().__new__(cls)
        self._state = _UNINIT
        self._lock = threading.Lock()
        self._owner = 0
        self._buf = b""
        self._pos = 0
        self._fd = -1
        self._bufsize = RIO_BUFSIZE
        self._closefd = False
        return self

    def __init__(self, fd: int, bufsize: int = RIO_BUFSIZE, *,
                 closefd: bool = False) -> None:
        self._not_reentrant()
        with self._lock:
            try:
                self._owner = threading.get_ident()
                self._state = _UNINIT
                self._buf = b""
                self._pos = 0
                fd = _check_fd(fd)
                bufsize = _index(bufsize)
                if not 1 <= bufsize <= _MAX_BUFSIZE:
                    raise ValueError(MSG_BUFSIZE)
                self._fd = fd
                self._bufsize = bufsize
                self._closefd = bool(closefd)
                self._state = _OPEN
            finally:
                self._owner = 0

    # -- the lock: one call at a time; a signal handler re-entering is refused.
    #
    # Every method takes it as ``with self._lock: try: self._begin() ...
    # finally: self._owner = 0``. CPython runs signal handlers only at certain
    # points (after a call returns, at loop back-edges), never between
    # BEFORE_WITH acquiring the lock and the protected block, so a handler
    # that raises can never leave the lock held (an explicit ``acquire()``
    # call followed by ``try`` could: the Rio would then refuse every later
    # call as reentrant, or deadlock other threads).

    def _not_reentrant(self) -> None:
        """Called before taking the lock: a handler re-entering would deadlock."""
        if self._owner == threading.get_ident():
            raise RuntimeError(MSG_REENTRANT)

    def _begin(self) -> None:
        """Called with the lock held, inside the ``try`` that resets ``_owner``."""
        self._owner = threading.get_ident()
        if self._state != _OPEN:
            raise ValueError(MSG_CLOSED if self._state == _CLOSED else MSG_UNINIT)

    def _check_open(self) -> None:
        if self._state != _OPEN:
            raise ValueError(MSG_CLOSED if self._state == _CLOSED else MSG_UNINIT)

    # -- the buffer: self._buf[self._pos:] is read from the kernel, not returned

    def _take(self, n: int) -> bytes:
        pos = self._pos
        self._pos = pos + n
        return self._buf[pos:pos + n]

    def _keep(self, pending: bytes) -> None:
        """Put bytes already taken from the kernel back in front of the buffer."""
        rest = self._buf[self._pos:]
        self._buf = pending + rest if rest else pending
        self._pos = 0

    def _line(self, limit: int) -> bytes:
        """The next line of at most ``limit`` bytes (``limit < 0``: unbounded)."""
        buf = self._buf
        pos = self._pos
        end = pos + limit if limit >= 0 else len(buf)
        i = buf.find(b"\n", pos, end)
        if i >= 0:
            self._pos = i + 1
            return buf[pos:i + 1]
        if limit >= 0 and len(buf) - pos >= limit:
            self._pos = end
            return buf[pos:end]
        # Not enough buffered: collect in ``pending`` until a newline, the
        # limit or EOF. On any exception ``pending`` goes back to the buffer.
        fd = self._fd
        bufsize = self._bufsize
        pending = bytearray(buf[pos:])
        self._buf = b""
        self._pos = 0
        try:
            while True:
                scan = len(pending)
                chunk: List[bytes] = []
                chunk += map(os.read, (fd,), (bufsize,))  # stored by C code
                pending += chunk[0]
                if len(pending) == scan:  # EOF
                    cut = scan
                    break
                end = limit if limit >= 0 else len(pending)
                i = pending.find(b"\n", scan, end)
                if i >= 0:
                    cut = i + 1
                    break
                if limit >= 0 and len(pending) >= limit:
                    cut = limit
                    break
            # Commit with assignments only (no handler can run in between).
            self._buf = b"" + pending[cut:]
            self._pos = 0
            line = b"" + pending[:cut]
            del pending[:]
            return line
        except BaseException:
            if pending:
                self._keep(bytes(pending))
            raise

    def _read(self, n: int) -> bytes:
        """``n`` bytes, short only at EOF; ``n < 0`` reads to EOF."""
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if 0 <= n <= avail:
            self._pos = pos + n
            return buf[pos:pos + n]
        fd = self._fd
        bufsize = self._bufsize
        step = max(bufsize, _FIRST_CHUNK)
        # ``parts`` holds everything taken for this call; on any exception it
        # goes back in front of the buffer.
        parts = [buf[pos:]] if avail else []
        got = avail
        self._buf = b""
        self._pos = 0
        try:
            while n < 0 or got < n:
                want = n - got if n >= 0 else step
                if want >= bufsize:
                    size = min(want, step, _MAX_CHUNK)
                    parts += map(os.read, (fd,), (size,))  # stored by C code
                    data = parts[-1]
                    if step < _MAX_CHUNK:
                        step *= 2
                else:
                    parts += map(os.read, (fd,), (bufsize,))
                    data = parts[-1]
                    if len(data) > want:
                        # The surplus moves to the buffer: assignments only.
                        self._buf = data
                        self._pos = want
                        data = data[:want]
                        parts[-1] = data
                if not data:
                    break
                got += len(data)
            result = b"".join(parts)
            parts = []
            return result
        except BaseException:
            if parts:
                self._keep(b"".join(parts))
            raise

    # -- CSAPP's buffered reads

    def readlineb(self, maxlen: int = MAXLINE) -> bytes:
        """The next line, at most ``maxlen - 1`` bytes (CSAPP ``rio_readlineb``)."""
        if type(maxlen) is not int:
            maxlen = _index(maxlen)
        if maxlen < 2:
            raise ValueError(MSG_MAXLEN)
        self._not_reentrant()
        with self._lock:
            try:
                self._begin()
                return self._line(maxlen - 1)
            finally:
                self._owner = 0

    def readnb(self, n: int) -> bytes:
        """Up to ``n`` bytes, short only at EOF (CSAPP ``rio_readnb``)."""
        n = _index(n)
        if n < 0:
            raise ValueError(MSG_NEGATIVE_N)
        self._not_reentrant()
        with self._lock:
            try:
                self._begin()
                return self._read(n)
            finally:
                self._owner = 0

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer``; the count is short only at EOF (``rio_readnb``)."""
        view = _byte_view(buffer, writable=True)
        with view:
            self._not_reentrant()
            with self._lock:
                try:
                    self._begin()
                    return self._readinto(view)
                finally:
                    self._owner = 0

    def _readinto(self, view: memoryview) -> int:
        total = view.nbytes
        fd = self._fd
        bufsize = self._bufsize
        buf = self._buf
        pos = self._pos
        got = min(total, len(buf) - pos)
        view[:got] = buf[pos:pos + got]
        self._pos = pos + got
        counts: List[int] = []
        try:
            while got < total:
                want = total - got
                if want >= bufsize:
                    # Straight into the caller's buffer; the count is stored
                    # by C code and added to ``got`` by assignment only.
                    counts += map(os.readv, (fd,), ([view[got:]],))
                    count = counts[-1]
                    got += count
                else:
                    chunk: List[bytes] = []
                    chunk += map(os.read, (fd,), (bufsize,))
                    data = chunk[0]
                    self._buf = data          # the buffer was empty
                    self._pos = 0
                    count = want if want < len(data) else len(data)
                    view[got:got + count] = data[:count]
                    self._pos = count
                    got += count
                if count == 0:
                    break
        except BaseException:
            if got:
                self._keep(bytes(view[:got]))
            raise
        return got

    # -- io.BufferedIOBase's reads

    def readline(self, size: Optional[int] = -1) -> bytes:
        """The next line, at most ``size`` bytes when ``size >= 0`` (io semantics)."""
        if size is None:
            size = -1
        elif type(size) is not int:
            size = _index(size)
        self._not_reentrant()
        with self._lock:
            try:
                self._begin()
                if size == 0:
                    return b""
                return self._line(size if size > 0 else -1)
            finally:
                self._owner = 0

    def read(self, n: Optional[int] = -1) -> bytes:
        """``n`` bytes, short only at EOF; ``read()`` reads to EOF."""
        n = _size_or_all(n)
        self._not_reentrant()
        with self._lock:
            try:
                self._begin()
                return self._read(n)
            finally:
                self._owner = 0

    def read1(self, n: Optional[int] = -1) -> bytes:
        """Up to ``n`` bytes with at most one ``read`` system call."""
        n = _size_or_all(n)
        self._not_reentrant()
        with self._lock:
            try:
                self._begin()
                if n == 0:
                    return b""
                if self._pos == len(self._buf):
                    # One read into the buffer (stored by C code, see above).
                    size = n if n > self._bufsize else self._bufsize
                    chunk: List[bytes] = []
                    chunk += map(os.read, (self._fd,), (min(size, _MAX_CHUNK),))
                    self._buf = chunk[0]
                    self._pos = 0
                avail = len(self._buf) - self._pos
                return self._take(avail if n < 0 else min(n, avail))
            finally:
                self._owner = 0

    def peek(self, n: int = 0) -> bytes:
        """The buffered bytes, after at most one ``read`` if none are; none consumed."""
        _index(n)
        self._not_reentrant()
        with self._lock:
            try:
                self._begin()
                if self._pos == len(self._buf):
                    chunk: List[bytes] = []
                    chunk += map(os.read, (self._fd,), (self._bufsize,))
                    self._buf = chunk[0]
                    self._pos = 0
                return self._buf[self._pos:]
            finally:
                self._owner = 0

    def readlines(self, hint: Optional[int] = -1) -> List[bytes]:
        """Lines as iteration gives them, until their total reaches ``hint``."""
        hint = -1 if hint is None else _index(hint)
        lines: List[bytes] = []
        total = 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        self._not_reentrant()
        with self._lock:
            try:
                self._begin()
            finally:
                self._owner = 0
        return self

    def __next__(self) -> bytes:
        self._not_reentrant()
        with self._lock:
            try:
                self._begin()
                line = self._line(MAXLINE - 1)
            finally:
                self._owner = 0
        if not line:
            raise StopIteration
        return line

    # -- the rest of the file protocol

    @property
    def buffered(self) -> int:
        """Bytes read from the kernel and not yet returned."""
        self._check_open()
        return len(self._buf) - self._pos

    @property
    def closed(self) -> bool:
        if self._state == _UNINIT:
            raise ValueError(MSG_UNINIT)
        return self._state == _CLOSED

    def fileno(self) -> int:
        self._check_open()
        return self._fd

    def readable(self) -> bool:
        self._check_open()
        return True

    def writable(self) -> bool:
        self._check_open()
        return False

    def seekable(self) -> bool:
        self._check_open()
        return False

    def isatty(self) -> bool:
        self._check_open()
        return os.isatty(self._fd)

    def flush(self) -> None:
        self._check_open()

    def close(self) -> None:
        """Drop the buffer; close the descriptor only if ``closefd=True``."""
        self._not_reentrant()
        with self._lock:
            try:
                self._owner = threading.get_ident()
                if self._state == _UNINIT:
                    raise ValueError(MSG_UNINIT)
                if self._state == _OPEN:
                    self._state = _CLOSED
                    self._buf = b""
                    self._pos = 0
                    if self._closefd:
                        os.close(self._fd)
            finally:
                self._owner = 0

    def __enter__(self) -> "Rio":
        self._check_open()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if self._state == _OPEN and self._closefd:
            self._state = _CLOSED
            try:
                os.close(self._fd)
            except OSError:
                pass

    def __sizeof__(self) -> int:
        return object.__sizeof__(self) + len(self._buf)

    def __repr__(self) -> str:
        name = f"{type(self).__module__}.{type(self).__qualname__}"
        if self._state == _OPEN:
            return f"<{name} fd={self._fd} buffered={len(self._buf) - self._pos}>"
        return f"<{name} {'closed' if self._state == _CLOSED else 'uninitialized'}>"

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError(f"cannot pickle '{type(self).__name__}' object")


io.BufferedIOBase.register(Rio)


# ------------------------------------------------------- CSAPP spellings


def rio_readinitb(fd: int) -> Rio:
    """A new ``Rio`` over ``fd`` (CSAPP ``rio_readinitb``)."""
    return Rio(fd)


def _check_rio(rp: Any) -> Rio:
    if not isinstance(rp, Rio):
        raise TypeError(f"rp must be a Rio, not '{type(rp).__name__}'")
    return rp


def rio_readlineb(rp: Rio, maxlen: int = MAXLINE) -> bytes:
    """CSAPP ``rio_readlineb``: ``rp.readlineb(maxlen)``."""
    return _check_rio(rp).readlineb(maxlen)


def rio_readnb(rp: Rio, n: int) -> bytes:
    """CSAPP ``rio_readnb``: ``rp.readnb(n)``."""
    return _check_rio(rp).readnb(n)
