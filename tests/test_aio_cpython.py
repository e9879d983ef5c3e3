"""CPython's read-side stream cases, restated over a real socket.

The cases of CPython 3.13's ``Lib/test/test_asyncio/test_streams.py`` (and the
``async for`` case of ``test_pep492.py``) that are about reading: the same
inputs and the same expected results, each case citing its CPython name. They
run over every ``streams`` kind -- asyncio itself (the control) and csapp.aio
over both buffer twins -- and over both loops. Where CPython calls
``feed_data`` the data here travels over a socket pair (``aioutil``), and where
CPython looks at the private ``_buffer`` the leftover is read back through the
public API instead (``rest``: half-close from the peer, ``read()`` to EOF).

Flow control is real here: a reader pauses its transport once more than twice
its limit is buffered, and nothing more arrives until a read drains it. A
CPython case that feeds more data into a paused, over-limit buffer therefore
feeds it all before reading, or (test_readuntil_limit_found_sep) is also kept as
a bare ``feed_data`` case on a reader with no transport.

Adapted rather than copied (the intent kept, the means changed):

- test_read_all_from_pipe_reader: the pipe is written by the test itself, not
  by a subprocess attached through a child watcher.
- test_streamreader(protocol)_constructor_without_loop: ``set_event_loop(None)``
  is made explicit (an implicit loop is the policy's business, per version).
- test_streamreader(protocol)_constructor_use_running/global_loop: instead of
  the private ``_loop``, a line is read through the reader on that loop; the
  protocol cases use a real reader of the kind instead of a mock.
- test_exception_cancel: instead of the private ``_waiter``, set_exception
  after the cancelled wait must not fail and the next read must raise it.
- test_open_connection_error: ``writer.transport.get_protocol()`` instead of
  the private ``writer._protocol``.
- test_IncompleteReadError_pickleable, test_LimitOverrunError_pickleable: the
  classes are asyncio's own, so the instances a reader raises are pickled.

Read-side CPython cases that do not apply here, and why (one a line):

- test_open_connection_no_loop_ssl: SSL (and no loop of its own to test).
- test_open_unix_connection_no_loop_ssl: SSL.
- test_start_tls: SSL, and the server and writer side.
- test_read_all_from_pipe_reader's subprocess half: subprocess pipes and child watchers.
- test___repr__: the ``__repr__`` string.
- test___repr__nondefault_limit: the ``__repr__`` string (limits: test_*_limit).
- test___repr__eof: the ``__repr__`` string (EOF: test_at_eof and the *_eof cases).
- test___repr__data: the ``__repr__`` string (buffered data: every ``rest`` check).
- test___repr__exception: the ``__repr__`` string (test_exception covers it).
- test___repr__waiter: the ``__repr__`` string and a private ``_waiter`` set by hand.
- test___repr__transport: the ``__repr__`` string and a mock private ``_transport``.
- legacy ``loop=`` deprecation cases: CPython 3.13 has none left (``loop=``
  is used here only as the supported way to name the loop).
- test_start_server, test_start_unix_server: server and writer side.
- test_multiple_drain, test_drain_raises: writer flow control (drain).
- test_wait_closed_on_close, test_wait_closed_on_close_with_unread_data: writer close.
- test_async_writer_api, test_async_writer_api_exception_after_close: writer side.
- test_unclosed_resource_warnings, test_loop_is_closed_resource_warnings: writer finalizer.
- test_unclosed_server_resource_warnings: writer finalizer on a server.
- test_unhandled_exception, test_unhandled_cancel: server callback errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import socket
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from support.aioutil import LoopFactory, SocketReader, run, socket_reader

pytestmark = pytest.mark.usefixtures("watchdog")

DATA = b"line1\nline2\nline3\n"
CASE_TIMEOUT = 10.0  # seconds: every case here takes milliseconds
RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nTest message"


def needs_tuple_separators(streams: SimpleNamespace) -> None:
    """Tuple separators: csapp.aio everywhere, asyncio only from 3.13."""
    if streams.kind == "asyncio" and sys.version_info < (3, 13):
        pytest.skip("tuple separators are asyncio 3.13+")


@contextlib.asynccontextmanager
async def reader_on_socket(
    streams: SimpleNamespace, limit: int = 2**16
) -> AsyncIterator[SocketReader]:
    """A reader of ``streams`` on a socket pair, closed whatever happens."""
    pair = await socket_reader(streams, limit=limit)
    try:
        yield pair
    finally:
        pair.close()
        await asyncio.sleep(0)


def half_close(pair: SocketReader) -> None:
    """Shut the peer's write side without waiting for EOF to arrive (a paused
    transport only delivers it once a read has drained the buffer)."""
    pair.peer.shutdown(socket.SHUT_WR)


async def rest(pair: SocketReader) -> bytes:
    """What the reader still holds: half-close from the peer, read to EOF."""
    half_close(pair)
    data: bytes = await pair.reader.read()
    return data


def loop_errors() -> List[Dict[str, Any]]:
    """The running loop's exception handler calls, collected from now on."""
    messages: List[Dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: messages.append(ctx))
    return messages


SocketBody = Callable[[SocketReader], Awaitable[None]]
StreamsCase = Callable[[SimpleNamespace, LoopFactory], None]


def socket_case(limit: int = 2**16, tuples: bool = False) -> Callable[[SocketBody], StreamsCase]:
    """Make ``async def test_x(pair)`` a test over every streams kind and loop:
    ``pair`` is a reader of the kind on a socket pair (``limit``), closed
    afterwards; ``tuples`` skips the kinds without tuple separators."""

    def decorate(body: SocketBody) -> StreamsCase:
        def case(streams: SimpleNamespace, loop_factory: LoopFactory) -> None:
            if tuples:
                needs_tuple_separators(streams)

            async def main() -> None:
                async with reader_on_socket(streams, limit) as pair:
                    await body(pair)

            run(loop_factory, main, CASE_TIMEOUT)

        case.__name__ = case.__qualname__ = body.__name__
        case.__doc__ = body.__doc__
        return case

    return decorate


async def started(awaitable: Awaitable[Any]) -> asyncio.Future[Any]:
    """``awaitable`` as a task that has had its first turn (so it waits now)."""
    task = asyncio.ensure_future(awaitable)
    await asyncio.sleep(0)
    return task


async def feed_each(pair: SocketReader, chunks: List[bytes]) -> None:
    """Feed ``chunks`` one after the other, each one received before the next."""
    for chunk in chunks:
        await pair.feed(chunk)


async def http_like_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The stand-in for CPython's test HTTP server: one request, one reply."""
    try:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(RESPONSE)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def until_client_leaves(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A server that says nothing and closes once the client has gone."""
    try:
        await reader.read()
    except ConnectionError:
        pass
    finally:
        writer.close()


# -- feed_data, read ---------------------------------------------------------


def test_feed_empty_data(streams: SimpleNamespace, loop_factory: LoopFactory) -> None:
    """CPython test_streams: test_feed_empty_data."""

    async def main() -> None:
        stream = streams.StreamReader(loop=asyncio.get_running_loop())
        stream.feed_data(b"")
        assert not stream.at_eof()
        stream.feed_eof()
        assert stream.at_eof()
        assert await stream.read() == b""

    run(loop_factory, main, CASE_TIMEOUT)


@socket_case()
async def test_feed_nonempty_data(pair: SocketReader) -> None:
    """CPython test_streams: test_feed_nonempty_data."""
    await pair.feed(DATA)
    assert await rest(pair) == DATA


def test_feed_nonempty_data_bare(streams: SimpleNamespace, loop_factory: LoopFactory) -> None:
    """CPython test_streams: test_feed_nonempty_data (feed_data, no transport)."""

    async def main() -> None:
        stream = streams.StreamReader(loop=asyncio.get_running_loop())
        stream.feed_data(DATA)
        stream.feed_eof()
        assert await stream.read() == DATA

    run(loop_factory, main, CASE_TIMEOUT)


@socket_case()
async def test_read_zero(pair: SocketReader) -> None:
    """CPython test_streams: test_read_zero."""
    await pair.feed(DATA)
    assert await pair.reader.read(0) == b""
    assert await rest(pair) == DATA


@socket_case()
async def test_read(pair: SocketReader) -> None:
    """CPython test_streams: test_read."""
    task = await started(pair.reader.read(30))
    assert not task.done()
    await pair.feed(DATA)
    assert await task == DATA
    assert await rest(pair) == b""


@socket_case()
async def test_read_line_breaks(pair: SocketReader) -> None:
    """CPython test_streams: test_read_line_breaks."""
    await pair.feed(b"line1")
    await pair.feed(b"line2")
    assert await pair.reader.read(5) == b"line1"
    assert await rest(pair) == b"line2"


@socket_case()
async def test_read_eof(pair: SocketReader) -> None:
    """CPython test_streams: test_read_eof."""
    task = await started(pair.reader.read(1024))
    assert not task.done()
    await pair.feed_eof()
    assert await task == b""
    assert await pair.reader.read() == b""


@socket_case()
async def test_read_until_eof(pair: SocketReader) -> None:
    """CPython test_streams: test_read_until_eof."""
    task = await started(pair.reader.read(-1))
    await pair.feed(b"chunk1\n")
    await pair.feed(b"chunk2")
    assert not task.done()
    await pair.feed_eof()
    assert await task == b"chunk1\nchunk2"
    assert await pair.reader.read() == b""


@pytest.mark.parametrize(
    "method, args, first",
    [("read", (2,), b"li"), ("readline", (), b"line\n"), ("readexactly", (2,), b"li")],
)
def test_read_exception(
    streams: SimpleNamespace,
    loop_factory: LoopFactory,
    method: str,
    args: Tuple[int, ...],
    first: bytes,
) -> None:
    """CPython test_streams: test_read_exception, test_readline_exception and
    test_readexactly_exception (``method`` is the read each one calls)."""

    async def main() -> None:
        async with reader_on_socket(streams) as pair:
            read = getattr(pair.reader, method)
            await pair.feed(b"line\n")
            assert await read(*args) == first
            pair.reader.set_exception(ValueError())
            with pytest.raises(ValueError):
                await read(*args)

    run(loop_factory, main, CASE_TIMEOUT)


def test_invalid_limit(streams: SimpleNamespace, loop_factory: LoopFactory) -> None:
    """CPython test_streams: test_invalid_limit."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(ValueError, match="imit"):
            streams.StreamReader(limit=0, loop=loop)
        with pytest.raises(ValueError, match="imit"):
            streams.StreamReader(limit=-1, loop=loop)

    run(loop_factory, main, CASE_TIMEOUT)


@pytest.mark.parametrize("method", ["read", "readexactly"])
def test_read_limit(streams: SimpleNamespace, loop_factory: LoopFactory, method: str) -> None:
    """CPython test_streams: test_read_limit and test_readexactly_limit
    (``method`` is the read each one calls)."""

    async def main() -> None:
        async with reader_on_socket(streams, limit=3) as pair:
            await pair.feed(b"chunk")
            assert await getattr(pair.reader, method)(5) == b"chunk"
            assert await rest(pair) == b""

    run(loop_factory, main, CASE_TIMEOUT)


# -- readline ----------------------------------------------------------------


@socket_case()
async def test_readline(pair: SocketReader) -> None:
    """CPython test_streams: test_readline."""
    await pair.feed(b"chunk1 ")
    task = await started(pair.reader.readline())
    await pair.feed(b"chunk2 ")
    await pair.feed(b"chunk3 ")
    assert not task.done()
    await pair.feed(b"\n chunk4")
    assert await task == b"chunk1 chunk2 chunk3 \n"
    assert await rest(pair) == b" chunk4"


def test_readline_limit_with_existing_data(
    streams: SimpleNamespace, loop_factory: LoopFactory
) -> None:
    """CPython test_streams: test_readline_limit_with_existing_data."""
    rounds = [
        # The over-long line is gone, the next one is still there.
        ([b"li", b"ne1\nline2\n"], b"line2\n"),
        # No separator and more than the limit: the whole buffer goes.
        ([b"li", b"ne1", b"li"], b""),
    ]

    async def main() -> None:
        for chunks, left in rounds:
            async with reader_on_socket(streams, limit=3) as pair:
                await feed_each(pair, chunks)
                with pytest.raises(ValueError):
                    await pair.reader.readline()
                assert await rest(pair) == left

    run(loop_factory, main, CASE_TIMEOUT)


@socket_case()
async def test_at_eof(pair: SocketReader) -> None:
    """CPython test_streams: test_at_eof."""
    assert not pair.reader.at_eof()
    await pair.feed(b"some data\n")
    assert not pair.reader.at_eof()
    await pair.reader.readline()
    assert not pair.reader.at_eof()
    await pair.feed(b"some data\n")
    await pair.feed_eof()
    assert not pair.reader.at_eof()  # EOF seen, but data still buffered
    await pair.reader.readline()
    assert pair.reader.at_eof()


def test_readline_limit(streams: SimpleNamespace, loop_factory: LoopFactory) -> None:
    """CPython test_streams: test_readline_limit."""
    rounds = [
        # One line longer than the limit, no separator within it: all of it goes.
        ([b"chunk1", b"chunk2", b"chunk3\n"], b""),
        # The separator past the limit: the line goes, the next one stays.
        ([b"chunk1", b"chunk2\n", b"chunk3\n"], b"chunk3\n"),
    ]

    async def main() -> None:
        for chunks, left in rounds:
            async with reader_on_socket(streams, limit=7) as pair:
                await feed_each(pair, chunks)
                half_close(pair)
                with pytest.raises(ValueError):
                    await pair.reader.readline()
                assert await pair.reader.read() == left

        # The limit is strict: 7 bytes and the separator pass, 8 do not.
        async with reader_on_socket(streams, limit=7) as pair:
            await pair.feed(b"1234567\n")
            assert await pair.reader.readline() == b"1234567\n"
            for too_long in (b"12345678\n", b"12345678"):
                await pair.feed(too_long)
                with pytest.raises(ValueError):
                    await pair.reader.readline()
            assert await rest(pair) == b""

    run(loop_factory, main, CASE_TIMEOUT)


@socket_case()
async def test_readline_nolimit_nowait(pair: SocketReader) -> None:
    """CPython test_streams: test_readline_nolimit_nowait."""
    await pair.feed(DATA[:6])
    await pair.feed(DATA[6:])
    assert await pair.reader.readline() == b"line1\n"
    assert await rest(pair) == b"line2\nline3\n"


@socket_case()
async def test_readline_eof(pair: SocketReader) -> None:
    """CPython test_streams: test_readline_eof."""
    await pair.feed(b"some data")
    await pair.feed_eof()
    assert await pair.reader.readline() == b"some data"


@socket_case()
async def test_readline_empty_eof(pair: SocketReader) -> None:
    """CPython test_streams: test_readline_empty_eof."""
    await pair.feed_eof()
    assert await pair.reader.readline() == b""


@socket_case()
async def test_readline_read_byte_count(pair: SocketReader) -> None:
    """CPython test_streams: test_readline_read_byte_count."""
    await pair.feed(DATA)
    await pair.reader.readline()
    assert await pair.reader.read(7) == b"line2\nl"
    assert await rest(pair) == b"ine3\n"


@socket_case()
async def test_async_for_lines(pair: SocketReader) -> None:
    """CPython test_pep492: StreamReaderTests.test_readline (``async for``)."""
    await pair.feed(b"line1\nline2\nline3")
    await pair.feed_eof()
    lines = [line async for line in pair.reader]
    assert lines == [b"line1\n", b"line2\n", b"line3"]


# -- readuntil ---------------------------------------------------------------


@socket_case()
async def test_readuntil_separator(pair: SocketReader) -> None:
    """CPython test_streams: test_readuntil_separator (the bytes separator)."""
    with pytest.raises(ValueError, match="Separator should be"):
        await pair.reader.readuntil(separator=b"")


@socket_case(tuples=True)
async def test_readuntil_separator_tuple(pair: SocketReader) -> None:
    """CPython test_streams: test_readuntil_separator (the tuple separators)."""
    with pytest.raises(ValueError, match="Separator should be"):
        await pair.reader.readuntil(separator=(b"",))
    with pytest.raises(ValueError, match="Separator should contain"):
        await pair.reader.readuntil(separator=())


@socket_case()
async def test_readuntil_multi_chunks(pair: SocketReader) -> None:
    """CPython test_streams: test_readuntil_multi_chunks."""
    await pair.feed(b"lineAAA")
    assert await pair.reader.readuntil(separator=b"AAA") == b"lineAAA"

    await pair.feed(b"lineAAA")
    assert await pair.reader.readuntil(b"AAA") == b"lineAAA"

    await pair.feed(b"lineAAAxxx")
    assert await pair.reader.readuntil(b"AAA") == b"lineAAA"
    assert await rest(pair) == b"xxx"


MULTI_CHUNKS_1 = [
    ([b"QWEaa", b"XYaa", b"a"], b"QWEaaXYaaa"),
    ([b"QWEaa", b"XYa", b"aa"], b"QWEaaXYaaa"),
    ([b"aaa"], b"aaa"),
    ([b"Xaaa"], b"Xaaa"),
    ([b"XXX", b"a", b"a", b"a"], b"XXXaaa"),
]


@socket_case()
async def test_readuntil_multi_chunks_1(pair: SocketReader) -> None:
    """CPython test_streams: test_readuntil_multi_chunks_1."""
    for chunks, expected in MULTI_CHUNKS_1:
        await feed_each(pair, chunks)
        assert await pair.reader.readuntil(b"aaa") == expected
    assert await rest(pair) == b""


@socket_case()
async def test_readuntil_multi_chunks_1_waiting(pair: SocketReader) -> None:
    """CPython test_streams: test_readuntil_multi_chunks_1 (the chunks arrive
    while readuntil waits, so the separator straddles the arrivals)."""
    for chunks, expected in MULTI_CHUNKS_1:
        if len(chunks) == 1:
            continue  # nothing to straddle
        task = await started(pair.reader.readuntil(b"aaa"))
        for chunk in chunks:
            assert not task.done()
            await pair.feed(chunk)
        assert await task == expected
    assert await rest(pair) == b""


@socket_case()
async def test_readuntil_eof(pair: SocketReader) -> None:
    """CPython test_streams: test_readuntil_eof."""
    data = b"some dataAA"
    await pair.feed(data)
    await pair.feed_eof()
    with pytest.raises(asyncio.IncompleteReadError, match="undefined expected bytes") as cm:
        await pair.reader.readuntil(b"AAA")
    assert cm.value.partial == data
    assert cm.value.expected is None
    assert await pair.reader.read() == b""


def test_readuntil_limit_found_sep(streams: SimpleNamespace, loop_factory: LoopFactory) -> None:
    """CPython test_streams: test_readuntil_limit_found_sep (over a socket; the
    buffer is over the limit and paused, so the second round is fed whole)."""

    async def main() -> None:
        for data, found in [(b"some dataAA", "not found"), (b"some dataAAA", "is found")]:
            async with reader_on_socket(streams, limit=3) as pair:
                await pair.feed(data)
                with pytest.raises(asyncio.LimitOverrunError, match=found) as cm:
                    await pair.reader.readuntil(b"AAA")
                assert cm.value.consumed == 9
                # Over the limit, the data stays to be read again.
                assert await rest(pair) == data

    run(loop_factory, main, CASE_TIMEOUT)


def test_readuntil_limit_found_sep_bare(
    streams: SimpleNamespace, loop_factory: LoopFactory
) -> None:
    """CPython test_streams: test_readuntil_limit_found_sep (feed_data, no
    transport: the separator completes in a buffer already over the limit)."""

    async def main() -> None:
        stream = streams.StreamReader(limit=3, loop=asyncio.get_running_loop())
        stream.feed_data(b"some dataAA")
        with pytest.raises(asyncio.LimitOverrunError, match="not found"):
            await stream.readuntil(b"AAA")

        stream.feed_data(b"A")
        with pytest.raises(asyncio.LimitOverrunError, match="is found"):
            await stream.readuntil(b"AAA")

        stream.feed_eof()
        assert await stream.read() == b"some dataAAA"

    run(loop_factory, main, CASE_TIMEOUT)


@socket_case(tuples=True)
async def test_readuntil_multi_separator(pair: SocketReader) -> None:
    """CPython test_streams: test_readuntil_multi_separator."""
    await pair.feed(b"line 1\nline 2\r")
    assert await pair.reader.readuntil((b"\r", b"\n")) == b"line 1\n"
    assert await pair.reader.readuntil((b"\r", b"\n")) == b"line 2\r"

    # The earliest end wins, even when it is the longer separator.
    await pair.feed(b"ABCDEFG")
    assert await pair.reader.readuntil((b"DEF", b"BCDE")) == b"ABCDE"
    assert await rest(pair) == b"FG"


@socket_case(limit=3, tuples=True)
async def test_readuntil_multi_separator_limit(pair: SocketReader) -> None:
    """CPython test_streams: test_readuntil_multi_separator_limit."""
    await pair.feed(b"some dataA")
    with pytest.raises(asyncio.LimitOverrunError, match="is found") as cm:
        await pair.reader.readuntil((b"A", b"ome dataA"))
    assert cm.value.consumed == 9
    assert await rest(pair) == b"some dataA"


@socket_case(tuples=True)
async def test_readuntil_multi_separator_negative_offset(pair: SocketReader) -> None:
    """CPython test_streams: test_readuntil_multi_separator_negative_offset."""
    await pair.feed(b"data")
    task = await started(pair.reader.readuntil((b"A", b"long sep")))
    await pair.feed(b"Z")
    assert not task.done()
    await pair.feed(b"Aaaa")
    assert await task == b"dataZA"
    assert await rest(pair) == b"aaa"


@socket_case()
async def test_readuntil_bytearray(pair: SocketReader) -> None:
    """CPython test_streams: test_readuntil_bytearray."""
    await pair.feed(b"some data\r\n")
    assert await pair.reader.readuntil(bytearray(b"\r\n")) == b"some data\r\n"
    assert await rest(pair) == b""


# -- readexactly -------------------------------------------------------------


@socket_case()
async def test_readexactly_zero_or_less(pair: SocketReader) -> None:
    """CPython test_streams: test_readexactly_zero_or_less."""
    await pair.feed(DATA)
    assert await pair.reader.readexactly(0) == b""
    with pytest.raises(ValueError, match="less than zero"):
        await pair.reader.readexactly(-1)
    assert await rest(pair) == DATA


@socket_case()
async def test_readexactly(pair: SocketReader) -> None:
    """CPython test_streams: test_readexactly."""
    task = await started(pair.reader.readexactly(2 * len(DATA)))
    await pair.feed(DATA)
    assert not task.done()
    await pair.feed(DATA)
    await pair.feed(DATA)
    assert await task == DATA + DATA
    assert await rest(pair) == DATA


@socket_case()
async def test_readexactly_eof(pair: SocketReader) -> None:
    """CPython test_streams: test_readexactly_eof."""
    n = 2 * len(DATA)
    task = await started(pair.reader.readexactly(n))
    await pair.feed(DATA)
    await pair.feed_eof()
    with pytest.raises(asyncio.IncompleteReadError) as cm:
        await task
    assert cm.value.partial == DATA
    assert cm.value.expected == n
    assert str(cm.value) == "18 bytes read on a total of 36 expected bytes"
    assert await pair.reader.read() == b""


# -- exception(), set_exception(), waiters -----------------------------------


@socket_case()
async def test_exception(pair: SocketReader) -> None:
    """CPython test_streams: test_exception."""
    assert pair.reader.exception() is None
    exc = ValueError()
    pair.reader.set_exception(exc)
    assert pair.reader.exception() is exc


@socket_case()
async def test_exception_waiter(pair: SocketReader) -> None:
    """CPython test_streams: test_exception_waiter."""

    async def set_err() -> None:
        pair.reader.set_exception(ValueError())

    t1 = asyncio.ensure_future(pair.reader.readline())
    t2 = asyncio.ensure_future(set_err())
    await asyncio.wait([t1, t2])
    with pytest.raises(ValueError):
        t1.result()


async def cancel_a_waiting_readline(pair: SocketReader) -> None:
    """Start a readline that has to wait, cancel it, see it cancelled."""
    task = await started(pair.reader.readline())
    task.cancel()
    await asyncio.sleep(0)
    assert task.cancelled()


def test_exception_cancel(streams: SimpleNamespace, loop_factory: LoopFactory) -> None:
    """CPython test_streams: test_exception_cancel (the private ``_waiter``
    check restated: set_exception after a cancelled wait neither fails nor
    reaches the loop's exception handler, and the next read sees it)."""

    async def main() -> None:
        messages = loop_errors()
        async with reader_on_socket(streams) as pair:
            await cancel_a_waiting_readline(pair)
            pair.reader.set_exception(RuntimeError("message"))
            await asyncio.sleep(0)
            with pytest.raises(RuntimeError, match="message"):
                await pair.reader.readline()
        assert messages == []

    run(loop_factory, main, CASE_TIMEOUT)


@socket_case()
async def test_read_after_cancelled_wait(pair: SocketReader) -> None:
    """CPython test_streams: test_exception_cancel (the other half: after a
    cancelled wait a new read may wait again and gets the data)."""
    await cancel_a_waiting_readline(pair)
    again = await started(pair.reader.readline())
    await pair.feed(b"line\n")
    assert await again == b"line\n"


def test_exceptions_pickleable(streams: SimpleNamespace, loop_factory: LoopFactory) -> None:
    """CPython test_streams: test_IncompleteReadError_pickleable and
    test_LimitOverrunError_pickleable (on the instances a reader raises)."""

    async def main() -> List[BaseException]:
        raised: List[BaseException] = []
        async with reader_on_socket(streams, limit=3) as pair:
            await pair.feed(b"some dataAA")
            try:
                await pair.reader.readuntil(b"AAA")
            except asyncio.LimitOverrunError as exc:
                raised.append(exc)
            await pair.reader.readexactly(8)
            half_close(pair)
            try:
                await pair.reader.readexactly(10)
            except asyncio.IncompleteReadError as exc:
                raised.append(exc)
        return raised

    overrun, incomplete = run(loop_factory, main, CASE_TIMEOUT)
    assert type(overrun) is asyncio.LimitOverrunError
    assert type(incomplete) is asyncio.IncompleteReadError
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(overrun, protocol=proto))
        assert str(copy) == str(overrun)
        assert copy.consumed == overrun.consumed == 9
        copy = pickle.loads(pickle.dumps(incomplete, protocol=proto))
        assert str(copy) == str(incomplete)
        assert copy.partial == incomplete.partial == b"aAA"
        assert copy.expected == incomplete.expected == 10


# -- the reader behind open_connection, a protocol, a pipe -------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def connected(
    streams: SimpleNamespace, handler: Handler, family: str = "tcp", where: Optional[Path] = None
) -> AsyncIterator[Tuple[Any, asyncio.StreamWriter]]:
    """A reader and writer of ``streams`` connected to an asyncio server
    running ``handler``: over TCP on localhost, or over a Unix socket in
    ``where``; the loop's exception handler must not have been called by the
    time the server is closed."""
    messages = loop_errors()
    path = "" if where is None else str(where / "s")
    if family == "tcp":
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
    else:
        server = await asyncio.start_unix_server(handler, path)
    async with server:
        if family == "tcp":
            host, port = server.sockets[0].getsockname()[:2]
            yield await streams.open_connection(host, port)
        else:
            yield await streams.open_unix_connection(path)
    assert messages == []


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_open_connection(
    streams: SimpleNamespace, loop_factory: LoopFactory, tmp_path: Path, family: str
) -> None:
    """CPython test_streams: test_open_connection and test_open_unix_connection
    (their _basetest_open_connection, once connected)."""

    async def main() -> None:
        async with connected(streams, http_like_server, family, tmp_path) as (reader, writer):
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            assert await reader.readline() == b"HTTP/1.0 200 OK\r\n"
            data = await reader.read()
            assert data.endswith(b"\r\n\r\nTest message")
            writer.close()
            await asyncio.sleep(0)

    run(loop_factory, main, CASE_TIMEOUT)


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_open_connection_error(
    streams: SimpleNamespace, loop_factory: LoopFactory, tmp_path: Path, family: str
) -> None:
    """CPython test_streams: test_open_connection_error and
    test_open_unix_connection_error (their _basetest_open_connection_error,
    once connected)."""

    async def main() -> None:
        async with connected(streams, http_like_server, family, tmp_path) as (reader, writer):
            writer.transport.get_protocol().connection_lost(ZeroDivisionError())
            with pytest.raises(ZeroDivisionError):
                await reader.read()
            writer.close()
            await asyncio.sleep(0)
            await asyncio.sleep(0)

    run(loop_factory, main, CASE_TIMEOUT)


def test_connection_lost_error_on_socket(
    streams: SimpleNamespace, loop_factory: LoopFactory
) -> None:
    """CPython test_streams: test_open_connection_error (on the socket pair's
    protocol: a waiting read gets the error too)."""

    async def main() -> None:
        messages = loop_errors()
        async with reader_on_socket(streams) as pair:
            task = await started(pair.reader.read())
            pair.protocol.connection_lost(ZeroDivisionError())
            with pytest.raises(ZeroDivisionError):
                await task
            with pytest.raises(ZeroDivisionError):
                await pair.reader.readline()
        await asyncio.sleep(0)
        assert messages == []

    run(loop_factory, main, CASE_TIMEOUT)


def test_eof_feed_when_closing_writer(streams: SimpleNamespace, loop_factory: LoopFactory) -> None:
    """CPython test_streams: test_eof_feed_when_closing_writer."""

    async def main() -> None:
        async with connected(streams, until_client_leaves) as (reader, writer):
            writer.close()
            await writer.wait_closed()
            assert reader.at_eof()
            assert await reader.read() == b""

    run(loop_factory, main, CASE_TIMEOUT)


def test_read_all_from_pipe_reader(streams: SimpleNamespace, loop_factory: LoopFactory) -> None:
    """CPython test_streams: test_read_all_from_pipe_reader (the test writes
    the pipe itself instead of a child process)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        rfd, wfd = os.pipe()
        with open(rfd, "rb", 0) as pipe:
            try:
                reader = streams.StreamReader(loop=loop, limit=1)
                protocol = streams.StreamReaderProtocol(reader, loop=loop)
                transport, _ = await loop.connect_read_pipe(lambda: protocol, pipe)
                try:
                    os.write(wfd, b"data")
                    os.close(wfd)
                    wfd = -1
                    assert await reader.read(-1) == b"data"
                finally:
                    transport.close()
                    await asyncio.sleep(0)
            finally:
                if wfd >= 0:
                    os.close(wfd)

    run(loop_factory, main, CASE_TIMEOUT)


# -- which loop a reader or protocol belongs to ------------------------------

# Each pair of cases leaves the loop out of one constructor, the one it is
# named after, and names it to the other.
IMPLICIT = ["streamreader", "streamreaderprotocol"]


def reader_and_protocol(
    streams: SimpleNamespace, loop: asyncio.AbstractEventLoop, implicit: str
) -> Tuple[Any, Any]:
    """A reader of ``streams`` and its protocol, ``loop`` given to the one
    that ``implicit`` does not name."""
    if implicit == "streamreader":
        reader = streams.StreamReader()
        return reader, streams.StreamReaderProtocol(reader, loop=loop)
    reader = streams.StreamReader(loop=loop)
    return reader, streams.StreamReaderProtocol(reader)


async def read_line_through(reader: Any, protocol: Any) -> bytes:
    """Connect ``protocol`` to a socket pair and read one line with ``reader``:
    a reader or protocol bound to the wrong loop fails here."""
    loop = asyncio.get_running_loop()
    ours, peer = socket.socketpair()
    transport, _ = await loop.connect_accepted_socket(lambda: protocol, sock=ours)
    try:
        task = await started(reader.readline())
        peer.sendall(b"a line\n")
        line: bytes = await task
        return line
    finally:
        transport.close()
        peer.close()
        await asyncio.sleep(0)


@contextlib.contextmanager
def no_deprecation_warnings() -> Iterator[None]:
    """Deprecation warnings about the current loop silenced (they vary by version)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


@contextlib.contextmanager
def global_loop(loop_factory: LoopFactory) -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh loop set as the current one (not running), closed afterwards."""
    loop = loop_factory()
    asyncio.set_event_loop(loop)
    try:
        with no_deprecation_warnings():
            yield loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()


@contextlib.contextmanager
def raises_without_loop() -> Iterator[None]:
    """No current loop, and the body must fail for the want of one."""
    asyncio.set_event_loop(None)
    with no_deprecation_warnings():
        with pytest.raises(RuntimeError, match="no current event loop"):
            yield


def test_streamreader_constructor_without_loop(streams: SimpleNamespace) -> None:
    """CPython test_streams: test_streamreader_constructor_without_loop."""
    with raises_without_loop():
        streams.StreamReader()


def test_streamreaderprotocol_constructor_without_loop(
    streams: SimpleNamespace, loop_factory: LoopFactory
) -> None:
    """CPython test_streams: test_streamreaderprotocol_constructor_without_loop
    (a real reader of the kind instead of a mock)."""
    loop = loop_factory()
    try:
        reader = streams.StreamReader(loop=loop)
        with raises_without_loop():
            streams.StreamReaderProtocol(reader)
    finally:
        loop.close()


@pytest.mark.parametrize("implicit", IMPLICIT)
def test_constructor_use_running_loop(
    streams: SimpleNamespace, loop_factory: LoopFactory, implicit: str
) -> None:
    """CPython test_streams: test_streamreader_constructor_use_running_loop and
    test_streamreaderprotocol_constructor_use_running_loop (``implicit``)."""

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        return await read_line_through(*reader_and_protocol(streams, loop, implicit))

    assert run(loop_factory, main, CASE_TIMEOUT) == b"a line\n"


@pytest.mark.parametrize("implicit", IMPLICIT)
def test_constructor_use_global_loop(
    streams: SimpleNamespace, loop_factory: LoopFactory, implicit: str
) -> None:
    """CPython test_streams: test_streamreader_constructor_use_global_loop and
    test_streamreaderprotocol_constructor_use_global_loop (``implicit``)."""
    with global_loop(loop_factory) as loop:
        reader, protocol = reader_and_protocol(streams, loop, implicit)
        line = loop.run_until_complete(
            asyncio.wait_for(read_line_through(reader, protocol), CASE_TIMEOUT)
        )
    assert line == b"a line\n"
