"""The threaded servers: a thread per client (CSAPP ``echoservert``), and a
fixed pool fed by a bounded queue (``echoservert_pre`` with ``sbuf``)."""

from __future__ import annotations

import errno
import queue
import threading
import time
from typing import Optional, Tuple

from .accepting import Acceptor
from .config import Address, ServerConfig
from .connections import WORKER_GRACE, ActiveConnections, serve_client
from .control import ServerControl
from .iterative import serving

__all__ = ["serve_prethreaded", "serve_thread"]


def _serve_and_close(
    connfd: int,
    address: Address,
    config: ServerConfig,
    control: ServerControl,
    active: ActiveConnections,
) -> None:
    try:
        serve_client(connfd, address, config, control)
    finally:
        active.close(connfd)


def _stop_workers(acceptor: Acceptor, active: ActiveConnections) -> None:
    """Close the listener, wake every worker with ``shutdown``, wait a little."""
    acceptor.close()
    active.shutdown_all()
    active.join(time.monotonic() + WORKER_GRACE)


def serve_thread(
    listenfd: int, *, config: Optional[ServerConfig] = None, control: Optional[ServerControl] = None
) -> None:
    """One thread per client (CSAPP ``echoservert``)."""
    config = config or ServerConfig()
    active = ActiveConnections()
    with serving(listenfd, config, control) as acceptor:
        active.on_close = acceptor.room_freed
        try:
            while (
                client := acceptor.next_client(lambda: config.has_room(len(active)))
            ) is not None:
                connfd, address = client
                active.add(connfd)
                worker = threading.Thread(
                    target=_serve_and_close,
                    name=f"echo {address[0]}:{address[1]}",
                    args=(connfd, address, config, acceptor.control, active),
                    daemon=True,
                )
                try:
                    worker.start()
                except RuntimeError as exc:  # can't start new thread
                    active.close(connfd)
                    acceptor.pause_accepting(OSError(errno.EAGAIN, str(exc)))
                else:
                    active.add_thread(worker)
        finally:
            _stop_workers(acceptor, active)


Slot = Optional[Tuple[int, Address]]  # None tells a worker to leave


def _pool_worker(
    slots: queue.SimpleQueue[Slot],
    config: ServerConfig,
    acceptor: Acceptor,
    active: ActiveConnections,
) -> None:
    """Take connections from the queue until told to leave (CSAPP ``thread``).

    Taking one frees a slot: the accept loop is woken at once (``sbuf``'s
    ``V(&slots)``), not at its next poll.
    """
    while (slot := slots.get()) is not None:
        acceptor.room_freed()
        connfd, address = slot
        _serve_and_close(connfd, address, config, acceptor.control, active)


def serve_prethreaded(
    listenfd: int, *, config: Optional[ServerConfig] = None, control: Optional[ServerControl] = None
) -> None:
    """A fixed pool of ``config.threads`` threads fed by a bounded queue
    of ``config.queue_size`` slots (CSAPP ``echoservert_pre`` with ``sbuf``).

    When the queue is full, new clients wait in the listen backlog.
    """
    config = config or ServerConfig()
    active = ActiveConnections()
    # The bound is enforced by the accept loop (it waits while the queue is
    # full), so the stop below can always add one "leave" per worker.
    slots: queue.SimpleQueue[Slot] = queue.SimpleQueue()
    with serving(listenfd, config, control) as acceptor:
        active.on_close = acceptor.room_freed
        for number in range(config.threads):
            worker = threading.Thread(
                target=_pool_worker,
                name=f"echo pool {number}",
                args=(slots, config, acceptor, active),
                daemon=True,
            )
            worker.start()
            active.add_thread(worker)
        try:
            while (
                client := acceptor.next_client(
                    lambda: slots.qsize() < config.queue_size and config.has_room(len(active))
                )
            ) is not None:
                active.add(client[0])
                slots.put(client)
        finally:
            while True:
                try:
                    slot = slots.get_nowait()
                except queue.Empty:
                    break
                if slot is not None:
                    active.close(slot[0])
            for _ in range(config.threads):
                slots.put(None)
            _stop_workers(acceptor, active)
