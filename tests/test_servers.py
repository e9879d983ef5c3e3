"""Every echo server mode through the command line, as a user runs it.

Real sockets on loopback only; each test runs under both implementations
(the child gets CSAPP_NO_EXTENSIONS=1 for "python").
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import threading
import time
from typing import List

import pytest

from netutil import (
    CONCURRENT_MODES,
    MODES,
    TIMEOUT,
    ServerProcess,
    children_of,
    connect,
    cpu_ticks,
    exchange,
    has_ipv6_loopback,
    recv_exactly,
    recv_until_eof,
    reset,
    sample_data,
    wait_until,
)

LOOPBACKS = ["127.0.0.1", "localhost"] + (["::1"] if has_ipv6_loopback() else [])


def assert_healthy(server: ServerProcess) -> None:
    """Still running, still echoing, and nothing alarming on standard error."""
    assert server.alive(), server.stderr()
    assert exchange(server.port, b"still there?\n") == b"still there?\n"
    assert "Traceback" not in server.stderr()


# ------------------------------------------------------------------ echo


@pytest.mark.parametrize("mode", MODES)
def test_echo_is_byte_exact_on_every_loopback(impl: str, mode: str, shared_servers) -> None:
    server = shared_servers(impl, mode)
    data = sample_data(100_000)
    for host in LOOPBACKS:
        assert exchange(server.port, data, host) == data, host


@pytest.mark.parametrize("mode", MODES)
def test_bulk_echo_with_partial_writes(impl: str, mode: str, shared_servers) -> None:
    """4 MB at once: more than the socket buffers, so writes block or come up short."""
    server = shared_servers(impl, mode)
    data = sample_data(4_000_000, seed=2)
    assert exchange(server.port, data) == data


@pytest.mark.parametrize("mode", MODES)
def test_half_closed_client_gets_all_its_echo(impl: str, mode: str, shared_servers) -> None:
    server = shared_servers(impl, mode)
    with connect(server.port) as sock:
        sock.sendall(b"one\ntwo\nthree without newline")
        sock.shutdown(socket.SHUT_WR)
        assert recv_until_eof(sock) == b"one\ntwo\nthree without newline"


@pytest.mark.parametrize("mode", CONCURRENT_MODES)
def test_forty_concurrent_clients(impl: str, mode: str, shared_servers) -> None:
    server = shared_servers(impl, mode)
    clients = 40
    connected = threading.Barrier(clients, timeout=TIMEOUT)
    results: List[bool] = [False] * clients

    def client(number: int) -> None:
        with connect(server.port) as sock:
            connected.wait()  # all 40 connected before any sends
            for i in range(20):
                line = f"client {number} line {i} ".encode() + b"\0\xff" * number + b"\n"
                sock.sendall(line)
                if recv_exactly(sock, len(line)) != line:
                    return
            results[number] = True

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(2 * TIMEOUT)
    assert all(results), f"{results.count(False)} clients failed"


@pytest.mark.parametrize("mode", ["thread", "event"])
def test_idle_partial_lines_do_not_delay_an_active_client(
    impl: str, mode: str, shared_servers
) -> None:
    server = shared_servers(impl, mode)
    idle = [connect(server.port) for _ in range(200)]
    try:
        for number, sock in enumerate(idle):
            sock.sendall(f"partial line {number} ".encode())
        started = time.monotonic()
        with connect(server.port) as active:
            for i in range(50):
                line = f"active line {i}\n".encode()
                active.sendall(line)
                assert recv_exactly(active, len(line)) == line
        assert time.monotonic() - started < 3.0
        # Each idle client kept its own partial line: finish them all.
        for sock in idle:
            sock.sendall(b"done\n")
        for number, sock in enumerate(idle):
            expected = f"partial line {number} done\n".encode()
            assert recv_exactly(sock, len(expected)) == expected
    finally:
        for sock in idle:
            sock.close()


def test_event_mode_serves_past_1024_descriptors(impl: str, shared_servers) -> None:
    server = shared_servers(impl, "event")
    clients = [connect(server.port) for _ in range(1100)]
    try:
        for number, sock in enumerate(clients):
            sock.sendall(b"%d\n" % number)
        for number, sock in enumerate(clients):
            assert recv_exactly(sock, len(b"%d\n" % number)) == b"%d\n" % number
        assert len(os.listdir(f"/proc/{server.pid}/fd")) > 1100  # all held at once
    finally:
        for sock in clients:
            sock.close()
    assert_healthy(server)


@pytest.mark.parametrize("mode", MODES)
def test_clients_resetting_mid_write_harm_nobody(impl: str, mode: str, shared_servers) -> None:
    server = shared_servers(impl, mode)
    burst = b"x" * 1000 + b"\n"
    for _ in range(50):
        sock = connect(server.port)
        try:
            sock.sendall(burst * 64)  # 64 KB to echo; we never read it
        except OSError:
            pass  # the server may already have seen an earlier reset
        reset(sock)
    assert_healthy(server)
    if mode == "process":
        assert wait_until(lambda: not children_of(server.pid)), children_of(server.pid)


def test_process_mode_reaps_every_child(impl: str, shared_servers) -> None:
    server = shared_servers(impl, "process")
    for i in range(20):
        assert exchange(server.port, f"child {i}\n".encode()) == f"child {i}\n".encode()
    assert wait_until(lambda: not children_of(server.pid)), children_of(server.pid)


@pytest.mark.parametrize("mode", MODES)
def test_verbose_reports_connections_and_bytes(impl: str, mode: str, start_server) -> None:
    server = start_server(impl, mode, "-v")
    assert server.first_line in (
        f"listening on :: port {server.port}\n",  # dual stack
        f"listening on 0.0.0.0 port {server.port}\n",
    )
    with connect(server.port, "127.0.0.1") as sock:
        local_port = sock.getsockname()[1]
        sock.sendall(b"hello\n")
        assert recv_exactly(sock, 6) == b"hello\n"
    assert wait_until(lambda: "server received 6 bytes" in server.stderr())
    assert f"Connected to (127.0.0.1, {local_port})" in server.stderr()


# ------------------------------------------------------------- stopping


def _busy_client(port: int) -> socket.socket:
    """A client in the middle of a line, so the server is inside a connection."""
    sock = connect(port)
    sock.sendall(b"ping\n")
    assert recv_exactly(sock, 5) == b"ping\n"
    sock.sendall(b"half a line")
    return sock


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "signum, busy",
    [(signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGTERM-right-after-listening", "SIGINT-while-serving"],
)
def test_signal_stops_the_server(
    impl: str, mode: str, signum: int, busy: bool, start_server
) -> None:
    server = start_server(impl, mode)
    client = _busy_client(server.port) if busy else None
    if client is not None and mode == "process":
        assert wait_until(lambda: bool(children_of(server.pid)))
    children = children_of(server.pid)
    try:
        status, seconds = server.stop(signum)
    finally:
        if client is not None:
            client.close()
    assert status == 0, server.stderr()
    assert seconds < 1.5
    assert "Traceback" not in server.stderr()
    assert wait_until(
        lambda: not any(os.path.exists(f"/proc/{pid}") for pid in children), timeout=2.0
    ), "a child of the process server outlived it"
    with pytest.raises(ConnectionRefusedError):
        connect(server.port).close()


@pytest.mark.stress
@pytest.mark.parametrize("mode", MODES)
def test_signal_race_right_after_listening(impl: str, mode: str, start_server) -> None:
    for signum in [signal.SIGINT, signal.SIGTERM] * 5:
        server = start_server(impl, mode)
        status, seconds = server.stop(signum)
        assert status == 0 and seconds < 1.5, server.stderr()
        assert "Traceback" not in server.stderr()


# ------------------------------------------------------------- hardening


@pytest.mark.parametrize("mode", ["thread", "prethreaded", "event"])
def test_running_out_of_descriptors_neither_crashes_nor_spins(
    impl: str, mode: str, start_server
) -> None:
    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))

    server = start_server(impl, mode, "--threads", "30", preexec_fn=few_descriptors)
    clients = [connect(server.port) for _ in range(40)]
    try:
        assert wait_until(lambda: "Too many open files" in server.stderr(), timeout=5)
        before = cpu_ticks(server.pid)
        time.sleep(0.5)
        spent = cpu_ticks(server.pid) - before  # a spinning loop would use ~50 ticks
        assert spent < 15, f"{spent} ticks of CPU in 0.5 s while out of descriptors"
    finally:
        for sock in clients:
            sock.close()
    assert_healthy(server)


@pytest.mark.parametrize("mode", MODES)
def test_idle_timeout_closes_a_silent_client(impl: str, mode: str, start_server) -> None:
    server = start_server(impl, mode, "--idle-timeout", "0.3")
    with connect(server.port) as silent:
        silent.sendall(b"hello\nunfinished")
        started = time.monotonic()
        assert recv_until_eof(silent) == b"hello\n"
        assert 0.2 < time.monotonic() - started < 3.0
    assert_healthy(server)


@pytest.mark.parametrize("mode", CONCURRENT_MODES)
def test_max_clients_makes_the_next_client_wait(impl: str, mode: str, start_server) -> None:
    server = start_server(impl, mode, "--max-clients", "2")
    first, second = connect(server.port), connect(server.port)
    try:
        for sock in (first, second):
            sock.sendall(b"in\n")
            assert recv_exactly(sock, 3) == b"in\n"
        with connect(server.port) as third:
            third.sendall(b"wait\n")
            third.settimeout(0.4)
            with pytest.raises(socket.timeout):
                third.recv(5)
            third.settimeout(TIMEOUT)
            first.close()
            assert recv_exactly(third, 5) == b"wait\n"
    finally:
        first.close()
        second.close()
