"""Event-driven echo server: I/O multiplexing in one thread (CSAPP ``echoservers``).

The book's ``select`` server copies its read buffer and loses lines that
arrive together; it is also limited to ``FD_SETSIZE`` (1024) descriptors.
This one uses ``epoll`` (``poll`` where there is no epoll) and non-blocking
sockets; every connection keeps its own input (a partial line waits there
without blocking anyone) and pending output (partial writes and EAGAIN resume
when the socket is writable). Complete lines are echoed; a line longer than
``MAXLINE - 1`` goes back in pieces, as ``rio_readlineb`` returns it. When a
read brings whole lines and nothing is pending, they go straight back with
one ``write``.
"""

from __future__ import annotations

import os
import time
from typing import Dict, Optional

from .._shared import echo_cut
from .accepting import AcceptPolicy
from .config import Address, ServerConfig, log
from .control import ServerControl
from .poller import READ, READ_LIKE, WRITE, Poller

__all__ = ["serve_event"]

READ_SIZE = 64 * 1024
# Stop reading from a client whose unsent echo exceeds this (it does not read).
HIGH_WATER = 1024 * 1024
# Accept at most this many clients per wake-up, so established ones are not starved.
ACCEPT_BATCH = 64


class _Connection:
    """One client: its descriptor, unechoed input and unsent output (a ``pool`` slot)."""

    __slots__ = ("address", "eof", "events", "fd", "inbox", "last_heard", "outbox")

    def __init__(self, fd: int, address: Address, now: float) -> None:
        self.fd = fd
        self.address = address
        self.inbox = bytearray()  # received, not yet a complete line
        self.outbox = bytearray()  # echo not yet written
        self.eof = False  # the client half-closed: finish writing, then close
        self.last_heard = now
        self.events = READ


class _EventServer:
    """The loop of ``serve_event``; one instance per run."""

    def __init__(self, listenfd: int, config: ServerConfig, control: ServerControl) -> None:
        self.config = config
        self.control = control
        self.accepting = AcceptPolicy(listenfd, config)
        self.poller = Poller()
        self.wake_fd = control.wake_fd
        self.listen_fd = self.accepting.fileno
        self.poller.register(self.wake_fd, READ)
        self.poller.register(self.listen_fd, READ)
        self.listening = True
        self.connections: Dict[int, _Connection] = {}
        self.now = time.monotonic()  # once per wake-up: the connections' clock
        self.next_sweep = float("inf")
        if config.idle_timeout:
            self.next_sweep = self.now + self._sweep_interval()

    # -- the loop

    def run(self) -> None:
        connections = self.connections
        poll = self.poller.poll
        try:
            while not self.control.stopping:
                events = poll(self._timeout())
                self.now = time.monotonic()
                for fd, mask in events:
                    conn = connections.get(fd)
                    if conn is not None:
                        if mask & READ_LIKE:
                            self._read(conn)
                        if mask & WRITE and connections.get(fd) is conn:
                            self._write(conn)
                    elif fd == self.wake_fd:
                        self.control.drain()
                    elif fd == self.listen_fd:
                        self._accept_clients()
                self._housekeeping()
        finally:
            self.close()

    def close(self) -> None:
        """Close every connection, the listener and the poller."""
        for conn in list(self.connections.values()):
            self._drop(conn)
        self.poller.close()
        self.accepting.close()

    def _timeout(self) -> Optional[float]:
        wake_at = self.next_sweep
        paused_until = self.accepting.paused_until
        if not self.listening and paused_until:
            wake_at = min(wake_at, paused_until)
        if wake_at == float("inf"):
            return None
        return max(wake_at - time.monotonic(), 0.0)

    def _sweep_interval(self) -> float:
        """How often idle connections are looked for: a client is closed at most
        a tenth of the timeout (and at most 0.5 s) late."""
        return max(min((self.config.idle_timeout or 1.0) / 10, 0.5), 0.01)

    def _housekeeping(self) -> None:
        now = self.now
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
        return self.config.has_room(len(self.connections))

    def _update_listening(self) -> None:
        """Listen only when not paused (EMFILE) and under ``max_clients``."""
        want = not self.accepting.paused(self.now) and self._has_room()
        if want and not self.listening:
            self.poller.register(self.listen_fd, READ)
        elif self.listening and not want:
            self.poller.unregister(self.listen_fd)
        self.listening = want

    def _accept_clients(self) -> None:
        for _ in range(ACCEPT_BATCH):
            if not self._has_room():
                break
            client = self.accepting.accept(blocking=False)
            if client is None:
                break
            conn = _Connection(client[0], client[1], self.now)
            self.connections[conn.fd] = conn
            self.poller.register(conn.fd, conn.events)
            if self.config.verbose:
                log(f"Connected to ({conn.address[0]}, {conn.address[1]})")
        self._update_listening()

    # -- one connection

    def _read(self, conn: _Connection) -> None:
        try:
            data = os.read(conn.fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(conn, exc)
            return
        conn.last_heard = self.now
        if (
            data
            and data[-1] == 10
            and not conn.inbox
            and not conn.outbox
            and not self.config.verbose
        ):
            self._echo_now(conn, data)  # the common case: whole lines, nothing pending
            return
        if not data:  # EOF: echo the last partial line, then close
            conn.eof = True
        else:
            conn.inbox += data
        ready = echo_cut(conn.inbox, conn.eof)  # whole lines, or a long line's piece
        if ready:
            if self.config.verbose:
                log(f"server received {ready} bytes")
            conn.outbox += conn.inbox[:ready]
            del conn.inbox[:ready]
        self._write(conn)

    def _echo_now(self, conn: _Connection, lines: bytes) -> None:
        """Write ``lines`` back at once; what the socket does not take waits."""
        try:
            count = os.write(conn.fd, lines)
        except (BlockingIOError, InterruptedError):
            count = 0
        except OSError as exc:
            self._fail(conn, exc)
            return
        if count < len(lines):
            conn.outbox += memoryview(lines)[count:]
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
            conn.last_heard = self.now
        if conn.eof and not outbox:
            self._drop(conn)
            return
        events = 0
        if not conn.eof and len(outbox) < HIGH_WATER:
            events |= READ
        if outbox:
            events |= WRITE
        if events != conn.events:
            conn.events = events
            self.poller.modify(conn.fd, events)

    def _fail(self, conn: _Connection, exc: OSError) -> None:
        """A reset or broken pipe ends this one connection, quietly."""
        if self.config.verbose:
            log(f"Closed ({conn.address[0]}, {conn.address[1]}): {exc.strerror}")
        self._drop(conn)

    def _drop(self, conn: _Connection) -> None:
        del self.connections[conn.fd]
        if conn.events:
            self.poller.unregister(conn.fd)
        os.close(conn.fd)


def serve_event(
    listenfd: int, *, config: Optional[ServerConfig] = None, control: Optional[ServerControl] = None
) -> None:
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
