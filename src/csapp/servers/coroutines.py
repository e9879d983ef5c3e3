"""The asyncio echo server: ``csapp.aio.start_server`` + ``csapp.aio.echo`` on one loop.

The mode for comparing asyncio with the book's servers (``--mode asyncio``,
``--loop uvloop``). Without ``verbose`` or ``idle_timeout`` every client is
``csapp.aio.echo`` (lines go back from the protocol's receive callback); with
them, a task per client reads what ``echo_cut`` allows, logs and writes it.
``max_clients`` holds further clients, accepted, before their first read.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from typing import Callable, Dict, Optional

from .. import aio
from ..sockets import LISTENQ, numeric_address
from .config import ServerConfig, log
from .control import ServerControl

__all__ = ["LOOPS", "serve_asyncio"]


def _uvloop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        raise RuntimeError("uvloop is not installed (pip install uvloop)") from None
    return uvloop.new_event_loop()


LOOPS: Dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": _uvloop,
}


async def _logged_echo(
    reader: aio.StreamReader, writer: asyncio.StreamWriter, config: ServerConfig
) -> None:
    """Echo with the server's log lines and idle timeout."""
    try:
        peer = numeric_address(writer.get_extra_info("peername"))
    except (OSError, TypeError):
        peer = ("?", 0)
    if config.verbose:
        log(f"Connected to ({peer[0]}, {peer[1]})")
    reason = "closed by client"
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(reader._echo_chunk(), config.idle_timeout)
            except asyncio.TimeoutError:
                reason = "idle timeout"
                break
            if not chunk:
                break
            if config.verbose:
                log(f"server received {len(chunk)} bytes")
            writer.write(chunk)
            await writer.drain()
    except ConnectionError as exc:
        reason = exc.strerror or str(exc)
    finally:
        writer.close()
        if config.verbose:
            log(f"Closed ({peer[0]}, {peer[1]}): {reason}")


async def _serve(listenfd: int, config: ServerConfig, control: ServerControl) -> None:
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()

    def on_wake() -> None:
        if control.drain():
            stopped.set()

    loop.add_reader(control.wake_fd, on_wake)
    if control.handle_signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, control.stop)
    room = asyncio.Semaphore(config.max_clients) if config.max_clients else None
    plain = not config.verbose and config.idle_timeout is None

    async def client(reader: aio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # asyncio turns Nagle off; every other mode keeps the kernel default.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        if room is not None:
            await room.acquire()
        try:
            if plain:
                await aio.echo(reader, writer)
            else:
                await _logged_echo(reader, writer, config)
        finally:
            if room is not None:
                room.release()

    listener = socket.socket(fileno=listenfd)  # the server owns it and closes it
    # asyncio listens again on a given socket, with its own backlog (100) unless told:
    # keep open_listenfd's LISTENQ, or 10,000 clients arriving at once overflow the queue.
    server = await aio.start_server(client, sock=listener, backlog=LISTENQ)
    try:
        if not control.stopping:
            await stopped.wait()
    finally:
        server.close()
        loop.remove_reader(control.wake_fd)
        if control.handle_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def serve_asyncio(
    listenfd: int,
    *,
    config: Optional[ServerConfig] = None,
    control: Optional[ServerControl] = None,
    loop: str = "asyncio",
) -> None:
    """Serve echo with asyncio streams on ``csapp.aio`` until stopped; closes ``listenfd``.

    ``loop`` is ``"asyncio"`` (the default loop) or ``"uvloop"``.
    """
    config = config or ServerConfig()
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {', '.join(LOOPS)}, not {loop!r}")
    event_loop = LOOPS[loop]()
    try:
        if control is None:
            with ServerControl() as own:
                event_loop.run_until_complete(_serve(listenfd, config, own))
        else:
            event_loop.run_until_complete(_serve(listenfd, config, control))
    finally:
        event_loop.close()
