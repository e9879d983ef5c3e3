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
from typing import Callable, List

import pytest

from csapp.servers.accepting import ACCEPT_BACKOFF
from support.netutil import (
    CONCURRENT_MODES,
    HANG_GUARD,
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
    impl: str, mode: str, shared_servers, figures: Callable[[str], None]
) -> None:
    """200 clients sit on partial lines while an active one talks: the active
    one gets every echo (a server waiting on an idle client would never answer
    it, and the hang guard fails the test); the time is a figure, not a bound."""
    server = shared_servers(impl, mode)
    idle = [connect(server.port) for _ in range(200)]
    try:
        for number, sock in enumerate(idle):
            sock.sendall(f"partial line {number} ".encode())
        started = time.monotonic()
        with connect(server.port, timeout=HANG_GUARD) as active:
            for i in range(50):
                line = f"active line {i}\n".encode()
                active.sendall(line)
                assert recv_exactly(active, len(line)) == line
        figures(f"50 round trips beside 200 partial lines: {time.monotonic() - started:.3f} s")
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
    impl: str, mode: str, signum: int, busy: bool, start_server, figures: Callable[[str], None]
) -> None:
    """The server exits with status 0 while a client is still connected (mid-line
    when busy), its children go, the port is closed. A server that never stops
    fails the test at the hang guard (``stop`` raises TimeoutExpired); the stop
    time is a figure, not a bound."""
    server = start_server(impl, mode)
    client = _busy_client(server.port) if busy else None
    if client is not None and mode == "process":
        assert wait_until(lambda: bool(children_of(server.pid)), timeout=HANG_GUARD)
    children = children_of(server.pid)
    try:
        status, seconds = server.stop(signum, timeout=HANG_GUARD)
    finally:
        if client is not None:
            client.close()
    assert status == 0, server.stderr()
    figures(f"stopped in {seconds:.3f} s")
    assert "Traceback" not in server.stderr()
    assert wait_until(
        lambda: not any(os.path.exists(f"/proc/{pid}") for pid in children), timeout=HANG_GUARD
    ), "a child of the process server outlived it"
    with pytest.raises(ConnectionRefusedError):
        connect(server.port).close()


@pytest.mark.stress
@pytest.mark.parametrize("mode", MODES)
def test_signal_race_right_after_listening(impl: str, mode: str, start_server) -> None:
    for signum in [signal.SIGINT, signal.SIGTERM] * 5:
        server = start_server(impl, mode)
        status, seconds = server.stop(signum)
        assert status == 0, server.stderr()
        assert "Traceback" not in server.stderr()


# ------------------------------------------------------------- hardening


def failed_accepts(server: ServerProcess) -> int:
    """accept() failures so far: with ``-v`` the server logs each one."""
    return server.stderr().count("accept: ")


# Failed accepts watched while out of descriptors (ACCEPT_BACKOFF apart: 0.5 s).
ATTEMPTS = 5


@pytest.mark.parametrize("mode", ["thread", "prethreaded", "event"])
def test_running_out_of_descriptors_neither_crashes_nor_spins(
    impl: str, mode: str, start_server
) -> None:
    """Out of descriptors, the server pauses ACCEPT_BACKOFF between accept
    attempts and does nothing in between; once clients leave, it serves again.

    Counted, not timed: a loaded machine makes attempts rarer and uses less
    CPU per wall-clock second, never more. A retry without the pause shows as
    more attempts than the clock allows; a busy loop between attempts as CPU
    ticks per attempt (a pause costs well under a millisecond of CPU; a loop
    spinning through it burns its share of the 0.1 s: 6 ticks at 60 %; 2 are allowed).
    """

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24))

    server = start_server(impl, mode, "-v", "--threads", "30", preexec_fn=few_descriptors)
    clients = [connect(server.port) for _ in range(40)]
    try:
        assert wait_until(lambda: failed_accepts(server) >= 2, timeout=HANG_GUARD)
        assert "Too many open files" in server.stderr(), server.stderr()
        first, ticks, started = failed_accepts(server), cpu_ticks(server.pid), time.monotonic()
        assert wait_until(
            lambda: failed_accepts(server) >= first + ATTEMPTS, timeout=HANG_GUARD, interval=0.01
        ), f"accept not retried: {failed_accepts(server) - first} attempts"
        spent = cpu_ticks(server.pid) - ticks
        attempts = failed_accepts(server) - first
        elapsed = time.monotonic() - started
        assert attempts <= elapsed / ACCEPT_BACKOFF + 2, (
            f"{attempts} failed accepts in {elapsed:.2f} s: retried without pausing"
        )
        assert spent <= 2 * attempts, f"{spent} ticks of CPU for {attempts} failed accepts"
    finally:
        for sock in clients:
            sock.close()
    assert_healthy(server)


@pytest.mark.parametrize("mode", MODES)
def test_idle_timeout_closes_a_silent_client(impl: str, mode: str, start_server) -> None:
    """The idle timeout closes the client (never before its time); a timeout
    that never fires fails the test at the hang guard (the socket's timeout)."""
    server = start_server(impl, mode, "--idle-timeout", "0.3")
    with connect(server.port, timeout=HANG_GUARD) as silent:
        silent.sendall(b"hello\nunfinished")
        started = time.monotonic()
        assert recv_until_eof(silent) == b"hello\n"
        assert time.monotonic() - started > 0.2
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
