"""Event-driven echo server: I/O multiplexing in one thread (CSAPP ``echoservers``).

The book's ``select`` server copies its read buffer and loses lines that
arrive together; it is also limited to ``FD_SETSIZE`` (1024) descriptors.
This one uses ``selectors.DefaultSelector`` (epoll on Linux) and non-blocking
sockets; every connection keeps its own input (a partial line waits there
without blocking anyone) and pending output (partial writes and EAGAIN resume
when the socket is writable). Complete lines are echoed; a line longer than
``MAXLINE - 1`` goes back in pieces, as ``rio_readlineb`` returns it.
"""

from __future__ import annotations

import os
import selectors
import socket
import time
from typing import Dict, Optional

from ._rio import MAXLINE
from .server_base import (
    ACCEPT_BACKOFF,
    OUT_OF_RESOURCES,
    TRANSIENT_ACCEPT_ERRORS,
    Address,
    ServerConfig,
    ServerControl,
    log,
)
from .sockets import numeric_address

__all__ = ["serve_event"]

READ_SIZE = 64 * 1024
# Stop reading from a client whose unsent echo exceeds this (it does not read).
HIGH_WATER = 1024 * 1024
# Accept at most this many clients per wake-up, so established ones are not starved.
ACCEPT_BATCH = 64

_LISTENER = object()
_WAKE = object()


class _Connection:
    """One client: its descriptor, unechoed input and unsent output (a ``pool`` slot)."""

    __slots__ = ("fd", "address", "inbox", "outbox", "eof", "last_heard", "events")

    def __init__(self, fd: int, address: Address) -> None:
        self.fd = fd
        self.address = address
        self.inbox = bytearray()   # received, not yet a complete line
        self.outbox = bytearray()  # echo not yet written
        self.eof = False           # the client half-closed: finish writing, then close
        self.last_heard = time.monotonic()
        self.events = selectors.EVENT_READ


class _EventServer:
    """The loop of ``serve_event``; one instance per run."""

    def __init__(self, listenfd: int, config: ServerConfig, control: ServerControl) -> None:
        self.config = config
        self.control = control
        self.listener = socket.socket(fileno=listenfd)
        self.listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(control.wake_fd, selectors.EVENT_READ, _WAKE)
        self.selector.register(self.listener.fileno(), selectors.EVENT_READ, _LISTENER)
        self.listening = True
        self.paused_until = 0.0
        self.warned = False
        self.connections: Dict[int, _Connection] = {}
        self.next_sweep = float("inf")
        if config.idle_timeout:
            self.next_sweep = time.monotonic() + self._sweep_interval()

    # -- the loop

    def run(self) -> None:
        try:
            while not self.control.stopping:
                for key, mask in self.selector.select(self._timeout()):
                    if key.data is _WAKE:
                        self.control.drain()
                    elif key.data is _LISTENER:
                        self._accept_clients()
                    else:
                        self._handle(key.data, mask)
                self._housekeeping()
        finally:
            self.close()

    def close(self) -> None:
        """Close every connection, the listener and the selector."""
        for conn in list(self.connections.values()):
            self._drop(conn)
        self.selector.close()
        self.listener.close()

    def _timeout(self) -> Optional[float]:
        wake_at = self.next_sweep
        if not self.listening and self.paused_until:
            wake_at = min(wake_at, self.paused_until)
        if wake_at == float("inf"):
            return None
        return max(wake_at - time.monotonic(), 0.0)

    def _sweep_interval(self) -> float:
        return max(min((self.config.idle_timeout or 1.0) / 4, 1.0), 0.01)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        if self.paused_until and now >= self.paused_until:
            self.paused_until = 0.0
        self._update_listening()
        if now >= self.next_sweep:
            idle = self.config.idle_timeout or 0.0
            for conn in list(self.connections.values()):
                if now - conn.last_heard >= idle:
                    if self.config.verbose:
                        log(f"Closed ({conn.address[0]}, {conn.address[1]}): idle timeout")
                    self._drop(conn)
            self.next_sweep = now + self._sweep_interval()

    # -- accepting

    def _has_room(self) -> bool:
        limit = self.config.max_clients
        return limit is None or len(self.connections) < limit

    def _update_listening(self) -> None:
        """Listen only when not paused (EMFILE) and under ``max_clients``."""
        want = not self.paused_until and self._has_room()
        if want and not self.listening:
            self.selector.register(self.listener.fileno(), selectors.EVENT_READ, _LISTENER)
        elif self.listening and not want:
            self.selector.unregister(self.listener.fileno())
        self.listening = want

    def _accept_clients(self) -> None:
        for _ in range(ACCEPT_BATCH):
            if not self._has_room():
                break
            try:
                sock, address = self.listener.accept()
            except OSError as exc:
                if exc.errno in OUT_OF_RESOURCES:
                    self._pause(exc)
                elif exc.errno not in TRANSIENT_ACCEPT_ERRORS:
                    raise
                break
            sock.setblocking(False)
            conn = _Connection(sock.detach(), numeric_address(address))
            self.connections[conn.fd] = conn
            self.selector.register(conn.fd, conn.events, conn)
            if self.config.verbose:
                log(f"Connected to ({conn.address[0]}, {conn.address[1]})")
        self._update_listening()

    def _pause(self, exc: OSError) -> None:
        """Out of descriptors: stop watching the listener for ``ACCEPT_BACKOFF``."""
        self.paused_until = time.monotonic() + ACCEPT_BACKOFF
        if self.config.verbose or not self.warned:
            log(f"accept: {exc.strerror}; pausing {ACCEPT_BACKOFF:g} s")
            self.warned = True

    # -- one connection

    def _handle(self, conn: _Connection, mask: int) -> None:
        if mask & selectors.EVENT_READ:
            self._read(conn)
        if mask & selectors.EVENT_WRITE and self.connections.get(conn.fd) is conn:
            self._write(conn)

    def _read(self, conn: _Connection) -> None:
        try:
            data = os.read(conn.fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(conn, exc)
            return
        conn.last_heard = time.monotonic()
        if not data:  # EOF: echo the last partial line, then close
            conn.eof = True
            ready = len(conn.inbox)
        else:
            conn.inbox += data
            ready = conn.inbox.rfind(b"\n") + 1
            if not ready and len(conn.inbox) >= MAXLINE - 1:
                ready = len(conn.inbox)  # an overlong line: echo it in pieces
        if ready:
            if self.config.verbose:
                log(f"server received {ready} bytes")
            conn.outbox += conn.inbox[:ready]
            del conn.inbox[:ready]
        self._write(conn)

    def _write(self, conn: _Connection) -> None:
        """Write what is pending; whatever the socket does not take waits for EPOLLOUT."""
        outbox = conn.outbox
        while outbox:
            try:
                count = os.write(conn.fd, outbox)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._fail(conn, exc)
                return
            del outbox[:count]
            conn.last_heard = time.monotonic()
        if conn.eof and not outbox:
            self._drop(conn)
            return
        events = 0
        if not conn.eof and len(outbox) < HIGH_WATER:
            events |= selectors.EVENT_READ
        if outbox:
            events |= selectors.EVENT_WRITE
        if events != conn.events:
            conn.events = events
            self.selector.modify(conn.fd, events, conn)

    def _fail(self, conn: _Connection, exc: OSError) -> None:
        """A reset or broken pipe ends this one connection, quietly."""
        if self.config.verbose:
            log(f"Closed ({conn.address[0]}, {conn.address[1]}): {exc.strerror}")
        self._drop(conn)

    def _drop(self, conn: _Connection) -> None:
        del self.connections[conn.fd]
        if conn.events:
            self.selector.unregister(conn.fd)
        os.close(conn.fd)


def serve_event(listenfd: int, *, config: Optional[ServerConfig] = None,
                control: Optional[ServerControl] = None) -> None:
    """Many clients in one thread with epoll (CSAPP ``echoservers``, without its bugs).

    Works past 1024 descriptors; a partial line from one client never blocks
    another; lines that arrive together are all echoed.
    """
    config = config or ServerConfig()
    if control is None:
        with ServerControl() as own:
            _EventServer(listenfd, config, own).run()
    else:
        _EventServer(listenfd, config, control).run()
