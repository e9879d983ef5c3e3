"""The one poller of the servers: ``select.epoll`` where it exists, else
``select.poll`` (CSAPP's ``select`` without its ``FD_SETSIZE`` limit).

The event bits are ``select.POLLIN``/``POLLOUT``/…, which epoll shares.
"""

from __future__ import annotations

import select
from typing import Callable, List, Optional, Tuple

__all__ = ["READ", "WRITE", "Poller"]

READ = select.POLLIN
WRITE = select.POLLOUT

Poll = Callable[[Optional[float]], List[Tuple[int, int]]]


class Poller:
    """``register``, ``modify``, ``unregister`` and ``poll(seconds or None)``,
    bound straight to the kernel object's methods (no extra Python call)."""

    register: Callable[[int, int], None]
    modify: Callable[[int, int], None]
    unregister: Callable[[int], None]
    # The ``select.epoll`` itself (None with ``select.poll``), for the event
    # server's ``_rio_echo_wait``.
    epoll: Optional[select.epoll]

    def __init__(self) -> None:
        if hasattr(select, "epoll"):
            epoll = select.epoll()
            self._impl: object = epoll
            self.epoll = epoll
            self.poll: Poll = lambda timeout: epoll.poll(-1 if timeout is None else timeout)
            self.register = epoll.register
            self.modify = epoll.modify
            self.unregister = epoll.unregister
        else:  # pragma: no cover - not Linux
            poller = select.poll()
            self._impl = poller
            self.epoll = None
            self.poll = lambda timeout: poller.poll(None if timeout is None else timeout * 1000)
            self.register = poller.register
            self.modify = poller.modify
            self.unregister = poller.unregister

    def close(self) -> None:
        close = getattr(self._impl, "close", None)
        if close is not None:
            close()
