"""The iterative server: one client at a time, to its end (CSAPP ``echoserveri``)."""

from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager
from typing import Iterator, Optional

from .accepting import Acceptor
from .config import ServerConfig
from .connections import STOP_TICK, serve_client
from .control import ServerControl

__all__ = ["serve_iterative", "serving"]


@contextmanager
def serving(
    listenfd: int, config: ServerConfig, control: Optional[ServerControl]
) -> Iterator[Acceptor]:
    """An ``Acceptor`` for ``listenfd``, with a ``ServerControl`` if none was given."""
    with ExitStack() as stack:
        if control is None:
            control = stack.enter_context(ServerControl())
        acceptor = Acceptor(listenfd, control, config)
        stack.callback(acceptor.close)
        yield acceptor


def serve_iterative(
    listenfd: int, *, config: Optional[ServerConfig] = None, control: Optional[ServerControl] = None
) -> None:
    """One client at a time, to its end (CSAPP ``echoserveri``)."""
    config = config or ServerConfig()
    with serving(listenfd, config, control) as acceptor:
        while (client := acceptor.next_client()) is not None:
            connfd, address = client
            try:
                serve_client(connfd, address, config, acceptor.control, STOP_TICK)
            finally:
                os.close(connfd)
