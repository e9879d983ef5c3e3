"""The echo servers the workloads measure, each as its own process on loopback.

A :class:`ServerSpec` names a server, its argv and the RIO implementation it
runs (``None`` for a peer); :func:`running` starts one and yields its port.
Ours are ``python -m csapp echoserver`` of the installed package.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

from . import cprogs
from .core import impl_env

# The peer servers, run as a script: it imports nothing of ``bench``, so a
# child finds it wherever it was started from.
PEERS = str(Path(__file__).resolve().with_name("peers.py"))

# "asyncio-uvloop" is ``--mode asyncio --loop uvloop``, where uvloop is installed.
OUR_MODES: Tuple[str, ...] = ("thread", "event", "prethreaded", "process", "iterative", "asyncio")
if importlib.util.find_spec("uvloop") is not None:
    OUR_MODES += ("asyncio-uvloop",)


@dataclass(frozen=True)
class ServerSpec:
    """One echo server: its row name, its argv, and the implementation it runs."""

    name: str
    argv: Tuple[str, ...]
    impl: Optional[str] = None


def ours(impl: str, mode: str) -> ServerSpec:
    """``csapp echoserver --mode MODE`` on a free loopback port, with ``impl``."""
    argv: Tuple[str, ...] = (sys.executable, "-m", "csapp", "echoserver", "--host", "127.0.0.1")
    if mode == "asyncio-uvloop":
        argv += ("--mode", "asyncio", "--loop", "uvloop", "0")
    else:
        argv += ("--mode", mode, "0")
    return ServerSpec(f"csapp {mode} [{impl}]", argv, impl)


# The C peers' row names: the reference of the echo tables, and the limit for
# a server on one thread (a second ratio column).
C_THREADED = "C threaded echo (memchr RIO)"
C_EPOLL = "C epoll echo (one thread)"


def peers() -> List[ServerSpec]:
    """The C servers (compiled here if needed), then the Python peers."""
    return c_peers() + python_peers()


def c_peers() -> List[ServerSpec]:
    """Thread per connection (``echo_threaded.c``) and one-thread level-triggered
    epoll with coalesced line writes (``echo_epoll.c``), compiled if needed."""
    return [
        ServerSpec(C_THREADED, (cprogs.program("echo_threaded"), "0")),
        ServerSpec(C_EPOLL, (cprogs.program("echo_epoll"), "0")),
    ]


def python_peers() -> List[ServerSpec]:
    """The peers of ``peers.py`` (uvloop's only where installed)."""
    peer = (sys.executable, PEERS)
    specs = [
        ServerSpec("socketserver.ThreadingTCPServer", peer + ("socketserver", "0")),
        ServerSpec("ThreadingTCPServer + csapp handler", peer + ("csapp-socketserver", "0")),
        # No rfile at all: the most any handler swap could gain (a bound).
        ServerSpec("ThreadingTCPServer, bare recv (ceiling)", peer + ("socketserver-ceiling", "0")),
        ServerSpec("asyncio streams", peer + ("asyncio", "0")),
        # The same handler with its streams import swapped for csapp.aio.
        ServerSpec("csapp.aio streams", peer + ("csapp-aio", "0"), "c"),
    ]
    if importlib.util.find_spec("uvloop") is None:
        return specs
    return specs + [
        ServerSpec("uvloop streams", peer + ("uvloop", "0")),
        ServerSpec("csapp.aio streams, uvloop", peer + ("csapp-aio-uvloop", "0"), "c"),
    ]


def server_specs(
    impls: Sequence[str], with_peers: bool = True, modes: Sequence[str] = OUR_MODES
) -> List[ServerSpec]:
    """Ours per implementation and mode, then (``with_peers``) the peers."""
    specs = [ours(impl, mode) for impl in impls for mode in modes]
    return specs + peers() if with_peers else specs


@contextmanager
def running(spec: ServerSpec, timeout: float = 15.0) -> Iterator[int]:
    """Start ``spec``, wait for its "listening on ... N" line, yield N, stop it."""
    proc = subprocess.Popen(
        spec.argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=impl_env(spec.impl),
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "listening on" in line or not line:
                break
        if "listening on" not in line:
            raise RuntimeError(f"server did not start: {' '.join(spec.argv)}")
        yield int(line.split()[-1])
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the server's process group; SIGKILL it after 5 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if proc.stdout:
        proc.stdout.close()
