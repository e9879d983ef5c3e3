"""An iterative echo server (CSAPP ``echoserveri.c``), line for line over csapp.

Run it:

    python examples/echoserveri.py PORT        # PORT 0 picks a free port

then, in another terminal, ``python examples/echoclient.py localhost PORT``.
It prints ``listening on port N`` first (flushed, so a script can read the
port), then ``Connected to (HOST, PORT)`` for each client, as the C server
does, and serves one client at a time until that client closes. Ctrl-C or
SIGTERM stops it at any moment: exit status 0, no traceback.

Differences from the C program, each on purpose:
- ``open_listenfd`` listens on IPv6 and IPv4 at once (C: IPv4 only on Linux);
- errors are exceptions: a client that resets its connection ends that
  client's session, not the server (in C, ``SIGPIPE`` or the ``Rio_*``
  wrappers' ``unix_error`` would end the whole server).
"""

from __future__ import annotations

import ipaddress
import os
import select
import signal
import socket
import sys
from typing import Any, Tuple

import csapp


def Getnameinfo(addr: Tuple[Any, ...]) -> Tuple[str, str]:
    """CSAPP ``Getnameinfo(addr, ..., host, MAXLINE, port, MAXLINE, 0)``.

    Flags 0 as in C: a host name if the address has one, else the numeric
    address. An IPv4 client of our dual-stack socket arrives as the
    IPv4-mapped ``::ffff:a.b.c.d``; we unmap it first so it reads as in C.
    """
    host = addr[0]
    mapped = ipaddress.ip_address(host.split("%")[0])
    if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped:
        addr = (str(mapped.ipv4_mapped), addr[1])
    return socket.getnameinfo(addr, 0)


def bound_port(fd: int) -> int:
    """The port a socket descriptor is bound to (``getsockname``)."""
    sock = socket.socket(fileno=fd)
    try:
        port: int = sock.getsockname()[1]
        return port
    finally:
        sock.detach()


def Accept(listenfd: int, wakeup: int) -> Tuple[int, Tuple[Any, ...]]:
    """CSAPP ``Accept(listenfd, &clientaddr, &clientlen)``: a connected descriptor.

    ``socket.socket(fileno=...)`` borrows the descriptor to call ``accept``;
    ``detach`` hands it back (and the new connection out) as plain ints.

    Why the ``select`` first: a signal that lands after the last check for
    signals but before ``accept`` blocks would only be noticed once the next
    client arrived. The signal module writes a byte to ``wakeup`` on every
    signal (``signal.set_wakeup_fd``), so ``select`` always returns and the
    Python handler runs (raising ``KeyboardInterrupt``).
    """
    while True:
        ready, _, _ = select.select([listenfd, wakeup], [], [])
        if wakeup in ready:
            os.read(wakeup, 512)  # drain; the handler raises right after
        if listenfd in ready:
            break
    listener = socket.socket(fileno=listenfd)
    try:
        conn, clientaddr = listener.accept()
    finally:
        listener.detach()  # the descriptor stays open, and ours
    return conn.detach(), clientaddr


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write(f"usage: {argv[0]} <port>\n")
        return 1
    # Ctrl-C (SIGINT) and SIGTERM both raise KeyboardInterrupt in the main loop
    # (set for SIGINT too: a shell starts background jobs with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)

    try:
        listenfd = csapp.open_listenfd(argv[1])  # Open_listenfd(argv[1])
    except OSError as exc:  # C: the wrapper prints and exits
        sys.stderr.write(f"{argv[0]}: cannot listen on port {argv[1]}: {exc}\n")
        return 1
    try:
        print(f"listening on port {bound_port(listenfd)}", flush=True)
        while True:
            connfd, clientaddr = Accept(listenfd, wake_r)
            try:
                client_hostname, client_port = Getnameinfo(clientaddr)
                print(f"Connected to ({client_hostname}, {client_port})", flush=True)
                csapp.echo(connfd)  # echo(connfd)
            except (ConnectionResetError, BrokenPipeError):
                pass  # that client is gone; serve the next
            finally:
                os.close(connfd)  # Close(connfd)
    except KeyboardInterrupt:
        return 0  # Ctrl-C / SIGTERM: a clean stop
    finally:
        os.close(listenfd)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
