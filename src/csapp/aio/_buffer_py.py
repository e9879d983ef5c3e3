"""The receive buffer of ``csapp.aio``, in pure Python: the twin of ``csapp.aio._buffer_c``.

The bytes that arrived and were not read yet are ``data[start:end]``. The event
loop's ``recv_into`` writes straight into the free space ``data[end:]``
(``get_buffer``, then ``buffer_updated``: asyncio's ``BufferedProtocol``), so a
byte is copied once, from the kernel into the buffer, and once more into the
``bytes`` a read returns. Storage never moves while a view of it is out: it
is replaced, not resized, and ``bytearray`` itself refuses a resize of an
exported buffer.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple, Union

from .._shared import AIO_FIRST_FREE, AIO_MAX_FREE, MAX_CHUNK, MSG_MAXLEN, MSG_NBYTES, echo_cut

__all__ = ["StreamBuffer"]

# The storage of a buffer that never received, or gave back what a burst made
# it grow to: never written, never resized, so all buffers can share it (and
# the one view of it).
_EMPTY = bytearray()
_EMPTY_VIEW = memoryview(_EMPTY)

Separator = Union[bytes, bytearray, memoryview]


class StreamBuffer:
    """What ``csapp.aio.StreamReader`` buffers (CSAPP's ``rio_t`` for asyncio)."""

    __slots__ = ("_data", "_end", "_room", "_start", "_view")

    def __init__(self) -> None:
        self._data = _EMPTY
        self._view = _EMPTY_VIEW
        self._start = 0
        self._end = 0
        self._room = AIO_FIRST_FREE  # the free space the next get_buffer() offers

    def __len__(self) -> int:
        return self._end - self._start

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__qualname__} buffered={len(self)}>"

    def capacity(self) -> int:
        """Bytes of storage held (buffered and free)."""
        return len(self._data)

    # -- filling

    def _reserve(self, room: int) -> None:
        """Make ``data[end:]`` at least ``room`` bytes: compact first, else grow."""
        if self._start == self._end:
            self._start = self._end = 0
        cap = len(self._data)
        if cap - self._end >= room:
            return
        count = self._end - self._start
        if self._start and cap - count >= room:
            self._data[:count] = self._view[self._start : self._end].tobytes()
        else:
            data = bytearray(max(2 * cap, count + room))
            data[:count] = self._view[self._start : self._end]
            if self._view is not _EMPTY_VIEW:
                self._view.release()
            self._data = data
            self._view = memoryview(data)
        self._start, self._end = 0, count

    def get_buffer(self, sizehint: int = -1) -> memoryview:
        """The free space to receive into: 4 KiB at first, doubling up to 64 KiB as
        receives fill it; a ``sizehint`` above 64 KiB is honoured up to 16 MiB."""
        room = self._room if sizehint <= AIO_MAX_FREE else min(sizehint, MAX_CHUNK)
        self._reserve(room)
        return self._view[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        """``nbytes`` were written at the start of the free space."""
        free = len(self._data) - self._end
        if nbytes < 0 or nbytes > free:
            raise ValueError(MSG_NBYTES)
        if nbytes == free and self._room < AIO_MAX_FREE:
            self._room *= 2  # the kernel had more: offer more next time
        self._end += nbytes

    def extend(self, data: Separator) -> None:
        """Append ``data`` (``StreamReader.feed_data``)."""
        with memoryview(data) as view:
            count = view.nbytes
            self._reserve(count)
            self._data[self._end : self._end + count] = view.cast("B")
        self._end += count

    # -- searching

    def find(self, sep: Separator, offset: int = 0) -> int:
        """Where ``sep`` first occurs at or after ``offset``, counted from the first byte; -1."""
        if offset < 0:
            offset = 0
        at = self._data.find(sep, self._start + offset, self._end) if len(sep) else -1
        return at - self._start if at >= 0 else -1

    def startswith(self, sep: Separator, offset: int = 0) -> bool:
        """Does ``sep`` occur exactly at ``offset``?"""
        at = self._start + max(offset, 0)
        return self._data.startswith(sep, at, self._end)

    def find_any(self, seps: Tuple[Separator, ...], offset: int = 0) -> Tuple[int, int]:
        """The match of ``seps`` ending first, at or after ``offset``: (start, end) or (-1, -1)."""
        best_start, best_end = -1, -1
        for sep in seps:
            at = self.find(sep, offset)
            if at >= 0 and (best_end < 0 or at + len(sep) < best_end):
                best_start, best_end = at, at + len(sep)
        return best_start, best_end

    # -- taking

    def take(self, n: int) -> bytes:
        """Remove and return the first ``min(n, len(self))`` bytes."""
        start = self._start
        n = min(max(n, 0), self._end - start)
        out = self._view[start : start + n].tobytes()
        self._start = start + n
        if self._start == self._end:
            self._drained()
        return out

    def _drained(self) -> None:
        """Nothing is buffered: storage that grew past 64 KiB goes back (a view handed
        out keeps it alive); up to 64 KiB stays for the next receive."""
        self._start = self._end = 0
        if len(self._data) > AIO_MAX_FREE:  # it grew for a burst: do not keep that
            self._data = _EMPTY
            self._view = _EMPTY_VIEW

    def discard(self, n: int) -> None:
        """Drop the first ``min(n, len(self))`` bytes."""
        self._start += min(max(n, 0), self._end - self._start)
        if self._start == self._end:
            self._drained()

    def clear(self) -> None:
        """Drop everything buffered."""
        self._drained()

    def take_line(self, limit: int) -> Optional[bytes]:
        """The next line through ``\\n`` if it is buffered and its ``\\n`` is at most
        ``limit`` bytes in (``StreamReader.readline``'s fast path); else None."""
        start = self._start
        at = self._data.find(b"\n", start, self._end)
        if at < 0 or at - start > limit:
            return None
        out = self._view[start : at + 1].tobytes()
        self._start = at + 1
        if at + 1 == self._end:
            self._drained()
        return out

    def take_lineb(self, maxlen: int, at_eof: bool) -> Optional[bytes]:
        """CSAPP ``rio_readlineb``'s piece: through ``\\n`` within ``maxlen - 1`` bytes,
        else ``maxlen - 1`` bytes, else (at EOF) the rest; None when more must arrive."""
        if maxlen < 2:
            raise ValueError(MSG_MAXLEN)
        span = maxlen - 1
        at = self._data.find(b"\n", self._start, min(self._end, self._start + span))
        if at >= 0:
            return self.take(at - self._start + 1)
        if len(self) >= span or at_eof:
            return self.take(span)
        return None

    def take_echo(self, at_eof: bool, limit: int) -> bytes:
        """What an echo server sends back now (``csapp._shared.echo_cut``), removed."""
        return self.take(echo_cut(self._data, at_eof, limit, self._start, self._end))

    def echo_received(self, nbytes: int, write: Callable[[bytes], Any], limit: int) -> int:
        """``buffer_updated(nbytes)``, then ``write`` what echo sends back now; its length."""
        self.buffer_updated(nbytes)
        chunk = self.take(echo_cut(self._data, False, limit, self._start, self._end))
        if chunk:
            write(chunk)
        return len(chunk)
