"""Helpers shared by the tests: the twins as parameters, descriptors closed at
teardown, a writer thread, the SIGALRM watchdog. A pytest plugin
(``pytest_plugins`` in conftest.py)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import signal
import socket
import struct
import termios
import threading
import time
from typing import Any, Iterator, List, Optional, Sequence, Set, Tuple

import pytest

# The two implementations as fixture parameters, each with its marker:
# ``-m c_extension`` runs the compiled twin's cases only (valgrind.sh),
# ``-m "not fallback"`` drops the pure-Python twin's and keeps the rest.
TWINS = [
    pytest.param("c", marks=pytest.mark.c_extension, id="c"),
    pytest.param("python", marks=pytest.mark.fallback, id="python"),
]

TEST_TIMEOUT = 30.0


def exactly(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern for ``message`` whole, nothing around it."""
    return f"^{re.escape(message)}$"


def strace_argv(calls: str, output: str) -> List[str]:
    """strace's options for a child whose system calls ``calls`` (e.g.
    ``"read,write"``; stat calls are added, for the children's markers) are
    written to ``output``: every thread, only those calls (seccomp, so the
    rest run at full speed), no strings, no signals; the child's argv follows."""
    return [
        "strace",
        "-f",
        "--seccomp-bpf",  # stop only at the traced calls: 10x faster
        "-qq",
        "-s",
        "0",
        "-e",
        "abbrev=none",
        "-e",
        "signal=none",
        "-e",
        f"trace={calls},stat,newfstatat,statx",
        "-o",
        output,
    ]


def pending(fd: int) -> int:
    """Bytes waiting in a pipe or a socket (FIONREAD)."""
    buf = fcntl.ioctl(fd, termios.FIONREAD, struct.pack("i", 0))
    return int(struct.unpack("i", buf)[0])


def signal_when_drained(fd: int, signum: int, settle: float = 0.02) -> threading.Thread:
    """Send ``signum`` to the main thread once nothing waits in ``fd`` (and
    ``settle`` seconds more): the reader has taken everything and is blocked.
    A timer alone fires too early when a loaded machine reads slowly."""
    main = threading.main_thread().ident
    assert main is not None

    def wait_then_signal() -> None:
        deadline = time.monotonic() + TEST_TIMEOUT
        while pending(fd) and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(settle)
        signal.pthread_kill(main, signum)

    thread = threading.Thread(target=wait_then_signal, daemon=True, name="signal-when-drained")
    thread.start()
    return thread


def blocked_on(tid: int, fd: int) -> Optional[bool]:
    """Is thread ``tid`` of this process asleep in a system call on ``fd`` (its
    first argument, in /proc/self/task/TID/syscall)? ``None`` where /proc
    cannot tell."""
    try:
        with open(f"/proc/self/task/{tid}/syscall") as f:
            fields = f.read().split()
        with open(f"/proc/self/task/{tid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    if len(fields) < 2 or not fields[0].isdigit():
        return False  # "running"
    return state == "S" and int(fields[1], 16) == fd


@contextlib.contextmanager
def signal_when_blocked(fd: int, signum: int) -> Iterator[None]:
    """Within the block, send ``signum`` to the main thread once it sleeps in a
    read or write on ``fd`` (then only the signal can end that call); leaving
    the block cancels a signal not sent yet. Where /proc cannot tell, a timer
    stands in, as before: it fires too early when a loaded machine is slow to
    reach the call (the signal then tests another race)."""
    main = threading.main_thread()
    assert main.ident is not None and main.native_id is not None
    ident, tid = main.ident, main.native_id
    cancelled = threading.Event()

    def wait_then_signal() -> None:
        deadline = time.monotonic() + TEST_TIMEOUT
        while not cancelled.is_set():
            seen = blocked_on(tid, fd)
            if seen is None:
                cancelled.wait(0.1)
                break
            if seen or time.monotonic() >= deadline:
                break
            cancelled.wait(0.001)
        if not cancelled.is_set():
            signal.pthread_kill(ident, signum)

    thread = threading.Thread(target=wait_then_signal, daemon=True, name="signal-when-blocked")
    thread.start()
    try:
        yield
    finally:
        cancelled.set()
        thread.join(TEST_TIMEOUT)


def fd_is_open(fd: int) -> bool:
    """Is ``fd`` an open descriptor of this process?"""
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class Hung(Exception):
    """Raised by the watchdog's alarm when a call blocks far too long."""


class Watchdog:
    """SIGALRM in the main thread once a deadline passes: the blocked call
    gets EINTR, the handler raises ``Hung``, the test fails instead of hanging.

    ``watchdog(seconds)`` re-arms it; ``start(key)``/``stop()`` arm it per
    Hypothesis example, and once an example hung every later one fails at
    once (so shrinking cannot hang the suite either).
    """

    def __init__(self) -> None:
        self.hung: Set[str] = set()
        self.current = ""
        self.seconds = TEST_TIMEOUT

    def on_alarm(self, signum: int, frame: Any) -> None:
        if self.current:
            self.hung.add(self.current)
        raise Hung(f"blocked for more than {self.seconds:g} s")

    def __call__(self, seconds: float) -> None:
        self.seconds = seconds
        signal.setitimer(signal.ITIMER_REAL, seconds)

    def start(self, key: str, seconds: float = 15.0) -> None:
        if key in self.hung:
            raise Hung("an earlier example hung")
        self.current = key
        self(seconds)

    def stop(self) -> None:
        self.current = ""
        signal.setitimer(signal.ITIMER_REAL, 0)

    def install(self) -> Any:
        return signal.signal(signal.SIGALRM, self.on_alarm)

    def remove(self, old: Any) -> None:
        self.stop()
        signal.signal(signal.SIGALRM, old)


class Fds:
    """Descriptors a test opened; whatever is still open is closed at teardown.

    Thread-safe: a writer thread may close its end while the test reads.
    """

    def __init__(self) -> None:
        self._fds: Set[int] = set()
        self._socks: List[socket.socket] = []
        self._lock = threading.Lock()

    def pipe(self) -> Tuple[int, int]:
        r, w = os.pipe()
        with self._lock:
            self._fds.update((r, w))
        return r, w

    def socketpair(self) -> Tuple[socket.socket, socket.socket]:
        a, b = socket.socketpair()
        self._socks += [a, b]
        return a, b

    def track(self, sock: socket.socket) -> socket.socket:
        self._socks.append(sock)
        return sock

    def forget(self, fd: int) -> None:
        """``fd`` now belongs to someone else (a ``Rio`` with ``closefd=True``)."""
        with self._lock:
            self._fds.discard(fd)

    def close(self, fd: int) -> None:
        with self._lock:
            if fd not in self._fds:
                return
            self._fds.discard(fd)
        os.close(fd)

    def closeall(self) -> None:
        with self._lock:
            todo, self._fds = sorted(self._fds), set()
        for fd in todo:
            try:
                os.close(fd)
            except OSError:
                pass
        for sock in self._socks:
            sock.close()


class Writer(threading.Thread):
    """Writes ``chunks`` to ``fd`` with pauses, then closes ``fd`` (if asked)."""

    def __init__(
        self, fds: Fds, fd: int, chunks: Sequence[bytes], pause: float = 0.0, close: bool = True
    ) -> None:
        super().__init__(daemon=True)
        self.fds, self.fd, self.chunks = fds, fd, chunks
        self.pause, self.close = pause, close
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            for chunk in self.chunks:
                if self.pause:
                    time.sleep(self.pause)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(self.fd, view) :]
        except OSError as exc:  # the reader gave up and closed its end
            self.error = exc
        finally:
            if self.close:
                self.fds.close(self.fd)

    def finish(self, timeout: float = 10.0) -> None:
        self.join(timeout)
        assert not self.is_alive(), "writer thread hung"
        assert self.error is None, self.error
