"""Accepting clients (CSAPP's ``Accept``), one policy for every mode.

``AcceptPolicy`` takes one client off a non-blocking listening socket: when
the process is out of descriptors or memory it pauses accepting for
``ACCEPT_BACKOFF`` seconds instead of spinning (and says so once, or every
time with ``-v``), and it ignores the errors that concern only the
connection being accepted. ``Acceptor`` is the blocking modes' loop around
it: wait for a client, a stop, or room (``max_clients``, a full pool).
"""

from __future__ import annotations

import errno
import socket
import time
from typing import Callable, Optional, Tuple

from ..sockets import numeric_address
from .config import Address, ServerConfig, log
from .control import ServerControl
from .poller import READ, Poller

__all__ = ["ACCEPT_BACKOFF", "AcceptPolicy", "Acceptor"]

# accept() failures that mean "out of descriptors or memory": pause, then retry.
OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
# accept() failures that concern only the connection being accepted (accept(2)).
TRANSIENT_ACCEPT_ERRORS = frozenset(
    {
        errno.EAGAIN,
        errno.EWOULDBLOCK,
        errno.EINTR,
        errno.ECONNABORTED,
        errno.EPROTO,
        errno.EPERM,
        errno.ENETDOWN,
        errno.ENOPROTOOPT,
        errno.EHOSTDOWN,
        errno.ENONET,
        errno.EHOSTUNREACH,
        errno.EOPNOTSUPP,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
    }
)
ACCEPT_BACKOFF = 0.1


class AcceptPolicy:
    """The listening socket, non-blocking, and how failures of ``accept`` are met."""

    def __init__(self, listenfd: int, config: ServerConfig) -> None:
        self.listener = socket.socket(fileno=listenfd)
        self.listener.setblocking(False)
        self.fileno = self.listener.fileno()
        self.config = config
        self.paused_until = 0.0  # time.monotonic() until which accepting is paused
        self._warned = False

    def accept(self, blocking: bool) -> Optional[Tuple[int, Address]]:
        """One client's descriptor (blocking or not) and address, or ``None``
        when there is none now or accepting just paused."""
        try:
            sock, address = self.listener.accept()
        except OSError as exc:
            if exc.errno in OUT_OF_RESOURCES:
                self.pause(exc)
                return None
            if exc.errno in TRANSIENT_ACCEPT_ERRORS:
                return None
            raise
        sock.setblocking(blocking)
        return sock.detach(), numeric_address(address)

    def pause(self, exc: OSError) -> None:
        """Out of descriptors (or processes): leave clients in the backlog a moment."""
        self.paused_until = time.monotonic() + ACCEPT_BACKOFF
        if self.config.verbose or not self._warned:
            log(f"accept: {exc.strerror}; pausing {ACCEPT_BACKOFF:g} s")
            self._warned = True

    def paused(self, now: float) -> bool:
        """Is accepting paused at ``now``? An expired pause is cleared."""
        if self.paused_until and now >= self.paused_until:
            self.paused_until = 0.0
        return bool(self.paused_until)

    def close(self) -> None:
        self.listener.close()


class Acceptor:
    """The accept loop of a blocking-mode server (CSAPP's ``while (1) Accept``)."""

    def __init__(self, listenfd: int, control: ServerControl, config: ServerConfig) -> None:
        self.policy = AcceptPolicy(listenfd, config)
        self.control = control
        self.config = config
        self.poller = Poller()
        self.poller.register(self.policy.fileno, READ)
        self.poller.register(control.wake_fd, READ)
        self._waiting_for_room = False

    def close(self) -> None:
        """Close the poller and the listening socket."""
        self.poller.close()
        self.policy.close()

    def next_client(
        self,
        can_accept: Callable[[], bool] = lambda: True,
        housekeeping: Callable[[], None] = lambda: None,
        poll_interval: Optional[float] = None,
    ) -> Optional[Tuple[int, Address]]:
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
            pause = self.policy.paused_until - time.monotonic()
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
            ready = {fd for fd, _mask in self.poller.poll(poll_interval)}
            if control.wake_fd in ready and control.drain():
                return None
            client = self.policy.accept(blocking=True)
            if client is not None:
                return client

    def room_freed(self) -> None:
        """A worker took a queued client or ended one: wake a loop waiting for room."""
        if self._waiting_for_room:
            self.control.wake()

    def pause_accepting(self, exc: OSError) -> None:
        """Out of processes or threads: leave clients in the backlog a moment."""
        self.policy.pause(exc)
