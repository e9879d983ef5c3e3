"""Readers and servers behind a damaging proxy (issue 13, tests/support/faultproxy.py).

Every reader -- ``Rio`` (both twins), ``csapp.aio`` (both buffers, asyncio as
the control, on the default loop and uvloop) and the echo client -- either
delivers every byte or raises a clear error, whatever the link does: one byte
per segment, random split points, latency with jitter, a bandwidth cap, a
reset after k bytes, a stall, a half-close after k bytes. Every server mode
echoes byte-exact through the same faults, stays up, frees each descriptor
and fires its idle timeout on a stalled client. Each fault case also checks
that the fault really happened (pieces sent, time taken, resets struck), so
a proxy that forwards cleanly could not pass. Larger sizes run under
``-m stress``.
"""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import time
from types import ModuleType, SimpleNamespace
from typing import Any, Callable, Dict, List, Tuple

import pytest

from csapp.sockets import set_kernel_timeouts
from support.aioutil import LoopFactory, run
from support.faultproxy import FaultProxy, Faults, served_bytes
from support.netutil import (
    MODES,
    TIMEOUT,
    ServerProcess,
    child_env,
    connect,
    csapp_command,
    exchange,
    recv_until_eof,
    sample_data,
    server_fd_count,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("watchdog")

KIB = 1024

# name: (what the proxy does to the bytes coming back, bytes in the default
# run, bytes under -m stress)
CLEAN_FAULTS: Dict[str, Tuple[Faults, int, int]] = {
    "one-byte-segments": (Faults(slices=1), 12 * KIB, 256 * KIB),
    "random-splits": (Faults(slices=1500, seed=7), 512 * KIB, 16 * 1024 * KIB),
    "latency-jitter": (Faults(latency=0.004, jitter=0.002, seed=3), 256 * KIB, 4096 * KIB),
    "bandwidth-cap": (Faults(rate=2_000_000), 256 * KIB, 4096 * KIB),
}

RESET_AT = 100_000
REQUEST = b"go"  # what an asyncio client sends before the served bytes start
STALL_AT = 50_001  # inside a line, so a partial line is pending when it stalls


def fault_params() -> List[Any]:
    return [
        pytest.param(name, small, id=name) for name, (_faults, small, _big) in CLEAN_FAULTS.items()
    ] + [
        pytest.param(name, big, id=f"{name}-stress", marks=pytest.mark.stress)
        for name, (_faults, _small, big) in CLEAN_FAULTS.items()
    ]


def check_fault_happened(name: str, proxy: FaultProxy, size: int, seconds: float) -> None:
    """The proxy really damaged the link (a clean forward fails this)."""
    faults = CLEAN_FAULTS[name][0]
    if faults.slices == 1:
        assert proxy.pieces >= size, (proxy.pieces, size)
    elif faults.slices:
        assert proxy.pieces >= 2 * size // faults.slices, (proxy.pieces, size)
    if faults.latency:
        held = faults.latency - faults.jitter
        assert seconds >= proxy.pieces * held, (seconds, proxy.pieces)
    if faults.rate:
        assert seconds >= 0.9 * size / faults.rate, seconds


def blocking_connection(port: int, timeout: float = TIMEOUT) -> socket.socket:
    """A blocking client socket (a Python timeout would make it non-blocking
    under the Rio); the kernel timeouts bound every call instead."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.settimeout(None)
    set_kernel_timeouts(sock.fileno(), timeout)
    return sock


# ------------------------------------------------------------- the Rio


def rio_read_all(rp: Any, got: List[bytes], seed: int = 5) -> None:
    """Read to EOF with a random mix of the Rio's calls, into ``got``."""
    rng = random.Random(seed)
    buf = bytearray(4096)
    while True:
        choice = rng.randrange(5)
        if choice == 0:
            piece = rp.readlineb(rng.randint(2, 300))
        elif choice == 1:
            piece = rp.readnb(rng.randint(1, 5000))
        elif choice == 2:
            piece = rp.read1(rng.randint(1, 3000))
        elif choice == 3:
            piece = bytes(buf[: rp.readinto(buf)])
        else:
            piece = rp.readline()
        if not piece:
            return
        got.append(piece)


@pytest.mark.parametrize("name, size", fault_params())
def test_rio_gets_every_byte_through_a_damaged_link(rio: ModuleType, name: str, size: int) -> None:
    """Split, sliced, delayed or throttled: the Rio delivers every byte in order."""
    data = sample_data(size)
    got: List[bytes] = []
    with (
        served_bytes(data) as (port, errors),
        FaultProxy(port, downstream=CLEAN_FAULTS[name][0]) as proxy,
    ):
        started = time.monotonic()
        with blocking_connection(proxy.port) as sock, rio.Rio(sock.fileno()) as rp:
            rio_read_all(rp, got)
        seconds = time.monotonic() - started
    assert not errors, errors
    assert b"".join(got) == data
    check_fault_happened(name, proxy, size, seconds)


def test_rio_reset_mid_stream_raises_after_a_clean_prefix(rio: ModuleType) -> None:
    """A reset after k bytes: ConnectionResetError, never a silent EOF; what came
    before it is an exact prefix of what was sent (the proxy's reset may drop
    what it had not sent yet, so not always all k bytes)."""
    data = sample_data(1 << 20)
    got: List[bytes] = []
    # The bytes (and so the reset) start only after the client's first byte:
    # a reset that struck before a loaded client saw its connect complete
    # failed the connect itself (ECONNRESET from create_connection).
    with (
        served_bytes(data, after_request=True) as (port, _errors),
        FaultProxy(port, downstream=Faults(reset_after=RESET_AT)) as proxy,
    ):
        with blocking_connection(proxy.port) as sock, rio.Rio(sock.fileno()) as rp:
            sock.sendall(b"?")
            with pytest.raises(ConnectionResetError):
                rio_read_all(rp, got)
            # The kernel reports a reset once; then the socket reads as closed.
            assert rp.readnb(1) == b""
    received = b"".join(got)
    assert proxy.resets == 1
    assert len(received) <= RESET_AT and data.startswith(received)


def test_rio_stalled_link_times_out_and_keeps_what_arrived(rio: ModuleType) -> None:
    """A link that stalls after k bytes: the kernel timeout ends the wait with
    BlockingIOError, and all k bytes are there (the partial line buffered).

    A timeout before the stall (a proxy slowed by a loaded machine) is no
    failure: the read goes on, keeping what it has. Only one that began after
    the proxy stalled must end the reading."""
    data = sample_data(1 << 20)
    got: List[bytes] = []
    early = 0
    with (
        served_bytes(data) as (port, _errors),
        FaultProxy(port, downstream=Faults(stall_after=STALL_AT)) as proxy,
    ):
        with blocking_connection(proxy.port, timeout=0.3) as sock, rio.Rio(sock.fileno()) as rp:
            while True:
                stalled = proxy.stalls == 1  # then all k bytes were sent before this call
                try:
                    piece = rp.readlineb()
                except BlockingIOError:
                    if stalled:
                        break
                    early += 1
                    continue
                assert piece, "EOF on a stalled link"
                got.append(piece)
            pending = rp.buffered
            assert pending > 0, "the partial line was lost"
            got.append(rp.read1(pending))
        assert proxy.stalls == 1
    assert b"".join(got) == data[:STALL_AT], f"after {early} timeouts before the stall"


# ---------------------------------------------------------- csapp.aio


async def aio_read_all(reader: Any, got: List[bytes], seed: int = 9) -> None:
    """Read to EOF with a random mix of the stream calls, into ``got``."""
    rng = random.Random(seed)
    while True:
        choice = rng.randrange(4)
        try:
            if choice == 0:
                piece = await reader.readline()
            elif choice == 1:
                piece = await reader.readexactly(rng.randint(1, 5000))
            elif choice == 2:
                piece = await reader.read(rng.randint(1, 3000))
            else:
                piece = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            piece = exc.partial
        if not piece:
            return
        got.append(piece)


def aio_case(
    streams: SimpleNamespace,
    loop_factory: LoopFactory,
    data: bytes,
    faults: Faults,
    body: Callable[[Any, List[bytes]], Any],
) -> Tuple[List[bytes], FaultProxy, float]:
    """Run ``body(reader, got)`` on a connection through a proxy with ``faults``."""
    got: List[bytes] = []

    async def main() -> None:
        reader, writer = await streams.open_connection("127.0.0.1", proxy.port)
        try:
            writer.write(REQUEST)
            await body(reader, got)
        finally:
            writer.close()

    with (
        served_bytes(data, after_request=True) as (port, _errors),
        FaultProxy(port, downstream=faults) as proxy,
    ):
        started = time.monotonic()
        run(loop_factory, main)
        seconds = time.monotonic() - started
    return got, proxy, seconds


@pytest.mark.parametrize("name, size", fault_params())
def test_aio_gets_every_byte_through_a_damaged_link(
    streams: SimpleNamespace, loop_factory: LoopFactory, name: str, size: int
) -> None:
    """The asyncio readers deliver every byte in order over each damaged link."""
    data = sample_data(size)
    got, proxy, seconds = aio_case(streams, loop_factory, data, CLEAN_FAULTS[name][0], aio_read_all)
    assert b"".join(got) == data
    check_fault_happened(name, proxy, size, seconds)


def test_aio_reset_mid_stream_raises_after_a_clean_prefix(
    streams: SimpleNamespace, loop_factory: LoopFactory
) -> None:
    """A reset after k bytes raises ConnectionResetError, as asyncio's own
    streams do; what came before it is an exact prefix."""
    data = sample_data(1 << 20)

    async def body(reader: Any, got: List[bytes]) -> None:
        with pytest.raises(ConnectionResetError):
            await aio_read_all(reader, got)
        with pytest.raises(ConnectionResetError):
            await reader.read(1)

    got, proxy, _ = aio_case(streams, loop_factory, data, Faults(reset_after=RESET_AT), body)
    received = b"".join(got)
    assert proxy.resets == 1
    assert len(received) <= RESET_AT and data.startswith(received)


def test_aio_stalled_link_times_out_and_keeps_what_arrived(
    streams: SimpleNamespace, loop_factory: LoopFactory
) -> None:
    """A stall after k bytes: a timed-out readline() consumes nothing, and all
    k bytes can still be read."""
    data = sample_data(1 << 20)

    async def body(reader: Any, got: List[bytes]) -> None:
        with pytest.raises(asyncio.TimeoutError):
            while True:
                line = await asyncio.wait_for(reader.readline(), 0.3)
                assert line, "EOF on a stalled link"
                got.append(line)
        rest = STALL_AT - sum(map(len, got))
        got.append(await asyncio.wait_for(reader.readexactly(rest), TIMEOUT))

    got, proxy, _ = aio_case(streams, loop_factory, data, Faults(stall_after=STALL_AT), body)
    assert proxy.stalls == 1
    assert b"".join(got) == data[:STALL_AT]


# --------------------------------------------------- the echo client, servers


BOTH_WAYS = {
    "random-splits": (Faults(slices=900, seed=11), Faults(slices=1300, seed=12)),
    "one-byte-back": (Faults(slices=400, seed=13), Faults(slices=1)),
    "latency-jitter": (
        Faults(latency=0.002, jitter=0.002, seed=14),
        Faults(latency=0.003, jitter=0.002, seed=15),
    ),
    "bandwidth-cap": (Faults(rate=3_000_000), Faults(rate=3_000_000)),
}


def echoclient(impl: str, port: int, data: bytes) -> subprocess.CompletedProcess[bytes]:
    """``csapp echoclient 127.0.0.1 port`` with ``data`` on its standard input."""
    return subprocess.run(
        csapp_command("echoclient", "127.0.0.1", str(port)),
        input=data,
        capture_output=True,
        env=child_env(impl),
        timeout=TIMEOUT,
    )


@pytest.mark.parametrize("name", list(BOTH_WAYS))
def test_echo_client_through_a_damaged_link(impl: str, name: str, start_server) -> None:
    """``csapp echoclient`` through a damaged link in both directions: its
    output is its input, byte for byte."""
    server = start_server(impl, "thread")
    # The client waits for each line's echo: latency costs two holds per line.
    sizes = {"one-byte-back": 24 * KIB, "latency-jitter": 16 * KIB, "bandwidth-cap": 64 * KIB}
    data = sample_data(sizes.get(name, 160 * KIB))
    upstream, downstream = BOTH_WAYS[name]
    with FaultProxy(server.port, upstream=upstream, downstream=downstream) as proxy:
        result = echoclient(impl, proxy.port, data)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data
    assert proxy.pieces > 2 * len(data) // 1300


def test_echo_client_reset_is_one_clear_line(impl: str, start_server) -> None:
    """A reset mid-session: the echo client exits non-zero with one line naming
    the reset, not a traceback, after echoing an exact prefix."""
    server = start_server(impl, "thread")
    data = sample_data(256 * KIB)
    with FaultProxy(server.port, downstream=Faults(reset_after=RESET_AT)) as proxy:
        result = echoclient(impl, proxy.port, data)
    assert proxy.resets == 1
    assert result.returncode != 0
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "reset" in lines[0].lower(), result.stderr
    assert len(result.stdout) <= RESET_AT and data.startswith(result.stdout)


def baseline(server: ServerProcess) -> int:
    """The server's descriptors once it serves (the asyncio mode opens its loop's
    after printing 'listening on'): one echo first, then the count."""
    assert exchange(server.port, b"warm up\n") == b"warm up\n"
    assert wait_until(lambda: server.alive(), timeout=1.0)
    return server_fd_count(server.pid)


@pytest.mark.parametrize("mode", MODES)
def test_server_echoes_exactly_through_damaged_links(
    impl: str, mode: str, shared_servers: Callable[[str, str], ServerProcess]
) -> None:
    """Every server mode, both directions damaged: the echo is byte-exact."""
    server = shared_servers(impl, mode)
    for number, (upstream, downstream) in enumerate(BOTH_WAYS.values()):
        data = sample_data(8 * KIB if downstream.slices == 1 else 96 * KIB, seed=number)
        with FaultProxy(server.port, upstream=upstream, downstream=downstream) as proxy:
            assert exchange(proxy.port, data) == data, list(BOTH_WAYS)[number]
        assert proxy.pieces > 0
    assert server.alive()


@pytest.mark.parametrize("mode", MODES)
def test_server_survives_resets_and_frees_descriptors(impl: str, mode: str, start_server) -> None:
    """Connections reset at random points in either direction: the server stays
    up, its descriptors return to their baseline, and it echoes on."""
    server = start_server(impl, mode)
    base = baseline(server)
    rng = random.Random(21)
    for number in range(12):
        at = rng.randint(1, 60_000)
        faults = Faults(reset_after=at)
        sides = {"upstream": faults} if number % 2 else {"downstream": faults}
        with FaultProxy(server.port, **sides) as proxy:  # type: ignore[arg-type]
            with connect(proxy.port) as sock:
                sock.settimeout(TIMEOUT)
                try:
                    sock.sendall(sample_data(80_000, seed=number))
                    recv_until_eof(sock)
                except ConnectionError:
                    pass
            assert wait_until(lambda: proxy.resets == 1, timeout=TIMEOUT), sides
    assert wait_until(lambda: server_fd_count(server.pid) <= base, timeout=TIMEOUT), (
        server_fd_count(server.pid),
        base,
    )
    data = sample_data(32 * KIB, seed=99)
    assert exchange(server.port, data) == data
    assert server.alive(), server.stderr()


@pytest.mark.parametrize("mode", MODES)
def test_idle_timeout_fires_on_a_stalled_link(impl: str, mode: str, start_server) -> None:
    """A client whose link stalls inside a line: the server's idle timeout
    closes it (the client sees the end of file through the proxy) and frees
    its descriptor, while it keeps serving others."""
    server = start_server(impl, mode, "--idle-timeout", "0.3")
    base = baseline(server)
    with FaultProxy(server.port, upstream=Faults(stall_after=3000)) as proxy:
        with connect(proxy.port) as sock:
            sock.settimeout(None)  # a timeout that never fires: the watchdog (30 s) fails it
            sock.sendall(b"x" * 5000)  # no newline: nothing comes back before the close
            started = time.monotonic()
            echoed = recv_until_eof(sock)
            waited = time.monotonic() - started
        assert proxy.stalls == 1
    assert echoed == b"", len(echoed)  # a partial line is not echoed by a timeout
    assert waited >= 0.2, waited  # not before its time; how late is no bound
    assert wait_until(lambda: server_fd_count(server.pid) <= base, timeout=TIMEOUT)
    data = sample_data(16 * KIB, seed=5)
    assert exchange(server.port, data) == data


@pytest.mark.parametrize("mode", MODES)
def test_half_close_after_k_bytes_echoes_exactly_those(
    impl: str, mode: str, shared_servers: Callable[[str, str], ServerProcess]
) -> None:
    """The link half-closes towards the server after k bytes (limit_data): the
    server echoes exactly those k bytes, then closes; the client sees them and
    the end of file."""
    server = shared_servers(impl, mode)
    limit = 40_003
    data = sample_data(120 * KIB, seed=4)
    with FaultProxy(server.port, upstream=Faults(close_after=limit)) as proxy:
        assert exchange(proxy.port, data) == data[:limit]
    assert proxy.pieces > 0
