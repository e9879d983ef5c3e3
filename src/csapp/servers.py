"""The echo servers of CSAPP chapters 11 and 12, one function per mode.

Each takes a listening descriptor (from ``open_listenfd``), serves until it is
stopped (SIGINT/SIGTERM in the main thread, or ``ServerControl.stop()``),
then closes it. The concurrency models:

- ``serve_iterative``   — one client at a time (``echoserveri``)
- ``serve_process``     — one child process per client (``echoserverp``)
- ``serve_thread``      — one thread per client (``echoservert``)
- ``serve_prethreaded`` — a fixed pool fed by a bounded queue (``echoservert_pre``)
- ``serve_event``       — I/O multiplexing with epoll (``echoservers``, done right)
"""

from __future__ import annotations

import errno
import os
import queue
import signal
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from typing import Callable, Dict, Iterator, Optional, Set, Tuple

from .server_base import (
    STOP_TICK,
    Acceptor,
    ActiveConnections,
    Address,
    ServerConfig,
    ServerControl,
    serve_client,
)
from .server_event import serve_event

__all__ = [
    "SERVERS",
    "ServerConfig",
    "ServerControl",
    "serve_event",
    "serve_iterative",
    "serve_prethreaded",
    "serve_process",
    "serve_thread",
]

Server = Callable[..., None]
# How long a stopping server waits for its workers before it returns anyway.
WORKER_GRACE = 0.5


@contextmanager
def _serving(listenfd: int, config: ServerConfig,
             control: Optional[ServerControl]) -> Iterator[Acceptor]:
    """An ``Acceptor`` for ``listenfd``, with a ``ServerControl`` if none was given."""
    with ExitStack() as stack:
        if control is None:
            control = stack.enter_context(ServerControl())
        acceptor = Acceptor(listenfd, control, config)
        stack.callback(acceptor.close)
        yield acceptor


def _has_room(active: ActiveConnections, config: ServerConfig) -> bool:
    return config.max_clients is None or len(active) < config.max_clients


def serve_iterative(listenfd: int, *, config: Optional[ServerConfig] = None,
                    control: Optional[ServerControl] = None) -> None:
    """One client at a time, to its end (CSAPP ``echoserveri``)."""
    config = config or ServerConfig()
    with _serving(listenfd, config, control) as acceptor:
        while (client := acceptor.next_client()) is not None:
            connfd, address = client
            try:
                serve_client(connfd, address, config, acceptor.control, STOP_TICK)
            finally:
                os.close(connfd)


# ------------------------------------------------------------ processes


def _fork_client(connfd: int, address: Address, config: ServerConfig,
                 acceptor: Acceptor) -> int:
    """Fork a child that echoes ``connfd`` and exits; the parent gets its pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    status = 0
    try:
        acceptor.close()  # the child's copies: the parent keeps listening
        acceptor.control.forget_in_child()
        serve_client(connfd, address, config, acceptor.control)
        os.close(connfd)
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def _reap(children: Set[int]) -> None:
    """``waitpid`` every finished child: no zombies."""
    for pid in list(children):
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            children.discard(pid)


def _end_children(children: Set[int]) -> None:
    """SIGTERM every child, reap it; SIGKILL one that lingers."""
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + WORKER_GRACE
    while children and time.monotonic() < deadline:
        _reap(children)
        if children:
            time.sleep(0.01)
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    children.clear()


def serve_process(listenfd: int, *, config: Optional[ServerConfig] = None,
                  control: Optional[ServerControl] = None) -> None:
    """One child process per client, every child reaped (CSAPP ``echoserverp``).

    On stop the children get SIGTERM and are reaped before it returns.
    """
    config = config or ServerConfig()
    children: Set[int] = set()
    limit = config.max_clients
    with _serving(listenfd, config, control) as acceptor:
        # Without our own SIGCHLD handler (not the main thread), poll to reap.
        poll = None if acceptor.control.watch_children() else STOP_TICK
        try:
            while (client := acceptor.next_client(
                    lambda: limit is None or len(children) < limit,
                    lambda: _reap(children), poll)) is not None:
                connfd, address = client
                try:
                    pid = _fork_client(connfd, address, config, acceptor)
                except OSError as exc:  # EAGAIN/ENOMEM: too many processes
                    acceptor.pause_accepting(exc)
                else:
                    children.add(pid)
                finally:
                    os.close(connfd)  # the child has its own copy
        finally:
            acceptor.close()
            _end_children(children)


# -------------------------------------------------------------- threads


def _serve_and_close(connfd: int, address: Address, config: ServerConfig,
                     control: ServerControl, active: ActiveConnections) -> None:
    try:
        serve_client(connfd, address, config, control)
    finally:
        active.close(connfd)


def _stop_workers(acceptor: Acceptor, active: ActiveConnections) -> None:
    """Close the listener, wake every worker with ``shutdown``, wait a little."""
    acceptor.close()
    active.shutdown_all()
    active.join(time.monotonic() + WORKER_GRACE)


def serve_thread(listenfd: int, *, config: Optional[ServerConfig] = None,
                 control: Optional[ServerControl] = None) -> None:
    """One thread per client (CSAPP ``echoservert``)."""
    config = config or ServerConfig()
    active = ActiveConnections()
    with _serving(listenfd, config, control) as acceptor:
        active.on_close = acceptor.room_freed
        try:
            while (client := acceptor.next_client(
                    lambda: _has_room(active, config))) is not None:
                connfd, address = client
                active.add(connfd)
                worker = threading.Thread(
                    target=_serve_and_close, name=f"echo {address[0]}:{address[1]}",
                    args=(connfd, address, config, acceptor.control, active),
                    daemon=True)
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


def _pool_worker(slots: "queue.SimpleQueue[Slot]", config: ServerConfig,
                 acceptor: Acceptor, active: ActiveConnections) -> None:
    """Take connections from the queue until told to leave (CSAPP ``thread``).

    Taking one frees a slot: the accept loop is woken at once (``sbuf``'s
    ``V(&slots)``), not at its next poll.
    """
    while (slot := slots.get()) is not None:
        acceptor.room_freed()
        connfd, address = slot
        _serve_and_close(connfd, address, config, acceptor.control, active)


def serve_prethreaded(listenfd: int, *, config: Optional[ServerConfig] = None,
                      control: Optional[ServerControl] = None) -> None:
    """A fixed pool of ``config.threads`` threads fed by a bounded queue
    of ``config.queue_size`` slots (CSAPP ``echoservert_pre`` with ``sbuf``).

    When the queue is full, new clients wait in the listen backlog.
    """
    config = config or ServerConfig()
    active = ActiveConnections()
    # The bound is enforced by the accept loop (it waits while the queue is
    # full), so the stop below can always add one "leave" per worker.
    slots: "queue.SimpleQueue[Slot]" = queue.SimpleQueue()
    with _serving(listenfd, config, control) as acceptor:
        active.on_close = acceptor.room_freed
        for number in range(config.threads):
            worker = threading.Thread(
                target=_pool_worker, name=f"echo pool {number}",
                args=(slots, config, acceptor, active), daemon=True)
            worker.start()
            active.add_thread(worker)
        try:
            while (client := acceptor.next_client(
                    lambda: slots.qsize() < config.queue_size
                    and _has_room(active, config))) is not None:
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


SERVERS: Dict[str, Server] = {
    "iterative": serve_iterative,
    "process": serve_process,
    "thread": serve_thread,
    "prethreaded": serve_prethreaded,
    "event": serve_event,
}
