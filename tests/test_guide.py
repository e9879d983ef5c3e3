"""docs/GUIDE.md holds: its table names real functions, and each difference
from the C code that it lists is shown by a test here.

The servers run as ``python -m csapp echoserver`` children on free loopback
ports, killed when the test ends; every wait is bounded.
"""

from __future__ import annotations

import errno
import importlib
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, List, Tuple

import pytest

import csapp
from csapp._shared import MSG_MAXLEN
from support.netutil import (
    TIMEOUT,
    ServerProcess,
    child_env,
    csapp_command,
    has_ipv6_loopback,
    recv_exactly,
    run_csapp,
)

ROOT = Path(__file__).parent.parent
GUIDE = ROOT / "docs" / "GUIDE.md"
EXAMPLES = ROOT / "examples"

# The C names of the lecture the table must cover (the list).
C_NAMES = [
    "open",
    "read",
    "write",
    "close",
    "rio_readn",
    "rio_writen",
    "rio_readinitb",
    "rio_readlineb",
    "rio_readnb",
    "Open_clientfd",
    "Open_listenfd",
    "Accept",
    "Getaddrinfo",
    "Getnameinfo",
    "htonl",
    "htons",
    "ntohl",
    "ntohs",
    "inet_pton",
    "inet_ntop",
    "Rio_readlineb",
    "Close",
    "unix_error",
]
MODULES = ("csapp", "os", "socket", "struct", "select", "selectors", "signal", "sys")


# -------------------------------------------------------------- the table


def table_rows() -> List[Tuple[str, str]]:
    """(C cell, Python cell) of each row of the "Name by name" table."""
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## Name by name", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells[:2] == ["C (lecture)", "Python"]:
            continue
        rows.append((cells[0], cells[1]))
    return rows


def python_names(cell: str) -> List[str]:
    """Every ``module.attr...`` name at the start of a backticked span."""
    pattern = rf"`((?:{'|'.join(MODULES)})(?:\.[A-Za-z_]\w*)+)"
    return re.findall(pattern, cell)


def resolve(name: str) -> Any:
    """``csapp.client.echo_client`` -> the object, importing submodules as needed."""
    parts = name.split(".")
    obj: Any = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[: i + 1]))
    return obj


def test_table_parser_sees_the_table() -> None:
    rows = table_rows()
    assert len(rows) >= 35
    assert (
        "`rio_readn(fd, buf, n)`",
        "`csapp.rio_readn(fd, n)`, `csapp.rio_readinto(fd, buf)`",
    ) in rows
    assert python_names("`socket.socket.accept`, `os.read(fd, n)` `open()`") == [
        "socket.socket.accept",
        "os.read",
    ]


def test_every_row_names_real_functions() -> None:
    for c_cell, py_cell in table_rows():
        names = python_names(py_cell)
        assert names, f"row {c_cell!r} names no Python function"
        for name in names:
            assert resolve(name) is not None, name  # raises if it does not exist


def test_resolve_rejects_a_missing_name() -> None:
    # The check above would catch a typo in the table.
    with pytest.raises((AttributeError, ImportError)):
        resolve("csapp.rio_readline_b")
    with pytest.raises((AttributeError, ImportError)):
        resolve("socket.socket.acept")


def test_table_covers_the_lecture() -> None:
    c_column = " ".join(c for c, _ in table_rows())
    names = set(re.findall(r"[A-Za-z_]\w*", " ".join(re.findall(r"`([^`]*)`", c_column))))
    missing = [name for name in C_NAMES if name not in names]
    assert not missing


def test_guide_links_every_example() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    for path in EXAMPLES.glob("*.py"):
        assert f"(../examples/{path.name})" in text, path.name


def test_every_difference_names_a_test_here() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## Where `csapp` differs", 1)[1]
    parts = re.split(r"^\*\*(\d+)\. ", section, flags=re.MULTILINE)
    numbers, bodies = parts[1::2], parts[2::2]
    assert numbers == [str(i) for i in range(1, len(numbers) + 1)]
    assert len(numbers) >= 5
    for number, body in zip(numbers, bodies):
        tests = re.findall(r"`test_guide\.py::(\w+)`", body)
        assert tests, f"difference {number} names no test"
        for name in tests:
            assert callable(globals().get(name)), name


# ------------------------------------------------ 1. the event server


def test_event_server_echoes_lines_that_arrive_together(
    impl: str, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(impl, "event")
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # One send of two lines: one segment, read by the server in one read.
        sock.sendall(b"one\ntwo\n")
        assert recv_exactly(sock, 8) == b"one\ntwo\n"
        # Three lines and the start of a fourth, then the rest of it.
        sock.sendall(b"a\nb\nc\nfour")
        assert recv_exactly(sock, 6) == b"a\nb\nc\n"
        sock.sendall(b"th\n")
        assert recv_exactly(sock, 7) == b"fourth\n"


# --------------------------------------------- 2. dual-stack open_listenfd


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_open_listenfd_accepts_ipv4_and_ipv6(host: str) -> None:
    if host == "::1" and not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this host")
    listenfd = csapp.open_listenfd(0)
    listener = socket.socket(fileno=listenfd)
    try:
        listener.settimeout(TIMEOUT)
        port = listener.getsockname()[1]
        with socket.create_connection((host, port), timeout=TIMEOUT) as client:
            conn, address = listener.accept()
            with conn:
                # An IPv4 client of the dual-stack socket shows as ::ffff:127.0.0.1.
                assert address[0] in (host, f"::ffff:{host}")
                client.sendall(b"over " + host.encode() + b"\n")
                line = csapp.Rio(conn.fileno()).readlineb()
                assert line == b"over " + host.encode() + b"\n"
    finally:
        listener.close()


# ------------------------------------------ 3. and 6. the echo client


def client_command(which: str, port: int) -> List[str]:
    if which == "csapp":
        return csapp_command("echoclient", "127.0.0.1", str(port))
    return [sys.executable, str(EXAMPLES / "echoclient.py"), "127.0.0.1", str(port)]


class ClosingServer:
    """A one-client server that echoes ``lines`` lines, then closes its side.

    It shuts down its sending side (the client reads EOF) and keeps reading
    until the client leaves, so the client never sees a reset.
    """

    def __init__(self, lines: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TIMEOUT)
        self.port = self.listener.getsockname()[1]
        self.lines = lines
        self.received: List[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            # Bounded reads that stay blocking for the Rio (settimeout would make
            # the descriptor non-blocking): a read times out with EAGAIN.
            conn.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", int(TIMEOUT), 0)
            )
            rio = csapp.Rio(conn.fileno())
            for _ in range(self.lines):
                line = rio.readlineb()
                self.received.append(line)
                conn.sendall(line)
            conn.shutdown(socket.SHUT_WR)
            while rio.read1(4096):
                pass

    def close(self) -> None:
        self.thread.join(TIMEOUT)
        self.listener.close()


@pytest.fixture
def closing_server() -> Iterator[Callable[[int], ClosingServer]]:
    servers: List[ClosingServer] = []

    def make(lines: int) -> ClosingServer:
        servers.append(ClosingServer(lines))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.mark.parametrize("which", ["csapp", "example"])
def test_echo_client_prints_each_reply_once_when_server_closes(
    which: str, impl: str, closing_server: Callable[[int], ClosingServer]
) -> None:
    server = closing_server(2)
    result = subprocess.run(
        client_command(which, server.port),
        input=b"one\ntwo\nthree\nfour\n",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(impl),
        cwd=ROOT,
        timeout=TIMEOUT,
    )
    # C would print "three" too: the line it just sent, left in its buffer.
    assert (result.returncode, result.stdout, result.stderr) == (0, b"one\ntwo\n", b"")
    server.close()
    assert server.received == [b"one\n", b"two\n"]


@pytest.mark.parametrize("which", ["csapp", "example"])
def test_echo_client_last_line_without_newline(
    which: str, impl: str, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(impl, "iterative")
    result = subprocess.run(
        client_command(which, server.port),
        input=b"first\nno newline at the end",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(impl),
        cwd=ROOT,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"first\nno newline at the end"


# -------------------------------------------------------- 4. maxlen < 2


def test_readlineb_maxlen_below_2_raises(rio: ModuleType) -> None:
    r, w = os.pipe()
    try:
        os.write(w, b"ab\n")
        rp = rio.Rio(r)
        for maxlen in (1, 0, -1):
            with pytest.raises(ValueError, match=MSG_MAXLEN):
                rp.readlineb(maxlen)
        with pytest.raises(ValueError):
            rio.rio_readlineb(rp, 1)
        # Nothing was consumed; maxlen 2 gives one byte at a time (maxlen - 1).
        assert [rp.readlineb(2), rp.readlineb(2), rp.readlineb(2)] == [b"a", b"b", b"\n"]
    finally:
        os.close(r)
        os.close(w)


# --------------------------------------------- 5. errors are exceptions


def test_errors_are_exceptions(rio: ModuleType) -> None:
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as info:  # C: rio_readn returns -1
        rio.rio_readn(r, 10)
    assert info.value.errno == errno.EBADF

    r, w = os.pipe()
    os.close(r)
    try:
        with pytest.raises(BrokenPipeError):  # C: SIGPIPE kills the process
            rio.rio_writen(w, b"to nobody")
    finally:
        os.close(w)

    with socket.socket() as bound:  # bound but not listening: refused
        bound.bind(("127.0.0.1", 0))
        with pytest.raises(ConnectionRefusedError):  # C: open_clientfd returns -1
            csapp.open_clientfd("127.0.0.1", bound.getsockname()[1])
    with pytest.raises(socket.gaierror):  # C: open_clientfd returns -2
        csapp.open_clientfd("no-such-host.invalid", 80)


def test_refused_client_exits_1_not_0() -> None:
    # C's Open_clientfd wrapper calls unix_error, which exits with status 0.
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        result = run_csapp(
            "python",
            "echoclient",
            "127.0.0.1",
            str(bound.getsockname()[1]),
            input=b"x\n",
            timeout=TIMEOUT,
        )
    assert result.returncode == 1
    assert result.stdout == b""
    assert len(result.stderr.splitlines()) == 1 and b"refused" in result.stderr


# ----------------------------------------------------- 7. hostinfo, IPv6


def test_hostinfo_lists_ipv6_too() -> None:
    result = run_csapp("python", "hostinfo", "::1", timeout=TIMEOUT)
    assert (result.returncode, result.stdout) == (0, b"::1\n")
    # The example with -4 does what hostinfo.c does (hints.ai_family = AF_INET).
    c_like = subprocess.run(
        [sys.executable, str(EXAMPLES / "hostinfo.py"), "-4", "::1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env("python"),
        cwd=ROOT,
        timeout=TIMEOUT,
    )
    assert c_like.returncode == 1 and c_like.stdout == b""
    assert c_like.stderr.startswith(b"getaddrinfo error: ")


# --------------------------------------- 8. EINTR: a handler may raise


class Alarm(Exception):
    pass


def test_signal_handler_interrupts_read_and_nothing_is_lost(rio: ModuleType) -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")

    def on_alarm(signum: int, frame: object) -> None:
        raise Alarm()

    r, w = os.pipe()
    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        rp = rio.Rio(r)
        os.write(w, b"a partial")
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Alarm):  # C would go on waiting
            rp.readlineb()  # blocked: the line has no end yet
        os.write(w, b" line\n")
        assert rp.readlineb() == b"a partial line\n"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        os.close(r)
        os.close(w)


# --------------------------------------------------- 9. echo's result


def test_echo_returns_byte_count() -> None:
    client, server = socket.socketpair()
    with client, server:
        client.settimeout(TIMEOUT)
        client.sendall(b"a\nbb\nccc")
        client.shutdown(socket.SHUT_WR)
        assert csapp.echo(server.fileno()) == 8
        server.shutdown(socket.SHUT_WR)
        assert b"".join(iter(lambda: client.recv(100), b"")) == b"a\nbb\nccc"
