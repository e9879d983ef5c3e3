"""``StreamReader``: asyncio's reader over the RIO-style buffer of ``csapp.aio``.

Same methods, results and exceptions as ``asyncio.StreamReader`` (``readline``,
``readuntil`` with tuple separators on every Python, ``readexactly``, ``read``,
``at_eof``, ``feed_data``/``feed_eof``, ``exception``, ``async for``), plus
CSAPP's ``readlineb``. A read takes bytes out of the buffer only when it
returns them, so a cancelled read leaves every byte for the next call. When a
whole line is buffered, ``readline()`` finishes without suspending.
"""

from __future__ import annotations

import asyncio
from typing import Any, List, Optional, Tuple, Union

from .._shared import LINE_LIMIT, MAXLINE, MSG_MAXLEN
from ._buffer import StreamBuffer

__all__ = ["DEFAULT_LIMIT", "StreamReader"]

DEFAULT_LIMIT = 2**16  # asyncio's own default: 64 KiB

BytesLike = Union[bytes, bytearray, memoryview]
Separators = Union[BytesLike, Tuple[BytesLike, ...]]


def _separators(separator: Separators) -> Tuple[BytesLike, ...]:
    """The separators of ``readuntil``, shortest first, checked as asyncio does."""
    if isinstance(separator, tuple):
        seps = tuple(sorted(separator, key=len))
        if not seps:
            raise ValueError("Separator should contain at least one element")
    else:
        seps = (separator,)
    for sep in seps:
        if not isinstance(sep, (bytes, bytearray, memoryview)):
            raise TypeError(f"a bytes-like object is required, not '{type(sep).__name__}'")
    if len(seps[0]) == 0:
        raise ValueError("Separator should be at least one-byte string")
    return seps


class StreamReader(asyncio.StreamReader):
    """``asyncio.StreamReader`` on csapp's buffer; ``limit`` works as there.

    A subclass, so code that checks ``isinstance(reader, asyncio.StreamReader)``
    (``asyncio.StreamWriter`` does) accepts it; every method is its own.
    """

    _source_traceback = None

    def __init__(self, limit: int = DEFAULT_LIMIT, loop: Optional[Any] = None) -> None:
        # asyncio's __init__ is not called: its bytearray buffer would be dead weight.
        if limit <= 0:
            raise ValueError("Limit cannot be <= 0")
        self._limit = limit
        self._loop = asyncio.get_event_loop() if loop is None else loop
        self._buffer = StreamBuffer()
        self._eof = False
        self._waiter: Optional[asyncio.Future[None]] = None
        self._exception: Optional[Exception] = None
        self._transport: Optional[asyncio.BaseTransport] = None
        self._paused = False

    def __repr__(self) -> str:
        info = [f"{type(self).__module__}.{type(self).__qualname__}"]
        if self._buffer:
            info.append(f"{len(self._buffer)} bytes")
        if self._eof:
            info.append("eof")
        if self._limit != DEFAULT_LIMIT:
            info.append(f"limit={self._limit}")
        if self._waiter:
            info.append(f"waiter={self._waiter!r}")
        if self._exception:
            info.append(f"exception={self._exception!r}")
        if self._transport:
            info.append(f"transport={self._transport!r}")
        if self._paused:
            info.append("paused")
        return f"<{' '.join(info)}>"

    # -- the protocol's side

    def exception(self) -> Optional[Exception]:
        return self._exception

    def set_exception(self, exc: Exception) -> None:
        self._exception = exc
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.cancelled():
                waiter.set_exception(exc)

    def _wakeup_waiter(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.cancelled():
                waiter.set_result(None)

    def set_transport(self, transport: asyncio.BaseTransport) -> None:
        assert self._transport is None, "Transport already set"
        self._transport = transport

    def _maybe_resume_transport(self) -> None:
        if self._paused and len(self._buffer) <= self._limit:
            self._paused = False
            self._transport.resume_reading()  # type: ignore[union-attr]

    def _maybe_pause_transport(self) -> None:
        transport = self._transport
        if transport is not None and not self._paused and len(self._buffer) > 2 * self._limit:
            try:
                transport.pause_reading()  # type: ignore[attr-defined]
            except NotImplementedError:
                self._transport = None  # it cannot pause: buffer everything
            else:
                self._paused = True

    def feed_eof(self) -> None:
        self._eof = True
        self._wakeup_waiter()

    def at_eof(self) -> bool:
        """True once EOF was fed and the buffer is empty."""
        return self._eof and not self._buffer

    def feed_data(self, data: BytesLike) -> None:  # type: ignore[override]  # bytes-like
        assert not self._eof, "feed_data after feed_eof"
        if not data:
            return
        self._buffer.extend(data)
        self._wakeup_waiter()
        self._maybe_pause_transport()

    def _data_arrived(self, nbytes: int) -> None:
        """``nbytes`` were received into the buffer's free space (``buffer_updated``)."""
        self._buffer.buffer_updated(nbytes)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.cancelled():
                waiter.set_result(None)
        if not self._paused and len(self._buffer) > 2 * self._limit:
            self._maybe_pause_transport()

    async def _wait_for_data(self, func_name: str) -> None:
        """Wait until data or EOF arrives; resumes a paused transport first."""
        if self._waiter is not None:
            raise RuntimeError(
                f"{func_name}() called while another coroutine is already waiting for incoming data"
            )
        assert not self._eof, "_wait_for_data after EOF"
        if self._paused:
            self._paused = False
            self._transport.resume_reading()  # type: ignore[union-attr]
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    # -- reads

    async def readline(self) -> bytes:
        """The next line through ``\\n``; the rest at EOF; ``b""`` at EOF.

        A line longer than ``limit`` raises ``ValueError`` and is dropped, as in asyncio.
        """
        if self._exception is None:
            line = self._buffer.take_line(self._limit)
            if line is not None:
                if self._paused:
                    self._maybe_resume_transport()
                return line
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except asyncio.LimitOverrunError as exc:
            if self._buffer.startswith(b"\n", exc.consumed):
                self._buffer.discard(exc.consumed + 1)
            else:
                self._buffer.clear()
            self._maybe_resume_transport()
            raise ValueError(exc.args[0]) from None

    async def readuntil(self, separator: Separators = b"\n") -> bytes:  # type: ignore[override]
        """Through the first separator (the one that ends first, for a tuple).

        ``IncompleteReadError`` at EOF (the buffer is emptied into ``.partial``);
        ``LimitOverrunError`` past ``limit``, the data left in the buffer.
        """
        seps = _separators(separator)
        if self._exception is not None:
            raise self._exception
        min_len, max_len = len(seps[0]), len(seps[-1])
        buffer = self._buffer
        offset = 0
        while True:
            buffered = len(buffer)
            if buffered - offset >= min_len:
                if len(seps) == 1:
                    start = buffer.find(seps[0], offset)
                    end = start + min_len
                else:
                    start, end = buffer.find_any(seps, offset)
                if start >= 0:
                    break
                offset = max(0, buffered + 1 - max_len)
                if offset > self._limit:
                    raise asyncio.LimitOverrunError(
                        "Separator is not found, and chunk exceed the limit", offset
                    )
            if self._eof:
                raise asyncio.IncompleteReadError(buffer.take(len(buffer)), None)
            await self._wait_for_data("readuntil")
        if start > self._limit:
            raise asyncio.LimitOverrunError(
                "Separator is found, but chunk is longer than limit", start
            )
        chunk = buffer.take(end)
        self._maybe_resume_transport()
        return chunk

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (at least one unless at EOF); all until EOF for ``n < 0``."""
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        if n < 0:
            blocks: List[bytes] = []
            while True:
                block = await self.read(self._limit)
                if not block:
                    break
                blocks.append(block)
            return b"".join(blocks)
        if not self._buffer and not self._eof:
            await self._wait_for_data("read")
        data = self._buffer.take(n)
        self._maybe_resume_transport()
        return data

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or ``IncompleteReadError`` (with ``.partial``) at EOF."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        if self._exception is not None:
            raise self._exception
        if n == 0:
            return b""
        while len(self._buffer) < n:
            if self._eof:
                raise asyncio.IncompleteReadError(self._buffer.take(len(self._buffer)), n)
            await self._wait_for_data("readexactly")
        data = self._buffer.take(n)
        self._maybe_resume_transport()
        return data

    async def readlineb(self, maxlen: int = MAXLINE) -> bytes:
        """CSAPP ``rio_readlineb``: through ``\\n``, at most ``maxlen - 1`` bytes; ``b""`` at EOF.

        A longer line comes back in pieces of ``maxlen - 1`` bytes, never an error.
        """
        if maxlen < 2:
            raise ValueError(MSG_MAXLEN)
        while True:
            if self._exception is not None:
                raise self._exception
            line = self._buffer.take_lineb(maxlen, self._eof)
            if line is not None:
                self._maybe_resume_transport()
                return line
            await self._wait_for_data("readlineb")

    async def _echo_chunk(self) -> bytes:
        """What an echo server sends back next (``csapp._shared.echo_cut``); ``b""`` at EOF."""
        while True:
            if self._exception is not None:
                raise self._exception
            chunk = self._buffer.take_echo(self._eof, LINE_LIMIT)
            if chunk or self._eof:
                self._maybe_resume_transport()
                return chunk
            await self._wait_for_data("echo")

    def __aiter__(self) -> StreamReader:
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if line == b"":
            raise StopAsyncIteration
        return line
