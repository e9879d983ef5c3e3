"""Helpers for the network tests: the csapp command in a child, loopback sockets.

Every wait has a timeout; every child is killed by the fixture that made it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest

import csapp

from .rioutil import TWINS

MODES = ["iterative", "process", "thread", "prethreaded", "event", "asyncio"]
CONCURRENT_MODES = ["process", "thread", "prethreaded", "event", "asyncio"]
PACKAGE_ROOT = os.path.dirname(os.path.dirname(csapp.__file__))
TIMEOUT = 10.0  # seconds: the longest any single wait may take
# Seconds after which a wait fails: only a hang gets there, never a loaded
# machine. The default suite bounds no time or latency below this (it reports
# such figures through the ``figures`` fixture; ``-m stress`` checks issue 5's).
HANG_GUARD = 30.0


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


def run_csapp(
    impl: str, *args: str, input: Optional[bytes] = None, timeout: float = 30.0, **kwargs: object
) -> subprocess.CompletedProcess:
    """Run ``python -m csapp ARGS`` to completion, output captured."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    return subprocess.run(
        csapp_command(*args), input=input, env=child_env(impl), timeout=timeout, **kwargs
    )  # type: ignore[call-overload]


def require_program(program: str, package: str) -> str:
    """The path of ``program``; skip the test if it is missing (Debian
    ``package`` has it), but fail it under CI (``CI`` set), where .ci/run
    installs it and a skip would hide a test that did not run."""
    path = shutil.which(program)
    if path is None:
        reason = f"{program} is not installed (apt-get install {package})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI installs it", pytrace=False)
        pytest.skip(reason)
    return path


def require_impl(name: str) -> str:
    """``name`` if that implementation is importable here, else skip the test."""
    if name not in csapp.IMPLEMENTATIONS:
        pytest.skip("the compiled extension is not built here")
    return name


@pytest.fixture(params=TWINS)
def impl(request: pytest.FixtureRequest) -> str:
    """ "c" or "python": the implementation a child process uses.

    A fixture: the network test modules import it (with ``start_server`` and
    ``shared_servers``).
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


def kill_group(proc: subprocess.Popen[bytes], timeout: float = TIMEOUT) -> None:
    """SIGKILL the process group ``proc`` leads, and reap ``proc``."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass


class ServerProcess:
    """``csapp echoserver`` in a child process, in its own process group."""

    def __init__(
        self,
        impl: str,
        mode: str,
        *extra: str,
        preexec_fn: Optional[Callable[[], None]] = None,
        port: int = 0,
        prefix: Sequence[str] = (),
    ) -> None:
        """``prefix`` goes before the command (``ip netns exec NS``, which execs
        in place: the pid stays the server's)."""
        self.impl = impl
        self.mode = mode
        # The child inherits this open file description. O_APPEND makes its writes land at the
        # end whatever the offset; stderr() reads with pread, which never moves the offset.
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115  (closed in kill())
        fcntl.fcntl(
            self.errors.fileno(),
            fcntl.F_SETFL,
            fcntl.fcntl(self.errors.fileno(), fcntl.F_GETFL) | os.O_APPEND,
        )
        self.proc = subprocess.Popen(
            [*prefix, *csapp_command("echoserver", "--mode", mode, *extra, str(port))],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            env=child_env(impl),
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        assert self.proc.stdout is not None
        self.first_line = read_line(self.proc.stdout.fileno(), TIMEOUT).decode()
        if not self.first_line.startswith("listening on "):
            self.kill()
            raise AssertionError(
                f"no 'listening on' line: {self.first_line!r}; stderr: {self.stderr()!r}"
            )
        self.port = int(self.first_line.split()[-1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr(self) -> str:
        if self.errors.closed:
            return ""
        fd = self.errors.fileno()
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0).decode(errors="replace")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = TIMEOUT) -> Tuple[int, float]:
        """Send ``signum``; the exit status and the seconds it took to exit."""
        started = time.monotonic()
        self.proc.send_signal(signum)
        status = self.proc.wait(timeout)
        return status, time.monotonic() - started

    def kill(self) -> None:
        """Kill the whole process group (children of the process mode too)."""
        kill_group(self.proc)
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


def wait_until(
    predicate: Callable[[], bool], timeout: float = TIMEOUT, interval: float = 0.02
) -> bool:
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
    return (
        b"\0\0nul line\n"
        + bytes(range(256))
        + b"\n"
        + b"L" * (3 * csapp.MAXLINE + 17)
        + b"\n"
        + body
        + b"last line, no newline"
    )


# ------------------------------------------------ reliability helpers (issue 5)

import errno  # noqa: E402  (used by the helpers below only)
import resource  # noqa: E402


def raise_nofile_limit(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE up to its hard limit (children
    inherit it); skip the test if even the hard limit is below ``needed``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = hard
        if hard == resource.RLIM_INFINITY:
            with open("/proc/sys/fs/nr_open") as nr_open:
                target = int(nr_open.read())
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def server_fd_count(pid: int) -> int:
    """Open descriptors of process ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def zombies_of(pid: int) -> List[int]:
    """Children of ``pid`` that exited and were not reaped."""
    return [child for child, state in children_of(pid).items() if state == "Z"]


def free_port() -> int:
    """A TCP port nobody listens on right now (for a server that must reuse it)."""
    with socket.socket(socket.AF_INET6 if has_ipv6_loopback() else socket.AF_INET) as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
}
# ss's names for the same states.
SS_STATES = {
    "ESTAB": "ESTABLISHED",
    "SYN-SENT": "SYN_SENT",
    "SYN-RECV": "SYN_RECV",
    "FIN-WAIT-1": "FIN_WAIT1",
    "FIN-WAIT-2": "FIN_WAIT2",
    "TIME-WAIT": "TIME_WAIT",
    "UNCONN": "CLOSE",
    "CLOSE-WAIT": "CLOSE_WAIT",
    "LAST-ACK": "LAST_ACK",
    "LISTEN": "LISTEN",
    "CLOSING": "CLOSING",
}


def local_tcp_states(port: int) -> List[str]:
    """The states of every TCP socket of this host whose local port is ``port``
    (TIME_WAIT sockets have no owner but show here). Asks ``ss``, whose filter
    runs in the kernel (sock_diag); /proc/net/tcp is the fallback, but reading
    it walks every socket of the host, tens of milliseconds a call while the
    10,000-connection test's TIME_WAIT sockets linger."""
    ss = shutil.which("ss")
    if ss is not None:
        rows = subprocess.run(
            [ss, "-Htan", "state", "all", "sport", "=", f":{port}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.splitlines()
        return [SS_STATES.get(row.split()[0], row.split()[0]) for row in rows if row.strip()]
    states: List[str] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                next(rows)
                for row in rows:
                    fields = row.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port:
                        states.append(TCP_STATES.get(fields[3], fields[3]))
        except FileNotFoundError:
            continue
    return states


def bind_without_reuseaddr(port: int) -> Optional[OSError]:
    """Try to bind ``port`` like ``open_listenfd`` does, but without SO_REUSEADDR;
    the error it gets (EADDRINUSE while a TIME_WAIT socket holds the port), or None."""
    family = socket.AF_INET6 if has_ipv6_loopback() else socket.AF_INET
    with socket.socket(family) as sock:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            sock.bind(("", port))
        except OSError as exc:
            return exc
    return None


def load_line(client: int, number: int) -> bytes:
    """Line ``number`` of load client ``client``: 10 to 125 bytes, names its sender,
    binary bytes (NUL, 0xff, CR) inside, newline at the end."""
    filler = bytes(
        (33 + (client * 7 + number * 13 + i) % 90) for i in range((client + number) % 112)
    )
    return b"%d:%d \0\xff\r " % (client, number) + filler + b"\n"


class _LoadClient:
    __slots__ = (
        "burst",
        "bursts",
        "events",
        "number",
        "payload",
        "received",
        "sent",
        "sock",
        "state",
    )

    def __init__(self, number: int, payload: bytes, bursts: List[int]) -> None:
        self.number = number
        self.sock: Optional[socket.socket] = None
        self.payload = payload
        self.bursts = bursts  # byte offset at which each burst ends
        self.burst = 0
        self.sent = 0
        self.received = 0
        self.state = "connecting"
        self.events = 0


class LoadReport:
    """What ``echo_load`` saw: one entry per failed client, byte totals, time."""

    def __init__(self) -> None:
        self.failures: Dict[int, str] = {}
        self.expected = 0
        self.sent = 0
        self.received = 0
        self.completed = 0
        self.seconds = 0.0
        self.held: object = None  # what ``while_held`` returned

    def __repr__(self) -> str:
        some = dict(list(self.failures.items())[:5])
        return (
            f"LoadReport(completed={self.completed}, failed={len(self.failures)} "
            f"e.g. {some}, expected={self.expected}, sent={self.sent}, "
            f"received={self.received}, seconds={self.seconds:.2f})"
        )


def echo_load(
    port: int,
    clients: int,
    lines: int,
    *,
    burst: int = 1,
    host: str = "127.0.0.1",
    timeout: float = 60.0,
    stall: float = TIMEOUT,
    while_held: Optional[Callable[[], object]] = None,
) -> LoadReport:
    """``clients`` concurrent echo clients, driven by one thread with a selector.

    Every client connects (non-blocking) before any sends; then each sends its
    ``lines`` lines (``load_line``) in bursts (client ``n``: ``1 + n % burst``
    lines at once, so lines also arrive together), waiting for the exact echo
    of a burst before the next; then it half-closes and waits for the server's
    EOF. With ``while_held``, no client half-closes until all have their echo:
    ``while_held()`` runs then, with every connection open (only for servers
    that serve all clients at once), and its result goes to ``report.held``.
    Bounded by ``timeout``, and by ``stall`` seconds without any progress:
    clients unfinished by then fail.
    """
    report = LoadReport()
    everyone: List[_LoadClient] = []
    for number in range(clients):
        payload_lines = [load_line(number, i) for i in range(lines)]
        ends, size = [], 0
        step = 1 + number % burst
        for start in range(0, lines, step):
            size += sum(len(line) for line in payload_lines[start : start + step])
            ends.append(size)
        everyone.append(_LoadClient(number, b"".join(payload_lines), ends))
        report.expected += size
    started = time.monotonic()
    deadline = started + timeout
    selector = selectors.DefaultSelector()
    live = 0
    holding = 0

    def watch(client: _LoadClient, events: int) -> None:
        assert client.sock is not None
        if events == client.events:
            return
        if not client.events:
            selector.register(client.sock, events, client)
        elif not events:
            selector.unregister(client.sock)
        else:
            selector.modify(client.sock, events, client)
        client.events = events

    def finish(client: _LoadClient, failure: Optional[str] = None) -> None:
        nonlocal live, holding
        if client.state == "held":
            holding -= 1
        if failure is not None:
            report.failures[client.number] = failure
        else:
            report.completed += 1
        if client.sock is not None:
            watch(client, 0)
            client.sock.close()
        client.state = "done"
        live -= 1

    def pump(client: _LoadClient) -> None:
        """Send the rest of the current burst; ask for EPOLLOUT if it does not fit."""
        assert client.sock is not None
        end = client.bursts[client.burst]
        while client.sent < end:
            try:
                client.sent += client.sock.send(memoryview(client.payload)[client.sent : end])
            except BlockingIOError:
                break
        report_events = selectors.EVENT_READ
        if client.sent < end:
            report_events |= selectors.EVENT_WRITE
        watch(client, report_events)

    def half_close(client: _LoadClient) -> None:
        assert client.sock is not None
        client.sock.shutdown(socket.SHUT_WR)
        client.state = "closing"
        watch(client, selectors.EVENT_READ)

    try:
        for client in everyone:
            client.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            client.sock.setblocking(False)
            live += 1
            err = client.sock.connect_ex((host, port))
            if err not in (0, errno.EINPROGRESS):
                finish(client, f"connect: {os.strerror(err)}")
                continue
            watch(client, selectors.EVENT_WRITE)
        connecting = live
        released = while_held is None
        progress = (live, report.received, holding)
        stalled_at = time.monotonic() + stall
        while live > 0:
            now = time.monotonic()
            if now >= deadline or now >= stalled_at:
                break
            if progress != (live, report.received, holding):
                progress = (live, report.received, holding)
                stalled_at = now + stall
            for key, mask in selector.select(min(deadline - now, 1.0)):
                client = key.data
                sock = client.sock
                try:
                    if client.state == "connecting":
                        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            finish(client, f"connect: {os.strerror(err)}")
                        else:
                            client.state = "connected"
                            watch(client, 0)
                        connecting -= 1
                        if connecting == 0:  # everyone is in: start them all
                            for other in everyone:
                                if other.state == "connected":
                                    other.state = "echoing"
                                    pump(other)
                        continue
                    if mask & selectors.EVENT_READ:
                        data = sock.recv(1 << 16)
                        if not data:
                            if client.state == "closing":
                                finish(client)
                            else:
                                finish(client, f"EOF after {client.received} bytes")
                            continue
                        if client.state != "echoing":
                            finish(client, f"{len(data)} unexpected bytes in state {client.state}")
                            continue
                        start = client.received
                        if client.payload[start : start + len(data)] != data:
                            finish(client, f"wrong echo at byte {start}")
                            continue
                        client.received += len(data)
                        report.received += len(data)
                        if client.received == client.bursts[client.burst]:
                            client.burst += 1
                            if client.burst < len(client.bursts):
                                pump(client)
                            elif while_held is None:
                                half_close(client)
                            else:
                                client.state = "held"
                                holding += 1
                        elif client.received > client.bursts[client.burst]:
                            finish(client, "echo of a burst not yet sent")
                            continue
                    if mask & selectors.EVENT_WRITE and client.state == "echoing":
                        pump(client)
                except OSError as exc:
                    finish(client, f"{type(exc).__name__}: {exc}")
            if not released and holding and holding == live:  # the rest are done
                released = True
                report.held = while_held()  # type: ignore[misc]
                for client in everyone:
                    if client.state == "held":
                        try:
                            half_close(client)
                        except OSError as exc:
                            finish(client, f"{type(exc).__name__}: {exc}")
    finally:
        report.seconds = time.monotonic() - started
        for client in everyone:
            report.sent += client.sent
            if client.state != "done":
                report.failures.setdefault(
                    client.number,
                    f"unfinished ({client.state}, "
                    f"{client.received} of {len(client.payload)} bytes)",
                )
                if client.sock is not None:
                    client.sock.close()
        selector.close()
    return report


@pytest.fixture(scope="module")
def shared_servers() -> Iterator[Callable[[str, str], ServerProcess]]:
    """One long-lived server per (implementation, mode) for tests that do not stop it
    (a module may import this instead of defining its own)."""
    servers: Dict[Tuple[str, str], ServerProcess] = {}

    def get(impl: str, mode: str) -> ServerProcess:
        server = servers.get((impl, mode))
        if server is None:
            server = servers[impl, mode] = ServerProcess(impl, mode)
        assert server.alive(), f"the {mode} server died: {server.stderr()}"
        return server

    yield get
    for server in servers.values():
        server.kill()
