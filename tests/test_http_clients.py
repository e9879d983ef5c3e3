"""Real clients over csapp.makefile: ``http.client`` and ``urllib.request``
read their responses through ``sock.makefile("rb")``; with csapp.makefile
patched in (plain HTTP and HTTPS, with and without a timeout), every
response is byte-for-byte what the unpatched client gets, and no descriptor
is left open. And ``http.server`` over TLS on csapp's handler, fetched with
``curl`` and ``http.client``."""

from __future__ import annotations

import http.client
import http.server
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from csapp import socketfile
from support.netutil import child_env, require_program

SUPPORT = Path(__file__).resolve().parent / "support"

pytestmark = pytest.mark.usefixtures("watchdog")

BODY = bytes(range(256)) * 300 + b"\nthe end"
CHUNKS = [b"a", b"bc" * 1000, b"\n", bytes(range(256)) * 3, b"x" * 70_001]


class Responses(http.server.BaseHTTPRequestHandler):
    """One path per way a response body can be framed."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()

    def do_GET(self) -> None:
        if self.path == "/length":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Checksum")
            self.end_headers()
            for chunk in CHUNKS:
                self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\nX-Checksum: 42\r\n\r\n")
        elif self.path == "/eof":  # no length: the body ends when the server closes
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(BODY)
            self.close_connection = True
        elif self.path == "/slow":  # headers and body in pieces, with pauses
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Le")
            self.wfile.flush()
            time.sleep(0.05)
            self.wfile.write(b"ngth: %d\r\n\r\n" % len(BODY))
            for start in range(0, len(BODY), 20_000):
                self.wfile.write(BODY[start : start + 20_000])
                self.wfile.flush()
                time.sleep(0.01)
        else:
            self.send_error(404)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def serve(handler: type, context: Optional[ssl.SSLContext]) -> Tuple[Server, threading.Thread]:
    server = Server(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return server, thread


@pytest.fixture(params=["http", "https"])
def site(
    request: pytest.FixtureRequest,
) -> Iterator[Tuple[str, int, Optional[ssl.SSLContext]]]:
    """(scheme, port, client context) of a server of ``Responses``."""
    tls = request.param == "https"
    server_context = request.getfixturevalue("server_context") if tls else None
    client_context = request.getfixturevalue("client_context") if tls else None
    server, thread = serve(Responses, server_context)
    try:
        yield request.param, server.server_address[1], client_context
    finally:
        server.shutdown()
        server.server_close()
        thread.join(30)


@pytest.fixture
def patched(rio: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Any]:
    """A switch: after ``patched()``, every socket's makefile("rb") is
    csapp.makefile over the twin under test (the server's, in this process,
    too); it returns the list of (reader, socket, local port) made."""
    original = socket.socket.makefile
    made: List[Any] = []

    def makefile(self: Any, mode: str = "r", buffering: Any = None, **kwargs: Any) -> Any:
        if "w" in mode or buffering == 0:
            return original(self, mode, buffering, **kwargs)
        reader = socketfile.makefile(self, mode, buffering, implementation=rio, **kwargs)
        made.append((reader, self, self.getsockname()[1]))
        return reader

    def switch() -> List[Any]:
        monkeypatch.setattr(socket.socket, "makefile", makefile)
        return made

    return switch


def client_closed(made: List[Any], server_port: int) -> bool:
    """Every client reader closed, and its socket really closed (a reader
    left open would hold the descriptor through ``_io_refs``)."""
    client = [(reader, sock) for reader, sock, port in made if port != server_port]
    return bool(client) and all(reader.closed and sock.fileno() == -1 for reader, sock in client)


def fetch(
    site: Tuple[str, int, Optional[ssl.SSLContext]],
    method: str,
    path: str,
    timeout: Optional[float],
) -> Dict[str, Any]:
    scheme, port, context = site
    if scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "localhost", port, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        # In pieces and whole: read(n), readinto, then the rest.
        parts = [response.read(7)]
        buffer = bytearray(1000)
        parts.append(bytes(buffer[: response.readinto(buffer)]))
        parts.append(response.read())
        headers = [(k, v) for k, v in response.getheaders() if k.lower() != "date"]
        trailers = response.msg.get_all("X-Checksum")
        return {
            "status": response.status,
            "headers": headers,
            "body": b"".join(parts),
            "trailers": trailers,
        }
    finally:
        conn.close()


@pytest.mark.parametrize("timeout", [None, 10.0], ids=["no-timeout", "timeout-10"])
@pytest.mark.parametrize(
    "method, path",
    [("GET", "/length"), ("GET", "/chunked"), ("GET", "/eof"), ("HEAD", "/length"),
     ("GET", "/slow"), ("GET", "/missing")],
)  # fmt: skip
def test_http_client_gets_what_it_gets_unpatched(
    site: Any, patched: Callable[[], Any], method: str, path: str, timeout: Optional[float]
) -> None:
    expected = fetch(site, method, path, timeout)
    made = patched()
    got = fetch(site, method, path, timeout)
    assert made, "the client did not read through csapp.makefile"
    assert got == expected
    if path in ("/length", "/chunked", "/eof", "/slow") and method == "GET":
        assert BODY in got["body"] or got["body"] == b"".join(CHUNKS)
    assert client_closed(made, site[1]), "a descriptor was left open"


def test_urllib_reads_through_csapp(site: Any, patched: Callable[[], Any]) -> None:
    scheme, port, context = site
    url = f"{scheme}://{'localhost' if context else '127.0.0.1'}:{port}/chunked"
    with urllib.request.urlopen(url, timeout=10, context=context) as response:
        expected = response.read()
    made = patched()
    # urlopen closes the socket right after getresponse(); the body is read after.
    with urllib.request.urlopen(url, timeout=10, context=context) as response:
        got = response.read()
    assert made
    assert got == expected == b"".join(CHUNKS)
    assert client_closed(made, port)


# ------------------------------------------- http.server on csapp's handler


@pytest.fixture
def https_files(
    impl: str, tmp_path: Any, tls_files: Tuple[Any, Any]
) -> Iterator[Tuple[int, Dict[str, bytes]]]:
    """An HTTPS ``http.server`` on csapp's handler (tests/support/https_server.py, a
    child process using the twin under test) serving two files."""
    files = {"small.txt": b"hello over TLS\n", "big.bin": os.urandom(3 << 20)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    proc = subprocess.Popen(
        [sys.executable, str(SUPPORT / "https_server.py"), str(tmp_path), *map(str, tls_files)],
        env=child_env(impl),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line[:1] == [b"port"], proc.stderr.read() if proc.stderr else line
        assert line[2].decode() == impl
        yield int(line[1]), files
    finally:
        proc.kill()
        proc.communicate()


def test_https_server_on_csapp_handler_with_curl(
    https_files: Tuple[int, Dict[str, bytes]], tls_files: Tuple[Any, Any], tmp_path: Any
) -> None:
    curl = require_program("curl", "curl")
    port, files = https_files
    for name, data in files.items():
        out = tmp_path / f"got-{name}"
        subprocess.run(
            [curl, "-sS", "--fail", "--cacert", str(tls_files[0]), "-o", str(out),
             f"https://localhost:{port}/{name}", f"https://localhost:{port}/{name}"],
            check=True, timeout=60, capture_output=True,
        )  # fmt: skip
        assert out.read_bytes() == data, name


def test_https_server_on_csapp_handler_with_http_client(
    https_files: Tuple[int, Dict[str, bytes]], client_context: ssl.SSLContext
) -> None:
    port, files = https_files
    conn = http.client.HTTPSConnection("localhost", port, timeout=30, context=client_context)
    try:
        for _ in range(2):  # keep-alive: two requests on one connection
            for name, data in files.items():
                conn.request("GET", f"/{name}")
                response = conn.getresponse()
                assert response.status == 200
                assert response.read() == data
    finally:
        conn.close()
