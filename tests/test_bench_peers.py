"""The benchmarks' Python peer servers (``bench/harness/peers.py``) echo what
they are sent, byte for byte: a ratio against a peer that drops or mangles
bytes would mean nothing. The C server is left out (it needs the compiler)."""

from __future__ import annotations

import socket
import threading

import pytest

from bench.harness.server_process import ServerSpec, python_peers, running
from support.netutil import recv_exactly

PYTHON_PEERS = python_peers()


def test_every_socketserver_peer_is_measured() -> None:
    names = {spec.name for spec in PYTHON_PEERS}
    assert {
        "socketserver.ThreadingTCPServer",
        "ThreadingTCPServer + csapp handler",
        "ThreadingTCPServer, bare recv (ceiling)",
        "asyncio streams",
    } <= names


@pytest.mark.parametrize("spec", PYTHON_PEERS, ids=lambda spec: spec.name)
def test_peer_echoes_requests_and_a_burst_byte_for_byte(spec: ServerSpec) -> None:
    with running(spec) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            for number in range(20):  # request/response, as the load generator does
                line = b"%02d:" % number + b"x" * 60 + b"\n"
                sock.sendall(line)
                assert recv_exactly(sock, len(line)) == line
            burst = b"".join(b"%d:" % i + b"y" * (i % 300) + b"\n" for i in range(2000))
            # Sent from a thread: the echo flows back while the burst goes out.
            sender = threading.Thread(target=sock.sendall, args=(burst,), daemon=True)
            sender.start()
            assert recv_exactly(sock, len(burst)) == burst
            sender.join(10)
