"""Event-driven echo server: I/O multiplexing in one thread (CSAPP ``echoservers``).

The book's ``select`` server copies its read buffer and loses lines that
arrive together; it is also limited to ``FD_SETSIZE`` (1024) descriptors.
This one uses ``epoll`` (``poll`` where there is no epoll) and non-blocking
sockets. The echo itself is the RIO core's: every connection's input lives
in a ``Rio``, and one call (``_rio_echo_wait``; in C without the GIL for
the compiled twin) waits for ``epoll`` and makes a turn for every ready
descriptor: output that waited goes first, then one read, and every
complete line back in one write (a line longer than ``MAXLINE - 1`` goes
back in pieces, as ``rio_readlineb`` returns it). It waits again while no
turn needs Python, so a busy server runs in C between events Python must
see. A partial line or output the socket does not take waits in the Rio; a
connection with nothing pending holds no buffer. Python does the rest:
accepting, ``--max-clients``, idle timeouts, logging, and waiting for
``EPOLLOUT`` when output waits.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from .. import _rio
from .._shared import (
    TURN_BLOCKED,
    TURN_BLOCKED_EOF,
    TURN_CLOSED,
    TURN_DRAINED,
    TURN_FAILED,
    TURN_NOT_SERVED,
)
from .accepting import AcceptPolicy
from .config import Address, ServerConfig, log
from .control import ServerControl
from .poller import READ, WRITE, Poller

__all__ = ["serve_event"]

# Every read of a turn asks for this much, into one buffer all connections share.
READ_SIZE = 64 * 1024
# A connection's Rio: the nominal size of what it keeps between turns (a partial
# line, output the socket did not take); taken only while it keeps something.
KEEP_SIZE = 1024
# Stop reading from a client whose unsent echo exceeds this (it does not read).
HIGH_WATER = 1024 * 1024
# Accept at most this many clients per wake-up, so established ones are not starved.
ACCEPT_BATCH = 64
NEVER = float("inf")  # no sweep due


Rows = List[Tuple[int, int, int]]


def _serving(
    poller: Poller,
) -> Callable[[Any, Dict[int, Any], bytearray, int, Optional[float], bool], Rows]:
    """The server's wait and turns in one call: ``_rio_echo_wait`` on epoll;
    elsewhere ``poll(2)``, then ``_rio_echo_turns`` (one wait per call)."""
    if poller.epoll is not None:
        return _rio.rio_echo_wait
    poll = poller.poll  # pragma: no cover - not Linux
    turns = _rio.rio_echo_turns  # pragma: no cover

    def poll_then_turns(  # pragma: no cover
        _epoll: Any,
        rios: Dict[int, Any],
        scratch: bytearray,
        high_water: int,
        timeout: Optional[float],
        report_all: bool,
    ) -> Rows:
        return turns(poll(timeout), rios, scratch, high_water, report_all)

    return poll_then_turns  # pragma: no cover


class _Connection:
    """One client (a ``pool`` slot): its address, the events it waits for,
    when it was last heard from; its Rio is in the server's ``rios``."""

    __slots__ = ("address", "events", "last_heard")

    def __init__(self, address: Address, now: float) -> None:
        self.address = address
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
        self.rios: Dict[int, _rio.Rio] = {}  # each connection's input and waiting output
        self.scratch = bytearray(READ_SIZE)  # what each turn reads into
        # Rows for every turn that moved a byte: for the log and the idle clock.
        self.report_all = bool(config.verbose or config.idle_timeout)
        # The connections' clock, read each time the wait returns while anything
        # needs it (idle sweeps, a pause of accepting).
        self.now = time.monotonic()
        self.next_sweep = NEVER
        if config.idle_timeout:
            self.next_sweep = self.now + self._sweep_interval()

    # -- the loop

    def run(self) -> None:
        epoll = self.poller.epoll
        serve = _serving(self.poller)
        rios = self.rios
        scratch = self.scratch
        report_all = self.report_all
        control = self.control
        monotonic = time.monotonic
        timed = bool(self.config.idle_timeout)  # idle sweeps need the clock each wake-up
        try:
            while not control.stopping:
                # No deadline while listening with no idle sweep: the common case.
                no_deadline = self.listening and self.next_sweep == NEVER
                timeout = None if no_deadline else self._timeout()
                rows = serve(epoll, rios, scratch, HIGH_WATER, timeout, report_all)
                if timed or not self.listening:  # else nothing reads the clock
                    self.now = monotonic()
                for fd, state, count in rows:
                    if state != TURN_NOT_SERVED:
                        self._after_turn(fd, state, count)
                    elif fd == self.wake_fd:
                        control.drain()
                    elif fd == self.listen_fd:
                        self._accept_clients()
                if not self.listening or self.now >= self.next_sweep:
                    self._housekeeping()
        finally:
            self.close()

    def close(self) -> None:
        """Close every connection, the listener and the poller."""
        for fd in list(self.connections):
            self._drop(fd)
        self.poller.close()
        self.accepting.close()

    def _timeout(self) -> Optional[float]:
        wake_at = self.next_sweep
        if not self.listening:
            paused_until = self.accepting.paused_until
            if paused_until:
                wake_at = min(wake_at, paused_until)
        if wake_at == NEVER:
            return None
        return max(wake_at - time.monotonic(), 0.0)

    def _sweep_interval(self) -> float:
        """How often idle connections are looked for: a client is closed at most
        a tenth of the timeout (and at most 0.5 s) late."""
        return max(min((self.config.idle_timeout or 1.0) / 10, 0.5), 0.01)

    def _housekeeping(self) -> None:
        """Listen again once a pause ends or a slot frees (accepting stops
        listening when it must); close the clients idle too long."""
        now = self.now
        if not self.listening:
            self._update_listening()
        if now >= self.next_sweep:
            idle = self.config.idle_timeout or 0.0
            for fd, conn in list(self.connections.items()):
                if now - conn.last_heard >= idle:
                    if self.config.verbose:
                        log(f"Closed ({conn.address[0]}, {conn.address[1]}): idle timeout")
                    self._drop(fd)
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
            fd, address = client
            conn = _Connection(address, self.now)
            # The server closes the descriptor (``_drop``): with closefd the pure
            # twin's Rio would carry a finalizer, 0.4 KiB per connection.
            self.rios[fd] = _rio.Rio(fd, KEEP_SIZE)
            self.connections[fd] = conn
            self.poller.register(fd, conn.events)
            if self.config.verbose:
                log(f"Connected to ({conn.address[0]}, {conn.address[1]})")
        self._update_listening()

    # -- one connection

    def _after_turn(self, fd: int, state: int, count: int) -> None:
        """What the turn of ``fd`` asks of Python: the log, the idle clock,
        closing, or the events to wait for (EPOLLOUT while output waits)."""
        conn = self.connections[fd]
        conn.last_heard = self.now
        if state == TURN_FAILED:
            self._fail(fd, conn, count)
            return
        if count and self.config.verbose:
            log(f"server received {count} bytes")
        if state == TURN_CLOSED:
            self._drop(fd)
            return
        if state == TURN_BLOCKED:
            events = WRITE | (READ if self.rios[fd].buffered < HIGH_WATER else 0)
        elif state == TURN_BLOCKED_EOF:
            events = WRITE  # the client closed: nothing more to read
        elif state == TURN_DRAINED:
            events = READ
        else:  # TURN_IDLE (report_all): what it waits for is unchanged
            return
        if events != conn.events:
            conn.events = events
            self.poller.modify(fd, events)

    def _fail(self, fd: int, conn: _Connection, err: int) -> None:
        """A reset or broken pipe ends this one connection, quietly."""
        if self.config.verbose:
            log(f"Closed ({conn.address[0]}, {conn.address[1]}): {os.strerror(err)}")
        self._drop(fd)

    def _drop(self, fd: int) -> None:
        del self.connections[fd]
        self.poller.unregister(fd)
        self.rios.pop(fd).close()  # the reader first: it never sees a reused descriptor
        os.close(fd)


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
