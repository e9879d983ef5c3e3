"""Helpers for the network tests: the csapp command in a child, loopback sockets.

Every wait has a timeout; every child is killed by the fixture that made it.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import pytest

import csapp

IMPLS = ["c", "python"]
MODES = ["iterative", "process", "thread", "prethreaded", "event"]
CONCURRENT_MODES = ["process", "thread", "prethreaded", "event"]
PACKAGE_ROOT = os.path.dirname(os.path.dirname(csapp.__file__))
TIMEOUT = 10.0  # seconds: the longest any single wait may take


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def fd_count() -> int:
    """Open descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def child_env(impl: str) -> Dict[str, str]:
    """The environment of a ``python -m csapp`` child using implementation ``impl``."""
    env = dict(os.environ)
    paths = [PACKAGE_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.pop("CSAPP_NO_EXTENSIONS", None)
    if impl == "python":
        env["CSAPP_NO_EXTENSIONS"] = "1"
        env.pop("CSAPP_REQUIRE_EXTENSIONS", None)
    return env


def csapp_command(*args: str) -> List[str]:
    return [sys.executable, "-m", "csapp", *args]


def run_csapp(impl: str, *args: str, input: Optional[bytes] = None,
              timeout: float = 30.0, **kwargs: object) -> subprocess.CompletedProcess:
    """Run ``python -m csapp ARGS`` to completion, output captured."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(csapp_command(*args), input=input, env=child_env(impl),
                          timeout=timeout, **kwargs)  # type: ignore[call-overload]


def require_impl(name: str) -> str:
    """``name`` if that implementation is importable here, else skip the test."""
    if name not in csapp.IMPLEMENTATIONS:
        pytest.skip("the compiled extension is not built here")
    return name


@pytest.fixture(params=IMPLS)
def impl(request: pytest.FixtureRequest) -> str:
    """ "c" or "python": the implementation a child process uses.

    A fixture other test modules may import; test_servers and test_cli define
    their own copy.
    """
    return require_impl(request.param)


def read_line(fd: int, timeout: float) -> bytes:
    """One line from a pipe, or what came before EOF or the timeout."""
    data = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                break
            byte = os.read(fd, 1)
            if not byte:
                break
            data += byte
    return data


class ServerProcess:
    """``csapp echoserver`` in a child process, in its own process group."""

    def __init__(self, impl: str, mode: str, *extra: str,
                 preexec_fn: Optional[Callable[[], None]] = None) -> None:
        self.impl = impl
        self.mode = mode
        self.errors = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            csapp_command("echoserver", "--mode", mode, *extra, "0"),
            stdout=subprocess.PIPE, stderr=self.errors, env=child_env(impl),
            start_new_session=True, preexec_fn=preexec_fn)
        assert self.proc.stdout is not None
        self.first_line = read_line(self.proc.stdout.fileno(), TIMEOUT).decode()
        if not self.first_line.startswith("listening on "):
            self.kill()
            raise AssertionError(f"no 'listening on' line: {self.first_line!r}; "
                                 f"stderr: {self.stderr()!r}")
        self.port = int(self.first_line.split()[-1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        self.errors.seek(0)
        return self.errors.read().decode(errors="replace")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = TIMEOUT) -> Tuple[int, float]:
        """Send ``signum``; the exit status and the seconds it took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signum)
        status = self.proc.wait(timeout)
        return status, time.monotonic() - started

    def kill(self) -> None:
        """Kill the whole process group (children of the process mode too)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.errors.close()


@contextlib.contextmanager
def server_factory() -> Iterator[Callable[..., ServerProcess]]:
    """A factory of servers; every one is killed when the block ends."""
    servers: List[ServerProcess] = []

    def start(impl: str, mode: str, *extra: str, **kwargs: object) -> ServerProcess:
        server = ServerProcess(impl, mode, *extra, **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.kill()


@pytest.fixture
def start_server() -> Iterator[Callable[..., ServerProcess]]:
    """A factory of ``csapp echoserver`` children, all killed when the test ends."""
    with server_factory() as start:
        yield start


def connect(port: int, host: str = "127.0.0.1", timeout: float = TIMEOUT) -> socket.socket:
    return socket.create_connection((host, port), timeout=timeout)


def recv_until_eof(sock: socket.socket, limit: int = 1 << 26) -> bytes:
    parts: List[bytes] = []
    size = 0
    while size < limit:
        data = sock.recv(1 << 16)
        if not data:
            break
        parts.append(data)
        size += len(data)
    return b"".join(parts)


def recv_exactly(sock: socket.socket, count: int) -> bytes:
    parts: List[bytes] = []
    while count > 0:
        data = sock.recv(min(count, 1 << 16))
        if not data:
            break
        parts.append(data)
        count -= len(data)
    return b"".join(parts)


def exchange(port: int, data: bytes, host: str = "127.0.0.1") -> bytes:
    """Send ``data`` (a thread sends while we read), half-close, return the echo."""
    with connect(port, host) as sock:
        def send() -> None:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        try:
            return recv_until_eof(sock)
        finally:
            sender.join(TIMEOUT)


def reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer gets a RST, not a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def cpu_ticks(pid: int) -> int:
    """User plus system CPU time of a process, in clock ticks."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def children_of(pid: int) -> Dict[int, str]:
    """The child processes of ``pid`` and their states (``Z`` is a zombie)."""
    found: Dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found[int(entry)] = fields[0]
    return found


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT,
               interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def sample_data(size: int, seed: int = 1) -> bytes:
    """Binary lines: NUL bytes, every byte value, a line longer than MAXLINE,
    and a last line without a newline."""
    import random

    rng = random.Random(seed)
    body = rng.randbytes(size)
    return (b"\0\0nul line\n" + bytes(range(256)) + b"\n"
            + b"L" * (3 * csapp.MAXLINE + 17) + b"\n" + body + b"last line, no newline")
