"""The echo servers of CSAPP chapters 11 and 12, one function per mode.

Each takes a listening descriptor (from ``open_listenfd``), serves until it is
stopped (SIGINT/SIGTERM in the main thread, or ``ServerControl.stop()``),
then closes it. The concurrency models, one module per family:

- ``serve_iterative``   — one client at a time (``echoserveri``; ``iterative``)
- ``serve_process``     — one child process per client (``echoserverp``; ``processes``)
- ``serve_thread``      — one thread per client (``echoservert``; ``threads``)
- ``serve_prethreaded`` — a fixed pool fed by a bounded queue (``echoservert_pre``; ``threads``)
- ``serve_event``       — I/O multiplexing with epoll (``echoservers``, done right; ``event``)
- ``serve_asyncio``     — asyncio streams on ``csapp.aio``, default loop or uvloop (``coroutines``;
  imported on first use, so ``import csapp`` does not import asyncio)

What they share: ``config`` (``ServerConfig``, the log), ``control`` (stopping
race-free), ``accepting`` (one accept policy: EMFILE back-off,
``max_clients``), ``poller`` (epoll, else poll), ``connections`` (one
blocking client, and the registry worker threads use).
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

from .config import ServerConfig
from .control import ServerControl
from .event import serve_event
from .iterative import serve_iterative
from .processes import serve_process
from .threads import serve_prethreaded, serve_thread

__all__ = [
    "SERVERS",
    "ServerConfig",
    "ServerControl",
    "serve_asyncio",
    "serve_event",
    "serve_iterative",
    "serve_prethreaded",
    "serve_process",
    "serve_thread",
]

Server = Callable[..., None]


def serve_asyncio(
    listenfd: int,
    *,
    config: Optional[ServerConfig] = None,
    control: Optional[ServerControl] = None,
    loop: str = "asyncio",
) -> None:
    """Echo on asyncio streams over ``csapp.aio`` (``loop``: ``"asyncio"`` or ``"uvloop"``)."""
    from .coroutines import serve_asyncio as serve

    serve(listenfd, config=config, control=control, loop=loop)


SERVERS: Dict[str, Server] = {
    "iterative": serve_iterative,
    "process": serve_process,
    "thread": serve_thread,
    "prethreaded": serve_prethreaded,
    "event": serve_event,
    "asyncio": serve_asyncio,
}
