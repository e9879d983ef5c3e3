"""Serving one blocking connection: ``serve_client`` (CSAPP's ``echo`` in a
server loop), its socket timeouts, and ``ActiveConnections``, the
descriptors that worker threads serve, so a stop can wake them all.
Resets, broken pipes and idle timeouts end a connection quietly.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Callable, List, Optional, Set

from ..echo_service import echo_session
from ..sockets import set_kernel_timeouts
from .config import Address, ServerConfig, log
from .control import ServerControl

__all__ = ["STOP_TICK", "WORKER_GRACE", "ActiveConnections", "serve_client"]

# A blocking server thread that must notice a stop wakes at least this often.
STOP_TICK = 0.25
# How long a stopping server waits for its workers before it returns anyway.
WORKER_GRACE = 0.5


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


def serve_client(
    connfd: int,
    address: Address,
    config: ServerConfig,
    control: ServerControl,
    stop_tick: Optional[float] = None,
) -> int:
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
        set_kernel_timeouts(connfd, tick)
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
        return echo_session(
            connfd, received=received if config.verbose else None, keep_waiting=keep_waiting
        )
    except OSError as exc:
        if config.verbose:
            reason = exc.strerror
            if isinstance(exc, BlockingIOError):
                reason = "server stopping" if control.stopping else "idle timeout"
            log(f"Closed ({address[0]}, {address[1]}): {reason}")
        return 0
