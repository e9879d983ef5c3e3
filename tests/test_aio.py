"""csapp.aio beyond CPython's own cases: the buffer against a model, the fast path,
readlineb, back-pressure, cancellation storms, echo under 1,000 clients, resets.

``streams`` (aioutil) runs each case over asyncio itself (the control, where the
case applies), csapp.aio on the compiled buffer and on the pure-Python one;
``loop_factory`` over the default loop and uvloop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import resource
import socket
import struct
import threading
from types import SimpleNamespace
from typing import Any, AsyncIterator, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import csapp.aio
from csapp._shared import AIO_FIRST_FREE, AIO_MAX_FREE, LINE_LIMIT, MSG_MAXLEN, MSG_NBYTES, echo_cut
from support.aioutil import LoopFactory, run, socket_reader

pytestmark = pytest.mark.usefixtures("watchdog")

BUFFER_TWINS = [
    pytest.param("c", marks=pytest.mark.c_extension, id="c"),
    pytest.param("python", marks=pytest.mark.fallback, id="python"),
]


@pytest.fixture(params=BUFFER_TWINS)
def buffer_type(request: pytest.FixtureRequest) -> type:
    if request.param not in csapp.aio.IMPLEMENTATIONS:
        pytest.skip("the compiled extension is not built here")
    return csapp.aio.IMPLEMENTATIONS[request.param].StreamBuffer


def ours(streams: SimpleNamespace) -> None:
    if streams.kind == "asyncio":
        pytest.skip("a csapp.aio feature: asyncio has no counterpart")


# ---------------------------------------------------------------- the buffer


class Model:
    """What a StreamBuffer must behave like: a bytearray and a few slices."""

    def __init__(self) -> None:
        self.data = bytearray()

    def take(self, n: int) -> bytes:
        n = max(n, 0)
        out = bytes(self.data[:n])
        del self.data[:n]
        return out


operations = st.one_of(
    st.tuples(st.just("extend"), st.binary(max_size=300)),
    st.tuples(st.just("recv"), st.binary(max_size=70_000)),
    st.tuples(st.just("take"), st.integers(-2, 400)),
    st.tuples(st.just("discard"), st.integers(-2, 400)),
    st.tuples(st.just("line"), st.integers(-1, 300)),
    st.tuples(st.just("lineb"), st.integers(2, 300), st.booleans()),
    st.tuples(st.just("echo"), st.booleans(), st.integers(1, 300)),
    st.tuples(
        st.just("find"), st.sampled_from([b"\n", b"\r\n", b"ab", b"\0"]), st.integers(-1, 50)
    ),
    st.tuples(st.just("any"), st.integers(-1, 50)),
    st.tuples(st.just("clear")),
    st.tuples(st.just("echo_received"), st.binary(max_size=300), st.integers(1, 300)),
)


# buffer_type is a class and the watchdog only arms an alarm: nothing to reset per example.
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(operations, max_size=40))
def test_buffer_matches_a_bytearray_model(buffer_type: type, ops: List[Tuple[Any, ...]]) -> None:
    buf, model = buffer_type(), Model()
    for op in ops:
        name = op[0]
        if name == "extend":
            buf.extend(op[1])
            model.data += op[1]
        elif name == "recv":  # what the event loop does: recv_into(get_buffer())
            view = buf.get_buffer(-1)
            assert len(view) >= AIO_FIRST_FREE
            data = op[1][: len(view)]  # a recv_into gets at most the space offered
            view[: len(data)] = data
            del view
            buf.buffer_updated(len(data))
            model.data += data
        elif name == "take":
            assert buf.take(op[1]) == model.take(op[1])
        elif name == "discard":
            buf.discard(op[1])
            model.take(op[1])
        elif name == "line":
            at = model.data.find(b"\n")
            expect = model.take(at + 1) if 0 <= at <= op[1] else None
            assert buf.take_line(op[1]) == expect
        elif name == "lineb":
            maxlen, at_eof = op[1], op[2]
            at = model.data.find(b"\n", 0, maxlen - 1)
            if at >= 0:
                expect: Optional[bytes] = model.take(at + 1)
            elif len(model.data) >= maxlen - 1 or at_eof:
                expect = model.take(maxlen - 1)
            else:
                expect = None
            assert buf.take_lineb(maxlen, at_eof) == expect
        elif name == "echo":
            cut = echo_cut(bytes(model.data), op[1], op[2])
            assert buf.take_echo(op[1], op[2]) == model.take(cut)
        elif name == "find":
            expect_at = model.data.find(op[1], max(op[2], 0))
            assert buf.find(op[1], op[2]) == expect_at
            assert buf.startswith(op[1], op[2]) == model.data.startswith(op[1], max(op[2], 0))
        elif name == "any":
            seps = (b"\r\n", b"\n", b"xy")
            ends = [
                (at + len(s), at) for s in seps if (at := model.data.find(s, max(op[1], 0))) >= 0
            ]
            expect_pair = (min(ends)[1], min(ends)[0]) if ends else (-1, -1)
            assert buf.find_any(seps, op[1]) == expect_pair
        elif name == "clear":
            buf.clear()
            model.data.clear()
        elif name == "echo_received":
            view = buf.get_buffer(-1)
            view[: len(op[1])] = op[1]
            del view
            model.data += op[1]
            written: List[bytes] = []
            count = buf.echo_received(len(op[1]), written.append, op[2])
            expect_echo = model.take(echo_cut(bytes(model.data), False, op[2]))
            assert b"".join(written) == expect_echo
            assert count == len(expect_echo)
            assert len(written) == (1 if expect_echo else 0)
        assert len(buf) == len(model.data)


def test_buffer_rejects_bad_input_with_clear_errors(buffer_type: type) -> None:
    buf = buffer_type()
    free = len(buf.get_buffer(-1))
    with pytest.raises(ValueError, match=re.escape(MSG_NBYTES)):
        buf.buffer_updated(free + 1)
    with pytest.raises(ValueError, match=re.escape(MSG_NBYTES)):
        buf.buffer_updated(-1)
    with pytest.raises(ValueError, match=MSG_MAXLEN):
        buf.take_lineb(1, True)
    with pytest.raises(ValueError, match=MSG_MAXLEN):
        buf.take_lineb(-5, False)
    with pytest.raises(TypeError):
        buf.find("\n")
    with pytest.raises(TypeError):
        buf.extend("text")
    # A huge size hint is capped, not allocated.
    assert len(buf.get_buffer(2**62)) <= 16 * 1024 * 1024 + 64 * 1024
    assert len(buf) == 0


def test_echo_limit_of_zero_or_less_sends_any_piece_in_both_twins(buffer_type: type) -> None:
    """A limit below 1 means "no piece too small", as echo_cut reads it (the
    compiled twin turned -1 into a huge unsigned limit: found by atheris)."""
    for limit in (-1, 0):
        buf = buffer_type()
        buf.extend(b"abc")
        assert buf.take_echo(False, limit) == b"abc"
        view = buf.get_buffer(-1)
        view[:2] = b"de"
        del view
        written: List[bytes] = []
        assert buf.echo_received(2, written.append, limit) == 2
        assert written == [b"de"]


def test_a_buffer_keeps_at_most_64_kib_when_drained(buffer_type: type) -> None:
    """A fresh buffer holds no storage; one drained after a burst gives back what it grew to."""
    buf = buffer_type()
    assert buf.capacity() == 0
    view = buf.get_buffer(-1)
    view[:6] = b"ab\ncd\n"
    del view
    buf.buffer_updated(6)
    assert buf.take_line(100) == b"ab\n"
    assert buf.take_line(100) == b"cd\n"
    assert buf.capacity() == AIO_FIRST_FREE  # kept for the next receive
    buf.extend(b"x" * (4 * AIO_MAX_FREE))  # a burst
    assert buf.capacity() > AIO_MAX_FREE
    assert len(buf.take(10**9)) == 4 * AIO_MAX_FREE
    assert buf.capacity() == 0
    buf.extend(b"y" * (3 * AIO_MAX_FREE))
    buf.clear()
    assert buf.capacity() == 0


def receive(buf: Any, count: int) -> int:
    """One recv_into of up to ``count`` bytes, as the loop does it; the space offered."""
    view = buf.get_buffer(-1)
    offered = len(view)
    got = min(count, offered)
    view[:got] = b"z" * got
    del view
    buf.buffer_updated(got)
    return offered


def test_receive_space_starts_at_one_page_and_doubles_when_filled(buffer_type: type) -> None:
    """An idle or request/response connection holds 4 KiB; receives that fill the
    space offered double it up to 64 KiB, and one that does not leaves it."""
    buf = buffer_type()
    assert receive(buf, 64) == AIO_FIRST_FREE
    buf.clear()
    assert receive(buf, 100) == AIO_FIRST_FREE  # small receives: no growth
    buf.clear()
    assert buf.capacity() == AIO_FIRST_FREE
    offers = []
    for _ in range(8):  # a bulk sender: every receive fills what it is offered
        offers.append(receive(buf, 1 << 20))
        buf.clear()
    assert offers[:5] == [AIO_FIRST_FREE << k for k in range(5)]
    assert offers[-1] == AIO_MAX_FREE == max(offers)
    assert buf.capacity() <= AIO_MAX_FREE
    assert len(buf.get_buffer(4 * AIO_MAX_FREE)) >= 4 * AIO_MAX_FREE  # a big hint is honoured


def test_buffer_survives_views_held_across_growth(buffer_type: type) -> None:
    """A view kept past the next get_buffer() still points at live memory."""
    buf = buffer_type()
    old = buf.get_buffer(-1)
    buf.extend(b"x" * (len(old) + 10))  # grows: new storage
    old[:3] = b"abc"  # writes the old storage, which the view keeps alive
    assert buf.take(3) == b"xxx"
    del old


# ---------------------------------------------------------------- the reader


def test_readline_of_a_buffered_line_does_not_suspend(
    buffer_type: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def main() -> None:
        reader = csapp.aio.StreamReader()
        reader.feed_data(b"one\ntwo\n")
        coro = reader.readline()
        with pytest.raises(StopIteration) as done:
            coro.send(None)  # finishes at the first step: nothing awaited
        assert done.value.value == b"one\n"

    monkeypatch.setattr(csapp.aio.reader, "StreamBuffer", buffer_type)
    asyncio.run(main())


def test_reader_is_an_asyncio_stream_reader(streams: SimpleNamespace) -> None:
    ours(streams)

    async def main() -> None:
        reader = streams.StreamReader()
        assert isinstance(reader, asyncio.StreamReader)

    asyncio.run(main())


def test_readlineb_returns_a_long_line_in_pieces(
    streams: SimpleNamespace, loop_factory: LoopFactory
) -> None:
    ours(streams)
    long_line = bytes(random.Random(1).randrange(256) for _ in range(20_000)).replace(b"\n", b".")

    async def main() -> None:
        pair = await socket_reader(streams)
        try:
            await pair.feed(long_line + b"\nshort\n")
            await pair.feed_eof()
            pieces = []
            while piece := await pair.reader.readlineb(8192):
                pieces.append(piece)
            assert [len(p) for p in pieces] == [8191, 8191, 20_001 - 2 * 8191, 6]
            assert b"".join(pieces) == long_line + b"\nshort\n"
            with pytest.raises(ValueError, match=MSG_MAXLEN):
                await pair.reader.readlineb(1)
        finally:
            pair.close()

    run(loop_factory, main)


def test_reading_pauses_past_the_limit_and_resumes(
    streams: SimpleNamespace, loop_factory: LoopFactory
) -> None:
    """Back-pressure: at most 2 x limit (+ one receive) buffered while nobody reads."""
    limit = 4096
    data = os.urandom(2 * 1024 * 1024)

    async def main() -> None:
        pair = await socket_reader(streams, limit=limit)
        sender = threading.Thread(target=pair.peer.sendall, args=(data,))
        sender.start()
        try:
            for _ in range(200):
                await asyncio.sleep(0.005)
                if pair.reader._paused:
                    break
            assert pair.reader._paused
            buffered = len(pair.reader._buffer)
            assert 2 * limit < buffered <= 2 * limit + 256 * 1024
            got = await pair.reader.readexactly(len(data))
            assert got == data
            assert not pair.reader._paused
        finally:
            sender.join()
            pair.close()

    run(loop_factory, main)


def test_cancelled_reads_lose_and_duplicate_nothing(
    streams: SimpleNamespace, loop_factory: LoopFactory
) -> None:
    """10,000 readline()s cancelled at random points while lines arrive in random pieces."""
    rng = random.Random(12)
    lines = [b"%d:" % i + b"y" * rng.randrange(0, 90) + b"\n" for i in range(3000)]
    data = b"".join(lines)
    cuts = sorted(rng.sample(range(1, len(data)), 1500))
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]

    def send() -> None:
        for piece in pieces:
            pair.peer.sendall(piece)
        pair.peer.shutdown(socket.SHUT_WR)

    async def main() -> None:
        nonlocal pair
        pair = await socket_reader(streams)
        sender = threading.Thread(target=send)
        sender.start()
        got: List[bytes] = []
        try:
            for _ in range(10_000):
                task = asyncio.ensure_future(pair.reader.readline())
                for _ in range(rng.randrange(3)):
                    await asyncio.sleep(0)
                task.cancel()
                try:
                    line = await task
                except asyncio.CancelledError:
                    continue
                if line:  # b"" once EOF arrived
                    got.append(line)
            while line := await pair.reader.readline():
                got.append(line)
        finally:
            sender.join()
            pair.close()
        assert b"".join(got) == data
        assert got == lines

    pair: Any = None
    run(loop_factory, main, timeout=120)


def test_set_exception_wakes_a_waiting_read(streams: SimpleNamespace) -> None:
    async def main() -> None:
        reader = streams.StreamReader()
        task = asyncio.ensure_future(reader.readline())
        await asyncio.sleep(0)
        reader.set_exception(ConnectionResetError("gone"))
        with pytest.raises(ConnectionResetError):
            await task
        with pytest.raises(ConnectionResetError):
            await reader.readexactly(1)

    asyncio.run(main())


# ---------------------------------------------------------------- echo and servers


@contextlib.asynccontextmanager
async def echo_server(streams: SimpleNamespace, **kwds: Any) -> AsyncIterator[int]:
    """start_server of ``streams`` with csapp.aio.echo as the client callback; its port."""
    server = await streams.start_server(csapp.aio.echo, "127.0.0.1", 0, **kwds)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def mixed_lines(rng: random.Random, count: int) -> bytes:
    out = []
    for _ in range(count):
        size = rng.choice([0, 1, 10, 63, 200, 3000, LINE_LIMIT + 5])
        out.append(bytes(rng.randrange(1, 256) for _ in range(size)).replace(b"\n", b"-") + b"\n")
    return b"".join(out)


def test_echo_is_byte_exact_for_mixed_lines_and_a_partial_last_line(
    streams: SimpleNamespace, loop_factory: LoopFactory
) -> None:
    data = mixed_lines(random.Random(3), 300) + b"no newline at the end"

    async def main() -> None:
        async with echo_server(streams) as port:
            reader, writer = await streams.open_connection("127.0.0.1", port)
            writer.write(data)
            writer.write_eof()
            assert await reader.read() == data
            writer.close()

    run(loop_factory, main)


def test_echo_of_8_mib_to_a_slow_reader_is_exact(
    streams: SimpleNamespace, loop_factory: LoopFactory
) -> None:
    """The client sends everything before reading: the server's writes back up."""
    data = (b"z" * 99 + b"\n") * (8 * 1024 * 1024 // 100)

    async def main() -> None:
        async with echo_server(streams) as port:
            reader, writer = await streams.open_connection("127.0.0.1", port)
            writer.write(data)
            await asyncio.sleep(0.2)  # the echo fills the server's output first
            writer.write_eof()
            assert await reader.read() == data
            writer.close()

    run(loop_factory, main, timeout=60)


@pytest.fixture
def many_descriptors() -> Any:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * 1000 + 200
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {want}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_1000_concurrent_clients_echo_byte_exact(
    streams: SimpleNamespace, loop_factory: LoopFactory, many_descriptors: None
) -> None:
    async def one_client(port: int, seed: int, started: asyncio.Event) -> None:
        rng = random.Random(seed)
        payload = b"".join(
            b"%d-%d-" % (seed, i) + b"q" * rng.randrange(60) + b"\n" for i in range(5)
        )
        reader, writer = await streams.open_connection("127.0.0.1", port)
        await started.wait()  # all 1,000 are connected before anyone speaks
        writer.write(payload)
        await writer.drain()
        assert await reader.readexactly(len(payload)) == payload
        writer.close()

    async def main() -> None:
        async with echo_server(streams, backlog=1024) as port:
            started = asyncio.Event()
            clients = [asyncio.ensure_future(one_client(port, i, started)) for i in range(1000)]
            await asyncio.sleep(0)
            while sum(1 for _ in asyncio.all_tasks()) < 2 * 1000:  # every server task is up
                await asyncio.sleep(0.01)
            started.set()
            await asyncio.gather(*clients)

    run(loop_factory, main, timeout=120)


def test_resets_mid_line_leave_the_server_serving(
    streams: SimpleNamespace, loop_factory: LoopFactory
) -> None:
    errors: List[Any] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
        async with echo_server(streams) as port:
            for i in range(50):
                sock = socket.create_connection(("127.0.0.1", port))
                sock.sendall(b"half a line %d" % i if i % 2 else b"whole\nhalf")
                await asyncio.sleep(0.002)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()  # RST
            reader, writer = await streams.open_connection("127.0.0.1", port)
            writer.write(b"still here\n")
            assert await reader.readline() == b"still here\n"
            writer.close()
            await asyncio.sleep(0.05)

    run(loop_factory, main)
    assert [e for e in errors if "exception" in e] == []


def test_unix_socket_echo(
    streams: SimpleNamespace, loop_factory: LoopFactory, tmp_path: Any
) -> None:
    path = str(tmp_path / "echo.sock")

    async def main() -> None:
        server = await streams.start_unix_server(csapp.aio.echo, path)
        try:
            reader, writer = await streams.open_unix_connection(path)
            writer.write(b"over a unix socket\n")
            assert await reader.readline() == b"over a unix socket\n"
            writer.close()
        finally:
            server.close()
            await server.wait_closed()

    run(loop_factory, main)


def test_echo_cancelled_closes_the_writer(loop_factory: LoopFactory) -> None:
    async def main() -> None:
        tasks: List[asyncio.Task[Any]] = []

        async def handler(reader: Any, writer: Any) -> None:
            task = asyncio.ensure_future(csapp.aio.echo(reader, writer))
            tasks.append(task)
            await asyncio.gather(task, return_exceptions=True)

        server = await csapp.aio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await csapp.aio.open_connection("127.0.0.1", port)
            writer.write(b"ping\n")
            assert await reader.readline() == b"ping\n"
            tasks[0].cancel()
            assert await reader.read() == b""  # the server closed the connection
            writer.close()
        finally:
            server.close()
            await server.wait_closed()

    run(loop_factory, main)


def test_buffer_twins_have_the_same_methods_as_the_stub() -> None:
    import inspect

    from csapp.aio import _buffer_py

    public = {n for n in vars(_buffer_py.StreamBuffer) if not n.startswith("_")}
    assert public == {
        "capacity", "get_buffer", "buffer_updated", "extend", "find", "startswith",
        "find_any", "take", "discard", "clear", "take_line", "take_lineb", "take_echo",
        "echo_received",
    }  # fmt: skip
    if "c" in csapp.aio.IMPLEMENTATIONS:
        compiled = csapp.aio.IMPLEMENTATIONS["c"].StreamBuffer
        assert {n for n in dir(compiled) if not n.startswith("_")} == public
        for name in public:
            py_sig = inspect.signature(getattr(_buffer_py.StreamBuffer, name))
            assert next(iter(py_sig.parameters)) == "self"


@pytest.fixture(scope="module")
def tls_contexts(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Any, Any]:
    """A self-signed certificate for 127.0.0.1 (made with the openssl command)."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a test certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def test_echo_over_tls(
    streams: SimpleNamespace, loop_factory: LoopFactory, tls_contexts: Tuple[Any, Any]
) -> None:
    """ssl= goes through to the loop: the buffered protocol works under TLS too."""
    server_ctx, client_ctx = tls_contexts
    data = mixed_lines(random.Random(5), 100)

    async def main() -> None:
        async with echo_server(streams, ssl=server_ctx) as port:
            reader, writer = await streams.open_connection("127.0.0.1", port, ssl=client_ctx)
            writer.write(data)
            assert await reader.readexactly(len(data)) == data
            writer.close()

    run(loop_factory, main)
