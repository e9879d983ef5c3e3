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
import sys
import threading
from operator import index as _index
from typing import Any, Iterator, List, Optional, Tuple

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

_SIZE_MAX = sys.maxsize
_ITER_LIMIT = MAXLINE - 1
_bytesio_read = io.BytesIO.read
_bytesio_readinto = io.BytesIO.readinto


def _clamp(n: int) -> int:
    """Sizes beyond any possible buffer mean "as much as there is"."""
    return _SIZE_MAX if n > _SIZE_MAX else n


def _check_maxlen(maxlen: Any) -> int:
    maxlen = _clamp(_index(maxlen))
    if maxlen < 2:
        raise ValueError(MSG_MAXLEN)
    return maxlen


def _raise_closed(limit: int = -1) -> bytes:
    raise ValueError(MSG_CLOSED)


def _raise_uninit(limit: int = -1) -> bytes:
    raise ValueError(MSG_UNINIT)


# The whole-lines buffer of every Rio that holds none: never written to.
_NO_LINES = io.BytesIO()
_NO_LINES.size = 0  # type: ignore[attr-defined]



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
    """

    __slots__ = ("_fd", "_bufsize", "_lines", "_readline", "_parts", "_closefd",
                 "_state", "_lock", "_owner", "__weakref__")

    _state: int
    _owner: int
    _lock: threading.Lock
    _parts: List[Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> "Rio":
        self = super().__new__(cls)
        self._lock = threading.Lock()
        self._owner = 0
        self._fd = -1
        self._bufsize = RIO_BUFSIZE
        self._closefd = False
        self._set_state(_UNINIT)
        return self

    def __init__(self, fd: int, bufsize: int = RIO_BUFSIZE, *,
                 closefd: bool = False) -> None:
        self._not_reentrant()
        with self._lock:
            try:
                self._owner = threading.get_ident()
                self._set_state(_UNINIT)
                fd = _check_fd(fd)
                bufsize = _index(bufsize)
                if not 1 <= bufsize <= _MAX_BUFSIZE:
                    raise ValueError(MSG_BUFSIZE)
                self._fd = fd
                self._bufsize = bufsize
                self._closefd = bool(closefd)
                self._set_state(_OPEN)
            finally:
                self._owner = 0

    def _set_state(self, state: int) -> None:
        """Empty the buffer and route the lock-free path by state."""
        self._state = state
        self._parts = []
        self._lines = _NO_LINES
        if state == _OPEN:
            self._readline = _NO_LINES.readline
        else:
            self._readline = _raise_closed if state == _CLOSED else _raise_uninit

    # -- the lock: one call at a time; a signal handler re-entering is refused.
    #
    # Every locked method takes it as ``with self._lock: try: self._begin() ...
    # finally: self._owner = 0``. CPython runs signal handlers only at certain
    # points (after a call returns, at loop back-edges), never between
    # BEFORE_WITH acquiring the lock and the protected block, so a handler
    # that raises can never leave the lock held.

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

    # -- the buffer (every method below runs with the lock held)

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

    def _read_more(self, data: bytearray, size: int) -> int:
        """One ``read`` of up to ``size`` bytes appended to ``data`` (which is
        ``_parts[0]``); returns the count, 0 at EOF."""
        self._parts += map(os.read, (self._fd,), (size,))  # stored by C code
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
                line = bytes(data[:cut])
                self._parts, self._lines, self._readline = self._split(data[cut:])
                return line
            scan = len(data)
            if not self._read_more(data, self._bufsize):  # EOF
                line = bytes(data)
                self._parts = []
                return line

    def _read(self, n: int) -> bytes:
        """``n`` bytes, short only at EOF; ``n < 0`` reads to EOF."""
        if n >= 0:
            got: List[bytes] = []
            got += map(_bytesio_read, (self._lines,), (n,))  # stored by C code
            if len(got[0]) == n:
                return got[0]
            self._parts = got + self._parts  # short: _lines is empty now
        data = self._gather()
        bufsize = self._bufsize
        step = max(bufsize, _FIRST_CHUNK)
        while n < 0 or len(data) < n:
            want = min(n - len(data), step) if n >= 0 else step
            if not self._read_more(data, min(max(want, bufsize), _MAX_CHUNK)):
                break
            if step < _MAX_CHUNK:
                step *= 2
        if 0 <= n < len(data):
            result = bytes(data[:n])
            self._parts, self._lines, self._readline = self._split(data[n:])
            return result
        result = bytes(data)
        self._parts = []
        return result

    def _readinto(self, view: memoryview) -> int:
        total = view.nbytes
        counts: List[int] = []
        counts += map(_bytesio_readinto, (self._lines,), (view,))  # stored by C code
        got = counts[0]
        if got == total:
            return got
        data = self._gather()  # _lines is empty now: only _parts is left
        take = min(total - got, len(data))
        view[got:got + take] = data[:take]
        del data[:take]
        got += take
        fd = self._fd
        bufsize = self._bufsize
        try:
            while got < total:
                want = total - got
                if want >= bufsize:  # straight into the caller's buffer
                    counts += map(os.readv, (fd,), ([view[got:]],))
                    count = counts[-1]
                    got += count
                else:
                    count = self._read_more(data, bufsize)
                    take = min(count, want)
                    view[got:got + take] = data[:take]
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
            raise

    # -- CSAPP's buffered reads

    def readlineb(self, maxlen: int = MAXLINE) -> bytes:
        """The next line, at most ``maxlen - 1`` bytes (CSAPP ``rio_readlineb``)."""
        if maxlen is MAXLINE:
            limit = _ITER_LIMIT
        elif maxlen.__class__ is int and 2 <= maxlen <= _SIZE_MAX:
            limit = maxlen - 1
        else:
            limit = _check_maxlen(maxlen) - 1
        line = self._readline(limit)
        if line:
            return line
        return self._locked_line(limit)

    def _locked_line(self, limit: int) -> bytes:
        self._not_reentrant()
        with self._lock:
            try:
                self._begin()
                return self._line(limit)
            finally:
                self._owner = 0

    def readnb(self, n: int) -> bytes:
        """Up to ``n`` bytes, short only at EOF (CSAPP ``rio_readnb``)."""
        n = _clamp(_index(n))
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
        return self._locked_line(limit)

    def read(self, n: Optional[int] = -1) -> bytes:
        """``n`` bytes, short only at EOF; ``read()`` reads to EOF."""
        n = _clamp(_size_or_all(n))
        self._not_reentrant()
        with self._lock:
            try:
                self._begin()
                return self._read(n)
            finally:
                self._owner = 0

    def read1(self, n: Optional[int] = -1) -> bytes:
        """Up to ``n`` bytes with at most one ``read`` system call."""
        n = _clamp(_size_or_all(n))
        self._not_reentrant()
        with self._lock:
            try:
                self._begin()
                if n == 0:
                    return b""
                data = self._gather()
                if not data:
                    size = n if n > self._bufsize else self._bufsize
                    self._read_more(data, min(size, _MAX_CHUNK))
                if 0 <= n < len(data):
                    result = bytes(data[:n])
                    self._parts, self._lines, self._readline = self._split(data[n:])
                    return result
                result = bytes(data)
                self._parts = []
                return result
            finally:
                self._owner = 0

    def peek(self, n: int = 0) -> bytes:
        """The buffered bytes, after at most one ``read`` if none are; none consumed."""
        _index(n)
        self._not_reentrant()
        with self._lock:
            try:
                self._begin()
                data = self._gather()
                if not data:
                    self._read_more(data, self._bufsize)
                result = bytes(data)
                self._parts, self._lines, self._readline = self._split(result)
                return result
            finally:
                self._owner = 0

    def readlines(self, hint: Optional[int] = -1) -> List[bytes]:
        """Lines as iteration gives them, until their total reaches ``hint``.

        One call under the lock: if it raises part-way (EAGAIN, a signal
        handler), the lines it took go back in front of the buffer."""
        hint = -1 if hint is None else _index(hint)
        self._not_reentrant()
        with self._lock:
            try:
                self._begin()
                return self._readlines(hint)
            finally:
                self._owner = 0

    def _readlines(self, hint: int) -> List[bytes]:
        lines: List[bytes] = []
        total = 0
        try:
            while True:
                # Stored by C code (see the note at the top): a handler that
                # raises as a line is returned finds it in ``lines``.
                lines += map(self._readline, (_ITER_LIMIT,))
                if not lines[-1]:
                    lines[-1:] = map(self._line, (_ITER_LIMIT,))
                    if not lines[-1]:
                        lines.pop()
                        return lines
                total += len(lines[-1])
                if 0 < hint <= total:
                    return lines
        except BaseException:
            self._give_back(lines)
            raise

    def _give_back(self, lines: List[bytes]) -> None:
        """Put ``lines`` back in front of everything buffered."""
        head: List[Any] = [b"".join(lines)]
        head += map(_bytesio_read, (self._lines,))  # stored by C code
        head += self._parts
        self._parts, self._lines, self._readline = head, _NO_LINES, _NO_LINES.readline

    def __iter__(self) -> Iterator[bytes]:
        self._check_open()
        return self

    def __next__(self) -> bytes:
        line = self._readline(_ITER_LIMIT)
        if line:
            return line
        line = self._locked_line(_ITER_LIMIT)
        if not line:
            raise StopIteration
        return line

    # -- the rest of the file protocol

    @property
    def buffered(self) -> int:
        """Bytes read from the kernel and not yet returned."""
        self._check_open()
        lines = self._lines
        return lines.size - lines.tell() + sum(map(len, self._parts))  # type: ignore[attr-defined]

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
                    self._lines.read()  # a lock-free reader now finds it empty
                    self._set_state(_CLOSED)
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
        lines = self._lines
        return (object.__sizeof__(self) + lines.size  # type: ignore[attr-defined]
                + sum(map(len, self._parts)))

    def __repr__(self) -> str:
        name = f"{type(self).__module__}.{type(self).__qualname__}"
        if self._state == _OPEN:
            return f"<{name} fd={self._fd} buffered={self.buffered}>"
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
