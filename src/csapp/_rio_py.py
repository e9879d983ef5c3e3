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


def _read_chunk(fd: int, want: int) -> bytes:
    """One ``read`` of at most ``want`` bytes, never allocating more than a chunk."""
    return os.read(fd, want if want <= _MAX_CHUNK else _MAX_CHUNK)


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
        done = 0
        try:
            while done < total:
                done += os.write(fd, view[done:])
        except BaseException as exc:
            exc.characters_written = done
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
        self._enter_any()
        try:
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
            self._exit()

    # -- the lock: one call at a time; a signal handler re-entering is refused

    def _enter_any(self) -> None:
        me = threading.get_ident()
        if not self._lock.acquire(False):
            if self._owner == me:
                raise RuntimeError(MSG_REENTRANT)
            self._lock.acquire()
        self._owner = me

    def _enter(self) -> None:
        self._enter_any()
        if self._state != _OPEN:
            self._exit()
            raise ValueError(MSG_CLOSED if self._state == _CLOSED else MSG_UNINIT)

    def _exit(self) -> None:
        self._owner = 0
        self._lock.release()

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
        pending = bytearray(buf[pos:])
        self._buf = b""
        self._pos = 0
        try:
            while True:
                scan = len(pending)
                data = os.read(self._fd, self._bufsize)
                if not data:
                    line = bytes(pending)
                    pending = bytearray()
                    return line
                pending += data
                end = limit if limit >= 0 else len(pending)
                i = pending.find(b"\n", scan, end)
                if i >= 0:
                    cut = i + 1
                    break
                if limit >= 0 and len(pending) >= limit:
                    cut = limit
                    break
        except BaseException:
            if pending:
                self._keep(bytes(pending))
            raise
        self._buf = bytes(pending[cut:])
        return bytes(pending[:cut])

    def _read(self, n: int) -> bytes:
        """``n`` bytes, short only at EOF; ``n < 0`` reads to EOF."""
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if 0 <= n <= avail:
            self._pos = pos + n
            return buf[pos:pos + n]
        parts = [buf[pos:]] if avail else []
        got = avail
        self._buf = b""
        self._pos = 0
        bufsize = self._bufsize
        step = max(bufsize, _FIRST_CHUNK)
        try:
            while n < 0 or got < n:
                want = n - got if n >= 0 else step
                if want >= bufsize:
                    data = _read_chunk(self._fd, min(want, step))
                    if step < _MAX_CHUNK:
                        step *= 2
                else:
                    data = os.read(self._fd, bufsize)
                    if len(data) > want:
                        self._buf = data
                        self._pos = want
                        data = data[:want]
                if not data:
                    break
                parts.append(data)
                got += len(data)
        except BaseException:
            if parts:
                self._keep(b"".join(parts))
            raise
        return b"".join(parts)

    # -- CSAPP's buffered reads

    def readlineb(self, maxlen: int = MAXLINE) -> bytes:
        """The next line, at most ``maxlen - 1`` bytes (CSAPP ``rio_readlineb``)."""
        if type(maxlen) is not int:
            maxlen = _index(maxlen)
        if maxlen < 2:
            raise ValueError(MSG_MAXLEN)
        self._enter()
        try:
            return self._line(maxlen - 1)
        finally:
            self._exit()

    def readnb(self, n: int) -> bytes:
        """Up to ``n`` bytes, short only at EOF (CSAPP ``rio_readnb``)."""
        n = _index(n)
        if n < 0:
            raise ValueError(MSG_NEGATIVE_N)
        self._enter()
        try:
            return self._read(n)
        finally:
            self._exit()

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer``; the count is short only at EOF (``rio_readnb``)."""
        view = _byte_view(buffer, writable=True)
        with view:
            self._enter()
            try:
                return self._readinto(view)
            finally:
                self._exit()

    def _readinto(self, view: memoryview) -> int:
        total = view.nbytes
        buf = self._buf
        pos = self._pos
        got = min(total, len(buf) - pos)
        view[:got] = buf[pos:pos + got]
        self._pos = pos + got
        try:
            while got < total:
                want = total - got
                if want >= self._bufsize:
                    count = os.readv(self._fd, [view[got:]])
                else:
                    data = os.read(self._fd, self._bufsize)
                    count = min(len(data), want)
                    view[got:got + count] = data[:count]
                    self._buf = data
                    self._pos = count
                if count == 0:
                    break
                got += count
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
        self._enter()
        try:
            if size == 0:
                return b""
            return self._line(size if size > 0 else -1)
        finally:
            self._exit()

    def read(self, n: Optional[int] = -1) -> bytes:
        """``n`` bytes, short only at EOF; ``read()`` reads to EOF."""
        n = _size_or_all(n)
        self._enter()
        try:
            return self._read(n)
        finally:
            self._exit()

    def read1(self, n: Optional[int] = -1) -> bytes:
        """Up to ``n`` bytes with at most one ``read`` system call."""
        n = _size_or_all(n)
        self._enter()
        try:
            if n == 0:
                return b""
            avail = len(self._buf) - self._pos
            if avail:
                return self._take(avail if n < 0 else min(n, avail))
            bufsize = self._bufsize
            if n > bufsize:
                return _read_chunk(self._fd, n)
            data = os.read(self._fd, bufsize)
            self._buf = data
            self._pos = 0
            return self._take(len(data) if n < 0 else min(n, len(data)))
        finally:
            self._exit()

    def peek(self, n: int = 0) -> bytes:
        """The buffered bytes, after at most one ``read`` if none are; none consumed."""
        _index(n)
        self._enter()
        try:
            if self._pos == len(self._buf):
                self._buf = os.read(self._fd, self._bufsize)
                self._pos = 0
            return self._buf[self._pos:]
        finally:
            self._exit()

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
        self._enter()
        self._exit()
        return self

    def __next__(self) -> bytes:
        self._enter()
        try:
            line = self._line(MAXLINE - 1)
        finally:
            self._exit()
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
        self._enter_any()
        try:
            if self._state == _UNINIT:
                raise ValueError(MSG_UNINIT)
            if self._state == _OPEN:
                self._state = _CLOSED
                self._buf = b""
                self._pos = 0
                if self._closefd:
                    os.close(self._fd)
        finally:
            self._exit()

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
