"""A real asyncio client library on csapp.aio: redis-py's asyncio client (PyPI
``redis``, no hiredis) against a real ``redis-server`` (Debian ``redis-server``),
with ``asyncio.open_connection`` swapped for csapp.aio's. The same workload
runs unswapped as the control; the results must be identical, and the swapped
run must have connected through csapp.aio."""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
from typing import Any, Dict, Iterator, List

import pytest

import csapp.aio
import csapp.aio.reader
from support.aioutil import run
from support.netutil import HANG_GUARD, require_program, wait_until
from support.rioutil import Watchdog

redis_asyncio = pytest.importorskip("redis.asyncio", reason="the [test] extra installs redis")

pytestmark = pytest.mark.usefixtures("watchdog")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(100) == b"+PONG\r\n"
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    """A redis-server of its own on a free loopback port, stopped after."""
    server = require_program("redis-server", "redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert wait_until(lambda: answers(port), timeout=HANG_GUARD), "redis-server did not start"
        yield port
    finally:
        proc.terminate()
        proc.wait(HANG_GUARD)


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


async def workload(port: int) -> Dict[str, Any]:
    """SET/GET of 10 B, 100 KiB and 2 MiB values, MGET, a 1,000-command
    pipeline, pub/sub with a 200 KiB message, and reads cancelled by timeouts."""
    client = redis_asyncio.Redis(host="127.0.0.1", port=port)
    results: Dict[str, Any] = {}
    try:
        await client.flushdb()
        for name, size in [("10B", 10), ("100KiB", 100 << 10), ("2MiB", 2 << 20)]:
            value = payload(size, size)
            await client.set(name, value)
            results[f"get {name}"] = (await client.get(name)) == value
        results["mget"] = await client.mget(["10B", "missing", "10B"])
        pipe = client.pipeline(transaction=False)
        for i in range(1000):
            if i % 2:
                pipe.set(f"k{i}", i)
            else:
                pipe.incrby("counter", i)
        results["pipeline"] = await pipe.execute()
        pubsub = client.pubsub()
        await pubsub.subscribe("channel")
        message = payload(200 << 10, 7)
        await client.publish("channel", message)
        got: List[Any] = []
        while len(got) < 2:  # the subscription's confirmation, then the message
            item = await pubsub.get_message(timeout=HANG_GUARD)
            if item is not None:
                got.append((item["type"], item["data"] == message or item["data"]))
        results["pubsub"] = got
        await pubsub.aclose()
        cancelled = []
        for _ in range(3):  # a blocking read cut short by a timeout, then the next command
            try:
                await asyncio.wait_for(client.blpop(["empty"], timeout=5), 0.05)
                cancelled.append("returned")
            except asyncio.TimeoutError:
                cancelled.append("timed out")
            cancelled.append(await client.get("10B"))
        results["cancelled reads"] = cancelled
    finally:
        await client.aclose()
    return results


@pytest.mark.parametrize(
    "buffer",
    [
        pytest.param("c", marks=pytest.mark.c_extension),
        pytest.param("python", marks=pytest.mark.fallback),
    ],
)
def test_redis_py_on_csapp_aio_gets_what_it_gets_on_asyncio(
    redis_port: int, buffer: str, monkeypatch: pytest.MonkeyPatch, watchdog: Watchdog
) -> None:
    if buffer not in csapp.aio.IMPLEMENTATIONS:
        pytest.skip("the compiled extension is not built here")
    # Two workloads, each with its own hang guard: the test's guard covers both
    # (the module's 30 s fired on a loaded CI machine before either guard did).
    watchdog(2 * HANG_GUARD + 10)
    control = run(asyncio.new_event_loop, lambda: workload(redis_port), timeout=HANG_GUARD)
    opened: List[Any] = []

    async def open_connection(*args: Any, **kwargs: Any) -> Any:
        streams = await csapp.aio.open_connection(*args, **kwargs)
        opened.append(streams[0])
        return streams

    monkeypatch.setattr(
        csapp.aio.reader, "StreamBuffer", csapp.aio.IMPLEMENTATIONS[buffer].StreamBuffer
    )
    monkeypatch.setattr(asyncio, "open_connection", open_connection)
    swapped = run(asyncio.new_event_loop, lambda: workload(redis_port), timeout=HANG_GUARD)
    assert opened and all(isinstance(r, csapp.aio.StreamReader) for r in opened)
    assert swapped == control
    assert all(control[k] for k in ("get 10B", "get 100KiB", "get 2MiB"))
    assert control["cancelled reads"].count("timed out") == 3
