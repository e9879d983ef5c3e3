"""TLS for the tests: a self-signed certificate for localhost made by the
``openssl`` command (Debian ``openssl``) once per session, contexts for both
ends, and ``tls_pair``: a connected client ``SSLSocket`` whose server end runs
a function in a thread."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

import pytest

from .netutil import require_program

TlsPair = Callable[[Callable[[ssl.SSLSocket], Any]], ssl.SSLSocket]


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Tuple[Path, Path]:
    """(certificate, key) for CN=localhost, 127.0.0.1, valid for two days."""
    openssl = require_program("openssl", "openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="session")
def server_context(tls_files: Tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, tls_files))
    return context


@pytest.fixture(scope="session")
def client_context(tls_files: Tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls_files[0]))


@pytest.fixture
def tls_pair(server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> Iterator[TlsPair]:
    """``tls_pair(serve)``: a client SSLSocket connected over loopback to a
    server thread that runs ``serve(server_ssl_socket)`` and then closes it."""
    threads: List[threading.Thread] = []
    sockets: List[socket.socket] = []

    def connect(serve: Callable[[ssl.SSLSocket], Any]) -> ssl.SSLSocket:
        listener = socket.create_server(("127.0.0.1", 0))
        sockets.append(listener)

        def run() -> None:
            conn, _ = listener.accept()
            with server_context.wrap_socket(conn, server_side=True) as server:
                serve(server)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        raw = socket.create_connection(listener.getsockname()[:2], timeout=30)
        client = client_context.wrap_socket(raw, server_hostname="localhost")
        sockets.append(client)
        return client

    yield connect
    for thread in threads:
        thread.join(30)
    for sock in sockets:
        sock.close()
