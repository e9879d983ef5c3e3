"""The process server: one child process per client, every child reaped
(CSAPP ``echoserverp``)."""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Optional, Set

from .accepting import Acceptor
from .config import Address, ServerConfig
from .connections import STOP_TICK, WORKER_GRACE, serve_client
from .control import ServerControl
from .iterative import serving

__all__ = ["serve_process"]


def _fork_client(connfd: int, address: Address, config: ServerConfig, acceptor: Acceptor) -> int:
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


def serve_process(
    listenfd: int, *, config: Optional[ServerConfig] = None, control: Optional[ServerControl] = None
) -> None:
    """One child process per client, every child reaped (CSAPP ``echoserverp``).

    On stop the children get SIGTERM and are reaped before it returns.
    """
    config = config or ServerConfig()
    children: Set[int] = set()
    with serving(listenfd, config, control) as acceptor:
        # Without our own SIGCHLD handler (not the main thread), poll to reap.
        poll = None if acceptor.control.watch_children() else STOP_TICK
        try:
            while (
                client := acceptor.next_client(
                    lambda: config.has_room(len(children)), lambda: _reap(children), poll
                )
            ) is not None:
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
