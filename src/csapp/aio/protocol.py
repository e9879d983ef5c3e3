"""``StreamReaderProtocol``: the ``asyncio.BufferedProtocol`` between a transport and
``csapp.aio.StreamReader``.

``get_buffer()`` hands the event loop the free space of the reader's buffer, so
``recv_into`` writes straight into it (no ``bytes`` per read, no copy into a
second buffer); ``buffer_updated()`` wakes the waiting read. The writer side's
flow control (what ``StreamWriter.drain`` awaits) is written here: asyncio's
``FlowControlMixin`` is an ``asyncio.Protocol``, and uvloop hands data to a
subclass of ``Protocol`` through ``data_received`` even when it has
``get_buffer``.

Echo mode (``csapp.aio.echo``): while it is on, every complete line that
arrives goes back from inside ``buffer_updated`` (``_shared.echo_cut``), with
no task switch per message; reading pauses while the transport's write buffer
is over its high-water mark.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Callable, Deque, Optional

from .._shared import LINE_LIMIT
from .reader import StreamReader

__all__ = ["StreamReaderProtocol"]

ClientConnected = Callable[[StreamReader, asyncio.StreamWriter], Any]


class WriterFlowControl(asyncio.BaseProtocol):
    """What ``asyncio.StreamWriter.drain`` needs of a protocol: paused while the
    transport's write buffer is over its high-water mark, ``_drain_helper``."""

    def __init__(self, loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        self._loop = asyncio.get_event_loop() if loop is None else loop
        self._paused = False
        self._drain_waiters: Deque[asyncio.Future[None]] = collections.deque()
        self._connection_lost = False

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._connection_lost = True
        if not self._paused:
            return
        for waiter in self._drain_waiters:
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)

    async def _drain_helper(self) -> None:
        if self._connection_lost:
            raise ConnectionResetError("Connection lost")
        if not self._paused:
            return
        waiter = self._loop.create_future()
        self._drain_waiters.append(waiter)
        try:
            await waiter
        finally:
            self._drain_waiters.remove(waiter)


class StreamReaderProtocol(WriterFlowControl, asyncio.BufferedProtocol):
    """``asyncio.StreamReaderProtocol`` as a buffered protocol over csapp's buffer."""

    _source_traceback = None

    def __init__(
        self,
        stream_reader: StreamReader,
        client_connected_cb: Optional[ClientConnected] = None,
        loop: Optional[asyncio.AbstractEventLoop] = None,
    ) -> None:
        super().__init__(loop=loop)
        self._stream_reader = stream_reader
        self._buffer = stream_reader._buffer
        self._client_connected_cb = client_connected_cb
        self._task: Optional[asyncio.Task[Any]] = None
        self._transport: Optional[asyncio.BaseTransport] = None
        self._over_ssl = False
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._echo: Optional[asyncio.Future[int]] = None
        self._echoed = 0
        self._echo_write: Callable[[bytes], Any] = lambda data: None
        if type(self).get_buffer is StreamReaderProtocol.get_buffer:
            # The loop calls the buffer's own method: one Python frame less per receive.
            self.get_buffer = self._buffer.get_buffer  # type: ignore[method-assign]

    def _replace_transport(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._over_ssl = transport.get_extra_info("sslcontext") is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        reader = self._stream_reader
        reader.set_transport(transport)
        self._over_ssl = transport.get_extra_info("sslcontext") is not None
        if self._client_connected_cb is None:
            return
        writer = asyncio.StreamWriter(transport, self, reader, self._loop)  # type: ignore[arg-type]
        result = self._client_connected_cb(reader, writer)
        if asyncio.iscoroutine(result):

            def done(task: asyncio.Task[Any]) -> None:
                if task.cancelled():
                    transport.close()
                    return
                exc = task.exception()
                if exc is not None:
                    self._loop.call_exception_handler(
                        {
                            "message": "Unhandled exception in client_connected_cb",
                            "exception": exc,
                            "transport": transport,
                        }
                    )
                    transport.close()

            self._task = self._loop.create_task(result)
            self._task.add_done_callback(done)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        reader = self._stream_reader
        if exc is None:
            reader.feed_eof()
        else:
            reader.set_exception(exc)
        if not self._closed.done():
            if exc is None:
                self._closed.set_result(None)
            else:
                self._closed.set_exception(exc)
        self._finish_echo(exc)
        super().connection_lost(exc)
        self._task = None
        self._transport = None

    # -- the buffered protocol

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        if self._echo is not None:
            self._echoed += self._buffer.echo_received(nbytes, self._echo_write, LINE_LIMIT)
        else:
            self._stream_reader._data_arrived(nbytes)

    def data_received(self, data: bytes) -> None:
        """For a transport that does not use ``get_buffer`` (one copy more)."""
        if self._echo is not None:
            self._buffer.extend(data)
            self._echo_pump()
        else:
            self._stream_reader.feed_data(data)

    def eof_received(self) -> bool:
        self._stream_reader.feed_eof()
        if self._echo is not None:
            self._echo_pump()
        # With SSL, returning true has no effect (and asyncio warns): say false.
        return not self._over_ssl

    def _get_close_waiter(self, stream: Any) -> asyncio.Future[None]:
        return self._closed

    def __del__(self) -> None:
        # A connection that ended in an error nobody awaited is not an unhandled error.
        closed = getattr(self, "_closed", None)
        if closed is not None and closed.done() and not closed.cancelled():
            closed.exception()

    # -- flow control: echo mode pauses reading while the writer is paused

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._echo is not None and self._transport is not None:
            self._transport.pause_reading()  # type: ignore[attr-defined]

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._echo is not None and self._transport is not None:
            self._transport.resume_reading()  # type: ignore[attr-defined]

    # -- echo mode

    def _start_echo(self) -> asyncio.Future[int]:
        """Echo everything from now to EOF; the future's result is the bytes echoed."""
        if self._echo is not None or self._stream_reader._waiter is not None:
            raise RuntimeError("echo() called while another coroutine is reading")
        self._echo = self._loop.create_future()
        self._echoed = 0
        if self._transport is not None:
            self._echo_write = self._transport.write  # type: ignore[attr-defined]
        reader = self._stream_reader
        if reader._exception is not None:
            self._finish_echo(reader._exception)
        elif self._transport is None:
            self._finish_echo(ConnectionResetError("Connection lost"))
        else:
            if reader._paused:
                reader._paused = False
                self._transport.resume_reading()  # type: ignore[attr-defined]
            if self._paused:  # the writer is over its high-water mark already
                self._transport.pause_reading()  # type: ignore[attr-defined]
            self._echo_pump()
        return self._echo

    def _stop_echo(self) -> None:
        """Back to plain reads (echo() was cancelled): what is buffered stays."""
        if self._echo is not None:
            paused_by_echo = self._paused and self._transport is not None
            self._echo = None
            if paused_by_echo:
                self._transport.resume_reading()  # type: ignore[union-attr]

    def _echo_pump(self) -> None:
        at_eof = self._stream_reader._eof
        chunk = self._buffer.take_echo(at_eof, LINE_LIMIT)
        if chunk:
            self._echoed += len(chunk)
            self._transport.write(chunk)  # type: ignore[union-attr]
        if at_eof and not self._buffer:
            self._finish_echo(None)

    def _finish_echo(self, exc: Optional[BaseException]) -> None:
        echo, self._echo = self._echo, None
        if echo is None or echo.done():
            return
        if exc is None:
            echo.set_result(self._echoed)
        else:
            echo.set_exception(exc)
