"""What every echo server shares: configuration, stopping, accepting, one client.

- ``ServerControl`` stops a server race-free: SIGINT/SIGTERM reach the loop
  through ``signal.set_wakeup_fd`` and a self-pipe that sits in the selector,
  so a signal landing just before the server blocks still wakes it.
- ``Acceptor`` waits for a client or a stop, and backs off for 0.1 s when
  ``accept`` runs out of descriptors (EMFILE) instead of spinning.
- ``serve_client`` echoes one blocking connection; resets, broken pipes and
  idle timeouts end that connection quietly.
"""

from __future__ import annotations

import errno
import os
import select
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Callable, Dict, List, Optional, Set, Tuple, Type

from .echo import echo_session
from .sockets import numeric_address

__all__ = [
    "Acceptor",
    "ActiveConnections",
    "ServerConfig",
    "ServerControl",
    "log",
    "serve_client",
]

Address = Tuple[str, int]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# accept() failures that mean "out of descriptors or memory": pause, then retry.
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# accept() failures that concern only the connection being accepted (accept(2)).
TRANSIENT_ACCEPT_ERRORS = frozenset({
    errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR, errno.ECONNABORTED, errno.EPROTO,
    errno.EPERM, errno.ENETDOWN, errno.ENOPROTOOPT, errno.EHOSTDOWN, errno.ENONET,
    errno.EHOSTUNREACH, errno.EOPNOTSUPP, errno.ENETUNREACH, errno.ETIMEDOUT,
})
ACCEPT_BACKOFF = 0.1
# A blocking server thread that must notice a stop wakes at least this often.
STOP_TICK = 0.25


@dataclass(frozen=True)
class ServerConfig:
    """Options shared by every server mode."""

    verbose: bool = False
    idle_timeout: Optional[float] = None  # close a client silent this long (s)
    max_clients: Optional[int] = None     # serve at most this many at once
    threads: int = 8                      # prethreaded: pool size (CSAPP NTHREADS)
    queue_size: int = 16                  # prethreaded: sbuf slots (CSAPP SBUFSIZE)

    def __post_init__(self) -> None:
        if self.idle_timeout is not None and not self.idle_timeout > 0:
            raise ValueError("idle_timeout must be positive")
        if self.max_clients is not None and self.max_clients < 1:
            raise ValueError("max_clients must be at least 1")
        if self.threads < 1 or self.queue_size < 1:
            raise ValueError("threads and queue_size must be at least 1")


def log(message: str) -> None:
    """One line on standard error (CSAPP's ``printf`` diagnostics)."""
    try:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


class ServerControl:
    """Stop switch of a server: ``stop()`` from any thread, or SIGINT/SIGTERM.

    Use it as a context manager. In the main thread it installs handlers for
    SIGINT and SIGTERM (and, for the process server, SIGCHLD) and points
    ``signal.set_wakeup_fd`` at its self-pipe; leaving restores both.
    """

    def __init__(self, handle_signals: Optional[bool] = None) -> None:
        if handle_signals is None:
            handle_signals = threading.current_thread() is threading.main_thread()
        self.handle_signals = handle_signals
        self.stopping = False
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._saved: Dict[int, object] = {}
        self._saved_wakeup: Optional[int] = None
        self._closed = False
        self._poller = select.poll()
        self._poller.register(self._read_fd, select.POLLIN)

    @property
    def wake_fd(self) -> int:
        """The read end of the self-pipe: readable after a signal or ``stop()``."""
        return self._read_fd

    def stop(self) -> None:
        """Ask the server to stop; safe from any thread and from signal handlers."""
        self.stopping = True
        try:
            os.write(self._write_fd, b"\0")
        except OSError:
            pass  # pipe full (a wake-up is pending anyway) or already closed

    def wake(self) -> None:
        """Wake the loop without stopping it (a worker freed room for a client)."""
        if self._closed:
            return
        try:
            os.write(self._write_fd, b"\0")  # 0 is no signal number: drain() ignores it
        except OSError:
            pass  # pipe full: a wake-up is pending anyway

    def _on_stop_signal(self, signum: int, frame: Optional[FrameType]) -> None:
        self.stopping = True

    @staticmethod
    def _on_child(signum: int, frame: Optional[FrameType]) -> None:
        """Nothing: the wake-up byte is what matters; the loop reaps."""

    def _install(self, signum: int, handler: Callable[[int, Optional[FrameType]], None]) -> None:
        if signum not in self._saved:
            self._saved[signum] = signal.getsignal(signum)
        signal.signal(signum, handler)

    def __enter__(self) -> "ServerControl":
        if self.handle_signals:
            self._saved_wakeup = signal.set_wakeup_fd(self._write_fd,
                                                      warn_on_full_buffer=False)
            for signum in STOP_SIGNALS:
                self._install(signum, self._on_stop_signal)
        return self

    def watch_children(self) -> bool:
        """Wake on SIGCHLD too (process server); ``False`` if signals are not ours."""
        if not self.handle_signals:
            return False
        self._install(signal.SIGCHLD, self._on_child)
        return True

    def __exit__(self, exc_type: Optional[Type[BaseException]],
                 exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        self.close()

    def close(self) -> None:
        """Restore the signal handlers and the wake-up fd, close the pipe."""
        if self._closed:
            return
        self._closed = True
        if self.handle_signals:
            for signum, handler in self._saved.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
            signal.set_wakeup_fd(-1 if self._saved_wakeup is None else self._saved_wakeup)
        self._saved.clear()
        os.close(self._read_fd)
        os.close(self._write_fd)

    def forget_in_child(self) -> None:
        """In a forked child: default signal actions, no wake-up fd, pipe closed."""
        if self.handle_signals:
            try:
                signal.set_wakeup_fd(-1)
            except ValueError:
                pass
            for signum in self._saved:
                signal.signal(signum, signal.SIG_DFL)
        self._saved.clear()
        self._closed = True
        os.close(self._read_fd)
        os.close(self._write_fd)

    def drain(self) -> bool:
        """Empty the self-pipe; a SIGINT/SIGTERM byte in it means stop. Returns ``stopping``."""
        while True:
            try:
                data = os.read(self._read_fd, 512)
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                break
            if any(byte in STOP_SIGNALS for byte in data):
                self.stopping = True
        return self.stopping

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds or until woken. Returns ``stopping``."""
        if not self.stopping:
            self._poller.poll(max(int(timeout * 1000), 1))
        return self.drain()


class Acceptor:
    """The listening socket of a blocking-mode server (CSAPP's ``Accept`` loop)."""

    def __init__(self, listenfd: int, control: ServerControl, config: ServerConfig) -> None:
        self.listener = socket.socket(fileno=listenfd)
        self.listener.setblocking(False)
        self.control = control
        self.config = config
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener.fileno(), selectors.EVENT_READ, "listen")
        self.selector.register(control.wake_fd, selectors.EVENT_READ, "wake")
        self._paused_until = 0.0
        self._warned = False
        self._waiting_for_room = False

    def close(self) -> None:
        """Close the selector and the listening socket."""
        self.selector.close()
        self.listener.close()

    def next_client(self, can_accept: Callable[[], bool] = lambda: True,
                    housekeeping: Callable[[], None] = lambda: None,
                    poll_interval: Optional[float] = None) -> Optional[Tuple[int, Address]]:
        """Wait for a client: its blocking descriptor and address, or ``None`` on stop.

        ``can_accept()`` false (a full pool, ``max_clients``) leaves clients in
        the backlog until ``room_freed()`` wakes the loop (polling every 0.1 s
        as well). ``housekeeping()`` runs at every wake-up (the process server
        reaps there).
        """
        control = self.control
        while True:
            housekeeping()
            if control.stopping:
                return None
            pause = self._paused_until - time.monotonic()
            if pause > 0:
                control.wait(pause)
                continue
            # Flag first, then look: a worker that frees room after the look
            # sees the flag and wakes us, so no client waits for the poll.
            self._waiting_for_room = True
            try:
                if not can_accept():
                    control.wait(ACCEPT_BACKOFF)
                    continue
            finally:
                self._waiting_for_room = False
            ready = {key.data for key, _mask in self.selector.select(poll_interval)}
            if "wake" in ready and control.drain():
                return None
            client = self._accept()
            if client is not None:
                return client

    def room_freed(self) -> None:
        """A worker took a queued client or ended one: wake a loop waiting for room."""
        if self._waiting_for_room:
            self.control.wake()

    def _accept(self) -> Optional[Tuple[int, Address]]:
        try:
            sock, address = self.listener.accept()
        except OSError as exc:
            if exc.errno in OUT_OF_RESOURCES:
                self.pause_accepting(exc)
                return None
            if exc.errno in TRANSIENT_ACCEPT_ERRORS:
                return None
            raise
        sock.setblocking(True)
        return sock.detach(), numeric_address(address)

    def pause_accepting(self, exc: OSError) -> None:
        """Out of descriptors: leave clients in the backlog for a moment."""
        self._paused_until = time.monotonic() + ACCEPT_BACKOFF
        if self.config.verbose or not self._warned:
            log(f"accept: {exc.strerror}; pausing {ACCEPT_BACKOFF:g} s")
            self._warned = True


class ActiveConnections:
    """Descriptors being served by worker threads, so a stop can wake them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fds: Set[int] = set()
        self._threads: List[threading.Thread] = []
        self._prune_at = 64  # drop finished threads when the list grows this long
        # Called after every close: room for another client (``Acceptor.room_freed``).
        self.on_close: Callable[[], None] = lambda: None

    def __len__(self) -> int:
        return len(self._fds)

    def add(self, fd: int) -> None:
        with self._lock:
            self._fds.add(fd)

    def close(self, fd: int) -> None:
        """Close ``fd`` (under the lock, so ``shutdown_all`` never hits a reused number)."""
        with self._lock:
            self._fds.discard(fd)
            os.close(fd)
        self.on_close()

    def add_thread(self, thread: threading.Thread) -> None:
        """Remember ``thread`` for ``join``. Finished threads are dropped whenever
        the list doubles, not at every call: O(1) per client, not O(clients)."""
        with self._lock:
            self._threads.append(thread)
            if len(self._threads) >= self._prune_at:
                self._threads = [t for t in self._threads if t.is_alive()]
                self._prune_at = max(64, 2 * len(self._threads))

    def shutdown_all(self) -> None:
        """``shutdown(SHUT_RDWR)`` every connection: blocked reads see EOF at once."""
        with self._lock:
            for fd in self._fds:
                _shutdown(fd)

    def join(self, deadline: float) -> None:
        """Wait for the worker threads until ``deadline`` (``time.monotonic()``)."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))


def _shutdown(fd: int) -> None:
    sock = socket.socket(fileno=fd)
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    finally:
        sock.detach()


def _set_timeouts(fd: int, seconds: float) -> None:
    """``SO_RCVTIMEO``/``SO_SNDTIMEO``: a blocked read or write gives up with EAGAIN."""
    whole = int(seconds)
    value = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock = socket.socket(fileno=fd)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    finally:
        sock.detach()


def serve_client(connfd: int, address: Address, config: ServerConfig,
                 control: ServerControl, stop_tick: Optional[float] = None) -> int:
    """Echo one client over blocking I/O (CSAPP ``echo`` in a server loop).

    Returns the bytes echoed. Ends quietly on EOF, a reset or broken pipe, an
    idle timeout, or a stop (noticed within ``stop_tick`` seconds if given).
    The caller closes ``connfd``.
    """
    if config.verbose:
        log(f"Connected to ({address[0]}, {address[1]})")
    ticks = [t for t in (stop_tick, config.idle_timeout) if t]
    tick = min(ticks) if ticks else 0.0
    if tick:
        _set_timeouts(connfd, tick)
    idle = config.idle_timeout
    last_heard = time.monotonic()

    def received(count: int) -> None:
        log(f"server received {count} bytes")

    def keep_waiting(echoed: int) -> bool:
        nonlocal last_heard
        now = time.monotonic()
        if echoed:  # the wait that just timed out began when the last line went back
            last_heard = now - tick
        if control.stopping:
            return False
        return idle is None or now - last_heard < idle

    try:
        return echo_session(connfd, received=received if config.verbose else None,
                            keep_waiting=keep_waiting)
    except OSError as exc:
        if config.verbose:
            reason = exc.strerror
            if isinstance(exc, BlockingIOError):
                reason = "server stopping" if control.stopping else "idle timeout"
            log(f"Closed ({address[0]}, {address[1]}): {reason}")
        return 0
